"""Dense optical flow (OpenCV DIS) and what the chain derives from it: the working resolution, the
forward-backward consistency check and the subject's own motion.

Conventions: grey frames (h, w) uint8 at the working resolution; a flow a→b is (h, w, 2) float32 in working
px (x, y) on a's grid, a(x) ≈ b(x + flow(x)); consistency maps (h, w) float32 in [0, 1].
"""

from __future__ import annotations

import cv2
import numpy as np

from vmatte.pipeline.threads import Worker

PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}
FB_RELATIVE = 0.01  # forward-backward tolerance grows with flow magnitude² (Sundaram et al. 2010)
MIN_FLOW_SIDE = 16  # DIS needs a few patches: the smoother gives smaller working images zero flow
_FG_WINDOWS = (9, 33, 129)  # working px: box windows of the subject-motion normalised convolution
_FG_SUPPORT = 0.02  # minimum foreground fraction in a window for its mean motion to count


def create_dis(preset: str):
    """A new OpenCV DIS instance for ``preset`` (one instance must not be used by two threads at once)."""
    return cv2.DISOpticalFlow_create(PRESETS[preset])


def work_shape(width: int, height: int, long_side: int) -> tuple[int, int]:
    """(ww, wh): the working resolution of a width x height frame, ``long_side`` px on its long side at most
    (never upscaled; at least 8 px a side when downscaled)."""
    s = min(1.0, long_side / max(width, height))
    if s >= 1.0:
        return int(width), int(height)
    return max(8, round(width * s)), max(8, round(height * s))


def to_gray(rgb_u8: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) uint8 RGB → (wh, ww) uint8 luma at ``shape`` = (ww, wh) (area-averaged when smaller)."""
    g = cv2.cvtColor(np.ascontiguousarray(rgb_u8), cv2.COLOR_RGB2GRAY)
    if (g.shape[1], g.shape[0]) != tuple(shape):
        g = cv2.resize(g, tuple(shape), interpolation=cv2.INTER_AREA)
    return g


def fb_terms(f: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Forward-backward check terms of flow samples ``f`` (..., 2) and the opposite flow ``b`` (..., 2)
    sampled where f lands: (|f + b|², |f|² + |b|²), float32 px². The residual is ~0 where the pair agrees;
    the tolerance is a constant plus ``FB_RELATIVE`` times the magnitude term (Sundaram et al. 2010)."""
    # explicit channel sums: numpy reductions over a length-2 last axis are several times slower
    d = f + b
    err = d[..., 0] * d[..., 0] + d[..., 1] * d[..., 1]
    mag = f[..., 0] * f[..., 0] + f[..., 1] * f[..., 1] + b[..., 0] * b[..., 0] + b[..., 1] * b[..., 1]
    return err, mag


