"""Output options (schema only). Presets in ``pipelines/`` are partial configs of these.

The format table (codec, pixel format, extension of each ``format``) lives in :mod:`vmatte.io.formats`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

Content = Literal["rgba", "alpha", "composite"]

FORMATS = ("auto", "prores4444", "vp9", "qtrle", "png-mov", "ffv1", "h264", "png", "exr")


@dataclass(frozen=True)
class OutputConfig:
    """One output of a run; a run may have several (decoded and matted once, written many times).

    path: file (video) or sequence pattern (``out/shot.%04d.exr``) or folder (``out/frames/``: the file names
        are then ``<input stem>.%06d.<ext>``). Empty: derived from the input name and the format's extension.
    format: "auto" (from the extension; default "prores4444"), "prores4444" (.mov), "vp9" (.webm, alpha),
        "qtrle" (.mov, QuickTime Animation), "png-mov" (.mov, PNG frames), "ffv1" (.mkv), "h264" (.mp4, no
        alpha: composites and matte previews), "png" (sequence), "exr" (sequence).
    content: "rgba" (colour + alpha), "alpha" (gray matte), "composite" (over ``background``).
    background: for composites: a colour ("#00ff00", "green", "0,255,0"), an image path or a clip path. Images
        and clips are scaled to cover the frame and centre-cropped; a clip's frame is picked by timestamp.
    premultiplied: write premultiplied colour (RGBA outputs); straight alpha otherwise. Recorded in the file:
        container comment + ``vmatte_alpha`` tag (mov/mkv/webm), PNG tEXt ``vmatte:alpha``, EXR header. EXR is
        always premultiplied (in linear light), the convention compositing apps assume for OpenEXR.
    decontaminate: estimate clean foreground colour in the unknown band (RGBA and composite outputs).
    bit_depth: 0 = best for the format and source (10-bit sources stay >= 10 bit where the format can), else
        8 / 10 / 12 / 16 for integer formats; for EXR 16 = half float, 32 = float (0 = half).
    start_number: image sequences: the file number is ``start_number + frame.index`` (clip frame index), so
        chunks rendered on different nodes land side by side. VFX convention: 1001.
    writer: "pyav" (in-process) or "ffmpeg" (pipe into an external ffmpeg binary via ffmpeg-python).
    codec: the encoder to use instead of the format's own (mainly for writer="ffmpeg" with encoders the PyAV
        wheel lacks, e.g. "prores_videotoolbox"); empty = the format's own.
    pix_fmt: the encoder's pixel format instead of the format's own (e.g. "yuva444p12le"); empty = the format's
        own for the content and bit depth.
    audio: copy (or re-encode where the container needs it) the input's audio into video outputs.
    options: extra encoder options passed to the codec (e.g. {qscale = "9"}, {crf = "20"}).
    """

    # keys of earlier versions → the option that replaces them (encoder threads are one setting for the run)
    REMOVED: ClassVar[dict[str, str]] = {"threads": "[pipeline] encode_threads"}

    path: str = ""
    format: str = "auto"
    content: Content = "rgba"
    background: str = "#00b140"
    premultiplied: bool = False
    decontaminate: bool = True
    bit_depth: int = 0
    start_number: int = 0
    writer: Literal["pyav", "ffmpeg"] = "pyav"
    codec: str = ""
    pix_fmt: str = ""
    audio: bool = True
    options: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # ValueError here becomes a ConfigError naming the file (configtools.from_dict)
        if self.format not in FORMATS:
            import difflib

            close = difflib.get_close_matches(self.format, FORMATS, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"one of {', '.join(FORMATS)}"
            raise ValueError(f"format = {self.format!r} is unknown ({hint})")
        if self.bit_depth not in (0, 8, 10, 12, 16, 32):
            raise ValueError(f"bit_depth = {self.bit_depth} is not one of 0, 8, 10, 12, 16, 32")
        if self.start_number < 0:
            raise ValueError(f"start_number = {self.start_number} must be >= 0")
