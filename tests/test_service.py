"""``vmatte serve``: a real uvicorn server on a loopback port, a real HTTP client (httpx).

Most tests run the server in a thread with an injected engine (a slowed FakeEngine makes cancel and queue
timing deterministic); the last ones start ``python -m vmatte serve`` as users and plugins do.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

httpx = pytest.importorskip("httpx", reason="the service tests need httpx (pip install 'vmatte[serve,test]')")
pytest.importorskip("uvicorn", reason="vmatte serve needs uvicorn (pip install 'vmatte[serve]')")
pytest.importorskip("starlette", reason="vmatte serve needs starlette (pip install 'vmatte[serve]')")

from vmatte.engine.base import FakeEngine  # noqa: E402
from vmatte.engine.config import EngineConfig  # noqa: E402
from vmatte.service.app import create_app  # noqa: E402
from vmatte.service.jobs import JobManager  # noqa: E402
from vmatte.service.server import ServiceThread, check_host, resolve_token  # noqa: E402
from vmatte.testing import Scene, write_clip, write_masks  # noqa: E402

TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ENGINE_CFG = EngineConfig(name="classic")
ROOT = Path(__file__).resolve().parents[1]


class SlowEngine(FakeEngine):
    """FakeEngine that takes ``delay_s`` per frame, so a job lasts long enough to cancel or queue behind."""

    def __init__(self, delay_s: float = 0.15) -> None:
        super().__init__(batch_size=1)
        self.delay_s = delay_s

    def _launch(self, frames):
        time.sleep(self.delay_s * len(frames))
        return super()._launch(frames)


@contextlib.contextmanager
def running_service(engine=None, **manager_kw):
    manager = JobManager(engine or FakeEngine(batch_size=2), ENGINE_CFG, **manager_kw)
    app = create_app(manager, TOKEN, max_body=4096, engine_info={"engine": "fake", "device": "cpu"})
    svc = ServiceThread(app, manager)
    try:
        with httpx.Client(base_url=svc.url, headers=AUTH, timeout=30) as client:
            yield svc, client
    finally:
        svc.stop()


@pytest.fixture(scope="module")
def svc():
    with running_service(SlowEngine(0.05)) as pair:
        yield pair


def job_body(clip, masks, out, **extra) -> dict:
    return {"input": str(clip), "masks": str(masks), "outputs": [{"path": str(out)}], **extra}


def sse_events(client, job_id: str, timeout_s: float = 60.0):
    """Parse the job's event stream into (event name, data dict) pairs until the "end" event."""
    out = []
    with client.stream("GET", f"/v1/jobs/{job_id}/events", timeout=timeout_s) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        name, data = None, []
        for line in resp.iter_lines():
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
            elif line == "" and name:
                out.append((name, json.loads("\n".join(data))))
                if name == "end":
                    return out
                name, data = None, []
    return out


