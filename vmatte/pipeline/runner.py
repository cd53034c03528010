"""The chain, end to end, for one clip or one frame range of it:

    [decode thread] --bounded queue--> [main: propagate → engine → smooth] --bounded queue--> [encode thread]

Order of work, so bad input fails fast and nothing is lost:
1. :func:`~vmatte.pipeline.prepare.prepare`: probe the clip, parse the frame range, validate keyframe masks and
   output paths (no model loaded yet), into one :class:`~vmatte.pipeline.prepare.Prepared`;
2. :func:`render` a frame range of it: load the engine (unless the :class:`EngineSlot` has one) while the
   propagation pass runs in a worker thread;
3. stream frames through the chain (:func:`~vmatte.pipeline.stream.write_stream`); writers work under
   temporary names;
4. on success writers rename into place; on any error or cancel they remove their temporaries.

A plain run is one render of the range asked for; a chunked job (:mod:`vmatte.farm.chunked`) renders each
chunk's range of the same prepared object. Failure handling and the report file are :func:`reported`, shared by
both.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from vmatte.config import RunConfig
from vmatte.errors import Interrupted, VmatteError
from vmatte.frame import Frame
from vmatte.pipeline import threads
from vmatte.pipeline.libnotes import LibraryNotes, capture_warnings
from vmatte.pipeline.prepare import Prepared, prepare, report_path_problem
from vmatte.pipeline.report import Report, message_event
from vmatte.pipeline.threads import AnyEvent, Cancelled, cpu_thread_limit, run_in_thread
from vmatte.propagate.trimap import hold_mask

ProgressFn = Callable[[dict[str, Any]], None]

__all__ = ["EngineSlot", "render", "reported", "run"]


class _Chain:
    """Main-thread stages with per-stage timers. Kept small: the stages do the work."""

    def __init__(
        self, propagator, engine, smoother, emit: Callable[[Frame], None], report: Report, hold: bool = True
    ) -> None:
        self.propagator = propagator
        self.engine = engine
        self.smoother = smoother
        self.emit = emit
        self.times = report.times
        self.cpu = report.cpu
        self.hold = hold
        # the band margin the last keyframe's matte chose for the frames after it (Engine.margin_after); None
        # before the first keyframe: the engine's own. A chunk mattes from the keyframe before it
        # (context.starts_at_keyframe), so it chooses the same margins as a whole-clip run
        self.margin: float | None = None
        self.margins = report.engine.setdefault("keyframe_margins", {})  # keyframe -> the margin it chose

    def push(self, frame: Frame) -> None:
        t, c = time.perf_counter(), time.thread_time()
        trimapped = self.propagator.push(frame)
        self.times.propagate += time.perf_counter() - t
        self.cpu.propagate += time.thread_time() - c
        for f in trimapped:
            if not f.keyframe:
                carried = f if self.margin is None else f.replace(band_margin=self.margin)
                self._matte(self._solve(self.engine.push, carried))
                continue
            # a keyframe is matted alone and observed before the next frame is trimapped: alpha feedback then
            # sees the same mattes whether the run started at frame 0 or at this keyframe (a farm chunk, see
            # context_range), so chunks join exactly. Costs one short batch per keyframe.
            self._matte(self._solve(self.engine.flush))
            self._matte(self._keyframe(f))

    def flush(self) -> None:
        t, c = time.perf_counter(), time.thread_time()
        trimapped = self.propagator.flush()
        self.times.propagate += time.perf_counter() - t
        self.cpu.propagate += time.thread_time() - c
        for f in trimapped:
            self._matte(self._solve(self.engine.push, f))
        self._matte(self._solve(self.engine.flush))
        if self.smoother is not None:
            t, c = time.perf_counter(), time.thread_time()
            out = self.smoother.flush()
            self.times.smooth += time.perf_counter() - t
            self.cpu.smooth += time.thread_time() - c
            for f in out:
                self.emit(self._hold(f))

    def _hold(self, f: Frame) -> Frame:
        """A keyframe drawn as a binary mask comes out agreeing with it (alpha > 0.5 exactly on the mask,
        propagate.trimap.hold_mask); trimap and soft keyframes, and every other frame, pass unchanged. The mask
        travels on the frame: a binary keyframe's prior is the drawn mask (Propagator.result_with_prior)."""
        if not (self.hold and f.keyframe_kind == "binary" and f.alpha is not None and f.prior is not None):
            return f
        return f.replace(alpha=hold_mask(f.alpha, f.prior))

    def _keyframe(self, f: Frame) -> list[Frame]:
        """Keyframe ``f`` matted alone. Its matte chooses the band margin of the frames up to the next keyframe
        (``Engine.margin_after``: wider where its edge is soft); where that margin is wider than the one it was
        matted with, a binary keyframe is matted again with it, so its soft edge is as wide as its neighbours'
        (matted once, it covered 0.59-0.84 of the soft pixels where its neighbours covered 0.82-0.98 on the
        composites of scripts/bench_smooth_e2e.py, 2026-12-07). A soft or trimap keyframe's band is the user's
        (not padded): nothing to redo."""
        from vmatte.engine.band import margin_px

        out = self._solve(self.engine.push, f) + self._solve(self.engine.flush)
        self.margin = self.engine.margin_after(self._hold(out[-1]))
        if self.margin is None:
            return out
        self.margins[str(f.index)] = round(self.margin, 4)
        px, base = (margin_px(m, f.width, f.height) for m in (self.margin, self.engine.band_margin))
        if f.keyframe_kind != "binary" or px <= base:
            return out
        wider = f.replace(band_margin=self.margin)
        return out[:-1] + self._solve(self.engine.push, wider) + self._solve(self.engine.flush)

    def _solve(self, call, *frame: Frame) -> list[Frame]:
        """The engine's ``call(*frame)`` (push one frame, or flush), timed: the frames it finished."""
        t, c = time.perf_counter(), time.thread_time()
        matted = call(*frame)
        self.times.engine += time.perf_counter() - t
        self.times.engine_cpu += time.thread_time() - c
        self.cpu.engine += time.thread_time() - c
        return matted

    def _matte(self, matted: list[Frame]) -> None:
        """Frames the engine finished: held (binary keyframes), observed (alpha feedback), smoothed, emitted."""
        for f in matted:
            f = self._hold(f)
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
                self.emit(self._hold(g))  # smoothing moves a keyframe's edge too: held again


