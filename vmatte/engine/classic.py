"""Closed-form matting (Levin et al. 2008, via pymatting) on the unknown band only. No weights, CPU only.

The closed-form system couples a pixel only with its 3x3 neighbourhood, and pymatting skips windows that are
entirely known, so the alpha of an unknown region depends only on pixels within 2 px of it. We therefore solve each
connected piece of the band (pieces closer than ``margin`` px are merged) inside its own bounding box plus
``margin``: the same answer as solving the whole frame (up to the conjugate-gradient tolerance), at a cost that
scales with the band, not the frame.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vmatte.engine.base import BatchingEngine
from vmatte.frame import TRIMAP_FG, TRIMAP_UNKNOWN, Frame
from vmatte.pipeline.libnotes import LibraryNotes, capture_prints


def band_boxes(unknown: np.ndarray, margin: int) -> list[tuple[int, int, int, int]]:
    """(H, W) bool unknown mask → boxes (y0, y1, x0, x1) around its pieces, grown by ``margin`` and clipped."""
    import cv2

    h, w = unknown.shape
    # merge pieces whose grown boxes would touch: label the mask dilated by the margin
    k = 2 * margin + 1
    grown = (
        cv2.dilate(unknown.astype(np.uint8), np.ones((k, k), np.uint8))
        if margin > 0
        else unknown.astype(np.uint8)
    )
    n, _labels, stats, _ = cv2.connectedComponentsWithStats(grown, connectivity=8)
    boxes = []
    for i in range(1, n):
        x, y, bw, bh = (int(v) for v in stats[i, :4])
        # the dilation already added ``margin`` around each piece
        boxes.append((max(0, y), min(h, y + bh), max(0, x), min(w, x + bw)))
    return boxes


# pymatting's message when its conjugate gradient gives up (LibraryNotes counts it; libnotes explains it)
CG_FAILED = "Conjugate gradient descent did not converge within 10000 iterations"


def closed_form(img: np.ndarray, t: np.ndarray, notes: LibraryNotes | None = None) -> np.ndarray:
    """pymatting's closed-form alpha of one box: img (h, w, 3) float64 in [0, 1], t (h, w) float64 trimap in
    {0, 0.5, 1} → (h, w) float64 alpha in [0, 1].

    pymatting's conjugate gradient raises where it does not converge, and it cannot converge where the box's
    unknown pixels are coupled (within 2 px) to one label only while the other lies further off in the box:
    the right-hand side is 0 and its first step divides 0 by 0 (a 1-px line of foreground with unknown
    beside it, DAVIS paragliding-launch, stopped a whole run). Those boxes are solved again directly (the
    same system, pymatting's Laplacian, scipy's sparse LU): the exact answer, slower, counted in ``notes``."""
    from pymatting import estimate_alpha_cf

    try:
        return estimate_alpha_cf(img, t)
    except ValueError as e:
        if "did not converge" not in str(e):
            raise
    if notes is not None:
        notes.add("pymatting", CG_FAILED)
    import scipy.sparse.linalg as sla
    from pymatting import cf_laplacian, trimap_split

    is_fg, _is_bg, is_known, is_unknown = trimap_split(t)
    lap = cf_laplacian(img, is_known=is_known)
    rows = lap[is_unknown]
    rhs = -rows[:, is_known].dot(is_fg[is_known].astype(np.float64))
    x = t.ravel().copy()
    x[is_unknown] = sla.spsolve(rows[:, is_unknown].tocsc(), rhs)
    return np.clip(x, 0.0, 1.0).reshape(t.shape)


def solve_band(
    rgb: np.ndarray, trimap: np.ndarray, margin: int = 4, notes: LibraryNotes | None = None
) -> np.ndarray:
    """Closed-form alpha for one frame: rgb (H, W, 3) float64 in [0, 1], trimap (H, W) uint8 {0, 128, 255} →
    (H, W) float32 alpha in [0, 1] (known pixels copied from the trimap). ``notes`` counts the boxes pymatting's
    solver gave up on (:func:`closed_form`)."""
    alpha = (trimap == TRIMAP_FG).astype(np.float32)
    unknown = trimap == TRIMAP_UNKNOWN
    for y0, y1, x0, x1 in band_boxes(unknown, margin):
        tri = trimap[y0:y1, x0:x1]
        has_fg, has_bg = (tri == TRIMAP_FG).any(), (tri == 0).any()
        if not (has_fg or has_bg):
            alpha[y0:y1, x0:x1] = 0.5  # no known pixel to anchor the solve: nothing better to say
            continue
        if not (has_fg and has_bg):
            # one-sided constraints: the closed-form energy's minimiser is the constant known value (and
            # pymatting refuses such trimaps), so answer it directly
            region = unknown[y0:y1, x0:x1]
            alpha[y0:y1, x0:x1][region] = 1.0 if has_fg else 0.0
            continue
        t = tri.astype(np.float64) / 255.0
        t[tri == TRIMAP_UNKNOWN] = 0.5  # pymatting's unknown is any value strictly between 0 and 1
        img = np.ascontiguousarray(rgb[y0:y1, x0:x1], dtype=np.float64)
        a = closed_form(img, t, notes)
        region = unknown[y0:y1, x0:x1]
        alpha[y0:y1, x0:x1][region] = a[region]
    return alpha


def numba_cache_ready() -> bool:
    """True when pymatting's numba kernels are already compiled (imported in this process, or cached on disk).

    pymatting declares its kernels with eager signatures and ``cache=True``: the first ``import pymatting`` on a
    machine compiles them all (measured: 280 s wall, 84 CPU s on the shared 2-core box), later imports load the
    cache in seconds. numba caches beside the sources (``__pycache__``) when that is writable, else in
    ``NUMBA_CACHE_DIR`` or the user cache; we look for the closed-form Laplacian's index file in each.
    """
    import importlib.util
    import os
    import sys
    from pathlib import Path

    if "pymatting" in sys.modules:
        return True
    spec = importlib.util.find_spec("pymatting")
    if spec is None or not spec.origin:
        return True  # not installed: the import error is the message, not a compile notice
    if os.environ.get("NUMBA_CACHE_DIR"):  # numba then uses this folder only
        places = [Path(os.environ["NUMBA_CACHE_DIR"])]
    else:
        places = [Path(spec.origin).parent / "laplacian" / "__pycache__", Path.home() / ".cache" / "numba"]
    return any(d.is_dir() and any(d.rglob("cf_laplacian*.nbi")) for d in places)


def warm_up(on_info=None) -> None:
    """Import pymatting now (at engine load) so its one-time numba compile is not charged to the first frame,
    and say so first when it will compile: a first run otherwise looks hung, with an absurd ETA."""
    if not numba_cache_ready() and on_info is not None:
        on_info("compiling the classic engine (first run only, 1-5 min; later runs start in seconds)")
    import pymatting  # noqa: F401


class ClassicEngine(BatchingEngine):
    """Weights-free engine: pymatting closed-form matting on each frame's unknown band (one frame per batch)."""

    name = "classic"

    def __init__(self, margin: int = 4) -> None:
        super().__init__()
        self.batch_size = 1
        self.max_in_flight = 1
        self.margin = margin
        self.library_notes = LibraryNotes()

    def _launch(self, frames: list[Frame]) -> Any:
        # pymatting prints a 6-line PERFORMANCE WARNING to stdout when its preconditioner retries: counted
        # here, reported once by the runner (vmatte.pipeline.libnotes)
        with capture_prints(self.library_notes, "pymatting"):
            return [
                solve_band(f.rgb_float().astype(np.float64), f.trimap, self.margin, self.library_notes)
                for f in frames
            ]

    def _collect(self, handle: Any) -> list[np.ndarray]:
        return handle

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update(
            {
                "method": "closed-form (pymatting estimate_alpha_cf) on the unknown band",
                "margin_px": self.margin,
            }
        )
        return d
