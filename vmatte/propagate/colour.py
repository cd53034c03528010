"""Keyframe colour models: P(foreground | colour) learnt near each keyframe's boundary (Video SnapCut's idea).

Where the flow is unreliable (fast motion, blur) the blend leans on these (see :mod:`vmatte.propagate.blend`).
Each keyframe gets a global model over 5-bit RGB bins and, when ``color_cell`` > 0, local statistics per
square cell of a fixed grid over 4-bit bins (a subject whose colours recur elsewhere in the background is still
separated locally); between two keyframes their models are mixed by temporal weight.

Conventions: colour bins are (wh, ww) uint16, 5 bits per RGB channel (``r << 10 | g << 5 | b``); probabilities
float32 in [0, 1]; all arrays at the propagator's working resolution.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# imported here, not inside learn(): learn() runs in the propagation thread while the engine loads in the main
# thread, and a first import of scipy.ndimage racing pymatting's scipy import there failed with KeyError: 'scipy'
# (tests/test_hostile_signals.py::test_signal_while_matting, about one run in two on 2 cores)
from scipy.ndimage import uniform_filter

from vmatte.propagate.trimap import signed_distance

_COLOUR_PRIOR = 2.0  # local colour samples it takes to outweigh a keyframe's global colour model
_BINS5 = 1 << 15  # 5-bit RGB bins
_BINS4 = 4096  # 4-bit RGB bins (local models see fewer samples)


@dataclass(frozen=True)
class LocalCounts:
    """Per grid cell, colour counts over 4-bit RGB bins: ``fg`` foreground samples, ``all`` every sample; both
    (cells, 4096) float32 (weighted sums once two keyframes' models are mixed)."""

    fg: np.ndarray
    all: np.ndarray


@dataclass(frozen=True)
class ColourModel:
    """A keyframe's colour model (or two mixed). lut: (32768,) float32 P(foreground | 5-bit bin); local: the
    per-cell counts or None (global model only); accuracy: share of the keyframe's zone pixels the model
    classifies right, in [0, 1] (0.5 = colour says nothing)."""

    lut: np.ndarray
    local: LocalCounts | None
    accuracy: float


def colour_bins(rgb: np.ndarray, work: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) uint8 RGB → (wh, ww) uint16 5-bit colour bins at the working size ``work`` = (ww, wh)."""
    if (rgb.shape[1], rgb.shape[0]) != work:
        rgb = cv2.resize(rgb, work, interpolation=cv2.INTER_AREA)
    q = (rgb >> 3).astype(np.uint16)
    return (q[..., 0] << 10) | (q[..., 1] << 5) | q[..., 2]


def bins4(bins: np.ndarray) -> np.ndarray:
    """5-bit-per-channel colour bins → 4-bit ones (0..4095, int32)."""
    b = bins.astype(np.int32)
    return (((b >> 11) & 15) << 8) | (((b >> 6) & 15) << 4) | ((b >> 1) & 15)


class ColourModels:
    """The colour models of one propagation pass: the cell grid, and the models of the keyframes still needed.

    work: (ww, wh) working size in px; zone_px: half-width of the learning zone around a keyframe's boundary
    in work px; cell: cell side as a fraction of the short side (0 = global models only)."""

    def __init__(self, work: tuple[int, int], zone_px: float, cell: float) -> None:
        self.ww, self.wh = work
        self.zone_px = zone_px
        self.cell = cell
        self.models: dict[int, ColourModel] = {}  # keyframe → its model
        self._cellmap: np.ndarray | None = None  # (wh, ww) int32 cell number, made on first use
        self._geo: tuple[int, int, int] = (0, 0, 0)  # (cell size px, cells across, cells down)

    def _cells(self) -> tuple[np.ndarray, tuple[int, int, int]]:
        if self._cellmap is None:
            size = max(16, round(self.cell * min(self.ww, self.wh)))
            gx, gy = -(-self.ww // size), -(-self.wh // size)
            ys, xs = np.mgrid[0 : self.wh, 0 : self.ww]
            self._cellmap = ((ys // size) * gx + (xs // size)).astype(np.int32)
            self._geo = (size, gx, gy)
        return self._cellmap, self._geo

    def learn(self, t: int, p_kf: np.ndarray, bins: np.ndarray) -> ColourModel:
        """Learn keyframe t's model from its probability ``p_kf`` ((wh, ww) float32) and colour ``bins``; kept
        until :meth:`keep_only` drops it."""
        m = p_kf >= 0.5
        d = signed_distance(m)
        zone = np.abs(d) <= self.zone_px
        hf = np.bincount(bins[zone & m], minlength=_BINS5).astype(np.float32).reshape(32, 32, 32)
        hb = np.bincount(bins[zone & ~m], minlength=_BINS5).astype(np.float32).reshape(32, 32, 32)
        hf = uniform_filter(hf, 3, mode="nearest")
        hb = uniform_filter(hb, 3, mode="nearest")
        lut = ((hf + 1e-3) / (hf + hb + 2e-3)).reshape(-1).astype(np.float32)
        local = self._local_counts(bins, zone, m) if self.cell > 0 else None
        model = ColourModel(lut, local, 0.5)
        acc = float(((self.prob(model, bins, zone) >= 0.5) == m[zone]).mean()) if zone.any() else 0.5
        self.models[t] = model = ColourModel(lut, local, acc)
        return model

    def keep_only(self, t: int) -> None:
        """Forget every model but keyframe t's (frames after keyframe t need no earlier model)."""
        for k in [k for k in self.models if k != t]:
            del self.models[k]

    def _local_counts(self, bins: np.ndarray, zone: np.ndarray, m: np.ndarray) -> LocalCounts:
        """Per cell, counts over the zone pixels of the cell widened by half a cell on every side (the subject
        moves between keyframes)."""
        _cellmap, (size, gx, gy) = self._cells()
        b4 = bins4(bins)
        hf = np.zeros((gx * gy, _BINS4), np.float32)
        nn = np.zeros((gx * gy, _BINS4), np.float32)
        half = size // 2
        for cy in range(gy):
            for cx in range(gx):
                y0, y1 = max(0, cy * size - half), min(self.wh, (cy + 1) * size + half)
                x0, x1 = max(0, cx * size - half), min(self.ww, (cx + 1) * size + half)
                z = zone[y0:y1, x0:x1]
                bb = b4[y0:y1, x0:x1][z]
                mm = m[y0:y1, x0:x1][z]
                c = cy * gx + cx
                hf[c] = np.bincount(bb[mm], minlength=_BINS4)
                nn[c] = np.bincount(bb, minlength=_BINS4)
        return LocalCounts(hf, nn)

    def prob(self, model: ColourModel, bins: np.ndarray, sel: np.ndarray) -> np.ndarray:
        """P(foreground | colour) at the pixels ``sel`` ((wh, ww) bool) → (n,) float32: the local counts of the
        pixel's cell, with the global model as a prior worth _COLOUR_PRIOR samples. Only the selected pixels
        are looked up (the zone is a small part of the frame)."""
        b = bins[sel]
        pg = model.lut[b]
        if model.local is None:
            return pg
        cellmap, _ = self._cells()
        flat = cellmap[sel] * _BINS4 + bins4(b)
        k = np.float32(_COLOUR_PRIOR)
        return (model.local.fg.reshape(-1)[flat] + k * pg) / (model.local.all.reshape(-1)[flat] + k)

    def between(self, a: int | None, b: int | None, tw_a: float, tw_b: float) -> ColourModel | None:
        """The model for a frame between keyframes a and b (either may be None): theirs mixed by the temporal
        weights tw_a / tw_b (counts and accuracies alike), or None without any."""
        la = self.models.get(a) if a is not None else None
        lb = self.models.get(b) if b is not None else None
        if la is None and lb is None:
            return None
        if la is None or tw_a <= 0:
            return lb
        if lb is None or tw_b <= 0:
            return la
        wa, wb = tw_a / (tw_a + tw_b), tw_b / (tw_a + tw_b)
        local = None
        if la.local is not None and lb.local is not None:
            local = LocalCounts(la.local.fg * wa + lb.local.fg * wb, la.local.all * wa + lb.local.all * wb)
        return ColourModel(la.lut * wa + lb.lut * wb, local, la.accuracy * wa + lb.accuracy * wb)
