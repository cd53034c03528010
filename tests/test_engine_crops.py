"""The model only where the edge is: crop boxes, common batch sizes, and exact paste-back (vmatte.engine.crops),
and the ViTMatte engine's crop path against its whole-frame path on a synthetic band."""

from __future__ import annotations

import numpy as np
import pytest

from vmatte.engine.crops import band_box, common_boxes, crop_box, paste
from vmatte.frame import Frame


def _band_trimap(h=270, w=480, cy=120, cx=200, r=40, band=6) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    d = np.hypot(yy - cy, xx - cx)
    t = np.zeros((h, w), np.uint8)
    t[d < r] = 255
    t[np.abs(d - r) < band] = 128
    return t


def test_crop_box_holds_band_and_margin_and_rounds_to_32():
    tri = _band_trimap()
    band = band_box(tri, 0)
    box = crop_box(tri, margin=16, threshold=0.5)
    assert box is not None
    y0, y1, x0, x1 = box
    assert (y1 - y0) % 32 == 0 and (x1 - x0) % 32 == 0
    assert y0 <= band[0] - 16 and y1 >= band[1] + 16 and x0 <= band[2] - 16 and x1 >= band[3] + 16
    assert y0 >= 0 and y1 <= tri.shape[0] and x0 >= 0 and x1 <= tri.shape[1]
    # the whole frame when the crop would be too large, when off, or when there is no band
    assert crop_box(tri, margin=16, threshold=0.05) is None
    assert crop_box(tri, margin=16, threshold=0.0) is None
    assert crop_box(np.zeros((64, 64), np.uint8), margin=16, threshold=1.0) is None


def test_common_boxes_same_size_inside_frame_and_contain_originals():
    boxes = [(0, 64, 0, 96), (100, 260, 300, 480), (200, 232, 10, 42)]
    out = common_boxes(boxes, 270, 480)
    sizes = {(b[1] - b[0], b[3] - b[2]) for b in out}
    assert sizes == {(160, 180)}
    for (y0, y1, x0, x1), (a0, a1, b0, b1) in zip(boxes, out):
        assert a0 <= y0 and a1 >= y1 and b0 <= x0 and b1 >= x1
        assert a0 >= 0 and a1 <= 270 and b0 >= 0 and b1 <= 480


def test_paste_is_exact():
    tri = _band_trimap()
    box = crop_box(tri, margin=8, threshold=0.5)
    y0, y1, x0, x1 = box
    crop = np.random.default_rng(0).random((y1 - y0, x1 - x0)).astype(np.float32)
    out = paste(crop, box, tri)
    assert np.array_equal(out[y0:y1, x0:x1], crop)
    outside = np.ones(tri.shape, bool)
    outside[y0:y1, x0:x1] = False
    assert np.array_equal(out[outside], (tri[outside] == 255).astype(np.float32))


def _frames(n=4, h=270, w=480):
    rng = np.random.default_rng(1)
    out = []
    for i in range(n):
        tri = _band_trimap(h, w, cy=100 + 10 * i, cx=150 + 40 * i, r=30 + 5 * i)
        rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        out.append(Frame(i, i, None, rgb, trimap=tri))
    return out


@pytest.mark.parametrize("batch", [1, 3])
def test_vitmatte_crop_path_pastes_exactly(tiny_vitmatte_dir, batch):
    """With a pointwise model stand-in (alpha = red / 255: a pixel's answer does not depend on its context), the
    crop path's output equals the whole-frame path's bit for bit: boxes, batching and paste lose nothing."""
    pytest.importorskip("torch")
    from vmatte.engine.vitmatte import VitMatteEngine
    from vmatte.engine.weights import WeightsSource, load_model

    def pointwise(packed):
        return packed[..., 0].float() / 255.0

    results = {}
    source = WeightsSource("dir", str(tiny_vitmatte_dir), str(tiny_vitmatte_dir))
    for thr in (0.0, 0.5):
        # crop_margin is a built-in constant in runs (vmatte.engine.vitmatte.CROP_MARGIN): the constructor takes it
        eng = VitMatteEngine(
            load_model(source),
            device="cpu",
            precision="fp32",
            batch_size=batch,
            crop_threshold=thr,
            crop_margin=32,
        )
        eng._infer = pointwise
        out = []
        for f in _frames():
            out += eng.push(f)
        out += eng.flush()
        results[thr] = (out, eng.frames_cropped)
        eng.close()
    whole, cropped = results[0.0], results[0.5]
    assert whole[1] == 0 and cropped[1] == 4
    assert [f.index for f in cropped[0]] == [0, 1, 2, 3]
    for a, b in zip(whole[0], cropped[0]):
        assert np.array_equal(a.alpha, b.alpha)


def test_vitmatte_crop_agrees_with_whole_frame_on_band(tiny_vitmatte_dir):
    """The real (random-weight) model on crops vs whole frames: same shape, finite, and close on the band
    (context changes the answer a little; the figure is printed for the report)."""
    pytest.importorskip("torch")
    from vmatte.engine import EngineConfig, load_engine

    outs = {}
    for thr in (0.0, 0.5):
        eng = load_engine(
            EngineConfig(
                name="vitmatte",
                model=str(tiny_vitmatte_dir),
                device="cpu",
                precision="fp32",
                crop_threshold=thr,
            )
        )
        frames = _frames(2)
        out = []
        for f in frames:
            out += eng.push(f)
        outs[thr] = out + eng.flush()
        eng.close()
    for a, b, f in zip(outs[0.0], outs[0.5], _frames(2)):
        band = f.trimap == 128
        d = np.abs(a.alpha - b.alpha)
        assert np.isfinite(b.alpha).all()
        assert np.array_equal(d[~band], np.zeros_like(d[~band]))  # known pixels: the trimap, both ways
        assert d[band].mean() < 0.1, d[band].mean()
