"""`vmatte run --ray ADDRESS` against an existing Ray cluster, and `--ray` alone next to one.

A real head node is started with ``ray start --head --block`` (its own process group, killed at the end), with
token authentication on, as Ray >= 2.59 does by default. Every run is the console command in a subprocess, so
what is checked is what a farm job sees: exit code, stderr lines, files. Skipped where Ray is not installed.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import cv2
import hostile as h
import numpy as np
import pytest

from vmatte.testing import Scene, write_clip, write_masks

pytest.importorskip("ray")

FRAMES = 16
TOKEN = secrets.token_hex(32)
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(token: str | None) -> dict:
    """A client environment with the cluster's token (token set) or a wrong one."""
    return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token or secrets.token_hex(32)}


@pytest.fixture(scope="module")
def cluster():
    """The address of a 2-CPU head node on this machine, up until the module ends."""
    ray_cli = Path(sys.executable).with_name("ray")
    port = _free_port()
    env = dict(os.environ, **_env(TOKEN))
    head = subprocess.Popen(
        [
            str(ray_cli),
            "start",
            "--head",
            f"--port={port}",
            "--num-cpus=2",
            "--include-dashboard=false",
            "--block",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the raylet, GCS and workers go with it
    )
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            ok = subprocess.run(
                [str(ray_cli), "status", f"--address={address}"], env=env, capture_output=True, timeout=60
            )
            if ok.returncode == 0:
                break
            if head.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"ray start --head did not come up: {ok.stderr.decode()[-2000:]}")
            time.sleep(1)
        yield address
    finally:
        for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
            try:
                os.killpg(head.pid, sig)
                head.wait(wait)
                break
            except ProcessLookupError:
                break
            except subprocess.TimeoutExpired:
                continue


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    """(clip, masks, the same command's output in one process without Ray)."""
    d = tmp_path_factory.mktemp("clusterjob")
    scene = Scene(width=96, height=64, frames=FRAMES, speed=1.5)
    clip = write_clip(d / "clip.mp4", scene)
    masks = write_masks(d / "masks", scene, [0, 8, 15])
    single = _run((clip, masks, None), d / "single", env={}, chunks=False)
    assert single.code == 0, single
    return clip, masks, d / "single"


def _frames(folder: Path) -> np.ndarray:
    """The RGBA PNG frames (straight alpha) a run wrote, (FRAMES, H, W, 4) uint8."""
    return np.stack([cv2.imread(str(folder / f"a.{t:04d}.png"), cv2.IMREAD_UNCHANGED) for t in range(FRAMES)])


def _run(job, out: Path, *extra, env: dict, chunks: bool = True) -> h.CliResult:
    clip, masks, _ = job
    args = h.run_args(clip, masks, out / "a.%04d.png", "--engine", "classic", "--progress", "none", *extra)
    return h.run_cli_subprocess(*args, *(["--chunk", "4"] if chunks else []), timeout=240, env=env)


def test_existing_cluster_renders_the_same_frames(cluster, job, tmp_path):
    res = _run(job, tmp_path / "o", "--ray", cluster, "--report", tmp_path / "r.json", env=_env(TOKEN))
    assert res.code == 0, res
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["status"] == "ok" and rep["farm"]["ray"]["address"] == cluster
    assert rep["farm"]["ray"]["cpus"] == 2 and len(rep["farm"]["tasks"]) == 4
    assert np.array_equal(_frames(job[2]), _frames(tmp_path / "o"))


def test_refused_token_is_one_usage_error_line(cluster, job, tmp_path):
    """Ray logs its retries straight to fd 2; vmatte holds them back, so the failure is one line, exit 2."""
    res = _run(job, tmp_path / "o", "--ray", cluster, env=_env(None))
    h.assert_one_error_line(res, 2, cluster, "RAY_AUTH_MODE=token", "token")
    assert res.lines == res.errors, f"more than the error line on stderr: {res}"
    assert not (tmp_path / "o").exists()


def test_address_nobody_answers_fails_fast_and_retryable(job, tmp_path):
    port = _free_port()  # closed again: nothing listens there
    t = time.monotonic()
    res = _run(job, tmp_path / "o", "--ray", f"127.0.0.1:{port}", env=_env(TOKEN))
    took = time.monotonic() - t
    h.assert_one_error_line(res, 8, f"127.0.0.1:{port}", "nothing answers")
    assert took < 60, f"took {took:.0f} s to give up (Ray alone retries for minutes)"
    assert res.lines == res.errors, res


def test_local_ray_starts_beside_a_running_cluster(cluster, job, tmp_path):
    """`--ray` with no address starts its own Ray even when a cluster runs on the machine (a plain ray.init()
    would join that cluster and then refuse num_cpus)."""
    res = _run(job, tmp_path / "o", "--ray", "--workers", "2", "--report", tmp_path / "r.json", env={})
    assert res.code == 0, res
    ray_info = json.loads((tmp_path / "r.json").read_text())["farm"]["ray"]
    assert ray_info["address"] == "local" and ray_info["started_here"]
    assert np.array_equal(_frames(job[2]), _frames(tmp_path / "o"))
