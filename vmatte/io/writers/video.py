"""In-process video writers (PyAV): one container per output, written under a temp name, renamed on close.

Timing: each packet keeps the input frame's pts (stream time base = the input's), so variable frame rate
survives; the muxer may pick its own time base (WebM: 1 ms) and rescales. Audio is copied packet for packet
where the container takes the codec, else re-encoded (Opus for WebM, AAC for MOV/MP4), interleaved as the video
advances so the muxer never buffers the whole clip. Colour tags (range, primaries, transfer, matrix) come from
the input; RGB→YUV conversion uses the tagged matrix and range so players decode what was meant.
"""

from __future__ import annotations

import contextlib
import logging
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path

import numpy as np

from vmatte.errors import OutputError
from vmatte.frame import Frame
from vmatte.io import swscale as sws
from vmatte.io.config import OutputConfig
from vmatte.io.decode import ClipInfo
from vmatte.io.formats import FormatSpec, output_depth
from vmatte.io.writers.common import (
    PixelSource,
    alpha_note,
    comment_for,
    ensure_folder,
    keep_folders,
    oserror,
    remove_empty_folders,
    remove_quietly,
    temp_path,
)

log = logging.getLogger(__name__)

# FFmpeg AVColorSpace values → the matrix names swscale (PyAV's reformatter) understands
_MATRIX = {1: "itu709", 4: "fcc", 5: "itu601", 6: "smpte170m", 7: "smpte240m", 9: "bt2020", 10: "bt2020"}
_UNSPECIFIED = 2  # AVCOL_*_UNSPECIFIED for primaries, trc and matrix
RANGE_MPEG, RANGE_JPEG = 1, 2


def encoder_pix_fmt(spec: FormatSpec, content: str, depth: int) -> tuple[str, str]:
    """(ndarray input format, encoder pix_fmt) for a format, content and depth."""
    deep = depth > 8
    n = spec.name
    if content == "rgba":
        src = "rgba64le" if deep or n == "prores4444" else "rgba"
        enc = {
            "prores4444": "yuva444p10le",
            "vp9": "yuva420p",
            "qtrle": "argb",
            "png-mov": "rgba64be" if deep else "rgba",
            "ffv1": "gbrap16le" if deep else "bgra",
        }[n]
        return src, enc
    if content == "alpha" and n in ("qtrle", "png-mov", "ffv1"):
        src = "gray16le" if deep else "gray"
        enc = {
            "qtrle": "gray",
            "png-mov": "gray16be" if deep else "gray",
            "ffv1": "gray16le" if deep else "gray",
        }[n]
        return src, enc
    src = "rgb48le" if deep or n == "prores4444" else "rgb24"
    enc = {
        "prores4444": "yuv444p10le",
        "vp9": "yuv420p",
        "qtrle": "rgb24",
        "png-mov": "rgb48be" if deep else "rgb24",
        "ffv1": "gbrp16le" if deep else "bgr0",
        "h264": "yuv420p10le" if deep else "yuv420p",
    }[n]
    return src, enc


# ProRes 4444 through prores_ks: a fixed quantiser (see codec_options); FFmpeg's FF_QP2LAMBDA scales it
PRORES_QUANT = 1
FF_QP2LAMBDA = 118
# user encoder options that ask for prores_ks's own rate control (then no fixed quantiser is added)
_RATE_KEYS = {"flags", "global_quality", "qscale", "q", "bits_per_mb", "quant_mat", "b"}


def codec_options(spec: FormatSpec, cfg: OutputConfig, size: tuple[int, int] = (0, 0)) -> dict[str, str]:
    """Encoder options per format (user options win); ``size`` = (width, height) in pixels, 0 = unknown."""
    base: dict[str, str] = {}
    if spec.name == "prores4444":
        # profile 4444 keeps alpha at 16 bits per sample; apl0 vendor so Apple tools trust the stream
        base = {"profile": "4444", "vendor": "apl0"}
        if (cfg.codec or spec.codec) == "prores_ks" and not _RATE_KEYS & set(cfg.options):
            # quantiser 1 (the finest) instead of prores_ks's per-slice quantiser search: at 4444 the search
            # chose 1 for every slice measured (real 1080p footage and full-range noise), so the decoded frames
            # are identical, for 0.07 instead of 0.25 CPU s per 1080p frame (scripts/bench_encoders.py
            # --prores-quant). Users who set a rate option keep prores_ks's own rate control.
            base |= {"flags": "+qscale", "global_quality": str(PRORES_QUANT * FF_QP2LAMBDA)}
    elif spec.name == "vp9":
        # constant quality; alt-ref frames are not supported together with an alpha plane in libvpx
        base = {
            "crf": "18",
            "b": "0",
            "deadline": "good",
            "cpu-used": "4",
            "row-mt": "1",
            "auto-alt-ref": "0",
            "lag-in-frames": "0",
        }
    elif spec.name == "ffv1":
        # level 3 + slices allow slice threads and per-slice CRCs (archival)
        # 16 slices are a 4x4 grid: FFmpeg refuses it below 4 px in either direction (a 2x2 grid works at 2)
        small = 0 < min(size) < 4
        base = {"level": "3", "slices": "4" if small else "16", "slicecrc": "1", "g": "1"}
    elif spec.name == "png-mov":
        # zlib level 1: 7x faster than FFmpeg's default at 1080p for ~13 % larger files (as OpenCV's PNG default)
        base = {"compression_level": "1"}
    elif spec.name == "h264":
        base = {"crf": "16", "preset": "medium"}
    return {**base, **{k: str(v) for k, v in cfg.options.items()}}


