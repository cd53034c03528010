"""Shared fixtures: synthetic clips with known truth, keyframe masks, a tiny random ViTMatte, shared data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vmatte.testing import Scene, write_clip, write_masks

SHARED = Path(os.environ.get("VMATTE_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))


def pytest_collection_modifyitems(config, items):
    require_gpu = os.environ.get("VMATTE_REQUIRE_GPU") == "1"
    # scripts/gpu_check.sh DRY_RUN=1: the gpu tests rehearse on the CPU (tests/test_gpu.py)
    require_gpu = require_gpu or os.environ.get("VMATTE_GPU_TESTS_ON_CPU") == "1"
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except Exception:
        has_cuda = False
    skip_gpu = pytest.mark.skip(reason="needs CUDA (set VMATTE_REQUIRE_GPU=1 to fail instead of skip)")
    skip_weights = pytest.mark.skip(
        reason="needs real checkpoints: set VMATTE_WEIGHTS to a folder or hub cache"
    )
    for item in items:
        if "gpu" in item.keywords and not has_cuda and not require_gpu:
            item.add_marker(skip_gpu)
        if "weights" in item.keywords and not os.environ.get("VMATTE_WEIGHTS"):
            item.add_marker(skip_weights)


@pytest.fixture(autouse=True)
def real_tune_malloc(monkeypatch):
    """``vmatte propagate`` tunes glibc's allocator for its own process (``vmatte.cli.propagate._tune_malloc``);
    called in-process by a test it would retune pytest's, for every test after it. Here it does nothing; the
    command's subprocesses still tune theirs. Yields the real function for the test of it. Why: with the
    thresholds set mid-run by tests/test_cli_messages.py, tests/test_encode_stage.py's pooled and serial
    ProRes outputs differed in 1 of 16 loaded runs of the pair and in one full CI run (0 of 20 with the earlier
    1 MB setting; 0 of 32 without any setting, 0 of 28 with the new values set from the start by MALLOC_*_)."""
    from vmatte.cli import propagate

    real = propagate._tune_malloc
    monkeypatch.setattr(propagate, "_tune_malloc", lambda: None)
    return real


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (real images/clips); tests using it skip where it is absent."""
    d = SHARED / "data"
    if not d.is_dir():
        pytest.skip(f"shared data not found at {d} (set VMATTE_SHARED)")
    return d


@pytest.fixture(scope="session")
def scene() -> Scene:
    return Scene(width=160, height=96, frames=12, speed=2.5)


@pytest.fixture(scope="session")
def clip_path(tmp_path_factory, scene) -> Path:
    """A small H.264 .mp4 of ``scene`` with audio (12 frames, 160x96, 24 fps)."""
    return write_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", scene, audio=True)


@pytest.fixture(scope="session")
def masks_dir(tmp_path_factory, scene) -> Path:
    """Binary keyframe masks for ``scene`` on frames 0 and 8."""
    return write_masks(tmp_path_factory.mktemp("masks") / "keyframes", scene, [0, 8])


@pytest.fixture(scope="session")
def tiny_vitmatte_dir(tmp_path_factory) -> Path:
    """A tiny randomly initialised VitMatteForImageMatting saved with save_pretrained (loaded like a user's)."""
    from vmatte.engine.hub_configs import save_random_model

    d = tmp_path_factory.mktemp("tiny-vitmatte")
    save_random_model(d, "tiny", seed=0)
    return d
