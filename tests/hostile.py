"""Generators of hostile inputs for the failure suite (tests/test_hostile_*.py, tests/test_fuzz.py).

Every generator writes into a folder it is given and returns paths; nothing is downloaded. Clips are tiny
(64x48, a handful of frames) so the whole catalogue builds in a few seconds on 2 cores. Each entry of
:data:`CLIPS` / :data:`MASKS` / :data:`CHECKPOINTS` says what the contract expects from vmatte for that input,
so the tests (and the closing count of "bad inputs tried") come from one table.

Also here: the contract checks every hostile test makes (:func:`assert_clean_failure`, :func:`run_cli`), so a
test reads as "this input → this exit code, one line naming this file, nothing left behind".
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
import pickle
import re
import shutil
import struct
import subprocess
import sys
import traceback
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from vmatte.io.ffmpeg_exe import ffmpeg_binary
from vmatte.testing import Scene, write_clip

W, H, N = 64, 48, 8  # default tiny clip: 64x48, 8 frames
REPO = Path(__file__).resolve().parents[1]
FFMPEG = ffmpeg_binary()  # VMATTE_FFMPEG > PATH > imageio-ffmpeg's static binary (a dependency)


def scene(width: int = W, height: int = H, frames: int = N) -> Scene:
    """The small synthetic scene every hostile clip is cut from (foreground blob on a textured background)."""
    return Scene(width=width, height=height, frames=frames, speed=1.5, radius=0.3)


def sha(path: Path) -> str:
    """Hash of a file, or of every file in a folder (sorted by name)."""
    path = Path(path)
    h = hashlib.sha256()
    if path.is_dir():
        for f in sorted(path.rglob("*")):
            if f.is_file():
                h.update(f.name.encode())
                h.update(f.read_bytes())
    elif path.is_file():
        h.update(path.read_bytes())
    return h.hexdigest()


def leftovers(folder: Path) -> list[str]:
    """Temporaries a run may have left behind in ``folder`` (writers' ``.vmatte-tmp`` files and folders)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(str(p) for p in folder.rglob("*") if "vmatte-tmp" in p.name or ".tmp-" in p.name)


def ffmpeg(*args: str, timeout: float = 60) -> None:
    """Run the ffmpeg binary (quiet); raise with its stderr on failure."""
    if FFMPEG is None:
        raise RuntimeError("ffmpeg binary not found (VMATTE_FFMPEG, PATH, imageio-ffmpeg)")
    r = subprocess.run(
        [FFMPEG, "-hide_banner", "-loglevel", "error", "-y", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if r.returncode != 0:
        raise RuntimeError(f"ffmpeg {' '.join(args)} failed: {r.stderr.strip()}")


# --------------------------------------------------------------------------------------------------------
# clips
# --------------------------------------------------------------------------------------------------------


def good_mp4(path: Path, frames: int = N, width: int = W, height: int = H, **kw) -> Path:
    return write_clip(path, scene(width, height, frames), **kw)


def truncated(src: Path, dst: Path, keep: float) -> Path:
    """The first ``keep`` fraction of ``src`` (a transfer that died)."""
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * keep)])
    return dst


def flipped(src: Path, dst: Path, at: float = 0.5, span: int = 64) -> Path:
    """``src`` with ``span`` bytes inverted at fraction ``at`` of the file (bit rot / bad sector)."""
    data = bytearray(src.read_bytes())
    i = int(len(data) * at)
    for k in range(i, min(len(data), i + span)):
        data[k] ^= 0xFF
    dst.write_bytes(bytes(data))
    return dst


def mp4_faststart(path: Path, frames: int = N) -> Path:
    """H.264 .mp4 with the index (moov) first, so a truncated copy still lists every frame."""
    tmp = path.with_name(path.stem + ".src.mp4")
    good_mp4(tmp, frames)
    ffmpeg("-i", str(tmp), "-c", "copy", "-movflags", "+faststart", str(path))
    tmp.unlink()
    return path


def zero_frame_mp4(path: Path) -> Path:
    """A valid container with a video stream and no frames (the header is written, no packet follows)."""
    import av

    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=24)
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        out.start_encoding()
    assert path.exists()
    return path


def vfr_mp4(path: Path, pts_ms: list[int]) -> Path:
    """H.264 .mp4 with variable frame rate: frame t is shown at ``pts_ms[t]`` milliseconds."""
    import av

    sc = scene(frames=len(pts_ms))
    tb = Fraction(1, 1000)
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=24)
        s.width, s.height, s.pix_fmt = sc.width, sc.height, "yuv420p"
        s.time_base = s.codec_context.time_base = tb
        s.options = {"preset": "ultrafast", "bf": "0"}
        for t, p in enumerate(pts_ms):
            vf = av.VideoFrame.from_ndarray(sc.rgb(t), format="rgb24")
            vf.pts, vf.time_base = p, tb
            for pk in s.encode(vf):
                out.mux(pk)
        for pk in s.encode():
            out.mux(pk)
    return path


