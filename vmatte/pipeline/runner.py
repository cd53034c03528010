"""The chain, end to end, for one clip:

    [decode thread] --bounded queue--> [main: propagate → engine → smooth] --bounded queue--> [encode thread]

Order of work, so bad input fails fast and nothing is lost:
1. probe the clip, parse the frame range, validate keyframe masks and output paths (no model loaded yet);
2. load the engine (unless one was passed in) while the propagation pass runs in a worker thread;
3. stream frames through the chain; writers work under temporary names;
4. on success writers rename into place; on any error or cancel they remove their temporaries.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vmatte.config import RunConfig, parse_frame_range
from vmatte.errors import InputError, Interrupted, OutputError, UsageError, VmatteError, say
from vmatte.frame import Frame
from vmatte.pipeline.libnotes import LibraryNotes, capture_warnings
from vmatte.pipeline.report import Report, message_event
from vmatte.pipeline.threads import AnyEvent, Cancelled, Prefetch, Sink, cpu_thread_limit, run_in_thread

ProgressFn = Callable[[dict[str, Any]], None]


def smoothing_context(smooth_cfg) -> tuple[int, int, str]:
    """(warm-up frames before a range, look-ahead frames after it, where the figures came from) of the
    temporal smoother: its output for frame t depends on raw alpha of frames t - lookbehind .. t + lookahead
    (``TemporalSmoother.warmup_frames`` is ``lookbehind``), so the window follows from the config alone."""
    if not smooth_cfg.enabled:
        return 0, 0, "smoothing disabled"
    return (
        int(smooth_cfg.lookbehind),
        int(smooth_cfg.lookahead),
        "TemporalSmoother window (lookbehind / lookahead)",
    )


def context_range(
    start: int, end: int, frame_count: int, keyframes: list[int], config: RunConfig
) -> tuple[int, int]:
    """Inclusive (first, last) clip frames a run of ``start..end`` must decode, matte and smooth so that its
    output equals the same frames of a whole-clip run (outputs outside ``start..end`` are dropped).

    - smoothing: ``warm-up`` frames before and ``look-ahead`` frames after (a finite window);
    - alpha feedback (``propagate.use_alpha_feedback``): the trimap of a frame depends on the matte of the frame
      before it, back to the last keyframe (keyframe trimaps are fixed), so matting starts at the keyframe at or
      before the smoothing warm-up (frame 0 when there is none). The chain also restarts engine batches at every
      keyframe (see ``_Chain.push``) so batch boundaries, and hence which alpha a trimap sees, match.
    """
    warmup, lookahead, _ = smoothing_context(config.smooth)
    first = max(0, start - warmup)
    last = min(frame_count - 1, end + lookahead)
    if config.propagate.use_alpha_feedback:
        before = [k for k in keyframes if k <= first]
        first = before[-1] if before else 0
    return first, last


def resolve_range(text: str, frame_count: int, path: str) -> tuple[int, int]:
    """``--frames`` text → inclusive (start, end); the whole clip when empty.

    One rule for run, propagate, plan, chunked runs and the API: a range that does not lie inside the clip is
    refused (UsageError, exit 2), never clamped, so a farm task never writes fewer frames than it was given
    without failing. The message names the clip's range and the range that would work.
    """
    rng = parse_frame_range(text)
    if rng is None:
        return 0, frame_count - 1
    start, end = rng
    if end >= frame_count:
        last = frame_count - 1
        fix = f"{start}-{last}" if start <= last else f"a range within 0-{last}"
        raise UsageError(
            f"{say('--frames', 'frames =')} {text}: {path} has {frame_count} frames (0-{last})",
            hint=f"use {say('--frames', 'frames =')} {fix}" if start <= last else f"use {fix}",
        )
    return start, end


class _Chain:
    """Main-thread stages with per-stage timers. Kept small: the stages do the work."""

    def __init__(self, propagator, engine, smoother, emit: Callable[[Frame], None], report: Report) -> None:
        self.propagator = propagator
        self.engine = engine
        self.smoother = smoother
        self.emit = emit
        self.times = report.times
        self.cpu = report.cpu

    def push(self, frame: Frame) -> None:
        t, c = time.perf_counter(), time.thread_time()
        trimapped = self.propagator.push(frame)
        self.times.propagate += time.perf_counter() - t
        self.cpu.propagate += time.thread_time() - c
        for f in trimapped:
            if not f.keyframe:
                self._matte(self.engine.push, f)
                continue
            # a keyframe is matted alone and observed before the next frame is trimapped: alpha feedback then
            # sees the same mattes whether the run started at frame 0 or at this keyframe (a farm chunk, see
            # context_range), so chunks join exactly. Costs one short batch per keyframe.
            self._matte(lambda _: self.engine.flush(), None)
            self._matte(self.engine.push, f)
            self._matte(lambda _: self.engine.flush(), None)

    def flush(self) -> None:
        t, c = time.perf_counter(), time.thread_time()
        trimapped = self.propagator.flush()
        self.times.propagate += time.perf_counter() - t
        self.cpu.propagate += time.thread_time() - c
        for f in trimapped:
            self._matte(self.engine.push, f)
        self._matte(lambda _: self.engine.flush(), None)
        if self.smoother is not None:
            t, c = time.perf_counter(), time.thread_time()
            out = self.smoother.flush()
            self.times.smooth += time.perf_counter() - t
            self.cpu.smooth += time.thread_time() - c
            for f in out:
                self.emit(f)

    def _matte(self, call, frame) -> None:
        t, c = time.perf_counter(), time.thread_time()
        matted = call(frame)
        self.times.engine += time.perf_counter() - t
        self.times.engine_cpu += time.thread_time() - c
        self.cpu.engine += time.thread_time() - c
        for f in matted:
            t, c = time.perf_counter(), time.thread_time()
            self.propagator.observe(f)  # alpha feedback for the next trimaps
            self.times.propagate += time.perf_counter() - t
            self.cpu.propagate += time.thread_time() - c
            if self.smoother is None:
                self.emit(f)
                continue
            t, c = time.perf_counter(), time.thread_time()
            out = self.smoother.push(f)
            self.times.smooth += time.perf_counter() - t
            self.cpu.smooth += time.thread_time() - c
            for g in out:
                self.emit(g)


class _Output:
    """Encode-thread work: decontaminate once, write to every writer."""

    def __init__(
        self, writers: list, needs_fg: bool, report: Report, progress: Callable[[int], None]
    ) -> None:
        self.writers = writers
        self.needs_fg = needs_fg
        self.report = report
        self.progress = progress
        self.fg_fn = None
        if needs_fg:
            from vmatte.io.compose import estimate_foreground

            self.fg_fn = estimate_foreground

    def __call__(self, frame: Frame) -> None:
        t, c = time.perf_counter(), time.thread_time()
        if self.fg_fn is not None and frame.alpha is not None:
            frame = frame.replace(foreground=self.fg_fn(frame.rgb_float(), frame.alpha))
        c1 = time.thread_time()
        for w in self.writers:
            w.write(frame)
        self.report.times.encode += time.perf_counter() - t
        self.report.cpu.decontaminate += c1 - c
        self.report.cpu.write += time.thread_time() - c1
        self.report.frames_written += 1
        self.progress(self.report.frames_written)


def run(
    config: RunConfig,
    engine=None,
    on_progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> Report:
    """Matte one clip per ``config``. Returns the report; raises VmatteError subclasses on failure
    (the report of a failed run is attached as ``err.report``). A passed-in ``engine`` is reused, not closed."""
    report = Report(input=config.input)
    notes = LibraryNotes()
    if on_progress is not None:
        report.listen(on_progress)
    cancel = cancel or threading.Event()
    t_start, c_start = time.perf_counter(), time.process_time()
    # a report path that would clobber an input is refused before anything, and then never written
    report_error = _check_report_path(config)
    write_report = bool(config.report) and report_error is None
    try:
        if report_error is not None:
            raise report_error
        try:
            with cpu_thread_limit(config.pipeline.cpu_threads), capture_warnings(notes):
                _run(config, engine, on_progress, cancel, report)
        finally:
            for line in notes.take():  # library warnings: one counted line each, also on failure
                report.warn(line)
        report.cpu.process = time.process_time() - c_start
    except Cancelled:
        err = Interrupted("cancelled")
        _fail(report, err)
        err.report = report  # type: ignore[attr-defined]
        _write_report(config, report, t_start, write_report, failing=True)
        raise err from None
    except VmatteError as err:
        _fail(report, err)
        err.report = report  # type: ignore[attr-defined]
        _write_report(config, report, t_start, write_report, failing=True)
        raise
    except BaseException as exc:  # a bug: keep the traceback, but the report still says what happened
        report.status, report.exit_code, report.error = "error", 1, f"{type(exc).__name__}: {exc}"
        _write_report(config, report, t_start, write_report, failing=True)
        raise
    _write_report(config, report, t_start, write_report, failing=False)
    return report


def _check_report_path(config: RunConfig) -> VmatteError | None:
    return report_path_problem(config.report, config.input, config.masks, [o.path for o in config.outputs])


def report_path_problem(report: str, input: str, masks: str, outputs: list[str]) -> VmatteError | None:
    """Why --report must not be written where asked (the input clip, inside the input frame or mask folder, an
    output path, a folder), or None. The CLI asks too before writing a report for a bad command line."""
    if not report:
        return None
    rp = Path(report).resolve()

    def same(p: str) -> bool:
        q = Path(p)
        try:
            return rp == q.resolve() or (rp.exists() and q.exists() and os.path.samefile(rp, q))
        except OSError:
            return False

    hint = "write the report somewhere else"
    if input and same(input):
        return OutputError(f"{report}: --report would overwrite the input clip", hint=hint)
    if input and Path(input).is_dir() and rp.parent == Path(input).resolve():
        return OutputError(f"{report}: --report would be written into the input frame folder", hint=hint)
    if masks and (same(masks) or rp.parent == Path(masks).resolve()):
        return OutputError(f"{report}: --report would be written into the keyframe mask folder", hint=hint)
    if any(o and same(o) for o in outputs):
        return OutputError(f"{report}: --report is also an output path", hint=hint)
    if rp.is_dir():
        return OutputError(f"{report}: --report is a folder", hint="give a file name, e.g. report.json")
    return None


def _write_report(config: RunConfig, report: Report, t_start: float, enabled: bool, *, failing: bool) -> None:
    """Write the JSON report. If that fails while the run is already failing, the run's own error wins (a full
    disk must still exit 8 with one line, not a traceback from the report); after a good run it is an error."""
    report.times.total = time.perf_counter() - t_start
    if not enabled:
        return
    try:
        report.write_json(config.report)
    except OSError as exc:
        p = Path(config.report)
        with contextlib.suppress(OSError):  # the half-written temp of Report.write_json
            p.with_name(f".{p.name}.tmp-{os.getpid()}").unlink()
        if failing:
            return
        from vmatte.io.writers.common import oserror

        raise oserror(exc, p) from None


def _fail(report: Report, err: VmatteError) -> None:
    report.status = "cancelled" if isinstance(err, Interrupted) else "error"
    report.exit_code = err.exit_code
    report.error = str(err)
    report.retryable = err.retryable


def _run(config: RunConfig, engine, on_progress, cancel: threading.Event, report: Report) -> None:
    from vmatte.io.decode import open_clip
    from vmatte.io.encode import check_output_path, open_writer, resolve_output_path
    from vmatte.io.masks import load_keyframes
    from vmatte.propagate import make_propagator

    emit_progress = on_progress or (lambda event: None)
    if not config.input:
        raise UsageError(
            "no input clip given", hint=say("vmatte run CLIP --masks DIR", "set RunConfig(input=...)")
        )
    if not config.masks:
        raise UsageError(
            "no keyframe masks given",
            hint=say("pass --masks DIR", "set RunConfig(masks=DIR)")
            + " (a folder of masks named by frame number)",
        )

    # 1. everything that can be wrong with the inputs, before any model loads
    t = time.perf_counter()
    clip = open_clip(config.input)
    info = clip.info
    report.width, report.height = info.width, info.height
    start, end = resolve_range(config.frames, info.frame_count, info.path)
    report.frame_range = [start, end]
    keyframes = load_keyframes(config.masks, info)
    report.keyframes = {Path(k.path).name: n for n, k in sorted(keyframes.items.items())}
    emit_progress(message_event("info", keyframes.mapping()))
    for w in getattr(keyframes, "warnings", []) or []:
        report.warn(w)
    if not config.outputs:
        raise UsageError(
            "no outputs configured",
            hint=say(
                "pass -o OUT or a --pipeline preset", "set RunConfig(outputs=(OutputConfig(path=...),))"
            ),
        )
    finals = []
    masks_dir = Path(config.masks).resolve()
    for out_cfg in config.outputs:
        final = resolve_output_path(out_cfg, info, (start, end))
        if final in finals:
            raise UsageError(
                f"{final}: two outputs write to the same path", hint="give each output its own path"
            )
        if final.resolve().parent == masks_dir:
            # masks are inputs too: never written over, and new files there would be read as masks next time
            raise OutputError(
                f"{final}: output would be written into the keyframe mask folder {config.masks}",
                hint="choose another -o path; inputs are never overwritten",
            )
        check_output_path(final, info, overwrite=config.overwrite)
        if out_cfg.content == "composite":
            from vmatte.io.compose import check_background

            check_background(
                out_cfg.background
            )  # a typo'd colour is a usage error, found before the model loads
        finals.append(final)
    report.outputs = [str(p) for p in finals]
    report.times.probe = time.perf_counter() - t

    # A chunk (--frames) must reproduce a single run: decode, propagate, matte and smooth the context its
    # frames depend on (see context_range) and drop the outputs outside start..end.
    smoother = None
    if config.smooth.enabled:
        from vmatte.temporal.smooth import TemporalSmoother

        smoother = TemporalSmoother(config.smooth, config.flow)
    decode_start, decode_end = context_range(start, end, info.frame_count, list(keyframes.indices), config)

    # 2. propagation pass (worker thread) while the engine loads (main thread owns the model/GPU)
    propagator = make_propagator(
        clip,
        keyframes,
        config.propagate,
        frame_range=(decode_start, decode_end),
        cancel=cancel,
        max_corrupt=config.pipeline.max_corrupt_frames,
        on_warning=report.warn,
        probe_timeout_s=config.engine.hub_probe_timeout_s,
        flow=config.flow,
    )
    t = time.perf_counter()

    def prepare() -> None:
        c = time.thread_time()
        try:
            propagator.prepare(
                on_progress=lambda done, total: emit_progress(
                    {"event": "progress", "stage": "propagate", "done": done, "total": total}
                )
            )
        finally:
            report.cpu.propagate_prepare += time.thread_time() - c

    stop_prepare = threading.Event()  # set when the engine fails to load: the pass's result is not needed
    propagator.cancel = AnyEvent(cancel, stop_prepare)
    join_prepare = run_in_thread(prepare, name="propagate")
    own_engine = engine is None
    try:
        if own_engine:
            from vmatte.engine import load_engine

            t_load = time.perf_counter()
            engine = load_engine(
                config.engine,
                on_warning=report.warn,
                on_info=lambda m: emit_progress(message_event("info", m)),
            )
            report.times.load_engine = time.perf_counter() - t_load
        else:
            for w in getattr(engine, "load_warnings", ()):  # e.g. a reused engine that fell back to classic
                report.warn(w)
    except BaseException:
        stop_prepare.set()
        try:
            join_prepare()  # always join: no thread is left running
        except Exception:
            pass  # the engine's error is the one to report
        raise
    join_prepare()  # its error (bad clip mid-way, cancel) surfaces here
    for w in propagator.warnings:
        report.warn(w)
    report.times.propagate_prepare = time.perf_counter() - t
    report.engine = dict(engine.describe())

    # 3. stream
    plan = getattr(engine, "plan", None)
    if callable(plan):
        plan(info.width, info.height)  # an automatic batch size is known only once the frame size is
    batch = max(1, int(getattr(engine, "batch_size", 1) or 1))
    depth = config.pipeline.queue_depth or max(4, 2 * batch)
    total = end - start + 1
    t_stream = time.perf_counter()

    first_done: list[float] = []  # when the first frame was written

    def progress_written(done: int) -> None:
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

    writers: list = []
    sink = None
    succeeded = False
    try:
        for out_cfg in config.outputs:
            writers.append(
                open_writer(
                    out_cfg,
                    info,
                    overwrite=config.overwrite,
                    threads=config.pipeline.encode_threads,
                    frame_range=(start, end),
                )
            )
            for note in getattr(writers[-1], "notes", ()) or ():
                report.warn(note)  # e.g. audio re-encoded because the container cannot carry the source codec
        from vmatte.io.compose import needs_foreground

        needs_fg = any(needs_foreground(c) for c in config.outputs)
        sink = Sink(
            _Output(writers, needs_fg, report, progress_written), depth=depth, cancel=cancel, name="encode"
        )

        def emit(frame: Frame) -> None:
            if frame.index < start or frame.index > end:  # smoothing context of a chunk: not ours to write
                return
            if cancel.is_set():
                raise Cancelled()
            t0 = time.perf_counter()
            sink.put(frame)
            report.times.encode_wait += time.perf_counter() - t0

        chain = _Chain(propagator, engine, smoother, emit, report)
        corrupt: list[int] = []
        frames = clip.frames(
            decode_start, decode_end, max_corrupt=config.pipeline.max_corrupt_frames, corrupt=corrupt
        )
        with Prefetch(frames, depth=depth, cancel=cancel, name="decode") as decoded:
            t_wait = time.perf_counter()
            for frame in decoded:
                report.times.decode_wait += time.perf_counter() - t_wait
                if cancel.is_set():
                    raise Cancelled()
                report.frames_decoded += 1
                chain.push(frame)
                t_wait = time.perf_counter()
            chain.flush()
        report.corrupt_frames = corrupt
        if corrupt:
            report.warn(f"{len(corrupt)} corrupt frame(s) skipped near {corrupt[:10]}")
        sink.close()
        sink = None
        if report.frames_written == 0:
            raise InputError(
                f"{info.path}: no frames decoded in range {start}-{end}", hint="the clip may be corrupt"
            )
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
        succeeded = True
    finally:
        propagator.close()  # the alpha feedback's flow helper thread
        if sink is not None:
            sink.abort()
        if not succeeded:
            for w in writers:
                with contextlib.suppress(Exception):
                    w.abort()
        engine_notes = getattr(engine, "library_notes", None)
        if engine_notes is not None:
            for line in engine_notes.take():
                report.warn(line)
        if own_engine and engine is not None:
            engine.close()
        elif engine is not None:
            # a reused engine must come back clean for the next clip
            with contextlib.suppress(Exception):
                engine.flush()
    report.propagation = dict(propagator.summary())
    # the summary covers the context frames a chunk processed too; only suggest frames this run owns
    if "suggested_keyframes" in report.propagation:
        report.propagation["suggested_keyframes"] = [
            k for k in report.propagation["suggested_keyframes"] if start <= k <= end
        ]
    if smoother is not None:
        report.smoothing = dict(smoother.stats())
    if report.frames_written != total:
        report.warn(f"wrote {report.frames_written} of {total} frames in range {start}-{end}")
    report.outputs = [str(w.path) for w in writers]
    report.status = "ok"


def _remove_output(writer) -> None:
    """Delete what a closed writer put at its final path(s) (a video file, or a sequence's frames)."""
    paths = list(getattr(writer, "written", None) or [])
    p = Path(writer.path)
    if not paths and p.is_file():
        paths = [p]
    for f in paths:
        with contextlib.suppress(OSError):
            Path(f).unlink()
    from vmatte.io.writers.common import remove_empty_folders

    remove_empty_folders(list(getattr(writer, "created_dirs", None) or []))
