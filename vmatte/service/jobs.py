"""Jobs of ``vmatte serve``: parse a JSON run config, queue it, run it with the loaded engine, report.

One worker thread runs one job at a time (one engine on one device; two jobs at once would only fight over
it). The queue is bounded: a full queue refuses new jobs instead of growing without end. A job that fails,
however it fails, ends in status "error" with the CLI's exit code and one-line message; the worker goes on.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from pathlib import PurePath
from typing import Any

from vmatte.config import RunConfig, build_config, parse_frame_range
from vmatte.configtools import deep_merge, to_dict
from vmatte.engine.config import EngineConfig
from vmatte.errors import ConfigError, Interrupted, VmatteError

log = logging.getLogger("vmatte.service")

QUEUED, RUNNING, OK, ERROR, CANCELLED = "queued", "running", "ok", "error", "cancelled"
FINISHED = (OK, ERROR, CANCELLED)
SOURCE = "request"  # how config errors name the job body (a CLI error names the file or "command line")


class QueueFull(Exception):
    """The bounded queue holds ``max_queue`` waiting jobs already."""


class JobFinished(Exception):
    """A cancel arrived for a job that already ended."""


def parse_job(body: Any, engine_config: EngineConfig, preset: str | None = None) -> RunConfig:
    """A job body (a JSON object with the TOML config's keys) → RunConfig, or ConfigError/UsageError.

    The server's engine settings are the bottom layer: a job may repeat them but not change them (the engine
    is loaded once). Paths must be absolute: the service does not share the client's working folder.
    """
    if not isinstance(body, dict):
        raise ConfigError(
            f"{SOURCE}: the job must be a JSON object, got {type(body).__name__}",
            hint='send the run config, e.g. {"input": "/abs/clip.mp4", "masks": "/abs/keyframes"}',
        )
    base = {"engine": to_dict(engine_config)}
    config = build_config(preset=preset, overrides=deep_merge(base, body), overrides_source=SOURCE)
    if config.engine != engine_config:
        changed = [
            k for k, v in to_dict(config.engine).items() if getattr(engine_config, k) != v
        ]  # name the keys, not the whole table
        raise ConfigError(
            f"{SOURCE}: engine.{changed[0]} = {getattr(config.engine, changed[0])!r} but this server has loaded "
            f"engine.{changed[0]} = {getattr(engine_config, changed[0])!r}",
            hint="leave [engine] out of jobs, or start vmatte serve with those engine options",
        )
    for key in ("input", "masks"):
        if not getattr(config, key):
            raise ConfigError(f"{SOURCE}: '{key}' is missing", hint=f"give the {key} as an absolute path")
    paths = [("input", config.input), ("masks", config.masks), ("report", config.report)]
    paths += [(f"outputs[{i}].path", o.path) for i, o in enumerate(config.outputs)]
    for where, value in paths:
        if value and not PurePath(value).is_absolute():
            raise ConfigError(
                f"{SOURCE}: {where} = {value!r} is a relative path",
                hint="send absolute paths: the service does not share your working folder",
            )
    parse_frame_range(config.frames)  # a bad range is a 400 now, not a failed job later
    return config


class Job:
    """One submitted run. ``events`` keeps the last ``max_events`` progress events as (seq, event)."""

    def __init__(self, config: RunConfig, max_events: int = 2000) -> None:
        self.id = secrets.token_hex(8)
        self.config = config
        self.status = QUEUED
        self.created = time.time()
        self.started: float | None = None
        self.finished: float | None = None
        self.progress: dict | None = None
        self.report: dict | None = None
        self.error: dict | None = None
        self.cancel = threading.Event()
        self.done = threading.Event()
        self.events: deque[tuple[int, dict]] = deque(maxlen=max_events)
        self._seq = 0
        self._lock = threading.Lock()
        self._watchers: list[Callable[[], None]] = []

    # progress events arrive from the run's worker threads (propagate, encode): everything under the lock
    def add_event(self, event: dict) -> None:
        event = {"t": round(time.time(), 3), **event}  # the shape of `--progress json` lines
        with self._lock:
            self._seq += 1
            self.events.append((self._seq, event))
            self.progress = event
        self._notify()

    def events_after(self, seq: int) -> tuple[list[tuple[int, dict]], bool]:
        """Events newer than ``seq`` and whether the job had finished when they were taken (so a reader that
        drained them and saw True has seen every event)."""
        with self._lock:
            return [e for e in self.events if e[0] > seq], self.status in FINISHED

    def watch(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback()`` (from any thread) on every event and status change; returns the unwatch."""
        with self._lock:
            self._watchers.append(callback)

        def unwatch() -> None:
            with self._lock, contextlib.suppress(ValueError):
                self._watchers.remove(callback)

        return unwatch

    def set_status(self, status: str, **fields: Any) -> None:
        with self._lock:
            self.status = status
            for k, v in fields.items():
                setattr(self, k, v)
            if status in FINISHED:
                self.finished = time.time()
        if status in FINISHED:
            self.done.set()
        self._notify()

    def _notify(self) -> None:
        with self._lock:
            watchers = list(self._watchers)
        for w in watchers:
            with contextlib.suppress(Exception):  # a closed event loop must not break the run
                w()

    def to_dict(self) -> dict:
        with self._lock:
            return {
                "id": self.id,
                "status": self.status,
                "created": self.created,
                "started": self.started,
                "finished": self.finished,
                "progress": self.progress,
                "report": self.report,
                "error": self.error,
            }