def write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def audio_only(path: Path) -> Path:
    """.mp4 holding one AAC stream and no video (a dialogue track handed over as 'the clip')."""
    import av

    with av.open(str(path), "w") as out:
        a = out.add_stream("aac", rate=48000)
        a.layout = "mono"
        tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(48000) / 48000)).astype(np.float32)
        for i in range(0, tone.size, 1024):
            f = av.AudioFrame.from_ndarray(tone[None, i : i + 1024], format="fltp", layout="mono")
            f.sample_rate, f.pts = 48000, i
            for p in a.encode(f):
                out.mux(p)
        for p in a.encode():
            out.mux(p)
    return path


def huge_y4m(path: Path, width: int = 60000, height: int = 60000) -> Path:
    """A YUV4MPEG2 header declaring ``width`` x ``height`` followed by a few bytes (a 5 GB frame promised)."""
    path.write_bytes(
        f"YUV4MPEG2 W{width} H{height} F24:1 Ip A1:1 C420jpeg\n".encode() + b"FRAME\n" + b"\x80" * 4096
    )
    return path


def huge_mkv(path: Path, size: int = 65535) -> Path:
    """An FFV1 .mkv written at 1000x1000 whose Matroska PixelWidth/PixelHeight are patched to ``size``."""
    import av

    sc = scene(1000, 1000, 2)
    with av.open(str(path), "w") as out:
        s = out.add_stream("ffv1", rate=24)
        s.width, s.height, s.pix_fmt = 1000, 1000, "yuv420p"
        for t in range(2):
            for p in s.encode(av.VideoFrame.from_ndarray(sc.rgb(t), format="rgb24")):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    data = path.read_bytes()
    for elem in (b"\xb0\x82\x03\xe8", b"\xba\x82\x03\xe8"):  # PixelWidth / PixelHeight = 1000 (2-byte uint)
        assert elem in data, "mkv layout changed: PixelWidth/PixelHeight not found"
        data = data.replace(elem, elem[:2] + struct.pack(">H", size), 1)
    path.write_bytes(data)
    return path


def png_bytes(img: np.ndarray) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".png", img)
    assert ok
    return buf.tobytes()


def png_with_ihdr(img: np.ndarray, width: int, height: int) -> bytes:
    """A PNG of ``img`` whose IHDR claims ``width`` x ``height`` (CRC fixed, so only the size lies)."""
    data = bytearray(png_bytes(img))
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)
    return bytes(data)


def write_video(
    path: Path, sc: Scene, codec: str, pix_fmt: str, *, options: dict | None = None, rate: int = 24
) -> Path:
    import av

    with av.open(str(path), "w") as out:
        s = out.add_stream(codec, rate=rate)
        s.width, s.height, s.pix_fmt = sc.width, sc.height, pix_fmt
        s.options = options or {}
        for t in range(sc.frames):
            for p in s.encode(av.VideoFrame.from_ndarray(sc.rgb(t), format="rgb24")):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    return path


def mjpeg_mkv(
    path: Path,
    sc: Scene,
    *,
    pts: list[int] | None = None,
    dts: list[int] | None = None,
    corrupt: tuple[int, ...] = (),
    time_base=Fraction(1, 24),
) -> Path:
    """Intra-only MJPEG in Matroska, one packet per frame, with chosen ``pts`` and garbage in packets ``corrupt``.

    Matroska accepts non-increasing timestamps (AVFMT_TS_NONSTRICT), so duplicate or backwards pts survive muxing.
    """
    import av

    rng = np.random.default_rng(7)
    enc = av.CodecContext.create("mjpeg", "w")
    enc.width, enc.height, enc.pix_fmt = sc.width, sc.height, "yuvj420p"
    enc.time_base = time_base
    enc.open()
    payloads = []
    for t in range(sc.frames):
        vf = av.VideoFrame.from_ndarray(sc.rgb(t), format="rgb24").reformat(format="yuvj420p")
        vf.pts = t
        vf.time_base = time_base
        payloads.append(b"".join(bytes(p) for p in enc.encode(vf)))
    with av.open(str(path), "w") as out:
        s = out.add_stream("mjpeg", rate=24)
        s.width, s.height, s.pix_fmt = sc.width, sc.height, "yuvj420p"
        s.time_base = time_base
        for t, data in enumerate(payloads):
            if t in corrupt:
                data = (
                    b"\xff\xd8" + rng.integers(0, 256, len(data), dtype=np.uint8).tobytes()[:64] + b"\xff\xd9"
                )
            pkt = av.Packet(data)
            pkt.stream = s
            pkt.pts = pts[t] if pts is not None else t
            pkt.dts = dts[t] if dts is not None else pkt.pts
            pkt.time_base = time_base
            pkt.is_keyframe = True
            out.mux(pkt)
    return path


