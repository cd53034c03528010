"""The temporal smoother's per-point work in torch, on any torch device (CUDA when the engine runs there).

What runs here, per output frame: the band points' chained landing points in each neighbour (sampling the
consecutive DIS flows, which are still computed by OpenCV on the CPU and uploaded once per pair), the samples
of neighbour alpha (bicubic) and guide colour (bilinear) there, the weights and the "mean" combine with
``snap_saturated``. The "median" and "mode" combines are not here: the smoother uses its numpy path for them
(a per-row weighted median is a sort plus a scan that the tuned default does not need).

Parity with the numpy/OpenCV path (:mod:`vmatte.temporal.sampling`, OpenCV 5 ``cv2.remap``): the samplers
gather the taps themselves instead of calling ``grid_sample`` (whose normalised coordinates cost ~1e-4 px at
1080p) and reproduce remap's arithmetic: taps at floor(x) .. clamped to the frame (BORDER_REPLICATE), bilinear
as fused multiply-add lerps (emulated in float64, so the result is rounded once as an FMA rounds it), uint8
images rounded to nearest, 2-channel images (flows) on remap's older 1/32-px grid, bicubic with the A = -0.75
kernel. Measured against the numpy path (OpenCV 5.1): bilinear flow and guide samples equal bit for bit,
bicubic alpha within 1e-6 (OpenCV 5's cubic weights are not the textbook float32 formula, and no other
order or FMA variant tried matched them exactly).

Smoothed alpha: within :data:`PARITY_TOLERANCE`, with ``snap_saturated`` on or off. That step counts a sample
as saturated within ``SATURATED_EPS`` (1e-5) of 0 or 1, far from the samplers' last-bit differences (with an
exact test, OpenCV's bicubic of a flat 1, 0.99999976, and this one's 1.0 fell on either side: 0.4 % of band
pixels differed, by up to 0.054). Measured with the tolerance: max 3.0e-7 on the tests' clips.

Images are uploaded flat: (H*W, C) so that one ``index_select`` gathers a tap for every point. Torch is
imported by this module, which only the torch path imports.
"""

from __future__ import annotations

import numpy as np
import torch

from vmatte.frame import Frame
from vmatte.motion.flow import FB_RELATIVE
from vmatte.temporal.sampling import SATURATED_EPS

# max |torch - numpy| of smoothed alpha (in [0, 1]) away from the snap_saturated step (see above), measured
# 3.6e-7 on the parity tests' clips: bicubic weights (~1e-6 per sample) and exp() differ in the last bits
PARITY_TOLERANCE = 1e-6


