"""The output format table: which codec, container, pixel format and extension each ``format`` uses.

Pixel formats were chosen from what PyAV 18.1's FFmpeg encoders accept and what decodes back with alpha
(see /work/shared/FACTS.md): ProRes 4444 keeps alpha in yuva444p10le; VP9 alpha needs yuva420p (8 bit);
QuickTime Animation stores argb; FFV1 stores RGB planes directly (bgra / gbrap16le), which makes it exactly
lossless, unlike an RGB→YUV round trip. Pure data and small pure functions: no av import here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vmatte.errors import ConfigError, OutputError, say
from vmatte.io.config import OutputConfig


@dataclass(frozen=True)
class FormatSpec:
    """One output format.

    kind: "video" (one file) or "sequence" (one image per frame).
    codec: FFmpeg encoder name.
    ext: file extension with the dot.
    alpha: whether the format stores an alpha channel (content="rgba").
    audio: audio codecs the container takes as-is (copy); others are re-encoded to ``audio_fallback``.
    lossless: pixel values round-trip exactly (for a fixed bit depth).
    """

    name: str
    kind: str
    codec: str
    ext: str
    alpha: bool
    audio: tuple[str, ...] = ()
    audio_fallback: str = ""
    lossless: bool = False
    yuv: bool = False  # pixels go through an RGB→YUV matrix (colour matrix/range must be tagged)


_MOV_AUDIO = (
    "aac",
    "alac",
    "mp3",
    "ac3",
    "pcm_s16le",
    "pcm_s24le",
    "pcm_s32le",
    "pcm_f32le",
    "pcm_s16be",
    "pcm_s24be",
)

FORMATS: dict[str, FormatSpec] = {
    "prores4444": FormatSpec("prores4444", "video", "prores_ks", ".mov", True, _MOV_AUDIO, "aac", yuv=True),
    "vp9": FormatSpec("vp9", "video", "libvpx-vp9", ".webm", True, ("opus", "vorbis"), "libopus", yuv=True),
    "qtrle": FormatSpec("qtrle", "video", "qtrle", ".mov", True, _MOV_AUDIO, "aac", lossless=True),
    "png-mov": FormatSpec("png-mov", "video", "png", ".mov", True, _MOV_AUDIO, "aac", lossless=True),
    # Matroska takes nearly any audio codec: always copy
    "ffv1": FormatSpec("ffv1", "video", "ffv1", ".mkv", True, ("*",), "", lossless=True),
    "h264": FormatSpec(
        "h264", "video", "libx264", ".mp4", False, ("aac", "mp3", "ac3", "alac", "opus"), "aac", yuv=True
    ),
    "png": FormatSpec("png", "sequence", "png", ".png", True, lossless=True),
    "exr": FormatSpec("exr", "sequence", "exr", ".exr", True, lossless=True),
}

_EXT_TO_FORMAT = {
    ".mov": "prores4444",
    ".webm": "vp9",
    ".mkv": "ffv1",
    ".mp4": "h264",
    ".png": "png",
    ".exr": "exr",
}


def format_for(cfg: OutputConfig) -> FormatSpec:
    """The FormatSpec of ``cfg`` ("auto" picks by the path's extension; no path → ProRes 4444)."""
    name = cfg.format
    if name == "auto":
        ext = Path(cfg.path).suffix.lower() if cfg.path else ""
        if cfg.path and (cfg.path.endswith(("/", "\\")) or not ext):
            name = "png"  # a folder: an image sequence
        elif ext and ext not in _EXT_TO_FORMAT:
            raise ConfigError(
                f"{cfg.path}: vmatte cannot write '{ext}' files",
                hint=f"use {_EXTENSIONS_HINT}",
            )
        else:
            name = _EXT_TO_FORMAT.get(ext, "prores4444")
    spec = FORMATS[name]
    if cfg.content == "rgba" and not spec.alpha:
        where = cfg.path or spec.ext
        keep = say(
            "or keep it and add --composite BG or --alpha-only",
            'or keep it with content = "composite" or "alpha" (OutputConfig(content=...))',
        )
        raise ConfigError(
            f"{where}: {spec.ext} ({spec.name}) has no alpha channel for RGBA output",
            hint=f"for RGBA use {_ALPHA_EXTENSIONS_HINT}, {keep}",
        )
    return spec


# what users type: extensions, not codec names
_ALPHA_EXTENSIONS_HINT = (
    ".mov (ProRes 4444), .webm (VP9), .mkv (FFV1) or a PNG/EXR sequence (out/shot.%04d.png)"
)
_EXTENSIONS_HINT = (
    ".mov (ProRes 4444), .webm (VP9 alpha), .mkv (FFV1), .mp4 (H.264, no alpha: composites and mattes only) "
    "or an image sequence (out/shot.%04d.png or .exr)"
)


def output_depth(cfg: OutputConfig, spec: FormatSpec, source_depth: int) -> int:
    """Bits per component the writer stores: 8 or 16 for integer formats (10/12 map to 16 where the format's
    deep mode is 16 bit), 10 for ProRes, 16 (half) or 32 (float) for EXR."""
    want = cfg.bit_depth or (16 if source_depth > 8 else 8)
    if spec.name == "exr":
        return 32 if cfg.bit_depth == 32 else 16
    if spec.name == "prores4444":
        return 10
    if spec.name in ("vp9", "qtrle"):
        if cfg.bit_depth > 8:
            raise OutputError(
                f"format '{spec.name}' stores 8 bits per component, not {cfg.bit_depth}",
                hint="use prores4444, png, ffv1 or exr for deep output",
            )
        return 8
    if spec.name == "h264":
        return 10 if want > 8 else 8
    return 16 if want > 8 else 8