def raw_h264(path: Path, sc: Scene) -> Path:
    """An Annex-B elementary stream (.h264): no container, so no timestamps at all."""
    tmp = path.with_suffix(".src.mp4")
    write_clip(tmp, sc)
    ffmpeg("-i", str(tmp), "-c", "copy", "-bsf:v", "h264_mp4toannexb", "-f", "h264", str(path))
    tmp.unlink()
    return path


def size_change_h264(path: Path) -> Path:
    """Two Annex-B streams of different frame size, concatenated (a resolution switch mid-clip)."""
    a, b = path.with_suffix(".a.h264"), path.with_suffix(".b.h264")
    raw_h264(a, scene(W, H, 4))
    raw_h264(b, scene(W * 2, H * 2, 4))
    path.write_bytes(a.read_bytes() + b.read_bytes())
    a.unlink()
    b.unlink()
    return path


def rotated_mp4(path: Path, degrees: int = 90) -> Path:
    """A phone clip: frames stored 64x48 with a display matrix asking players to rotate them ``degrees``."""
    tmp = path.with_suffix(".src.mp4")
    good_mp4(tmp)
    from vmatte.io.writers.external import ffmpeg_version

    version = ffmpeg_version(FFMPEG or "ffmpeg")
    if version >= (6, 0) or version == (0, 0):
        # FFmpeg 6+ ignores the old "rotate" tag on output; its display matrix is counter-clockwise
        ffmpeg("-display_rotation", str(-degrees), "-i", str(tmp), "-c", "copy", str(path))
    else:
        ffmpeg("-i", str(tmp), "-c", "copy", "-metadata:s:v:0", f"rotate={degrees}", str(path))
    tmp.unlink()
    return path


