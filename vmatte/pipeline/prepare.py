"""Validation of a run, once, into one :class:`Prepared` object that any frame range of it is rendered from.

``vmatte run`` prepares and renders ``--frames`` (or the whole clip); a chunked job prepares once and renders
each chunk's range of the same object (:func:`vmatte.pipeline.runner.render`), so the clip is probed and the
masks are validated once per job, not once per chunk. Everything here happens before any model loads, so bad
input fails fast with one line and its exit code (see :mod:`vmatte.errors`).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vmatte.config import RunConfig, parse_frame_range
from vmatte.errors import OutputError, UsageError, VmatteError, say
from vmatte.pipeline.context import context_range, propagation_range
from vmatte.pipeline.report import Report, message_event


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


@dataclass
class Prepared:
    """A validated run: the opened clip, its keyframe masks, the resolved outputs and the context rule.

    Picklable (the clip is probed, not open; masks are validated, not decoded), so a farm ships it to workers.
    ``start``/``end``: the inclusive clip frames asked for (``config.frames``, else the whole clip).
    ``outputs``: final path of each of ``config.outputs``, in order (a printf pattern for sequences).
    """

    config: RunConfig
    clip: Any  # vmatte.io.decode.Clip
    keyframes: Any  # vmatte.io.masks.Keyframes
    start: int
    end: int
    outputs: list[Path] = field(default_factory=list)

    @property
    def info(self):
        return self.clip.info

    @property
    def keyframe_indices(self) -> list[int]:
        return [int(k) for k in self.keyframes.indices]

    def context(self, start: int, end: int) -> tuple[int, int]:
        """Frames a render of ``start..end`` decodes, mattes and smooths (see :func:`context_range`)."""
        return context_range(start, end, self.info.frame_count, self.keyframe_indices, self.config)

    def propagation(self, start: int, end: int) -> tuple[int, int]:
        """Frames the propagation pass of a render of ``start..end`` reads (see :func:`propagation_range`)."""
        return propagation_range(*self.context(start, end), self.keyframe_indices)


def prepare(
    config: RunConfig, *, farm: bool = False, report: Report | None = None, on_progress=None
) -> Prepared:
    """Probe the clip, parse the frame range, validate the keyframe masks and the outputs. Loads no model.

    ``farm``: a chunked job's outputs are whole-clip files assembled at the end, so they are resolved for the
    whole clip and existing files are checked by the job (which knows whether they are its own, a resume), not
    here. ``report`` gets the clip size, frame range, keyframe files, mask warnings, outputs and probe time;
    ``on_progress`` an info event with the mask-file → frame mapping.
    """
    from vmatte.io.decode import open_clip
    from vmatte.io.masks import load_keyframes

    t = time.perf_counter()
    report = report if report is not None else Report()

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
    clip = open_clip(config.input)
    info = clip.info
    report.width, report.height = info.width, info.height
    start, end = resolve_range(config.frames, info.frame_count, info.path)
    report.frame_range = [start, end]
    keyframes = load_keyframes(config.masks, info)
    report.keyframes = {Path(k.path).name: n for n, k in sorted(keyframes.items.items())}
    if on_progress is not None:
        on_progress(message_event("info", keyframes.mapping()))
    for w in keyframes.warnings:
        report.warn(w)
    if not config.outputs:
        raise UsageError(
            "no outputs configured",
            hint=say(
                "pass -o OUT or a --pipeline preset", "set RunConfig(outputs=(OutputConfig(path=...),))"
            ),
        )
    prep = Prepared(config, clip, keyframes, start, end)
    prep.outputs = _resolve_outputs(prep, farm=farm)
    report.outputs = [str(p) for p in prep.outputs]
    report.times.probe = time.perf_counter() - t
    return prep


def _resolve_outputs(prep: Prepared, *, farm: bool) -> list[Path]:
    from vmatte.io.compose import check_background
    from vmatte.io.encode import check_output_path, resolve_output_path

    config, info = prep.config, prep.info
    finals: list[Path] = []
    masks_dir = Path(config.masks).resolve()
    for out_cfg in config.outputs:
        final = resolve_output_path(out_cfg, info, None if farm else (prep.start, prep.end))
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
        if not farm:
            check_output_path(final, info, overwrite=config.overwrite)
        if out_cfg.content == "composite":
            check_background(
                out_cfg.background
            )  # a typo'd colour is a usage error, found before the model loads
        finals.append(final)
    return finals


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
