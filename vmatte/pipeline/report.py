"""The run report: what happened, how long each stage took, what went wrong. JSON-able for farms."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any


def message_event(kind: str, text: str) -> dict[str, Any]:
    """A warning/info event for ``on_progress``. It also carries ``stage`` (= kind), ``done`` and ``total`` so a
    callback written for progress events only (``print(e["stage"], e["done"], e["total"])``) keeps working."""
    return {"event": kind, "message": text, "stage": kind, "done": 0, "total": 0}


@dataclass
class StageTimes:
    """Seconds spent in each stage (main-thread stages are exclusive; decode/encode run in their own threads)."""

    probe: float = 0.0
    load_engine: float = 0.0
    propagate_prepare: float = 0.0
    decode_wait: float = 0.0  # main thread waiting for the decoder (>0 means decode is a bottleneck)
    propagate: float = 0.0
    engine: float = 0.0
    engine_cpu: float = (
        0.0  # CPU seconds of the thread running the engine stage (its own worker threads excluded)
    )
    smooth: float = 0.0
    encode_wait: float = 0.0  # main thread blocked on a full encode queue (>0 means encode is a bottleneck)
    encode: float = 0.0  # encode thread busy time (decontamination + writers)
    total: float = 0.0


@dataclass
class StageCPU:
    """CPU seconds per stage, measured with ``time.thread_time`` in the thread that runs the stage (so a stage's
    figure excludes time its thread spent waiting). ``process`` is the whole process (``time.process_time``,
    every thread: the stages above plus decode, the propagation helpers and native worker threads such as
    FFmpeg's frame threads and OpenCV's pool, which no Python timer sees)."""

    propagate_prepare: float = 0.0  # the pre-pass thread (its own helper threads are not included)
    propagate: float = 0.0  # main thread: per-frame trimaps + alpha feedback
    engine: float = 0.0  # main thread: push/flush (model work on a GPU is not CPU time)
    smooth: float = 0.0  # main thread
    decontaminate: float = 0.0  # encode thread: foreground estimation
    write: float = 0.0  # encode thread: the writers (their native encoder threads are in ``process`` only)
    process: float = 0.0


@dataclass
class Report:
    """Summary of one run. ``status`` is "ok", "error" or "cancelled"; ``exit_code`` matches the CLI's."""

    input: str = ""
    outputs: list[str] = field(default_factory=list)
    frame_range: list[int] | None = None
    frames_decoded: int = 0
    frames_written: int = 0
    width: int = 0
    height: int = 0
    engine: dict[str, Any] = field(default_factory=dict)
    times: StageTimes = field(default_factory=StageTimes)
    cpu: StageCPU = field(default_factory=StageCPU)
    warnings: list[str] = field(default_factory=list)
    keyframes: dict[str, int] = field(default_factory=dict)  # mask file name -> the clip frame it was read as
    corrupt_frames: list[int] = field(default_factory=list)
    propagation: dict[str, Any] = field(default_factory=dict)
    smoothing: dict[str, Any] = field(default_factory=dict)
    status: str = "ok"
    exit_code: int = 0
    error: str = ""
    retryable: bool = False
    started_at: float = field(default_factory=time.time)

    @property
    def fps(self) -> float:
        return self.frames_written / self.times.total if self.times.total > 0 else 0.0

    @property
    def suggested_keyframes(self) -> list[int]:
        return list(self.propagation.get("suggested_keyframes", []))

    def warn(self, message: str) -> None:
        """Record a warning and pass it on at once to the listener (the CLI's display), so it is seen even if
        the run then fails or is cancelled."""
        self.warnings.append(message)
        listener = getattr(self, "_listener", None)  # an attribute, not a field: never serialised
        if listener is not None:
            listener(message_event("warning", message))

    def listen(self, fn) -> None:
        """``fn(event: dict)`` receives ``{"event": "warning", "message": ...}`` for every later :meth:`warn`."""
        self._listener = fn

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["fps"] = round(self.fps, 3)
        d["suggested_keyframes"] = self.suggested_keyframes
        return d

    def write_json(self, path: str | os.PathLike) -> None:
        """Write atomically (temp + rename) so a farm monitor never reads half a report."""
        from vmatte.io.atomic import write_text_atomic

        write_text_atomic(path, json.dumps(self.to_dict(), indent=2, default=str))

    def save(self, path: str | os.PathLike, *, failing: bool) -> None:
        """Write the report file for a run (the one policy, for runs, jobs, signals and bad command lines): if
        writing fails while the run is already failing, the run's own error wins (a full disk must still exit
        with the run's code and one line, not a traceback from the report), so the OSError is dropped; after a
        good run it is the error, one line (DiskFull, exit 8, or OutputError)."""
        try:
            self.write_json(path)
        except OSError as exc:
            if failing:
                return
            from pathlib import Path

            from vmatte.io.writers.common import oserror

            raise oserror(exc, Path(path)) from None