def color_tags(info: ClipInfo, spec: FormatSpec, enc_pix: str) -> dict[str, int]:
    """Colour metadata for the output stream (FFmpeg enum values), carried from the input where known.

    YUV outputs: matrix = the input's (else BT.709 at >= 720 lines, BT.601 below, FFmpeg's convention),
    range = the input's (else limited). RGB outputs: matrix RGB (0), full range. Primaries and transfer are
    copied when the input states them, never invented.
    """
    c = info.color or {}
    yuv = enc_pix.startswith("yuv")
    tags: dict[str, int] = {}
    for key in ("color_primaries", "color_trc"):
        v = int(c.get(key, _UNSPECIFIED) or _UNSPECIFIED)
        if v != _UNSPECIFIED:
            tags[key] = v
    if yuv:
        m = int(c.get("colorspace", _UNSPECIFIED) or _UNSPECIFIED)
        tags["colorspace"] = m if m in _MATRIX else (1 if info.height >= 720 else 6)
        r = int(c.get("color_range", 0) or 0)
        tags["color_range"] = r if r in (RANGE_MPEG, RANGE_JPEG) else RANGE_MPEG
    elif enc_pix.startswith(("gray", "ya")):
        tags["color_range"] = RANGE_JPEG
    else:
        tags["colorspace"] = 0  # AVCOL_SPC_RGB
        tags["color_range"] = RANGE_JPEG
    return tags


class AudioPump:
    """Copies (or re-encodes) the input's first audio stream into ``out``, up to a given time.

    Packets are taken in input order; ``pump(until_s)`` muxes those starting before ``until_s`` so audio and
    video interleave. A frame range (render-farm chunk) keeps only audio from the chunk's first frame time to
    its last frame's end; timestamps stay the input's, so the chunk stays in sync with its video.
    """

    def __init__(self, out, info: ClipInfo, spec: FormatSpec) -> None:
        import av

        self.note = ""
        self._in = av.open(info.path)
        a_in = self._in.streams.audio[0]
        self._tb = a_in.time_base
        name = a_in.codec_context.name
        if "*" in spec.audio or name in spec.audio:
            self._ostream = out.add_stream_from_template(a_in)
            self._decode = False
        else:
            rate = 48000 if spec.audio_fallback == "libopus" else (a_in.codec_context.sample_rate or 48000)
            self._ostream = out.add_stream(spec.audio_fallback, rate=rate)
            layout = a_in.codec_context.layout
            self._ostream.layout = layout if layout.nb_channels <= 2 else "stereo"
            self._ostream.bit_rate = 160_000
            self._decode = True
            self.note = f"audio '{name}' cannot go into {spec.ext} as-is: re-encoded to {spec.audio_fallback}"
        self._out = out
        self._no_negative = spec.ext in (".mkv", ".webm")
        self._packets = self._in.demux(a_in)
        self._pending = None
        self._done = False
        self.start_s: float = float("-inf")
        self.end_s: float = float("inf")

    def _next(self):
        if self._pending is not None:
            p, self._pending = self._pending, None
            return p
        for p in self._packets:
            if p.size and p.pts is not None:
                return p
        return None

    def pump(self, until_s: float) -> None:
        while not self._done:
            p = self._next()
            if p is None:
                self._done = True
                break
            t = float(p.pts * self._tb)
            if t >= until_s:
                self._pending = p
                break
            if t >= self.end_s:
                self._done = True
                break
            # a packet straddling the chunk start is kept: a few ms early beats a gap
            dur = float((p.duration or 0) * self._tb)
            if t + dur <= self.start_s:
                continue
            if t < 0 and self._no_negative:
                # AAC priming packets sit before 0; Matroska would shift EVERY stream to make them
                # non-negative, moving the video off its input times. Dropping ~20 ms of pre-roll is the lesser harm.
                continue
            if self._decode:
                for af in p.decode():
                    for q in self._ostream.encode(af):
                        self._out.mux(q)
            else:
                p.stream = self._ostream
                self._out.mux(p)

    def finish(self) -> None:
        self.pump(float("inf"))
        if self._decode:
            for q in self._ostream.encode(None):
                self._out.mux(q)
        self.close()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._in.close()


