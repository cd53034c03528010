"""Sampling helpers of the temporal smoother: points of the unknown band, float-point sampling of images and
flows (cv2.remap), the lazily blurred colour guide of the photometric check, and the weighted median.

No torch import here (numpy + OpenCV; cv2 imported inside the functions).
"""

from __future__ import annotations

import numpy as np

from vmatte.frame import TRIMAP_UNKNOWN, Frame

# snap_saturated counts a candidate as saturated within this of 0 or 1: OpenCV's bicubic of a flat 1 region
# returns 0.99999976 at most points, so an exact test missed most opaque neighbours (far below 1/255)
SATURATED_EPS = 1e-5
_REMAP_COLS = 4096  # cv2.remap needs map sides < 32767: gather N points as a (N / 4096, 4096) image


def sample_points(img: np.ndarray, x: np.ndarray, y: np.ndarray, cubic: bool = False) -> np.ndarray:
    """Samples of ``img`` (h, w) or (h, w, c) at float32 points (N,), (N,) → (N,) or (N, c) float32.

    Bilinear, or bicubic with ``cubic`` (used for alpha: bilinear resampling blurs a sharp edge by an amount
    that changes with the sub-pixel offset, which itself reads as flicker; measured on the flicker benchmark
    with exact motion, bicubic halves that error). Border replicate: callers mask out-of-frame points.
    """
    import cv2

    n = x.size
    if img.ndim == 3:
        shape_out: tuple[int, ...] = (n, img.shape[2])
    else:
        shape_out = (n,)
    if n == 0:
        return np.zeros(shape_out, np.float32)
    rows = -(-n // _REMAP_COLS)
    xy = np.empty((rows * _REMAP_COLS, 2), np.float32)  # one interleaved CV_32FC2 map
    xy[:n, 0] = x
    xy[:n, 1] = y
    xy[n:] = 0.0
    interp = cv2.INTER_CUBIC if cubic else cv2.INTER_LINEAR
    out = cv2.remap(img, xy.reshape(rows, _REMAP_COLS, 2), None, interp, borderMode=cv2.BORDER_REPLICATE)
    out = out.reshape(rows * _REMAP_COLS, -1)[:n].astype(np.float32, copy=False)
    return out.reshape(shape_out)


def weighted_median(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per-row weighted median of (N, K) values with (N, K) non-negative weights → (N,) float32.

    The lower weighted median, linearly interpolated with the next value where the cumulative weight sits
    exactly at one half (so two equal-weight candidates give their mean, not an arbitrary pick).
    """
    order = np.argsort(values, axis=1, kind="stable")
    v = np.take_along_axis(values, order, axis=1)
    w = np.take_along_axis(weights, order, axis=1)
    cum = np.cumsum(w, axis=1)
    half = 0.5 * cum[:, -1:]
    idx = np.minimum((cum < half).sum(axis=1), values.shape[1] - 1)
    rows = np.arange(values.shape[0])
    out = v[rows, idx]
    # exactly at the half-way point: average with the next candidate
    at_half = np.isclose(cum[rows, idx], half[:, 0], rtol=1e-6, atol=1e-9) & (idx + 1 < values.shape[1])
    nxt = v[rows, np.minimum(idx + 1, values.shape[1] - 1)]
    return np.where(at_half, 0.5 * (out + nxt), out).astype(np.float32)


class Guide:
    """The 3x3 box-blurred RGB of one frame (the photometric check's colour), blurred only over the region
    samples have asked for so far: (H, W, 3) uint8 in, samples float32.

    The smoother reads colour only at band points of this frame and where neighbours' band points land in it,
    so blurring the whole 1080p frame is mostly wasted. The blurred region grows to the bounding box of every
    request (one blur per growth); a 3x3 box on uint8 is exact integer arithmetic, and the region is blurred
    with a 1-px margin (or the frame's own border), so every value equals the full-frame blur bit for bit.
    """

    def __init__(self, rgb: np.ndarray, full: bool = False) -> None:
        self.rgb = rgb
        self.box = (0, 0, 0, 0)  # x0, y0, x1, y1 (exclusive) of the blurred region
        self.img = np.zeros((0, 0, 3), np.uint8)
        if full:
            self._cover(0, 0, rgb.shape[1], rgb.shape[0])

    def _cover(self, x0: int, y0: int, x1: int, y1: int) -> None:
        import cv2

        bx0, by0, bx1, by1 = self.box
        if bx1 > bx0 and bx0 <= x0 and by0 <= y0 and x1 <= bx1 and y1 <= by1:
            return
        if bx1 > bx0:  # grow to the union: the next request usually overlaps
            x0, y0, x1, y1 = min(x0, bx0), min(y0, by0), max(x1, bx1), max(y1, by1)
        h, w = self.rgb.shape[:2]
        mx0, my0, mx1, my1 = max(0, x0 - 1), max(0, y0 - 1), min(w, x1 + 1), min(h, y1 + 1)
        blurred = cv2.blur(np.ascontiguousarray(self.rgb[my0:my1, mx0:mx1]), (3, 3))
        self.img = blurred[y0 - my0 : y0 - my0 + (y1 - y0), x0 - mx0 : x0 - mx0 + (x1 - x0)]
        self.box = (x0, y0, x1, y1)

    def at(self, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
        """Guide colour at integer pixels (N,), (N,) inside the frame → (N, 3) float32."""
        if ys.size == 0:
            return np.zeros((0, 3), np.float32)
        self._cover(int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
        x0, y0 = self.box[:2]
        return self.img[ys - y0, xs - x0].astype(np.float32)

    def sample(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Bilinear guide colour at float32 points (N,), (N,) (border replicate) → (N, 3) float32, equal to
        :func:`sample_points` on the full-frame blur: the region covers both taps of every point (clamped to the
        frame, where replicate picks the same edge pixel), and shifting by whole pixels keeps the fractions."""
        if x.size == 0:
            return np.zeros((0, 3), np.float32)
        h, w = self.rgb.shape[:2]
        lo_x = int(np.clip(np.floor(x.min()), 0, w - 1))
        hi_x = int(np.clip(np.floor(x.max()) + 1, 0, w - 1))
        lo_y = int(np.clip(np.floor(y.min()), 0, h - 1))
        hi_y = int(np.clip(np.floor(y.max()) + 1, 0, h - 1))
        self._cover(lo_x, lo_y, hi_x + 1, hi_y + 1)
        x0, y0, x1, y1 = self.box
        if (x0, y0, x1, y1) == (0, 0, w, h):
            return sample_points(self.img, x, y)
        # a point beyond a frame edge makes the region reach that edge, so replicate there is the frame's
        return sample_points(self.img, x - np.float32(x0), y - np.float32(y0))


def band_points(band: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ys, xs) int32 of the True pixels of ``band`` (H, W) bool, row-major (the order of np.nonzero):
    cv2.findNonZero scans the mask several times faster than np.nonzero at 1080p."""
    import cv2

    pts = cv2.findNonZero(band.view(np.uint8))
    if pts is None:
        return np.zeros(0, np.int32), np.zeros(0, np.int32)
    pts = pts.reshape(-1, 2)
    return np.ascontiguousarray(pts[:, 1]), np.ascontiguousarray(pts[:, 0])


def unknown_band(frame: Frame) -> np.ndarray:
    """(H, W) bool: the pixels the smoother may change in ``frame`` (trimap unknown, or derived from alpha)."""
    if frame.trimap is not None:
        return frame.trimap == TRIMAP_UNKNOWN
    import cv2

    soft = ((frame.alpha > 0.0) & (frame.alpha < 1.0)).astype(np.uint8)
    return cv2.dilate(soft, np.ones((5, 5), np.uint8)).astype(bool)
