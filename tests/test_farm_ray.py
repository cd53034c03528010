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


def _ray_pids(driver: int) -> dict[int, int]:
    """{pid: start time} of the Ray processes below ``driver`` (raylet, GCS, agents, workers)."""
    from vmatte.farm.reaper import _is_ray, descendants

    return {p: t for p, t in descendants(driver).items() if _is_ray(p)}


def test_ray_driver_sigkill_leaves_no_ray_processes_and_resume_reports_the_clip(job, tmp_path):
    """CLI --ray as a farm runs it: SIGKILL of the driver PID alone takes Ray's processes with it (its agents
    used to survive); the resumed run numbers chunks by grid position, counts frames with an ETA, and its
    report spans the whole clip (confidence per frame, smoothing of all 4 chunks, ranked suggestions)."""
    import json
    import os
    import signal
    import subprocess
    import sys
    import time

    from vmatte.farm.reaper import _stat

    clip, masks = job
    report = tmp_path / "rep.json"
    args = [sys.executable, "-m", "vmatte", "run", str(clip), "--masks", str(masks), "-o"]
    args += [str(tmp_path / "o" / "alpha.%04d.png"), "--alpha-only", "--engine", "classic", "--ray"]
    args += ["--workers", "2", "--chunk", "4", "--progress", "json", "--report", str(report)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
    try:
        for line in proc.stderr:
            if '"chunks"' in line and '"chunk_index"' in line:
                break
        else:
            pytest.fail("the Ray run ended before a chunk finished")
        ours = _ray_pids(proc.pid)
        assert len(ours) >= 3, ours  # GCS, raylet, agents, workers
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            left = {p for p, t in ours.items() if (_stat(p) or (0, None))[1] == t}
            if not left:
                break
            time.sleep(0.5)
        assert not left, [Path(f"/proc/{p}/cmdline").read_bytes()[:60] for p in left]
    finally:
        if proc.poll() is None:
            proc.kill()

    done = subprocess.run(args, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    events = [json.loads(x) for x in done.stderr.splitlines() if x.startswith("{")]
    chunk_events = [e for e in events if e.get("stage") == "chunks" and "chunk" in e]
    assert chunk_events and all(e["chunks"] == 4 for e in chunk_events)
    assert all(
        e["chunk_index"] == int(e["chunk"][:6]) // 4 for e in chunk_events
    )  # grid place, not queue order
    assert chunk_events[0]["done"] >= 2 and chunk_events[-1]["done"] == chunk_events[-1]["total"] == 4
    frames = [e for e in events if e.get("stage") == "frames"]
    assert frames[-1]["done"] == frames[-1]["total"] == FRAMES
    assert any(e["eta_s"] is not None for e in frames if e["done"] < FRAMES)
    rep = json.loads(report.read_text())
    assert [c["status"] for c in rep["chunks"]].count("skipped") >= 1
    assert len(rep["propagation"]["confidence"]) == FRAMES and None not in rep["propagation"]["confidence"]
    assert rep["smoothing"]["chunks"] == 4 and "suggested_keyframes" in rep