class VideoWriter:
    """One video file output via PyAV (formats: prores4444, vp9, qtrle, png-mov, ffv1, h264)."""

    max_convert_workers = 4  # frames converted side by side (0: in the calling thread; benchmarks compare)

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
        import av

        self.path = final
        self.cfg = cfg
        self.spec = spec
        self.info = info
        self.notes: list[str] = []
        self.depth = output_depth(cfg, spec, info.bit_depth)
        self._src_fmt, enc_pix = encoder_pix_fmt(spec, cfg.content, self.depth)
        if cfg.pix_fmt:
            enc_pix = cfg.pix_fmt
        self._enc_pix = enc_pix
        self._tags = color_tags(info, spec, enc_pix)
        self._matrix = _MATRIX.get(self._tags.get("colorspace", -1))
        self._pixels = PixelSource(cfg, info.start_time_s)
        self._tmp = temp_path(final)
        self._range = frame_range
        self._audio: AudioPump | None = None
        self._last_time: float | None = None
        self._last_pts: int | None = None
        self._first = True
        container_opts = {"movflags": "use_metadata_tags"} if spec.ext in (".mov", ".mp4") else {}
        self.created_dirs = ensure_folder(final.parent)
        try:
            self._out = av.open(str(self._tmp), "w", container_options=container_opts)
        except OSError as exc:
            remove_empty_folders(self.created_dirs)
            raise oserror(exc, final) from None
        except av.error.FFmpegError as exc:
            remove_empty_folders(self.created_dirs)
            raise OutputError(f"{final}: cannot create output ({exc})") from None
        try:
            self._setup(av, threads)
        except BaseException:
            self.abort()
            raise

    def _setup(self, av, threads: int) -> None:
        cfg, spec, info = self.cfg, self.spec, self.info
        self._out.metadata["comment"] = comment_for(cfg)
        if cfg.content == "rgba":
            self._out.metadata["vmatte_alpha"] = alpha_note(cfg)
        codec = cfg.codec or spec.codec
        try:
            s = self._out.add_stream(codec, rate=info.rate)
        except (av.error.FFmpegError, ValueError) as exc:
            raise OutputError(
                f"{self.path}: encoder '{codec}' is not available in PyAV ({exc})",
                hint="set writer = 'ffmpeg' to use an external ffmpeg",
            ) from None
        if spec.name == "h264" and (info.width % 2 or info.height % 2) and "420" in self._enc_pix:
            raise OutputError(
                f"{self.path}: H.264 4:2:0 needs even frame sizes, the clip is {info.width}x{info.height}",
                hint="use prores4444 or ffv1",
            )
        s.width, s.height = info.width, info.height
        s.pix_fmt = self._enc_pix
        s.time_base = info.time_base
        s.codec_context.time_base = info.time_base
        cc = s.codec_context
        for key, value in self._tags.items():
            setattr(cc, key, value)
        s.options = codec_options(spec, cfg, (info.width, info.height))
        if spec.name == "vp9" and cfg.content == "rgba":
            s.metadata["alpha_mode"] = "1"  # tells demuxers/decoders the BlockAdditional alpha plane exists
        if cfg.content == "rgba":
            s.metadata["vmatte_alpha"] = alpha_note(cfg)
        import os

        n = threads or os.cpu_count() or 1
        s.thread_type = "AUTO"  # frame threads where the encoder has them (ProRes, PNG), slices otherwise
        s.thread_count = n
        if info.rotation:
            s.set_display_rotation(info.rotation)
        self._stream = s
        # RGB→encoder pixel conversion runs single-threaded per frame (vmatte/io/swscale.py), so frames are
        # converted side by side instead: up to 4 in flight (the GIL is released in swscale), encoded in order
        converts = self._enc_pix != self._src_fmt
        workers = min(self.max_convert_workers, n) if converts and n > 1 else 0
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="vmatte-sws") if workers else None
        self._depth = workers
        self._inflight: deque = deque()  # (Future or converted frame, pts, time_s, index), in write order
        if cfg.audio and info.has_audio and info.kind == "video" and (spec.audio or spec.audio_fallback):
            self._audio = AudioPump(self._out, info, spec)
            if self._audio.note:
                self.notes.append(self._audio.note)
                log.warning("%s: %s", self.path, self._audio.note)

    def _render(self, frame: Frame):
        """av.VideoFrame in the ndarray input format; serial (composite backgrounds read a clip in order)."""
        import av

        wide = self._src_fmt in ("rgba64le", "rgb48le", "gray16le")
        img = self._pixels.render_int(frame, 16 if wide else 8)
        if img.ndim == 2 and not self._src_fmt.startswith("gray"):
            img = np.repeat(img[..., None], 3, axis=2)  # a matte in an RGB/YUV codec: R = G = B = alpha
        return av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format=self._src_fmt)

    def _convert(self, vf):
        """``vf`` converted to the encoder's pixel format (thread-safe: one swscale context per call)."""
        if self._enc_pix.startswith("yuv"):
            vf = sws.reformat(
                vf,
                format=self._enc_pix,
                dst_colorspace=self._matrix,
                dst_color_range=self._tags["color_range"],
            )
        elif self._enc_pix != self._src_fmt:
            vf = sws.reformat(vf, format=self._enc_pix)
        return vf

    def _check_size(self, frame: Frame) -> None:
        if (frame.height, frame.width) != (self.info.height, self.info.width):
            raise OutputError(
                f"{self.path}: frame {frame.index} is {frame.width}x{frame.height}, expected {self.info.width}x{self.info.height}"
            )

    def prepare(self, frame: Frame):
        """The frame's pixels converted for the encoder (an av.VideoFrame), for :meth:`write`; may run on any
        thread, several frames at once. None when this output must render in frame order (a composite over a
        clip or image background): :meth:`write` renders then."""
        if not self._pixels.thread_safe:
            return None
        self._check_size(frame)
        return self._convert(self._render(frame))

    def write(self, frame: Frame, prepared=None) -> None:
        """Encode ``frame`` (frames in order); ``prepared``: :meth:`prepare`'s result for it, if any."""
        self._check_size(frame)
        vf = self._render(frame) if prepared is None else None
        pts = frame.pts if frame.pts is not None else frame.index
        tb = frame.time_base or self.info.time_base
        if tb != self.info.time_base:
            pts = round(Fraction(pts) * tb / self.info.time_base)
        if self._last_pts is not None and pts <= self._last_pts:
            pts = (
                self._last_pts + 1
            )  # muxers refuse non-increasing timestamps; the decoder normally fixed this
        self._last_pts = int(pts)
        t = float(pts * self.info.time_base)
        if self._first and self._audio is not None and self._range is not None and self._range[0] > 0:
            self._audio.start_s = t
        self._first = False
        self._last_time = t
        if prepared is not None:
            job, depth = prepared, 0  # converted already: encode now, behind those still converting
        elif self._pool is not None:
            job, depth = self._pool.submit(self._convert, vf), self._depth
        else:
            job, depth = self._convert(vf), 0
        self._inflight.append((job, int(pts), t, frame.index))
        while len(self._inflight) > depth:
            self._encode_oldest()

    def _encode_oldest(self) -> None:
        import av

        job, pts, t, index = self._inflight.popleft()
        try:
            vf = job.result() if isinstance(job, Future) else job
            vf.pts = pts
            vf.time_base = self.info.time_base
            for packet in self._stream.encode(vf):
                self._out.mux(packet)
            if self._audio is not None:
                self._audio.pump(t)
        except OSError as exc:
            raise oserror(exc, self.path) from None
        except av.error.FFmpegError as exc:
            raise OutputError(f"{self.path}: encoding frame {index} failed ({exc})") from None

    def close(self) -> None:
        import av

        try:
            while self._inflight:
                self._encode_oldest()
        except BaseException:
            self.abort()
            raise
        self._stop_pool()
        try:
            for packet in self._stream.encode(None):
                self._out.mux(packet)
            if self._audio is not None:
                if (
                    self._range is not None
                    and self._range[1] < self.info.frame_count - 1
                    and self._last_time is not None
                ):
                    self._audio.end_s = self._last_time + float(1 / self.info.rate)
                self._audio.finish()
            self._out.close()
        except OSError as exc:
            self.abort()
            raise oserror(exc, self.path) from None
        except av.error.FFmpegError as exc:
            self.abort()
            raise OutputError(f"{self.path}: finalising failed ({exc})") from None
        finally:
            self._pixels.close()
        try:
            self._tmp.replace(self.path)
        except OSError as exc:
            remove_quietly(self._tmp)
            remove_empty_folders(self.created_dirs)
            raise oserror(exc, self.path) from None
        keep_folders(self.created_dirs)

    def _stop_pool(self) -> None:
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def abort(self) -> None:
        self._stop_pool()
        getattr(self, "_inflight", deque()).clear()
        if self._audio is not None:
            self._audio.close()
        with contextlib.suppress(Exception):
            self._out.close()
        self._pixels.close()
        remove_quietly(self._tmp)
        remove_empty_folders(self.created_dirs)