def sequence(
    folder: Path,
    sc: Scene,
    *,
    skip: tuple[int, ...] = (),
    corrupt: tuple[int, ...] = (),
    resize: tuple[int, ...] = (),
) -> Path:
    """PNG sequence 000000.png…; frames in ``skip`` missing, in ``corrupt`` garbage, in ``resize`` half size."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    for t in range(sc.frames):
        if t in skip:
            continue
        f = folder / f"{t:06d}.png"
        img = cv2.cvtColor(sc.rgb(t), cv2.COLOR_RGB2BGR)
        if t in corrupt:
            f.write_bytes(png_bytes(img)[:40])
        elif t in resize:
            cv2.imwrite(str(f), cv2.resize(img, (sc.width // 2, sc.height // 2)))
        else:
            cv2.imwrite(str(f), img)
    return folder


@dataclass(frozen=True)
class HostileClip:
    """One hostile input clip and what vmatte must do with it.

    make(dir) -> clip path. exits: acceptable exit codes (0 = must be processed). mask_size: (w, h) of the
    masks to pass (the display size the user sees), None → the default 64x48. mask_frames: frames with masks.
    mention: words the one-line error must contain (besides the file name) when the exit is not 0.
    check: extra assertions on (clip path, output path, report dict) when the run succeeds.
    """

    name: str
    make: Callable[[Path], Path]
    exits: tuple[int, ...]
    mask_size: tuple[int, int] | None = None
    mask_frames: tuple[int, ...] = (0,)
    mention: tuple[str, ...] = ()
    culprit: str = ""  # file the error line must name; empty → the clip itself
    config: str = ""  # extra TOML for --config
    note: str = ""
    timeout: float = 60.0
    flags: tuple[str, ...] = field(default_factory=tuple)


def _dev_zero(d: Path) -> Path:
    return Path("/dev/zero")


def _fifo(d: Path) -> Path:
    p = d / "pipe.mp4"
    os.mkfifo(p)
    return p


def _pct_name(d: Path) -> Path:
    return good_mp4(d / "take 100%done.mp4")


def _seq_gap(d: Path) -> Path:
    return sequence(d / "frames", scene(frames=10), skip=(4, 5))


CLIPS: list[HostileClip] = [
    HostileClip("missing_file", lambda d: d / "nope.mp4", (3,), mention=("no such file",)),
    HostileClip("empty_file", lambda d: write_bytes(d / "empty.mp4", b""), (3,)),
    HostileClip("text_renamed_mp4", lambda d: write_bytes(d / "notes.mp4", b"not a video\n" * 50), (3,)),
    HostileClip(
        "random_bytes_mp4",
        lambda d: write_bytes(d / "rnd.mp4", np.random.default_rng(1).bytes(200_000)),
        (3,),
    ),
    HostileClip(
        "truncated_mp4_moov_at_end", lambda d: truncated(good_mp4(d / "src.mp4"), d / "cut.mp4", 0.5), (3,)
    ),
    HostileClip(
        "truncated_mp4_faststart",
        lambda d: truncated(mp4_faststart(d / "src.mp4", 24), d / "cut.mp4", 0.6),
        (0, 3),
        note="index lists frames whose bytes are gone: skip with frame numbers reported, or a clean error",
    ),
    HostileClip(
        "truncated_mkv",
        lambda d: truncated(mjpeg_mkv(d / "src.mkv", scene(frames=12)), d / "cut.mkv", 0.55),
        (0, 3),
    ),
    HostileClip(
        "flipped_bytes_mid_mp4", lambda d: flipped(good_mp4(d / "src.mp4", 24), d / "rot.mp4", 0.5), (0, 3)
    ),
    HostileClip(
        "flipped_bytes_in_index",
        lambda d: flipped(good_mp4(d / "src.mp4", 24), d / "rot.mp4", 0.97, 200),
        (0, 3),
    ),
    HostileClip("zero_frames_mp4", lambda d: zero_frame_mp4(d / "zero.mp4"), (3,)),
    HostileClip("zero_frames_mkv", lambda d: zero_frame_mp4(d / "zero.mkv"), (3,), mention=("frames",)),
    HostileClip("one_frame", lambda d: good_mp4(d / "one.mp4", 1), (0,)),
    HostileClip("audio_only", lambda d: audio_only(d / "voice.mp4"), (3,), mention=("video",)),
    HostileClip("dev_zero", _dev_zero, (3,)),
    HostileClip(
        "fifo_named_mp4", _fifo, (3,), note="opening a FIFO blocks forever waiting for a writer", timeout=30
    ),
    HostileClip("huge_declared_y4m", lambda d: huge_y4m(d / "huge.y4m"), (3,)),
    HostileClip("huge_declared_mkv_65535", lambda d: huge_mkv(d / "huge.mkv", 65535), (3,)),
    HostileClip(
        "huge_declared_mkv_16000",
        lambda d: huge_mkv(d / "huge.mkv", 16000),
        (3, 4),
        note="FFmpeg accepts 16000x16000: fail fast on the size (3) or on the 64x48 masks (4), never allocate it",
    ),
    HostileClip("huge_declared_png_sequence", lambda d: _huge_png_seq(d / "frames"), (3,)),
    HostileClip(
        "odd_size_97x61_ffv1",
        lambda d: write_video(d / "odd.mkv", scene(97, 61), "ffv1", "yuv420p"),
        (0,),
        mask_size=(97, 61),
    ),
    HostileClip(
        "tiny_2x2",
        lambda d: write_video(d / "tiny.mkv", scene(2, 2, 4), "ffv1", "yuv444p"),
        (0, 3),
        mask_size=(2, 2),
    ),
    HostileClip(
        "sliver_640x4",
        lambda d: write_video(d / "sliver.mkv", scene(640, 4, 4), "ffv1", "yuv444p"),
        (0, 3),
        mask_size=(640, 4),
    ),
    HostileClip(
        "rotated_90_masks_as_stored",
        lambda d: rotated_mp4(d / "phone.mp4", 90),
        (0,),
        note="masks in the stored orientation (64x48): the matte lines up and the output keeps the rotation",
    ),
    HostileClip(
        "rotated_90_masks_as_displayed",
        lambda d: rotated_mp4(d / "phone.mp4", 90),
        (0, 4),
        mask_size=(H, W),
        mention=("rotat",),
        note="masks drawn on what a player shows (48x64): accept them, or say the clip is rotated",
    ),
    HostileClip("vfr_pts", lambda d: vfr_mp4(d / "vfr.mp4", [0, 40, 100, 120, 200, 330, 340, 500]), (0,)),
    HostileClip("bframes", lambda d: good_mp4(d / "bf.mp4", 12, bframes=2), (0,)),
    HostileClip("no_pts_raw_h264", lambda d: raw_h264(d / "raw.h264", scene()), (0,)),
    HostileClip(
        "duplicate_pts_mkv", lambda d: mjpeg_mkv(d / "dup.mkv", scene(), pts=[0, 1, 1, 2, 3, 3, 4, 5]), (0, 3)
    ),
    HostileClip(
        "backwards_pts_mkv",
        lambda d: mjpeg_mkv(
            d / "back.mkv", scene(), pts=[0, 1, 2, 5, 3, 4, 6, 7], dts=[0, 1, 2, 3, 3, 4, 6, 7]
        ),
        (0, 3),
    ),
    HostileClip("size_change_mid_stream", lambda d: size_change_h264(d / "switch.h264"), (0, 3)),
    HostileClip(
        "hevc_10bit_420",
        lambda d: write_video(
            d / "hevc10.mp4",
            scene(),
            "libx265",
            "yuv420p10le",
            options={"preset": "ultrafast", "x265-params": "log-level=error"},
        ),
        (0,),
    ),
    HostileClip(
        "ffv1_12bit_444", lambda d: write_video(d / "ffv1_12.mkv", scene(), "ffv1", "yuv444p12le"), (0,)
    ),
    HostileClip(
        "h264_high444_8bit",
        lambda d: write_video(d / "h444.mp4", scene(), "libx264", "yuv444p", options={"preset": "ultrafast"}),
        (0,),
    ),
    HostileClip(
        "prores4444_with_alpha_10bit",
        lambda d: write_video(
            d / "pr.mov", scene(), "prores_ks", "yuva444p10le", options={"profile": "4444"}
        ),
        (0,),
    ),
    HostileClip(
        "corrupt_frames_mid_clip",
        lambda d: mjpeg_mkv(d / "bad.mkv", scene(frames=10), corrupt=(3, 5)),
        (0,),
        note="two undecodable frames: skipped, reported by number, later frames keep their numbers",
    ),
    HostileClip(
        "too_many_corrupt_frames",
        lambda d: mjpeg_mkv(d / "bad.mkv", scene(frames=10), corrupt=(2, 3, 4, 6)),
        (3,),
        config="[pipeline]\nmax_corrupt_frames = 2\n",
        mention=("corrupt",),
    ),
    HostileClip(
        "every_frame_corrupt",
        lambda d: mjpeg_mkv(d / "bad.mkv", scene(frames=6), corrupt=tuple(range(6))),
        (3,),
    ),
    HostileClip(
        "percent_d_in_file_name", _pct_name, (0,), note="'%d' in a real file name is not a sequence pattern"
    ),
    HostileClip(
        "sequence_with_gap",
        _seq_gap,
        (0, 3),
        mask_frames=(0, 8),
        note="frames 4-5 missing: a clean error naming them, or numbering by file so mask 000008.png meets file 000008.png",
    ),
    HostileClip(
        "sequence_corrupt_file",
        lambda d: sequence(d / "frames", scene(), corrupt=(4,)),
        (0, 3),
        culprit="000004.png",
    ),
    HostileClip(
        "sequence_mixed_sizes",
        lambda d: sequence(d / "frames", scene(), resize=(5,)),
        (3,),
        culprit="000005.png",
    ),
    HostileClip("empty_folder_as_clip", lambda d: _with_subfolder(d, "frames") / "frames", (3,)),
]


def _huge_png_seq(folder: Path) -> Path:
    folder.mkdir(parents=True)
    img = np.zeros((H, W, 3), np.uint8)
    for t in range(3):
        (folder / f"{t:06d}.png").write_bytes(png_with_ihdr(img, 60000, 60000))
    return folder


# --------------------------------------------------------------------------------------------------------
# keyframe mask folders
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HostileMasks:
    """A keyframe folder and the contract: exit 4 with one line naming ``culprit`` (a file or folder name) and
    containing ``fix`` words, or exit 0 (possibly with a warning containing ``warn``)."""

    name: str
    make: Callable[[Path], Path]  # (dir) → masks folder, for the default 64x48 x 8-frame clip
    exit: int
    culprit: str = ""
    fix: tuple[str, ...] = ()
    warn: str = ""


def _mask(t: int = 0, w: int = W, h: int = H) -> np.ndarray:
    return scene(w, h).mask(t)


def _folder(d: Path, files: dict[str, bytes | np.ndarray]) -> Path:
    import cv2

    m = d / "keys"
    m.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        if isinstance(content, np.ndarray):
            ok = cv2.imwrite(str(m / name), content)
            assert ok, name
        else:
            (m / name).write_bytes(content)
    return m


def palette_png(index: np.ndarray, palette: list[tuple[int, int, int]]) -> bytes:
    """A colour-type-3 (palette) 8-bit PNG, written by hand so no imaging library decides for us."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    h, w = index.shape
    raw = b"".join(b"\x00" + index[y].astype(np.uint8).tobytes() for y in range(h))
    plte = b"".join(bytes(c) for c in palette)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 3, 0, 0, 0))
        + chunk(b"PLTE", plte)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def one_bit_png(mask: np.ndarray) -> bytes:
    """A 1-bit grayscale PNG (bit depth 1), as some paint tools export binary masks."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    h, w = mask.shape
    bits = np.packbits(mask > 127, axis=1)
    raw = b"".join(b"\x00" + bits[y].tobytes() for y in range(h))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 1, 0, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def _with_subfolder(folder: Path, name: str) -> Path:
    (folder / name).mkdir()
    return folder


def _tiff_f64(mask: np.ndarray) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".tiff", mask.astype(np.float64) / 255.0)
    assert ok
    return buf.tobytes()


def _tiff_i32(mask: np.ndarray) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".tiff", mask.astype(np.int32))
    assert ok
    return buf.tobytes()


MASKS: list[HostileMasks] = [
    HostileMasks("missing_folder", lambda d: d / "no-such-keys", 4, "no-such-keys", ("--masks",)),
    HostileMasks(
        "file_not_folder",
        lambda d: write_bytes(d / "keys.png", png_bytes(_mask())),
        4,
        "keys.png",
        ("folder",),
    ),
    HostileMasks("empty_folder", lambda d: _folder(d, {}), 4, "keys", ("frame number",)),
    HostileMasks(
        "only_non_images",
        lambda d: _folder(d, {"notes.txt": b"draw the dog", "Thumbs.db": b"\0" * 64}),
        4,
        "keys",
    ),
    HostileMasks(
        "all_black_every_mask",
        lambda d: _folder(
            d, {"000000.png": np.zeros((H, W), np.uint8), "000005.png": np.zeros((H, W), np.uint8)}
        ),
        4,
        "keys",
        ("white",),
    ),
    HostileMasks(
        "all_black_one_of_two",
        lambda d: _folder(d, {"000000.png": _mask(0), "000005.png": np.zeros((H, W), np.uint8)}),
        0,
        warn="all black",
    ),
    HostileMasks(
        "all_white", lambda d: _folder(d, {"000000.png": np.full((H, W), 255, np.uint8)}), 0, warn="all white"
    ),
    HostileMasks(
        "wrong_size",
        lambda d: _folder(d, {"000000.png": _mask(0), "000004.png": _mask(0, 128, 96)}),
        4,
        "000004.png",
        ("128x96", "64x48"),
    ),
    HostileMasks(
        "wrong_size_jpeg",
        lambda d: _folder(d, {"000003.jpg": _mask(0, 32, 24)}),
        4,
        "000003.jpg",
        ("resolution",),
    ),
    HostileMasks(
        "wrong_aspect_transposed",
        lambda d: _folder(d, {"000000.png": _mask(0, H, W)}),
        4,
        "000000.png",
        ("resolution",),
    ),
    HostileMasks("bit_depth_1", lambda d: _folder(d, {"000000.png": one_bit_png(_mask(0))}), 0),
    HostileMasks("bit_depth_16", lambda d: _folder(d, {"000000.png": _mask(0).astype(np.uint16) * 257}), 0),
    HostileMasks(
        "bit_depth_float64_tiff",
        lambda d: _folder(d, {"000000.tif": _tiff_f64(_mask(0))}),
        4,
        "000000.tif",
        ("8 or 16 bit",),
    ),
    HostileMasks(
        "bit_depth_int32_tiff",
        lambda d: _folder(d, {"000000.tif": _tiff_i32(_mask(0))}),
        4,
        "000000.tif",
        ("8 or 16 bit",),
    ),
    HostileMasks(
        "palette_gray",
        lambda d: _folder(
            d, {"000000.png": palette_png((_mask(0) > 0).astype(np.uint8), [(0, 0, 0), (255, 255, 255)])}
        ),
        0,
    ),
    HostileMasks(
        "palette_labels_davis",
        lambda d: _folder(
            d,
            {
                "000000.png": palette_png(
                    (_mask(0) > 0).astype(np.uint8) * 2, [(0, 0, 0), (128, 0, 0), (0, 128, 0)]
                )
            },
        ),
        0,
    ),
    HostileMasks(
        "palette_bg_not_black",
        lambda d: _folder(
            d, {"000000.png": palette_png((_mask(0) > 0).astype(np.uint8), [(200, 30, 30), (0, 0, 0)])}
        ),
        0,
    ),
    HostileMasks(
        "rgba_opaque_alpha",
        lambda d: _folder(d, {"000000.png": np.dstack([_mask(0)] * 3 + [np.full((H, W), 255, np.uint8)])}),
        0,
    ),
    HostileMasks(
        "beyond_clip",
        lambda d: _folder(d, {"000000.png": _mask(0), "000999.png": _mask(0)}),
        4,
        "000999.png",
        ("0-based",),
    ),
    HostileMasks(
        "beyond_clip_by_one", lambda d: _folder(d, {f"{N:06d}.png": _mask(0)}), 4, f"{N:06d}.png", ("frames",)
    ),
    HostileMasks(
        "huge_frame_number",
        lambda d: _folder(d, {"99999999999999999999999.png": _mask(0)}),
        4,
        "99999999999999999999999.png",
    ),
    HostileMasks(
        "non_images_beside_masks",
        lambda d: _folder(
            d, {"000000.png": _mask(0), "notes.txt": b"hi", "Thumbs.db": b"\0", ".DS_Store": b"\0"}
        ),
        0,
        warn="notes.txt",
    ),
    HostileMasks(
        "name_without_number",
        lambda d: _folder(d, {"000000.png": _mask(0), "mask.png": _mask(0)}),
        4,
        "mask.png",
        ("frame number",),
    ),
    HostileMasks(
        "duplicate_frame_number",
        lambda d: _folder(d, {"0.png": _mask(0), "000000.png": _mask(0)}),
        4,
        "000000.png",
        ("one mask per frame",),
    ),
    HostileMasks(
        "text_renamed_png",
        lambda d: _folder(d, {"000000.png": _mask(0), "000003.png": b"this is not a png"}),
        4,
        "000003.png",
        ("re-export",),
    ),
    HostileMasks(
        "truncated_png",
        lambda d: _folder(d, {"000002.png": png_bytes(_mask(2))[:60]}),
        4,
        "000002.png",
        ("re-export",),
    ),
    HostileMasks(
        "zero_byte_png",
        lambda d: _folder(d, {"000000.png": _mask(0), "000001.png": b""}),
        4,
        "000001.png",
        ("re-export",),
    ),
    HostileMasks(
        "png_ihdr_claims_huge",
        lambda d: _folder(d, {"000000.png": png_with_ihdr(_mask(0), 60000, 60000)}),
        4,
        "000000.png",
    ),
    HostileMasks("negative_looking_name", lambda d: _folder(d, {"shot-0003.png": _mask(3)}), 0),
    HostileMasks(
        "subfolder_named_like_mask",
        lambda d: _with_subfolder(_folder(d, {"000000.png": _mask(0)}), "000004.png"),
        0,
    ),
]


# --------------------------------------------------------------------------------------------------------
# config files
# --------------------------------------------------------------------------------------------------------

CONFIGS: list[tuple[str, str, str]] = [
    # (name, TOML text, word the one-line error must contain)
    ("unknown_top_key", "overwrite = true\nbatchsize = 4\n", "batchsize"),
    ("unknown_nested_key", "[engine]\nbatch = 4\n", "engine.batch"),
    ("wrong_type", "[engine]\nbatch_size = 'four'\n", "batch_size"),
    ("negative_batch", "[engine]\nbatch_size = -3\n", "batch_size"),
    ("bad_literal", "[engine]\nprecision = 'fp8'\n", "precision"),
    ("not_toml", "this is = = not toml [[[\n", "TOML"),
    ("binary_garbage", "\x00\x01\x02\xff", "TOML"),
    ("outputs_not_list", "outputs = 'out.mov'\n", "outputs"),
    ("output_unknown_format", "[[outputs]]\npath = 'x.mov'\nformat = 'prores9000'\n", "prores"),
    ("nan_number", "[propagate]\nband = nan\n", "band"),
]


# --------------------------------------------------------------------------------------------------------
# model files
# --------------------------------------------------------------------------------------------------------


class _Boom:
    """Unpickling this runs ``open(marker, 'w')``: proof of code execution if the marker appears."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def evil_pickle(path: Path, marker: Path) -> Path:
    """A torch-style checkpoint whose unpickling would create ``marker`` (a stand-in for running any code)."""
    import torch

    torch.save({"state_dict": {"w": torch.zeros(2)}, "payload": _Boom(str(marker))}, str(path))
    return path


