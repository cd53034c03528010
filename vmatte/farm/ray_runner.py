"""Run a chunked job on Ray: one Ray task per chunk, then assembly in the driver.

- ``address="local"`` (or None/""): start a new Ray on this machine on the spot and shut it down afterwards,
  even when another Ray cluster runs there; any other value is an existing cluster's address
  (``ray://head:10001``, ``auto``, ``head:6379``). A ``host:port`` that nothing answers at fails in seconds
  (Ray itself would retry for minutes); a cluster with token authentication (Ray >= 2.59 turns it on by
  default) needs ``RAY_AUTH_MODE=token`` and its token here, and a refused token is a usage error (exit 2).
  Ray's own connection log lines are held back and shown only when the connection succeeds, so a failure is
  one line. When Ray is already initialised in this process (a notebook, a test) it is used as is.
- Each task asks for ``num_gpus=1`` when the cluster has GPUs (Ray then sets ``CUDA_VISIBLE_DEVICES`` and the
  engine's ``device="auto"`` picks that GPU), else ``num_cpus=1``; its library thread pools and codec threads
  are capped at its CPUs (``pipeline.cpu_threads``/``encode_threads``, unless set). Tasks reuse their worker process
  (``max_calls=0``) and cache the loaded engine there, so a model loads once per worker, not once per chunk.
- Workers read the clip and masks and write outputs by path: on a cluster, every node must see the same
  paths (shared storage), and vmatte must be installed on every node.
- Fault tolerance comes from the manifest, not from Ray: each task writes its chunk's checksummed record when
  done; a crashed task is retried by Ray (``max_retries``) and, if the driver itself dies, a re-run of the
  same command skips every verified chunk.

Ray is optional (``pip install 'vmatte[ray]'``) and imported only here, only when used.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import sys
import tempfile
import threading
import time
from typing import Any

from vmatte.config import RunConfig
from vmatte.errors import Interrupted, TransientError, UsageError, VmatteError
from vmatte.farm.chunked import Job, run_job
from vmatte.farm.jobreport import JobProgress, JobReport, interrupted_in, merge_chunk
from vmatte.farm.plan import Chunk
from vmatte.io.atomic import write_text_atomic
from vmatte.pipeline.runner import EngineSlot

# per worker process: engine config → loaded engine (Ray reuses worker processes across tasks)
_ENGINES: dict[str, Any] = {}
_WORKER_BORN = time.time()


def import_ray():
    """Import Ray or raise a UsageError that says how to install it."""
    try:
        import ray
    except ImportError:
        raise UsageError(
            "--ray needs Ray, which is not installed", hint="pip install 'vmatte[ray]'"
        ) from None
    return ray


_AUTH_FAILURE = ("InvalidAuthToken", "Unauthenticated", "AuthenticationError")


def _probe_target(address: str) -> tuple[str, int] | None:
    """(host, port) to check before connecting: ``host:port`` or ``ray://host:port``; None for ``auto`` and
    anything else Ray resolves itself."""
    rest = address.removeprefix("ray://")
    host, sep, port = rest.rpartition(":")
    if not sep or not host or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


@contextlib.contextmanager
def _stderr_held():
    """Send file descriptor 2 to a temporary file while the block runs; the yielded dict gets what was written
    as ``["text"]`` when the block ends. Ray's C++ core logs connection retries straight to fd 2."""
    sys.stderr.flush()
    saved = os.dup(2)
    box: dict[str, str] = {}
    with tempfile.TemporaryFile() as f:
        os.dup2(f.fileno(), 2)
        try:
            yield box
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            f.seek(0)
            box["text"] = f.read().decode(errors="replace")


