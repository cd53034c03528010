"""Chunk planning for render farms: which frames each chunk writes, which frames it must also process so that
its output equals a whole-clip run, and the command line a farm submits for it.

A chunk ``start..end`` (inclusive clip frame numbers) needs context on both sides:

- **propagation context**: the cheap working-resolution propagation pass runs from the keyframe at or before
  the chunk's context to the keyframe at or after it (:func:`vmatte.pipeline.context.propagation_range`, the
  rule the :class:`~vmatte.propagate.Propagator` applies to its ``frame_range``);
- **matting context** (decoded at full resolution, matted and smoothed, outputs dropped): the temporal
  smoother's warm-up (``TemporalSmoother.warmup_frames``) before and look-ahead after, and with alpha feedback
  on or a band margin chosen at keyframes, back to the keyframe before the warm-up (see
  :func:`vmatte.pipeline.context.context_range`).

The chunk grid is always laid over the whole clip (``0, N, 2N, ...``), so every farm task, whatever its
``--frames``, agrees on which chunk is which; the manifest of :mod:`vmatte.farm.manifest` keys chunks by range.
"""

from __future__ import annotations

import shlex
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vmatte.config import RunConfig
from vmatte.errors import UsageError


@dataclass(frozen=True)
class Chunk:
    """One chunk of a job. All numbers are inclusive clip frame indices.

    start, end: frames this chunk writes.
    context_start, context_end: frames it decodes, mattes and smooths (outputs outside start..end dropped).
    propagate_start, propagate_end: frames the propagation pass reads (working resolution, cheap).
    command: the argv a farm runs for this chunk (empty when planned without a command template).
    """

    index: int
    start: int
    end: int
    context_start: int
    context_end: int
    propagate_start: int
    propagate_end: int
    command: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """Stable name of the chunk in manifests and work folders: ``000100-000199``."""
        return f"{self.start:06d}-{self.end:06d}"

    @property
    def frames(self) -> int:
        return self.end - self.start + 1

    @property
    def overlap_before(self) -> int:
        """Extra full-resolution frames processed before ``start`` (matting + smoothing context)."""
        return self.start - self.context_start

    @property
    def overlap_after(self) -> int:
        """Extra full-resolution frames processed after ``end`` (smoothing look-ahead)."""
        return self.context_end - self.end

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["key"] = self.key
        d["overlap_before"] = self.overlap_before
        d["overlap_after"] = self.overlap_after
        d["command"] = list(self.command)
        d["command_line"] = shlex.join(self.command) if self.command else ""
        return d


@dataclass
class Plan:
    """A chunked job: the grid, the context each chunk needs, and where the context figures came from."""

    input: str
    masks: str
    frame_count: int
    chunk_size: int
    keyframes: list[int]
    warmup_frames: int
    lookahead_frames: int
    context_source: str
    alpha_feedback: bool
    chunks: list[Chunk]
    assemble_command: tuple[str, ...] = ()
    notes: list[str] = field(default_factory=list)

    @property
    def frames_processed(self) -> int:
        """Full-resolution frames matted over all chunks (>= frame_count: the overlaps are the farm's cost)."""
        return sum(c.context_end - c.context_start + 1 for c in self.chunks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "input": self.input,
            "masks": self.masks,
            "frame_count": self.frame_count,
            "chunk_size": self.chunk_size,
            "keyframes": self.keyframes,
            "smoothing": {
                "warmup_frames": self.warmup_frames,
                "lookahead_frames": self.lookahead_frames,
                "source": self.context_source,
            },
            "alpha_feedback": self.alpha_feedback,
            "frames_processed": self.frames_processed,
            "overhead": round(self.frames_processed / max(1, self.frame_count) - 1.0, 4),
            "chunks": [c.to_dict() for c in self.chunks],
            "assemble_command": list(self.assemble_command),
            "assemble_command_line": shlex.join(self.assemble_command) if self.assemble_command else "",
            "notes": list(self.notes),
        }

    def to_text(self) -> str:
        lines = [
            f"{self.input}: {self.frame_count} frames, keyframes {self.keyframes}, "
            f"{len(self.chunks)} chunk(s) of up to {self.chunk_size} frames",
            f"smoothing context: {self.warmup_frames} frame(s) before, {self.lookahead_frames} after "
            f"({self.context_source}); alpha feedback {'on: matting starts at the keyframe before' if self.alpha_feedback else 'off'}",
            f"frames matted in total: {self.frames_processed} "
            f"({100.0 * (self.frames_processed / max(1, self.frame_count) - 1.0):.1f}% overlap overhead)",
            "",
            f"{'chunk':>5}  {'frames':>13}  {'matting context':>15}  {'before':>6}  {'after':>5}  {'propagation':>13}",
        ]
        for c in self.chunks:
            lines.append(
                f"{c.index:>5}  {f'{c.start}-{c.end}':>13}  {f'{c.context_start}-{c.context_end}':>15}  "
                f"{c.overlap_before:>6}  {c.overlap_after:>5}  {f'{c.propagate_start}-{c.propagate_end}':>13}"
            )
        if any(c.command for c in self.chunks):
            lines += ["", "commands (one farm task each; re-queue freely: finished chunks are skipped):"]
            lines += [shlex.join(c.command) for c in self.chunks]
        if self.assemble_command:
            lines += [
                "",
                "then, once all tasks are done (verifies checksums, renders anything missing, assembles):",
            ]
            lines.append(shlex.join(self.assemble_command))
        for n in self.notes:
            lines.append(f"note: {n}")
        return "\n".join(lines)


