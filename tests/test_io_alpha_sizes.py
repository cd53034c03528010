"""Alpha is exact at every frame size, through the real writers (default ProRes 4444 and every other alpha one).

A hard matte (0 outside a block, 1 inside) over random colour is written and decoded back; the decoded alpha
plane is read as stored (no pixel-format conversion), and must be exactly 0 on the background and exactly the
format's maximum on the foreground. This caught PyAV/swscale's threaded conversion writing ≈ 0.5 into 8-px
runs at some sizes (vmatte/io/swscale.py); the corruption was a race, so many sizes and frames are tried.
Heights stay tiny and clips short so the sweep takes seconds.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from vmatte.frame import Frame
from vmatte.io.config import OutputConfig
from vmatte.io.decode import ClipInfo
from vmatte.io.encode import open_writer
from vmatte.io.readback import iter_alpha, iter_video_frames

# odd and even, around 8/16/32-px blocks and ProRes slice widths, and the sizes seen failing (101, 151, 726,
# 854, 1222, 1366); ProRes is the default output, so it gets the widest sweep
PRORES_WIDTHS = sorted({*range(2, 42), 63, 64, 65, 100, 101, 127, 151, 193, 255, 257, 322, 511, 719, 726, 853,
                        854, 1222, 1366, 1919, 1920})  # fmt: skip
HEIGHTS = (9, 16, 17, 34)
OTHER_WIDTHS = (2, 7, 16, 33, 101, 151, 322, 727, 854, 1366)
N = 3


def _frames(w: int, h: int, n: int = N) -> tuple[list[Frame], np.ndarray]:
    rng = np.random.default_rng(w * 1000 + h)
    a = np.zeros((h, w), np.float32)
    a[h // 4 : max(h // 4 + 1, h - h // 4), w // 3 : max(w // 3 + 1, w - w // 3)] = 1.0
    tb = Fraction(1, 24)
    frames = [
        Frame(index=i, pts=i, time_base=tb, rgb=rng.integers(0, 256, (h, w, 3), dtype=np.uint8), alpha=a)
        for i in range(n)
    ]
    return frames, a > 0


def _info(w: int, h: int, n: int = N) -> ClipInfo:
    return ClipInfo(
        path="/nonexistent/in.mov", kind="video", width=w, height=h, frame_count=n,
        time_base=Fraction(1, 24), rate=Fraction(24),
    )  # fmt: skip


def stored_alpha(vf) -> tuple[np.ndarray, int]:
    """(H, W) int64 alpha of a decoded av.VideoFrame as stored (no conversion), and its maximum code."""
    name = vf.format.name
    if name.startswith(("yuva", "gbrap")):
        comp = vf.format.components[3]
        plane = vf.planes[comp.plane]
        dt = np.dtype("<u2" if comp.bits > 8 else "u1")
        rows = np.frombuffer(plane, dt).reshape(vf.height, plane.line_size // dt.itemsize)
        return rows[:, : vf.width].astype(np.int64), (1 << comp.bits) - 1
    if name in ("argb", "rgba", "bgra", "abgr"):
        return vf.to_ndarray()[..., name.index("a")].astype(np.int64), 255
    if name in ("rgba64le", "rgba64be"):
        return vf.to_ndarray()[..., 3].astype(np.int64), 65535
    raise AssertionError(f"decoder gave {name}: add it to stored_alpha")


def _check(path, fg: np.ndarray, n: int, margin: int = 0) -> None:
    got = 0
    for vf, _ in iter_video_frames(str(path)):
        a, top = stored_alpha(vf)
        if margin:  # lossy alpha (VP9): judge away from the block edges, where ringing is legitimate
            far_bg = ~_grow(fg, margin)
            far_fg = ~_grow(~fg, margin)
            bad = (a[far_bg] != 0).sum() + (a[far_fg] != top).sum()
        else:
            bad = (a[~fg] != 0).sum() + (a[fg] != top).sum()
        xs = np.nonzero((a != 0) & ~fg)[1]
        assert bad == 0, (
            f"{path.name} frame {got}: {bad} wrong alpha pixels, stray at x {sorted(set(xs))[:8]}"
        )
        got += 1
    assert got == n


def _grow(m: np.ndarray, r: int) -> np.ndarray:
    import cv2

    return cv2.dilate(m.astype(np.uint8), np.ones((2 * r + 1, 2 * r + 1), np.uint8)) > 0


def _write(cfg: OutputConfig, w: int, h: int, threads: int = 4, n: int = N):
    frames, fg = _frames(w, h, n)
    wr = open_writer(
        cfg, _info(w, h, n), threads=threads
    )  # several encoder/conversion threads even on 2 cores
    for f in frames:
        wr.write(f)
    wr.close()
    return fg


@pytest.mark.parametrize("h", HEIGHTS)
def test_default_prores_alpha_exact_at_every_width(tmp_path, h):
    """The default output (ProRes 4444 .mov, frame-threaded encoder): every width 2..41 and sizes known bad."""
    for w in PRORES_WIDTHS:
        path = tmp_path / f"w{w}.mov"
        fg = _write(OutputConfig(path=str(path), decontaminate=False), w, h)
        _check(path, fg, N)
        path.unlink()


@pytest.mark.parametrize(("w", "h"), [(101, 17), (322, 34), (854, 48)])
def test_prores_fixed_quantiser_decodes_like_rate_control(tmp_path, w, h):
    """The default ProRes writer skips prores_ks's per-slice quantiser search (quantiser 1): the decoded frames
    (colour and alpha, random full-range colour: the hardest case for the search) are those of prores_ks's own
    rate control, which a user's rate option (here quant_mat=auto, its default) keeps."""
    import av

    from vmatte.io.formats import FORMATS
    from vmatte.io.writers.video import codec_options

    fixed, searched = tmp_path / "fixed.mov", tmp_path / "searched.mov"
    _write(OutputConfig(path=str(fixed), decontaminate=False), w, h, threads=1)
    user = OutputConfig(path=str(searched), decontaminate=False, options={"quant_mat": "auto"})
    assert "global_quality" not in codec_options(FORMATS["prores4444"], user)
    assert codec_options(FORMATS["prores4444"], OutputConfig(path="x.mov"))["flags"] == "+qscale"
    _write(user, w, h, threads=1)
    decoded = []
    for path in (fixed, searched):
        with av.open(str(path)) as c:
            decoded.append([f.to_ndarray(format="rgba64le") for f in c.decode(video=0)])
    assert len(decoded[0]) == len(decoded[1]) == N
    assert all(np.array_equal(a, b) for a, b in zip(*decoded))


