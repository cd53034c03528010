"""Alpha-matte error metrics with the conventions of the papers people compare against.

All inputs are (H, W) float arrays of alpha in [0, 1] (8-bit mattes divided by 255). ``region`` is an optional
(H, W) bool mask (the trimap's unknown band); None means the whole frame. Reported units:

| metric  | definition (sum/mean over the region)                          | reported as            | source |
|---------|----------------------------------------------------------------|------------------------|--------|
| SAD     | Σ |p − g|                                                      | / 1000 ("SAD in k")    | DIM (Xu et al. 2017) evaluation code |
| MSE     | mean (p − g)²                                                  | × 1000                 | DIM: divided by the region's pixel count |
| Grad    | Σ (|∇p| − |∇g|)², Gaussian-derivative gradients, σ = 1.4, after min-max normalising each image | / 1000 | DIM / RVM ``MetricGRAD`` |
| Conn    | Σ |φ(p) − φ(g)|, φ from the largest 4-connected component of {p ≥ τ} ∩ {g ≥ τ}, τ step 0.1, differences < 0.15 ignored | / 1000 | DIM / RVM ``MetricCONN`` |
| dtSSD   | sqrt( mean ((p_t − p_{t−1}) − (g_t − g_{t−1}))² )              | × 100                  | RVM / VideoMatte240K ``MetricDTSSD`` (per-pixel mean, then root) |
| MESSDdt | mean | (p_t − g_t)² − (p_{t−1} − g_{t−1})²∘W |, W = warp along the motion t → t−1 | × 1000 | Erofeev et al. 2015 / TCVOM (VideoMatting108), per-pixel mean |

Notes that change numbers:
- SAD, Grad and Conn are *sums*, so they grow with resolution and region size; MSE, dtSSD and MESSDdt are
  per-pixel means, so they do not.
- Grad min-max normalises prediction and truth separately (MATLAB ``mat2gray`` in the DIM code, ``NORM_MINMAX``
  in RVM's port); a constant image therefore has zero gradient whatever its value.
- dtSSD over a region uses the union of the two frames' regions and divides by its pixel count (MaGGIe's
  trimap variant); over the whole frame by H·W exactly as RVM.
- MESSDdt needs motion; matte files alone carry none, so the flow is estimated on the ground-truth alpha
  (OpenCV DIS, medium preset) unless the caller passes one. Points warped outside the frame are skipped.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


def _f64(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def _check(pred: np.ndarray, gt: np.ndarray, region: np.ndarray | None) -> None:
    if pred.shape != gt.shape or pred.ndim != 2:
        raise ValueError(f"pred and gt must be the same (H, W) shape, got {pred.shape} and {gt.shape}")
    if region is not None and region.shape != gt.shape:
        raise ValueError(f"region must be {gt.shape}, got {region.shape}")


def sad(pred: np.ndarray, gt: np.ndarray, region: np.ndarray | None = None) -> float:
    """Sum of absolute differences over the region, / 1000."""
    _check(pred, gt, region)
    d = np.abs(_f64(pred) - _f64(gt))
    return float((d[region] if region is not None else d).sum() / 1000.0)


def mse(pred: np.ndarray, gt: np.ndarray, region: np.ndarray | None = None) -> float:
    """Mean squared error over the region's pixels, × 1000 (0 for an empty region)."""
    _check(pred, gt, region)
    d = (_f64(pred) - _f64(gt)) ** 2
    d = d[region] if region is not None else d.ravel()
    return float(d.mean() * 1000.0) if d.size else 0.0


@lru_cache(maxsize=4)
def _gauss_filters(sigma: float, epsilon: float = 1e-2) -> tuple[np.ndarray, np.ndarray]:
    """The DIM Gaussian-derivative filter pair (x, y), L2-normalised; 9x9 at sigma 1.4."""
    half = int(np.ceil(sigma * np.sqrt(-2.0 * np.log(np.sqrt(2.0 * np.pi) * sigma * epsilon))))
    r = np.arange(-half, half + 1, dtype=np.float64)

    def g(x):
        return np.exp(-(x**2) / (2.0 * sigma**2)) / (sigma * np.sqrt(2.0 * np.pi))

    # rows: Gaussian; columns: derivative of Gaussian → derivative along x
    fx = g(r)[:, None] * (-r * g(r) / sigma**2)[None, :]
    fx /= np.sqrt((fx**2).sum())
    return fx, fx.T.copy()


def gradient_magnitude(alpha: np.ndarray, sigma: float = 1.4) -> np.ndarray:
    """(H, W) float64 |∇alpha| with the DIM Gaussian-derivative filters after min-max normalisation."""
    import cv2

    a = _f64(alpha)
    lo, hi = float(a.min()), float(a.max())
    a = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
    fx, fy = _gauss_filters(float(sigma))
    gx = cv2.filter2D(a, cv2.CV_64F, fx, borderType=cv2.BORDER_REPLICATE)
    gy = cv2.filter2D(a, cv2.CV_64F, fy, borderType=cv2.BORDER_REPLICATE)
    return np.sqrt(gx**2 + gy**2)


