"""Colour work between the matte and the writers: foreground decontamination, premultiplication, composites.

Decontamination: a pixel in the soft band is ``I = a F + (1 - a) B``. Writing ``I`` as the colour of an RGBA
output bakes the old background ``B`` into the edge, which shows as a fringe (halo) once the element is put over
anything else. :func:`estimate_foreground` solves for ``F`` with pymatting's multilevel foreground estimation,
only on tiles of the soft band (plus a margin), so the cost follows the band, not the frame.

All images here are float32 in [0, 1]; (H, W, 3) colour, (H, W) alpha. Never imports torch or av at import
time (clip backgrounds import av when opened).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from vmatte.errors import ConfigError, InputError, say
from vmatte.frame import Frame
from vmatte.io.config import OutputConfig

# pixels this far outside the soft band still enter the foreground solve, so F is anchored by solid pixels
_BAND_MARGIN_PX = 16
_SOFT_LO, _SOFT_HI = 1.0 / 512, 1.0 - 1.0 / 512

NAMED_COLORS = {
    "green": (0, 177, 64),  # chroma-key green (#00b140)
    "blue": (0, 71, 187),  # chroma-key blue (#0047bb)
    "black": (0, 0, 0),
    "white": (255, 255, 255),
    "gray": (128, 128, 128),
    "grey": (128, 128, 128),
    "red": (255, 0, 0),
    "magenta": (255, 0, 255),
}


def needs_foreground(cfg: OutputConfig) -> bool:
    """True when output ``cfg`` wants decontaminated foreground colour (Frame.foreground)."""
    return bool(cfg.decontaminate) and cfg.content in ("rgba", "composite")


def soft_band_box(alpha: np.ndarray, margin: int = _BAND_MARGIN_PX) -> tuple[int, int, int, int] | None:
    """(y0, y1, x0, x1) bounding box of pixels with 0 < alpha < 1, grown by ``margin`` px; None if no band."""
    soft = (alpha > _SOFT_LO) & (alpha < _SOFT_HI)
    rows = np.flatnonzero(soft.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(soft.any(axis=0))
    h, w = alpha.shape
    return (
        max(0, int(rows[0]) - margin),
        min(h, int(rows[-1]) + 1 + margin),
        max(0, int(cols[0]) - margin),
        min(w, int(cols[-1]) + 1 + margin),
    )


def estimate_foreground(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Decontaminated foreground colour.

    Args:
        rgb: (H, W, 3) float32 in [0, 1], the observed frame (straight colour).
        alpha: (H, W) float32 in [0, 1].
    Returns:
        (H, W, 3) float32 in [0, 1]: pymatting's ``estimate_foreground_ml`` on the soft band's tiles (each run
        of 32-px tiles holding pixels with 0 < alpha < 1, solved with 8 px of context: see
        :mod:`vmatte.io.foreground`), ``rgb`` everywhere else and wherever alpha is 1 (there, the observed
        colour already is the foreground). The cost follows the band's area, not the frame's or the band's
        bounding box's.
    """
    from vmatte.io.foreground import foreground_ml

    return foreground_ml(rgb, alpha)


def decontaminate(frame: Frame) -> Frame:
    """``frame`` (with alpha) with ``foreground`` from :func:`estimate_foreground` and ``foreground_boxes``,
    the band tiles it solved (elsewhere the foreground is the frame's own colour, which writers then take
    from ``rgb`` as is)."""
    from vmatte.io.foreground import foreground_ml_boxes

    fg, boxes = foreground_ml_boxes(frame.rgb_float(), frame.alpha)
    return frame.replace(foreground=fg, foreground_boxes=boxes)


