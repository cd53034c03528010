"""Bounded load test of ``vmatte serve`` on loopback; stops by itself.

    python scripts/load_service.py [--jobs 50] [--clients 4] [--engine classic] [--model DIR] [--timeout 900]

1. Writes a small synthetic clip and keyframe masks to a temp folder.
2. Cold start: times a plain ``vmatte run`` from process start to its first matted frame ("matte" progress).
3. Starts ``vmatte serve --port 0`` (127.0.0.1 only), times two jobs from POST to their first matted frame.
4. Sends ``--jobs`` jobs from ``--clients`` concurrent clients (httpx; each follows its job's SSE stream to
   the end), and reports throughput, failures (anything but status "ok"), and the server's RSS and CPU seconds.
5. Stops the server (SIGINT) and removes the temp folder, also when interrupted or past ``--timeout``.

Prints a table and a JSON line. Exit status 1 if any job failed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def env() -> dict:
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join([str(ROOT), e.get("PYTHONPATH", "")])
    return e


def cold_run(clip: Path, masks: Path, out: Path, engine_args: list[str]) -> dict:
    """Seconds from starting ``vmatte run`` to its first matted frame, and the process's wall/CPU seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "vmatte", "run", str(clip), "--masks", str(masks), "-o", str(out),
         *engine_args, "--progress", "json"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env(),
    )  # fmt: skip
    first = None
    for line in proc.stderr:
        if first is None and '"stage": "matte"' in line:
            first = time.perf_counter() - t0
    rc = proc.wait()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"first_frame_s": first, "wall_s": time.perf_counter() - t0, "cpu_s": cpu, "rc": rc}