class FlowPair:
    """Dense DIS flow between two gray frames of one size, both ways, with forward-backward consistency.

    Flows are (H, W, 2) float32 in px (x, y); consistency maps (H, W) float32 in [0, 1] (1 = the round trip
    returns within tolerance, 0 = occluded / unreliable / leaves the frame).
    """

    def __init__(self, preset: str, width: int, height: int) -> None:
        self.preset = preset
        self.dis = create_dis(preset)
        self.dis_back = create_dis(preset)  # b→a, in the helper thread
        self.helper = Worker("flow-back")
        self.grid = np.dstack(
            np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
        )
        self.size = (width, height)

    def warp(self, img: np.ndarray, flow: np.ndarray) -> np.ndarray:
        """Sample ``img`` (defined on the target of ``flow``) at x + flow(x): result on flow's own grid."""
        return cv2.remap(img, self.grid + flow, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    def consistency(self, flow: np.ndarray, back: np.ndarray) -> np.ndarray:
        """Soft fb-consistency of ``flow`` (a→b, on a's grid) given ``back`` (b→a, on b's grid)."""
        bw = self.warp(back, flow)
        err, mag = fb_terms(flow, bw)
        tol = FB_RELATIVE * mag + 0.5  # Sundaram's threshold (px^2); soft ramp up to 4x it
        c = np.clip((4.0 * tol - err) / (3.0 * tol), 0.0, 1.0)
        target = self.grid + flow
        w, h = self.size
        outside = (
            (target[..., 0] < 0) | (target[..., 0] > w - 1) | (target[..., 1] < 0) | (target[..., 1] > h - 1)
        )
        c[outside] = 0.0
        # unreliable zones bleed a little: flow errors spread beyond the exact pixels that fail the check
        return cv2.erode(c, np.ones((3, 3), np.uint8))

    def layer_flow(self, p_est: np.ndarray, flow: np.ndarray, c: np.ndarray, radius: float) -> np.ndarray:
        """The foreground's own motion, extended past its boundary (float32 (H, W, 2) px).

        DIS flow is smooth across motion boundaries, so at the edge of a moving object it blends the object's
        motion with the background's and a warped mask edge lags behind. The object is the front layer: a
        pixel is foreground at the target exactly when its source *under the object's motion* was foreground.
        So the flow near and outside the estimated mask ``p_est`` (target grid) is replaced by a normalised
        convolution of the flow over the mask interior (eroded by ``radius`` px, weighted by consistency
        ``c``); deep inside the mask the raw flow is kept (limbs move on their own). (A Gaussian variant of
        :func:`subject_motion`, for propagation: it weights by consistency and needs no definite trimap.)"""
        m = (p_est > 0.5).astype(np.uint8)
        k = max(1, round(radius))
        interior = cv2.erode(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1)))
        if interior.sum() < 16:
            return flow
        w = interior.astype(np.float32) * c
        sigma = 2.0 * k
        den = cv2.GaussianBlur(w, (0, 0), sigma)
        num = cv2.GaussianBlur(flow * w[..., None], (0, 0), sigma)
        ok = den > 1e-3
        ext = np.where(ok[..., None], num / np.maximum(den, 1e-6)[..., None], flow)
        return np.where(interior[..., None] > 0, flow, ext).astype(np.float32)

    def warp_layer(self, p: np.ndarray, r: np.ndarray, flow: np.ndarray, c: np.ndarray, radius: float):
        """Warp probability ``p`` and reliability ``r`` (source grid) along ``flow`` (target grid) with the
        foreground-layer correction of :meth:`layer_flow` (radius <= 0: plain warp). Returns (p, r) float32."""
        p1 = self.warp(p, flow)
        if radius > 0:
            flow = self.layer_flow(p1, flow, c, radius)
            p1 = self.warp(p, flow)
        return p1, self.warp(r, flow)

    def flows(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Gray uint8 frames a, b → (flow a→b on a, flow b→a on b)."""
        # the two directions are independent: the backward one runs in a second thread (OpenCV releases the
        # GIL), on its own DIS instance (one instance must not be used by two threads at once)
        join = self._submit()(lambda: self.dis_back.calc(b, a, None))
        ab = self.dis.calc(a, b, None)
        return ab, join()

    def compute(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Gray uint8 frames a, b → (flow a→b on a, flow b→a on b, consistency on a, consistency on b)."""
        ab, ba = self.flows(a, b)
        join = self._submit()(lambda: self.consistency(ba, ab))
        c_ab = self.consistency(ab, ba)
        return ab, ba, c_ab, join()

    def _submit(self):
        """Where the second direction runs: the helper thread, or inline when OpenCV is capped at one thread
        (``pipeline.cpu_threads`` = 1, as in a 1-CPU Ray task): a task given one core does not run two DIS
        flows at once."""
        if cv2.getNumThreads() > 1:
            return self.helper.submit

        def inline(fn):
            value = fn()
            return lambda: value

        return inline

    def close(self) -> None:
        """End the helper thread (a later compute starts it again)."""
        self.helper.close()


def subject_motion(flow: np.ndarray, m: np.ndarray) -> np.ndarray:
    """The motion of the matte: ``flow`` (h, w, 2) float32 with pixels outside the subject given the
    subject's motion.

    Image flow is wrong inside the unknown band: band pixels mix foreground and background that move
    differently, and DIS patches there mostly follow the textured background (measured on the flicker
    benchmark: 3 px mean error in the band against 0.03 px inside the subject). Alpha belongs to the
    subject, so pixels outside the subject take a normalised convolution of the flow over the
    definite-foreground coverage ``m`` (h, w) float32 in [0, 1], at the smallest of three box windows with
    enough foreground support; pixels with no foreground nearby keep the image flow.
    """
    if not m.any():
        return flow
    out = flow.copy()
    filled = m >= 0.999  # inside the subject the image flow is the subject's motion
    weighted = flow * m[..., None]
    for k in _FG_WINDOWS:
        den = cv2.blur(m, (k, k))
        ok = den > _FG_SUPPORT
        ok &= ~filled
        if not ok.any():
            continue
        num = cv2.blur(weighted, (k, k))
        np.divide(num, np.maximum(den, _FG_SUPPORT, out=den)[..., None], out=num)
        # copy where ok, in place: numpy's where= / np.where on (h, w, 2) planes were most of the cost
        out = cv2.copyTo(num, ok.view(np.uint8), out)
        filled |= ok
        if filled.all():
            break  # larger windows would change nothing
    return out