class JobManager:
    """A bounded queue of jobs and the one worker thread that runs them with ``engine``.

    ``run_fn`` is :func:`vmatte.run` (injectable for tests). ``keep_finished`` bounds how many ended jobs stay
    queryable, so a long-lived server's memory stays flat.
    """

    def __init__(
        self,
        engine,
        engine_config: EngineConfig,
        *,
        max_queue: int = 16,
        keep_finished: int = 256,
        run_fn: Callable | None = None,
    ) -> None:
        if run_fn is None:
            from vmatte import run as run_fn
        self.engine = engine
        self.engine_config = engine_config
        self.max_queue = max_queue
        self.keep_finished = keep_finished
        self._run = run_fn
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._queue: deque[Job] = deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._current: Job | None = None
        self.jobs_run = 0
        self._thread = threading.Thread(target=self._work, name="vmatte-serve-worker", daemon=True)
        self._thread.start()

    def submit(self, config: RunConfig) -> Job:
        job = Job(config)
        with self._cond:
            if self._stopping:
                raise QueueFull("the server is shutting down")
            if len(self._queue) >= self.max_queue:
                raise QueueFull(f"the queue is full ({self.max_queue} jobs waiting)")
            self._jobs[job.id] = job
            self._queue.append(job)
            self._forget_old()
            self._cond.notify()
        log.info("job %s queued: %s", job.id, config.input)
        return job

    def get(self, job_id: str) -> Job | None:
        with self._cond:
            return self._jobs.get(job_id)

    def list(self) -> list[Job]:
        with self._cond:
            return list(self._jobs.values())

    def counts(self) -> dict:
        with self._cond:
            return {
                "queued": len(self._queue),
                "running": int(self._current is not None),
                "max_queue": self.max_queue,
                "jobs_run": self.jobs_run,
            }

    def cancel(self, job_id: str) -> Job | None:
        """Cancel a queued job at once, or signal a running one (the run stops within ~0.1-1 s and removes its
        temporaries, as on Ctrl-C). Raises JobFinished for a job that already ended; None if unknown."""
        with self._cond:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            if job.status in FINISHED:
                raise JobFinished(job.status)
            job.cancel.set()
            if job in self._queue:
                self._queue.remove(job)
                job.set_status(CANCELLED, error=_error_dict(Interrupted("cancelled before it started")))
        return job

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """Cancel everything (queued and running) and join the worker."""
        with self._cond:
            self._stopping = True
            pending = list(self._queue)
            self._queue.clear()
            running = self._current
            self._cond.notify_all()
        for job in pending:
            job.cancel.set()
            job.set_status(CANCELLED, error=_error_dict(Interrupted("server shut down")))
        if running is not None:
            running.cancel.set()
        self._thread.join(timeout_s)

    def _forget_old(self) -> None:
        finished = [j for j in self._jobs.values() if j.status in FINISHED]
        for job in finished[: max(0, len(finished) - self.keep_finished)]:
            del self._jobs[job.id]

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                job = self._queue.popleft()
                self._current = job
            try:
                self._run_one(job)
            finally:
                with self._cond:
                    self._current = None
                    self.jobs_run += 1
                    self._forget_old()

    def _run_one(self, job: Job) -> None:
        job.set_status(RUNNING, started=time.time())
        t0 = time.perf_counter()
        try:
            report = self._run(job.config, engine=self.engine, on_progress=job.add_event, cancel=job.cancel)
        except Interrupted as err:
            job.set_status(CANCELLED, error=_error_dict(err), report=_report_dict(err))
            log.info("job %s cancelled after %.1f s", job.id, time.perf_counter() - t0)
        except VmatteError as err:
            job.set_status(ERROR, error=_error_dict(err), report=_report_dict(err))
            log.warning("job %s failed (exit %d): %s", job.id, err.exit_code, err)
        except (
            Exception
        ) as exc:  # a bug: the job fails with its traceback in the server log, the server lives
            log.exception("job %s: internal error", job.id)
            job.set_status(
                ERROR,
                error={
                    "message": f"internal error (bug): {type(exc).__name__}: {exc}",
                    "exit_code": 1,
                    "retryable": False,
                },
            )
        else:
            job.set_status(OK, report=report.to_dict())
            log.info(
                "job %s ok: %d frames in %.1f s", job.id, report.frames_written, time.perf_counter() - t0
            )


def _error_dict(err: VmatteError) -> dict:
    return {"message": str(err), "exit_code": err.exit_code, "retryable": err.retryable}


def _report_dict(err: BaseException) -> dict | None:
    rep = getattr(err, "report", None)
    return rep.to_dict() if rep is not None else None
