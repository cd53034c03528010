"""Foreground colour estimation (decontamination) restricted to the soft band, on the CPU or in torch.

A pixel with alpha 0 or 1 needs no estimate: its observed colour is the foreground (alpha 1) or irrelevant
(alpha 0, the output keeps the observed colour there). So the frame is cut into tiles of ``tile`` px; only
tiles holding soft pixels (0 < alpha < 1) are solved, each horizontal run of such tiles in one tile row as one
region grown by ``margin`` px of context (solid pixels there anchor F). Outside those runs the result is the
observed colour, by construction.

Two solvers:

- ``ml``: pymatting's multilevel ``estimate_foreground_ml`` (Germer et al. 2020) per region, CPU only;
- ``blur``: blur-fusion (Forte & Pitié 2021, "Approximate fast foreground colour estimation"): two passes of
  box-filtered F and B estimates (radius 90 then 6 px). Box filters make it cheap on the CPU (OpenCV) and a
  few kernels on a GPU (torch); the torch and the OpenCV versions compute the same formula (float32) and
  agree to within ``TORCH_TOLERANCE``. Its regions need 90 px of context, so it runs on the band's bounding
  box grown by that much rather than on tiles.

Images are float32 in [0, 1]; (H, W, 3) colour, (H, W) alpha. Torch is imported only by the torch path.

Why the runner does not switch to blur-fusion in torch when the model runs on CUDA (measured, 2-core host):
the default ``ml`` solve costs 0.09 CPU s per 1080p frame for a ~1.5 % soft band (blur-fusion on OpenCV 0.10,
the torch code on the CPU 0.33) and runs on the encode stage's workers, so a GPU could save at most that;
but blur-fusion is a different estimate: 5.25 vs 4.31 8-bit levels of halo in ``scripts/bench_halo.py``
(torch and OpenCV blur-fusion agree there to 1e-7), and its F differs from ``ml`` on the soft pixels by 0.016
mean, 0.067 p99, 0.22 max, so the same run would give visibly different edges on a GPU host. A torch
version of ``ml`` itself is not a drop-in either: pymatting updates pixels in place in raster order
(Gauss-Seidel), which a GPU does not reproduce within a small tolerance.
"""

from __future__ import annotations

import contextlib
import threading

import numpy as np

SOFT_LO, SOFT_HI = 1.0 / 512, 1.0 - 1.0 / 512
TILE_PX = 32
MARGIN_PX = 8
BLUR_RADII = (90, 6)  # blur-fusion passes (px): the paper's "x2" schedule
TORCH_TOLERANCE = 2e-3  # max |torch - OpenCV| of blur-fusion F, float32 box sums in different orders
_EPS = 1e-5


def soft_mask(alpha: np.ndarray) -> np.ndarray:
    """(H, W) bool: pixels with 0 < alpha < 1 (up to 1/512 either side, below 8-bit precision)."""
    return (alpha > SOFT_LO) & (alpha < SOFT_HI)