def grad(pred: np.ndarray, gt: np.ndarray, region: np.ndarray | None = None, sigma: float = 1.4) -> float:
    """Gradient error Σ (|∇pred| − |∇gt|)² over the region, / 1000."""
    _check(pred, gt, region)
    d = (gradient_magnitude(pred, sigma) - gradient_magnitude(gt, sigma)) ** 2
    return float((d[region] if region is not None else d).sum() / 1000.0)


def connectivity_phi(pred: np.ndarray, gt: np.ndarray, step: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """The DIM connectivity degrees φ(pred), φ(gt), each (H, W) float64 in [0, 1]."""
    import cv2

    p, g = _f64(pred), _f64(gt)
    steps = np.arange(0.0, 1.0 + step, step)
    # l(x): the highest threshold at which x is still 4-connected to the main blob of both mattes
    round_down = -np.ones_like(g)
    for i in range(1, len(steps)):
        inter = ((g >= steps[i]) & (p >= steps[i])).astype(np.uint8)
        _, labels, stats, _ = cv2.connectedComponentsWithStats(inter, connectivity=4)
        sizes = stats[1:, cv2.CC_STAT_AREA]
        omega = np.zeros(g.shape, bool)
        if sizes.size:
            omega = labels == int(np.argmax(sizes)) + 1
        round_down[(round_down == -1) & ~omega] = steps[i - 1]
    round_down[round_down == -1] = 1.0
    gd, pd = g - round_down, p - round_down
    # differences below 0.15 count as connected (DIM's tolerance)
    return 1.0 - pd * (pd >= 0.15), 1.0 - gd * (gd >= 0.15)


def conn(pred: np.ndarray, gt: np.ndarray, region: np.ndarray | None = None, step: float = 0.1) -> float:
    """Connectivity error Σ |φ(pred) − φ(gt)| over the region, / 1000."""
    _check(pred, gt, region)
    pp, gp = connectivity_phi(pred, gt, step)
    d = np.abs(pp - gp)
    return float((d[region] if region is not None else d).sum() / 1000.0)


def dtssd(
    pred_t: np.ndarray,
    pred_tm1: np.ndarray,
    gt_t: np.ndarray,
    gt_tm1: np.ndarray,
    region: np.ndarray | None = None,
) -> float:
    """Temporal gradient error sqrt(mean over region of ((p_t − p_{t−1}) − (g_t − g_{t−1}))²), × 100.

    ``region``: bool mask (e.g. the union of both frames' unknown bands); None = whole frame (RVM).
    """
    _check(pred_t, gt_t, region)
    _check(pred_tm1, gt_tm1, region)
    d = ((_f64(pred_t) - _f64(pred_tm1)) - (_f64(gt_t) - _f64(gt_tm1))) ** 2
    d = d[region] if region is not None else d.ravel()
    return float(np.sqrt(d.mean()) * 100.0) if d.size else 0.0


def alpha_flow(gt_t: np.ndarray, gt_tm1: np.ndarray) -> np.ndarray:
    """(H, W, 2) float32 flow t → t−1 estimated on the ground-truth alpha (DIS medium), px."""
    import cv2

    a = np.clip(_f64(gt_t) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    b = np.clip(_f64(gt_tm1) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if min(a.shape) < 16:  # too small for DIS patches: assume no motion
        return np.zeros((*a.shape, 2), np.float32)
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return dis.calc(a, b, None)


def messddt(
    pred_t: np.ndarray,
    pred_tm1: np.ndarray,
    gt_t: np.ndarray,
    gt_tm1: np.ndarray,
    region: np.ndarray | None = None,
    flow: np.ndarray | None = None,
) -> float:
    """Motion-compensated temporal error: mean over region of |e_t² − (e_{t−1} warped)²|, × 1000.

    e = pred − gt. ``flow``: (H, W, 2) t → t−1 in px (x, y), so frame t−1 is sampled at p + flow(p);
    None: estimated on the ground truth with :func:`alpha_flow`; zeros: no motion compensation.
    Points whose warped position is outside frame t−1 are excluded.
    """
    import cv2

    _check(pred_t, gt_t, region)
    _check(pred_tm1, gt_tm1, region)
    if flow is None:
        flow = alpha_flow(gt_t, gt_tm1)
    h, w = gt_t.shape
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    mx = gx + flow[..., 0].astype(np.float32)
    my = gy + flow[..., 1].astype(np.float32)
    e_tm1 = (_f64(pred_tm1) - _f64(gt_tm1)).astype(np.float32)
    warped = cv2.remap(e_tm1, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).astype(np.float64)
    e_t = _f64(pred_t) - _f64(gt_t)
    d = np.abs(e_t**2 - warped**2)
    valid = (mx >= 0) & (mx <= w - 1) & (my >= 0) & (my <= h - 1)
    if region is not None:
        valid &= region
    d = d[valid]
    return float(d.mean() * 1000.0) if d.size else 0.0
