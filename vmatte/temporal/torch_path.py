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

Smoothed alpha: within :data:`PARITY_TOLERANCE` except where ``snap_saturated`` tests a neighbour sample for
being exactly 0 or 1 (a step): a sample within 1e-6 of 0 or 1 can fall on either side in the two paths (OpenCV's
bicubic of a flat 1 region is below 1, e.g. 0.99999976, at ~60 % of points; this one's may be 1.0), moving the ramp by that
candidate's weight share. Measured: 0.4 % of band pixels, max 0.016, mean 1.1e-5 on the tests' clips; max 0.054
on the 1080p clip of scripts/bench_smooth_cost.py.

Images are uploaded flat: (H*W, C) so that one ``index_select`` gathers a tap for every point. Torch is
imported by this module, which only the torch path imports.
"""

from __future__ import annotations

import numpy as np
import torch

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
