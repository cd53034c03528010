"""Helpers shared by the tests/test_io_*.py files: tiny clips with exact timing, frames with known alpha."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from vmatte.frame import Frame
from vmatte.testing import Scene

W, H = 64, 48


def tiny_scene(frames: int = 4) -> Scene:
    return Scene(width=W, height=H, frames=frames, speed=3.0)


def write_vfr_clip(
    path: Path,
    scene: Scene,
    pts: list[int],
    *,
    time_base: Fraction = Fraction(1, 1000),
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    audio: bool = False,
    rotation: int = 0,
    rgb16: list[np.ndarray] | None = None,
) -> Path:
    """A clip whose frames carry exactly ``pts`` (in ``time_base``): the codec time base is set too, so no
    rescaling through a nominal frame rate rounds them. ``rgb16``: (H, W, 3) uint16 frames for deep sources."""
    import av

    with av.open(str(path), "w") as out:
        vs = out.add_stream(codec, rate=24)
        vs.width, vs.height = scene.width, scene.height
        vs.pix_fmt = pix_fmt
        vs.time_base = time_base
        vs.codec_context.time_base = time_base
        if codec == "libx264":
            vs.options = {"preset": "ultrafast", "crf": "0" if "10" in pix_fmt else "10", "bf": "0"}
        if rotation:
            vs.set_display_rotation(rotation)
        astream = None
        if audio:
            astream = out.add_stream("aac", rate=48000)
            astream.layout = "mono"
        for t, p in enumerate(pts):
            if rgb16 is not None:
                vf = av.VideoFrame.from_ndarray(rgb16[t], format="rgb48le")
            else:
                vf = av.VideoFrame.from_ndarray(scene.rgb(t), format="rgb24")
            vf.pts = int(p)
            vf.time_base = time_base
            for packet in vs.encode(vf):
                out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
        if astream is not None:
            sr = 48000
            n = int(sr * float((pts[-1] + 100) * time_base))
            tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(n) / sr)).astype(np.float32)
            for i in range(0, n, 1024):
                af = av.AudioFrame.from_ndarray(tone[None, i : i + 1024], format="fltp", layout="mono")
                af.sample_rate = sr
                af.pts = i
                for packet in astream.encode(af):
                    out.mux(packet)
            for packet in astream.encode():
                out.mux(packet)
    return path


def with_alpha(frames, scene: Scene) -> list[Frame]:
    """Attach the scene's true alpha to decoded frames."""
    return [f.replace(alpha=scene.alpha(f.index)) for f in frames]


def write_all(writer, frames) -> Path:
    for f in frames:
        writer.write(f)
    writer.close()
    return writer.path


def video_times(path: Path) -> list[float]:
    """Presentation times (s) of the video packets of ``path``, sorted."""
    import av

    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        return sorted(float(p.pts * vs.time_base) for p in c.demux(vs) if p.size and p.pts is not None)


def stream_codecs(path: Path) -> dict[str, list[str]]:
    import av

    with av.open(str(path)) as c:
        return {
            "video": [s.codec_context.name for s in c.streams.video],
            "audio": [s.codec_context.name for s in c.streams.audio],
        }


def q(x: np.ndarray, levels: int) -> np.ndarray:
    """Quantise float [0, 1] to ``levels`` - 1 steps (what an integer format stores)."""
    return np.round(np.clip(x, 0, 1) * (levels - 1)) / (levels - 1)
