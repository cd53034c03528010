"""CUDA behaviour that the CPU cannot show: streams overlap, pinned buffers recycle, out-of-memory back-off under a
memory cap loses no frame, 4K under a 24 GB cap, bf16 against fp32, the torch decontamination, crops and the
temporal smoother's torch path on the device. All marked ``gpu``: skipped without CUDA unless VMATTE_REQUIRE_GPU=1 (then they fail).

Rehearsal on a machine without CUDA: ``VMATTE_GPU_TESTS_ON_CPU=1 pytest -m gpu tests/test_gpu.py`` runs each test
on the CPU, where the parts that need a GPU (timing overlap, pinned memory, memory caps) are skipped inside the
test, so the device run is not where the tests' own bugs are found (scripts/gpu_check.sh, DRY_RUN=1).
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from engine_helpers import make_vitmatte  # noqa: E402

from vmatte.frame import Frame  # noqa: E402
from vmatte.testing import Scene  # noqa: E402

pytestmark = pytest.mark.gpu
ON_CPU = os.environ.get("VMATTE_GPU_TESTS_ON_CPU") == "1" and not torch.cuda.is_available()
DEVICE = "cpu" if ON_CPU else "cuda"


def _needs_cuda(what: str) -> None:
    if ON_CPU:
        pytest.skip(f"rehearsal on the CPU: {what} needs CUDA")


def _frames(w: int, h: int, n: int, band: int = 9) -> list[Frame]:
    import cv2

    if ON_CPU:  # the rehearsal checks the logic, at sizes the CPU runs in seconds
        w, h = max(64, w // 6), max(64, h // 6)
    sc = Scene(width=w, height=h, frames=n, speed=2.0)
    out = []
    for i in range(n):
        a = sc.alpha(i)
        t = np.full(a.shape, 128, np.uint8)
        t[a <= 0] = 0
        t[a >= 1] = 255
        t[cv2.dilate((t == 128).astype(np.uint8), np.ones((band, band), np.uint8)) > 0] = 128
        out.append(Frame(i, i, None, sc.rgb(i), trimap=t))
    return out


def _run(engine, frames):
    out = []
    for f in frames:
        out += engine.push(f)
    return out + engine.flush()


def _engine(model_dir, **kw):
    kw.setdefault("device", DEVICE)
    return make_vitmatte(model_dir, **kw)


@pytest.fixture(scope="module")
def small_dir(tmp_path_factory):
    """vitmatte-small's hub configuration with random weights (speed and memory do not depend on values)."""
    from vmatte.engine.hub_configs import save_random_model

    d = tmp_path_factory.mktemp("vitmatte-small")
    save_random_model(d, "small", seed=0)
    return d


def test_streams_overlap_copies_with_compute():
    """Uploads of batch k+1 run while batch k computes: N batches through the runner take clearly less wall
    time than the same batches run one after another with a sync between them."""
    _needs_cuda("stream overlap")
    from vmatte.engine.cuda import DeviceRunner

    runner = DeviceRunner("cuda")
    shape = (8, 2160, 3840, 4)  # 265 MB per upload
    w = torch.randn(4096, 4096, device="cuda")
    bufs = [
        torch.empty(shape, dtype=torch.uint8, pin_memory=True) for _ in range(6)
    ]  # pinning is slow: up front

    # Calibrate: as much compute per batch as one upload takes, so overlap can at best halve the time (on the
    # H200 one 4096^3 fp32 product is ~2.6 ms and a 265 MB upload ~5-10 ms; a fixed count measured nothing).
    def timed(work) -> float:
        work()
        torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(3):
            work()
        torch.cuda.synchronize()
        return (time.perf_counter() - t) / 3

    up = timed(lambda: bufs[0].to("cuda", non_blocking=True))
    mm = timed(lambda: w @ w)
    n = max(1, round(up / mm))

    def fn(x):
        y = w
        for _ in range(n):
            y = y @ w
        return x[:, :64, :64, 0].float() + y[:1, :1]

    runner.wait(runner.submit(bufs[0], fn))  # warm-up
    torch.cuda.synchronize()
    t = time.perf_counter()
    for buf in bufs:
        runner.wait(runner.submit(buf, fn))  # serial: wait for each
    serial = time.perf_counter() - t
    t = time.perf_counter()
    tickets = [runner.submit(buf, fn) for buf in bufs]
    for tk in tickets:
        runner.wait(tk)
    overlapped = time.perf_counter() - t
    print(
        f"\nupload {up * 1e3:.1f} ms, product {mm * 1e3:.2f} ms x {n}; serial {serial:.3f} s, overlapped "
        f"{overlapped:.3f} s ({overlapped / serial:.2f})"
    )
    assert overlapped < 0.85 * serial


