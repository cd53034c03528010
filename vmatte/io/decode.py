"""Streaming decode with PyAV (video files) or OpenCV (image sequences) → :class:`~vmatte.frame.Frame`.

``open_clip(path)`` probes without decoding; ``clip.frames(start, end)`` is a generator, so memory stays flat
however long the clip is (the runner wraps it in a :class:`~vmatte.pipeline.threads.Prefetch` thread).

Every frame keeps the pts and time_base the demuxer gave it. Sources deeper than 8 bits decode to uint16 RGB
so 10/12-bit footage stays deep into deep outputs. This module never imports torch.
"""

from __future__ import annotations

import glob
import os
import re
import stat
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from vmatte.errors import InputError
from vmatte.frame import Frame
from vmatte.io import swscale as sws

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".exr", ".bmp", ".webp")
_PRINTF = re.compile(r"%0?(\d*)d")
_SEQ_TIME_BASE = Fraction(1, 24)  # image sequences have no timing: 24 fps, pts = frame index


@dataclass(frozen=True)
class ClipInfo:
    """What the decoder learnt about a clip before decoding any frame.

    frame_count: exact for image sequences; for video, the count of demuxed video packets (exact for
        intra/inter codecs with one packet per frame) or the container's figure.
    time_base: seconds per pts tick of the video stream.
    rate: average frame rate (frames/s), for encoders that need one; timing itself comes from pts.
    bit_depth: bits per component of the source pixel format (8, 10, 12, 16).
    color: colour metadata of the source as FFmpeg enum values: ``color_range`` (1 limited, 2 full),
        ``color_primaries``, ``color_trc``, ``colorspace`` (matrix); 2 = unspecified. Writers carry them over.
    has_alpha: the source stores alpha (yuva/rgba pixel formats, or VP9 with a WebM alpha plane).
    rotation: display rotation in degrees counter-clockwise from the display matrix (frames are NOT rotated).
    start_time_s: presentation time of the first frame (s); background clips and chunks are timed from it.
    """

    path: str
    kind: str  # "video" | "sequence"
    width: int
    height: int
    frame_count: int
    time_base: Fraction
    rate: Fraction
    bit_depth: int = 8
    codec: str = ""
    pix_fmt: str = ""
    has_audio: bool = False
    has_alpha: bool = False
    rotation: int = 0
    color: dict = field(default_factory=dict)
    files: tuple[str, ...] = ()  # image sequences: the frame files in order
    start_time_s: float = 0.0

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height


def _pix_bit_depth(fmt) -> int:
    """Bits per component of a PyAV VideoFormat (yuv420p10le → 10, yuva444p12le → 12, rgb24 → 8)."""
    try:
        return max(c.bits for c in fmt.components)
    except Exception:
        return 8


def _pix_has_alpha(fmt) -> bool:
    try:
        return any(c.is_alpha for c in fmt.components)
    except Exception:
        return False


def is_vp9_alpha(stream) -> bool:
    """True for a VP9 stream whose WebM/Matroska track says it carries an alpha plane (``alpha_mode=1``).

    FFmpeg's native vp9 decoder ignores that plane; read it with :mod:`vmatte.io.readback` (libvpx)."""
    meta = {k.lower(): v for k, v in (stream.metadata or {}).items()}
    return stream.codec_context.name in ("vp9", "libvpx-vp9") and meta.get("alpha_mode") == "1"


def _sequence_files(path: str) -> list[str] | None:
    """Resolve a folder of images or a printf pattern to a sorted file list (None if ``path`` is neither)."""
    p = Path(path)
    if _PRINTF.search(path):
        globbed = glob.glob(
            _PRINTF.sub(
                lambda m: "[0-9]" * int(m.group(1)) if m.group(1) else "*",
                glob.escape(path).replace("[%]", "%"),
            )
        )
        rx = re.compile(
            "^" + _PRINTF.sub(lambda m: r"(\d+)", re.escape(os.path.basename(path)).replace(r"\%", "%")) + "$"
        )
        items = []
        for f in globbed:
            m = rx.match(os.path.basename(f))
            if m:
                items.append((int(m.group(1)), f))
        return [f for _, f in sorted(items)]
    if p.is_dir():
        files = [str(f) for f in p.iterdir() if f.suffix.lower() in IMAGE_EXTS and f.is_file()]

        def key(f: str):
            nums = re.findall(r"\d+", os.path.basename(f))
            return (int(nums[-1]) if nums else -1, f)

        return sorted(files, key=key)
    return None