def wait_done(client, job_id: str, timeout_s: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in ("ok", "error", "cancelled"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish in {timeout_s} s")


def test_health_needs_no_token_and_shows_no_paths(svc):
    service, _ = svc
    r = httpx.get(f"{service.url}/v1/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["api"] == "v1" and body["engine"] == "fake"
    assert "version" in body and body["device"] == "cpu"
    assert "/" not in json.dumps({k: v for k, v in body.items() if k != "api"})


@pytest.mark.parametrize(
    "method,path",
    [
        ("POST", "/v1/jobs"),
        ("GET", "/v1/jobs"),
        ("GET", "/v1/jobs/x"),
        ("DELETE", "/v1/jobs/x"),
        ("GET", "/v1/jobs/x/events"),
    ],
)
@pytest.mark.parametrize("header", [None, "Bearer wrong", "Basic dGVzdA==", f"Bearer {TOKEN}x"])
def test_token_required(svc, method, path, header):
    service, _ = svc
    headers = {"Authorization": header} if header else {}
    r = httpx.request(method, f"{service.url}{path}", headers=headers, json={})
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"] == "Bearer"
    assert "token" in r.json()["error"]


def test_unknown_job_is_404(svc):
    _, client = svc
    for method, path in [
        ("GET", "/v1/jobs/nope"),
        ("DELETE", "/v1/jobs/nope"),
        ("GET", "/v1/jobs/nope/events"),
    ]:
        r = client.request(method, path)
        assert r.status_code == 404 and "no job 'nope'" in r.json()["error"]


def test_malformed_and_oversized_bodies(svc, clip_path, masks_dir, tmp_path):
    _, client = svc
    bad = [b"{not json", b"", b"\xff\xfe", b"[1, 2]", b'"text"']
    for body in bad:
        r = client.post("/v1/jobs", content=body)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["error"]
    r = client.post("/v1/jobs", content=b"{" + b" " * 5000 + b"}")
    assert r.status_code == 413 and "limit" in r.json()["error"]

    def chunks():  # no Content-Length: the limit is enforced while reading
        for _ in range(10):
            yield b" " * 1000

    r = client.post("/v1/jobs", content=chunks())
    assert r.status_code == 413
    assert client.get("/v1/health").status_code == 200  # and the server is fine


def test_config_errors_are_400_with_the_cli_message(svc, clip_path, masks_dir, tmp_path, capsys):
    _, client = svc
    body = job_body(clip_path, masks_dir, tmp_path / "o.mov", flow={"work_sise": 320})
    r = client.post("/v1/jobs", json=body)
    assert r.status_code == 400
    err = r.json()
    assert err["exit_code"] == 2
    # the CLI with the same key in a config file prints the same line, naming the file instead of "request"
    cfg = tmp_path / "c.toml"
    cfg.write_text("[flow]\nwork_sise = 320\n")
    from vmatte.cli import main

    assert main(["run", str(clip_path), "--masks", str(masks_dir), "--config", str(cfg)]) == 2
    cli_line = capsys.readouterr().err.strip().splitlines()[-1]
    assert cli_line == f"vmatte: error: {cfg}: " + err["error"].removeprefix("request: ")
    assert err["error"].startswith("request: unknown key 'flow.work_sise': did you mean 'work_size'?")

    cases = {
        "relative path": ({**body, "flow": {}, "input": "clip.mp4"}, "relative path"),
        "missing masks": ({"input": str(clip_path)}, "'masks' is missing"),
        "bad range": ({**body, "flow": {}, "frames": "9-2"}, "END is before START"),
        "bad type": ({**body, "flow": {}, "overwrite": [1]}, "must be true or false"),
        "engine change": (
            {**body, "flow": {}, "engine": {"name": "vitmatte"}},
            "has loaded engine.name",
        ),
    }
    for name, (b, needle) in cases.items():
        r = client.post("/v1/jobs", json=b)
        assert r.status_code == 400, name
        assert needle in r.json()["error"], (name, r.json())
    # repeating the server's own engine settings is fine
    r = client.post("/v1/jobs", json={**body, "flow": {}, "engine": {"name": "classic"}})
    assert r.status_code == 201
    assert wait_done(client, r.json()["id"])["status"] == "ok"


def test_job_lifecycle_and_sse_progress(svc, clip_path, masks_dir, tmp_path):
    _, client = svc
    out = tmp_path / "out.mov"
    r = client.post("/v1/jobs", json=job_body(clip_path, masks_dir, out))
    assert r.status_code == 201
    job = r.json()
    assert r.headers["location"] == f"/v1/jobs/{job['id']}"
    assert job["status"] in ("queued", "running") and job["report"] is None
    events = sse_events(client, job["id"])
    names = [n for n, _ in events]
    assert names[-1] == "end" and set(names[:-1]) == {"progress"}
    progress = [d for n, d in events if n == "progress"]
    # the same objects as `vmatte run --progress json`
    assert {"t", "stage", "done", "total"} <= set(progress[0])
    matte = [p for p in progress if p["stage"] == "matte"]
    assert [p["done"] for p in matte] == list(range(1, 13)) and matte[-1]["total"] == 12
    assert any(p["stage"] == "propagate" for p in progress)
    final = events[-1][1]
    assert final["status"] == "ok" and final["error"] is None
    assert final["report"]["frames_written"] == 12 and final["report"]["outputs"] == [str(out)]
    assert final["report"]["times"]["load_engine"] == 0.0  # the loaded engine was reused
    assert client.get(f"/v1/jobs/{job['id']}").json() == final
    assert out.is_file() and out.stat().st_size > 0
    # a late subscriber still gets every retained event, and resumes after Last-Event-ID
    again = sse_events(client, job["id"])
    assert [d for n, d in again if n == "progress"] == progress
    with client.stream("GET", f"/v1/jobs/{job['id']}/events", headers={"Last-Event-ID": "20"}) as resp:
        ids = [int(line[3:]) for line in resp.iter_lines() if line.startswith("id:")]
    assert ids and min(ids) == 21
    # cancelling a finished job is a conflict, not a crash
    assert client.delete(f"/v1/jobs/{job['id']}").status_code == 409
    assert job["id"] in [j["id"] for j in client.get("/v1/jobs").json()["jobs"]]


def test_cancel_running_job_stops_fast_and_cleans_up(clip_path, masks_dir, tmp_path):
    with running_service(SlowEngine(0.4)) as (_, client):
        out = tmp_path / "cancelled.mov"
        job_id = client.post("/v1/jobs", json=job_body(clip_path, masks_dir, out)).json()["id"]
        with client.stream("GET", f"/v1/jobs/{job_id}/events") as resp:
            for line in resp.iter_lines():  # wait until frames are being written
                if line.startswith("data:") and '"matte"' in line:
                    break
        t0 = time.monotonic()
        r = client.delete(f"/v1/jobs/{job_id}")
        elapsed = time.monotonic() - t0
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "cancelled" and r.json()["error"]["exit_code"] == 130
        assert elapsed < 1.5, f"cancel took {elapsed:.2f} s"
        # like Ctrl-C: no output, no temporaries
        assert not out.exists()
        assert [p.name for p in tmp_path.iterdir()] == []
        # the server goes on
        ok = client.post("/v1/jobs", json=job_body(clip_path, masks_dir, tmp_path / "after.mov")).json()
        assert wait_done(client, ok["id"])["status"] == "ok"


def test_cancel_queued_job_and_queue_bound(clip_path, masks_dir, tmp_path):
    with running_service(SlowEngine(0.2), max_queue=1) as (_, client):
        first = client.post("/v1/jobs", json=job_body(clip_path, masks_dir, tmp_path / "a.mov")).json()
        deadline = time.monotonic() + 20
        while client.get(f"/v1/jobs/{first['id']}").json()["status"] != "running":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        second = client.post("/v1/jobs", json=job_body(clip_path, masks_dir, tmp_path / "b.mov"))
        assert second.status_code == 201 and second.json()["status"] == "queued"
        third = client.post("/v1/jobs", json=job_body(clip_path, masks_dir, tmp_path / "c.mov"))
        assert third.status_code == 503 and "queue is full" in third.json()["error"]
        assert third.headers["retry-after"]
        r = client.delete(f"/v1/jobs/{second.json()['id']}")
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        assert client.delete(f"/v1/jobs/{first['id']}").json()["status"] == "cancelled"
        assert client.get("/v1/health").json()["queue"]["queued"] == 0


def test_failing_job_then_one_that_works(svc, clip_path, masks_dir, scene, tmp_path):
    _, client = svc
    bad_masks = tmp_path / "bad"
    bad_masks.mkdir()
    cv2.imwrite(str(bad_masks / "000000.png"), np.zeros((50, 70), np.uint8))  # wrong size for the clip
    bad = client.post("/v1/jobs", json=job_body(clip_path, bad_masks, tmp_path / "bad.mov")).json()
    done = wait_done(client, bad["id"])
    assert done["status"] == "error"
    assert done["error"]["exit_code"] == 4 and "000000.png" in done["error"]["message"]
    assert done["report"]["status"] == "error"
    assert not (tmp_path / "bad.mov").exists()
    good = client.post("/v1/jobs", json=job_body(clip_path, masks_dir, tmp_path / "good.mov")).json()
    assert wait_done(client, good["id"])["status"] == "ok"


def test_a_bug_in_a_job_does_not_take_the_server_down(clip_path, masks_dir, tmp_path):
    import vmatte

    def run_fn(config, **kw):
        if "boom" in config.outputs[0].path:
            raise RuntimeError("injected bug")
        return vmatte.run(config, **kw)

    with running_service(run_fn=run_fn) as (_, client):
        b = client.post("/v1/jobs", json=job_body(clip_path, masks_dir, tmp_path / "boom.mov")).json()
        done = wait_done(client, b["id"])
        assert done["status"] == "error" and done["error"]["exit_code"] == 1
        assert "RuntimeError: injected bug" in done["error"]["message"]
        g = client.post("/v1/jobs", json=job_body(clip_path, masks_dir, tmp_path / "fine.mov")).json()
        assert wait_done(client, g["id"])["status"] == "ok"


def test_two_clients_at_once_run_one_at_a_time(svc, clip_path, masks_dir, tmp_path):
    service, _ = svc
    results: dict[int, list] = {}

    def client_work(i: int) -> None:
        with httpx.Client(base_url=service.url, headers=AUTH, timeout=60) as c:
            r = c.post("/v1/jobs", json=job_body(clip_path, masks_dir, tmp_path / f"c{i}.mov"))
            assert r.status_code == 201
            results[i] = sse_events(c, r.json()["id"])

    threads = [threading.Thread(target=client_work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    finals = [results[i][-1][1] for i in range(2)]
    assert [f["status"] for f in finals] == ["ok", "ok"]
    a, b = sorted(finals, key=lambda f: f["started"])
    assert b["started"] >= a["finished"] - 0.01  # one job at a time on the one engine
    for i in range(2):
        assert (tmp_path / f"c{i}.mov").is_file()


def test_host_policy_and_token_sources(monkeypatch):
    assert check_host("127.0.0.1", False) is None
    assert check_host("::1", False) is None
    assert check_host("localhost", False) is None
    from vmatte.errors import UsageError

    with pytest.raises(UsageError, match="not a loopback address"):
        check_host("0.0.0.0", False)
    assert "anyone who can reach" in check_host("0.0.0.0", True)
    monkeypatch.delenv("VMATTE_TOKEN", raising=False)
    tok, src = resolve_token(None)
    assert src == "generated" and len(tok) >= 24 and resolve_token(None)[0] != tok
    monkeypatch.setenv("VMATTE_TOKEN", "from-env")
    assert resolve_token(None) == ("from-env", "VMATTE_TOKEN")
    assert resolve_token("flag") == ("flag", "--token")


def test_cli_refuses_non_loopback_host(capsys):
    from vmatte.cli import main

    assert main(["serve", "--host", "0.0.0.0", "--port", "0"]) == 2
    assert "--allow-remote" in capsys.readouterr().err


# --- the real command ----------------------------------------------------------------------------------------


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env.pop("VMATTE_TOKEN", None)
    return env


def start_serve(*args: str):
    """``python -m vmatte serve --port 0 ARGS``; returns (process, url, token read from its stdout)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "vmatte", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    url = token = None
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and (url is None or token is None):
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"vmatte serve exited: {proc.wait()} {proc.stderr.read()}")
        if m := re.search(r"listening on (http://\S+)", line):
            url = m.group(1)
        if m := re.search(r"token (\S+)\s", line):
            token = m.group(1)
    return proc, url, token


def first_matte_latency(client, body) -> tuple[float, dict]:
    """Seconds from POST to the first "matte" progress event (the first frame written), and the final job."""
    t0 = time.perf_counter()
    job_id = client.post("/v1/jobs", json=body).json()["id"]
    first = None
    with client.stream("GET", f"/v1/jobs/{job_id}/events") as resp:
        for line in resp.iter_lines():
            if first is None and line.startswith("data:") and '"matte"' in line:
                first = time.perf_counter() - t0
    return first, client.get(f"/v1/jobs/{job_id}").json()


def cold_run_latency(args: list[str]) -> float:
    """Seconds from starting ``python -m vmatte run ... --progress json`` to its first "matte" line."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "vmatte", "run", *args, "--progress", "json"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=_env(),
    )
    first = None
    for line in proc.stderr:
        if first is None and '"stage": "matte"' in line:
            first = time.perf_counter() - t0
    assert proc.wait() == 0
    return first


@pytest.mark.slow
def test_serve_command_reuses_the_loaded_engine(tiny_vitmatte_dir, clip_path, masks_dir, tmp_path):
    """One tiny ViTMatte loaded once: the second job starts matting far sooner than a cold ``vmatte run``."""
    proc, url, token = start_serve("--engine", "vitmatte", "--model", str(tiny_vitmatte_dir))
    try:
        health = httpx.get(f"{url}/v1/health").json()
        assert health["engine"] == "vitmatte" and health["device"] == "cpu"
        assert str(tiny_vitmatte_dir) not in json.dumps(health) and "/" not in health["device"]
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=120) as client:
            first, job1 = first_matte_latency(client, job_body(clip_path, masks_dir, tmp_path / "1.mov"))
            second, job2 = first_matte_latency(client, job_body(clip_path, masks_dir, tmp_path / "2.mov"))
        assert job1["status"] == job2["status"] == "ok"
        assert job1["report"]["engine"]["engine"] == "vitmatte"
        assert job2["report"]["times"]["load_engine"] == 0.0
        cold = cold_run_latency(
            [
                str(clip_path),
                "--masks",
                str(masks_dir),
                "-o",
                str(tmp_path / "cold.mov"),
                "--engine",
                "vitmatte",
                "--model",
                str(tiny_vitmatte_dir),
            ]
        )
        print(
            f"\nfirst matted frame after: service job 1 {first:.2f} s, job 2 {second:.2f} s, cold run {cold:.2f} s"
        )
        assert second < cold / 2, (second, cold)
    finally:
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(timeout=30)
    assert rc == 130, proc.stderr.read()


def test_serve_command_generates_token_and_sigterm_cleans_up(
    clip_path, masks_dir, tmp_path_factory, tmp_path
):
    # the stopped job needs a clip long enough that it cannot finish between its first matte event and the
    # signal (CI lost that race with the 12-frame clip: the job completed and left its output, correctly)
    long_scene = Scene(width=160, height=96, frames=480, speed=0.5)
    src = tmp_path_factory.mktemp("long")
    long_clip = write_clip(src / "long.mp4", long_scene, audio=True)
    long_masks = write_masks(src / "keyframes", long_scene, [0, 479])
    proc, url, token = start_serve("--engine", "classic")
    out = tmp_path / "x.mov"
    try:
        assert httpx.get(f"{url}/v1/jobs").status_code == 401
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as c:
            job = c.post("/v1/jobs", json=job_body(clip_path, masks_dir, tmp_path / "ok.mov")).json()
            assert wait_done(c, job["id"])["status"] == "ok"
            job = c.post("/v1/jobs", json=job_body(long_clip, long_masks, out)).json()
            with c.stream("GET", f"/v1/jobs/{job['id']}/events") as resp:
                for line in resp.iter_lines():
                    if line.startswith("data:") and '"matte"' in line:
                        break
            proc.send_signal(signal.SIGTERM)  # a scheduler stopping the service mid-job
            rc = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert rc in (-signal.SIGTERM, 143), proc.stderr.read()
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.mov"]  # no temporaries left


def test_pipeline_preset_applies_under_the_body(svc, clip_path, masks_dir, tmp_path):
    _, client = svc
    body = {"input": str(clip_path), "masks": str(masks_dir), "output": {"path": f"{tmp_path / 'seq'}/"}}
    r = client.post("/v1/jobs?pipeline=png-seq", json=body)
    assert r.status_code == 201, r.text
    assert wait_done(client, r.json()["id"])["status"] == "ok"
    assert len(list((tmp_path / "seq").glob("*.png"))) == 12
    r = client.post("/v1/jobs?pipeline=png-sek", json=body)
    assert r.status_code == 400 and "did you mean 'png-seq'" in r.json()["error"]


def test_serve_without_the_extra_says_what_to_install(monkeypatch, capsys):
    from vmatte.cli import main

    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn → ImportError
    assert main(["serve", "--port", "0"]) == 2
    assert "pip install 'vmatte[serve]'" in capsys.readouterr().err


def test_serve_stops_when_its_parent_process_ends():
    """A plugin that started the service and then crashed must not leave it running (holding the model)."""
    parent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    proc, url, _ = start_serve("--engine", "classic", "--parent-pid", str(parent.pid))
    try:
        assert httpx.get(f"{url}/v1/health").status_code == 200
        parent.kill()
        parent.wait()
        rc = proc.wait(timeout=30)
    finally:
        for p in (parent, proc):
            if p.poll() is None:
                p.kill()
    assert rc == 0
    assert "ended, stopping" in proc.stderr.read()
