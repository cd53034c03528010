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

    def layer_flow(
        self, p_est: np.ndarray, flow: np.ndarray, c: np.ndarray, radius: float, coherence: float = 0.0
    ) -> np.ndarray:
        """:meth:`layer_motion`'s flow alone."""
        return self.layer_motion(p_est, flow, c, radius, coherence)[0]

    def layer_motion(
        self,
        p_est: np.ndarray,
        flow: np.ndarray,
        c: np.ndarray,
        radius: float,
        coherence: float = 0.0,
        trust: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The foreground's own motion, extended past its boundary (float32 (H, W, 2) px).

        DIS flow is smooth across motion boundaries, so at the edge of a moving object it blends the object's
        motion with the background's and a warped mask edge lags behind. The object is the front layer: a
        pixel is foreground at the target exactly when its source *under the object's motion* was foreground.
        So the flow near and outside the estimated mask ``p_est`` (target grid) is replaced by a normalised
        convolution of the flow over the mask interior (eroded by ``radius`` px, weighted by consistency
        ``c``, Gaussian sigma 2 x radius); deep inside the mask the raw flow is kept (limbs move on their own).

        coherence (px, 0 = off): extend only where the interior motion under that Gaussian is coherent, its
        standard deviation below this. A rigid subject (a sign, a car, a translating matte) gets its motion
        carried to its edge; next to a limb that moves unlike the torso the interior motions spread and the
        raw flow stays (extending a torso's motion onto limbs cost DAVIS every-10 IoU 0.829 -> 0.792).

        The convolution runs at 1/4 size: its Gaussian is wide (sigma 2 x radius), so nothing is lost and
        it costs a sixteenth. (A Gaussian variant of :func:`subject_motion`, for propagation: it weights by
        consistency and needs no definite trimap.)

        Returns (flow, consistency): the consistency (H, W) float32 goes with the returned flow. With ``trust``,
        where the layer's motion replaced the raw flow it is the consistency of the interior that motion
        averages: the label there is carried by the subject's motion, so a background that moves unlike it,
        or is occluded, does not make it unreliable. Elsewhere, and without ``trust``, it is ``c``."""
        m = (p_est > 0.5).astype(np.uint8)
        k = max(1.0, float(radius))
        # erosion by a disk of radius k: a distance transform, not an elliptic kernel whose cost grows with k²
        interior = (cv2.distanceTransform(m, cv2.DIST_L2, 5) > k).astype(np.uint8)
        if cv2.countNonZero(interior) < 16:
            return flow, c
        h, w = m.shape
        f = 4 if min(h, w) >= 64 and k >= 4 else 1
        wgt = cv2.multiply(interior, c, dtype=cv2.CV_32F)
        fx, fy = flow[..., 0], flow[..., 1]
        planes = [wgt, fx * wgt, fy * wgt]
        if coherence > 0:
            planes.append((fx * fx + fy * fy) * wgt)
        stack = cv2.merge(planes)
        if f > 1:
            stack = cv2.resize(stack, (max(1, w // f), max(1, h // f)), interpolation=cv2.INTER_AREA)
        stack = cv2.GaussianBlur(stack, (0, 0), 2.0 * k / f)
        # the mean motion and its spread are smooth: decided at the small size, the mean upsampled
        den = stack[..., 0]
        ok = den > 1e-3
        inv = 1.0 / np.maximum(den, 1e-6)
        mean = stack[..., 1:3] * inv[..., None]
        if coherence > 0:
            var = stack[..., 3] * inv - (mean[..., 0] * mean[..., 0] + mean[..., 1] * mean[..., 1])
            ok &= var < coherence * coherence
        if f > 1:
            mean = cv2.resize(mean, (w, h), interpolation=cv2.INTER_LINEAR)
            ok = cv2.resize(ok.view(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST).view(bool)
        c_layer = None
        if trust:
            # the interior's mean consistency under the same Gaussian (OpenCV resizes at most 4 planes)
            cover = interior.astype(np.float32)
            if f > 1:
                cover = cv2.resize(cover, (max(1, w // f), max(1, h // f)), interpolation=cv2.INTER_AREA)
            cover = cv2.GaussianBlur(cover, (0, 0), 2.0 * k / f)
            c_layer = den / np.maximum(cover, 1e-6)
            if f > 1:
                c_layer = cv2.resize(c_layer, (w, h), interpolation=cv2.INTER_LINEAR)
        # copy where extended, in place (np.where on (h, w, 2) planes costs several times more)
        use = (ok & (interior == 0)).view(np.uint8)
        out = cv2.copyTo(np.ascontiguousarray(mean, np.float32), use, flow.copy())
        if c_layer is None:
            return out, c
        return out, cv2.copyTo(
            np.ascontiguousarray(c_layer, np.float32), use, c.astype(np.float32, copy=True)
        )

    def warp_layer(
        self,
        p: np.ndarray,
        r: np.ndarray,
        flow: np.ndarray,
        c: np.ndarray,
        radius: float,
        coherence: float = 0.0,
        trust: bool = False,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Warp probability ``p`` and reliability ``r`` (source grid) along ``flow`` (target grid) with the
        foreground-layer correction of :meth:`layer_motion` (radius <= 0: plain warp). Returns (p, r, c')
        float32: c' is the consistency that goes with the flow used (``c`` unless ``trust``)."""
        p1 = self.warp(p, flow)
        if radius > 0:
            flow, c = self.layer_motion(p1, flow, c, radius, coherence, trust)
            p1 = self.warp(p, flow)
        return p1, self.warp(r, flow), c

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
