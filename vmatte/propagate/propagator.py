"""Per-clip trimap propagation from keyframe masks: bidirectional, flow-guided, alpha-aware.

How it works (all at a bounded working resolution, ``flow.work_size`` px on the long side, see
:class:`~vmatte.motion.config.FlowConfig`):

1. :meth:`Propagator.prepare` decodes the clip once. For every pair of consecutive frames it computes dense
   OpenCV DIS flow both ways and a forward-backward consistency map (Sundaram et al. 2010: a pixel is
   reliable when following the flow there and back returns to it). Decoding and flow each run in a worker
   thread a few frames ahead of the chains, so the two cores of a small machine both work.
2. Forward chain: from each keyframe the mask travels forward as a soft *probability* (bilinear warps, so
   uncertainty shows up as values between 0 and 1) with a per-pixel *reliability* that is multiplied by the
   consistency at every step (occlusions and bad flow drop it to 0) and decays slowly with distance.
3. Backward chain: when the next keyframe arrives, the frames since the previous one (kept compactly) get the
   same from the other side, and the two are blended per pixel with weights reliability x temporal weight
   (a frame next to keyframe B follows B). Before the first / after the last keyframe one direction is used.
4. Colour: each keyframe also yields a colour model, P(foreground | RGB bin) learnt near its boundary.
   Where the flow is unreliable (fast motion, blur: the chains' reliability is low) and colour separated the
   keyframe well, the blended probability leans on the colour models of the two keyframes (Bai et al.'s
   Video SnapCut idea, with local models on a fixed grid of cells backed by one global model).
5. The blended probability is guided-filtered with the frame (edges snap to the image) and thresholded at 0.5
   for the binary mask. The trimap is definite where every direction that has weight is sure (p >= ``sure``
   or <= 1 - ``sure``); unknown where they disagree, and in a band around the mask boundary whose half-width
   runs from ``band_min`` (reliable) to ``band_max`` (unreliable flow) per pixel.
6. Per frame only a compact result is kept: the probability and the unknown map, 8 bit PNG-compressed at the
   working resolution (a few kB). :meth:`push` upsamples to the frame's full size; keyframes are emitted
   exactly as the user drew them.
7. Alpha feedback (:meth:`observe`): the most recent matted alpha (up to ``max_feedback_lag`` frames old) is
   warped to the pushed frame; where it is confidently 0 or 1, flow is consistent and it agrees with the
   propagated mask, unknown pixels become definite. It never flips a definite label, never touches keyframes
   and never narrows the band below ``band_min`` around the propagated boundary, so a matting error cannot
   feed on itself: every trimap stays anchored to the keyframe propagation, never to an earlier alpha.

Scene cuts (:class:`~vmatte.motion.scenecut.SceneCutDetector`, threshold ``flow.scene_cut``) stop both chains: a shot without a keyframe gets an
all-unknown trimap and confidence 0 (and is suggested for a keyframe).

This module never imports torch.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable

import cv2
import numpy as np

from vmatte.errors import Interrupted, MaskError, UsageError
from vmatte.frame import TRIMAP_BG, TRIMAP_FG, TRIMAP_UNKNOWN, Frame
from vmatte.io.masks import Keyframes
from vmatte.motion.config import FlowConfig
from vmatte.motion.flow import FlowPair, to_gray, work_shape
from vmatte.motion.keypoint import KeypointMotion, carry
from vmatte.motion.scenecut import SceneCutDetector
from vmatte.motion.shared import FrameMotion, MotionStore
from vmatte.pipeline.context import propagation_range
from vmatte.pipeline.threads import AnyEvent, Cancelled, Prefetch
from vmatte.propagate.config import PropagateConfig
from vmatte.propagate.segment import graph_cut, logit
from vmatte.propagate.trimap import (
    alpha_to_trimap,
    band_radius_px,
    guided_filter,
    mask_to_trimap,
    signed_distance,
    soft_edge_zone,
    thin_ridges,
    trimap_to_probability,
)

log = logging.getLogger(__name__)

_DECAY = 0.98  # reliability lost per chained step even where flow is consistent (drift grows with distance)
_PNG = [cv2.IMWRITE_PNG_COMPRESSION, 1]
_COLOUR_PRIOR = 2.0  # local colour samples it takes to outweigh a keyframe's global colour model


def _pack(a: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", a, _PNG)
    if not ok:  # pragma: no cover - OpenCV always encodes uint8 2-D arrays
        raise RuntimeError("PNG encode failed")
    return buf.tobytes()


def _unpack(b: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_UNCHANGED)


class _Scratch:
    """Per-segment arrays (frames waiting for the next keyframe): in RAM up to ``budget`` bytes, then in an
    anonymous temporary file, so a long gap between keyframes costs disk, not memory. A frame holds about
    1.9 MB at a 640x360 working size (probability, reliability, grey, flow, consistency, colour bins): the
    default 64 MB keeps ~35 frames in RAM; the rest goes through the page cache (~1 ms per frame)."""

    def __init__(self, budget: int = 64 << 20) -> None:
        self.budget = budget
        self.ram: dict[int, tuple[np.ndarray, ...]] = {}
        self.disk: dict[int, list[tuple[int, tuple, str]]] = {}
        self.used = 0
        self.file = None
        self.end = 0

    def put(self, key: int, *arrays: np.ndarray) -> None:
        size = sum(a.nbytes for a in arrays)
        if self.used + size <= self.budget:
            self.ram[key] = arrays
            self.used += size
            return
        if self.file is None:
            self.file = tempfile.TemporaryFile(prefix="vmatte-prop-")  # noqa: SIM115 - closed in clear()
        metas = []
        for a in arrays:
            a = np.ascontiguousarray(a)
            os.pwrite(self.file.fileno(), a.tobytes(), self.end)
            metas.append((self.end, a.shape, a.dtype.str))
            self.end += a.nbytes
        self.disk[key] = metas

    def pop(self, key: int) -> tuple[np.ndarray, ...]:
        if key in self.ram:
            arrays = self.ram.pop(key)
            self.used -= sum(a.nbytes for a in arrays)
            return arrays
        out = []
        for off, shape, dt in self.disk.pop(key):
            n = int(np.prod(shape)) * np.dtype(dt).itemsize
            out.append(np.frombuffer(os.pread(self.file.fileno(), n, off), dt).reshape(shape))
        return tuple(out)

    def clear(self) -> None:
        self.ram.clear()
        self.disk.clear()
        self.used = 0
        if self.file is not None:
            self.file.close()
            self.file = None
            self.end = 0


def rank_suggestions(confidence: dict[int, float], keyframes, k: int, span: int) -> list[int]:
    """Up to ``k`` frame numbers where a new keyframe mask would help most: lowest ``confidence`` (frame →
    [0, 1]) first, skipping frames ≥ 0.999, at least max(3, gap/4) frames from each other and from
    ``keyframes`` (gap = median keyframe spacing, ``span`` frames when there is one keyframe). A chunked job
    ranks the confidences of all its chunks with this, so its suggestions cover the whole clip."""
    kfs = sorted(keyframes)
    gaps = np.diff(kfs) if len(kfs) > 1 else np.array([span])
    sep = max(3, int(np.median(gaps)) // 4)
    known = set(kfs)
    picked: list[int] = []
    for i, c in sorted(confidence.items(), key=lambda kv: (kv[1], kv[0])):
        if len(picked) >= k or c >= 0.999:
            break
        if i in known or any(abs(i - j) < sep for j in (*picked, *kfs)):
            continue
        picked.append(i)
    return picked


class Propagator:
    """Trimaps for every frame of one clip from its keyframe masks. See the module docstring for the method.

    clip: an opened :class:`~vmatte.io.decode.Clip` (``clip.info`` gives size and frame count).
    keyframes: validated :class:`~vmatte.io.masks.Keyframes` of that clip.
    frame_range: (start, end) inclusive clip frames, or None for the whole clip. Propagation decodes from the
        keyframe before ``start`` to the keyframe after ``end`` so a chunk gets the same trimaps as a full run.
    cancel: a threading.Event; when set, :meth:`prepare` stops with :class:`~vmatte.errors.Interrupted`.
    max_corrupt: undecodable frames the pass skips (flow then bridges the gap) before the decoder fails.
    flow: the motion options (preset, working resolution, scene-cut threshold), shared with smoothing.
    """

    def __init__(
        self,
        clip,
        keyframes: Keyframes,
        cfg: PropagateConfig | None = None,
        frame_range: tuple[int, int] | None = None,
        cancel: threading.Event | None = None,
        max_corrupt: int = 10,
        *,
        flow: FlowConfig | None = None,
    ) -> None:
        self.clip = clip
        self.flow_cfg = flow or FlowConfig()
        self.max_corrupt = max_corrupt
        self.corrupt: list[int] = []  # undecodable frames skipped by the propagation pass (clip numbers)
        self.keyframes = keyframes
        self.cfg = cfg or PropagateConfig()
        self.cancel = cancel
        info = clip.info
        self.width, self.height, n = int(info.width), int(info.height), int(info.frame_count)
        if (keyframes.width, keyframes.height) != (self.width, self.height):
            raise MaskError(
                f"{keyframes.folder}: masks are {keyframes.width}x{keyframes.height} but the clip is {self.width}x{self.height}",
                hint="export masks at clip resolution",
            )
        start, end = frame_range if frame_range is not None else (0, n - 1)
        start, end = max(0, int(start)), min(n - 1, int(end))
        if end < start:
            raise UsageError(
                f"frames {frame_range[0]}-{frame_range[1]} are outside the clip (0-{n - 1})",
                hint="pass --frames within the clip",
            )
        self.start, self.end = start, end
        kfs = keyframes.indices
        self.lo, self.hi = propagation_range(
            start, end, kfs
        )  # the one context rule (vmatte.pipeline.context)
        self.kf_in = [k for k in kfs if self.lo <= k <= self.hi]
        self.ww, self.wh = work_shape(self.width, self.height, self.flow_cfg.work_size)
        self.r_min = band_radius_px(self.cfg.band_min, self.ww, self.wh)
        self.r_max = band_radius_px(self.cfg.band_max, self.ww, self.wh)
        self.r_soft_max = self.cfg.soft_band * min(self.ww, self.wh)
        self.r_soft_grow = band_radius_px(self.cfg.soft_grow, self.ww, self.wh)
        # interior erosion for the subject's motion that carries soft zones (see _apply_feedback)
        self.r_layer_soft = band_radius_px(0.03, self.ww, self.wh)
        self.r_in = band_radius_px(self.cfg.band_inner, self.ww, self.wh) if self.cfg.band_inner > 0 else 0.0
        self.layer_r = self.cfg.layer_radius * min(self.ww, self.wh) if self.cfg.layer_radius > 0 else 0.0
        self.results: dict[int, tuple[bytes, bytes]] = {}
        self.confidence: dict[int, float] = {}
        self.cuts: list[int] = []
        self.warnings: list[str] = []  # found while propagating (keyframes that contradict each other)
        self.timings = {
            "wait_s": 0.0,
            "flow_s": 0.0,
            "blend_s": 0.0,
            "prepare_s": 0.0,
            "push_s": 0.0,
            "feedback_s": 0.0,
        }
        self.prepared = False
        self._flow: FlowPair | None = None
        # main pass: grey frames and frame-pair flows shared by alpha feedback and the smoother (bounded)
        self.motion = MotionStore(self.flow_cfg)
        self.cuts_decided = False  # the pass decided every frame's scene cut (see push)
        self._fb: dict[str, object] = {}  # latest observed alpha for feedback
        self._luts: dict[int, tuple] = {}  # keyframe → ((global LUT, local counts or None), accuracy)
        self._cellmap: np.ndarray | None = None  # colour-model grid, made on first use (see _cells)
        self._cellgeo: tuple[int, int, int] = (0, 0, 0)
        self.feedback_pixels = 0
        self._motion = KeypointMotion() if self.cfg.keypoint_motion > 0 else None
        self._kf_gray: np.ndarray | None = None

    # ---- helpers -------------------------------------------------------------------------------------------
    def _gray(self, frame: Frame) -> np.ndarray:
        return to_gray(frame.rgb_u8(), (self.ww, self.wh))

    def _kf_prob(self, index: int) -> np.ndarray:
        """Keyframe → (wh, ww) float32 foreground probability at working resolution."""
        kind, arr = self.keyframes.get(index)
        if kind == "trimap":
            p = trimap_to_probability(arr)
        elif kind == "binary":
            p = arr.astype(np.float32) / 255.0
        else:
            p = arr
        return cv2.resize(p, (self.ww, self.wh), interpolation=cv2.INTER_AREA)

    def _check_cancel(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise Interrupted("propagation cancelled")

    # ---- the cheap pass ------------------------------------------------------------------------------------
    def prepare(self, on_progress: Callable[[int, int], None] | None = None) -> None:
        """Decode frames ``lo..hi`` at working resolution, propagate both ways, keep compact results for
        ``start..end``. on_progress(done, total) is called once per decoded frame."""
        if self.prepared:
            return
        t0 = time.perf_counter()
        self._flow = flow = FlowPair(self.flow_cfg.preset, self.ww, self.wh)
        kset = set(self.kf_in)
        scratch = _Scratch()
        total = self.hi - self.lo + 1
        next_kf = {}
        nk = None
        for k in reversed(range(self.lo, self.hi + 1)):
            if k in kset:
                nk = k
            next_kf[k] = nk
        # histogram cut detector shared with the smoother; it sees every decoded frame in order, so a chunk run
        # (which starts at the keyframe before its range) detects the same cuts as a full run
        threshold = self.flow_cfg.scene_cut
        cuts = SceneCutDetector(threshold) if threshold > 0 else None
        self.corrupt = []

        def decoded():
            # runs in a worker thread (decode, grey conversion, resize and the cut histogram release the GIL
            # or are cheap), so the next frames are ready while this thread computes flow
            for frame in self.clip.frames(
                self.lo, self.hi, max_corrupt=self.max_corrupt, corrupt=self.corrupt
            ):
                cut = cuts.update(frame.rgb_u8()) if cuts is not None else False
                yield frame.index, self._gray(frame), cut, self._bins(frame)

        def flowed(items):
            # runs in a second worker thread: DIS and the consistency maps (OpenCV releases the GIL)
            prev = None
            for t, gray, cut, bins in items:
                pair = None
                if prev is not None:
                    tf = time.perf_counter()
                    pair = flow.compute(prev, gray)
                    if cut:
                        self.cuts.append(t)
                        pair[2][:] = 0
                        pair[3][:] = 0
                    self.timings["flow_s"] += time.perf_counter() - tf
                yield t, gray, bins, pair
                prev = gray

        stop = AnyEvent(self.cancel)
        try:
            with (
                Prefetch(decoded(), depth=4, cancel=stop, name="propagate-decode") as dec,
                Prefetch(flowed(dec), depth=3, cancel=stop, name="propagate-flow") as frames,
            ):
                self._chain(frames, flow, kset, scratch, next_kf, total, on_progress)
        except Cancelled:
            raise Interrupted("propagation cancelled") from None
        finally:
            scratch.clear()
            flow.close()
        self.cuts_decided = True
        self._finish_prepare(t0)

    def _finish_prepare(self, t0: float) -> None:
        """End of a pre-pass (this one or a subclass's): every frame in range has a result, else the stream ended
        early. Corrupt frames are skipped by the decoder in both passes (and reported by the runner)."""
        skipped = set(self.corrupt)
        missing = [i for i in range(self.start, self.end + 1) if i not in self.results and i not in skipped]
        if missing:
            from vmatte.errors import InputError

            raise InputError(
                f"{self.clip.info.path}: decoding stopped before frame {missing[0]} (clip has fewer frames than its header says)",
                hint="re-export the clip or pass --frames within the decodable range",
            )
        self.timings["prepare_s"] = time.perf_counter() - t0
        self.prepared = True

    def _chain(
        self,
        frames,
        flow: FlowPair,
        kset: set[int],
        scratch: _Scratch,
        next_kf: dict,
        total: int,
        on_progress,
    ) -> None:
        """The forward chain over ``(index, gray, colour bins or None, flow pair from the previous frame or
        None)`` items; each keyframe runs the backward chain over the frames pending since the previous one
        (see the module docstring)."""
        prev_kf = None  # index of the last keyframe seen (forward chain anchor)
        pf = rf = None  # forward chain state: probability, reliability (float32 work res)
        pending: list[int] = []  # frames since prev_kf waiting for the next keyframe
        td = time.perf_counter()
        g_last = None  # the previous frame's gray (keypoint motion)
        for done, (t, gray, bins, pair) in enumerate(frames, start=1):
            self.timings["wait_s"] += time.perf_counter() - td  # waiting for the decode and flow threads
            self._check_cancel()
            if pair is not None:
                ab, ba, c_ab, c_ba = pair
                # frame t-1's record is complete now that its flow to t is known
                if pending and pending[-1] == t - 1:
                    p_prev, r_prev, g_prev, *extra = scratch.pop(t - 1)
                    scratch.put(
                        t - 1,
                        p_prev,
                        r_prev,
                        g_prev,
                        ab.astype(np.float16),
                        (c_ab * 255).astype(np.uint8),
                        *extra,
                    )
                if pf is not None:
                    p0, r0 = pf, rf
                    pf, rf = flow.warp_layer(pf, rf, ba, c_ba, self.layer_r)
                    rf = rf * c_ba * _DECAY
                    if self._motion is not None and g_last is not None:
                        g_fl = flow.warp(g_last, ba)
                        pf, rf = carry(
                            self._motion, g_last, gray, p0, r0, pf, rf, g_fl, self.cfg.keypoint_motion
                        )
            if t in kset:
                p_kf = self._kf_prob(t)
                self._check_agreement(prev_kf, t, pf, p_kf)
                if bins is not None:
                    self._luts[t] = self._color_lut(p_kf, bins)
                if pending:
                    self._kf_gray = gray
                    self._backward(pending, scratch, p_kf, prev_kf, t, flow)
                    pending = []
                    scratch.clear()
                pf, rf, prev_kf = p_kf, np.ones_like(p_kf), t
                for k in [k for k in self._luts if k != t]:  # later frames need this keyframe's model only
                    del self._luts[k]
                if self.start <= t <= self.end:
                    self._store_keyframe(t, p_kf)
            elif next_kf.get(t) is not None:
                # wait for the next keyframe: keep the forward state compactly
                p_u8 = np.zeros_like(gray) if pf is None else np.clip(pf * 255 + 0.5, 0, 255).astype(np.uint8)
                r_u8 = np.zeros_like(gray) if rf is None else np.clip(rf * 255 + 0.5, 0, 255).astype(np.uint8)
                scratch.put(t, p_u8, r_u8, gray, *([] if bins is None else [bins]))
                pending.append(t)
            elif self.start <= t <= self.end:
                tb = time.perf_counter()
                self._finalize(
                    t, gray, pf, rf, 1.0, None, None, 0.0, bins, self._lut(prev_kf, None, 1.0, 0.0)
                )
                self.timings["blend_s"] += time.perf_counter() - tb
            if on_progress is not None:
                on_progress(done, total)
            g_last = gray
            td = time.perf_counter()

    def _check_agreement(self, a: int | None, b: int, pf, p_kf: np.ndarray) -> None:
        """Warn when the object carried by flow from keyframe ``a`` does not overlap keyframe ``b``'s mask at all:
        the two masks then show different objects (or the flow lost it), and the trimaps between them blend
        two unrelated shapes. Masks that merely do not overlap (fast motion) are fine when the flow follows."""
        if a is None or pf is None or any(a < c <= b for c in self.cuts):
            return
        carried, drawn = pf >= 0.5, p_kf >= 0.5
        if not (carried.any() and drawn.any()):
            return  # the object is absent on one of them: nothing to compare
        share = float((carried & drawn).sum()) / float(drawn.sum())
        raw_overlap = bool(((self._kf_prob(a) >= 0.5) & drawn).any())
        # measured on DAVIS parkour, keyframes every 30: the same person keeps 18-78 % of the mask after the
        # forward chain; a mask from another DAVIS clip 0-1.3 %; the bundled example's blob (no raw overlap,
        # the flow follows it) 78 %, a box drawn elsewhere 7 %
        if share < 0.02 or (not raw_overlap and share < 0.10):
            self.warnings.append(
                f"keyframe masks on frames {a} and {b} do not overlap, even after following the motion between "
                f"them ({100 * share:.0f} % of frame {b}'s mask): check they show the same object (the trimaps "
                "between them will be poor)"
            )

    def _backward(self, pending: list[int], scratch: _Scratch, p_kf, a, b, flow: FlowPair) -> None:
        """Backward chain from keyframe b over ``pending`` (frames a+1..b-1, or lo..b-1 when a is None)."""
        pb, rb = p_kf, np.ones_like(p_kf)
        g_next = self._kf_gray  # gray of frame t + 1 (keypoint motion)
        for t in reversed(pending):
            self._check_cancel()
            p_u8, r_u8, gray, ab, c_ab, *extra = scratch.pop(t)
            bins = extra[0] if extra else None
            tb = time.perf_counter()
            ab = ab.astype(np.float32)
            c = c_ab.astype(np.float32) / 255.0
            p0, r0 = pb, rb
            pb, rb = flow.warp_layer(pb, rb, ab, c, self.layer_r)
            rb = rb * c * _DECAY
            if self._motion is not None and g_next is not None:
                g_fl = flow.warp(g_next, ab)
                pb, rb = carry(self._motion, g_next, gray, p0, r0, pb, rb, g_fl, self.cfg.keypoint_motion)
            g_next = gray
            if self.start <= t <= self.end:
                pf = p_u8.astype(np.float32) / 255.0
                rf = r_u8.astype(np.float32) / 255.0
                if a is None:
                    self._finalize(t, gray, None, None, 0.0, pb, rb, 1.0, bins, self._lut(None, b, 0.0, 1.0))
                else:
                    # linear temporal weights: the closer keyframe counts more (next to B, B wins 9:1 at gap 10)
                    tf_, tb_ = float(b - t), float(t - a)
                    self._finalize(t, gray, pf, rf, tf_, pb, rb, tb_, bins, self._lut(a, b, tf_, tb_))
            self.timings["blend_s"] += time.perf_counter() - tb

    def _store_keyframe(self, t: int, p_kf: np.ndarray) -> None:
        unk = np.zeros((self.wh, self.ww), np.uint8)
        p = np.clip(p_kf * 255 + 0.5, 0, 255).astype(np.uint8)
        self.results[t] = (_pack(p), _pack(unk))
        self.confidence[t] = 1.0

    def _bins(self, frame: Frame):
        """(wh, ww) uint16 colour bin of each working-resolution pixel (5 bits per RGB channel), or None."""
        if self.cfg.color_model <= 0:
            return None
        rgb = frame.rgb_u8()
        if (rgb.shape[1], rgb.shape[0]) != (self.ww, self.wh):
            rgb = cv2.resize(rgb, (self.ww, self.wh), interpolation=cv2.INTER_AREA)
        q = (rgb >> 3).astype(np.uint16)
        return (q[..., 0] << 10) | (q[..., 1] << 5) | q[..., 2]

    @staticmethod
    def _bins4(bins: np.ndarray) -> np.ndarray:
        """5-bit-per-channel colour bins → 4-bit ones (0..4095, int32): local models see fewer samples."""
        b = bins.astype(np.int32)
        return (((b >> 11) & 15) << 8) | (((b >> 6) & 15) << 4) | ((b >> 1) & 15)

    def _color_lut(self, p_kf: np.ndarray, bins: np.ndarray):
        """Colour model of a keyframe: P(foreground | colour bin) learnt near its boundary, and its accuracy
        there (how well colour alone separates this subject from its surroundings)."""
        from scipy.ndimage import uniform_filter

        m = p_kf >= 0.5
        d = signed_distance(m)
        zone = np.abs(d) <= self.cfg.color_zone * min(self.ww, self.wh)
        n = 1 << 15
        hf = np.bincount(bins[zone & m], minlength=n).astype(np.float32).reshape(32, 32, 32)
        hb = np.bincount(bins[zone & ~m], minlength=n).astype(np.float32).reshape(32, 32, 32)
        hf = uniform_filter(hf, 3, mode="nearest")
        hb = uniform_filter(hb, 3, mode="nearest")
        lut = ((hf + 1e-3) / (hf + hb + 2e-3)).reshape(-1).astype(np.float32)
        local = self._local_counts(bins, zone, m) if self.cfg.color_cell > 0 else None
        model = (lut, local)
        acc = float(((self._colour_prob(model, bins, zone) >= 0.5) == m[zone]).mean()) if zone.any() else 0.5
        return model, acc

    def _cells(self):
        """(wh, ww) int32 cell number of each working pixel, and (cell size px, cells across, cells down)."""
        if self._cellmap is None:
            size = max(16, round(self.cfg.color_cell * min(self.ww, self.wh)))
            gx, gy = -(-self.ww // size), -(-self.wh // size)
            ys, xs = np.mgrid[0 : self.wh, 0 : self.ww]
            self._cellmap = ((ys // size) * gx + (xs // size)).astype(np.int32)
            self._cellgeo = (size, gx, gy)
        return self._cellmap, self._cellgeo

    def _local_counts(self, bins, zone, m):
        """Local colour statistics of a keyframe: per cell of the grid, (foreground count, all count) per
        4-bit RGB bin (cells x 4096 float32 each), over the zone pixels of the cell widened by half a cell
        on every side (the subject moves between keyframes)."""
        _cellmap, (size, gx, gy) = self._cells()
        b4 = self._bins4(bins)
        hf = np.zeros((gx * gy, 4096), np.float32)
        nn = np.zeros((gx * gy, 4096), np.float32)
        half = size // 2
        for cy in range(gy):
            for cx in range(gx):
                y0, y1 = max(0, cy * size - half), min(self.wh, (cy + 1) * size + half)
                x0, x1 = max(0, cx * size - half), min(self.ww, (cx + 1) * size + half)
                z = zone[y0:y1, x0:x1]
                bb = b4[y0:y1, x0:x1][z]
                mm = m[y0:y1, x0:x1][z]
                c = cy * gx + cx
                hf[c] = np.bincount(bb[mm], minlength=4096)
                nn[c] = np.bincount(bb, minlength=4096)
        return hf, nn

    def _colour_prob(self, model, bins, sel):
        """P(foreground | colour) under a keyframe model at the pixels ``sel`` ((wh, ww) bool) → (n,) float32:
        the local counts of the pixel's cell, with the global 5-bit model as a prior worth _COLOUR_PRIOR
        samples. Only the selected pixels are looked up (the zone is a small part of the frame)."""
        lut, local = model
        b = bins[sel]
        pg = lut[b]
        if local is None:
            return pg
        hf, nn = local
        cellmap, _ = self._cells()
        flat = cellmap[sel] * 4096 + self._bins4(b)
        k = np.float32(_COLOUR_PRIOR)
        return (hf.reshape(-1)[flat] + k * pg) / (nn.reshape(-1)[flat] + k)

    def _lut(self, a, b, tw_a: float, tw_b: float):
        """The colour model for a frame between keyframes a and b (either may be None): their models mixed
        by the temporal weights tw_a / tw_b (counts and accuracies alike), or None without any."""
        la = self._luts.get(a) if a is not None else None
        lb = self._luts.get(b) if b is not None else None
        if la is None and lb is None:
            return None
        if la is None or tw_a <= 0:
            return lb
        if lb is None or tw_b <= 0:
            return la
        wa, wb = tw_a / (tw_a + tw_b), tw_b / (tw_a + tw_b)
        (glob_a, local_a), acc_a = la
        (glob_b, local_b), acc_b = lb
        local = None
        if local_a is not None and local_b is not None:  # (foreground counts, all counts) per cell
            local = (local_a[0] * wa + local_b[0] * wb, local_a[1] * wa + local_b[1] * wb)
        return (glob_a * wa + glob_b * wb, local), acc_a * wa + acc_b * wb

    def _inner_reach(self, d: np.ndarray) -> np.ndarray:
        """How far (px, (wh, ww) float32) the unknown band may reach into the mask given its signed distance
        ``d``: at most ``band_inner`` and at most half the local half-thickness of the part (the largest
        inside distance within band_max), never below band_min. Decide, don't defer: where the flow fails
        the band stays an edge and every limb keeps a definite core instead of turning into an all-unknown
        ghost. (The only place the propagator narrows the band inside the subject.)"""
        k = 2 * round(self.r_max) + 1
        # a square max filter (separable in OpenCV, an ellipse is not and cost ~10x)
        half = cv2.dilate(np.maximum(d, 0.0), np.ones((k, k), np.uint8))
        return np.clip(0.5 * half, self.r_min, self.r_in)

    def _zone(self, p: np.ndarray, rel: np.ndarray) -> np.ndarray:
        """(wh, ww) bool: where colour and the graph cut may decide: within ``color_zone`` of the propagated
        boundary, widened by up to ``cut_reach`` where the flow is unreliable (the subject may be far from
        where the warps put it)."""
        short = min(self.ww, self.wh)
        reach = self.cfg.color_zone * short
        d = np.abs(signed_distance(p >= 0.5))
        if self.cfg.graph_cut > 0 and self.cfg.cut_reach > 0:
            reach = reach + self.cfg.cut_reach * short * (1.0 - cv2.blur(rel, (9, 9)))
        return d <= reach

    def _cut(self, p, rel, bins, pc, lam) -> np.ndarray:
        """Graph-cut mask (wh, ww) bool from the snapped probability ``p``, the colour probability ``pc`` over
        the zone (or None) weighted by ``lam`` and the flow reliability ``rel`` (see segment.graph_cut)."""
        cfg = self.cfg
        # the cut decides where the flow is unreliable; where it is reliable the propagated label stands
        zone = self._zone(p, rel) & (rel < cfg.cut_below)
        score = logit(p)
        if pc is not None and cfg.cut_color > 0:
            has = np.isfinite(pc)
            score = score + (cfg.cut_color * lam) * np.where(has, logit(np.where(has, pc, 0.5), 0.05), 0.0)
        b = bins.astype(np.int32)
        rgb = np.dstack(((b >> 10) & 31, (b >> 5) & 31, b & 31)).astype(np.uint8) << 3
        return graph_cut(rgb, score, zone, p >= 0.5, cfg.graph_cut)

    def _finalize(self, t, gray, pf, rf, tw_f, pb, rb, tw_b, bins=None, lut=None) -> None:
        """Blend the directions for frame t and store (probability, unknown) compactly. Arrays float32 work
        res; tw_f / tw_b are the temporal weights of the forward / backward evidence (0 = absent)."""
        cfg = self.cfg
        zero = np.zeros((self.wh, self.ww), np.float32)
        if pf is None:
            pf, rf, tw_f = zero, zero, 0.0
        if pb is None:
            pb, rb, tw_b = zero, zero, 0.0
        wf, wb = rf * tw_f, rb * tw_b
        wsum = wf + wb
        tw = tw_f + tw_b
        # where neither direction is reliable fall back to the temporal-only blend (and mark it unknown below)
        p_plain = (tw_f * pf + tw_b * pb) / max(tw, 1e-6)
        p = np.where(wsum > 1e-3, (wf * pf + wb * pb) / np.maximum(wsum, 1e-6), p_plain)
        rel = wsum / max(tw, 1e-6)  # reliability in [0, 1]
        pc = None  # colour P(foreground) over the zone, when the colour models speak
        lam = 0.0
        if lut is not None and bins is not None:
            model, acc = lut
            lam = cfg.color_model * float(np.clip((acc - 0.5) / 0.4, 0.0, 1.0))
            zone = self._zone(p, rel)
            if lam > 0 and zone.any():
                # colour speaks only where the flow is unreliable, and only as much as it separated the keyframe
                wgt = lam * (1.0 - rel[zone])
                pc = np.full_like(p, np.nan)  # NaN: outside the zone, no colour evidence
                pc[zone] = self._colour_prob(model, bins, zone)
                p = p.astype(np.float32, copy=True)
                p[zone] = p[zone] * (1.0 - wgt) + pc[zone] * wgt
        if cfg.snap:
            rad = max(1, round(cfg.snap_radius * min(self.ww, self.wh)))
            p = np.clip(
                guided_filter(gray.astype(np.float32) / 255.0, p.astype(np.float32), rad, 1e-3), 0.0, 1.0
            )
        has_f = wf > 0.05 * max(tw, 1e-6)
        has_b = wb > 0.05 * max(tw, 1e-6)
        cut = cfg.graph_cut > 0 and bins is not None and (has_f | has_b).any()
        if cut:
            mask = self._cut(p, rel, bins, pc, lam)
            p = np.where(mask, np.maximum(p, 0.5), np.minimum(p, 0.499)).astype(np.float32)
        else:
            mask = p >= 0.5
        if cfg.thin_level > 0:
            # thin parts (lines, spokes) live only as low ridges of p: keep them foreground, not erased
            ridge = thin_ridges(p, cfg.thin_width, cfg.thin_level) & ~mask
            if ridge.any():
                mask = mask | ridge
                p = np.where(ridge, 1.0, p).astype(np.float32)
        d = signed_distance(mask)
        # adaptive band: per-pixel radius from band_min (reliable) to band_max (unreliable); unreliability is
        # spread a little so an occlusion next to the boundary widens the band where it meets the boundary
        u = 1.0 - rel
        both = has_f & has_b
        gap = np.where(both, np.abs(pf - pb), 0.0).astype(np.float32)
        if cfg.band_from_disagreement:
            # where the two directions put the boundary in different places the truth is likely between them
            u = np.maximum(u, gap)
        k = max(3, int(2 * self.r_min) | 1)
        u = cv2.dilate(u, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
        radius = self.r_min + (self.r_max - self.r_min) * u
        unknown = np.abs(d) <= radius
        # definite only where every direction that carries weight is sure of the same label (after a cut: a
        # label is in doubt where a weighted direction says the opposite)
        sure = cfg.sure
        agree_at = 0.5 if cut else sure
        fg_ok = (~has_f | (pf >= agree_at)) & (~has_b | (pb >= agree_at)) & (has_f | has_b)
        bg_ok = (~has_f | (pf <= 1 - agree_at)) & (~has_b | (pb <= 1 - agree_at)) & (has_f | has_b)
        near = np.abs(d) <= self.r_max
        unknown |= near & ~np.where(mask, fg_ok, bg_ok)
        if cfg.unknown_soft:
            # thin structures (lines, hair) survive the working resolution and the warps only as soft
            # probabilities, often far from the 0.5 contour: a soft value anywhere is not a definite label
            lo_, hi_ = 1.0 - sure, sure
            soft = (p > lo_) & (p < hi_)
            soft |= has_f & (pf > lo_) & (pf < hi_)
            soft |= has_b & (pb > lo_) & (pb < hi_)
            unknown |= soft
        if self.r_in > 0:
            # the body is decided only where some evidence backs it: a reliable direction or the colour models
            backed = rel > 0.3
            if pc is not None:
                backed |= np.nan_to_num(pc, nan=0.0) > 0.6
            unknown &= ~((d > self._inner_reach(d)) & backed)
            # two reliable directions that contradict each other (keyframes that disagree) stay unknown
            unknown |= near & both & (rf > 0.5) & (rb > 0.5) & (gap > 0.5)
        if cfg.unknown_disagreement:
            # a limb one direction sees and the other does not can sit beyond band_max: keep all of it unknown
            unknown |= gap > 0.5
        if (tw_f == 0 and tw_b == 0) or not (has_f | has_b).any():
            unknown[:] = True  # no evidence at all (a shot without a keyframe)
        # per-frame confidence: reliability x agreement over the zone where the trimap matters
        agree = 1.0 - gap
        score = rel * agree
        roi = near
        conf = float(score[roi].mean()) if roi.any() else float(score.mean())
        p_u8 = np.clip(p * 255 + 0.5, 0, 255).astype(np.uint8)
        self.results[t] = (_pack(p_u8), _pack(unknown.astype(np.uint8) * 255))
        self.confidence[t] = round(conf, 4)

    # ---- results -------------------------------------------------------------------------------------------
    def work_result(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(probability uint8 0..255, unknown bool) at working resolution for a prepared frame."""
        p, u = self.results[index]
        return _unpack(p), _unpack(u) > 0

    def result(self, index: int) -> tuple[np.ndarray, np.ndarray, float]:
        """Full-resolution (trimap uint8 {0,128,255}, mask uint8 {0,255}, confidence) for a prepared frame.

        Keyframes come back exactly as drawn (a trimap keyframe is that trimap; binary / alpha keyframes get
        the ``band`` half-width around their boundary)."""
        if not self.prepared:
            self.prepare()
        if index not in self.results:
            raise KeyError(f"frame {index} is outside the prepared range {self.start}-{self.end}")
        if index in self.keyframes:
            return (*self._keyframe_full(index), 1.0)
        p, unk = self.work_result(index)
        size = (self.width, self.height)
        if size != (self.ww, self.wh):
            p = cv2.resize(p, size, interpolation=cv2.INTER_LINEAR)
            unk = cv2.resize(unk.astype(np.uint8) * 255, size, interpolation=cv2.INTER_LINEAR) > 0
        mask = p >= 128
        tri = np.where(mask, TRIMAP_FG, TRIMAP_BG).astype(np.uint8)
        tri[unk] = TRIMAP_UNKNOWN
        return tri, (mask.astype(np.uint8) * 255), self.confidence[index]

    def _keyframe_full(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        kind, arr = self.keyframes.get(index)
        r = band_radius_px(self.cfg.band, self.width, self.height)
        if kind == "trimap":
            tri = arr
            mask = trimap_to_probability(arr) >= 0.5
        elif kind == "binary":
            tri = mask_to_trimap(arr, r, keep_thin=self.cfg.keep_thin)
            mask = arr > 0
        else:
            tri = alpha_to_trimap(arr, r)
            mask = arr >= 0.5
        return tri, mask.astype(np.uint8) * 255

    # ---- streaming API for the runner ----------------------------------------------------------------------
    def push(self, frame: Frame) -> list[Frame]:
        """Frame (full-res rgb, clip order) → [frame with trimap, confidence, keyframe flag]. Prepares on first
        use. Applies alpha feedback from :meth:`observe` when available."""
        if not self.prepared:
            self.prepare()
        t0 = time.perf_counter()
        t = frame.index
        tri, _mask, conf = self.result(t)
        is_kf = t in self.keyframes
        if not is_kf and self.cfg.use_alpha_feedback and self._fb:
            tri = self._apply_feedback(frame, tri)
        self.timings["push_s"] += time.perf_counter() - t0
        # the scene-cut decision of the pass, and the flows, travel on to the smoother (computed once)
        cut = (t in self.cuts) if self.cuts_decided else None
        motion = FrameMotion(t, cut, self.motion)
        return [frame.replace(trimap=tri, confidence=float(conf), keyframe=is_kf, motion=motion)]

    def flush(self) -> list[Frame]:
        """Nothing is buffered by :meth:`push`; present for the stage protocol."""
        return []

    def observe(self, frame: Frame) -> None:
        """Alpha feedback: remember ``frame.alpha`` (the pipeline's matte of ``frame.index``) as evidence for
        later frames. Only the most recent alpha is kept (work resolution, 8 bit)."""
        if frame.alpha is None or not self.cfg.use_alpha_feedback:
            return
        if self._fb and self._fb["index"] >= frame.index:
            return
        a = frame.alpha
        if (a.shape[1], a.shape[0]) != (self.ww, self.wh):
            a = cv2.resize(a, (self.ww, self.wh), interpolation=cv2.INTER_AREA)
        self._fb = {
            "index": frame.index,
            "alpha": np.clip(a * 255 + 0.5, 0, 255).astype(np.uint8),
            "gray": self.motion.gray(frame),
        }

    def _apply_feedback(self, frame: Frame, tri: np.ndarray) -> np.ndarray:
        """Turn unknown pixels definite where the warped latest alpha is sure, consistent and agrees."""
        s = int(self._fb["index"])
        t = frame.index
        lag = t - s
        if lag <= 0 or lag > self.cfg.max_feedback_lag or any(s < c <= t for c in self.cuts):
            return tri
        tf = time.perf_counter()
        flow = self.motion.flow_pair(self.ww, self.wh)
        gray = self.motion.gray(frame)
        # t→s and s→t: when s = t - 1 the smoother needs the same pair and takes it from the store
        ts, st, _ = self.motion.flows(t, gray, s, self._fb["gray"])
        c_ts = flow.consistency(ts, st)
        # alpha of s sampled along flow t→s lands on t's grid; c_ts says where that flow is trustworthy
        alpha_s = self._fb["alpha"].astype(np.float32) / 255.0
        a = flow.warp(alpha_s, ts)
        c = c_ts
        p, unk = self.work_result(t)
        mask = p >= 128
        d = signed_distance(mask)
        free = unk & (np.abs(d) > self.r_min) & (c > 0.9)
        to_fg = free & mask & (a >= 0.98)
        to_bg = free & ~mask & (a <= 0.02)
        self.feedback_pixels += int(to_fg.sum() + to_bg.sum())
        # band width hook (soft edges): widen where the carried matte is fractional, see soft_edge_zone
        soft = np.zeros_like(to_fg)
        if self.cfg.soft_band > 0:
            # a soft zone lies mostly over the background, whose image flow is not the subject's motion: carry
            # the alpha with the subject's own motion extended past its boundary (foreground-layer flow)
            motion = flow.layer_flow(p.astype(np.float32) / 255.0, ts, c, self.r_layer_soft)
            a_layer = flow.warp(alpha_s, motion)
            soft = soft_edge_zone(a_layer, np.ones_like(mask), d, self.r_soft_grow, self.r_soft_max)
        if not (to_fg.any() or to_bg.any() or soft.any()):
            self.timings["feedback_s"] += time.perf_counter() - tf
            return tri
        lab = np.full((self.wh, self.ww), 0, np.uint8)
        lab[to_fg] = 2
        lab[to_bg] = 1
        lab[soft] = 3
        if (self.ww, self.wh) != (self.width, self.height):
            lab = cv2.resize(lab, (self.width, self.height), interpolation=cv2.INTER_NEAREST)
        tri = tri.copy()
        # only unknown full-res pixels change: definite labels are never flipped
        sel = tri == TRIMAP_UNKNOWN
        tri[sel & (lab == 2)] = TRIMAP_FG
        tri[sel & (lab == 1)] = TRIMAP_BG
        tri[lab == 3] = TRIMAP_UNKNOWN
        self.timings["feedback_s"] += time.perf_counter() - tf
        return tri

    def suggestions(self, k: int | None = None) -> list[int]:
        """Frames where a new keyframe mask would help most: lowest confidence first, at least
        max(3, gap/4) frames from each other and from existing keyframes (gap = median keyframe spacing)."""
        k = self.cfg.suggest_keyframes if k is None else k
        return rank_suggestions(self.confidence, self.keyframes.indices, k, self.end - self.start + 1)

    def close(self) -> None:
        """End the flow helper thread that alpha feedback keeps between frames (idempotent). Results stay
        readable; :meth:`prepare` ends its own threads, so a caller that only prepares need not call this."""
        if self._flow is not None:
            self._flow.close()
        self.motion.close()

    def summary(self) -> dict:
        """JSON-able report: per-frame confidence, suggested keyframes, scene cuts, timings (seconds)."""
        frames = list(range(self.start, self.end + 1))
        conf = [self.confidence.get(i) for i in frames]
        valid = [c for c in conf if c is not None]
        return {
            "frames": [self.start, self.end],
            "work_size": [self.ww, self.wh],
            "keyframes": [k for k in self.keyframes.indices if self.start <= k <= self.end],
            "keyframe_kinds": {
                str(k): self.keyframes.kind(k) for k in self.keyframes.indices if self.start <= k <= self.end
            },
            "confidence": conf,
            "mean_confidence": round(float(np.mean(valid)), 4) if valid else None,
            "suggested_keyframes": self.suggestions(),
            "scene_cuts": list(self.cuts),
            "feedback_pixels": self.feedback_pixels,
            "warnings": list(self.keyframes.warnings) + self.warnings,
            "timings_s": {k: round(v, 3) for k, v in self.timings.items()},
            "compact_bytes": int(sum(len(a) + len(b) for a, b in self.results.values())),
        }
