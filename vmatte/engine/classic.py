"""Closed-form matting (Levin et al. 2008, via pymatting) on the unknown band only. No weights, CPU only.

The closed-form system couples a pixel only with its 3x3 neighbourhood, and pymatting skips windows that are
entirely known, so the alpha of an unknown region depends only on pixels within 2 px of it. We therefore solve each
connected piece of the band (pieces closer than ``margin`` px are merged) inside its own bounding box plus
``margin``: the same answer as solving the whole frame (up to the conjugate-gradient tolerance), at a cost that
scales with the band, not the frame.

Where the band's colours do not decide, the propagation's foreground probability does, weakly (``[engine]
prior``, :func:`closed_form`): colour alone mattes DAVIS parkour 79's head as the wall behind it. Measured
(2026-12-07) at weights 0 / 0.01 / 0.03 / 0.1 / 0.3: ``vmatte run`` J, DAVIS, 7 clips, frames 0-40, keys every
10: 0.842 / 0.859 / 0.861 / 0.863 / 0.864 (parkour 0.894 -> 0.927 at 0.03, horsejump-high 0.876 -> 0.905,
libby 0.818 -> 0.844; breakdance peaks at 0.003, 0.857, and falls to 0.845 at 0.3); composites of real
GT alphas (``scripts/bench_smooth_e2e.py``), ratios to the per-frame oracle, 0 / 0.01 / 0.03 / 0.1: SAD 0.83 /
0.80 / 0.77 / 0.75x, MSE 0.95 / 0.87 / 0.82 / 0.76x, dtSSD 0.99 / 0.96 / 0.93 / 0.91x. 0.03 ships: above it a
prior that is confidently wrong moves an edge the colours decide (5 px wrong: the edge moves 0 px at 0.03, 2 px
at 0.1, 5 px at 1), and the composites' ground truth is the one place where the propagation is this good.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vmatte.engine.base import BatchingEngine
from vmatte.engine.config import EngineConfig
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


def closed_form(
    img: np.ndarray,
    t: np.ndarray,
    notes: LibraryNotes | None = None,
    prior: np.ndarray | None = None,
    weight: float = 0.0,
) -> np.ndarray:
    """Closed-form alpha of one box: img (h, w, 3) float64 in [0, 1], t (h, w) float64 trimap in {0, 0.5, 1}
    → (h, w) float64 alpha in [0, 1].

    pymatting's system (its Laplacian, preconditioner and conjugate gradient, as ``estimate_alpha_cf`` builds
    them): the unknown pixels' alpha minimises the Laplacian's energy with the known pixels fixed. With a
    ``prior`` (h, w) float64 foreground probability in [0, 1] and ``weight`` > 0, each unknown pixel also pays
    ``weight * (2 q - 1)^2 * (alpha - [q >= 0.5])^2``: a pull towards the side the propagation leans to, as
    strong as it leans (none where q = 0.5), too weak to move an edge the colours decide (``[engine] prior``,
    measured in the module docstring).

    The conjugate gradient raises where it does not converge, and without a prior it cannot converge where the
    box's unknown pixels are coupled (within 2 px) to one label only while the other lies further off in the
    box: the right-hand side is 0 and its first step divides 0 by 0 (a 1-px line of foreground with unknown
    beside it, DAVIS paragliding-launch, stopped a whole run). Those boxes are solved directly (scipy's sparse
    LU): the exact answer, slower, counted in ``notes``."""
    import scipy.sparse as sp
    from pymatting import cf_laplacian, cg, ichol, trimap_split

    is_fg, _is_bg, is_known, is_unknown = trimap_split(t)
    lap = cf_laplacian(img, is_known=is_known)
    rows = lap[is_unknown]
    a = rows[:, is_unknown]
    rhs = -rows[:, is_known].dot(is_fg[is_known].astype(np.float64))
    if prior is not None and weight > 0:
        q = prior.ravel()[is_unknown]
        w = weight * (2.0 * q - 1.0) ** 2
        a = a + sp.diags(w)
        rhs = rhs + w * (q >= 0.5)
    x = t.ravel().copy()
    try:
        x[is_unknown] = cg(a, rhs, M=ichol(a))
    except ValueError as e:
        if "did not converge" not in str(e):
            raise
        if notes is not None:
            notes.add("pymatting", CG_FAILED)
        import scipy.sparse.linalg as sla

        x[is_unknown] = sla.spsolve(a.tocsc(), rhs)
    return np.clip(x, 0.0, 1.0).reshape(t.shape)


def solve_band(
    rgb: np.ndarray,
    trimap: np.ndarray,
    margin: int = 4,
    notes: LibraryNotes | None = None,
    prior: np.ndarray | None = None,
    weight: float = 0.0,
) -> np.ndarray:
    """Closed-form alpha for one frame: rgb (H, W, 3) float64 in [0, 1], trimap (H, W) uint8 {0, 128, 255} →
    (H, W) float32 alpha in [0, 1] (known pixels copied from the trimap). ``prior`` (H, W) uint8 0..255 (the
    propagation's foreground probability, :attr:`vmatte.frame.Frame.prior`) pulls the band's alpha with
    ``weight`` (:func:`closed_form`). ``notes`` counts the boxes pymatting's solver gave up on."""
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
        q = None if prior is None else prior[y0:y1, x0:x1].astype(np.float64) / 255.0
        a = closed_form(img, t, notes, q, weight)
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

    def __init__(self, margin: int = 4, prior: float = EngineConfig.prior) -> None:
        super().__init__()
        self.batch_size = 1
        self.max_in_flight = 1
        self.margin = margin
        self.prior = prior
        self.library_notes = LibraryNotes()

    def _launch(self, frames: list[Frame]) -> Any:
        # pymatting prints a 6-line PERFORMANCE WARNING to stdout when its preconditioner retries: counted
        # here, reported once by the runner (vmatte.pipeline.libnotes)
        with capture_prints(self.library_notes, "pymatting"):
            return [
                solve_band(
                    f.rgb_float().astype(np.float64),
                    f.trimap,
                    self.margin,
                    self.library_notes,
                    prior=f.prior,
                    weight=self.prior,
                )
                for f in frames
            ]

    def _collect(self, handle: Any) -> list[np.ndarray]:
        return handle

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update(
            {
                "method": "closed-form (pymatting's Laplacian and solver) on the unknown band",
                "margin_px": self.margin,
                "prior": self.prior,
            }
        )
        return d
