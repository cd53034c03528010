"""Writer that pipes frames into an external ``ffmpeg`` binary (ffmpeg-python builds the command line).

For studios whose ffmpeg has encoders the PyAV wheel lacks (e.g. ``prores_videotoolbox``, ``libaom-av1``,
``dnxhd`` profiles): set ``writer = "ffmpeg"`` and optionally ``codec`` / ``pix_fmt``.

Frames travel as raw 16-bit video inside a NUT stream (written by PyAV into ffmpeg's stdin), because NUT
carries each frame's pts: with ``-copyts`` and passthrough frame timing the encoded file keeps the input
timestamps (variable frame rate survives), which a bare rawvideo pipe could not. Audio is taken from the input
file by ffmpeg itself (copied, or re-encoded where the container needs it). The binary is found by
:func:`vmatte.io.ffmpeg_exe.ffmpeg_binary`: ``$VMATTE_FFMPEG``, ``ffmpeg`` on PATH, else imageio-ffmpeg's.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from vmatte.errors import OutputError
from vmatte.frame import Frame
from vmatte.io.config import OutputConfig
from vmatte.io.decode import ClipInfo
from vmatte.io.ffmpeg_exe import ffmpeg_binary, require_ffmpeg
from vmatte.io.formats import FormatSpec, output_depth
from vmatte.io.writers.common import (
    PixelSource,
    alpha_note,
    comment_for,
    ensure_folder,
    keep_folders,
    remove_empty_folders,
    remove_quietly,
    temp_path,
)
from vmatte.io.writers.video import _MATRIX, codec_options, color_tags, encoder_pix_fmt

_SCALE_MATRIX = {
    "itu709": "bt709",
    "itu601": "bt601",
    "smpte170m": "bt601",
    "smpte240m": "smpte240m",
    "fcc": "fcc",
    "bt2020": "bt2020",
}


__all__ = ["FfmpegWriter", "ffmpeg_binary", "ffmpeg_version"]


def ffmpeg_version(binary: str) -> tuple[int, int]:
    """(major, minor) of an ffmpeg binary; (0, 0) when it cannot be told (git builds)."""
    try:
        out = subprocess.run([binary, "-version"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return (0, 0)
    m = re.search(r"ffmpeg version n?(\d+)\.(\d+)", out)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


class FfmpegWriter:
    """One video output encoded by an external ffmpeg process (formats of kind "video")."""

    def __init__(
        self,
        final: Path,
        info: ClipInfo,
        cfg: OutputConfig,
        spec: FormatSpec,
        *,
        threads: int = 0,
        frame_range: tuple[int, int] | None = None,
    ) -> None:
        binary = require_ffmpeg(f"{final}: writer = 'ffmpeg'")
        if spec.kind != "video":
            raise OutputError(
                f"{final}: writer = 'ffmpeg' writes video files, not '{spec.name}' sequences",
                hint="use writer = 'pyav' for image sequences",
            )
        self.binary = binary
        self.path = final
        self.info = info
        self.cfg = cfg
        self.spec = spec
        self.notes: list[str] = []
        self.threads = threads or os.cpu_count() or 1
        self.depth = output_depth(cfg, spec, info.bit_depth)
        _, enc_pix = encoder_pix_fmt(spec, cfg.content, self.depth)
        self.enc_pix = cfg.pix_fmt or enc_pix
        self.src_pix = {"rgba": "rgba64le", "alpha": "gray16le", "composite": "rgb48le"}[cfg.content]
        self._pixels = PixelSource(cfg, info.start_time_s)
        self._tmp = temp_path(final)
        self._range = frame_range
        self._proc: subprocess.Popen | None = None
        self.created_dirs: list[Path] = []
        self._mux = None
        self._vstream = None
        # ffmpeg's stderr goes to a file, not a pipe: a chatty encoder can never block on a full pipe
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in close/abort)

    def command(self, first_time_s: float) -> list[str]:
        """The ffmpeg argument list (ffmpeg-python graph → args) for a first frame at ``first_time_s``."""
        import ffmpeg

        cfg, spec, info = self.cfg, self.spec, self.info
        video = ffmpeg.input("pipe:0", format="nut")
        streams = [video.video]
        out_kwargs: dict[str, object] = {
            "vcodec": cfg.codec or spec.codec,
            "pix_fmt": self.enc_pix,
            "threads": str(self.threads),
        }
        for k, v in codec_options(spec, cfg, (info.width, info.height)).items():
            out_kwargs["b:v" if k == "b" else k] = v
        tags = color_tags(info, spec, self.enc_pix)
        matrix = _MATRIX.get(tags.get("colorspace", -1))
        if self.enc_pix.startswith("yuv") and matrix:
            # swscale would use BT.601 for RGB→YUV unless told; convert with the matrix we tag
            rng = "pc" if tags.get("color_range") == 2 else "tv"
            # setparams tags the frames too: ffmpeg 5.x lets untagged frames override -colorspace
            params = ":".join(
                f"{k}={tags[t]}"
                for k, t in (
                    ("colorspace", "colorspace"),
                    ("color_primaries", "color_primaries"),
                    ("color_trc", "color_trc"),
                )
                if t in tags
            )
            out_kwargs["vf"] = (
                f"scale=out_color_matrix={_SCALE_MATRIX[matrix]}:out_range={rng},setparams=range={rng}:{params}"
            )
        for key, flag in (
            ("color_range", "color_range"),
            ("color_primaries", "color_primaries"),
            ("color_trc", "color_trc"),
            ("colorspace", "colorspace"),
        ):
            if key in tags:
                out_kwargs[flag] = str(tags[key])
        major, minor = ffmpeg_version(self.binary)
        if (major, minor) >= (5, 1):
            out_kwargs["fps_mode"] = "passthrough"
        else:
            out_kwargs["vsync"] = "passthrough"
        out_kwargs["copyts"] = None
        # encode in the input's time base: the default 1/frame-rate would round VFR timestamps onto a grid
        # (spelled "-1" before FFmpeg 7, "demux" from 7 on, where "-1" is refused; git builds read as (0, 0))
        out_kwargs["enc_time_base"] = "-1" if (0, 0) < (major, minor) < (7, 0) else "demux"
        # ffmpeg-python takes each option once: spell the same -metadata target several ways
        out_kwargs["metadata"] = f"comment={comment_for(cfg)}"
        if cfg.content == "rgba":
            out_kwargs["metadata:g"] = f"vmatte_alpha={alpha_note(cfg)}"
            out_kwargs["metadata:s:v:0"] = f"vmatte_alpha={alpha_note(cfg)}"
            if spec.name == "vp9":
                out_kwargs["metadata:s:0"] = "alpha_mode=1"
        if spec.ext in (".mov", ".mp4"):
            out_kwargs["movflags"] = "use_metadata_tags"
        if cfg.audio and info.has_audio and info.kind == "video" and (spec.audio or spec.audio_fallback):
            in_kwargs = {}
            if self._range is not None and self._range[0] > 0:
                in_kwargs["ss"] = f"{first_time_s:.6f}"
            audio = ffmpeg.input(info.path, **in_kwargs)
            streams.append(audio["a:0?"])
            out_kwargs["acodec"] = "copy" if "*" in spec.audio else None
            if "*" not in spec.audio:
                out_kwargs["acodec"] = (
                    "copy" if self._input_audio_codec() in spec.audio else spec.audio_fallback
                )
                if out_kwargs["acodec"] != "copy":
                    self.notes.append(f"audio re-encoded to {spec.audio_fallback} for {spec.ext}")
            out_kwargs["shortest"] = None  # a chunk's audio ends with its video
        out = ffmpeg.output(
            *streams,
            str(self._tmp),
            f=self._muxer(),
            **{k: v for k, v in out_kwargs.items() if not (v is None and k == "acodec")},
        )
        args = ffmpeg.compile(out.overwrite_output(), cmd=self.binary)
        # global options first: options after the output name are ignored by ffmpeg
        # -filter_threads 1: threaded swscale corrupts the first 8 px of rows at some sizes (vmatte/io/swscale.py)
        return [args[0], "-hide_banner", "-loglevel", "error", "-nostats", "-filter_threads", "1", *args[1:]]

    def _muxer(self) -> str:
        return {".mov": "mov", ".mp4": "mp4", ".webm": "webm", ".mkv": "matroska"}[self.spec.ext]

    def _input_audio_codec(self) -> str:
        import av

        with av.open(self.info.path) as c:
            return c.streams.audio[0].codec_context.name if c.streams.audio else ""

    def _start(self, first_time_s: float) -> None:
        import av

        args = self.command(first_time_s)
        self.created_dirs = ensure_folder(self.path.parent)
        try:
            self._proc = subprocess.Popen(
                args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._log
            )
        except OSError as exc:
            raise OutputError(
                f"{self.path}: cannot start {self.binary} ({exc.strerror})",
                hint="check the ffmpeg installation or use writer = 'pyav'",
            ) from None
        self._mux = av.open(self._proc.stdin, "w", format="nut")
        s = self._mux.add_stream("rawvideo", rate=self.info.rate)
        s.width, s.height = self.info.width, self.info.height
        s.pix_fmt = self.src_pix
        s.time_base = self.info.time_base
        s.codec_context.time_base = self.info.time_base
        self._vstream = s

    def _failure(self, what: str) -> OutputError:
        self._log.seek(0)
        lines = [ln for ln in self._log.read().decode("utf-8", "replace").splitlines() if ln.strip()]
        last = lines[-1].strip() if lines else "no message"
        return OutputError(
            f"{self.path}: external ffmpeg {what}: {last}",
            hint="check the codec/pix_fmt/options or use writer = 'pyav'",
        )

    def prepare(self, frame: Frame) -> np.ndarray | None:
        """The frame's 16-bit pixels for :meth:`write`; may run on any thread, several frames at once. None
        when this output must render in frame order (a composite over a clip or image background)."""
        return self._pixels.render_int(frame, 16) if self._pixels.thread_safe else None

    def write(self, frame: Frame, prepared: np.ndarray | None = None) -> None:
        """Pipe ``frame`` to ffmpeg (frames in order); ``prepared``: :meth:`prepare`'s result for it, if any."""
        import av

        pts = frame.pts if frame.pts is not None else frame.index
        if self._proc is None:
            self._start(float(pts * (frame.time_base or self.info.time_base)))
        img = self._pixels.render_int(frame, 16) if prepared is None else prepared
        vf = av.VideoFrame.from_ndarray(img, format=self.src_pix)
        vf.pts = int(pts)
        vf.time_base = self.info.time_base
        try:
            for packet in self._vstream.encode(vf):
                self._mux.mux(packet)
        except (BrokenPipeError, OSError, av.error.FFmpegError):
            self._proc.wait()
            raise self._failure("stopped") from None

    def close(self) -> None:
        import av

        if self._proc is None:
            raise OutputError(f"{self.path}: no frames were written")
        try:
            for packet in self._vstream.encode(None):
                self._mux.mux(packet)
            self._mux.close()
            self._proc.stdin.close()
        except (BrokenPipeError, OSError, av.error.FFmpegError):
            pass
        rc = self._proc.wait()
        self._pixels.close()
        failure = self._failure(f"exited with status {rc}") if rc != 0 else None
        self._log.close()
        if failure is not None:
            remove_quietly(self._tmp)
            remove_empty_folders(self.created_dirs)
            raise failure
        self._tmp.replace(self.path)
        keep_folders(self.created_dirs)

    def abort(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()  # our own child, by handle
            self._proc.wait()
        self._pixels.close()
        self._log.close()
        remove_quietly(self._tmp)
        remove_empty_folders(self.created_dirs)