class Plane:
    """One image on the device, flat for gathering: ``data`` (H*W, C) (float32 alpha or flow, uint8 colour)."""

    __slots__ = ("data", "h", "w")

    def __init__(self, data: torch.Tensor, h: int, w: int) -> None:
        self.data = data
        self.h = h
        self.w = w

    @classmethod
    def upload(cls, img: np.ndarray, device: torch.device) -> Plane:
        """(H, W) or (H, W, C) array → Plane on ``device`` (dtype kept)."""
        h, w = img.shape[:2]
        t = torch.from_numpy(np.ascontiguousarray(img)).to(device)
        return cls(t.reshape(h * w, -1), h, w)

    def at(self, ys: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
        """Values at integer pixels (N,), (N,) int64 inside the frame → (N, C), the plane's dtype."""
        return self.data.index_select(0, ys * self.w + xs)

    def _taps(self, x: torch.Tensor, y: torch.Tensor, offsets: tuple[int, ...]):
        """Integer tap columns / rows (clamped: BORDER_REPLICATE) and the fractions of float32 points."""
        fx, fy = torch.floor(x), torch.floor(y)
        ax, ay = x - fx, y - fy  # exact in float32 (|x| < 2^23)
        ix, iy = fx.to(torch.int64), fy.to(torch.int64)
        cols = [(ix + o).clamp_(0, self.w - 1) for o in offsets]
        rows = [(iy + o).clamp_(0, self.h - 1) * self.w for o in offsets]
        return cols, rows, ax, ay

    def bilinear(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Bilinear samples at float32 points (N,), (N,) → (N, C) float32, as cv2.remap(INTER_LINEAR,
        BORDER_REPLICATE) computes them for this plane's channel count and dtype (bit for bit)."""
        if self.data.shape[1] == 2:
            return self._bilinear_fixed(x, y)
        (c0, c1), (r0, r1), ax, ay = self._taps(x, y, (0, 1))
        d = self.data
        p00, p01 = d.index_select(0, r0 + c0).float(), d.index_select(0, r0 + c1).float()
        p10, p11 = d.index_select(0, r1 + c0).float(), d.index_select(0, r1 + c1).float()
        ax, ay = ax[:, None], ay[:, None]
        out = _lerp(_lerp(p00, p01, ax), _lerp(p10, p11, ax), ay)
        if self.data.dtype == torch.uint8:
            out = torch.round(out)  # remap rounds 8-bit results to nearest (ties to even, never hit here)
        return out

    def _bilinear_fixed(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """OpenCV 5 remaps 1-, 3- and 4-channel images with the exact fractions (:meth:`bilinear`) but
        2-channel ones (flows) still the old way: points rounded to 1/32 px, float table weights
        (1 - fy)(1 - fx), (1 - fy) fx, fy (1 - fx), fy fx summed in that order."""
        qx = torch.round(x * 32.0).to(torch.int64)  # x 32 is exact; round half to even as cvRound
        qy = torch.round(y * 32.0).to(torch.int64)
        fx = (qx & 31).float() * (1.0 / 32.0)
        fy = (qy & 31).float() * (1.0 / 32.0)
        ix, iy = qx >> 5, qy >> 5  # floor division for negatives too
        c0, c1 = ix.clamp(0, self.w - 1), (ix + 1).clamp(0, self.w - 1)
        r0, r1 = iy.clamp(0, self.h - 1) * self.w, (iy + 1).clamp(0, self.h - 1) * self.w
        gx, gy = (1.0 - fx)[:, None], (1.0 - fy)[:, None]
        fx, fy = fx[:, None], fy[:, None]
        d = self.data
        return (
            d.index_select(0, r0 + c0) * (gy * gx)
            + d.index_select(0, r0 + c1) * (gy * fx)
            + d.index_select(0, r1 + c0) * (fy * gx)
            + d.index_select(0, r1 + c1) * (fy * fx)
        )

    def bicubic(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Bicubic samples (A = -0.75, as cv2.INTER_CUBIC) of a float (H*W, 1) plane at float32 points (N,),
        (N,), BORDER_REPLICATE → (N,) float32 (not clipped: the kernel overshoots at an edge)."""
        cols, rows, ax, ay = self._taps(x, y, (-1, 0, 1, 2))
        wx, wy = _cubic_coeffs(ax), _cubic_coeffs(ay)
        d = self.data[:, 0]
        out = None
        for r, cy in zip(rows, wy):
            row = None
            for c, cx in zip(cols, wx):
                term = d.index_select(0, r + c) * cx
                row = term if row is None else row + term
            out = row * cy if out is None else out + row * cy
        return out


def _lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """a + t (b - a) with one rounding of the product-sum, as remap's fused multiply-add computes it: float32
    operands, (b - a) rounded to float32 first, the FMA emulated in float64 (the product is exact there)."""
    return (t.double() * (b - a).double() + a.double()).float()


def _cubic_coeffs(t: torch.Tensor) -> list[torch.Tensor]:
    """The four A = -0.75 cubic convolution weights of taps -1, 0, 1, 2 at fractions t (N,) float32 in [0, 1)."""
    a = -0.75
    t1 = t + 1.0
    u = 1.0 - t
    c0 = ((a * t1 - 5.0 * a) * t1 + 8.0 * a) * t1 - 4.0 * a
    c1 = ((a + 2.0) * t - (a + 3.0)) * t * t + 1.0
    c2 = ((a + 2.0) * u - (a + 3.0)) * u * u + 1.0
    return [c0, c1, c2, 1.0 - c0 - c1 - c2]


def blurred_guide(rgb: np.ndarray, device: torch.device) -> Plane:
    """The photometric check's colour on the device: 3x3 box blur of (H, W, 3) uint8 RGB with reflect-101
    borders, rounded to uint8, equal to cv2.blur (the integer sum / 9 is never within float error of .5)."""
    import torch.nn.functional as F

    h, w = rgb.shape[:2]
    if min(h, w) < 2:  # reflect padding needs 2 px; such frames have no band worth a kernel launch
        import cv2

        return Plane.upload(cv2.blur(np.ascontiguousarray(rgb), (3, 3)), device)
    t = torch.from_numpy(np.ascontiguousarray(rgb)).to(device).permute(2, 0, 1)[None].float()
    t = F.avg_pool2d(F.pad(t, (1, 1, 1, 1), mode="reflect"), 3, stride=1)
    t = torch.round(t).to(torch.uint8)[0].permute(1, 2, 0)
    return Plane(t.reshape(h * w, 3), h, w)


# -- the smoother's per-point steps (TemporalSmoother._smooth), op for op; sm is the TemporalSmoother, entries its _Entry


def planes(sm, e):
    """Frame ``e``'s alpha (H*W, 1) float32 and blurred guide (H*W, 3) uint8 on the device (uploaded once)."""
    if "alpha" not in e.dev:
        e.dev["alpha"] = Plane.upload(np.asarray(e.frame.alpha, np.float32), sm._device)
        e.dev["guide"] = blurred_guide(e.guide.rgb, sm._device)  # the whole frame: cheap on a GPU
    return e.dev["alpha"], e.dev["guide"]


def flow_plane(sm, src, dst_pos: int) -> Plane:
    """Flow src → dst_pos (h*w, 2) float32 on the device, uploaded once per pair (dropped by _trim)."""
    plane = src.dev.get(dst_pos)
    if plane is None:
        plane = src.dev[dst_pos] = Plane.upload(src.flows[dst_pos], sm._device)
    return plane


def chains(sm, entry, neighbours: list, xw: torch.Tensor, yw: torch.Tensor):
    """:meth:`TemporalSmoother._chains` on the device: same yields, (N,) torch tensors (x, y float32, inside
    bool), the flows sampled from their uploaded planes."""
    return sm._chains(entry, neighbours, xw, yw, lambda src, q, x, y: flow_plane(sm, src, q).bilinear(x, y))


def smooth_band(sm, entry, neighbours: list, ys: np.ndarray, xs: np.ndarray) -> Frame:
    """:meth:`TemporalSmoother._smooth` for the "mean" combine on the device; band points ys, xs (N,) int from the CPU, the
    smoothed values (N,) float32 come back. Constants are float32 values, as in the numpy steps."""
    f32 = np.float32
    frame = entry.frame
    tn = sm.tuning
    dev = sm._device
    alpha = frame.alpha
    h, w = alpha.shape
    wh, ww = entry.gray.shape
    sx, sy = ww / w, wh / h
    # band pixel centres in working px, computed as the numpy path does (then uploaded)
    xw = torch.from_numpy(((xs.astype(f32) + 0.5) * sx - 0.5).astype(f32)).to(dev)
    yw = torch.from_numpy(((ys.astype(f32) + 0.5) * sy - 0.5).astype(f32)).to(dev)
    ty = torch.from_numpy(ys.astype(np.int64)).to(dev)
    tx = torch.from_numpy(xs.astype(np.int64)).to(dev)
    a_plane, g_plane = planes(sm, entry)
    a_t = a_plane.at(ty, tx)[:, 0]
    c_t = g_plane.at(ty, tx).float()
    gx = 0.5 * (a_plane.at(ty, (tx + 1).clamp(max=w - 1))[:, 0] - a_plane.at(ty, (tx - 1).clamp(min=0))[:, 0])
    gy = 0.5 * (a_plane.at((ty + 1).clamp(max=h - 1), tx)[:, 0] - a_plane.at((ty - 1).clamp(min=0), tx)[:, 0])
    inv_a = 0.5 / (float(f32(tn.sigma_alpha**2)) + (gx * gx + gy * gy) * float(f32(tn.jitter_px**2)))
    inv_c = float(f32(1.0 / (2.0 * 3.0 * (tn.sigma_color * 255.0) ** 2)))
    fb_tol2 = float(f32(tn.fb_tolerance**2))
    fb_rel = float(f32(FB_RELATIVE))
    inv_sx, inv_sy = float(f32(1.0 / sx)), float(f32(1.0 / sy))
    num = a_t.clone()
    den = torch.ones_like(a_t)
    lo, hi = float(np.float32(SATURATED_EPS)), float(np.float32(1.0 - SATURATED_EPS))
    w_lo = (a_t <= lo).float()
    w_hi = (a_t >= hi).float()
    c_t0, c_t1, c_t2 = c_t[:, 0], c_t[:, 1], c_t[:, 2]
    w_sum = torch.zeros((), dtype=torch.float64, device=dev)
    for nb, x2, y2, inside, fb_err2, fb_mag2 in chains(sm, entry, neighbours, xw, yw):
        k = nb.pos - entry.pos
        w_time = float(f32(np.exp(-(k * k) / (2.0 * tn.sigma_time**2))))
        tol2 = fb_tol2 + fb_rel * fb_mag2
        xf = (x2 + 0.5) * inv_sx - 0.5
        yf = (y2 + 0.5) * inv_sy - 0.5
        nb_alpha, nb_guide = planes(sm, nb)
        a_s = nb_alpha.bicubic(xf, yf).clamp(0.0, 1.0)
        c_s = nb_guide.bilinear(xf, yf)
        d0, d1, d2 = c_t0 - c_s[:, 0], c_t1 - c_s[:, 1], c_t2 - c_s[:, 2]
        da = a_s - a_t
        e_a = da * da * inv_a
        expo = fb_err2 / (2.0 * tol2) + (d0 * d0 + d1 * d1 + d2 * d2) * inv_c + e_a
        wgt = torch.exp(-expo) * (inside.float() * w_time)  # 0 or w_time, as np.where
        num += wgt * a_s
        den += wgt
        if tn.snap_saturated:
            w_lo += torch.where(a_s <= lo, wgt, 0.0)
            w_hi += torch.where(a_s >= hi, wgt, 0.0)
        w_sum += wgt.sum(dtype=torch.float64)
    est = num / den
    if tn.snap_saturated:  # see _smooth for why
        inv_den = 1.0 / den
        f_lo = ((0.75 - w_lo * inv_den) * 2.0).clamp(0.0, 1.0)
        f_hi = ((0.75 - w_hi * inv_den) * 2.0).clamp(0.0, 1.0)
        est = est * f_lo
        est = 1.0 - (1.0 - est) * f_hi
    smoothed = (a_t + float(f32(sm.cfg.strength)) * (est - a_t)).clamp(0.0, 1.0)
    sm._stats_weight_sum += float(w_sum)
    sm._stats_weight_n += int(ys.size)
    out = alpha.copy()
    out[ys, xs] = smoothed.cpu().numpy()
    return frame.replace(alpha=out)
