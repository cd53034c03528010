"""Frame → files: the entry point for writers. The runner creates one writer per output with
:func:`open_writer` and feeds every writer each frame (from the encode thread).

Contract of a writer: ``write(frame)`` per frame in presentation order; ``close()`` finalises (video: temp file
renamed to the final path; sequences: each frame file was already written to a temp name and renamed);
``abort()`` removes temporaries. ``path`` is the final path (a printf pattern for sequences); ``notes`` lists
user-facing remarks (e.g. audio re-encoded). Several outputs from one run are independent writer objects.

Before calling ``write``, the runner sets ``Frame.foreground`` once per frame (via
:func:`vmatte.io.compose.estimate_foreground`) when any output's :func:`~vmatte.io.compose.needs_foreground`
is true; a writer used alone estimates it itself. This module never imports torch.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Protocol

from vmatte.errors import OutputError, UsageError
from vmatte.frame import Frame
from vmatte.io.config import OutputConfig
from vmatte.io.decode import IMAGE_EXTS, ClipInfo
from vmatte.io.formats import FORMATS, FormatSpec, format_for
from vmatte.io.writers.common import overwrite_hint, temp_path
from vmatte.io.writers.external import FfmpegWriter, ffmpeg_binary
from vmatte.io.writers.sequence import SequenceWriter, frame_file
from vmatte.io.writers.video import VideoWriter

__all__ = [
    "FORMATS",
    "Writer",
    "check_output_path",
    "ffmpeg_binary",
    "format_for",
    "frame_file",
    "open_writer",
    "overwrite_hint",
    "resolve_output_path",
    "temp_path",
]

_PRINTF = re.compile(r"%0?\d*d")
_SEQ_PAD = 6  # default digits of derived sequence names (clips up to a million frames)


class Writer(Protocol):
    path: Path
    notes: list[str]  # one-line notes for the run report (e.g. audio re-encoded)
    created_dirs: list[Path]  # output folders it created (removed again if the run fails)

    def write(self, frame: Frame) -> None: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...


def _input_stem(info: ClipInfo) -> str:
    src = Path(info.path)
    if info.kind == "video":
        return src.stem
    # a sequence: "shots/a/frame.%04d.png" → "frame"; a folder "shots/a/" → "a"
    name = src.name if not _PRINTF.search(src.name) else _PRINTF.sub("", src.name)
    name = name.split(".")[0].rstrip("._-") if name else ""
    return name or src.parent.name or "frames"


def resolve_output_path(
    cfg: OutputConfig, info: ClipInfo, frame_range: tuple[int, int] | None = None
) -> Path:
    """Final path of an output: a file for video formats, a printf pattern (``.../name.%06d.png``) for sequences.

    Empty ``cfg.path``: beside the input, ``<stem>.<content>.<ext>`` (video) or folder ``<stem>.<content>/``
    holding ``<stem>.%06d.<ext>`` (sequence). A sequence path that is a folder (ends with '/' or has no
    extension) gets ``<stem>.%06d.<ext>`` inside it; a pattern is used as given. A plain image name
    (``key0.png``) is a single image: allowed when the run writes exactly one frame (``frame_range``, inclusive
    clip indices; None = the whole clip), else a UsageError (exit 2) asking for a pattern.
    """
    spec = format_for(cfg)
    stem = _input_stem(info)
    suffix = {"rgba": "matte-rgba", "alpha": "matte", "composite": "comp"}[cfg.content]
    src_dir = Path(info.path).parent
    if spec.kind == "video":
        if not cfg.path:
            return src_dir / f"{stem}.{suffix}{spec.ext}"
        return Path(cfg.path)
    if not cfg.path:
        return src_dir / f"{stem}.{suffix}" / f"{stem}.%0{_SEQ_PAD}d{spec.ext}"
    p = Path(cfg.path)
    if _PRINTF.search(p.name):
        if len(_PRINTF.findall(p.name)) != 1 or _PRINTF.search(str(p.parent)):
            raise OutputError(
                f"{cfg.path}: a sequence pattern needs exactly one %0Nd, in the file name",
                hint="e.g. out/shot.%04d.exr",
            )
        return p
    if cfg.path.endswith(("/", os.sep)) or not p.suffix:
        return p / f"{stem}.%0{_SEQ_PAD}d{spec.ext}"
    start, end = frame_range if frame_range is not None else (0, max(0, info.frame_count - 1))
    if start == end:
        return p  # one frame, one image: SequenceWriter writes it under this exact name
    example = re.sub(r"\d+$", "", p.stem) + "%04d" + p.suffix  # key0.png → key%04d.png
    raise UsageError(
        f"{cfg.path}: one image file, but this run writes {end - start + 1} frames ({start}-{end})",
        hint=f"use a frame-number pattern such as {example}, or --frames {start}-{start} for one frame",
    )


def check_output_path(final: Path, info: ClipInfo, *, overwrite: bool) -> None:
    """Refuse outputs that would clobber the input or an existing file, or that cannot be written.

    For a sequence pattern only the folder is checked here; the frame files this run will write are checked
    by :func:`open_writer`, which knows the frame range (other chunks' frames beside them are fine).
    """
    # only image sequences have frame-number patterns: "take 100%done.mov" is a plain file name
    pattern = bool(_PRINTF.search(final.name)) and final.suffix.lower() in IMAGE_EXTS
    final = final.resolve()
    try:
        same = Path(info.path).exists() and final.exists() and os.path.samefile(final, info.path)
    except OSError:
        same = False
    if (
        same
        or final == Path(info.path).resolve()
        or (pattern and info.kind == "sequence" and str(final) == str(Path(info.path).resolve()))
    ):
        raise OutputError(
            f"{final}: output path is the input clip",
            hint="choose another -o path; inputs are never overwritten",
        )
    if not pattern and final.exists() and not overwrite:
        raise OutputError(f"{final}: already exists", hint=overwrite_hint())
    if not pattern and final.is_dir():
        raise OutputError(f"{final}: is a folder", hint="give a file name for video outputs")
    parent = final.parent
    # a missing folder is created by the writer when it starts (and removed again if the run fails): here
    # only check that it could be, from its nearest existing ancestor
    existing = parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing != parent and not existing.is_dir():
        raise OutputError(f"{parent}: cannot create output folder ({existing} is a file)")
    if not existing.is_dir():
        raise OutputError(f"{parent}: is not a folder", hint="choose another -o path")
    if not os.access(existing, os.W_OK):
        raise OutputError(f"{existing}: output folder is not writable", hint="choose a writable -o path")
    if pattern and info.kind == "sequence":
        rx = re.compile("^" + _PRINTF.sub(r"\\d+", re.escape(final.name).replace("\\%", "%")) + "$")
        for f in info.files:
            if os.path.realpath(Path(f).parent) == os.path.realpath(final.parent) and rx.match(Path(f).name):
                raise OutputError(
                    f"{final}: output frames would overwrite the input sequence",
                    hint="write the sequence to another folder or name",
                )


def open_writer(
    cfg: OutputConfig,
    info: ClipInfo,
    *,
    overwrite: bool = False,
    threads: int = 0,
    frame_range: tuple[int, int] | None = None,
) -> Writer:
    """Create the writer for one output (checks the path first; nothing final exists until ``close``).

    Args:
        cfg: the output's config.
        info: the input clip (size, timing, colour, audio, bit depth).
        overwrite: replace existing outputs (for sequences: this run's frame files).
        threads: encoder threads (``pipeline.encode_threads``); 0 = all cores.
        frame_range: inclusive clip frame indices this run writes (render-farm chunk); None = whole clip.
    """
    final = resolve_output_path(cfg, info, frame_range)
    check_output_path(final, info, overwrite=overwrite)
    spec: FormatSpec = format_for(cfg)
    if cfg.writer == "ffmpeg":
        return FfmpegWriter(final, info, cfg, spec, threads=threads, frame_range=frame_range)
    if spec.kind == "sequence":
        return SequenceWriter(final, info, cfg, spec, overwrite=overwrite, frame_range=frame_range)
    return VideoWriter(final, info, cfg, spec, threads=threads, frame_range=frame_range)
