"""Output options (schema only). Presets in ``pipelines/`` are partial configs of these."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Content = Literal["rgba", "alpha", "composite"]


@dataclass(frozen=True)
class OutputConfig:
    """One output of a run; a run may have several (decoded and matted once, written many times).

    path: file (video) or pattern/folder (image sequence, e.g. ``out/shot.%04d.exr``). Empty: derived from input.
    format: "auto" (from the extension), "prores4444", "vp9", "qtrle", "png-mov", "ffv1", "png", "exr", "h264".
    content: "rgba" (colour + alpha), "alpha" (gray matte), "composite" (over ``background``).
    background: for composites: a colour ("#00ff00", "green", "0,255,0"), an image path or a clip path.
    premultiplied: write premultiplied colour (RGBA outputs); straight alpha otherwise.
    decontaminate: estimate clean foreground colour in the unknown band (RGBA and composite outputs).
    bit_depth: 0 = best for the format and source, else 8 / 10 / 12 / 16 / 32 (EXR float) / 16 (EXR half).
    start_number: first frame number in image-sequence file names (VFX convention: 1001); -1 = clip frame index.
    writer: "pyav" (in-process) or "ffmpeg" (pipe into an external ffmpeg binary via ffmpeg-python).
    audio: copy (or re-encode where needed) the input's audio into video outputs.
    options: extra encoder options passed to the codec (e.g. {"qscale" = "9"}).
    """

    path: str = ""
    format: str = "auto"
    content: Content = "rgba"
    background: str = "#00b140"
    premultiplied: bool = False
    decontaminate: bool = True
    bit_depth: int = 0
    start_number: int = -1
    writer: Literal["pyav", "ffmpeg"] = "pyav"
    audio: bool = True
    threads: int = 0
    options: dict[str, str] = field(default_factory=dict)
