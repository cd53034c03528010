"""Alpha-matte error metrics, each tied to a named reference implementation (or stating how it differs).

All inputs are (H, W) arrays of alpha in [0, 1] (8-bit mattes divided by 255), any float dtype: values are
converted to float64 first, so results do not depend on the input dtype. ``region`` is an optional (H, W) bool
mask (the trimap's unknown band); None means the whole frame.

| metric  | definition (over the region)                                     | reported as | matches exactly |
|---------|------------------------------------------------------------------|-------------|-----------------|
| SAD     | Σ |p − g|                                                         | / 1000      | DIM MATLAB ``compute_sad_loss`` |
| MSE     | mean (p − g)² (divided by the region's pixel count)               | × 1000      | DIM MATLAB ``compute_mse_loss`` (× 1000) |
| Grad    | Σ (|∇p| − |∇g|)², 9x9 Gaussian-derivative filters (σ 1.4), each image min-max normalised first | / 1000 | DIM MATLAB ``compute_gradient_loss``; RVM ``MetricGRAD`` |
| Conn    | Σ |φ(p) − φ(g)|, φ from the largest 4-connected component of {p ≥ τ} ∩ {g ≥ τ}, τ = 0.1 … 1, differences < 0.15 ignored | / 1000 | DIM MATLAB ``compute_connectivity_error`` |
| dtSSD   | sqrt( mean ((p_t − p_{t−1}) − (g_t − g_{t−1}))² ), whole frame    | × 100       | RVM ``MetricDTSSD`` (evaluate_lr.py) |
| MESSDdt | mean |e_t² − warp(e_{t−1})²|, e = p − g                          | × 1000      | none: see below |
| J       | |P ∩ G| / |P ∪ G|, P = {p ≥ 0.5}, G = {g ≥ 0.5} (1 when both empty) | fraction  | DAVIS 2017 ``db_eval_iou`` |
| F       | boundary F-measure, tolerance ceil(0.008 · image diagonal) px     | fraction    | DAVIS 2017 ``db_eval_boundary`` (``bound_th`` 0.008) |

How the others differ, precisely (people compare these numbers with papers):

- **Conn thresholds.** τ are the exact decimals k/10 (as MATLAB's ``0:0.1:1`` gives them), compared in float64
  with a 1e-6 allowance, so a matte stored as 8 or 16 bits gives the same Conn in float32 and float64. RVM's
  ``MetricCONN`` and mmeval build τ with ``np.arange(0, 1.1, 0.1)``, whose 0.6 is 0.6000000000000001: in float64
  an alpha of 153/255 fails ``>= 0.6`` there and passes here (in float32 it passes in both).
- **Unknown-region scores** (``*_unknown`` in :mod:`vmatte.evaluate.score`): the prediction is first forced to
  the trimap's known values (0 in background, 1 in foreground), as mmagic/mmeval require (their
  ``_assert_masked`` refuses any other prediction); this changes Grad (its filters reach across the band edge, and the
  min-max normalisation) and Conn (connectivity through known pixels), not SAD or MSE.
- **dtSSD.** Per frame exactly RVM's. Clip value: Σ over frames 1..N−1 divided by N, as RVM (frame 0 appended
  as 0, then averaged) and TCVOM (last frame 0, averaged over N). Over a region (``dtSSD_unknown``) ours is
  the per-pixel mean over the union of both frames' unknown bands, × 100. That is neither TCVOM's
  (``calc_metric.py``: sqrt of the *sum* over the current frame's band, next frame as the neighbour, no
  scale) nor MaGGIe's (``metric.py``: per instance *one* square root of the sum over all frame pairs and
  the previous frame's band, × 0.1, averaged over instances: a clip value, not a mean of frame values).
- **MESSDdt** was introduced by Erofeev et al. (2015) and used by TCVOM (VideoMatting108); RVM has no such
  metric. TCVOM's per-frame value is the *sum* over the current frame's unknown band (pixels with valid flow)
  of |e_t² − warp(e_{t+1})²| with the dataset's precomputed flow to the *next* frame, not scaled; MaGGIe's
  sums |e_t²·m_t − warp(e_{t+1}²·m_{t+1})| over all frame pairs and pixels and divides by the bands' pixel
  count (+1 per pair), × 10000, with forward Farneback flow on the ground truth rounded to whole pixels. Ours is the
  per-pixel *mean* over the region, × 1000, with the flow to the previous frame estimated on the ground-truth
  alpha (OpenCV DIS, medium preset) unless the caller passes one; points warped outside the frame are skipped.
  Compare MESSDdt only with numbers computed by this module.
- SAD, Grad and Conn are sums, so they grow with resolution and region size; MSE, dtSSD, MESSDdt, J and F do
  not. Grad min-max normalises prediction and truth separately, so a constant image has zero gradient.
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


# allowance on the Conn threshold tests: far below the 1/65535 step of a 16-bit matte (so 8- and 16-bit values
# compare as exact decimals would), far above float32 rounding (so the input dtype does not matter)
_CONN_TOL = 1e-6


def connectivity_phi(pred: np.ndarray, gt: np.ndarray, step: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """The DIM connectivity degrees φ(pred), φ(gt), each (H, W) float64 in [0, 1].

    Thresholds are k·step for k = 0 … round(1/step), computed as k / n (exact decimals, like MATLAB's
    ``0:0.1:1``), not by accumulating a float step."""
    import cv2

    p, g = _f64(pred), _f64(gt)
    n = round(1.0 / step)
    steps = np.arange(n + 1, dtype=np.float64) / n
    # l(x): the highest threshold at which x is still 4-connected to the main blob of both mattes
    round_down = -np.ones_like(g)
    for i in range(1, len(steps)):
        tau = steps[i] - _CONN_TOL
        inter = ((g >= tau) & (p >= tau)).astype(np.uint8)
        _, labels, stats, _ = cv2.connectedComponentsWithStats(inter, connectivity=4)
        sizes = stats[1:, cv2.CC_STAT_AREA]
        omega = np.zeros(g.shape, bool)
        if sizes.size:
            omega = labels == int(np.argmax(sizes)) + 1
        round_down[(round_down == -1) & ~omega] = steps[i - 1]
    round_down[round_down == -1] = 1.0
    gd, pd = g - round_down, p - round_down
    # differences below 0.15 count as connected (DIM's tolerance)
    return 1.0 - pd * (pd >= 0.15 - _CONN_TOL), 1.0 - gd * (gd >= 0.15 - _CONN_TOL)


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


def force_known(pred: np.ndarray, bg: np.ndarray, fg: np.ndarray) -> np.ndarray:
    """(H, W) float64 prediction with the trimap's known pixels set to their known values: 0 where ``bg``,
    1 where ``fg`` (both (H, W) bool). mmagic/mmeval score unknown-region Grad and Conn on this."""
    out = _f64(pred).copy()
    out[bg] = 0.0
    out[fg] = 1.0
    return out


def binary(alpha: np.ndarray) -> np.ndarray:
    """(H, W) bool mask of a matte: alpha ≥ 0.5 (for 8-bit mattes: value ≥ 128)."""
    return _f64(alpha) >= 0.5


def jaccard(pred: np.ndarray, gt: np.ndarray) -> float:
    """Region similarity J (DAVIS ``db_eval_iou``): |P ∩ G| / |P ∪ G| of the binarised mattes, 1 when both are
    empty. A fraction in [0, 1]."""
    _check(pred, gt, None)
    p, g = binary(pred), binary(gt)
    union = int((p | g).sum())
    return float((p & g).sum() / union) if union else 1.0


def boundary_map(mask: np.ndarray) -> np.ndarray:
    """(H, W) bool one-pixel boundary of a bool mask, as the DAVIS toolkit draws it (Martin's ``seg2bmap``): a
    pixel is on the boundary when it differs from its right, lower or lower-right neighbour; the last row
    compares only to the right, the last column only downwards, the bottom-right pixel never counts."""
    m = np.asarray(mask, bool)
    right = np.zeros_like(m)
    down = np.zeros_like(m)
    diag = np.zeros_like(m)
    right[:, :-1] = m[:, 1:]
    down[:-1, :] = m[1:, :]
    diag[:-1, :-1] = m[1:, 1:]
    b = (m != right) | (m != down) | (m != diag)
    b[-1, :] = m[-1, :] != right[-1, :]
    b[:, -1] = m[:, -1] != down[:, -1]
    b[-1, -1] = False
    return b


def boundary_tolerance_px(shape: tuple[int, int], bound_th: float = 0.008) -> int:
    """DAVIS boundary tolerance in px: ``bound_th`` itself when ≥ 1, else ceil(bound_th · diagonal)
    (8 px at 854x480)."""
    if bound_th >= 1:
        return int(bound_th)
    return int(np.ceil(bound_th * np.hypot(*shape)))


def boundary_f(pred: np.ndarray, gt: np.ndarray, bound_th: float = 0.008) -> float:
    """Boundary F-measure (DAVIS ``db_eval_boundary``): boundary pixels of each binarised matte count as matched
    when the other's boundary lies within a disk of :func:`boundary_tolerance_px`; F = 2PR / (P + R). An
    empty boundary on one side only gives F = 0, on both sides F = 1. A fraction in [0, 1]."""
    import cv2

    _check(pred, gt, None)
    bp, bg = boundary_map(binary(pred)), boundary_map(binary(gt))
    r = boundary_tolerance_px(gt.shape, bound_th)
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    disk = (xx * xx + yy * yy <= r * r).astype(np.uint8)  # skimage.morphology.disk(r)
    near_p = cv2.dilate(bp.astype(np.uint8), disk).astype(bool)
    near_g = cv2.dilate(bg.astype(np.uint8), disk).astype(bool)
    n_p, n_g = int(bp.sum()), int(bg.sum())
    if n_p == 0 or n_g == 0:
        return 1.0 if n_p == n_g else 0.0
    precision = (bp & near_g).sum() / n_p
    recall = (bg & near_p).sum() / n_g
    return float(2 * precision * recall / (precision + recall)) if precision + recall > 0 else 0.0
