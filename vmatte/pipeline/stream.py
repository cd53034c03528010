"""The streaming skeleton every render shares:

    [decode thread] --bounded queue--> [main: stage.push / stage.flush] --bounded queue--> [encode thread]

The encode stage decontaminates once per frame (when an output asks for it) and renders each writer's pixels,
on a few worker threads on hosts with cores to spare (``threads.current_plan().encode_workers``), then writes
every output in frame order on the encode thread. Writers
work under temporary names; on success they are all renamed into place, on any error or cancel every one is
removed again (also those already renamed, so a retry does not stop at "already exists").

The matting run (:func:`vmatte.pipeline.runner.render`, stage = propagate → engine → smooth) and a chunked
job's final encode (stage = attach the chunks' alpha) both go through :func:`write_stream`, so both get the
decode/encode threads, back-pressure, the cancel checks and the same writer lifetime.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

from vmatte.errors import InputError
from vmatte.frame import Frame
from vmatte.pipeline import threads
from vmatte.pipeline.report import Report
from vmatte.pipeline.threads import Cancelled, Prefetch, Sink

ProgressFn = Callable[[dict[str, Any]], None]

MIN_QUEUE_DEPTH = 4  # frames each inter-thread queue holds at least (was the option pipeline.queue_depth)


def queue_depth(batch_size: int = 1) -> int:
    """Frames held in each inter-thread queue for an engine batch of ``batch_size`` frames: two batches, at
    least :data:`MIN_QUEUE_DEPTH`; bounded, so RAM stays flat with clip length."""
    return max(MIN_QUEUE_DEPTH, 2 * max(1, batch_size))


class Stage(Protocol):
    """Main-thread work between decode and encode. Built with an ``emit(frame)`` it calls for each finished
    frame, in clip order; ``flush`` emits whatever it still holds at the end of the stream."""

    def push(self, frame: Frame) -> None: ...

    def flush(self) -> None: ...


class _Output:
    """Encode-stage work: ``prepare`` decontaminates once and renders each writer's pixels (on the stage's
    worker threads, several frames at once), ``__call__`` writes to every writer in frame order."""

    def __init__(
        self,
        writers: list,
        needs_fg: bool,
        report: Report,
        progress: Callable[[int], None],
        pooled: bool = False,
    ) -> None:
        # without stage workers a video writer converts on its own pool (vmatte-sws): leave rendering to it
        self.pooled = pooled
        self.writers = writers
        self.needs_fg = needs_fg
        self.report = report
        self.progress = progress
        self._lock = threading.Lock()  # report sums from several threads
        self.fg_fn = None
        if needs_fg:
            from vmatte.io.compose import decontaminate

            self.fg_fn = decontaminate

    def prepare(self, frame: Frame) -> tuple[Frame, list]:
        t, c = time.perf_counter(), time.thread_time()
        if self.fg_fn is not None and frame.alpha is not None:
            frame = self.fg_fn(frame)
        c1 = time.thread_time()
        ready = [w.prepare(frame) if self.pooled and hasattr(w, "prepare") else None for w in self.writers]
        with self._lock:
            self.report.times.encode += time.perf_counter() - t
            self.report.cpu.decontaminate += c1 - c
            self.report.cpu.write += time.thread_time() - c1
        return frame, ready

    def __call__(self, item: tuple[Frame, list]) -> None:
        frame, ready = item
        t, c = time.perf_counter(), time.thread_time()
        for w, pixels in zip(self.writers, ready):
            if pixels is None:
                w.write(frame)
            else:
                w.write(frame, pixels)
        with self._lock:
            self.report.times.encode += time.perf_counter() - t
            self.report.cpu.write += time.thread_time() - c
        self.report.frames_written += 1
        self.progress(self.report.frames_written)


def _progress_counter(total: int, emit_progress: ProgressFn) -> Callable[[int], None]:
    """``written(done)`` → a ``matte`` progress event with frames/s and an ETA."""
    t_stream = time.perf_counter()
    first_done: list[float] = []  # when the first frame was written

    def written(done: int) -> None:
        now = time.perf_counter()
        if not first_done:
            first_done.append(now)
        fps = done / (now - t_stream) if now > t_stream else 0.0
        # the rate after the first frame: the first one pays for filling the pipeline (and any warm-up), so an
        # ETA from it alone is absurd; none is given until a second frame is done
        steady = (done - 1) / (now - first_done[0]) if done > 1 and now > first_done[0] else 0.0
        eta = (total - done) / steady if steady > 0 else None
        emit_progress(
            {
                "event": "progress",
                "stage": "matte",
                "done": done,
                "total": total,
                "fps": round(fps, 3),
                "eta_s": eta,
            }
        )

    return written


def write_stream(
    clip,
    decode: tuple[int, int],
    write: tuple[int, int],
    make_stage: Callable[[Callable[[Frame], None]], Stage],
    outputs: Sequence,
    *,
    overwrite: bool,
    pipeline,
    depth: int,
    report: Report,
    cancel: threading.Event,
    on_progress: ProgressFn | None = None,
) -> list:
    """Decode clip frames ``decode`` (inclusive), run them through the stage, write frames ``write`` (inclusive;
    frames the stage emits outside it are context, dropped) to one writer per ``outputs`` config. Returns the
    closed writers. ``pipeline``: the run's :class:`~vmatte.config.PipelineConfig` (encoder threads, corrupt
    frames allowed); ``depth``: frames held in each queue."""
    from vmatte.io.compose import needs_foreground
    from vmatte.io.encode import open_writer

    start, end = write
    written = _progress_counter(end - start + 1, on_progress or (lambda event: None))
    writers: list = []
    sink = None
    succeeded = False
    try:
        for out_cfg in outputs:
            writers.append(
                open_writer(
                    out_cfg,
                    clip.info,
                    overwrite=overwrite,
                    threads=pipeline.encode_threads,
                    frame_range=write,
                )
            )
            for note in writers[-1].notes:
                report.warn(note)  # e.g. audio re-encoded because the container cannot carry the source codec
        needs_fg = any(needs_foreground(c) for c in outputs)
        workers = threads.current_plan().encode_workers
        out = _Output(writers, needs_fg, report, written, pooled=workers > 0)
        sink = Sink(out, depth=depth, cancel=cancel, name="encode", prepare=out.prepare, workers=workers)

        def emit(frame: Frame) -> None:
            if frame.index < start or frame.index > end:  # context of a range: not ours to write
                return
            if cancel.is_set():
                raise Cancelled()
            t0 = time.perf_counter()
            sink.put(frame)
            report.times.encode_wait += time.perf_counter() - t0

        stage = make_stage(emit)
        corrupt: list[int] = []
        frames = clip.frames(*decode, max_corrupt=pipeline.max_corrupt_frames, corrupt=corrupt)
        with Prefetch(frames, depth=depth, cancel=cancel, name="decode") as decoded:
            t_wait = time.perf_counter()
            for frame in decoded:
                report.times.decode_wait += time.perf_counter() - t_wait
                if cancel.is_set():
                    raise Cancelled()
                report.frames_decoded += 1
                stage.push(frame)
                t_wait = time.perf_counter()
            stage.flush()
        report.corrupt_frames = corrupt
        if corrupt:
            report.warn(f"{len(corrupt)} corrupt frame(s) skipped near {corrupt[:10]}")
        sink.close()
        sink = None
        if report.frames_written == 0:
            raise InputError(
                f"{clip.info.path}: no frames decoded in range {start}-{end}", hint="the clip may be corrupt"
            )
        _close_all(writers)
        succeeded = True
    finally:
        if sink is not None:
            sink.abort()
        if not succeeded:
            for w in writers:
                with contextlib.suppress(Exception):
                    w.abort()
    return writers


def _close_all(writers: Iterable) -> None:
    closed: list = []
    try:
        for w in writers:
            w.close()
            closed.append(w)
    except BaseException:
        # a later output failed to finalise (e.g. disk full): the run failed as a whole, so the outputs
        # already renamed into place go too, or a retry would stop at "already exists"
        for w in closed:
            _remove_output(w)
        raise


def _remove_output(writer) -> None:
    """Delete what a closed writer put at its final path(s) (a video file, or a sequence's frames)."""
    paths = list(getattr(writer, "written", None) or [])  # only sequence writers list their frame files
    p = Path(writer.path)
    if not paths and p.is_file():
        paths = [p]
    for f in paths:
        with contextlib.suppress(OSError):
            Path(f).unlink()
    from vmatte.io.writers.common import remove_empty_folders

    remove_empty_folders(list(writer.created_dirs))
