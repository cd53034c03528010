"""Alpha feedback: the latest matted alpha, carried to a later frame by the flow, turns unknown pixels definite
where it is sure, consistent and agrees with the propagated mask.

It never flips a definite label, never touches keyframes and never narrows the band below ``band_min`` around
the propagated boundary, so a matting error cannot feed on itself. The flow that carries the alpha is the
propagator's (:meth:`vmatte.propagate.propagator.Propagator._apply_feedback`); this module holds the state and
the decisions.

Conventions: work-resolution arrays are (wh, ww); alphas float32 in [0, 1] unless stored (uint8 0..255);
trimaps uint8 {0, 128, 255} at the clip's size.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from vmatte.frame import TRIMAP_BG, TRIMAP_FG, TRIMAP_UNKNOWN, Frame
from vmatte.propagate.trimap import signed_distance

_SURE_FG, _SURE_BG = 0.98, 0.02  # a carried alpha this close to 1 / 0 counts as a definite label
_CONSISTENT = 0.9  # flow consistency the carried alpha needs


@dataclass(frozen=True)
class Observed:
    """The latest matted alpha kept as evidence: clip frame ``index``, its ``alpha`` and grey image, both
    (wh, ww) uint8 at working resolution (alpha 0..255)."""

    index: int
    alpha: np.ndarray
    gray: np.ndarray

    @classmethod
    def of(cls, frame: Frame, gray: np.ndarray) -> Observed:
        """From a matted ``frame`` (``frame.alpha`` (H, W) float32 [0, 1], any size) and its working-size
        ``gray`` ((wh, ww) uint8); the alpha is area-resized to the working size."""
        a = frame.alpha
        wh, ww = gray.shape
        if (a.shape[1], a.shape[0]) != (ww, wh):
            a = cv2.resize(a, (ww, wh), interpolation=cv2.INTER_AREA)
        return cls(frame.index, np.clip(a * 255 + 0.5, 0, 255).astype(np.uint8), gray)

    def reaches(self, t: int, max_lag: int, cuts: list[int]) -> bool:
        """Whether this alpha may serve frame t: 1..max_lag frames before it, with no scene cut in between."""
        lag = t - self.index
        return 0 < lag <= max_lag and not any(self.index < c <= t for c in cuts)


@dataclass(frozen=True)
class Relabel:
    """What feedback changes on one frame, (wh, ww) bool each: unknown pixels that become foreground /
    background, and the soft zone that becomes unknown (soft edges, off by default)."""

    to_fg: np.ndarray
    to_bg: np.ndarray
    soft: np.ndarray

    @property
    def pixels(self) -> int:
        """Work pixels made definite (the report's ``feedback_pixels``)."""
        return int(self.to_fg.sum() + self.to_bg.sum())

    def any(self) -> bool:
        return bool(self.to_fg.any() or self.to_bg.any() or self.soft.any())


def definite(
    alpha: np.ndarray,
    consistency: np.ndarray,
    mask: np.ndarray,
    unknown: np.ndarray,
    d: np.ndarray,
    r_min: float,
) -> tuple[np.ndarray, np.ndarray]:
    """(to_fg, to_bg) (wh, ww) bool: unknown pixels farther than ``r_min`` px from the propagated boundary
    (``d``: signed distance to ``mask``'s boundary, px) where the carried ``alpha`` (float32 [0, 1]) is sure,
    the flow that carried it consistent (``consistency`` float32 [0, 1]) and it agrees with ``mask``."""
    free = unknown & (np.abs(d) > r_min) & (consistency > _CONSISTENT)
    return free & mask & (alpha >= _SURE_FG), free & ~mask & (alpha <= _SURE_BG)


def propagated(p_u8: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mask (wh, ww) bool, signed distance (wh, ww) float32 px) of a stored probability (uint8 0..255)."""
    mask = p_u8 >= 128
    return mask, signed_distance(mask)


def apply(tri: np.ndarray, relabel: Relabel, full: tuple[int, int]) -> np.ndarray:
    """A copy of the full-resolution trimap ``tri`` with ``relabel`` applied (nearest-upsampled to ``full`` =
    (width, height)): only unknown pixels become definite, the soft zone becomes unknown."""
    wh, ww = relabel.to_fg.shape
    lab = np.full((wh, ww), 0, np.uint8)
    lab[relabel.to_fg] = 2
    lab[relabel.to_bg] = 1
    lab[relabel.soft] = 3
    if (ww, wh) != full:
        lab = cv2.resize(lab, full, interpolation=cv2.INTER_NEAREST)
    tri = tri.copy()
    # only unknown full-res pixels change: definite labels are never flipped
    sel = tri == TRIMAP_UNKNOWN
    tri[sel & (lab == 2)] = TRIMAP_FG
    tri[sel & (lab == 1)] = TRIMAP_BG
    tri[lab == 3] = TRIMAP_UNKNOWN
    return tri