@pytest.mark.parametrize(
    ("fmt", "ext", "margin"),
    [("qtrle", ".mov", 0), ("png-mov", ".mov", 0), ("ffv1", ".mkv", 0), ("vp9", ".webm", 4)],
)
def test_other_alpha_video_writers_exact(tmp_path, fmt, ext, margin):
    for h in (2, 16, 17) if fmt != "vp9" else (16, 34):
        for w in OTHER_WIDTHS:
            if fmt == "vp9" and (w < 16 or w % 2):
                continue  # yuva420p: even sizes; the margin needs room
            path = tmp_path / f"w{w}h{h}{ext}"
            fg = _write(OutputConfig(path=str(path), format=fmt, decontaminate=False), w, h)
            _check(path, fg, N, margin)
            path.unlink()


@pytest.mark.parametrize(("fmt", "depth"), [("png", 8), ("png", 16), ("exr", 16), ("exr", 32)])
def test_sequence_alpha_exact(tmp_path, fmt, depth):
    for h in (2, 17):
        for w in OTHER_WIDTHS:
            out = tmp_path / f"w{w}h{h}"
            cfg = OutputConfig(
                path=str(out / f"f.%04d.{fmt}"), format=fmt, bit_depth=depth, decontaminate=False
            )
            fg = _write(cfg, w, h)
            n = 0
            for _, _, a in iter_alpha(str(out / f"f.%04d.{fmt}")):
                assert (a[~fg] == 0).all() and (a[fg] == 1.0).all(), f"{fmt}{depth} {w}x{h} frame {n}"
                n += 1
            assert n == N


def test_external_ffmpeg_writer_alpha_exact(tmp_path):
    """writer = "ffmpeg" (the bundled or PATH binary: its own swscale runs in the ffmpeg process)."""
    for h in (16, 17):
        for w in OTHER_WIDTHS:
            path = tmp_path / f"w{w}h{h}.mov"
            fg = _write(OutputConfig(path=str(path), writer="ffmpeg", decontaminate=False), w, h)
            _check(path, fg, N)
            path.unlink()


def test_every_pixel_conversion_is_single_threaded():
    """No module converts pixels behind vmatte.io.swscale's back (PyAV's default threads=0 is the bug)."""
    import re
    from pathlib import Path

    import vmatte

    root = Path(vmatte.__file__).parent
    bare = re.compile(r"(?<!sws)\.(reformat|to_ndarray)\(")
    found = [
        f"{p.relative_to(root)}:{i}"
        for p in root.rglob("*.py")
        if p.name != "swscale.py"
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if bare.search(line) and "threads=" not in line
    ]
    assert not found, f"use vmatte.io.swscale.reformat/to_ndarray: {found}"
