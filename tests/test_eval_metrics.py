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
        "import sys; import vmatte.temporal.smooth, vmatte.motion.scenecut, vmatte.evaluate.metrics, "
        "vmatte.evaluate.score, vmatte.cli.eval; print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_conn_does_not_depend_on_input_dtype():
    # pred 153/255 = 0.6 exactly. With exact thresholds pixel 0 stays in the main blob up to τ = 0.6 (l = 0.6):
    # φ(g) = 1 - (1 - .6) = .6, φ(p) = 1 (.6 - .6 < .15) → Σ|Δφ| = .4. np.arange's 0.6000000000000001 would drop
    # it at 0.6 in float64 only (l = .5: φ(g) = .5, φ(p) = 1 → .5).
    gt = np.array([[1.0, 1.0]])
    pred64 = np.array([[153 / 255, 1.0]], np.float64)
    pred32 = pred64.astype(np.float32)
    assert M.conn(pred64, gt) == pytest.approx(0.0004, abs=1e-12)
    assert M.conn(pred32, gt.astype(np.float32)) == pytest.approx(0.0004, abs=1e-12)
    # every 8-bit value gives the same Conn in both dtypes
    rng = np.random.default_rng(1)
    g8 = rng.integers(0, 256, (24, 24)).astype(np.float64) / 255
    p8 = rng.integers(0, 256, (24, 24)).astype(np.float64) / 255
    g8[::2, ::3] = p8[1::2, ::4] = 153 / 255  # on the 0.6 threshold
    # equal up to float32 rounding of the alpha values themselves (the thresholds decide identically)
    assert M.conn(p8, g8) == pytest.approx(M.conn(p8.astype(np.float32), g8.astype(np.float32)), rel=1e-6)


def test_jaccard_and_boundary_f_hand_cases():
    # 10x10: diagonal 14.1 px → tolerance ceil(0.113) = 1 px (a 3x3 cross); GT a 4x4 block rows 2-5, cols 2-5
    assert M.boundary_tolerance_px((10, 10)) == 1
    assert M.boundary_tolerance_px((480, 854)) == 8  # ceil(0.008 * 979.7) = ceil(7.84)
    gt = np.zeros((10, 10))
    gt[2:6, 2:6] = 1
    # seg2bmap marks pixels differing from their right / lower / lower-right neighbour: the ring of the 5x5
    # square rows 1-5, cols 1-5 (16 px)
    ring = np.zeros((10, 10), bool)
    ring[1:6, 1:6] = True
    ring[2:5, 2:5] = False
    assert (M.boundary_map(gt > 0) == ring).all()
    one = np.roll(gt, 1, axis=1)  # 1 px right: every boundary pixel is within 1 px → P = R = 1
    assert M.boundary_f(one, gt) == 1.0
    assert M.jaccard(one, gt) == pytest.approx(12 / 20)  # 4x3 overlap, union 16 + 16 - 12 = 20
    two = np.roll(gt, 2, axis=1)  # 2 px right: its ring is rows 1-5, cols 3-7
    # matched pred boundary px: top row cols 3-6 (4), bottom row cols 3-6 (4), left column rows 2 and 4 (next to
    # GT's top/bottom rows), right column none → 10 / 16; by symmetry recall 10 / 16 → F = .625
    assert M.boundary_f(two, gt) == pytest.approx(0.625)
    assert M.jaccard(two, gt) == pytest.approx(8 / 24)
    empty = np.zeros((10, 10))
    assert M.boundary_f(empty, empty) == 1.0 and M.jaccard(empty, empty) == 1.0
    assert M.boundary_f(empty, gt) == 0.0 and M.boundary_f(gt, empty) == 0.0
    # soft predictions are binarised at 0.5
    assert M.jaccard(gt * 0.5, gt) == 1.0 and M.jaccard(gt * 0.49, gt) == 0.0


def test_unknown_region_scores_force_the_known_values(tmp_path):
    """mmagic protocol: Grad/Conn over the unknown band use the prediction with known pixels set to the trimap's
    values. 1x4 hand case for Conn: gt = 1 1 1 1, pred = .9 0 1 1, trimap = unknown fg fg fg.
    Raw: pixel 0 is cut off from the main blob {2, 3} at τ = .1 → l = 0: φ(g) = 1 - 1 = 0, φ(p) = 1 - .9 = .1
    → |Δ| = .1. Forced (pred = .9 1 1 1): pixel 0 joins the blob up to τ = .9 → l = .9: g - l = .1 and p - l = 0
    are both under DIM's .15 → φ(g) = φ(p) = 1 → |Δ| = 0."""
    import cv2

    from vmatte.evaluate.score import evaluate

    gt = np.ones((1, 4))
    pred = np.array([[0.9, 0.0, 1.0, 1.0]])
    region = np.array([[True, False, False, False]])
    assert M.conn(pred, gt, region) == pytest.approx(0.0001)
    forced = M.force_known(pred, np.zeros_like(region), ~region)
    assert M.conn(forced, gt, region) == 0.0
    # end to end through evaluate(), 8-bit files (.9 → 230/255)
    for name, img in (("pred", pred), ("gt", gt), ("tri", np.array([[0.5, 1.0, 1.0, 1.0]]))):
        (tmp_path / name).mkdir()
        cv2.imwrite(str(tmp_path / name / "0000.png"), np.round(img * 255).astype(np.uint8))
    r = evaluate(tmp_path / "pred", tmp_path / "gt", tmp_path / "tri")
    row = r["per_frame"][0]
    p8 = np.round(pred * 255) / 255
    assert row["Conn_unknown"] == 0.0
    assert row["Conn"] == pytest.approx((1 - p8[0, 0] + 1.0) / 1000)  # whole frame stays raw: pixel 1 adds 1
    # Grad over the band: the forced prediction is the ground truth's neighbourhood, not the raw one's
    assert row["Grad_unknown"] == pytest.approx(
        M.grad(M.force_known(p8, np.zeros_like(region), ~region), gt, region)
    )
    assert row["Grad_unknown"] != pytest.approx(M.grad(p8, gt, region))


def test_clip_dtssd_divides_by_frame_count():
    from vmatte.evaluate.score import summarise

    # RVM appends 0 for frame 0 and averages all N frames; TCVOM sets the last frame to 0 and does the same
    rows = [{"frame": 0, "dtSSD": None, "SAD": 1.0}, {"frame": 1, "dtSSD": 3.0, "SAD": 2.0}]
    rows.append({"frame": 2, "dtSSD": 6.0, "SAD": 3.0})
    clip = summarise(rows)
    assert clip["dtSSD"] == pytest.approx(9.0 / 3)  # not 9 / 2
    assert clip["SAD"] == pytest.approx(2.0)
