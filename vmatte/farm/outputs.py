"""Where a chunked job's outputs put their frames: per output, "sequence" (frame files in place), "remux"
(intra-only video: per-chunk segments joined by copying packets) or "encode" (inter-frame video: per-chunk
lossless alpha segments, then one final encode). See :mod:`vmatte.farm.chunked`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vmatte.config import OutputConfig

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


def output_kind(cfg: OutputConfig) -> tuple[str, str]:
    """(kind, file extension) of an output in a chunked job: "sequence", "remux" or "encode" (see JobOutput)."""
    from vmatte.io.formats import format_for

    spec = format_for(cfg)
    if spec.kind == "sequence":
        return "sequence", spec.ext
    if spec.name in REMUX_FORMATS and (not cfg.codec or cfg.codec in INTRA_CODECS):
        return "remux", spec.ext
    return "encode", spec.ext