def test_pinned_buffers_recycle():
    """Many batches of one shape reuse a bounded set of pinned buffers (no growth with clip length)."""
    _needs_cuda("pinned memory")
    from vmatte.engine.cuda import DeviceRunner

    runner = DeviceRunner("cuda")
    shape = (2, 540, 960, 4)
    ptrs = set()
    for _ in range(40):
        buf = runner.host_buffer(shape)
        assert buf.is_pinned()
        ptrs.add(buf.data_ptr())
        runner.wait(runner.submit(buf, lambda x: x[..., 0].float()))
    assert len(ptrs) <= 3, len(ptrs)
    per = 2 * 540 * 960 * (4 + 4)  # input uint8 x4 + output float32
    assert runner.pinned_bytes <= 4 * per, runner.pinned_bytes


def test_oom_backoff_under_memory_cap_loses_no_frame(tiny_vitmatte_dir):
    """Batch 8 of 1080p frames under a cap too small for it: the engine halves the batch (and tiles if it must)
    and every frame comes out, in order, equal to an uncapped fp32 run."""
    frames = _frames(1920, 1080, 6)
    ref = _run(_engine(tiny_vitmatte_dir, precision="fp32", batch_size=1), frames)
    if ON_CPU:
        eng = _engine(tiny_vitmatte_dir, precision="fp32", batch_size=4)
        calls = {"n": 0}

        def oom_once(x):  # the CPU has no cap: inject the first out-of-memory instead
            calls["n"] += 1
            if calls["n"] == 1 and x.shape[0] > 1:
                raise torch.OutOfMemoryError("injected")

        eng.fault_hook = oom_once
    else:
        eng = _engine(tiny_vitmatte_dir, precision="fp32", batch_size=8, memory_budget_gb=1.0)
    out = _run(eng, frames)
    d = eng.describe()
    eng.close()
    assert [f.index for f in out] == list(range(6))
    assert d["oom_backoffs"] >= 1 or d["auto_tiles"], d
    for a, b in zip(out, ref):
        tol = 1e-4 if not d["auto_tiles"] else 0.1  # tiles see less context than the whole frame
        assert float(np.abs(a.alpha - b.alpha).max()) <= tol


def test_4k_under_24gb_cap(small_dir):
    """vitmatte-small at 3840x2160 with a 24 GB budget: no out-of-memory, every frame, peak inside the cap."""
    _needs_cuda("a 24 GB memory cap at 4K")
    torch.cuda.reset_peak_memory_stats()
    eng = _engine(small_dir, precision="auto", memory_budget_gb=24)
    out = _run(eng, _frames(3840, 2160, 3, band=31))
    d = eng.describe()
    eng.close()
    print(
        f"\n4K: batch {d['batch_size']}, tiles {d['auto_tiles']}, peak {torch.cuda.max_memory_allocated() / 2**30:.1f} GB"
    )
    assert [f.index for f in out] == [0, 1, 2]
    assert torch.cuda.max_memory_allocated() <= 24 * 2**30
    assert all(np.isfinite(f.alpha).all() for f in out)


