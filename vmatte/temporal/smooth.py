"""Temporal smoothing of alpha: motion-compensated, edge-aware, confidence-weighted, with a finite window.

Per-frame matting flickers because the engine has no memory: the same hair strand gets slightly different
alpha in every frame. For output frame t the smoother takes frames ``t - B .. t + L`` of the same shot
(B = ``lookbehind``, L = ``lookahead``), warps each neighbour's *raw* alpha onto frame t with dense optical
flow (OpenCV DIS at a working resolution), and replaces alpha in frame t's unknown band by a weighted mean.
Flow is needed only between consecutive frames (forward and backward, once per pair, 2 DIS flows per
frame); a neighbour k frames away is reached by chaining the k consecutive flows at the band points. Frames
that come from propagation carry the run's motion store (``Frame.motion``, :mod:`vmatte.motion.shared`):
the pair is taken from it when alpha feedback already computed it, bit-identical to computing it here.
Each neighbour pixel's weight is the product of

- a temporal Gaussian ``exp(-k² / 2 sigma_time²)`` (k = frame distance),
- forward-backward flow consistency: each step of the chain t→s, followed by that pair's backward flow,
  must return to its start (occlusions and disocclusions fail this, so uncovered background never borrows
  foreground alpha),
- a photometric check: the warped colour must match frame t's colour (catches flow that slid off a
  moving edge, fast motion and motion blur),
- an alpha range term ``exp(-Δα² / 2 sigma_alpha²)`` (edge-aware, as in a bilateral filter: a warped edge
  that disagrees strongly with this frame's edge is a registration error, not noise, and is ignored),
- zero if the warped position falls outside the frame.

Frame t itself always has weight 1, so where no neighbour is trusted alpha stays as the engine produced it.
Then ``alpha_out = alpha_t + strength · (mean - alpha_t)``, where with ``snap_saturated`` the mean is pulled to
0 (1) at pixels whose candidates mostly sit at 0 (1) (within ``SATURATED_EPS``) (clipped noise there is one-sided).

Why a window and not a recursive (IIR) filter: the output depends on at most B + L + 1 raw frames, so memory
is bounded and a render-farm chunk is exact when it is fed ``warmup_frames`` (= B) frames before its first
frame and ``lookahead`` (= L) frames after its last (outputs of those dropped). Raw, not smoothed,
neighbours are used for the same reason. Scene cuts (decided once by the propagation pass and carried on
``Frame.motion``; else by :class:`~vmatte.motion.scenecut.SceneCutDetector` here) end the window: frames of one shot never see frames of another, and pending frames are released at the cut.

Where it runs: numpy + OpenCV on the CPU by default. With ``device`` (a torch device; the runner passes the
engine's CUDA device, ``[pipeline] post_device``) the per-point work (chained landing points, alpha and colour
samples, weights, the "mean" combine) runs in torch there (:mod:`vmatte.temporal.torch_path`, imported only
then); flows and scene cuts stay on the CPU, the "median" / "mode" combines stay numpy. Both paths agree to
``torch_path.PARITY_TOLERANCE``.

Only alpha inside frame t's unknown band (trimap == 128) is changed; definite regions are left exactly as
they came. Frames without a trimap use a band derived from alpha itself (pixels with 0 < alpha < 1, dilated
by 2 px). Deterministic: same frames in → bit-identical alpha out.

No torch import here (numpy + OpenCV; the torch path's module is imported when a device is given).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from vmatte.frame import TRIMAP_FG, Frame
from vmatte.motion.config import FlowConfig
from vmatte.motion.flow import (
    FB_RELATIVE,
    MIN_FLOW_SIDE,
    create_dis,
    fb_terms,
    subject_motion,
    to_gray,
    work_shape,
)
from vmatte.motion.scenecut import SceneCutDetector
from vmatte.motion.shared import MotionStore
from vmatte.temporal.config import SmoothConfig
from vmatte.temporal.sampling import (
    SATURATED_EPS,
    Guide,
    band_points,
    sample_points,
    unknown_band,
    weighted_median,
)
from vmatte.temporal.tuning import Tuning


@dataclass(eq=False)
class _Entry:
    """One frame in the window. ``flows[p]`` is the flow from this frame to the frame at position p (only
    the consecutive positions pos ± 1), (h, w, 2) float32 in working-resolution px (x, y)."""

    frame: Frame
    pos: int  # push position since the last reset
    shot: int
    gray: np.ndarray  # (h, w) uint8 working-resolution luma, for flow
    fg: np.ndarray  # (h, w) float32 working-resolution definite-foreground coverage (eroded), in [0, 1]
    guide: Guide  # 3x3 box-blurred RGB for the photometric check, blurred where it is read
    flows: dict[int, np.ndarray] = field(default_factory=dict)
    store: MotionStore | None = None  # the run's shared motion store, when the frame came with one
    # torch path only: "alpha", "guide" (torch_path.Plane) and flows (pos → Plane), uploaded when first used
    dev: dict = field(default_factory=dict)


class TemporalSmoother:
    """Streaming smoother in the encoder idiom: ``push(frame) -> frames``, ``flush() -> frames``.

    Frames come out in the order they went in, each delayed by at most ``cfg.lookahead`` pushes (less at a
    scene cut, where pending frames are released at once). It holds at most ``lookbehind + lookahead + 1``
    frames (``max_frames_held``) plus their working-resolution flows to the adjacent frames.

    Chunked (farm) runs: feed ``warmup_frames`` frames before the chunk's first frame and ``lookahead``
    frames after its last, drop the outputs of those, and the chunk's alpha is bit-identical to a single run.
    """

    # per-pixel work only where it can change anything (band points, the guide where read); False = the
    # full-frame steps of earlier versions, bit-identical results (kept for A/B timing and the exactness test)
    crop_to_band = True

    def __init__(
        self,
        cfg: SmoothConfig | None = None,
        flow: FlowConfig | None = None,
        tuning: Tuning | None = None,
        device: str | None = None,
    ) -> None:
        """cfg: the smoothing options; flow: the motion options (DIS preset, working resolution, scene-cut
        threshold), shared with propagation; tuning: the tuned constants (benchmarks and tests vary them);
        device: None = numpy/OpenCV (bit-identical to earlier versions), else a torch device ("cuda",
        "cuda:1", "cpu" to test the torch path without a GPU) for the per-point work of the "mean" combine."""
        self.cfg = cfg or SmoothConfig()
        self.tuning = tuning or Tuning()
        self.flow_cfg = flow or FlowConfig()
        self.lookahead = int(self.cfg.lookahead)
        self.lookbehind = int(self.cfg.lookbehind)
        self.warmup_frames = self.lookbehind
        self.max_frames_held = self.lookbehind + self.lookahead + 1
        self._radius = max(self.lookahead, self.lookbehind)
        self._dis = create_dis(self.flow_cfg.preset)
        threshold = self.flow_cfg.scene_cut
        self._detector = SceneCutDetector(threshold) if threshold > 0 else None
        self._entries: deque[_Entry] = deque()
        self._device = None  # torch.device of the torch path; None = numpy
        self.device = "numpy"  # what stats() reports
        if device is not None and self.tuning.combine == "mean":  # median / mode: numpy only
            import torch

            self._device = torch.device(device)
            self.device = f"torch:{self._device}"
        self._next_emit = 0  # position of the oldest frame not yet returned
        self._pos = 0
        self._shot = 0
        # run statistics (kept across flush so the runner can read them at the end; reset() clears)
        self._stats_frames = 0
        self._stats_cuts = 0
        self._stats_seconds = 0.0
        self._stats_flows = 0
        self._stats_reused = 0
        self._stats_held_max = 0
        self._stats_band_px = 0
        self._stats_weight_sum = 0.0
        self._stats_weight_n = 0

    # -- public API -----------------------------------------------------------------------------------------
    def push(self, frame: Frame) -> list[Frame]:
        """Add the next frame (with alpha; rgb; trimap if any). Returns 0..n finished frames, in order."""
        if not self.cfg.enabled:
            self._stats_frames += 1
            return [frame]
        if frame.alpha is None:
            raise ValueError(f"frame {frame.index} reached the smoother without alpha")
        t0 = time.perf_counter()
        out: list[Frame] = []
        rgb_u8 = np.ascontiguousarray(frame.rgb_u8())  # once (a 16-bit frame converts on every call)
        motion = frame.motion
        store = motion.store if motion is not None and motion.store.cfg == self.flow_cfg else None
        if store is not None and motion.cut is not None:
            cut = motion.cut  # propagation's pass decided it, under the same threshold
        else:
            cut = self._detector.update(rgb_u8) if self._detector is not None else False
        if self._entries and frame.rgb.shape != self._entries[-1].frame.rgb.shape:
            cut = True  # a size change cannot be warped across: treat it as a new shot
        if cut and self._pos > 0:
            self._stats_cuts += 1
            self._shot += 1
            # everything pending belongs to the old shot and will get no more neighbours: release it now
            out.extend(self._emit_until(self._pos))
            self._entries.clear()
        entry = self._make_entry(frame, rgb_u8, store)
        prev = self._entries[-1] if self._entries else None
        if prev is not None and prev.shot == entry.shot and self._radius > 0:
            # consecutive pairs only (2 flows per frame): farther neighbours are reached by chaining these
            to_prev, from_prev = self._flows(entry, prev)
            entry.flows[prev.pos] = subject_motion(to_prev, entry.fg)
            prev.flows[entry.pos] = subject_motion(from_prev, prev.fg)
        self._entries.append(entry)
        self._pos += 1
        self._stats_held_max = max(self._stats_held_max, len(self._entries))
        out.extend(self._emit_until(self._pos - self.lookahead))
        self._trim()
        self._stats_seconds += time.perf_counter() - t0
        return out

    def flush(self) -> list[Frame]:
        """End of clip: return every pending frame, then reset (the object can serve the next clip)."""
        if not self.cfg.enabled:
            return []
        t0 = time.perf_counter()
        out = self._emit_until(self._pos)
        self._stats_seconds += time.perf_counter() - t0
        self._clear_state()
        return out

    def reset(self) -> None:
        """Drop all state and statistics without returning frames."""
        self._clear_state()
        self._stats_frames = self._stats_cuts = self._stats_flows = self._stats_reused = (
            self._stats_held_max
        ) = 0
        self._stats_band_px = self._stats_weight_n = 0
        self._stats_seconds = self._stats_weight_sum = 0.0

    @property
    def frames_held(self) -> int:
        """Frames currently held (pending output plus look-behind references)."""
        return len(self._entries)

    def stats(self) -> dict:
        """JSON-able run statistics since construction or :meth:`reset` (flush keeps them)."""
        n = self._stats_frames
        return {
            "enabled": bool(self.cfg.enabled),
            "frames": n,
            "scene_cuts": self._stats_cuts,
            "ms_per_frame": round(1000.0 * self._stats_seconds / n, 3) if n else 0.0,
            "seconds": round(self._stats_seconds, 4),
            "flows_computed": self._stats_flows,
            "flows_reused": self._stats_reused,  # taken from alpha feedback's computation (same pair)
            "max_frames_held": self._stats_held_max,
            "device": self.device,
            "lookahead": self.lookahead,
            "lookbehind": self.lookbehind,
            "warmup_frames": self.warmup_frames,
            "band_pixels_per_frame": round(self._stats_band_px / n, 1) if n else 0.0,
            # mean total neighbour weight per band pixel: ~0 = history distrusted, up to B + L = fully used
            "mean_neighbour_weight": round(self._stats_weight_sum / self._stats_weight_n, 4)
            if self._stats_weight_n
            else 0.0,
        }

    # -- internals ------------------------------------------------------------------------------------------
    def _clear_state(self) -> None:
        self._entries.clear()
        if self._detector is not None:
            self._detector.reset()
        self._next_emit = 0
        self._pos = 0
        self._shot = 0

    def _make_entry(self, frame: Frame, rgb: np.ndarray, store: MotionStore | None) -> _Entry:
        import cv2

        h, w = rgb.shape[:2]
        ww, wh = work_shape(w, h, self.flow_cfg.work_size)
        gray = store.gray(frame) if store is not None else to_gray(rgb, (ww, wh))
        # 3x3 box: the colour check should not trip on sensor noise; blurred only where it is read
        guide = Guide(rgb, full=not self.crop_to_band)
        if frame.trimap is not None:
            fg = (frame.trimap == TRIMAP_FG).astype(np.uint8)
        else:
            fg = (frame.alpha >= 0.99).astype(np.uint8)
        # flow within a few px of the subject's outline mixes foreground and background motion: keep only
        # the interior as the source of the subject's motion
        erode_px = max(1, round(2 / min(1.0, ww / w)))
        fg = cv2.erode(fg, np.ones((2 * erode_px + 1, 2 * erode_px + 1), np.uint8))
        fg = fg.astype(np.float32)
        if (ww, wh) != (w, h):
            fg = cv2.resize(fg, (ww, wh), interpolation=cv2.INTER_AREA)
        return _Entry(frame=frame, pos=self._pos, shot=self._shot, gray=gray, guide=guide, fg=fg, store=store)

    def _flows(self, a: _Entry, b: _Entry) -> tuple[np.ndarray, np.ndarray]:
        """Image flows a → b and b → a: from the run's motion store when both frames came with it (alpha
        feedback may have computed this pair already), else computed here (:meth:`_flow`)."""
        if a.store is not None and a.store is b.store and min(a.gray.shape) >= MIN_FLOW_SIDE:
            ab, ba, reused = a.store.flows(a.frame.index, a.gray, b.frame.index, b.gray)
            if reused:
                self._stats_reused += 2
            else:
                self._stats_flows += 2
            return ab, ba
        return self._flow(a, b), self._flow(b, a)

    def _flow(self, a: _Entry, b: _Entry) -> np.ndarray:
        """Image flow a → b (DIS): (h, w, 2) float32, a(x) ≈ b(x + flow(x)), working-resolution px."""
        self._stats_flows += 1
        if min(a.gray.shape) < MIN_FLOW_SIDE:
            return np.zeros((*a.gray.shape, 2), np.float32)
        return self._dis.calc(a.gray, b.gray, None)

    def _chains(self, entry: _Entry, neighbours: list[_Entry], xw, yw, sample=None):
        """Yield ``(nb, x, y, inside, fb_err2, fb_mag2)`` for each neighbour reachable by consecutive flows.

        ``sample(src, dst_pos, x, y)``: the flow src → dst_pos at points (N,) → (N, 2); default the numpy
        sampler on the CPU. The torch path passes its own, with (N,) tensors for xw, yw: the steps here are
        plain arithmetic on either kind of array.

        Flow chaining: the band points (xw, yw) of frame t (working px) are carried t → t±1 → … → s, each
        step adding the consecutive flow sampled bilinearly at the displaced position, so s is reached with
        k = |s - t| flow samples shared by all neighbours on that side (no flow is computed for t → s
        itself). (x, y) is the landing point in s; ``inside`` is False where any step left the frame.
        Occlusion check: at every step the backward flow of that pair is sampled at the step's landing point
        and its residual ``f + b`` (which is ~0 where the pair is consistent, large where the point was
        occluded or disoccluded) is accumulated as a sum of squares, ``fb_err2``; an occlusion at any step
        of the chain therefore fails the check, and residuals of successive steps cannot cancel as they
        could in a single composed backward flow. ``fb_mag2`` accumulates ``|f|² + |b|²`` of the steps for
        the motion-dependent part of the tolerance.
        """
        if sample is None:

            def sample(src: _Entry, q: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
                return sample_points(src.flows[q], x, y)

        wh, ww = entry.gray.shape
        by_pos = {e.pos: e for e in self._entries if e.shot == entry.shot}
        wanted = {nb.pos for nb in neighbours}
        for step in (1, -1):
            last = max(
                (q for q in wanted if (q - entry.pos) * step > 0), key=lambda q: q * step, default=None
            )
            if last is None:
                continue
            x, y = xw, yw
            inside = xw == xw  # all True (the points are finite), an array of xw's kind
            err2 = xw * 0
            mag2 = xw * 0
            p = entry.pos
            while p != last:
                src, dst = by_pos.get(p), by_pos.get(p + step)
                if src is None or dst is None or dst.pos not in src.flows or src.pos not in dst.flows:
                    break
                f = sample(src, dst.pos, x, y)
                x = x + f[:, 0]
                y = y + f[:, 1]
                inside = inside & (x >= -0.5) & (x <= ww - 0.5) & (y >= -0.5) & (y <= wh - 0.5)
                g = sample(dst, src.pos, x, y)  # this step's backward flow at its landing point
                e, m = fb_terms(f, g)
                err2 = err2 + e
                mag2 = mag2 + m
                p += step
                if p in wanted:
                    yield dst, x, y, inside, err2, mag2  # fresh arrays each step: safe to keep

    def _emit_until(self, stop_pos: int) -> list[Frame]:
        """Smooth and return pending frames with position < stop_pos."""
        out = []
        by_pos = {e.pos: e for e in self._entries}
        while self._next_emit < stop_pos and self._next_emit in by_pos:
            out.append(self._smooth(by_pos[self._next_emit]))
            self._next_emit += 1
            self._stats_frames += 1
        return out

    def _trim(self) -> None:
        """Forget frames no pending or future frame can use (older than next_emit - lookbehind)."""
        keep_from = self._next_emit - self.lookbehind
        while self._entries and self._entries[0].pos < keep_from:
            self._entries.popleft()
        for e in self._entries:
            for p in [p for p in e.flows if p < keep_from]:
                del e.flows[p]
                e.dev.pop(p, None)

    def _smooth(self, entry: _Entry) -> Frame:
        frame = entry.frame
        cfg = self.cfg
        tn = self.tuning
        neighbours = [
            e
            for e in self._entries
            if e is not entry
            and e.shot == entry.shot
            and entry.pos - self.lookbehind <= e.pos <= entry.pos + self.lookahead
        ]
        band = unknown_band(frame)
        ys, xs = band_points(band) if self.crop_to_band else np.nonzero(band)
        self._stats_band_px += int(ys.size)
        if ys.size == 0 or not neighbours or cfg.strength == 0.0:
            return frame
        if self._device is not None:
            from vmatte.temporal import torch_path

            return torch_path.smooth_band(self, entry, neighbours, ys, xs)

        alpha = frame.alpha
        h, w = alpha.shape
        wh, ww = entry.gray.shape
        sx, sy = ww / w, wh / h
        # band pixel centres in working-resolution coordinates
        xw = ((xs.astype(np.float32) + 0.5) * sx - 0.5).astype(np.float32)
        yw = ((ys.astype(np.float32) + 0.5) * sy - 0.5).astype(np.float32)
        a_t = alpha[ys, xs].astype(np.float32)
        c_t = entry.guide.at(ys, xs)
        mean_only = tn.combine == "mean"
        num = a_t.copy()  # weighted sum for "mean": frame t itself has weight 1
        den = np.ones_like(a_t)
        vals, wgts = [a_t], [np.ones_like(a_t)]
        inv_c = np.float32(1.0 / (2.0 * 3.0 * (tn.sigma_color * 255.0) ** 2))  # 3: mean over channels
        fb_tol2 = np.float32(tn.fb_tolerance**2)
        # range tolerance per pixel: noise (sigma_alpha) plus what a sub-pixel edge displacement explains
        # (|∇alpha| x jitter_px, central differences); larger differences are motion the flow missed
        gx = 0.5 * (alpha[ys, np.minimum(xs + 1, w - 1)] - alpha[ys, np.maximum(xs - 1, 0)])
        gy = 0.5 * (alpha[np.minimum(ys + 1, h - 1), xs] - alpha[np.maximum(ys - 1, 0), xs])
        inv_a = np.float32(0.5) / (
            np.float32(tn.sigma_alpha**2) + (gx * gx + gy * gy) * np.float32(tn.jitter_px**2)
        )
        # weight of candidates at 0 / 1 (snap_saturated), within SATURATED_EPS
        lo, hi = np.float32(SATURATED_EPS), np.float32(1.0 - SATURATED_EPS)
        w_lo = (a_t <= lo).astype(np.float32)
        w_hi = (a_t >= hi).astype(np.float32)
        c_t0, c_t1, c_t2 = c_t[:, 0].copy(), c_t[:, 1].copy(), c_t[:, 2].copy()
        for nb, x2, y2, inside, fb_err2, fb_mag2 in self._chains(entry, neighbours, xw, yw):
            k = nb.pos - entry.pos
            w_time = np.float32(np.exp(-(k * k) / (2.0 * tn.sigma_time**2)))
            tol2 = fb_tol2 + np.float32(FB_RELATIVE) * fb_mag2
            # landing point in full-resolution pixel coordinates
            xf = (x2 + 0.5) * np.float32(1.0 / sx) - 0.5
            yf = (y2 + 0.5) * np.float32(1.0 / sy) - 0.5
            a_s = np.clip(sample_points(nb.frame.alpha, xf, yf, cubic=True), 0.0, 1.0)
            c_s = nb.guide.sample(xf, yf)
            d0, d1, d2 = c_t0 - c_s[:, 0], c_t1 - c_s[:, 1], c_t2 - c_s[:, 2]
            da = a_s - a_t
            e_a = da * da * inv_a
            expo = fb_err2 / (2.0 * tol2) + (d0 * d0 + d1 * d1 + d2 * d2) * inv_c + e_a
            wgt = np.exp(-expo)
            wgt *= np.where(inside, w_time, np.float32(0.0))
            if mean_only:
                num += wgt * a_s
                den += wgt
                if tn.snap_saturated:
                    w_lo += np.where(a_s <= lo, wgt, np.float32(0.0))
                    w_hi += np.where(a_s >= hi, wgt, np.float32(0.0))
            else:
                vals.append(a_s)
                wgts.append(wgt)
            self._stats_weight_sum += float(wgt.sum(dtype=np.float64))
        self._stats_weight_n += int(ys.size)
        if mean_only:
            est = num / den
            if tn.snap_saturated:
                # at a pixel whose candidates mostly sit at exactly 0 (1) the noise is one-sided (clipped), so
                # the mean keeps a bias the weighted median would not: the weighted median is 0 (1) exactly
                # when those candidates hold over half the weight; ramp from the mean (<= 1/4 of the weight)
                # to 0 (1) (>= 3/4) so that a pixel near the switch does not flicker between the two
                inv_den = np.float32(1.0) / den
                f_lo = np.clip((np.float32(0.75) - w_lo * inv_den) * np.float32(2.0), 0.0, 1.0)
                f_hi = np.clip((np.float32(0.75) - w_hi * inv_den) * np.float32(2.0), 0.0, 1.0)
                est = est * f_lo
                est = np.float32(1.0) - (np.float32(1.0) - est) * f_hi
        else:
            v = np.stack(vals, axis=1)
            wt = np.stack(wgts, axis=1)
            med = weighted_median(v, wt)
            if tn.combine == "mode":
                # mode seeking: start at the weighted median (robust to a jittered or mis-warped minority),
                # then average only the candidates that agree with it
                near = wt * np.exp(-((v - med[:, None]) ** 2) * np.float32(1.0 / (2.0 * tn.sigma_mode**2)))
                tot = near.sum(axis=1)
                est = np.where(tot > 0, (v * near).sum(axis=1) / np.maximum(tot, 1e-12), med)
            else:
                est = med
        smoothed = a_t + np.float32(cfg.strength) * (est - a_t)
        out = alpha.copy()
        out[ys, xs] = np.clip(smoothed, 0.0, 1.0)
        return frame.replace(alpha=out)