def follow(client, job_id: str, t0: float) -> tuple[float | None, dict]:
    """Follow the job's SSE stream to its "end" event: (seconds from ``t0`` (perf_counter) to the first
    "matte" event, final job)."""
    first, final, name = None, None, None
    with client.stream("GET", f"/v1/jobs/{job_id}/events") as resp:
        for line in resp.iter_lines():
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                if first is None and name == "progress" and '"matte"' in line:
                    first = time.perf_counter() - t0
                if name == "end":
                    final = json.loads(line[5:])
                    break
    return first, final or {"status": "no end event"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=50)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--frames", type=int, default=8, help="frames per job's clip")
    ap.add_argument("--engine", default="classic", choices=["classic", "vitmatte", "auto"])
    ap.add_argument("--model", default="", help="model folder for --engine vitmatte (e.g. a tiny random one)")
    ap.add_argument(
        "--timeout", type=float, default=900, help="give up (and stop everything) after this long"
    )
    args = ap.parse_args()

    import httpx
    import psutil

    from vmatte.testing import Scene, write_clip, write_masks

    deadline = time.monotonic() + args.timeout
    work = Path(tempfile.mkdtemp(prefix="vmatte-load-"))
    server = None
    try:
        scene = Scene(width=160, height=96, frames=args.frames, speed=2.5)
        clip = write_clip(work / "clip.mp4", scene)
        masks = write_masks(work / "keyframes", scene, [0, args.frames - 1])
        engine_args = ["--engine", args.engine] + (["--model", args.model] if args.model else [])

        cold = cold_run(clip, masks, work / "cold.mov", engine_args)
        token = secrets.token_urlsafe(16)
        server = subprocess.Popen(
            [sys.executable, "-m", "vmatte", "serve", "--host", "127.0.0.1", "--port", "0", "--token", token,
             "--max-queue", str(max(16, args.clients)), *engine_args],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env(),
        )  # fmt: skip
        t_start = time.perf_counter()
        url = None
        while url is None:
            line = server.stdout.readline()
            if not line or time.monotonic() > deadline:
                raise SystemExit(f"vmatte serve did not start (exit {server.poll()})")
            if m := re.search(r"listening on (http://127\.0\.0\.1:\d+)", line):
                url = m.group(1)
        startup_s = time.perf_counter() - t_start
        proc = psutil.Process(server.pid)
        headers = {"Authorization": f"Bearer {token}"}

        def body(i: int) -> dict:
            return {"input": str(clip), "masks": str(masks), "outputs": [{"path": str(work / f"out{i}.mov")}]}

        warm = []
        with httpx.Client(base_url=url, headers=headers, timeout=120) as c:
            for i in range(2):
                t0 = time.perf_counter()
                job_id = c.post("/v1/jobs", json=body(-1 - i)).json()["id"]
                first, final = follow(c, job_id, t0)
                warm.append({"first_frame_s": first, "status": final["status"]})
        rss_before = proc.memory_info().rss
        cpu_before = sum(proc.cpu_times()[:2])

        results: list[dict] = []
        rss_samples: list[float] = []
        lock = threading.Lock()
        counter = iter(range(args.jobs))

        def client_loop() -> None:
            with httpx.Client(base_url=url, headers=headers, timeout=120) as c:
                while time.monotonic() < deadline:
                    with lock:
                        i = next(counter, None)
                    if i is None:
                        return
                    t0 = time.perf_counter()
                    try:
                        r = c.post("/v1/jobs", json=body(i))
                        if r.status_code != 201:
                            rec = {"status": f"HTTP {r.status_code}: {r.text[:200]}"}
                        else:
                            _, final = follow(c, r.json()["id"], t0)
                            rec = {"status": final["status"], "error": final.get("error")}
                    except httpx.HTTPError as exc:
                        rec = {"status": f"client error: {exc}"}
                    rec["wall_s"] = time.perf_counter() - t0
                    out = work / f"out{i}.mov"
                    rec["output_ok"] = out.is_file() and out.stat().st_size > 0
                    if out.exists():
                        out.unlink()  # keep the disk flat over many jobs
                    with lock:
                        results.append(rec)
                        if len(results) % max(1, args.jobs // 5) == 0:  # is RSS flat or growing?
                            rss_samples.append(round(proc.memory_info().rss / 2**20, 1))

        t0 = time.perf_counter()
        threads = [threading.Thread(target=client_loop) for _ in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(max(1.0, deadline - time.monotonic()))
        wall = time.perf_counter() - t0
        rss_after = proc.memory_info().rss
        cpu_server = sum(proc.cpu_times()[:2]) - cpu_before
        failures = [r for r in results if r["status"] != "ok" or not r["output_ok"]]
        summary = {
            "jobs": args.jobs,
            "finished": len(results),
            "clients": args.clients,
            "frames_per_job": args.frames,
            "engine": args.engine,
            "failures": len(failures) + (args.jobs - len(results)),
            "wall_s": round(wall, 2),
            "jobs_per_s": round(len(results) / wall, 3),
            "frames_per_s": round(len(results) * args.frames / wall, 2),
            "server_cpu_s": round(cpu_server, 2),
            "server_rss_mb_before": round(rss_before / 2**20, 1),
            "server_rss_mb_after": round(rss_after / 2**20, 1),
            "server_rss_mb_every_fifth": rss_samples,
            "server_startup_s": round(startup_s, 2),
            "cold_run_first_frame_s": round(cold["first_frame_s"] or -1, 2),
            "cold_run_wall_s": round(cold["wall_s"], 2),
            "cold_run_cpu_s": round(cold["cpu_s"], 2),
            "service_job1_first_frame_s": round(warm[0]["first_frame_s"] or -1, 2),
            "service_job2_first_frame_s": round(warm[1]["first_frame_s"] or -1, 2),
            "mean_job_wall_s": round(sum(r["wall_s"] for r in results) / max(1, len(results)), 2),
        }
        width = max(len(k) for k in summary)
        for k, v in summary.items():
            print(f"{k:<{width}}  {v}")
        for f in failures[:5]:
            print("failure:", f)
        print(json.dumps(summary))
        return 1 if summary["failures"] else 0
    finally:
        if server is not None and server.poll() is None:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