def test_bf16_parity_with_fp32(small_dir):
    """vitmatte-small (random weights, hub config): bf16 autocast within 2e-2 of fp32 on every pixel."""
    frames = _frames(854, 480, 2)
    fp32 = _run(_engine(small_dir, precision="fp32", batch_size=2), frames)
    bf16 = _run(_engine(small_dir, precision="bf16", batch_size=2), frames)
    worst = max(float(np.abs(a.alpha - b.alpha).max()) for a, b in zip(fp32, bf16))
    print(f"\nbf16 vs fp32 max |diff| {worst:.4f}")
    assert worst <= 2e-2


def test_compile_path_matches_eager(tiny_vitmatte_dir):
    """torch.compile'd model gives the eager model's alphas (fp32) and reports its compile time."""
    frames = _frames(256, 144, 3)
    eager = _run(_engine(tiny_vitmatte_dir, precision="fp32", batch_size=3), frames)
    eng = _engine(tiny_vitmatte_dir, precision="fp32", batch_size=3, compile=True)
    out = _run(eng, frames)
    assert eng.describe()["compile_s"] > 0
    for a, b in zip(out, eager):
        assert float(np.abs(a.alpha - b.alpha).max()) <= 1e-4


def test_torch_decontamination_on_device_matches_cpu():
    """Blur-fusion foreground on the device equals the OpenCV one within TORCH_TOLERANCE (alpha-weighted)."""
    from vmatte.io import foreground as fgm

    sc = Scene(width=960, height=540, frames=2)
    rgb, a = sc.rgb(1).astype(np.float32), sc.alpha(1).astype(np.float32)
    cv = fgm.foreground_blur(rgb, a)
    dev = fgm.foreground_blur(rgb, a, device=DEVICE)
    assert float(np.abs(a[..., None] * (cv - dev)).max()) <= fgm.TORCH_TOLERANCE


def test_smoothing_torch_path_on_device_matches_numpy():
    """The smoother's torch path on the device against its numpy path, on a moving edge with a scene cut:
    PARITY_TOLERANCE with snap_saturated off, and with it on (the default) all but the few band pixels where a
    sample within float noise of 0 or 1 falls the other side of that step (tests/test_smooth_torch.py)."""
    from test_smooth_torch import _moving_clip_with_cut
    from test_temporal_smooth import run

    from vmatte.temporal.smooth import TemporalSmoother
    from vmatte.temporal.torch_path import PARITY_TOLERANCE
    from vmatte.temporal.tuning import Tuning

    frames = _moving_clip_with_cut()
    for tn in (Tuning(snap_saturated=False), Tuning()):
        a = run(TemporalSmoother(tuning=tn), frames)
        sm = TemporalSmoother(tuning=tn, device=DEVICE)
        b = run(sm, frames)
        assert sm.stats()["device"] == f"torch:{torch.device(DEVICE)}"
        d = np.concatenate([np.abs(x.alpha - y.alpha)[x.trimap == 128] for x, y in zip(a, b)])
        print(
            f"smoothing torch ({DEVICE}) vs numpy, snap {tn.snap_saturated}: max {d.max():.3g}, "
            f"mean {d.mean():.3g}, > tolerance {(d > PARITY_TOLERANCE).mean():.2%}"
        )
        if tn.snap_saturated:
            assert (d <= PARITY_TOLERANCE).mean() >= 0.99 and d.max() <= 0.1
        else:
            assert d.max() <= PARITY_TOLERANCE


def test_crops_on_device_match_whole_frames_on_known_pixels(tiny_vitmatte_dir):
    """Crop batching on the device: every frame back, known pixels exact, the band close to whole frames."""
    frames = _frames(1920, 1080, 4)
    whole = _run(_engine(tiny_vitmatte_dir, precision="fp32", batch_size=4), frames)
    margin = 16 if ON_CPU else 96  # the rehearsal's frames are 6x smaller
    eng = _engine(tiny_vitmatte_dir, precision="fp32", batch_size=4, crop_threshold=0.5, crop_margin=margin)
    crop = _run(eng, frames)
    assert eng.frames_cropped == 4
    for a, b, f in zip(whole, crop, frames):
        band = f.trimap == 128
        assert np.array_equal(a.alpha[~band], b.alpha[~band])
        assert float(np.abs(a.alpha - b.alpha)[band].mean()) < 0.1