def band_regions(
    soft: np.ndarray, tile: int = TILE_PX, margin: int = MARGIN_PX
) -> list[tuple[tuple[int, int, int, int], tuple[int, int, int, int]]]:
    """Regions to solve for a (H, W) bool soft mask: a list of (core, solve) boxes (y0, y1, x0, x1).

    Cores tile every soft pixel exactly once (a run of soft tiles in one tile row); each solve box is its core
    grown by ``margin`` px and clipped to the frame.
    """
    h, w = soft.shape
    th, tw = -(-h // tile), -(-w // tile)
    pad = np.zeros((th * tile, tw * tile), bool)
    pad[:h, :w] = soft
    active = pad.reshape(th, tile, tw, tile).any(axis=(1, 3))
    out = []
    for r in range(th):
        row = active[r]
        if not row.any():
            continue
        # runs of True in the row: starts where it turns on, ends where it turns off
        edges = np.flatnonzero(np.diff(np.concatenate(([False], row, [False])).astype(np.int8)))
        y0, y1 = r * tile, min(h, (r + 1) * tile)
        for c0, c1 in zip(edges[::2], edges[1::2]):
            x0, x1 = int(c0) * tile, min(w, int(c1) * tile)
            core = (y0, y1, x0, x1)
            solve = (max(0, y0 - margin), min(h, y1 + margin), max(0, x0 - margin), min(w, x1 + margin))
            out.append((core, solve))
    return out


def bounding_box(soft: np.ndarray, margin: int) -> tuple[int, int, int, int] | None:
    """(y0, y1, x0, x1) of the soft pixels grown by ``margin`` px and clipped; None when there are none."""
    rows = np.flatnonzero(soft.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(soft.any(axis=0))
    h, w = soft.shape
    return (
        max(0, int(rows[0]) - margin),
        min(h, int(rows[-1]) + 1 + margin),
        max(0, int(cols[0]) - margin),
        min(w, int(cols[-1]) + 1 + margin),
    )


def foreground_ml(
    rgb: np.ndarray,
    alpha: np.ndarray,
    soft: np.ndarray | None = None,
    tile: int | None = None,
    margin: int | None = None,
) -> np.ndarray:
    """Multilevel foreground estimate on the band's tile runs; ``rgb`` elsewhere. (H, W, 3) float32."""
    return foreground_ml_boxes(rgb, alpha, soft, tile, margin)[0]


def foreground_ml_boxes(
    rgb: np.ndarray,
    alpha: np.ndarray,
    soft: np.ndarray | None = None,
    tile: int | None = None,
    margin: int | None = None,
) -> tuple[np.ndarray, tuple[tuple[int, int, int, int], ...]]:
    """:func:`foreground_ml` and the (y0, y1, x0, x1) cores it solved: outside them the result is ``rgb``."""
    from pymatting import estimate_foreground_ml

    _one_numba_thread()
    soft = soft_mask(alpha) if soft is None else soft
    out = np.array(rgb, dtype=np.float32, copy=True)
    regions = band_regions(soft, tile or TILE_PX, MARGIN_PX if margin is None else margin)
    for (y0, y1, x0, x1), (sy0, sy1, sx0, sx1) in regions:
        a = alpha[sy0:sy1, sx0:sx1].astype(np.float64)
        with _numba_guard():
            fg = estimate_foreground_ml(rgb[sy0:sy1, sx0:sx1].astype(np.float64), a)
        core = fg[y0 - sy0 : y1 - sy0, x0 - sx0 : x1 - sx0]
        core = np.clip(core, 0.0, 1.0).astype(np.float32)
        solid = alpha[y0:y1, x0:x1] >= SOFT_HI  # the observed colour *is* the foreground there
        core[solid] = rgb[y0:y1, x0:x1][solid]
        out[y0:y1, x0:x1] = core
    return out, tuple(core for core, _ in regions)


def _one_numba_thread() -> None:
    """pymatting's nearest-neighbour resizes are numba ``parallel=True`` loops, launched ~4 times per pyramid
    level: on band tiles that costs more in thread wake-ups than the work (measured: a 1080p ring band, 0.32
    CPU s with 2 numba threads, 0.08 with 1). The setting is per calling thread (the encode thread here)."""
    try:
        import numba

        if numba.get_num_threads() != 1:
            numba.set_num_threads(1)
    except ImportError:  # pymatting needs numba; nothing to tune without it
        pass


_NUMBA_LOCK = threading.Lock()
_numba_threadsafe: list[bool] = []  # [answer] once numba picked its threading layer


@contextlib.contextmanager
def _numba_guard():
    """Serialise pymatting's numba ``parallel`` loops across threads unless numba's threading layer is
    threadsafe: the encode stage decontaminates several frames at once, and numba's fallback layer
    (workqueue, used when neither TBB nor OpenMP is installed) aborts the process on concurrent launches.
    The layer is known only after the first launch, which therefore runs under the lock."""
    if _numba_threadsafe and _numba_threadsafe[0]:
        yield
        return
    with _NUMBA_LOCK:
        yield
        if not _numba_threadsafe:
            try:
                import numba

                _numba_threadsafe.append(numba.threading_layer() != "workqueue")
            except (ImportError, ValueError):  # no parallel launch happened (yet)
                pass


def _blur_fusion_cv(img: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Blur-fusion F of one region with OpenCV box filters: img (h, w, 3), a (h, w) float32 → (h, w, 3)."""
    import cv2

    a3 = a[..., None]
    f, b = img, img
    for r in BLUR_RADII:
        k = (2 * r + 1, 2 * r + 1)
        ba = cv2.blur(a, k, borderType=cv2.BORDER_REPLICATE)[..., None]
        bf = cv2.blur(f * a3, k, borderType=cv2.BORDER_REPLICATE) / (ba + _EPS)
        bb = cv2.blur(b * (1.0 - a3), k, borderType=cv2.BORDER_REPLICATE) / ((1.0 - ba) + _EPS)
        f = np.clip(bf + a3 * (img - a3 * bf - (1.0 - a3) * bb), 0.0, 1.0)
        b = bb
    return f.astype(np.float32, copy=False)


def _box_torch(x, r: int):
    """Box mean over (2r+1)² with edge replication, like cv2.blur(BORDER_REPLICATE), for any r (also larger
    than the image): x (N, C, h, w). Separable cumulative sums: O(1) per pixel whatever r is."""
    import torch
    import torch.nn.functional as F

    h, w = x.shape[-2:]
    k = 2 * r + 1
    ix = torch.arange(-r, w + r, device=x.device).clamp_(0, w - 1)
    c = F.pad(x.index_select(-1, ix).cumsum(dim=-1), (1, 0))
    x = (c[..., k:] - c[..., :-k]) / k
    iy = torch.arange(-r, h + r, device=x.device).clamp_(0, h - 1)
    c = F.pad(x.index_select(-2, iy).cumsum(dim=-2), (0, 0, 1, 0))
    return (c[..., k:, :] - c[..., :-k, :]) / k


def blur_fusion_torch(img, a):
    """Blur-fusion F in torch: img (N, 3, h, w), a (N, 1, h, w) float32 on any device → (N, 3, h, w)."""
    f, b = img, img
    for r in BLUR_RADII:
        ba = _box_torch(a, r)
        bf = _box_torch(f * a, r) / (ba + _EPS)
        bb = _box_torch(b * (1 - a), r) / ((1 - ba) + _EPS)
        f = (bf + a * (img - a * bf - (1 - a) * bb)).clamp(0.0, 1.0)
        b = bb
    return f


def foreground_blur(
    rgb: np.ndarray, alpha: np.ndarray, soft: np.ndarray | None = None, device: str | None = None
) -> np.ndarray:
    """Blur-fusion estimate on the band's bounding box (+ the first pass's radius of context); ``rgb``
    elsewhere and at solid pixels. ``device``: None for OpenCV, else a torch device ("cpu", "cuda")."""
    soft = soft_mask(alpha) if soft is None else soft
    out = np.array(rgb, dtype=np.float32, copy=True)
    box = bounding_box(soft, BLUR_RADII[0])
    if box is None:
        return out
    y0, y1, x0, x1 = box
    img = np.ascontiguousarray(rgb[y0:y1, x0:x1], dtype=np.float32)
    a = np.ascontiguousarray(alpha[y0:y1, x0:x1], dtype=np.float32)
    if device is None:
        fg = _blur_fusion_cv(img, a)
    else:
        import torch

        with torch.no_grad():
            ti = torch.from_numpy(img).to(device).permute(2, 0, 1)[None]
            ta = torch.from_numpy(a).to(device)[None, None]
            fg = blur_fusion_torch(ti, ta)[0].permute(1, 2, 0).float().cpu().numpy()
    keep = ~soft[y0:y1, x0:x1] & (a >= SOFT_HI)
    fg[keep] = img[keep]
    out[y0:y1, x0:x1] = fg
    return out
