"""The unknown band follows the soft edge: where the engine's alpha is cut off by the band, widen it and matte
again (any engine; :class:`~vmatte.engine.base.BatchingEngine` runs the loop, ``[engine] grow_band`` steps).

A propagated band has one width for the whole outline, but how far a soft edge reaches varies along it: hair,
fur and motion blur spill past a band that fits a hard edge. The engine itself shows where: an unknown pixel
next to definite background whose alpha is still clearly above 0 (or next to definite foreground and clearly
below 1) has a matte the band truncated, since the true alpha cannot jump from that value to 0 (1) across one
pixel. Only those stretches are widened, by :data:`STEP` of the short side per step, into both sides (the
inner side matters as much: a binary mask is the alpha-0.5 contour of hair, whose alpha inside it is 0.5-1).

Measured (2026-12-05) with ``scripts/bench_smooth_e2e.py`` (11 real GT mattes moving over DAVIS footage,
classic engine, keys every 24, means of ratios to the per-frame oracle), off -> 1 step -> 2 steps: SAD 1.34 ->
1.23 -> 1.23x, MSE 2.38 -> 2.08 -> 2.07x, Grad 1.88 -> 1.66 -> 1.65x, dtSSD 1.26 -> 1.22 -> 1.23x, soft-pixel
coverage 0.449 -> 0.561 -> 0.571; the chain's wall time 50 -> 78 -> 99 s (the engine solves a wider band up
to steps + 1 times), hence 1 step for "auto". DAVIS, ``vmatte run`` on frames 0-40 with keys every 10: binary
J unchanged (see the README). Widening only outwards raised SAD (gt05 1.40 -> 1.71x), and so did larger steps
or a lower LEVEL.

Conventions: trimaps (H, W) uint8 {0, 128, 255}; alpha (H, W) float32 [0, 1]; sizes in px of the frame.
"""

from __future__ import annotations

import cv2
import numpy as np

from vmatte.frame import TRIMAP_BG, TRIMAP_FG, TRIMAP_UNKNOWN
from vmatte.propagate.trimap import near_wide

LEVEL = 0.1  # alpha this far from the definite neighbour's value at the band's edge counts as cut off
REACH = 3  # cut-offs count within this many steps of a wide foreground part
STEP = 0.0125  # widening per step, fraction of the frame's short side (3 px at 240p, 13.5 px at 1080p)

_RING = np.ones((3, 3), np.uint8)

# [engine] grow_band = "auto": steps per engine. ViTMatte's are not measured (no weights here), so it keeps
# the band as propagated until they are
AUTO_STEPS = {"classic": 1}


def steps_for(engine_name: str) -> int:
    """Widening steps ``grow_band = "auto"`` gives this engine."""
    return AUTO_STEPS.get(engine_name, 0)


def step_px(width: int, height: int) -> int:
    """One widening step in px at this frame size (at least 1)."""
    return max(1, round(STEP * min(width, height)))


def cut_off(trimap: np.ndarray, alpha: np.ndarray, level: float = LEVEL) -> np.ndarray:
    """(H, W) bool: unknown pixels 8-adjacent to definite background with alpha > ``level``, or to definite
    foreground with alpha < 1 - ``level`` (the band truncated the matte there)."""
    unknown = trimap == TRIMAP_UNKNOWN
    near_bg = cv2.dilate((trimap == TRIMAP_BG).view(np.uint8), _RING) > 0
    near_fg = cv2.dilate((trimap == TRIMAP_FG).view(np.uint8), _RING) > 0
    return unknown & ((near_bg & (alpha > level)) | (near_fg & (alpha < 1.0 - level)))


def widen(trimap: np.ndarray, alpha: np.ndarray, px: int, level: float = LEVEL) -> np.ndarray | None:
    """``trimap`` with definite pixels within ``px`` of a cut-off pixel (:func:`cut_off`) made unknown, or
    None when the matte is cut off nowhere (nothing to do).

    Thin parts are left alone. Parts narrower than the widening (an arm, a leg, a gap between them: no disk
    of radius ``px`` fits in them) keep their label: made unknown whole they lose the constraint that holds
    them, and fade (DAVIS parkour, classic engine: J 0.895 -> 0.872 when they were widened too). And only
    cut-offs within ``REACH`` steps of a wide foreground part count: the thin unknown ring of a kite line
    (vmatte.propagate.lines) widened into halos of water around the lines (kite-surf J 0.758 -> 0.729)."""
    cut = cut_off(trimap, alpha, level)
    if not cut.any():
        return None
    keep = np.zeros(trimap.shape, bool)
    for label in (TRIMAP_FG, TRIMAP_BG):
        part = (trimap == label).view(np.uint8)
        if not part.any():
            continue
        wide = near_wide(cv2.distanceTransform(part, cv2.DIST_L2, 5), px)
        keep |= (part > 0) & ~wide
        if label == TRIMAP_FG:
            core = (wide & (part > 0)).view(np.uint8)
            if not core.any():
                return None  # no wide foreground at all: nothing whose soft edge could spill
            cut &= cv2.distanceTransform(1 - core, cv2.DIST_L2, 5) <= REACH * px
            if not cut.any():
                return None
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1, 2 * px + 1))
    reach = (cv2.dilate(cut.view(np.uint8), disk) > 0) & ~keep
    out = trimap.copy()
    out[reach] = TRIMAP_UNKNOWN
    return out
