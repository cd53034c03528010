"""Run a job as resumable chunks (in this process, or one chunk per Ray task via :mod:`vmatte.farm.ray_runner`).

Each chunk is an ordinary :func:`vmatte.run` of ``--frames S-E`` (the runner decodes, mattes and smooths the
context the chunk needs and writes only its own frames), followed by a checksummed record in the job manifest
(:mod:`vmatte.farm.manifest`). A resumed job re-verifies every record and redoes only chunks that are missing,
partial or changed.

Where each output's frames go:

- **image sequences** (PNG/EXR): in place; file numbers are clip frame numbers, so chunks land side by side.
- **intra-only video** (ProRes 4444, FFV1, PNG-in-MOV, QuickTime Animation): each chunk writes a segment in
  the output's codec into the hidden work folder; assembly concatenates the segments by copying packets with
  PyAV (no re-encode, timestamps are the input's; audio packets duplicated at a seam are dropped).
- **inter-frame video** (VP9, H.264): packets of separately encoded segments do not join into one valid
  stream without re-encoding, so chunks write the matte only, as lossless 16-bit FFV1 alpha segments; the
  **final encode** decodes the input once more, attaches that alpha to each frame and runs the output's own
  writer (decontamination, composite, audio and colour tags exactly as a single run). It costs one decode +
  encode pass, no matting.

The chunk grid is laid over the whole clip; ``config.frames`` selects which chunks this process renders (a farm
task). Assembly happens only when the whole clip was asked for (no ``--frames``); it renders any chunk still
missing first, so "run every task, then the assemble command" and "one ``--chunk`` run" give the same files.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vmatte.config import OutputConfig, RunConfig
from vmatte.errors import Interrupted, OutputError, TransientError, UsageError, VmatteError
from vmatte.farm.assemble import concat_segments, encode_with_alpha, input_times
from vmatte.farm.jobreport import JobProgress, interrupted_in, own_confidence, whole_clip_summary
from vmatte.farm.manifest import Manifest, file_entry, fingerprint, verify_entry
from vmatte.farm.plan import Chunk, Plan, plan_job
from vmatte.pipeline.report import Report

ProgressFn = Callable[[dict[str, Any]], None]

# FormatSpec names whose streams are intra-only (or start every segment with a key frame and never reorder),
# so separately encoded segments concatenate into a valid stream by copying packets
REMUX_FORMATS = frozenset({"prores4444", "ffv1", "png-mov", "qtrle"})
# encoder names (cfg.codec overrides) known to be intra-only
INTRA_CODECS = frozenset(
    {
        "prores_ks",
        "prores_aw",
        "prores",
        "prores_videotoolbox",
        "ffv1",
        "png",
        "qtrle",
        "dnxhd",
        "rawvideo",
        "mjpeg",
    }
)


@dataclass(frozen=True)
class JobOutput:
    """One output of a chunked job. kind: "sequence" (in place), "remux" (segments copied) or "encode"
    (alpha segments + final encode)."""

    index: int
    cfg: OutputConfig
    final: Path
    kind: str
    ext: str


@dataclass
class JobReport(Report):
    """A :class:`~vmatte.pipeline.report.Report` for a chunked job: stage times and frame counts are summed over
    the chunks rendered now; ``chunks`` lists each chunk (``status`` "done" = rendered now, "skipped" = verified
    from an earlier run); ``farm`` holds the chunk size, assembly and (Ray) per-task overheads."""

    chunks: list[dict[str, Any]] = field(default_factory=list)
    farm: dict[str, Any] = field(default_factory=dict)


def _output_kind(cfg: OutputConfig) -> tuple[str, str]:
    from vmatte.io.formats import format_for

    spec = format_for(cfg)
    if spec.kind == "sequence":
        return "sequence", spec.ext
    if spec.name in REMUX_FORMATS and (not cfg.codec or cfg.codec in INTRA_CODECS):
        return "remux", spec.ext
    return "encode", spec.ext


@dataclass
class Job:
    """Everything a chunk needs, picklable (Ray ships it to workers): config, clip info, plan, outputs, manifest."""

    config: RunConfig
    chunk_size: int
    info: Any  # ClipInfo
    plan: Plan  # the whole-clip grid
    selected: list[Chunk]  # chunks this process renders (config.frames), a subset of plan.chunks
    outputs: list[JobOutput]
    manifest: Manifest
    whole: bool  # no --frames: assemble at the end
    keyframes: list[int] = field(default_factory=list)  # clip frame numbers with a keyframe mask

    @classmethod
    def prepare(cls, config: RunConfig, chunk_size: int) -> Job:
        """Probe, validate masks and outputs, plan the grid. Loads no model."""
        from vmatte.io.decode import open_clip
        from vmatte.io.encode import resolve_output_path
        from vmatte.io.masks import load_keyframes

        if not config.input:
            raise UsageError("no input clip given", hint="vmatte run CLIP --masks DIR --chunk N")
        if not config.masks:
            raise UsageError("no keyframe masks given", hint="pass --masks DIR")
        if not config.outputs:
            raise UsageError("no outputs configured", hint="pass -o OUT or a --pipeline preset")
        clip = open_clip(config.input)
        info = clip.info
        keyframes = load_keyframes(config.masks, info)
        whole_cfg = config.replace(frames="")
        plan = plan_job(whole_cfg, chunk_size, clip=clip, keyframe_set=keyframes)
        if config.frames:
            sel = plan_job(config, chunk_size, clip=clip, keyframe_set=keyframes).chunks
            grid = {c.key for c in plan.chunks}
            # a --frames range off the grid still works (its chunks are just keyed by their own range)
            selected = [
                next((g for g in plan.chunks if g.key == c.key), c) if c.key in grid else c for c in sel
            ]
        else:
            selected = list(plan.chunks)
        outputs = []
        finals: list[Path] = []
        for i, cfg in enumerate(config.outputs):
            final = resolve_output_path(cfg, info)
            if final in finals:
                raise UsageError(
                    f"{final}: two outputs write to the same path", hint="give each output its own path"
                )
            finals.append(final)
            kind, ext = _output_kind(cfg)
            outputs.append(JobOutput(i, cfg, final, kind, ext))
        manifest = Manifest(anchor=finals[0], fingerprint=fingerprint(config, info))
        return cls(
            config,
            chunk_size,
            info,
            plan,
            selected,
            outputs,
            manifest,
            whole=not config.frames,
            keyframes=[int(k) for k in keyframes.indices],
        )

    # -- layout ------------------------------------------------------------------------------------------
    def job_info(self) -> dict[str, Any]:
        return {
            "input": self.config.input,
            "masks": self.config.masks,
            "frame_count": self.info.frame_count,
            "chunk_size": self.chunk_size,
            "outputs": [{"path": str(o.final), "kind": o.kind} for o in self.outputs],
        }

    def segment_path(self, out: JobOutput, chunk: Chunk) -> Path:
        return self.manifest.segments_dir / f"out{out.index}" / f"{chunk.key}{out.ext}"

    def alpha_path(self, chunk: Chunk) -> Path:
        return self.manifest.segments_dir / "alpha" / f"{chunk.key}.mkv"

    @property
    def needs_alpha(self) -> bool:
        return any(o.kind == "encode" for o in self.outputs)

    def chunk_config(self, chunk: Chunk) -> RunConfig:
        """The plain single-range RunConfig that renders ``chunk`` (sequences in place, video into segments)."""
        outs = []
        for o in self.outputs:
            if o.kind == "sequence":
                outs.append(o.cfg)
            elif o.kind == "remux":
                outs.append(_replace_cfg(o.cfg, path=str(self.segment_path(o, chunk))))
        if self.needs_alpha:
            outs.append(
                OutputConfig(
                    path=str(self.alpha_path(chunk)),
                    format="ffv1",
                    content="alpha",
                    bit_depth=16,
                    audio=False,
                )
            )
        # overwrite: a redone chunk replaces its own earlier (unverified) files; preflight() guarded the user's
        return self.config.replace(
            frames=f"{chunk.start}-{chunk.end}", outputs=tuple(outs), overwrite=True, report=""
        )

    def chunk_files(self, chunk: Chunk) -> list[dict[str, Any]]:
        """Checksummed records of every file ``chunk`` produced."""
        from vmatte.io.encode import frame_file

        files = []
        for o in self.outputs:
            if o.kind == "sequence":
                for i in range(chunk.start, chunk.end + 1):
                    files.append(
                        file_entry(frame_file(o.final, o.cfg.start_number + i), frame=i, output=o.index)
                    )
            elif o.kind == "remux":
                files.append(file_entry(self.segment_path(o, chunk), output=o.index))
        if self.needs_alpha:
            files.append(file_entry(self.alpha_path(chunk)))
        return files

    # -- checks ------------------------------------------------------------------------------------------
    def preflight(self, ours: bool) -> None:
        """Refuse to clobber files that are not this job's: existing final videos, or sequence frames in the
        selected range, unless ``overwrite`` or the work folder is this job's (a resume)."""
        from vmatte.io.encode import check_output_path, frame_file, overwrite_hint

        for o in self.outputs:
            check_output_path(o.final, self.info, overwrite=self.config.overwrite or ours)
            if o.kind == "sequence" and not (self.config.overwrite or ours):
                for c in self.selected:
                    for i in range(c.start, c.end + 1):
                        f = frame_file(o.final, o.cfg.start_number + i)
                        if f.exists():
                            raise OutputError(
                                f"{f}: already exists (frame {i})",
                                hint=overwrite_hint(),
                            )

    def verified_assembled(self) -> tuple[set[int], list[str]]:
        """(indices of outputs an earlier run assembled whose files still match the manifest, one note per
        assembled file that does not, naming the failed check). Sequence outputs count as assembled here;
        their frames are verified through the chunk records."""
        done = {a.get("path"): a for a in self.manifest.assembled()}
        ok: set[int] = set()
        notes: list[str] = []
        for o in self.outputs:
            a = done.get(str(o.final))
            if a is None:
                continue
            why = verify_entry(a) if o.kind != "sequence" else None
            if why:
                notes.append(f"assembled output {why}: re-assembling it from the kept segments")
            else:
                ok.add(o.index)
        return ok, notes

    def assembled_ok(self) -> bool:
        """True when an earlier run assembled every output and the files still match their checksums."""
        ok, _ = self.verified_assembled()
        if len(ok) < len(self.outputs):
            return False
        seq = {o.index for o in self.outputs if o.kind == "sequence"}
        if seq:

            def only(entry: dict[str, Any]) -> bool:
                return entry.get("output") in seq

            return all(self.manifest.verified(c.key, only)[0] is not None for c in self.plan.chunks)
        return True

    # -- work --------------------------------------------------------------------------------------------
    def run_chunk(
        self,
        chunk: Chunk,
        engine=None,
        on_progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
    ) -> dict[str, Any]:
        """Render ``chunk`` and record it. Returns the record (files + a report summary)."""
        from vmatte.pipeline.runner import run

        self.manifest.drop_record(chunk.key)  # from here until the new record exists, the chunk is not done
        self._sweep_temp_files(chunk)
        for o in self.outputs:
            if o.kind == "remux":
                self.segment_path(o, chunk).parent.mkdir(parents=True, exist_ok=True)
        if self.needs_alpha:
            self.alpha_path(chunk).parent.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        rep = run(self.chunk_config(chunk), engine=engine, on_progress=on_progress, cancel=cancel)
        t_hash = time.perf_counter()
        files = self.chunk_files(chunk)
        hash_s = time.perf_counter() - t_hash
        record = {
            "start": chunk.start,
            "end": chunk.end,
            "context": [chunk.context_start, chunk.context_end],
            "files": files,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "seconds": round(time.perf_counter() - t0, 3),
            "hash_s": round(hash_s, 3),
            "report": {
                "frames_decoded": rep.frames_decoded,
                "frames_written": rep.frames_written,
                "times": vars(rep.times).copy(),
                "warnings": list(rep.warnings),
                # the propagator also scored the chunk's context frames: keep only this chunk's own
                "suggested_keyframes": [k for k in rep.suggested_keyframes if chunk.start <= k <= chunk.end],
                # per-frame confidence of frames start..end (the job ranks keyframe suggestions over all chunks)
                "confidence": own_confidence(rep.propagation, chunk),
                "smoothing": dict(rep.smoothing),
                "engine": rep.engine,
            },
        }
        self.manifest.write_record(chunk.key, record)
        return record

    def _sweep_temp_files(self, chunk: Chunk) -> None:
        """Remove hidden temp files a killed earlier attempt of this chunk left (writers' ``.NAME.vmatte-tmp-PID``
        siblings of this chunk's frame files and segments). Only this chunk's own names: another node may be
        writing another chunk into the same folder right now."""
        from vmatte.io.encode import frame_file

        finals: list[Path] = []
        for o in self.outputs:
            if o.kind == "sequence":
                finals += [
                    frame_file(o.final, o.cfg.start_number + i) for i in range(chunk.start, chunk.end + 1)
                ]
            elif o.kind == "remux":
                finals.append(self.segment_path(o, chunk))
        if self.needs_alpha:
            finals.append(self.alpha_path(chunk))
        by_dir: dict[Path, set[str]] = {}
        for f in finals:
            by_dir.setdefault(f.parent, set()).add(f".{f.stem}.vmatte-tmp-")
        for folder, prefixes in by_dir.items():
            if not folder.is_dir():
                continue
            for entry in os.scandir(folder):
                if entry.name.startswith(".") and any(entry.name.startswith(p) for p in prefixes):
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)

    def pending(self, resume: bool) -> tuple[list[Chunk], list[Chunk], list[str]]:
        """(chunks to render, chunks verified from an earlier run, notes on chunks found invalid)."""
        todo, done, notes = [], [], []
        for c in self.selected:
            if resume:
                rec, why = self.manifest.verified(c.key)
                if rec is not None:
                    done.append(c)
                    continue
                if why not in ("no record",):
                    notes.append(f"chunk {c.key} redone: {why}")
            todo.append(c)
        return todo, done, notes

    def missing_for_assembly(self) -> list[Chunk]:
        return [c for c in self.plan.chunks if self.manifest.verified(c.key)[0] is None]

    def assemble(
        self, cancel: threading.Event | None = None, keep: set[int] | None = None
    ) -> list[dict[str, Any]]:
        """Join the chunks into the final outputs (every grid chunk must be verified), except the outputs in
        ``keep`` (indices of verified earlier assemblies, whose manifest entries are carried over). Returns the
        manifest entries. Segments stay in the work folder: a final output damaged or deleted later is
        re-assembled from them without rendering anything."""
        missing = self.missing_for_assembly()
        if missing:
            raise TransientError(
                f"cannot assemble: chunk(s) {', '.join(c.key for c in missing[:5])} missing or changed",
                hint="run the job again; finished chunks are kept",
            )
        from fractions import Fraction

        keep = keep or set()
        before = {a.get("path"): a for a in self.manifest.assembled()}
        entries: list[dict[str, Any]] = []
        times = None  # input timestamps, read once when a video output needs them
        for o in self.outputs:
            if o.index in keep and str(o.final) in before:
                entries.append(before[str(o.final)])
            elif o.kind == "sequence":
                entries.append({"path": str(o.final), "kind": "sequence", "frames": self.info.frame_count})
            elif o.kind == "remux":
                if times is None:
                    times = input_times(self.info)
                pts, audio_grid = times
                tb = self.info.time_base
                starts = [
                    Fraction(pts[c.start]) * tb if c.start < len(pts) else None for c in self.plan.chunks
                ]
                concat_segments(
                    [self.segment_path(o, c) for c in self.plan.chunks],
                    o.final,
                    starts_s=None if None in starts else starts,
                    audio_grid_s=audio_grid,
                    cancel=cancel,
                )
                entries.append({**file_entry(o.final), "kind": "remux", "segments": len(self.plan.chunks)})
        enc = [o for o in self.outputs if o.kind == "encode" and o.index not in keep]
        if enc:
            encode_with_alpha(self, enc, [self.alpha_path(c) for c in self.plan.chunks], cancel=cancel)
            for o in enc:
                entries.append({**file_entry(o.final), "kind": "encode"})
        self.manifest.write(self.job_info(), assembled=entries)
        return entries


