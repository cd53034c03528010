"""Ray: a local Ray with 2 CPUs runs a 4-chunk job whose outputs equal a single-process run.

One Ray session for the whole module (starting Ray costs seconds); skipped where Ray is not installed.
"""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest

import vmatte
from vmatte.io.config import OutputConfig
from vmatte.testing import Scene, write_clip, write_masks

ray = pytest.importorskip("ray")

FRAMES = 16


@pytest.fixture(scope="module")
def local_ray():
    ray.init(
        address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False
    )
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    d = tmp_path_factory.mktemp("rayjob")
    scene = Scene(width=96, height=64, frames=FRAMES, speed=1.5)
    clip = write_clip(d / "clip.mp4", scene, audio=True)
    masks = write_masks(d / "masks", scene, [0, 8, 15])
    return clip, masks


def _outputs(folder: Path):
    return (
        OutputConfig(path=str(folder / "alpha.%04d.png"), content="alpha", bit_depth=16),
        OutputConfig(path=str(folder / "rgba.mov"), decontaminate=False),
    )


def _cfg(job, folder: Path) -> vmatte.RunConfig:
    clip, masks = job
    return vmatte.RunConfig(
        input=str(clip),
        masks=str(masks),
        outputs=_outputs(folder),
        engine=vmatte.EngineConfig(name="classic"),
    )


def _alphas(folder: Path) -> np.ndarray:
    return np.stack(
        [
            cv2.imread(str(folder / f"alpha.{t:04d}.png"), cv2.IMREAD_UNCHANGED).astype(np.float32) / 65535
            for t in range(FRAMES)
        ]
    )


def test_ray_four_chunks_equal_single_process_run(local_ray, job, tmp_path):
    from vmatte.farm.ray_runner import run_ray

    single = tmp_path / "single"
    vmatte.run(_cfg(job, single))
    out = tmp_path / "ray"
    rep = run_ray(_cfg(job, out), 4)
    assert rep.status == "ok" and [c["status"] for c in rep.chunks] == ["done"] * 4
    tasks = rep.farm["tasks"]
    assert len(tasks) == 4 and len({t["pid"] for t in tasks}) == 2  # two worker processes shared the chunks
    assert sum(not t["engine_reused"] for t in tasks) == 2  # the engine loaded once per worker, not per chunk
    assert rep.farm["ray"]["started_here"] is False  # used the Ray session that was already up
    assert float(np.abs(_alphas(single) - _alphas(out)).max()) <= 1 / 65535 + 1e-7
    with av.open(str(single / "rgba.mov")) as a, av.open(str(out / "rgba.mov")) as b:
        fa = [(f.pts, f.to_ndarray(format="rgba64le")[..., 3]) for f in a.decode(video=0)]
        fb = [(f.pts, f.to_ndarray(format="rgba64le")[..., 3]) for f in b.decode(video=0)]
    assert [p for p, _ in fa] == [p for p, _ in fb]
    assert max(np.abs(x.astype(int) - y.astype(int)).max() for (_, x), (_, y) in zip(fa, fb)) <= 655

    # resumable on Ray too: the same job again verifies the manifest and renders nothing
    again = run_ray(_cfg(job, out), 4)
    assert again.farm.get("note", "").startswith("already complete") and "tasks" not in again.farm


def test_ray_task_error_keeps_its_exit_code(local_ray, job, tmp_path):
    """An error raised inside a task (here: model weights missing, found only when the worker loads the engine)
    comes back as the same VmatteError, with its exit code and retry flag, not as a Ray error."""
    from vmatte.errors import ModelError
    from vmatte.farm.ray_runner import run_ray

    cfg = _cfg(job, tmp_path / "o").replace(
        engine=vmatte.EngineConfig(name="vitmatte", model=str(tmp_path / "no-such-model"))
    )
    with pytest.raises(ModelError) as err:
        run_ray(cfg, 8)
    assert err.value.exit_code == 5 and not err.value.retryable
    assert not (tmp_path / "o" / "rgba.mov").exists()
