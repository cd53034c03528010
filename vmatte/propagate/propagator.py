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

Where each part lives: this module keeps the pre-pass threads (the flow is :mod:`vmatte.motion`), the
streaming API and the report; steps 2-3 are ``chain.py``, 4 ``colour.py``, 5 ``blend.py``, 6 ``store.py``, 7
``feedback.py`` (its flow call stays here); tuned constants and experimental knobs ``tuning.py``. Never
imports torch.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import cv2
import numpy as np

from vmatte.errors import Interrupted, MaskError, UsageError
from vmatte.frame import Frame
from vmatte.io.masks import Keyframes
from vmatte.motion.config import FlowConfig
from vmatte.motion.flow import FlowPair, to_gray, work_shape
from vmatte.motion.keypoint import KeypointMotion
from vmatte.motion.scenecut import SceneCutDetector
from vmatte.motion.shared import ARCHIVE_DISK_BYTES, FrameMotion, MotionStore
from vmatte.pipeline.context import propagation_range
from vmatte.pipeline.threads import AnyEvent, Cancelled, Prefetch
from vmatte.propagate import feedback, lines
from vmatte.propagate.blend import Band, Blender
from vmatte.propagate.chain import Chains, Motion, Span
from vmatte.propagate.colour import ColourModels, colour_bins
from vmatte.propagate.config import PropagateConfig
from vmatte.propagate.feedback import Observed
from vmatte.propagate.report import rank_suggestions
from vmatte.propagate.store import ResultStore, Scratch, to_u8
from vmatte.propagate.trimap import band_radius_px, keyframe_trimap, soft_edge_zone, trimap_to_probability
from vmatte.propagate.tuning import TUNING, Tuning

log = logging.getLogger(__name__)

_Scratch = Scratch  # the name tests import from here


