"""The temporal smoother's torch path (vmatte.temporal.torch_path), forced onto the CPU: the samplers against
cv2.remap / cv2.blur, the smoother against its numpy path, a run through the pipeline, and that nothing picks
the torch path unless the engine runs on CUDA.

Tolerances (measured, see torch_path): bilinear samples bit-exact, bicubic 1e-6; smoothed alpha within
PARITY_TOLERANCE (1e-6), with snap_saturated on (the default) and off: the snap step counts samples within
SATURATED_EPS (1e-5) of 0 or 1, so the two samplers' last-bit differences no longer fall on either side of it
(with an exact test, 0.4 % of band pixels differed, by up to 0.016; 0.054 on the 1080p bench clip).
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from test_temporal_smooth import noisy_clip, run  # noqa: E402

from vmatte.temporal.smooth import TemporalSmoother  # noqa: E402
from vmatte.temporal.torch_path import PARITY_TOLERANCE, Plane, blurred_guide  # noqa: E402
from vmatte.temporal.tuning import Tuning  # noqa: E402
from vmatte.testing import Scene  # noqa: E402

W, H = 128, 80
CPU = torch.device("cpu")


def _points(rng, w: int, h: int, n: int = 20000):
    # also up to 5 px outside the frame: border replicate must match there too
    x = (rng.random(n, dtype=np.float32) * (w + 10) - 5).astype(np.float32)
    y = (rng.random(n, dtype=np.float32) * (h + 10) - 5).astype(np.float32)
    return x, y, torch.from_numpy(x), torch.from_numpy(y)


def test_samplers_match_opencv():
    from vmatte.temporal.sampling import sample_points

    rng = np.random.default_rng(1)
    x, y, tx, ty = _points(rng, 60, 50)
    gray = rng.random((50, 60), np.float32)
    flow = rng.normal(0, 3, (50, 60, 2)).astype(np.float32)
    rgb = rng.integers(0, 256, (50, 60, 3), np.uint8)
    # bilinear: 1-channel float, 2-channel flow (remap's 1/32-px grid), 3-channel uint8 (rounded): bit-exact
    assert np.array_equal(Plane.upload(gray, CPU).bilinear(tx, ty).numpy()[:, 0], sample_points(gray, x, y))
    assert np.array_equal(Plane.upload(flow, CPU).bilinear(tx, ty).numpy(), sample_points(flow, x, y))
    assert np.array_equal(Plane.upload(rgb, CPU).bilinear(tx, ty).numpy(), sample_points(rgb, x, y))
    cubic = Plane.upload(gray, CPU).bicubic(tx, ty).numpy()
    assert np.abs(cubic - sample_points(gray, x, y, cubic=True)).max() <= 1e-6
    big = rng.integers(0, 256, (270, 480, 3), np.uint8)
    guide = blurred_guide(big, CPU).data.numpy().reshape(270, 480, 3)
    assert np.array_equal(guide, cv2.blur(big, (3, 3)))


def _compare(frames, tuning=None, flow=None):
    """(numpy outputs, torch outputs, numpy stats, torch stats, |diff| over the band pixels)."""
    a_sm = TemporalSmoother(tuning=tuning, flow=flow)
    b_sm = TemporalSmoother(tuning=tuning, flow=flow, device="cpu")
    a, b = run(a_sm, frames), run(b_sm, frames)
    assert [f.index for f in a] == [f.index for f in b]
    for x, y in zip(a, b):  # outside the band nothing moves, in either path
        out = x.trimap != 128
        assert np.array_equal(x.alpha[out], y.alpha[out])
    d = np.concatenate([np.abs(x.alpha - y.alpha)[x.trimap == 128] for x, y in zip(a, b)])
    return a, b, a_sm.stats(), b_sm.stats(), d


def _moving_clip_with_cut():
    # a moving soft edge (speed 2 px/frame, with occlusion/disocclusion of the background at the edge),
    # then a scene cut to another, colour-inverted scene: weights (time, fb check, colour, range) all act
    a_frames, _ = noisy_clip(Scene(width=W, height=H, frames=9, speed=2.0, seed=3), seed=3)
    b_frames, _ = noisy_clip(
        Scene(width=W, height=H, frames=7, speed=3.0, seed=4), seed=4, invert=True, start=9
    )
    return a_frames + b_frames


def test_torch_path_matches_numpy_within_tolerance():
    frames = _moving_clip_with_cut()
    raw = {f.index: f.alpha for f in frames}
    # without the snap-to-0/1 step the two paths agree to PARITY_TOLERANCE everywhere
    a, _b, sa, sb, d = _compare(frames, tuning=Tuning(snap_saturated=False))
    assert d.max() <= PARITY_TOLERANCE, d.max()
    assert sa["scene_cuts"] == sb["scene_cuts"] == 1
    assert sb["device"] == "torch:cpu" and sa["device"] == "numpy"
    assert sb["mean_neighbour_weight"] == pytest.approx(sa["mean_neighbour_weight"], abs=1e-4)
    # the smoother did work (so the comparison is not of two pass-throughs)
    assert sum(float(np.abs(f.alpha - raw[f.index]).mean()) for f in a) > 1e-3
    # the shipped tuning (snap_saturated on): the same tolerance (measured max 3.0e-7)
    _a, _b, _sa, _sb, d = _compare(frames)
    assert d.max() <= PARITY_TOLERANCE, d.max()


def test_torch_path_with_shared_flows_matches_numpy():
    # the bench clip: every frame carries the run's MotionStore (flows reused, not computed here), 2x working
    # resolution scale (work_size 480 on a 960-px frame), textured moving ellipse over a panning background
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    from bench_smooth_cost import prime, synthetic_clip

    frames = synthetic_clip(960, 540, 8, 6)
    store = frames[0].motion.store
    tn = Tuning(snap_saturated=False)
    sms = [TemporalSmoother(tuning=tn), TemporalSmoother(tuning=tn, device="cpu")]
    outs: list[list] = [[], []]
    for t, f in enumerate(frames):
        prime(store, frames, t)  # as alpha feedback would, just before the frame reaches the smoother
        for sm, out in zip(sms, outs):
            out.extend(sm.push(f))
    for sm, out in zip(sms, outs):
        out.extend(sm.flush())
    sa, sb = (sm.stats() for sm in sms)
    assert sa["flows_reused"] > 0 and sb["flows_reused"] == sa["flows_reused"]
    d = max(float(np.abs(x.alpha - y.alpha).max()) for x, y in zip(*outs))
    assert d <= PARITY_TOLERANCE, d


def test_default_stays_on_numpy():
    from vmatte.config import RunConfig
    from vmatte.engine.base import FakeEngine
    from vmatte.engine.cuda import post_device
    from vmatte.pipeline.runner import _smooth_device

    assert TemporalSmoother().stats()["device"] == "numpy"
    cfg = RunConfig()
    assert cfg.pipeline.post_device == "auto"
    assert _smooth_device(cfg, FakeEngine()) is None  # no torch device at all (classic, fake)

    class OnCpu:
        device = torch.device("cpu")

    class OnCuda:
        device = torch.device("cuda", 1)

    assert _smooth_device(cfg, OnCpu()) is None  # a CPU engine: the numpy path is the faster one
    assert _smooth_device(cfg, OnCuda()) == "cuda:1"
    assert post_device("cpu", "cuda:0") is None
    # median / mode combines have no torch form: numpy even when a device is given
    assert TemporalSmoother(tuning=Tuning(combine="median"), device="cpu").stats()["device"] == "numpy"


@pytest.mark.parametrize("forced", [False, True])
def test_pipeline_rgba_with_torch_smoothing(tmp_path, clip_path, masks_dir, monkeypatch, forced):
    """Through the whole run (FakeEngine, decontaminated 16-bit PNG RGBA): the torch smoothing path gives the
    numpy path's RGBA within the tolerance above; decontamination itself stays the CPU's either way."""
    import vmatte
    from vmatte.engine.base import FakeEngine
    from vmatte.io.config import OutputConfig
    from vmatte.pipeline import runner

    def render(name: str, device):
        monkeypatch.setattr(runner, "_smooth_device", lambda config, engine: device)
        out = tmp_path / name
        cfg = vmatte.RunConfig(
            input=str(clip_path),
            masks=str(masks_dir),
            outputs=(OutputConfig(path=str(out) + "/", format="png", bit_depth=16, decontaminate=True),),
        )
        rep = vmatte.run(cfg, engine=FakeEngine(batch_size=2))
        files = sorted(out.glob("*.png"))
        return rep, [cv2.imread(str(f), cv2.IMREAD_UNCHANGED).astype(np.float64) / 65535.0 for f in files]

    rep_a, a = render("numpy", None)
    rep_b, b = render("torch", "cpu" if forced else None)
    assert rep_a.smoothing["device"] == "numpy"
    assert rep_b.smoothing["device"] == ("torch:cpu" if forced else "numpy")
    assert len(a) == len(b) == 12
    d = np.stack([np.abs(x - y) for x, y in zip(a, b)])
    if not forced:
        assert d.max() == 0.0  # the numpy path is deterministic
        return
    # RGBA (alpha and the decontaminated colour that follows it): the same to 16-bit precision (the alpha
    # difference is below half a 16-bit step, the colour estimate follows alpha)
    assert (d <= 2 / 65535).mean() >= 0.9999, (d > 2 / 65535).mean()
    assert d.max() <= 0.01, d.max()