def evil_plain_pickle(path: Path, marker: Path) -> Path:
    """Not even a torch zip: a bare pickle stream with a code-running reduce."""
    path.write_bytes(pickle.dumps(_Boom(str(marker)), protocol=2))
    return path


def other_arch_checkpoint(path: Path) -> Path:
    """A plain tensor state dict of a different network (a small CNN)."""
    import torch

    sd = {
        "conv1.weight": torch.zeros(8, 3, 3, 3),
        "conv1.bias": torch.zeros(8),
        "fc.weight": torch.zeros(10, 8),
        "fc.bias": torch.zeros(10),
    }
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(sd, str(path))
    else:
        torch.save(sd, str(path))
    return path


def other_arch_hf_dir(path: Path) -> Path:
    """A save_pretrained folder of a different transformers architecture (a 1-layer BERT)."""
    from transformers import BertConfig, BertModel

    m = BertModel(
        BertConfig(
            hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, vocab_size=50
        )
    )
    m.save_pretrained(str(path))
    return path


def remote_code_dir(path: Path, marker: Path) -> Path:
    """A model folder whose config asks for trust_remote_code: loading must not import its Python file."""
    path.mkdir(parents=True)
    (path / "config.json").write_text(
        '{"model_type": "evil", "architectures": ["EvilModel"], "auto_map": {"AutoConfig": "evil.EvilConfig", "AutoModel": "evil.EvilModel"}}'
    )
    (path / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    return path


def evil_bin_in_hf_dir(tiny_dir: Path, path: Path, marker: Path) -> Path:
    """A copy of a valid tiny ViTMatte folder whose weights are a code-running pytorch_model.bin."""
    shutil.copytree(tiny_dir, path)
    for f in path.glob("*.safetensors"):
        f.unlink()
    evil_pickle(path / "pytorch_model.bin", marker)
    return path


# --------------------------------------------------------------------------------------------------------
# running vmatte and checking the contract
# --------------------------------------------------------------------------------------------------------


@dataclass
class CliResult:
    code: int
    stderr: str
    exc: BaseException | None = None
    tb: str = ""

    @property
    def lines(self) -> list[str]:
        return [ln for ln in self.stderr.splitlines() if ln.strip()]

    @property
    def errors(self) -> list[str]:
        return [ln for ln in self.lines if ln.startswith("vmatte: error:")]

    def __str__(self) -> str:
        return f"exit {self.code}\n--- stderr ---\n{self.stderr}{self.tb}"


@contextlib.contextmanager
def fake_engine(**kw) -> Iterator[None]:
    """Make the CLI load a FakeEngine (fast, weights-free) instead of a real one, for in-process CLI runs."""
    import vmatte.engine as eng
    from vmatte.engine.base import FakeEngine

    orig = getattr(eng, "load_engine", None)
    eng.load_engine = lambda *a, **k: FakeEngine(**kw)  # type: ignore[attr-defined]
    try:
        yield
    finally:
        if orig is None:
            del eng.load_engine
        else:
            eng.load_engine = orig  # type: ignore[attr-defined]


def run_args(clip, masks, out, *extra) -> list:
    """The argument list of ``vmatte run CLIP --masks MASKS -o OUT EXTRA...`` (for run_cli and Proc)."""
    return ["run", clip, "--masks", masks, "-o", out, *extra]


VITMATTE_CPU = ("--engine", "vitmatte", "--device", "cpu")  # with --model DIR: the tiny ViTMatte on CPU


def run_cli(*argv, engine: dict | None = None) -> CliResult:
    """``vmatte <argv>`` in this process with stderr captured; an exception escaping main() is exit 1 + traceback
    (what the console script would print). ``engine`` set → a FakeEngine(**engine) replaces model loading."""
    from vmatte.cli import main

    err = io.StringIO()
    ctx = fake_engine(**engine) if engine is not None else contextlib.nullcontext()
    with ctx, contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main([str(a) for a in argv])
            return CliResult(int(code), err.getvalue())
        except SystemExit as exc:  # argparse
            return CliResult(int(exc.code or 0), err.getvalue())
        except BaseException as exc:
            tb = traceback.format_exc()
            return CliResult(1, err.getvalue() + "Traceback (most recent call last):\n", exc, tb)


def run_cli_subprocess(*argv, timeout: float = 120, env: dict | None = None) -> CliResult:
    """``python -m vmatte <argv>`` in a subprocess (the console script's exact behaviour); always time-limited."""
    e = dict(os.environ)
    e.update(env or {})
    e.setdefault("HF_HUB_OFFLINE", "1")
    try:
        r = subprocess.run(
            [sys.executable, "-m", "vmatte", *map(str, argv)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=e,
            cwd=REPO,
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(
            f"vmatte {' '.join(map(str, argv))} hung for more than {timeout} s: {exc.stderr!r}"
        ) from None
    return CliResult(r.returncode, r.stderr)


def assert_one_error_line(res: CliResult, code: int | tuple[int, ...], culprit: str = "", *words: str) -> str:
    """The CLI contract for a failure: the documented exit code, exactly one ``vmatte: error:`` line, no traceback;
    the line names ``culprit`` (a file or folder name) and, outside any path (test folders carry test names),
    contains every one of ``words`` (what to fix)."""
    codes = (code,) if isinstance(code, int) else code
    assert res.code in codes, f"expected exit {codes}, got {res}"
    assert "Traceback" not in res.stderr, f"traceback on stderr: {res}"
    assert len(res.errors) == 1, f"expected exactly one 'vmatte: error:' line: {res}"
    line = res.errors[0]
    if culprit:
        assert culprit.lower() in line.lower(), f"error line does not name {culprit!r}: {line}"
    prose = re.sub(r"(?:/|[A-Za-z]:\\)[^\s:,;)']*", " ", line)
    for n in words:
        assert n.lower() in prose.lower(), f"error line does not say {n!r} (outside paths): {line}"
    return line


def assert_nothing_left(out: Path, *, before: dict[Path, str] | None = None) -> None:
    """No file at the final output path, no temporaries beside it, inputs byte-identical."""
    out = Path(out)
    assert not out.exists(), f"partial output left at the final path {out}"
    assert leftovers(out.parent) == [], f"temporaries left: {leftovers(out.parent)}"
    for p, digest in (before or {}).items():
        assert sha(p) == digest, f"input {p} was modified"


def disk_full_error() -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
