"""Run a job as resumable chunks (in this process, or one chunk per Ray task via :mod:`vmatte.farm.ray_runner`).

The job validates once (:func:`vmatte.pipeline.prepare.prepare`); each chunk is a
:func:`~vmatte.pipeline.runner.render` of its frame range of that prepared run (the runner decodes, mattes and
smooths the context the chunk needs and writes only its own frames), followed by a checksummed record in the
job manifest (:mod:`vmatte.farm.manifest`). A resumed job re-verifies every record and redoes only chunks that are missing,
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
import dataclasses
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vmatte.config import OutputConfig, RunConfig
from vmatte.errors import Interrupted, OutputError
from vmatte.farm.jobreport import (
    JobProgress,
    JobReport,
    interrupted_in,
    merge_chunk,
    own_confidence,
    whole_clip_summary,
)
from vmatte.farm.manifest import Manifest, file_entry, fingerprint, verify_entry
from vmatte.farm.outputs import INTRA_CODECS, REMUX_FORMATS, JobOutput, output_kind
from vmatte.farm.plan import Chunk, Plan, plan_job
from vmatte.io.atomic import temp_prefix
from vmatte.pipeline.prepare import Prepared, prepare
from vmatte.pipeline.report import Report
from vmatte.pipeline.runner import EngineSlot, render, reported

ProgressFn = Callable[[dict[str, Any]], None]


@dataclass
class Job:
    """Everything a chunk needs, picklable (Ray ships it to workers): the prepared run (config, clip, keyframe
    masks, validated once), the plan, the outputs and the manifest."""

    prep: Prepared
    chunk_size: int
    plan: Plan  # the whole-clip grid
    selected: list[Chunk]  # chunks this process renders (config.frames), a subset of plan.chunks
    outputs: list[JobOutput]
    manifest: Manifest
    whole: bool  # no --frames: assemble at the end

    @property
    def config(self) -> RunConfig:
        return self.prep.config

    @property
    def info(self):  # ClipInfo
        return self.prep.info

    @property
    def keyframes(self) -> list[int]:
        """Clip frame numbers with a keyframe mask."""
        return self.prep.keyframe_indices

    @classmethod
    def prepare(
        cls, config: RunConfig, chunk_size: int, report: Report | None = None, on_progress=None
    ) -> Job:
        """Probe, validate masks and outputs (once, for every chunk), plan the grid. Loads no model."""
        prep = prepare(config, farm=True, report=report, on_progress=on_progress)
        plan = plan_job(config, chunk_size, prepared=prep, whole=True)
        if config.frames:
            grid = {c.key: c for c in plan.chunks}
            # a --frames range off the grid still works (its chunks are just keyed by their own range)
            sel = plan_job(config, chunk_size, prepared=prep).chunks
            selected = [grid.get(c.key, c) for c in sel]
        else:
            selected = list(plan.chunks)
        outputs = [
            JobOutput(i, cfg, final, *output_kind(cfg))
            for i, (cfg, final) in enumerate(zip(config.outputs, prep.outputs))
        ]
        manifest = Manifest(anchor=prep.outputs[0], fingerprint=fingerprint(config, prep.info))
        return cls(prep, chunk_size, plan, selected, outputs, manifest, whole=not config.frames)

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

    def chunk_outputs(self, chunk: Chunk) -> list[OutputConfig]:
        """What a render of ``chunk`` writes: sequences in place, intra video into segments, and the lossless
        alpha segment the final encode of inter-frame outputs reads."""
        outs = []
        for o in self.outputs:
            if o.kind == "sequence":
                outs.append(o.cfg)
            elif o.kind == "remux":
                outs.append(dataclasses.replace(o.cfg, path=str(self.segment_path(o, chunk))))
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
        return outs

    def chunk_paths(self, chunk: Chunk) -> list[tuple[Path, dict[str, int]]]:
        """Every file a render of ``chunk`` produces, with the fields its manifest record carries besides the
        checksum (frame, output): sequence frames, intra video segments, then the alpha segment."""
        from vmatte.io.encode import frame_file

        paths: list[tuple[Path, dict[str, int]]] = []
        for o in self.outputs:
            if o.kind == "sequence":
                for i in range(chunk.start, chunk.end + 1):
                    paths.append(
                        (frame_file(o.final, o.cfg.start_number + i), {"frame": i, "output": o.index})
                    )
            elif o.kind == "remux":
                paths.append((self.segment_path(o, chunk), {"output": o.index}))
        if self.needs_alpha:
            paths.append((self.alpha_path(chunk), {}))
        return paths

    def chunk_files(self, chunk: Chunk) -> list[dict[str, Any]]:
        """Checksummed records of every file ``chunk`` produced."""
        return [file_entry(path, **fields) for path, fields in self.chunk_paths(chunk)]

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
        engine: EngineSlot,
        on_progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
    ) -> dict[str, Any]:
        """Render ``chunk`` of the prepared run and record it. Returns the record (files + a report summary)."""
        self.manifest.drop_record(chunk.key)  # from here until the new record exists, the chunk is not done
        self._sweep_temp_files(chunk)
        for o in self.outputs:
            if o.kind == "remux":
                self.segment_path(o, chunk).parent.mkdir(parents=True, exist_ok=True)
        if self.needs_alpha:
            self.alpha_path(chunk).parent.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        rep = Report(input=self.config.input)
        if on_progress is not None:
            rep.listen(on_progress)
        # overwrite: a redone chunk replaces its own earlier (unverified) files; preflight() guarded the user's
        render(
            self.prep,
            chunk.start,
            chunk.end,
            engine,
            rep,
            outputs=self.chunk_outputs(chunk),
            overwrite=True,
            on_progress=on_progress,
            cancel=cancel,
        )
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
        by_dir: dict[Path, set[str]] = {}
        for f, _ in self.chunk_paths(chunk):
            by_dir.setdefault(f.parent, set()).add(temp_prefix(f))
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
        """See :func:`vmatte.farm.assemble.assemble`."""
        from vmatte.farm.assemble import assemble

        return assemble(self, cancel=cancel, keep=keep)


# -- the in-process driver ---------------------------------------------------------------------------------
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
    job: Job | None = None
    with reported(config, report):
        try:
            job = Job.prepare(config, chunk_size, report, on_progress=emit)
            _drive(job, report, execute, resume, emit, cancel)
        finally:
            if job is not None:
                with contextlib.suppress(Exception):  # the report must still be written
                    report.propagation, report.smoothing = whole_clip_summary(job)
            report.chunks.sort(key=lambda c: c["start"])
    return report


def _drive(
    job: Job, report: JobReport, execute, resume: bool, emit: ProgressFn, cancel: threading.Event
) -> None:
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
        return
    job.preflight(ours)
    for n in job.manifest.start(job.job_info()):
        report.warn(n)
    todo, done, notes = job.pending(resume)
    for n in notes:
        report.warn(n)
    for c in done:
        merge_chunk(report, {}, "skipped", c)
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
    with EngineSlot(config, engine) as slot:  # one engine for every chunk, loaded by the first

        def execute(
            job: Job, chunks: list[Chunk], report: JobReport, progress: JobProgress, cancel: threading.Event
        ) -> None:
            for c in chunks:
                if cancel.is_set():
                    raise Interrupted("cancelled")

                def chunk_progress(event: dict[str, Any], c=c) -> None:
                    progress.emit({**event, **progress.chunk_fields(c)})
                    if event.get("stage") == "matte":
                        progress.frames(int(event.get("done", 0)))

                try:
                    rec = job.run_chunk(c, slot, on_progress=chunk_progress, cancel=cancel)
                except Interrupted as exc:
                    raise interrupted_in(report, [c], exc) from None
                merge_chunk(report, rec, "done", c)
                job.manifest.write(job.job_info())
                progress.chunk_done(c)

        return run_job(config, chunk_size, execute, resume=resume, on_progress=on_progress, cancel=cancel)


__all__ = [
    "INTRA_CODECS",
    "REMUX_FORMATS",
    "Job",
    "JobOutput",
    "JobProgress",
    "JobReport",
    "run_chunked",
    "run_job",
]