class Propagator:
    """Trimaps for every frame of one clip from its keyframe masks. See the module docstring for the method.

    clip: an opened :class:`~vmatte.io.decode.Clip` (``clip.info`` gives size and frame count).
    keyframes: validated :class:`~vmatte.io.masks.Keyframes` of that clip.
    frame_range: (start, end) inclusive clip frames, or None for the whole clip. Propagation decodes from the
        keyframe before ``start`` to the keyframe after ``end`` so a chunk gets the same trimaps as a full run.
    cancel: a threading.Event; when set, :meth:`prepare` stops with :class:`~vmatte.errors.Interrupted`.
    max_corrupt: undecodable frames the pass skips (flow then bridges the gap) before the decoder fails.
    tuning: the propagator's constants (:mod:`vmatte.propagate.tuning`); bench scripts and tests vary them.
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
        tuning: Tuning = TUNING,
        flow: FlowConfig | None = None,
    ) -> None:
        self.clip = clip
        self.flow_cfg = flow or FlowConfig()
        self.max_corrupt = max_corrupt
        self.corrupt: list[int] = []  # undecodable frames skipped by the propagation pass (clip numbers)
        self.keyframes = keyframes
        self.cfg = cfg or PropagateConfig()
        self.tune = tuning
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
        self.r_soft_max = self.tune.soft_band * min(self.ww, self.wh)
        self.r_soft_grow = band_radius_px(self.tune.soft_grow, self.ww, self.wh)
        # interior erosion for the subject's motion that carries soft zones (see _apply_feedback)
        self.r_layer_soft = band_radius_px(0.03, self.ww, self.wh)
        self.r_in = (
            band_radius_px(self.tune.band_inner, self.ww, self.wh) if self.tune.band_inner > 0 else 0.0
        )
        self.layer_r = self.tune.layer_radius * min(self.ww, self.wh) if self.tune.layer_radius > 0 else 0.0
        self.results = ResultStore((self.ww, self.wh), (self.width, self.height))
        self.confidence: dict[int, float] = self.results.confidence  # frame → [0, 1] (the report reads it)
        self.cuts: list[int] = []
        # frame → its thin straight parts followed from the keyframe before it (vmatte.propagate.lines): the
        # found lines (packed, at the search size)
        self.lines: dict[int, lines.Found] = {}
        self.warnings: list[str] = []  # found while propagating (keyframes that contradict each other)
        self.timings = {
            "wait_s": 0.0,
            "flow_s": 0.0,
            "blend_s": 0.0,
            "prepare_s": 0.0,
            "push_s": 0.0,
            "feedback_s": 0.0,
            "lines_s": 0.0,
        }
        self.prepared = False
        self._flow: FlowPair | None = None
        # main pass: grey frames and frame-pair flows shared by alpha feedback and the smoother (bounded)
        # (feedback composes the adjacent pairs up to max_feedback_lag frames back: keep that many, at most
        # 16 (~60 MB at 640x360); a longer lag falls back to one direct pair)
        lag = min(self.cfg.max_feedback_lag, 16)
        # the pre-pass's flows are archived for the main pass (MotionStore.keep): DIS runs once per frame pair;
        # a caller that never pushes (vmatte propagate) sets keep_flows False before prepare()
        self.keep_flows = True
        # debugging view of each stored frame's blend (chain.BlendHook; scripts/debug_blend.py), set before prepare()
        self.on_blend = None
        self.motion = MotionStore(
            self.flow_cfg,
            grays=max(8, lag + 3),
            pairs=max(4, lag + 1),
            archive=Scratch(disk_limit=ARCHIVE_DISK_BYTES),
        )
        self.cuts_decided = False  # the pass decided every frame's scene cut (see push)
        self._fb: Observed | None = None  # latest observed alpha for feedback
        self.feedback_pixels = 0

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

    def _bins(self, frame: Frame) -> np.ndarray | None:
        """(wh, ww) uint16 colour bins of a frame (see vmatte.propagate.colour), or None with colour off."""
        return colour_bins(frame.rgb_u8(), (self.ww, self.wh)) if self.cfg.color_model > 0 else None

    def _check_cancel(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise Interrupted("propagation cancelled")

    def _chains(self, flow: FlowPair) -> Chains:
        """The chains of one pre-pass, wired to this propagator's store, cuts, warnings and timings."""
        cfg, tune = self.cfg, self.tune
        colours = ColourModels((self.ww, self.wh), tune.color_zone * min(self.ww, self.wh), tune.color_cell)
        band = Band(self.r_min, self.r_max, self.r_in)
        keypoints = KeypointMotion() if tune.keypoint_motion > 0 else None
        return Chains(
            Span(self.lo, self.hi, self.start, self.end, frozenset(self.kf_in)),
            Motion(
                flow,
                self.layer_r,
                keypoints,
                tune.keypoint_motion,
                tune.ghost_motion * min(self.ww, self.wh),
                tune.layer_coherence,
                tune.layer_trust,
                tune.photo_fit,
                tune.carry_decided,
                tune.carry_frames,
            ),
            self._kf_prob,
            colours,
            Blender(cfg, tune, (self.ww, self.wh), band, colours),
            self.results,
            self.cuts,
            self.warnings,
            self.timings,
            self._check_cancel,
            self.on_blend,
        )

    # ---- the cheap pass ------------------------------------------------------------------------------------
    def prepare(self, on_progress: Callable[[int, int], None] | None = None) -> None:
        """Decode frames ``lo..hi`` at working resolution, propagate both ways, keep compact results for
        ``start..end``. on_progress(done, total) is called once per decoded frame."""
        if self.prepared:
            return
        t0 = time.perf_counter()
        self._flow = flow = FlowPair(self.flow_cfg.preset, self.ww, self.wh)
        # histogram cut detector shared with the smoother; it sees every decoded frame in order, so a chunk run
        # (which starts at the keyframe before its range) detects the same cuts as a full run
        threshold = self.flow_cfg.scene_cut
        cuts = SceneCutDetector(threshold) if threshold > 0 else None
        self.corrupt = []

        track = None  # the lines of the last keyframe, followed (vmatte.propagate.lines)

        def decoded():
            nonlocal track
            # runs in a worker thread (decode, grey conversion, resize and the cut histogram release the GIL
            # or are cheap), so the next frames are ready while this thread computes flow
            for frame in self.clip.frames(
                self.lo, self.hi, max_corrupt=self.max_corrupt, corrupt=self.corrupt
            ):
                cut = cuts.update(frame.rgb_u8()) if cuts is not None else False
                if self.tune.line_rescue:
                    track = self._follow_lines(frame, track, cut)
                yield frame.index, self._gray(frame), cut, self._bins(frame)

        def flowed(items):
            # runs in a second worker thread: DIS and the consistency maps (OpenCV releases the GIL)
            prev, t_prev = None, None
            for t, gray, cut, bins in items:
                pair = None
                if prev is not None:
                    tf = time.perf_counter()
                    pair = flow.compute(prev, gray)
                    # the main pass asks for adjacent pairs (a corrupt frame leaves a gap)
                    if self.keep_flows and t == t_prev + 1:
                        self.motion.keep(t_prev, pair[0], pair[1])
                    if cut:
                        self.cuts.append(t)
                        pair[2][:] = 0
                        pair[3][:] = 0
                    self.timings["flow_s"] += time.perf_counter() - tf
                yield t, gray, bins, pair
                prev, t_prev = gray, t

        stop = AnyEvent(self.cancel)
        try:
            with (
                Prefetch(decoded(), depth=4, cancel=stop, name="propagate-decode") as dec,
                Prefetch(flowed(dec), depth=3, cancel=stop, name="propagate-flow") as frames,
            ):
                self._chains(flow).run(frames, on_progress)
        except Cancelled:
            raise Interrupted("propagation cancelled") from None
        finally:
            flow.close()
        self.cuts_decided = True
        self._lines_confidence()
        self._finish_prepare(t0)

    def _lines_confidence(self) -> None:
        """A frame whose keyframe had lines loses confidence by what the segments not found again on it are of
        the subject (:attr:`lines.Found.share`: their length over the keyframe mask's area). The blend's
        confidence does not see lines (a line one or two pixels wide barely moves the reliability of the band
        around it), and lost lines are most of what a line clip's frames lose. DAVIS, Spearman correlation of
        confidence with frame IoU, mean of 9 clips (2026-12-07): keys every 10 0.490 -> 0.536 (paragliding-launch
        0.09 -> 0.47, kite-surf 0.34 -> 0.38, the others unchanged), every 20 0.450 -> 0.499, first frame only
        0.818 -> 0.817. Weighed by the share of the segments' length instead: paragliding 0.48, kite-surf 0.65,
        but the single stray segment of dance-twirl's keyframes 40-50 or libby's 0 took 0.73 -> 0.54 and 0.14 ->
        -0.39 (mean 0.484)."""
        for t, found in self.lines.items():
            if t in self.confidence and found.share < 1.0:
                self.confidence[t] = round(self.confidence[t] * found.share, 4)

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

    def _follow_lines(self, frame: Frame, track: lines.LineTrack | None, cut: bool) -> lines.LineTrack | None:
        """One frame of the line tracking in the pass: a keyframe starts a track of its lines (or ends the
        last one), a scene cut ends it, any other frame's lines are found and kept for :meth:`result`."""
        t0 = time.perf_counter()
        t = frame.index
        if t in self.keyframes:
            kind, arr = self.keyframes.get(t)
            mask = arr > 0.5 if kind == "alpha" else arr == 255
            model = lines.learn(lines.shrink(_gray_full(frame)), lines.shrink(mask, is_mask=True))
            track = lines.LineTrack(model) if model is not None else None
        elif cut:
            track = None
        elif track is not None:
            found = track.step(lines.shrink(_gray_full(frame)))
            if found is not None and self.start <= t <= self.end:
                self.lines[t] = found
        self.timings["lines_s"] += time.perf_counter() - t0
        return track

    def _store_keyframe(self, t: int, p_kf: np.ndarray) -> None:
        """Store keyframe t's probability ((wh, ww) float32) with no unknown pixels and confidence 1."""
        self.results.put(t, to_u8(p_kf), np.zeros((self.wh, self.ww), bool), 1.0)

    # ---- results -------------------------------------------------------------------------------------------
    def work_result(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(probability uint8 0..255, unknown bool) at working resolution for a prepared frame."""
        return self.results.work_result(index)

    def result(self, index: int) -> tuple[np.ndarray, np.ndarray, float]:
        """Full-resolution (trimap uint8 {0,128,255}, mask uint8 {0,255}, confidence) for a prepared frame.

        Keyframes come back exactly as drawn (a trimap keyframe is that trimap; binary / alpha keyframes get
        the ``band`` half-width around their boundary)."""
        tri, mask, conf, _prior = self.result_with_prior(index)
        return tri, mask, conf

    def result_with_prior(self, index: int) -> tuple[np.ndarray, np.ndarray, float, np.ndarray | None]:
        """:meth:`result` and the foreground probability the trimap was cut from, (H, W) uint8 0..255 at the
        clip's size (what the classic engine leans on in the band, :attr:`vmatte.frame.Frame.prior`): at a
        keyframe the drawn mask or alpha, None for a drawn trimap (used as given)."""
        if not self.prepared:
            self.prepare()
        if index not in self.results:
            raise KeyError(f"frame {index} is outside the prepared range {self.start}-{self.end}")
        if index in self.keyframes:
            kind, arr = self.keyframes.get(index)
            r = band_radius_px(self.cfg.band, self.width, self.height)
            tri, mask = keyframe_trimap(kind, arr, r, keep_thin=self.cfg.keep_thin)
            if kind == "trimap":
                prior = None
            else:
                prior = arr if kind == "binary" else to_u8(arr)
            return tri, mask, 1.0, prior
        tri, mask, p = self.results.full(index)
        if index in self.lines:
            tri = lines.apply(tri, self.lines[index])
            mask = np.where(tri == 255, np.uint8(255), np.where(tri == 0, np.uint8(0), mask))
        return tri, mask, self.confidence[index], p

    # ---- streaming API for the runner ----------------------------------------------------------------------
    def push(self, frame: Frame) -> list[Frame]:
        """Frame (full-res rgb, clip order) → [frame with trimap, confidence, keyframe flag and kind, prior].
        Prepares on first use. Applies alpha feedback from :meth:`observe` when available."""
        if not self.prepared:
            self.prepare()
        t0 = time.perf_counter()
        t = frame.index
        tri, _mask, conf, prior = self.result_with_prior(t)
        is_kf = t in self.keyframes
        if self.cfg.use_alpha_feedback:
            self.motion.gray(frame)  # every frame's grey is kept: later feedback composes flows through it
        if not is_kf and self.cfg.use_alpha_feedback and self._fb is not None:
            tri = self._apply_feedback(frame, tri)
        self.timings["push_s"] += time.perf_counter() - t0
        # the scene-cut decision of the pass, and the flows, travel on to the smoother (computed once)
        cut = (t in self.cuts) if self.cuts_decided else None
        motion = FrameMotion(t, cut, self.motion)
        kind = self.keyframes.kind(t) if is_kf else None
        return [
            frame.replace(
                trimap=tri,
                confidence=float(conf),
                keyframe=is_kf,
                keyframe_kind=kind,
                motion=motion,
                prior=prior,
            )
        ]

    def flush(self) -> list[Frame]:
        """Nothing is buffered by :meth:`push`; present for the stage protocol."""
        return []

    def observe(self, frame: Frame) -> None:
        """Alpha feedback: remember ``frame.alpha`` (the pipeline's matte of ``frame.index``) as evidence for
        later frames. Only the most recent alpha is kept (work resolution, 8 bit)."""
        if frame.alpha is None or not self.cfg.use_alpha_feedback:
            return
        if self._fb is not None and self._fb.index >= frame.index:
            return
        self._fb = Observed.of(frame, self.motion.gray(frame))

    def _apply_feedback(self, frame: Frame, tri: np.ndarray) -> np.ndarray:
        """Turn unknown pixels definite where the warped latest alpha is sure, consistent and agrees (see
        vmatte.propagate.feedback); the flow that carries the alpha is computed here."""
        fb = self._fb
        t = frame.index
        if not fb.reaches(t, self.cfg.max_feedback_lag, self.cuts):
            return tri
        tf = time.perf_counter()
        flow = self.motion.flow_pair(self.ww, self.wh)
        gray = self.motion.gray(frame)
        # t→s and s→t from adjacent pairs only (composed when s < t - 1): the smoother takes the same pairs
        ts, st = self.motion.flows_between(t, gray, fb.index, fb.gray)
        c_ts = flow.consistency(ts, st)
        # alpha of s sampled along flow t→s lands on t's grid; c_ts says where that flow is trustworthy
        alpha_s = fb.alpha.astype(np.float32) / 255.0
        a = flow.warp(alpha_s, ts)
        c = c_ts
        p, unk = self.work_result(t)
        mask, d = feedback.propagated(p)
        to_fg, to_bg = feedback.definite(a, c, mask, unk, d, self.r_min)
        # band width hook (soft edges): widen where the carried matte is fractional, see soft_edge_zone
        soft = np.zeros_like(to_fg)
        if self.tune.soft_band > 0:
            # a soft zone lies mostly over the background, whose image flow is not the subject's motion: carry
            # the alpha with the subject's own motion extended past its boundary (foreground-layer flow)
            motion = flow.layer_flow(p.astype(np.float32) / 255.0, ts, c, self.r_layer_soft)
            a_layer = flow.warp(alpha_s, motion)
            soft = soft_edge_zone(a_layer, np.ones_like(mask), d, self.r_soft_grow, self.r_soft_max)
        relabel = feedback.Relabel(to_fg, to_bg, soft)
        self.feedback_pixels += relabel.pixels
        if relabel.any():
            tri = feedback.apply(tri, relabel, (self.width, self.height))
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
            "compact_bytes": self.results.nbytes,
        }


def _gray_full(frame: Frame) -> np.ndarray:
    """(H, W) uint8 grey of a frame at full resolution (the line search needs the lines' own pixels)."""
    return cv2.cvtColor(frame.rgb_u8(), cv2.COLOR_RGB2GRAY)
