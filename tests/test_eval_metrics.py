"""Metric definitions on tiny cases whose values are worked out by hand in the comments."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from vmatte.evaluate import metrics as M


def a(rows) -> np.ndarray:
    return np.array(rows, np.float32)


def test_sad_is_sum_over_region_in_thousands():
    pred = a([[0.0, 1.0], [0.5, 0.25]])
    gt = a([[0.0, 0.0], [0.0, 0.0]])
    # |diff| = 0 + 1 + 0.5 + 0.25 = 1.75 → 1.75 / 1000
    assert M.sad(pred, gt) == pytest.approx(0.00175)
    region = np.array([[False, True], [False, True]])
    # 1 + 0.25 = 1.25
    assert M.sad(pred, gt, region) == pytest.approx(0.00125)


def test_mse_is_mean_over_region_times_1000():
    pred = a([[0.0, 1.0], [0.5, 0.25]])
    gt = np.zeros((2, 2), np.float32)
    # squares 0, 1, 0.25, 0.0625 → mean 1.3125 / 4 = 0.328125 → ×1000
    assert M.mse(pred, gt) == pytest.approx(328.125)
    region = np.array([[False, True], [True, False]])
    # (1 + 0.25) / 2 = 0.625 → 625
    assert M.mse(pred, gt, region) == pytest.approx(625.0)
    assert M.mse(pred, gt, np.zeros((2, 2), bool)) == 0.0


def test_dtssd_hand_case_and_bias_invariance():
    gt0 = a([[0.0, 0.0], [1.0, 1.0]])
    gt1 = a([[0.0, 0.5], [1.0, 1.0]])  # dg/dt = [[0, .5], [0, 0]]
    p0 = a([[0.1, 0.0], [1.0, 1.0]])
    p1 = a([[0.1, 0.0], [0.8, 1.0]])  # dp/dt = [[0, 0], [-.2, 0]]
    # (dp - dg)² = [[0, .25], [.04, 0]] → mean .29 / 4 = .0725 → sqrt = .269258 → ×100
    assert M.dtssd(p1, p0, gt1, gt0) == pytest.approx(100 * np.sqrt(0.0725))
    # over a region: mean over the 2 selected pixels (.25 + .04) / 2 = .145
    region = np.array([[False, True], [True, False]])
    assert M.dtssd(p1, p0, gt1, gt0, region) == pytest.approx(100 * np.sqrt(0.145))
    # a constant bias is not flicker: the temporal derivative is unchanged
    assert M.dtssd(gt1 + 0.1, gt0 + 0.1, gt1, gt0) == pytest.approx(0.0, abs=1e-5)


def test_messddt_zero_flow_hand_case():
    gt0 = np.zeros((2, 2), np.float32)
    gt1 = np.zeros((2, 2), np.float32)
    p0 = a([[0.2, 0.0], [0.0, 0.0]])  # e0² = [[.04, 0], [0, 0]]
    p1 = a([[0.0, 0.3], [0.0, 0.0]])  # e1² = [[0, .09], [0, 0]]
    # |e1² - e0²| = [[.04, .09], [0, 0]] → mean .13 / 4 = .0325 → ×1000
    flow = np.zeros((2, 2, 2), np.float32)
    assert M.messddt(p1, p0, gt1, gt0, flow=flow) == pytest.approx(32.5)


def test_messddt_follows_the_motion():
    # an error blob that moves 1 px right with the content is not temporal inconsistency once compensated
    gt = np.zeros((5, 6), np.float32)
    p0 = gt.copy()
    p0[2, 2] = 0.5
    p1 = gt.copy()
    p1[2, 3] = 0.5
    flow = np.zeros((5, 6, 2), np.float32)
    flow[..., 0] = -1.0  # frame t pixel x came from x - 1 in frame t-1
    assert M.messddt(p1, p0, gt, gt, flow=flow) == pytest.approx(0.0, abs=1e-6)
    # uncompensated it is: |.25 - 0| at (2,3) and |0 - .25| at (2,2) → .5 / 30 px → ×1000
    assert M.messddt(p1, p0, gt, gt, flow=np.zeros_like(flow)) == pytest.approx(1000 * 0.5 / 30)


def _reference_grad(img: np.ndarray, sigma: float = 1.4) -> np.ndarray:
    """Independent slow re-statement of the DIM gradient: mat2gray, 9x9 filters, replicate border."""
    g = img.astype(np.float64)
    g = (g - g.min()) / (g.max() - g.min()) if g.max() > g.min() else np.zeros_like(g)
    half = 4  # ceil(1.4 * sqrt(-2 ln(sqrt(2π)·1.4·0.01))) = ceil(3.62) = 4 → 9x9
    r = np.arange(-half, half + 1)
    gauss = np.exp(-(r**2) / (2 * sigma**2)) / (sigma * np.sqrt(2 * np.pi))
    dgauss = -r * gauss / sigma**2
    fx = np.outer(gauss, dgauss)
    fx /= np.sqrt((fx**2).sum())
    fy = fx.T
    pad = np.pad(g, half, mode="edge")
    h, w = g.shape
    gx = np.zeros_like(g)
    gy = np.zeros_like(g)
    for y in range(h):
        for x in range(w):
            win = pad[y : y + 2 * half + 1, x : x + 2 * half + 1]
            gx[y, x] = (win * fx).sum()  # correlation, like cv2.filter2D
            gy[y, x] = (win * fy).sum()
    return np.sqrt(gx**2 + gy**2)


def test_grad_filter_size_and_reference():
    fx, fy = M._gauss_filters(1.4)
    assert fx.shape == (9, 9) and np.allclose(fy, fx.T)
    assert np.sqrt((fx**2).sum()) == pytest.approx(1.0)
    pred = np.zeros((5, 6), np.float32)
    pred[:, 3:] = 1.0  # a vertical step edge
    gt = np.zeros((5, 6), np.float32)
    gt[:, 2:] = 0.5  # the same edge one px left, half height (min-max normalisation makes it 1)
    expected = ((_reference_grad(pred) - _reference_grad(gt)) ** 2).sum() / 1000
    assert M.grad(pred, gt) == pytest.approx(expected, rel=1e-9)
    assert expected > 0
    assert M.grad(pred, pred) == 0.0
    # constant images have no gradient after min-max normalisation, whatever their value
    assert M.grad(np.full((4, 4), 0.3, np.float32), np.zeros((4, 4), np.float32)) == 0.0


def test_conn_hand_case():
    gt = a([[1.0, 1.0, 1.0]])
    pred = a([[1.0, 1.0, 0.0]])
    # intersection at every threshold = {0, 1}: pixel 2 drops out at τ = 0.1 → l = 0; pixels 0, 1 keep l = 1.
    # φ(g) = 1 - (g - l)·[g - l ≥ .15] = [1, 1, 0]; φ(p) = [1, 1, 1] → Σ|Δφ| = 1 → /1000
    assert M.conn(pred, gt) == pytest.approx(0.001)
    pp, gp = M.connectivity_phi(pred, gt)
    assert np.allclose(gp, [[1, 1, 0]]) and np.allclose(pp, [[1, 1, 1]])
    assert M.conn(gt, gt) == 0.0
    # only the region counts
    assert M.conn(pred, gt, np.array([[True, True, False]])) == 0.0


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError):
        M.sad(np.zeros((2, 2)), np.zeros((2, 3)))


def test_temporal_and_evaluate_do_not_import_torch():
    code = (
        "import sys; import vmatte.temporal.smooth, vmatte.temporal.scenecut, vmatte.evaluate.metrics, "
        "vmatte.evaluate.score, vmatte.cli.eval; print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
