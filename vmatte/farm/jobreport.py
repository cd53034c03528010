"""The job-level view of a chunked or Ray run: whole-clip confidence and keyframe suggestions, combined
smoothing stats, job progress (frames, rate, ETA, stable chunk numbers) and the interrupted-chunk note.

Everything here reads the chunk records of the manifest, so a job's report covers chunks rendered by earlier
runs and by other farm nodes too, not only those rendered by this process.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vmatte.errors import Interrupted
from vmatte.pipeline.report import Report

if TYPE_CHECKING:
    from vmatte.farm.chunked import Job
    from vmatte.farm.plan import Chunk

ProgressFn = Callable[[dict[str, Any]], None]


@dataclass
class JobReport(Report):
    """A :class:`~vmatte.pipeline.report.Report` for a chunked job: stage times and frame counts are summed over
    the chunks rendered now; ``chunks`` lists each chunk (``status`` "done" = rendered now, "skipped" = verified
    from an earlier run); ``farm`` holds the chunk size, assembly and (Ray) per-task overheads."""

    chunks: list[dict[str, Any]] = field(default_factory=list)
    farm: dict[str, Any] = field(default_factory=dict)


def merge_chunk(report: JobReport, rec: dict[str, Any], status: str, chunk: Chunk) -> None:
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


def own_confidence(propagation: dict[str, Any], chunk: Chunk) -> list[float | None]:
    """Confidence of frames chunk.start..chunk.end out of a run's propagation summary (which also covers the
    chunk's context frames: ``frames`` = [first, last] of its ``confidence`` list)."""
    lo_hi, conf = propagation.get("frames"), propagation.get("confidence")
    if not lo_hi or conf is None:
        return []
    return [
        conf[i - lo_hi[0]] if 0 <= i - lo_hi[0] < len(conf) else None
        for i in range(chunk.start, chunk.end + 1)
    ]


_SUMMED = ("frames", "scene_cuts", "seconds", "flows_computed", "flows_reused")
_WEIGHTED = ("band_pixels_per_frame", "mean_neighbour_weight")


def _combine_smoothing(stats: list[dict[str, Any]]) -> dict[str, Any]:
    """One smoothing summary from the chunks' :meth:`TemporalSmoother.stats`: counts and seconds summed,
    per-frame figures weighted by frames, ``max_frames_held`` the maximum. ``frames`` counts every frame a
    chunk smoothed, its context included (so it exceeds the clip length by the chunks' overlap)."""
    stats = [s for s in stats if s]
    if not stats:
        return {}
    out: dict[str, Any] = {k: v for k, v in stats[0].items() if k not in (*_SUMMED, *_WEIGHTED)}
    for k in _SUMMED:
        out[k] = round(sum(float(s.get(k, 0)) for s in stats), 4)
    out["frames"] = int(out["frames"])
    n = out["frames"]
    for k in _WEIGHTED:
        out[k] = round(sum(float(s.get(k, 0)) * s.get("frames", 0) for s in stats) / n, 4) if n else 0.0
    out["ms_per_frame"] = round(1000.0 * out["seconds"] / n, 3) if n else 0.0
    out["max_frames_held"] = max(int(s.get("max_frames_held", 0)) for s in stats)
    out["chunks"] = len(stats)
    return out


def whole_clip_summary(job: Job) -> tuple[dict[str, Any], dict[str, Any]]:
    """(propagation, smoothing) of the job as a whole, from the records of every chunk in the manifest (not
    only those rendered by this run): per-frame confidence over the whole clip (None where no chunk has been
    recorded yet), its mean, keyframe suggestions ranked over all of it, and the combined smoothing stats."""
    from vmatte.propagate.propagator import rank_suggestions

    n = job.info.frame_count
    conf: list[float | None] = [None] * n
    smooth = []
    for rec in job.manifest.records().values():
        r = rec.get("report") or {}
        start = int(rec.get("start", 0))
        for i, v in enumerate(r.get("confidence") or []):
            if v is not None and 0 <= start + i < n:
                conf[start + i] = float(v)
        smooth.append(r.get("smoothing") or {})
    scored = {i: v for i, v in enumerate(conf) if v is not None}
    k = int(getattr(job.config.propagate, "suggest_keyframes", 3))
    propagation = {
        "frames": [0, n - 1],
        "keyframes": list(job.keyframes),
        "confidence": conf,
        "frames_scored": len(scored),
        "mean_confidence": round(sum(scored.values()) / len(scored), 4) if scored else None,
        "suggested_keyframes": rank_suggestions(scored, job.keyframes, k, n) if scored else [],
    }
    return propagation, _combine_smoothing(smooth)


class JobProgress:
    """Job-level progress for chunked and Ray runs: ``{"stage": "frames", "done", "total", "fps", "eta_s"}``
    over the frames of the selected chunks (chunks verified from an earlier run count as done), and chunk
    events numbered by the chunk's place in the whole-clip grid (``chunk_index`` of ``chunks``), which does not
    change on resume."""

    def __init__(self, job: Job, emit: ProgressFn, done_chunks: list[Chunk]):
        self.emit = emit
        self.index = {c.key: i for i, c in enumerate(job.plan.chunks)}
        self.grid = len(job.plan.chunks)
        self.total = sum(c.end - c.start + 1 for c in job.selected)
        self.finished = sum(c.end - c.start + 1 for c in done_chunks)
        self.chunks_total = len(job.selected)
        self.chunks_done = len(done_chunks)
        self.t0 = time.monotonic()
        self.now_frames = 0  # frames written by this run (for the rate)

    def chunk_fields(self, chunk: Chunk) -> dict[str, Any]:
        return {"chunk": chunk.key, "chunk_index": self.index.get(chunk.key), "chunks": self.grid}

    def frames(self, in_flight: int) -> None:
        """Emit the job's frame count: finished chunks plus ``in_flight`` frames of chunks still running."""
        done = self.finished + in_flight
        ran = self.now_frames + in_flight
        dt = time.monotonic() - self.t0
        fps = ran / dt if dt > 0 and ran else 0.0
        eta = round((self.total - done) / fps, 1) if fps > 0 else None
        self.emit({"stage": "frames", "done": done, "total": self.total, "fps": round(fps, 3), "eta_s": eta})

    def chunk_done(self, chunk: Chunk) -> None:
        n = chunk.end - chunk.start + 1
        self.finished += n
        self.now_frames += n
        self.chunks_done += 1
        self.emit(
            {
                "stage": "chunks",
                "done": self.chunks_done,
                "total": self.chunks_total,
                **self.chunk_fields(chunk),
            }
        )
        self.frames(0)


def interrupted_in(report: JobReport, chunks: list[Chunk], exc: Interrupted) -> Interrupted:
    """Record that ``chunks`` were cut short (report entries with status "interrupted", ``farm.interrupted``)
    and return the Interrupted error to raise, its message naming them (same signal and exit code)."""
    for c in chunks:
        report.chunks.append({"key": c.key, "start": c.start, "end": c.end, "status": "interrupted"})
    report.farm["interrupted"] = [c.key for c in chunks]
    names = ", ".join(f"{c.key} (frames {c.start}-{c.end})" for c in chunks[:4])
    more = f" and {len(chunks) - 4} more" if len(chunks) > 4 else ""
    err = Interrupted(
        f"{exc.message} during chunk {names}{more}; it has no record and is redone on resume",
        signum=exc.signum,
    )
    err.exit_code = exc.exit_code
    return err
