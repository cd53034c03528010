"""Writers, one object per output: :class:`VideoWriter` (PyAV), :class:`SequenceWriter` (PNG/EXR),
:class:`FfmpegWriter` (external ffmpeg). Create them through :func:`vmatte.io.encode.open_writer`."""

from vmatte.io.writers.external import FfmpegWriter, ffmpeg_binary
from vmatte.io.writers.sequence import SequenceWriter
from vmatte.io.writers.video import VideoWriter

__all__ = ["FfmpegWriter", "SequenceWriter", "VideoWriter", "ffmpeg_binary"]