def premultiply(color: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """(H, W, 3) float32 colour x (H, W) alpha → (H, W, 3) float32 premultiplied colour."""
    return color * alpha[..., None]


def composite(fg: np.ndarray, alpha: np.ndarray, bg: np.ndarray) -> np.ndarray:
    """Straight ``fg`` (H, W, 3) over ``bg`` (H, W, 3) with ``alpha`` (H, W); all float32 in [0, 1]."""
    a = alpha[..., None]
    return fg * a + bg * (1.0 - a)


def parse_color(text: str) -> tuple[float, float, float] | None:
    """'#00ff00', '#0f0', 'green', '0,255,0' or '0.0,1.0,0.0' → RGB floats in [0, 1]; None if not a colour."""
    t = text.strip().lower()
    if t in NAMED_COLORS:
        return tuple(c / 255.0 for c in NAMED_COLORS[t])  # type: ignore[return-value]
    m = re.fullmatch(r"#?([0-9a-f]{6}|[0-9a-f]{3})", t)
    if m and (t.startswith("#") or not os.path.exists(text)):
        h = m.group(1)
        if len(h) == 3:
            h = "".join(c * 2 for c in h)
        return tuple(int(h[i : i + 2], 16) / 255.0 for i in (0, 2, 4))  # type: ignore[return-value]
    parts = [p.strip() for p in t.split(",")]
    if len(parts) == 3:
        try:
            vals = [float(p) for p in parts]
        except ValueError:
            return None
        if all(0 <= v <= 1 for v in vals) and any("." in p for p in parts):
            return tuple(vals)  # type: ignore[return-value]
        if all(0 <= v <= 255 for v in vals):
            return tuple(v / 255.0 for v in vals)  # type: ignore[return-value]
    return None


def fit_cover(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale (h, w, 3) ``img`` to cover width x height (aspect kept), centre-crop → (height, width, 3)."""
    import cv2

    h, w = img.shape[:2]
    if (w, h) == (width, height):
        return img
    s = max(width / w, height / h)
    nw, nh = max(width, round(w * s)), max(height, round(h * s))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    big = cv2.resize(img, (nw, nh), interpolation=interp)
    x0, y0 = (nw - width) // 2, (nh - height) // 2
    return np.ascontiguousarray(big[y0 : y0 + height, x0 : x0 + width])


def check_background(spec: str) -> None:
    """Refuse a composite background that is neither a colour nor an existing file (a usage error, exit 2):
    checked before any model loads."""
    if parse_color(spec) is not None or Path(spec).exists():
        return
    import difflib

    close = difflib.get_close_matches(spec.strip().lower(), NAMED_COLORS, n=1)
    guess = f"did you mean '{close[0]}'? " if close else ""
    raise ConfigError(
        say(f"--composite {spec}", f"background = {spec!r}") + ": not a colour and no such image or clip",
        hint=f"{guess}use '#rrggbb', 'r,g,b', a colour name ({', '.join(sorted(NAMED_COLORS))}), "
        "an image or a clip path",
    )


class Background:
    """What a composite goes over: a solid colour, a still image, or a clip picked frame by frame by time.

    ``at(time_s, width, height)`` → (height, width, 3) float32 in [0, 1]. For a clip, the background frame shown
    at time t is the last one whose timestamp is <= t (the one on screen at that moment); past its end the
    last frame holds. Times are seconds from each clip's own start.
    """

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self._color = parse_color(spec)
        self._image: np.ndarray | None = None
        self._sized: np.ndarray | None = None
        self._clip = None
        self._cur: tuple[float, np.ndarray] | None = None
        self._next: tuple[float, np.ndarray] | None = None
        if self._color is not None:
            return
        check_background(spec)
        p = Path(spec)
        from vmatte.io.decode import IMAGE_EXTS, _read_image

        if p.suffix.lower() in IMAGE_EXTS:
            try:
                rgb = _read_image(str(p))
            except Exception as exc:
                raise InputError(f"background '{spec}': cannot read image ({exc})") from None
            self._image = rgb.astype(np.float32) / (255.0 if rgb.dtype == np.uint8 else 65535.0)
        else:
            self._open_clip()

    def _open_clip(self) -> None:
        from vmatte.io.decode import open_clip

        try:
            clip = open_clip(self.spec)
        except InputError as exc:
            raise InputError(f"background clip {exc}") from None
        self._clip = clip
        self._frames = clip.frames()
        self._t0: float | None = None
        self._cur = None
        self._next = self._pull()

    def _pull(self) -> tuple[float, np.ndarray] | None:
        f = next(self._frames, None)
        if f is None:
            return None
        t = f.time_s if f.time_s is not None else float(f.index)
        if self._t0 is None:
            self._t0 = t
        return t - self._t0, f.rgb_float()

    def _clip_at(self, t: float) -> np.ndarray:
        if self._cur is not None and t < self._cur[0] - 1e-9:
            self._open_clip()  # time went backwards (a new chunk): restart the stream
        if self._cur is None:
            self._cur, self._next = self._next, self._pull()
        while self._next is not None and self._next[0] <= t + 1e-6:
            self._cur, self._next = self._next, self._pull()
        if self._cur is None:
            raise InputError(f"background clip {self.spec}: has no frames")
        return self._cur[1]

    def at(self, time_s: float, width: int, height: int) -> np.ndarray:
        if self._color is not None:
            if self._sized is None or self._sized.shape[:2] != (height, width):
                self._sized = np.empty((height, width, 3), np.float32)
                self._sized[:] = np.asarray(self._color, np.float32)
            return self._sized
        if self._image is not None:
            if self._sized is None or self._sized.shape[:2] != (height, width):
                self._sized = fit_cover(self._image, width, height)
            return self._sized
        return fit_cover(self._clip_at(time_s), width, height)

    def close(self) -> None:
        if self._clip is not None:
            self._frames.close()
