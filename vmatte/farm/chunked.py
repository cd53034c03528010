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
        return cls(config, chunk_size, info, plan, selected, outputs, manifest, whole=not config.frames)

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

    def assembled_ok(self) -> bool:
        """True when an earlier run assembled every output and the files still match their checksums."""
        done = {a.get("path"): a for a in self.manifest.assembled()}
        for o in self.outputs:
            a = done.get(str(o.final))
            if a is None:
                return False
            if o.kind != "sequence" and verify_entry(a):
                return False
        seq = {o.index for o in self.outputs if o.kind == "sequence"}
        if seq:
            # sequence frames live in the chunk records (video segments were consumed by assembly)
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

    def assemble(self, cancel: threading.Event | None = None) -> list[dict[str, Any]]:
        """Join the chunks into the final outputs (every grid chunk must be verified). Returns manifest entries."""
        missing = self.missing_for_assembly()
        if missing:
            raise TransientError(
                f"cannot assemble: chunk(s) {', '.join(c.key for c in missing[:5])} missing or changed",
                hint="run the job again; finished chunks are kept",
            )
        from fractions import Fraction

        entries: list[dict[str, Any]] = []
        times = None  # input timestamps, read once when a video output needs them
        for o in self.outputs:
            if o.kind == "sequence":
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
        enc = [o for o in self.outputs if o.kind == "encode"]
        if enc:
            encode_with_alpha(self, enc, [self.alpha_path(c) for c in self.plan.chunks], cancel=cancel)
            for o in enc:
                entries.append({**file_entry(o.final), "kind": "encode"})
        self.manifest.write(self.job_info(), assembled=entries)
        # segments are now inside the finals; keep the records (small) so a re-run verifies and stops
        import shutil

        shutil.rmtree(self.manifest.segments_dir, ignore_errors=True)
        return entries


def _replace_cfg(cfg: OutputConfig, **changes) -> OutputConfig:
    import dataclasses

    return dataclasses.replace(cfg, **changes)


# -- assembly ----------------------------------------------------------------------------------------------
def input_times(info) -> tuple[list[int], list]:
    """(presentation timestamps of every video frame in ``info.time_base`` ticks, start times in s (Fractions)
    of the first audio stream's packets), read from packets without decoding. Image sequences: pts = index."""
    if info.kind != "video":
        return list(range(info.frame_count)), []
    import av

    video, audio = [], []
    with av.open(info.path) as c:
        streams = [c.streams.video[0], *c.streams.audio[:1]]
        for p in c.demux(*streams):
            if not p.size or p.pts is None:
                continue
            if p.stream.type == "video":
                video.append(p.pts)
            else:
                audio.append(p.pts * p.time_base)
    return sorted(video), sorted(audio)


def _snap(grid: list, t, tolerance_s: float = 0.002):
    """The grid time nearest ``t`` when within ``tolerance_s``, else ``t`` (Fractions in, Fraction out)."""
    import bisect

    if not grid:
        return t
    i = bisect.bisect_left(grid, t)
    near = min(grid[max(0, i - 1) : i + 1], key=lambda g: abs(g - t))
    return near if abs(near - t) <= tolerance_s else t


def concat_segments(
    segments: list[Path],
    final: Path,
    starts_s: list | None = None,
    audio_grid_s: list | None = None,
    cancel: threading.Event | None = None,
) -> None:
    """Concatenate video segments (same codec and settings, input timestamps) into ``final`` by copying packets
    (no re-encode). Written under a temp name and renamed.

    ``starts_s``: exact start time (s, Fractions) of each segment's first frame. MOV stores a segment's start
    offset in an edit list in 1/1000 s units, so timestamps read back from a segment can be off by up to 1 ms;
    each segment's video is shifted so its first frame lands exactly on the input's time, and its (copied) audio
    onto the nearest input audio packet time (``audio_grid_s``). Audio packets that two neighbouring segments
    both carry (one straddling a chunk boundary) are kept once."""
    from fractions import Fraction

    import av

    from vmatte.io.writers.common import oserror, remove_quietly, temp_path

    tmp = temp_path(final)
    opts = {"movflags": "use_metadata_tags"} if final.suffix.lower() in (".mov", ".mp4") else {}
    out = None
    try:
        out = av.open(str(tmp), "w", container_options=opts)
        omap: dict[int, Any] = {}
        layout = None
        last_end: dict[int, Any] = {}
        for n, seg in enumerate(segments):
            with av.open(str(seg)) as c:
                streams = [s for s in c.streams if s.type in ("video", "audio")]
                sig = [(s.type, s.codec_context.name) for s in streams]
                if layout is None:
                    layout = sig
                    for k, v in c.metadata.items():
                        if k.lower() not in ("encoder", "major_brand", "minor_version", "compatible_brands"):
                            out.metadata[k] = v
                    for s in streams:
                        o = out.add_stream_from_template(s)
                        for k, v in s.metadata.items():
                            if k.lower() not in ("encoder", "handler_name", "vendor_id", "duration"):
                                o.metadata[k] = v
                        omap[s.index] = o
                elif sig != layout:
                    raise OutputError(
                        f"{seg}: streams {sig} differ from the first segment's {layout}",
                        hint="re-render the job",
                    )
                shifts: dict[int, Fraction] = {}
                for st in streams:
                    if st.start_time is None:
                        continue
                    t0 = st.start_time * st.time_base
                    if st.type == "video" and starts_s is not None:
                        shifts[st.index] = Fraction(starts_s[n]) - t0
                    elif st.type == "audio" and audio_grid_s:
                        shifts[st.index] = _snap(audio_grid_s, t0) - t0
                for pkt in c.demux(*streams):
                    if cancel is not None and cancel.is_set():
                        raise Interrupted("cancelled during assembly")
                    if pkt.dts is None and pkt.pts is None:
                        continue  # demuxer flush packet
                    idx = pkt.stream.index
                    shift = shifts.get(idx)
                    if shift:
                        ticks = round(shift / pkt.time_base)
                        if pkt.pts is not None:
                            pkt.pts += ticks
                        if pkt.dts is not None:
                            pkt.dts += ticks
                    if pkt.stream.type == "audio" and pkt.pts is not None:
                        start = pkt.pts * pkt.time_base
                        half = (pkt.duration or 0) * pkt.time_base / 2
                        if n > 0 and idx in last_end and start + half <= last_end[idx]:
                            continue  # already muxed from the previous segment
                        last_end[idx] = start + (pkt.duration or 0) * pkt.time_base
                    pkt.stream = omap[idx]
                    out.mux(pkt)
        out.close()
        out = None
        os.replace(tmp, final)
    except OSError as exc:
        raise oserror(exc, final) from None
    finally:
        if out is not None:
            with contextlib.suppress(Exception):
                out.close()
        if tmp.exists():
            remove_quietly(tmp)


