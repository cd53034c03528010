"""Synthetic clips with known ground truth, for tests, the bundled example and benchmarks.

A textured, slowly panning background with a soft-edged, fur-like foreground blob that moves and rotates.
The true alpha of every frame is known exactly, so propagation, matting and smoothing can be scored.
Nothing here imports torch; PyAV is imported only by the writers.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Scene:
    """A procedural scene. All sizes in px, times in frames.

    width, height: frame size (odd sizes allowed for writers that accept them).
    frames: number of frames.
    radius: foreground blob radius as a fraction of the short side.
    speed: foreground motion in px per frame (x direction; y follows a sine).
    fur: fur (soft boundary) length as a fraction of the radius.
    seed: texture seed.
    """

    width: int = 320
    height: int = 240
    frames: int = 24
    radius: float = 0.22
    speed: float = 3.0
    fur: float = 0.18
    seed: int = 0
    static: bool = False

    def _noise(self, h: int, w: int, octaves: int, seed: int) -> np.ndarray:
        import cv2

        rng = np.random.default_rng(seed)
        out = np.zeros((h, w), np.float32)
        amp = 1.0
        for o in range(octaves):
            s = 2 ** (o + 2)
            small = rng.random((max(2, h // s + 2), max(2, w // s + 2)), dtype=np.float32)
            out += amp * cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
            amp *= 0.5
        out -= out.min()
        out /= max(out.max(), 1e-6)
        return out

    def background(self, t: int) -> np.ndarray:
        """(H, W, 3) float32 in [0, 1] at frame t (pans 1 px/frame unless static)."""
        if not hasattr(self, "_bg_cache"):
            pad = self.frames + 8
            h, w = self.height, self.width + pad
            n1 = self._noise(h, w, 5, self.seed)
            n2 = self._noise(h, w, 4, self.seed + 1)
            bg = np.stack([0.25 + 0.5 * n1, 0.3 + 0.4 * n2, 0.55 + 0.35 * (1 - n1)], axis=-1)
            # a few hard stripes so flow has structure to lock onto
            bg[:, ::37, :] *= 0.6
            object.__setattr__(self, "_bg_cache", np.clip(bg, 0, 1).astype(np.float32))
        x0 = 0 if self.static else int(t)
        return self._bg_cache[:, x0 : x0 + self.width]

    def center(self, t: int) -> tuple[float, float]:
        if self.static:
            return self.width * 0.5, self.height * 0.5
        cx = self.width * 0.3 + self.speed * t
        cy = self.height * 0.5 + self.height * 0.08 * np.sin(t / 6.0)
        return float(cx), float(cy)

    def alpha(self, t: int) -> np.ndarray:
        """(H, W) float32 in [0, 1]: the true matte at frame t (soft, fur-like boundary)."""
        h, w = self.height, self.width
        cx, cy = self.center(t)
        r = self.radius * min(h, w)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        dx, dy = xx - cx, yy - cy
        dist = np.sqrt(dx * dx + dy * dy)
        theta = np.arctan2(dy, dx) + (0.0 if self.static else 0.03 * t)
        # fur: strand-like angular modulation of the boundary
        strands = 0.5 + 0.5 * np.sin(theta * 57.0) * np.sin(theta * 13.0 + 1.3)
        edge = r * (1.0 + self.fur * (strands - 0.5))
        soft = max(1.5, self.fur * r * 0.5)
        a = np.clip((edge - dist) / soft + 0.5, 0.0, 1.0)
        return a.astype(np.float32)

    def foreground(self, t: int) -> np.ndarray:
        """(H, W, 3) float32 foreground colour (warm, textured)."""
        h, w = self.height, self.width
        if not hasattr(self, "_fg_cache"):
            n = self._noise(h * 2, w * 2, 4, self.seed + 7)
            object.__setattr__(self, "_fg_cache", n)
        cx, cy = self.center(t)
        # texture coordinates are relative to the blob centre, so the texture travels with the object
        # (the cache is 2H x 2W; centre (cx, cy) maps to cache pixel (H, W))
        x0 = int(np.clip(round(w - cx), 0, w))
        y0 = int(np.clip(round(h - cy), 0, h))
        n = self._fg_cache[y0 : y0 + h, x0 : x0 + w]
        return np.stack([0.85 - 0.3 * n, 0.55 - 0.25 * n, 0.2 + 0.2 * n], axis=-1).astype(np.float32)

    def rgb(self, t: int) -> np.ndarray:
        """(H, W, 3) uint8 composite at frame t."""
        a = self.alpha(t)[..., None]
        img = a * self.foreground(t) + (1 - a) * self.background(t)
        return np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)

    def mask(self, t: int) -> np.ndarray:
        """(H, W) uint8 binary mask {0, 255} (what an artist draws on a keyframe)."""
        return np.where(self.alpha(t) >= 0.5, 255, 0).astype(np.uint8)


def write_clip(
    path: str | Path,
    scene: Scene,
    *,
    codec: str = "libx264",
    rate: int = 24,
    pix_fmt: str | None = None,
    pts: Sequence[int] | None = None,
    time_base: Fraction | None = None,
    bframes: int = 0,
    audio: bool = False,
    options: dict | None = None,
) -> Path:
    """Encode ``scene`` with PyAV. ``pts`` (in ``time_base`` units) gives variable frame rate timing."""
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        vs = out.add_stream(codec, rate=rate)
        vs.width, vs.height = scene.width, scene.height
        vs.pix_fmt = pix_fmt or ("yuv420p" if codec in ("libx264", "libx265", "mpeg4") else vs.pix_fmt)
        if pts is not None and time_base is None:
            time_base = Fraction(1, 1000)
        if time_base is not None:
            # the encoder's time base too (set before the codec opens): otherwise libx264/mpeg4 reject the
            # pts and ffv1 rounds them to 1/rate
            vs.time_base = time_base
            vs.codec_context.time_base = time_base
        opts = dict(options or {})
        if codec == "libx264":
            opts.setdefault("preset", "ultrafast" if not bframes else "fast")
            opts.setdefault("crf", "12")
            opts["bf"] = str(bframes)
        vs.options = opts
        astream = None
        if audio:
            astream = out.add_stream("aac", rate=48000)
            astream.layout = "mono"
        for t in range(scene.frames):
            vf = av.VideoFrame.from_ndarray(scene.rgb(t), format="rgb24")
            if pts is not None:
                vf.pts = int(pts[t])
                vf.time_base = time_base
            for packet in vs.encode(vf):
                out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
        if astream is not None:
            sr = 48000
            n = int(sr * scene.frames / rate)
            tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(n) / sr)).astype(np.float32)
            step = 1024
            for i in range(0, n, step):
                chunk = tone[i : i + step]
                af = av.AudioFrame.from_ndarray(chunk[None, :], format="fltp", layout="mono")
                af.sample_rate = sr
                af.pts = i
                for packet in astream.encode(af):
                    out.mux(packet)
            for packet in astream.encode():
                out.mux(packet)
    return path


def write_sequence(folder: str | Path, scene: Scene, *, pattern: str = "%06d.png", start: int = 0) -> Path:
    """Write ``scene`` as an image sequence (PNG/JPEG by extension) into ``folder``."""
    import cv2

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for t in range(scene.frames):
        cv2.imwrite(str(folder / (pattern % (start + t))), cv2.cvtColor(scene.rgb(t), cv2.COLOR_RGB2BGR))
    return folder


def write_masks(
    folder: str | Path, scene: Scene, frames: Sequence[int], *, kind: str = "mask", name: str = "{:06d}.png"
) -> Path:
    """Write keyframe masks for ``frames``: kind "mask" (binary), "alpha" (soft GT) or "trimap"."""
    import cv2

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for t in frames:
        if kind == "mask":
            img = scene.mask(t)
        elif kind == "alpha":
            img = np.clip(scene.alpha(t) * 255 + 0.5, 0, 255).astype(np.uint8)
        elif kind == "trimap":
            a = scene.alpha(t)
            img = np.full(a.shape, 128, np.uint8)
            img[a <= 0.0] = 0
            img[a >= 1.0] = 255
        else:
            raise ValueError(kind)
        cv2.imwrite(str(folder / name.format(t)), img)
    return folder


def iter_gt(scene: Scene) -> Iterator[np.ndarray]:
    for t in range(scene.frames):
        yield scene.alpha(t)