def _init(ray, address: str | None, num_cpus: int | None):
    """Start a local Ray or connect to a cluster; a failure becomes one VmatteError line. Returns the
    :mod:`~vmatte.farm.reaper` watchdog of a local Ray (None when connecting to a cluster)."""
    if address in (None, "", "local"):
        from vmatte.farm import reaper

        # address="local" starts a new instance even when a cluster runs on this machine: a plain ray.init()
        # would join that cluster and then refuse num_cpus
        ray.init(
            address="local",
            num_cpus=num_cpus,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
        # Ray's agents outlive a SIGKILLed driver: the watchdog removes them if this process dies first
        return reaper.start()
    target = _probe_target(address)
    if target is not None:
        try:
            socket.create_connection(target, timeout=5).close()
        except OSError as exc:
            raise TransientError(
                f"cannot reach the Ray cluster at {address}: nothing answers at {target[0]}:{target[1]} "
                f"({exc.strerror or exc})",
                hint="check the address and that the cluster is up, then run the same command again",
            ) from None
    failed: BaseException | None = None
    with _stderr_held() as box:
        try:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
        except Exception as exc:  # ConnectionError, RuntimeError, ray.exceptions.AuthenticationError, ...
            failed = exc
    if failed is None:
        sys.stderr.write(box["text"])  # connected: Ray's notes (a version warning, say) are worth seeing
        return None
    if any(s in box["text"] or s in str(failed) for s in _AUTH_FAILURE):
        raise UsageError(
            f"the Ray cluster at {address} refused this client's authentication token",
            hint="set RAY_AUTH_MODE=token and the cluster's token (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or "
            "~/.ray/auth_token) as on its nodes",
        )
    raise TransientError(
        f"cannot connect to the Ray cluster at {address} ({failed})",
        hint="check the address and that the cluster is up",
    )


def _run_chunk_task(job: Job, chunk: Chunk, submitted_at: float) -> dict[str, Any]:
    """Body of one Ray task: load (or reuse) the engine in this worker, render the chunk, record it.

    Returns the chunk record plus overhead figures in seconds: ``queue_s`` (submission → task start: scheduling
    and, for a fresh worker, process start), ``engine_load_s`` (0 when this worker had the engine already)."""
    started = time.time()
    import json

    key = json.dumps(job.config.engine.__dict__, sort_keys=True, default=str)
    reused = key in _ENGINES
    t = time.perf_counter()
    if not reused:
        from vmatte.engine import load_engine

        _ENGINES[key] = load_engine(job.config.engine)
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    cpu = time.process_time()
    slot = EngineSlot(job.config, _ENGINES[key])  # borrowed: the worker keeps it for its next task
    rec = job.run_chunk(chunk, slot, on_progress=_ProgressFile(progress_path(job, chunk)))
    return {
        "record": rec,
        "task": {
            "key": chunk.key,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "queue_s": round(started - submitted_at, 3),
            "worker_age_s": round(started - _WORKER_BORN, 3),
            "engine_load_s": round(load_s, 3),
            "engine_reused": reused,
            "chunk_s": round(time.perf_counter() - t, 3),
            # CPU seconds this worker got for the chunk (all its threads): chunk_s >> cpu_s means contention
            "cpu_s": round(time.process_time() - cpu, 3),
        },
    }


def progress_path(job: Job, chunk: Chunk):
    """Where a running task leaves its frame count for the driver (the work folder: shared storage)."""
    return job.manifest.work / "progress" / f"{chunk.key}.json"


class _ProgressFile:
    """on_progress for a task: write ``{"done": frames written}`` of the chunk to a small file at most every
    0.5 s (and at the last frame); the driver sums these into job-level frames, rate and ETA."""

    def __init__(self, path):
        self.path = path
        self.last = 0.0
        path.parent.mkdir(parents=True, exist_ok=True)

    def __call__(self, event: dict[str, Any]) -> None:
        if event.get("stage") != "matte":
            return
        now = time.monotonic()
        done, total = int(event.get("done", 0)), event.get("total")
        if now - self.last < 0.5 and done != total:
            return
        self.last = now
        with contextlib.suppress(OSError):  # progress is best effort; the chunk's record is what counts
            write_text_atomic(self.path, f'{{"done": {done}}}')


def _in_flight(paths) -> int:
    """Frames written so far by running chunks, from their progress files."""
    import json

    n = 0
    for p in paths:
        with contextlib.suppress(OSError, ValueError, TypeError):
            n += int(json.loads(p.read_text(encoding="utf-8"))["done"])
    return n


def _unwrap(ray, exc: BaseException) -> BaseException:
    """A task's VmatteError comes back wrapped in a RayTaskError: return the original (exit code, retryable);
    a lost worker or node becomes a retryable TransientError."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, VmatteError):
        return cause
    if isinstance(exc, VmatteError):
        return exc
    lost = tuple(
        getattr(ray.exceptions, n)
        for n in (
            "WorkerCrashedError",
            "NodeDiedError",
            "ActorDiedError",
            "OutOfMemoryError",
            "RaySystemError",
        )
        if hasattr(ray.exceptions, n)
    )
    if isinstance(exc, lost):
        return TransientError(
            f"a Ray worker was lost ({type(exc).__name__})",
            hint="run the same command again: finished chunks are kept",
        )
    return cause if isinstance(cause, BaseException) else exc


def run_ray(
    config: RunConfig,
    chunk_size: int | None = None,
    *,
    address: str | None = "local",
    num_cpus: int | None = None,
    resume: bool = True,
    max_retries: int = 2,
    on_progress=None,
    cancel: threading.Event | None = None,
) -> JobReport:
    """Render ``config`` as chunks on Ray and assemble the outputs. Returns the job report.

    chunk_size: frames per chunk; None = about two chunks per GPU (or CPU) slot of the cluster.
    address: "local" / None / "" start a local Ray here (``num_cpus`` slots, default all cores); anything else
        is passed to ``ray.init(address=...)``.
    """
    ray = import_ray()
    started_here = False
    watchdog = None
    t_init = time.perf_counter()
    if not ray.is_initialized():
        watchdog = _init(ray, address, num_cpus)
        started_here = True
    init_s = time.perf_counter() - t_init
    try:
        res = ray.cluster_resources()
        gpus = int(res.get("GPU", 0))
        slots = gpus or int(res.get("CPU", 1)) or 1
        if chunk_size is None:
            from vmatte.io.decode import open_clip

            n = open_clip(config.input).info.frame_count
            chunk_size = max(1, -(-n // (2 * slots)))
        task_opts: dict[str, Any] = {"max_calls": 0, "max_retries": max_retries}
        task_opts.update({"num_gpus": 1, "num_cpus": 1} if gpus else {"num_cpus": 1})
        # a task asked Ray for num_cpus cores: keep its library thread pools and codec threads within them, or
        # tasks sharing a node oversubscribe it (unless the user set their own caps)
        pipe = config.pipeline
        config = config.replace(
            pipeline=dataclasses.replace(
                pipe,
                cpu_threads=pipe.cpu_threads or task_opts["num_cpus"],
                encode_threads=pipe.encode_threads or task_opts["num_cpus"],
            )
        )
        remote = ray.remote(**task_opts)(_run_chunk_task)

        def execute(
            job: Job,
            chunks: list[Chunk],
            report: JobReport,
            progress: JobProgress,
            cancel_ev: threading.Event,
        ) -> None:
            for c in chunks:  # a killed earlier run's counts must not be read as this run's
                progress_path(job, c).unlink(missing_ok=True)
            job_ref = ray.put(job)
            pending = {remote.remote(job_ref, c, time.time()): c for c in chunks}
            tasks = report.farm.setdefault("tasks", [])
            polled = time.monotonic()
            try:
                while pending:
                    if cancel_ev.is_set():
                        running = [c for c in pending.values() if progress_path(job, c).exists()]
                        raise interrupted_in(
                            report, running or list(pending.values()), Interrupted("cancelled")
                        )
                    ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.2)
                    for ref in ready:
                        c = pending.pop(ref)
                        try:
                            out = ray.get(ref)
                        except Exception as exc:  # unwrap to the real error (exit code, retryable)
                            raise _unwrap(ray, exc) from None
                        merge_chunk(report, out["record"], "done", c)
                        tasks.append(out["task"])
                        progress_path(job, c).unlink(missing_ok=True)
                        progress.chunk_done(c)
                    if time.monotonic() - polled >= 0.5:
                        polled = time.monotonic()
                        progress.frames(_in_flight(progress_path(job, c) for c in pending.values()))
                job.manifest.write(job.job_info())
            finally:
                for ref in pending:  # on error or cancel: stop what is still running (no record → redone)
                    with contextlib.suppress(Exception):
                        ray.cancel(ref, force=True)

        info = {
            "ray": {
                "address": address or "local",
                "started_here": started_here,
                "init_s": round(init_s, 3),
                "gpus": gpus,
                "cpus": int(res.get("CPU", 0)),
                "task_resources": {k: v for k, v in task_opts.items() if k.startswith("num_")},
            }
        }
        return run_job(
            config,
            chunk_size,
            execute,
            resume=resume,
            on_progress=on_progress,
            cancel=cancel,
            mode="ray",
            farm_info=info,
        )
    finally:
        if started_here:
            ray.shutdown()
            from vmatte.farm import reaper

            reaper.stop(watchdog)