def _alpha_frames(paths: list[Path]):
    """Yield (H, W) float32 alpha in [0, 1] from 16-bit gray FFV1 segments, in order."""
    import av
    import numpy as np

    for p in paths:
        with av.open(str(p)) as c:
            for vf in c.decode(video=0):
                yield vf.to_ndarray(format="gray16le").astype(np.float32) * np.float32(1.0 / 65535.0)


def encode_with_alpha(
    job: Job, outputs: list[JobOutput], alpha_paths: list[Path], cancel: threading.Event | None = None
) -> None:
    """Final encode for inter-frame codecs: decode the input again, attach the chunks' alpha, and write with the
    outputs' own writers (so decontamination, composites, audio and colour tags match a single run)."""
    from vmatte.io.compose import estimate_foreground, needs_foreground
    from vmatte.io.decode import open_clip
    from vmatte.io.encode import open_writer

    clip = open_clip(job.info.path)
    n = job.info.frame_count
    writers = []
    ok = False
    try:
        for o in outputs:
            writers.append(
                open_writer(
                    o.cfg,
                    clip.info,
                    overwrite=True,
                    threads=job.config.pipeline.encode_threads,
                    frame_range=(0, n - 1),
                )
            )
        needs_fg = any(needs_foreground(o.cfg) for o in outputs)
        alphas = _alpha_frames(alpha_paths)
        for frame in clip.frames(0, n - 1, max_corrupt=job.config.pipeline.max_corrupt_frames):
            if cancel is not None and cancel.is_set():
                raise Interrupted("cancelled during the final encode")
            a = next(alphas, None)
            if a is None:
                raise TransientError(
                    f"alpha segments end before frame {frame.index}",
                    hint="run the job again with --no-resume",
                )
            f = frame.replace(alpha=a)
            if needs_fg:
                f = f.replace(foreground=estimate_foreground(f.rgb_float(), a))
            for w in writers:
                w.write(f)
        for w in writers:
            w.close()
        ok = True
    finally:
        if not ok:
            for w in writers:
                with contextlib.suppress(Exception):
                    w.abort()


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
    sk = set(report.propagation.get("suggested_keyframes", []))
    sk.update(r.get("suggested_keyframes", []))
    report.propagation["suggested_keyframes"] = sorted(sk)
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
    execute: Callable[[Job, list[Chunk], JobReport, ProgressFn, threading.Event], None],
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
        emit({"stage": "chunks", "done": len(done), "total": len(job.selected), "skipped": len(done)})
        if todo:
            execute(job, todo, report, emit, cancel)
        job.manifest.write(job.job_info())
        if job.whole:
            t = time.perf_counter()
            missing = job.missing_for_assembly()
            if missing:  # e.g. a record went bad between planning and now: render it, then assemble
                execute(job, missing, report, emit, cancel)
            emit({"stage": "assemble", "done": 0, "total": 1})
            report.farm["assembled"] = job.assemble(cancel=cancel)
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
        job: Job, chunks: list[Chunk], report: JobReport, emit: ProgressFn, cancel: threading.Event
    ) -> None:
        if state["engine"] is None:
            from vmatte.engine import load_engine

            t = time.perf_counter()
            state["engine"] = load_engine(job.config.engine, on_warning=report.warn)
            report.times.load_engine += time.perf_counter() - t
        for n, c in enumerate(chunks):
            if cancel.is_set():
                raise Interrupted("cancelled")

            def chunk_progress(event: dict[str, Any], c=c, n=n) -> None:
                emit({**event, "chunk": c.key, "chunk_index": n, "chunks": len(chunks)})

            rec = job.run_chunk(c, engine=state["engine"], on_progress=chunk_progress, cancel=cancel)
            _merge(report, rec, "done", c)
            job.manifest.write(job.job_info())
            emit({"stage": "chunks", "done": n + 1, "total": len(chunks), "chunk": c.key})

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
    "JobReport",
    "concat_segments",
    "encode_with_alpha",
    "run_chunked",
    "run_job",
]