def split_range(first: int, last: int, chunk_size: int, *, origin: int = 0) -> list[tuple[int, int]]:
    """Inclusive (start, end) pairs covering ``first..last`` on a grid of ``chunk_size`` frames anchored at
    ``origin`` (so farm tasks with different sub-ranges agree on chunk boundaries)."""
    if chunk_size < 1:
        raise UsageError(f"--chunk {chunk_size}: must be at least 1 frame")
    if last < first:
        return []
    out = []
    s = first
    while s <= last:
        grid_end = origin + ((s - origin) // chunk_size + 1) * chunk_size - 1
        e = min(grid_end, last)
        out.append((s, e))
        s = e + 1
    return out


def plan_job(
    config: RunConfig,
    chunk_size: int,
    *,
    command: list[str] | None = None,
    prepared=None,
    whole: bool = False,
) -> Plan:
    """Plan ``config`` (its ``frames`` selects which chunks, on the whole-clip grid; ``whole``: all of them)
    as chunks of ``chunk_size``.

    ``command``: argv template of the run (``["vmatte", "run", CLIP, "--masks", DIR, ...]`` without
    ``--frames``/``--chunk``); each chunk gets ``command + ["--chunk", N, "--frames", "S-E"]`` and the plan an
    assemble command ``command + ["--chunk", N]``. ``prepared``: the job's
    :class:`~vmatte.pipeline.prepare.Prepared` when already made; otherwise the clip is probed and the masks
    and outputs validated here. Loads no model. Each chunk's context comes from the one rule of
    :mod:`vmatte.pipeline.context` (:meth:`Prepared.context`, :meth:`Prepared.propagation`).
    """
    from vmatte.pipeline.context import smoothing_context, starts_at_keyframe
    from vmatte.pipeline.prepare import prepare

    if chunk_size < 1:
        raise UsageError(f"--chunk {chunk_size}: must be at least 1 frame")
    prep = prepared or prepare(config, farm=True)
    config, n = prep.config, prep.info.frame_count
    kfs = prep.keyframe_indices
    first, last = (0, n - 1) if whole else (prep.start, prep.end)
    warmup, lookahead, source = smoothing_context(config.smooth)
    chunks = []
    for i, (s, e) in enumerate(split_range(first, last, chunk_size)):
        cs, ce = prep.context(s, e)
        ps, pe = prep.propagation(s, e)
        argv = tuple([*command, "--chunk", str(chunk_size), "--frames", f"{s}-{e}"]) if command else ()
        chunks.append(Chunk(i, s, e, cs, ce, ps, pe, argv))
    notes = []
    if starts_at_keyframe(config) and kfs:
        gaps = [c.overlap_before for c in chunks]
        if gaps and max(gaps) > 2 * max(1, warmup) and len(chunks) > 1:
            notes.append(
                "alpha feedback and the band margin chosen at keyframes make each chunk matte from the keyframe "
                "before it; put keyframes near chunk starts (or set propagate.use_alpha_feedback = false and "
                "engine.band_margin to a number in a --config file) to cut the overlap"
            )
    return Plan(
        input=str(config.input),
        masks=str(config.masks),
        frame_count=n,
        chunk_size=chunk_size,
        keyframes=kfs,
        warmup_frames=warmup,
        lookahead_frames=lookahead,
        context_source=source,
        alpha_feedback=bool(config.propagate.use_alpha_feedback),
        chunks=chunks,
        assemble_command=tuple([*command, "--chunk", str(chunk_size)]) if command else (),
        notes=notes,
    )


def absolute_path(p: str | None) -> str | None:
    """Farm nodes run in other working directories: commands carry absolute paths (printf patterns kept)."""
    if not p:
        return p
    return str(Path(p).expanduser().absolute())