def run(
    config: RunConfig,
    engine=None,
    on_progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> Report:
    """Matte one clip per ``config``. Returns the report; raises VmatteError subclasses on failure
    (the report of a failed run is attached as ``err.report``). A passed-in ``engine`` is reused, not closed."""
    report = Report(input=config.input)
    if on_progress is not None:
        report.listen(on_progress)
    with reported(config, report):
        prep = prepare(config, report=report, on_progress=on_progress)
        with EngineSlot(config, engine) as slot:
            render(prep, prep.start, prep.end, slot, report, on_progress=on_progress, cancel=cancel)
    return report


@contextlib.contextmanager
def reported(config: RunConfig, report: Report) -> Iterator[None]:
    """Failure handling and the report file of a run or a chunked job, in one place.

    On failure the report gets status, exit code and the one-line error, and is attached to the error as
    ``err.report``; a cancel (:class:`Cancelled`) becomes :class:`Interrupted`. ``config.report`` is written at
    the end either way, unless it would clobber an input or an output (then that is the run's error and the
    report is never written). If writing it fails while the run is already failing, the run's own error wins
    (a full disk must still exit 8 with one line, not a traceback from the report); after a good run it is an
    error."""
    t_start, c_start = time.perf_counter(), time.process_time()
    problem = report_path_problem(config.report, config.input, config.masks, [o.path for o in config.outputs])
    enabled = bool(config.report) and problem is None
    try:
        if problem is not None:
            raise problem
        yield
        report.cpu.process = time.process_time() - c_start
    except (Cancelled, VmatteError) as exc:
        err = Interrupted("cancelled") if isinstance(exc, Cancelled) else exc
        report.status = "cancelled" if isinstance(err, Interrupted) else "error"
        report.exit_code, report.error, report.retryable = err.exit_code, str(err), err.retryable
        err.report = report  # type: ignore[attr-defined]
        _write_report(config, report, t_start, enabled, failing=True)
        if err is exc:
            raise
        raise err from None
    except BaseException as exc:  # a bug: keep the traceback, but the report still says what happened
        report.status, report.exit_code, report.error = "error", 1, f"{type(exc).__name__}: {exc}"
        _write_report(config, report, t_start, enabled, failing=True)
        raise
    _write_report(config, report, t_start, enabled, failing=False)


def _write_report(config: RunConfig, report: Report, t_start: float, enabled: bool, *, failing: bool) -> None:
    report.times.total = time.perf_counter() - t_start
    if not enabled:
        return
    report.save(config.report, failing=failing)


class EngineSlot:
    """Who owns the matting engine of a run or a job, in one place. A passed-in engine is borrowed: reused as
    is, flushed after each render so it comes back clean, never closed. Otherwise one is loaded at the first
    render (while that render's propagation pass runs) and closed when the slot closes."""

    def __init__(self, config: RunConfig, engine=None) -> None:
        self.cfg = config.engine
        self.engine = engine
        self.own = engine is None

    def get(self, report: Report, emit_progress: ProgressFn):
        if self.engine is None:
            from vmatte.engine import load_engine

            t = time.perf_counter()
            self.engine = load_engine(
                self.cfg,
                on_warning=report.warn,
                on_info=lambda m: emit_progress(message_event("info", m)),
            )
            report.times.load_engine += time.perf_counter() - t
        else:
            for w in self.engine.load_warnings:  # e.g. a reused engine that fell back to classic
                report.warn(w)
            # torch's pool sized for the engine's device (load_engine does this for an engine it loads)
            threads.cap_torch(str(getattr(self.engine, "device", "cpu")))
        return self.engine

    def release(self, report: Report) -> None:
        """After a render, successful or not: the engine's library notes go to its report; a borrowed engine
        is flushed (errors ignored) so the next clip starts clean."""
        if self.engine is None:
            return
        if self.engine.library_notes is not None:
            for line in self.engine.library_notes.take():
                report.warn(line)
        if not self.own:
            with contextlib.suppress(Exception):
                self.engine.flush()

    def close(self) -> None:
        if self.own and self.engine is not None:
            engine, self.engine = self.engine, None
            engine.close()

    def __enter__(self) -> EngineSlot:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def render(
    prep: Prepared,
    start: int,
    end: int,
    engine: EngineSlot,
    report: Report,
    *,
    outputs: Sequence | None = None,
    overwrite: bool | None = None,
    on_progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> None:
    """Matte clip frames ``start..end`` (inclusive) of a prepared run and write them to ``outputs`` (default
    the run's own; a farm chunk passes its segment outputs with ``overwrite=True``). Decodes, propagates,
    mattes and smooths the context those frames depend on (:meth:`Prepared.context`) and drops the outputs
    outside the range, so the frames equal the same frames of a whole-clip run. Fills ``report``; a cancel
    raises :class:`Interrupted`. Numeric libraries' thread pools are capped (``pipeline.cpu_threads``) and
    Python warnings counted into report lines while it runs."""
    notes = LibraryNotes()
    try:
        with cpu_thread_limit(prep.config.pipeline.cpu_threads), capture_warnings(notes):
            _render(
                prep,
                (start, end),
                engine,
                report,
                outputs=prep.config.outputs if outputs is None else outputs,
                overwrite=prep.config.overwrite if overwrite is None else overwrite,
                emit_progress=on_progress or (lambda event: None),
                cancel=cancel or threading.Event(),
            )
    except Cancelled:
        raise Interrupted("cancelled") from None
    finally:
        for line in notes.take():  # library warnings: one counted line each, also on failure
            report.warn(line)


def _render(
    prep: Prepared, rng, slot: EngineSlot, report: Report, *, outputs, overwrite, emit_progress, cancel
) -> None:
    from vmatte.pipeline.stream import queue_depth, write_stream

    config = prep.config
    report.frame_range = list(rng)
    context = prep.context(*rng)
    smoother = None
    propagator, engine = _start(prep, context, slot, report, emit_progress, cancel)
    try:
        if config.smooth.enabled:  # after the engine: its device decides where the smoother runs
            from vmatte.temporal.smooth import TemporalSmoother

            smoother = TemporalSmoother(config.smooth, config.flow, device=_smooth_device(config, engine))
        report.engine = dict(engine.describe())
        regrown = getattr(engine, "frames_regrown", 0)  # the engine may serve many runs: count this one's
        info = prep.info
        engine.plan(info.width, info.height)  # an automatic batch size is known only once the frame size is
        depth = queue_depth(int(engine.batch_size or 1))
        writers = write_stream(
            prep.clip,
            context,
            rng,
            lambda emit: _Chain(propagator, engine, smoother, emit, report, config.propagate.hold_keyframes),
            outputs,
            overwrite=overwrite,
            pipeline=config.pipeline,
            depth=depth,
            report=report,
            cancel=cancel,
            on_progress=emit_progress,
        )
        if "frames_regrown" in report.engine:  # re-mattes on a widened band ([engine] grow_band)
            report.engine["frames_regrown"] = engine.frames_regrown - regrown
    finally:
        propagator.close()  # the alpha feedback's flow helper thread
        slot.release(report)
    report.propagation = dict(propagator.summary())
    # the summary covers the context frames a range processed too; only suggest frames this render owns
    if "suggested_keyframes" in report.propagation:
        report.propagation["suggested_keyframes"] = [
            k for k in report.propagation["suggested_keyframes"] if rng[0] <= k <= rng[1]
        ]
    if smoother is not None:
        report.smoothing = dict(smoother.stats())
    total = rng[1] - rng[0] + 1
    if report.frames_written != total:
        report.warn(f"wrote {report.frames_written} of {total} frames in range {rng[0]}-{rng[1]}")
    report.outputs = [str(w.path) for w in writers]
    report.status = "ok"


def _smooth_device(config: RunConfig, engine) -> str | None:
    """The smoother's torch device (``[pipeline] post_device``), or None for numpy/OpenCV. Only an engine with
    a torch device (which has imported torch already) can move it off the numpy path; tests patch this to
    force the torch path on the CPU."""
    dev = getattr(engine, "device", None)
    if dev is None:
        return None
    from vmatte.engine.cuda import post_device

    return post_device(config.pipeline.post_device, dev)


def _start(prep: Prepared, context, slot: EngineSlot, report: Report, emit_progress, cancel):
    """The propagation pass (worker thread) while the engine loads (main thread owns the model/GPU). Returns
    (propagator, engine) once both are ready; on failure no thread is left running."""
    from vmatte.propagate import make_propagator

    config = prep.config
    propagator = make_propagator(
        prep.clip,
        prep.keyframes,
        config.propagate,
        frame_range=context,
        cancel=cancel,
        max_corrupt=config.pipeline.max_corrupt_frames,
        on_warning=report.warn,
        probe_timeout_s=config.engine.hub_probe_timeout_s,
        flow=config.flow,
    )
    t = time.perf_counter()

    def pass_() -> None:
        c = time.thread_time()
        try:
            propagator.prepare(
                on_progress=lambda done, total: emit_progress(
                    {"event": "progress", "stage": "propagate", "done": done, "total": total}
                )
            )
        finally:
            report.cpu.propagate_prepare += time.thread_time() - c

    # the pass imports scipy.ndimage lazily while this thread may be importing the engine's libraries (pymatting,
    # transformers), which import scipy too: two threads importing one package at once can fail with
    # "KeyError: 'scipy'" (seen on CPython 3.11), so the pass's import is done here first
    import scipy.ndimage  # noqa: F401

    stop_pass = threading.Event()  # set when the engine fails to load: the pass's result is not needed
    propagator.cancel = AnyEvent(cancel, stop_pass)
    join_pass = run_in_thread(pass_, name="propagate")
    try:
        engine = slot.get(report, emit_progress)
    except BaseException:
        stop_pass.set()
        with contextlib.suppress(Exception):  # the engine's error is the one to report
            join_pass()  # always join: no thread is left running
        propagator.close()
        raise
    try:
        join_pass()  # its error (bad clip mid-way, cancel) surfaces here
    except BaseException:
        propagator.close()
        slot.release(report)
        raise
    for w in propagator.warnings:
        report.warn(w)
    report.times.propagate_prepare = time.perf_counter() - t
    return propagator, engine