def _replace_cfg(cfg: OutputConfig, **changes) -> OutputConfig:
    import dataclasses

    return dataclasses.replace(cfg, **changes)


# -- the in-process driver ---------------------------------------------------------------------------------
def _merge(report: JobReport, rec: dict[str, Any], status: str, chunk: Chunk) -> None:
    r = rec.get("report", {})
    entry = {
        "key": chunk.key,
        "start": chunk.start,
        "end": chunk.end,
        "status": status,
        "seconds": rec.get("seconds"),
    }
    report.chunks.append(entry)
    if status != "done":
        return
    report.frames_decoded += int(r.get("frames_decoded", 0))
    report.frames_written += int(r.get("frames_written", 0))
    for k, v in (r.get("times") or {}).items():
        if k != "total" and hasattr(report.times, k):
            setattr(report.times, k, getattr(report.times, k) + float(v))
    for w in r.get("warnings", []):
        if w not in report.warnings:
            report.warn(w)
    if r.get("engine"):
        report.engine = dict(r["engine"])


def _fail(report: Report, err: VmatteError) -> None:
    report.status = "cancelled" if isinstance(err, Interrupted) else "error"
    report.exit_code = err.exit_code
    report.error = str(err)
    report.retryable = err.retryable


def run_job(
    config: RunConfig,
    chunk_size: int,
    execute: Callable[[Job, list[Chunk], JobReport, JobProgress, threading.Event], None],
    *,
    resume: bool = True,
    on_progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    mode: str = "chunked",
    farm_info: dict[str, Any] | None = None,
) -> JobReport:
    """Shared driver of in-process and Ray jobs: plan, verify the manifest, ``execute`` the pending chunks,
    assemble. Writes ``config.report`` (also on failure) and attaches the report to raised errors."""
    report = JobReport(input=config.input)
    report.farm = {"mode": mode, "chunk_size": chunk_size, **(farm_info or {})}
    cancel = cancel or threading.Event()
    emit = on_progress or (lambda event: None)
    t0 = time.perf_counter()
    job: Job | None = None
    try:
        t = time.perf_counter()
        job = Job.prepare(config, chunk_size)
        report.times.probe = time.perf_counter() - t
        report.width, report.height = job.info.width, job.info.height
        report.outputs = [str(o.final) for o in job.outputs]
        report.frame_range = [job.selected[0].start, job.selected[-1].end] if job.selected else None
        report.farm.update(
            {
                "manifest": str(job.manifest.path),
                "work_folder": str(job.manifest.work),
                "chunks_planned": len(job.plan.chunks),
                "chunks_selected": len(job.selected),
                "outputs": [{"path": str(o.final), "kind": o.kind} for o in job.outputs],
                "frames_matted_planned": job.plan.frames_processed,
            }
        )
        ours = resume and job.manifest.is_ours()
        keep: set[int] = set()
        if job.whole and ours:
            keep, notes = job.verified_assembled()
            for n in notes:
                report.warn(n)
        if job.whole and ours and job.assembled_ok():
            report.farm["note"] = "already complete: every output verified against the manifest"
            report.chunks = [
                {"key": c.key, "start": c.start, "end": c.end, "status": "skipped"} for c in job.plan.chunks
            ]
            report.status = "ok"
            return report
        job.preflight(ours)
        for n in job.manifest.start(job.job_info()):
            report.warn(n)
        todo, done, notes = job.pending(resume)
        for n in notes:
            report.warn(n)
        for c in done:
            _merge(report, {}, "skipped", c)
        progress = JobProgress(job, emit, done)
        emit({"stage": "chunks", "done": len(done), "total": len(job.selected), "skipped": len(done)})
        if todo:
            execute(job, todo, report, progress, cancel)
            keep = set()  # chunks changed: every output is joined again
        job.manifest.write(job.job_info())
        if job.whole:
            t = time.perf_counter()
            missing = job.missing_for_assembly()
            if missing:  # e.g. a record went bad between planning and now: render it, then assemble
                execute(job, missing, report, progress, cancel)
                keep = set()
            emit({"stage": "assemble", "done": 0, "total": 1})
            report.farm["assembled"] = job.assemble(cancel=cancel, keep=keep)
            emit({"stage": "assemble", "done": 1, "total": 1})
            report.farm["assemble_s"] = round(time.perf_counter() - t, 3)
        report.status = "ok"
        return report
    except VmatteError as err:
        _fail(report, err)
        err.report = report  # type: ignore[attr-defined]
        raise
    except Exception as exc:
        report.status, report.exit_code, report.error = "error", 1, f"{type(exc).__name__}: {exc}"
        raise
    finally:
        if job is not None:
            with contextlib.suppress(Exception):  # the report must still be written
                report.propagation, report.smoothing = whole_clip_summary(job)
        report.chunks.sort(key=lambda c: c["start"])
        report.times.total = time.perf_counter() - t0
        if config.report:
            report.write_json(config.report)


