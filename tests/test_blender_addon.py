"""The Blender add-on (integrations/blender/).

- its HTTP client (standard library only, no bpy) against a real ``vmatte serve`` in a thread;
- the whole add-on inside Blender, headless: ``blender -b --factory-startup --python .../run_headless.py``
  (skips with a reason where no ``blender`` binary exists; .ci/run installs Debian's).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ADDON = ROOT / "integrations" / "blender"


def load_client():
    spec = importlib.util.spec_from_file_location(
        "vmatte_blender_client", ADDON / "vmatte_blender" / "client.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_addon_client_against_a_real_service(clip_path, masks_dir, tmp_path):
    pytest.importorskip("uvicorn", reason="vmatte serve needs uvicorn (pip install 'vmatte[serve]')")
    from vmatte.engine.base import FakeEngine
    from vmatte.engine.config import EngineConfig
    from vmatte.service.app import create_app
    from vmatte.service.jobs import JobManager
    from vmatte.service.server import ServiceThread

    client = load_client()
    manager = JobManager(FakeEngine(), EngineConfig(name="classic"))
    svc = ServiceThread(create_app(manager, "tok"), manager)
    try:
        service = client.Service(svc.url, "tok")
        assert service.ensure_running("/nonexistent/vmatte") is False  # one answers: nothing started
        assert service.process is None
        job_id = service.submit(
            {"input": str(clip_path), "masks": str(masks_dir), "outputs": [{"path": str(tmp_path / "o.mov")}]}
        )
        import time

        # generous: in a fresh venv this may be the first run to decontaminate edges, and numba then compiles
        # pymatting's kernels (1-5 min on a loaded 2-core machine); what is checked is the protocol, not speed
        deadline = time.monotonic() + 540
        while (job := service.job(job_id))["status"] not in client.FINISHED:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert job["status"] == "ok" and job["report"]["frames_written"] == 12
        assert service.cancel(job_id)["status"] == "ok"  # finished: comes back as it is
        with pytest.raises(client.ServiceError, match="unknown key 'inptu'"):
            service.submit({"inptu": "x"})
        with pytest.raises(client.ServiceError, match="token"):
            client.Service(svc.url, "wrong").submit({"input": "/x", "masks": "/y"})
    finally:
        svc.stop()
    # nothing answers any more: a remote URL is never started, a bad command is one clear line
    with pytest.raises(client.ServiceError, match="only a local one"):
        client.Service("http://192.0.2.1:9", "t", timeout_s=0.5).ensure_running()
    with pytest.raises(client.ServiceError, match="cannot start"):
        client.Service(svc.url, "t").ensure_running("/nonexistent/vmatte")


@pytest.mark.slow
def test_blender_addon_headless(tmp_path):
    blender = shutil.which("blender")
    if blender is None:
        pytest.skip("no 'blender' binary on PATH (apt-get install blender; .ci/run does)")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env.pop("VMATTE_TOKEN", None)
    # the add-on runs this interpreter's vmatte (the CI venv), not whatever 'vmatte' is on PATH
    command = f"{sys.executable} -m vmatte"
    proc = subprocess.run(
        [
            blender,
            "-b",
            "--factory-startup",
            "--python-exit-code",
            "1",
            "--python",
            str(ADDON / "tests" / "run_headless.py"),
            "--",
            "--vmatte",
            command,
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )
    lines = [ln for ln in proc.stdout.splitlines() if not ln.startswith(("Fra:", "Saved:", " Time:"))]
    tail = "\n".join(lines[-40:]) + "\n" + proc.stderr[-3000:]
    print(tail)
    assert proc.returncode == 0, tail
    assert "VMATTE_HEADLESS_OK" in proc.stdout, tail
