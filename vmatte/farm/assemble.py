"""Assembly of a chunked job's outputs (see :mod:`vmatte.farm.chunked` for where each output's frames go):
image sequences are already in place; intra-only video segments are joined by copying packets
(:func:`vmatte.io.remux.concat_segments`); inter-frame video is encoded once from the chunks' lossless alpha
segments through the same stream as a run (:func:`vmatte.pipeline.stream.write_stream`: decode thread, encode
thread, decontamination and the outputs' own writers), with "attach the recorded alpha" as its stage.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import numpy as np

from vmatte.errors import TransientError
from vmatte.farm.manifest import file_entry
from vmatte.frame import Frame

if TYPE_CHECKING:
    from vmatte.farm.chunked import Job
    from vmatte.farm.outputs import JobOutput


def assemble(
    job: Job, cancel: threading.Event | None = None, keep: set[int] | None = None
) -> list[dict[str, Any]]:
    """Join the chunks into the final outputs (every grid chunk must be verified), except the outputs in
    ``keep`` (indices of verified earlier assemblies, whose manifest entries are carried over). Returns the
    manifest entries. Segments stay in the work folder: a final output damaged or deleted later is
    re-assembled from them without rendering anything."""
    from vmatte.io.remux import concat_segments, input_times

    missing = job.missing_for_assembly()
    if missing:
        raise TransientError(
            f"cannot assemble: chunk(s) {', '.join(c.key for c in missing[:5])} missing or changed",
            hint="run the job again; finished chunks are kept",
        )
    keep = keep or set()
    before = {a.get("path"): a for a in job.manifest.assembled()}
    entries: list[dict[str, Any]] = []
    times = None  # input timestamps, read once when a video output needs them
    chunks = job.plan.chunks
    for o in job.outputs:
        if o.index in keep and str(o.final) in before:
            entries.append(before[str(o.final)])
        elif o.kind == "sequence":
            entries.append({"path": str(o.final), "kind": "sequence", "frames": job.info.frame_count})
        elif o.kind == "remux":
            if times is None:
                times = input_times(job.info)
            pts, audio_grid = times
            starts = [
                Fraction(pts[c.start]) * job.info.time_base if c.start < len(pts) else None for c in chunks
            ]
            concat_segments(
                [job.segment_path(o, c) for c in chunks],
                o.final,
                starts_s=None if None in starts else starts,
                audio_grid_s=audio_grid,
                cancel=cancel,
            )
            entries.append({**file_entry(o.final), "kind": "remux", "segments": len(chunks)})
    enc = [o for o in job.outputs if o.kind == "encode" and o.index not in keep]
    if enc:
        final_encode(job, enc, cancel=cancel)
        for o in enc:
            entries.append({**file_entry(o.final), "kind": "encode"})
    job.manifest.write(job.job_info(), assembled=entries)
    return entries


class _AttachAlpha:
    """Stream stage of the final encode: each decoded frame gets the next recorded alpha, (H, W) float32."""

    def __init__(self, alphas: Iterator[np.ndarray], emit: Callable[[Frame], None]) -> None:
        self.alphas = alphas
        self.emit = emit

    def push(self, frame: Frame) -> None:
        a = next(self.alphas, None)
        if a is None:
            raise TransientError(
                f"alpha segments end before frame {frame.index}", hint="run the job again with --no-resume"
            )
        self.emit(frame.replace(alpha=a))

    def flush(self) -> None:
        pass


def final_encode(job: Job, outputs: list[JobOutput], cancel: threading.Event | None = None) -> None:
    """Final encode for inter-frame codecs: decode the input again, attach the chunks' alpha, and write with the
    outputs' own writers (so decontamination, composites, audio and colour tags match a single run). Runs under
    the job's thread cap like a render."""
    from vmatte.errors import Interrupted
    from vmatte.io.remux import read_alpha_segments
    from vmatte.pipeline.report import Report
    from vmatte.pipeline.stream import queue_depth, write_stream
    from vmatte.pipeline.threads import Cancelled, cpu_thread_limit

    config, n = job.config, job.info.frame_count
    alphas = read_alpha_segments([job.alpha_path(c) for c in job.plan.chunks])
    try:
        with cpu_thread_limit(config.pipeline.cpu_threads):
            write_stream(
                job.prep.clip,
                (0, n - 1),
                (0, n - 1),
                lambda emit: _AttachAlpha(alphas, emit),
                [o.cfg for o in outputs],
                overwrite=True,  # preflight() guarded the user's files; these are the job's own
                pipeline=config.pipeline,
                depth=queue_depth(),
                report=Report(input=config.input),
                cancel=cancel or threading.Event(),
            )
    except Cancelled:
        raise Interrupted("cancelled during the final encode") from None
    finally:
        alphas.close()  # the segment being read, if the stream stopped early