# Largest frame accepted (~134 Mpx, e.g. 16384x8192): beyond it a declared size is almost surely a broken or
# hostile header, and one RGB frame would take gigabytes. Refused before anything is decoded.
MAX_PIXELS = 1 << 27


# Smallest frame side accepted: optical flow (DIS) and the matting models need a few patches to work with;
# a 2x2 or 640x4 "clip" is a broken export, refused cleanly rather than failing deep inside a stage.
MIN_SIDE = 16


def _check_frame_size(path: str, width: int, height: int) -> None:
    if min(width, height) < MIN_SIDE:
        raise InputError(
            f"{path}: frames are {width}x{height}, too small to matte (minimum {MIN_SIDE} px a side)",
            hint="check the export; the clip may be a thumbnail or corrupt",
        )
    if width * height > MAX_PIXELS:
        raise InputError(
            f"{path}: declares {width}x{height} frames, beyond the {MAX_PIXELS // 1_000_000} Mpx limit",
            hint="the header is probably corrupt; re-export the clip at a sane size",
        )


def _check_image_header(path: str) -> None:
    """Refuse a PNG whose IHDR declares a huge size before any decoder allocates it."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(24)
    except OSError as exc:
        raise InputError(f"{path}: cannot read image ({exc.strerror})") from None
    if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
        width, height = struct.unpack(">II", head[16:24])
        _check_frame_size(path, width, height)


def _check_sequence_gaps(path: str, files: list[str]) -> None:
    """Refuse a numbered sequence with missing frames (clip frame i must be the i-th number from the first)."""
    nums = []
    for f in files:
        found = re.findall(r"\d+", os.path.basename(f))
        if not found:
            return  # unnumbered names: ordered by name, nothing to check
        nums.append(int(found[-1]))
    missing = sorted(set(range(nums[0], nums[-1] + 1)) - set(nums))
    if missing:
        shown = ", ".join(str(n) for n in missing[:5]) + (" …" if len(missing) > 5 else "")
        raise InputError(
            f"{path}: sequence has {len(missing)} missing frame(s): number {shown}",
            hint="render or copy the missing frames (frame numbers must be contiguous)",
        )


def _read_exr(path: str) -> np.ndarray:
    """(H, W, 3) float32 RGB of an OpenEXR file, values as stored (linear), via FFmpeg's exr decoder.

    PyAV rather than OpenCV: the OpenCV wheel reads EXR only when OPENCV_IO_ENABLE_OPENEXR was set before
    it was first imported, which a library cannot promise."""
    import av

    try:
        with av.open(path) as c:
            vf = next(c.decode(video=0))
    except (av.error.FFmpegError, StopIteration, OSError) as exc:
        raise InputError(
            f"{path}: cannot read EXR ({exc})", hint="check the file is a valid OpenEXR image"
        ) from None
    if vf.format.name.startswith(("gray", "ya")):
        g = sws.to_ndarray(vf, format="grayf32le").astype(np.float32)
        return np.repeat(g[..., None], 3, axis=2)
    return sws.to_ndarray(vf, format="gbrapf32le")[..., :3].astype(np.float32)


def _read_image(path: str) -> np.ndarray:
    """Read an image file → (H, W, 3) uint8 or uint16 RGB. Raises InputError naming the file.

    Float EXR (linear light) is display-encoded with the sRGB curve into uint16, the inverse of what the
    EXR writer applies, so EXR in → EXR out round-trips."""
    import cv2

    if path.lower().endswith(".exr"):
        img = _read_exr(path)[:, :, ::-1]  # to BGR like cv2, flipped back below
    else:
        img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise InputError(f"{path}: cannot read image", hint="check the file is a valid image")
    if img.dtype == np.float32 or img.dtype == np.float16:
        # linear float EXR: display-encode with sRGB so it enters the chain like any other frame
        f = np.clip(img.astype(np.float32), 0, 1)
        f = np.where(f <= 0.0031308, 12.92 * f, 1.055 * np.power(f, 1 / 2.4) - 0.055)
        img = (f * 65535 + 0.5).astype(np.uint16)
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    elif img.shape[2] == 4:
        img = img[:, :, :3]
    return np.ascontiguousarray(img[:, :, ::-1])


class Clip:
    """An opened input (probed, not decoded). Iterate frames with :meth:`frames`."""

    def __init__(self, info: ClipInfo) -> None:
        self.info = info
        # clip frame numbers found undecodable by any frames() call so far (they are skipped, not renumbered)
        self.corrupt: set[int] = set()

    def frames(
        self, start: int = 0, end: int | None = None, *, max_corrupt: int = 10, corrupt: list | None = None
    ) -> Iterator[Frame]:
        """Yield frames ``start..end`` inclusive (clip frame numbers). ``corrupt`` collects skipped indices."""
        if self.info.kind == "sequence":
            yield from self._sequence_frames(start, end)
        else:
            yield from self._video_frames(start, end, max_corrupt, corrupt if corrupt is not None else [])

    def _sequence_frames(self, start: int, end: int | None) -> Iterator[Frame]:
        files = self.info.files
        last = len(files) - 1 if end is None else min(end, len(files) - 1)
        for i in range(start, last + 1):
            rgb = _read_image(files[i])
            if rgb.shape[:2] != (self.info.height, self.info.width):
                raise InputError(
                    f"{files[i]} is {rgb.shape[1]}x{rgb.shape[0]} but the sequence is {self.info.width}x{self.info.height}",
                    hint="all frames of a sequence must have one size",
                )
            yield Frame(index=i, pts=i, time_base=self.info.time_base, rgb=rgb)

    def _video_frames(self, start: int, end: int | None, max_corrupt: int, corrupt: list) -> Iterator[Frame]:
        import av

        deep = self.info.bit_depth > 8
        fmt = "rgb48le" if deep else "rgb24"
        try:
            container = av.open(self.info.path)
        except Exception as exc:
            raise InputError(f"{self.info.path}: cannot open ({exc})") from None
        try:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            index = 0
            last_pts = None
            packets = container.demux(stream)
            while True:
                try:
                    packet = next(packets)
                except StopIteration:
                    break
                except av.error.FFmpegError as exc:
                    # a broken container past this point: stop reading, report what was lost
                    corrupt.append(index)
                    if len(corrupt) > max_corrupt:
                        raise InputError(
                            f"{self.info.path}: demux failed near frame {index} ({exc})"
                        ) from None
                    break
                try:
                    decoded = packet.decode()
                except av.error.FFmpegError as exc:
                    corrupt.append(index)
                    if len(corrupt) > max_corrupt:
                        raise InputError(
                            f"{self.info.path}: more than {max_corrupt} corrupt frames (last near frame {index}: {exc})",
                            hint="re-export the clip or raise pipeline.max_corrupt_frames",
                        ) from None
                    # one packet is one frame: later frames keep their clip numbers (masks stay aligned)
                    self.corrupt.add(index)
                    index += 1
                    continue
                for vf in decoded:
                    if end is not None and index > end:
                        return
                    if (vf.width, vf.height) != (self.info.width, self.info.height):
                        raise InputError(
                            f"{self.info.path}: frame {index} is {vf.width}x{vf.height} but the clip starts at "
                            f"{self.info.width}x{self.info.height}",
                            hint="the stream changes size mid-clip: re-export it at one size",
                        )
                    pts = vf.pts if vf.pts is not None else (last_pts + 1 if last_pts is not None else index)
                    if last_pts is not None and pts <= last_pts:
                        # duplicate or backwards timestamps (broken muxers): keep decode order and nudge by
                        # one tick so every output stays strictly increasing (muxers refuse otherwise)
                        pts = last_pts + 1
                    last_pts = pts
                    if index >= start:
                        # swscale treats an unstated range as limited: pass the frame's own range
                        rgb = sws.to_ndarray(vf, format=fmt, src_color_range=vf.color_range or None)
                        if deep:
                            rgb = rgb.astype(np.uint16, copy=False)
                        yield Frame(
                            index=index,
                            pts=int(pts),
                            time_base=stream.time_base or self.info.time_base,
                            rgb=rgb,
                        )
                    index += 1
        finally:
            container.close()


def open_clip(path: str | os.PathLike) -> Clip:
    """Probe ``path`` (video file, image folder, or printf pattern). Raises InputError with a one-line reason."""
    path = str(path)
    p = Path(path)
    if p.exists() and not p.is_dir() and not stat.S_ISREG(p.stat().st_mode):
        # a FIFO would block forever waiting for a writer; a device never ends
        raise InputError(
            f"{path}: not a regular file", hint="pass a video file, an image folder or a printf pattern"
        )
    # '%d' in the name of an existing file is part of its name, not a sequence pattern
    files = None if p.is_file() else _sequence_files(path)
    if files is not None:
        if not files:
            raise InputError(
                f"{path}: no image frames found", hint=f"expected files ending in {', '.join(IMAGE_EXTS)}"
            )
        _check_sequence_gaps(path, files)
        _check_image_header(files[0])
        first = _read_image(files[0])
        h, w = first.shape[:2]
        _check_frame_size(files[0], w, h)
        return Clip(
            ClipInfo(
                path=path,
                kind="sequence",
                width=w,
                height=h,
                frame_count=len(files),
                time_base=_SEQ_TIME_BASE,
                rate=1 / _SEQ_TIME_BASE,
                bit_depth=16 if first.dtype == np.uint16 else 8,
                codec=Path(files[0]).suffix.lstrip(".").lower(),
                files=tuple(files),
            )
        )
    p = Path(path)
    if not p.exists():
        raise InputError(f"{path}: no such file", hint="check the clip path")
    if p.is_dir():
        raise InputError(
            f"{path}: folder holds no image frames", hint=f"expected files ending in {', '.join(IMAGE_EXTS)}"
        )
    import av

    try:
        container = av.open(path)
    except EOFError:
        raise InputError(
            f"{path}: has no video frames (the file ends before its first frame)",
            hint="the file is empty or truncated",
        ) from None
    except Exception as exc:
        raise InputError(
            f"{path}: not a readable video ({type(exc).__name__}: {exc})",
            hint="check the file is a video FFmpeg can read",
        ) from None
    try:
        if not container.streams.video:
            raise InputError(
                f"{path}: has no video stream",
                hint="pass a video clip (this file has audio only or is not video)",
            )
        vs = container.streams.video[0]
        cc = vs.codec_context
        if not cc.width or not cc.height:
            raise InputError(f"{path}: video stream has no frame size", hint="the file may be corrupt")
        _check_frame_size(path, int(cc.width), int(cc.height))
        # count frames by demuxing packets (cheap; no decode) for an exact figure
        count = 0
        min_pts = None
        try:
            for packet in container.demux(vs):
                if packet.size:
                    count += 1
                    if packet.pts is not None and (min_pts is None or packet.pts < min_pts):
                        min_pts = packet.pts
        except av.error.FFmpegError:
            pass
        if count == 0:
            raise InputError(f"{path}: video stream has no frames", hint="the file is empty or truncated")
        # decode one frame: the display matrix (rotation) and real pixel format live on frames
        rotation = 0
        width, height = int(cc.width), int(cc.height)
        first_fmt = None
        first_color: dict = {}
        try:
            # a fresh open, not seek(0): raw streams (.h264) cannot seek back to their first frame
            with av.open(path) as again:
                vf = next(again.decode(again.streams.video[0]), None)
            if vf is not None:
                rotation = round(getattr(vf, "rotation", 0) or 0) % 360
                first_fmt = vf.format
                # the stream header may describe a later SPS (raw streams): frames start at this size
                width, height = int(vf.width), int(vf.height)
                first_color = {
                    k: int(getattr(vf, k, 0) or 0)
                    for k in ("color_range", "color_primaries", "color_trc", "colorspace")
                }
        except (av.error.FFmpegError, ValueError, OSError):
            pass
        rate = vs.average_rate or vs.guessed_rate or Fraction(24)
        pix = cc.pix_fmt or ""
        fmt = cc.format if cc.format is not None else first_fmt
        if first_fmt is not None and _pix_bit_depth(first_fmt) > _pix_bit_depth(fmt):
            fmt = first_fmt
        depth = _pix_bit_depth(fmt) if fmt is not None else 8
        vp9_alpha = is_vp9_alpha(vs)
        tb = vs.time_base or Fraction(1, 24)
        color = {}
        for k in ("color_range", "color_primaries", "color_trc", "colorspace"):
            v = getattr(cc, k, None)
            if v is not None:
                color[k] = int(v) if not isinstance(v, str) else v
            # the stream header may leave a field unspecified that the bitstream (first frame) states
            unspecified = 0 if k == "color_range" else 2
            if color.get(k, unspecified) == unspecified and first_color.get(k, unspecified) != unspecified:
                color[k] = first_color[k]
        info = ClipInfo(
            path=path,
            kind="video",
            width=width,
            height=height,
            frame_count=count,
            time_base=tb,
            rate=Fraction(rate),
            bit_depth=int(depth),
            codec=cc.name,
            pix_fmt="yuva420p" if vp9_alpha and pix == "yuv420p" else pix,
            has_audio=bool(container.streams.audio),
            has_alpha=vp9_alpha or (fmt is not None and _pix_has_alpha(fmt)),
            rotation=rotation,
            color=color,
            start_time_s=float(min_pts * tb) if min_pts is not None else 0.0,
        )
    finally:
        container.close()
    return Clip(info)