def run_chunked(
    config: RunConfig,
    chunk_size: int,
    *,
    engine=None,
    resume: bool = True,
    on_progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> JobReport:
    """Render ``config`` as resumable chunks of ``chunk_size`` frames in this process, one engine for all.

    ``config.frames`` selects the chunks to render (a farm task) and skips assembly; without it the whole
    clip is rendered (finished chunks verified and skipped when ``resume``) and the outputs assembled.
    """
    state: dict[str, Any] = {"engine": engine, "own": engine is None}

    def execute(
        job: Job, chunks: list[Chunk], report: JobReport, progress: JobProgress, cancel: threading.Event
    ) -> None:
        if state["engine"] is None:
            from vmatte.engine import load_engine

            t = time.perf_counter()
            state["engine"] = load_engine(job.config.engine, on_warning=report.warn)
            report.times.load_engine += time.perf_counter() - t
        for c in chunks:
            if cancel.is_set():
                raise Interrupted("cancelled")

            def chunk_progress(event: dict[str, Any], c=c) -> None:
                progress.emit({**event, **progress.chunk_fields(c)})
                if event.get("stage") == "matte":
                    progress.frames(int(event.get("done", 0)))

            try:
                rec = job.run_chunk(c, engine=state["engine"], on_progress=chunk_progress, cancel=cancel)
            except Interrupted as exc:
                raise interrupted_in(report, [c], exc) from None
            _merge(report, rec, "done", c)
            job.manifest.write(job.job_info())
            progress.chunk_done(c)

    try:
        return run_job(config, chunk_size, execute, resume=resume, on_progress=on_progress, cancel=cancel)
    finally:
        if state["own"] and state["engine"] is not None:
            state["engine"].close()


__all__ = [
    "INTRA_CODECS",
    "REMUX_FORMATS",
    "Job",
    "JobOutput",
    "JobProgress",
    "JobReport",
    "concat_segments",
    "encode_with_alpha",
    "run_chunked",
    "run_job",
]
