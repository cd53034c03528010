"""The forward and backward chains of one propagation pre-pass (steps 2-3 of the method in
:mod:`vmatte.propagate.propagator`).

From each keyframe the mask travels forward as a soft probability with a per-pixel reliability; when the next
keyframe arrives, the frames since the previous one (kept compactly in a :class:`~vmatte.propagate.store.Scratch`)
get the same from the other side, and :class:`~vmatte.propagate.blend.Blender` combines the two.

Conventions: arrays (wh, ww) at working resolution; probabilities / reliabilities float32 in [0, 1] (uint8
0..255 while pending); grey frames uint8; flows (wh, ww, 2) float32 px (float16 while pending); consistency
float32 in [0, 1] (uint8 0..255 while pending); colour bins uint16 or None.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Protocol

import cv2
import numpy as np

from vmatte.motion.keypoint import Backoff, KeypointMotion, carry
from vmatte.propagate.blend import Blended, Blender, Direction
from vmatte.propagate.colour import ColourModels
from vmatte.propagate.store import ResultStore, Scratch, to_u8

_DECAY = 0.98  # reliability lost per chained step even where flow is consistent (drift grows with distance)

# one pre-pass item: (frame, gray, colour bins or None, flow pair from the previous frame or None); the pair is
# FlowPair.compute's (flow prev→t on prev, flow t→prev on t, consistency on prev, consistency on t)
Item = tuple[
    int, np.ndarray, "np.ndarray | None", "tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None"
]


_ABSENT = np.empty(0, np.uint8)  # an absent array in a Scratch record


@dataclass(frozen=True)
class Pending:
    """A frame waiting for the next keyframe, as kept in the :class:`Scratch`: the forward chain's probability
    and reliability (uint8 0..255, zeros before the first keyframe), the grey frame, the colour bins (None:
    colour off), and once the next decoded frame arrives the flow to it (float16 px, on this frame's grid)
    with its consistency (uint8 0..255)."""

    p: np.ndarray
    r: np.ndarray
    gray: np.ndarray
    bins: np.ndarray | None
    to_next: np.ndarray | None = None
    c_next: np.ndarray | None = None

    def arrays(self) -> tuple[np.ndarray, ...]:
        optional = (self.bins, self.to_next, self.c_next)
        return (self.p, self.r, self.gray, *(_ABSENT if a is None else a for a in optional))

    @classmethod
    def of(cls, arrays: tuple[np.ndarray, ...]) -> Pending:
        p, r, gray, *optional = arrays
        return cls(p, r, gray, *(None if a.size == 0 else a for a in optional))


@dataclass(frozen=True)
class Span:
    """Frames of one pre-pass (clip numbers, inclusive): ``lo..hi`` are decoded and chained, ``start..end``
    are stored; ``keyframes`` those in ``lo..hi``."""

    lo: int
    hi: int
    start: int
    end: int
    keyframes: frozenset[int]

    def stores(self, t: int) -> bool:
        return self.start <= t <= self.end


class Warps(Protocol):
    """What the chains need of the flow (:class:`vmatte.propagate.propagator.FlowPair`)."""

    def warp(self, img: np.ndarray, flow: np.ndarray) -> np.ndarray: ...

    def warp_layer(
        self,
        p: np.ndarray,
        r: np.ndarray,
        flow: np.ndarray,
        c: np.ndarray,
        radius: float,
        coherence: float,
        trust: bool,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...


@dataclass(frozen=True)
class Motion:
    """How a chain carries its state one frame: ``flow`` (warp, warp_layer), the foreground-layer
    radius in work px (0 = plain warps), the keypoint fallback (None = off) with its trigger in grey
    levels, the ghost release's motion tolerance in work px (0 = off, see :func:`release_ghost`) and the
    foreground layer's coherence limit in work px (see FlowPair.layer_motion; 0 = extend everywhere) and
    whether a label so carried keeps that motion's consistency (``layer_trust``, see Tuning); where the
    flow explains the frames within ``photo_fit`` grey levels the step keeps that much reliability whatever
    the consistency (0 = off, see :func:`photometric_fit`); a one-sided chain (before the first keyframe, after
    the last) carries on the frame's decided probability where its own reliability is below ``decided_below``,
    for ``decided_frames`` frames from its keyframe (0 = off, see :meth:`carry_decided`)."""

    flow: Warps
    layer_px: float
    keypoints: KeypointMotion | None
    keypoint_fail: float
    ghost_px: float = 0.0
    layer_coherence: float = 0.0
    layer_trust: bool = False
    photo_fit: float = 0.0
    decided_below: float = 0.0
    decided_frames: int = 0

    def step(
        self, p, r, to_src, c, g_src, g_dst, backoff: Backoff | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(p, r) on the source frame's grid → on the destination's: ``to_src`` the flow dst→src on dst's grid,
        ``c`` its consistency, ``g_src`` / ``g_dst`` the grey frames (g_src None: no keypoint fallback and no
        photometric fit); ``backoff``: the chain's keypoint-fallback memory (a new one at each keyframe)."""
        p0, r0 = p, r
        g_fl = None  # the source frame warped by the flow (dst grid)
        if g_src is not None and (self.photo_fit > 0 or self.keypoints is not None):
            g_fl = self.flow.warp(g_src, to_src)
        # c_used: where the subject's own motion carried the label past its edge, that motion's consistency
        p, r, c_used = self.flow.warp_layer(
            p, r, to_src, c, self.layer_px, self.layer_coherence, self.layer_trust
        )
        if self.photo_fit > 0 and g_fl is not None:
            # judged along the raw flow, also where the layer's motion replaced it next to the edge: a fit
            # there raises r, never lowers it; the layer's own interior weights stay the round trip's
            c_used = np.maximum(c_used, photometric_fit(g_fl, g_dst, self.photo_fit))
        r = r * c_used * _DECAY
        if self.keypoints is not None and g_src is not None:
            p, r = carry(self.keypoints, g_src, g_dst, p0, r0, p, r, g_fl, self.keypoint_fail, backoff)
        if self.ghost_px > 0:
            p, r = release_ghost(p, r, to_src, c, self.ghost_px)
        return p, r

    def carries_decided(self, steps: int) -> bool:
        """Whether a one-sided chain ``steps`` frames from its keyframe carries the frame's decision on."""
        return self.decided_below > 0 and steps <= self.decided_frames

    def carry_decided(self, p: np.ndarray, r: np.ndarray, decided: np.ndarray, steps: int) -> np.ndarray:
        """A one-sided chain's probability for its next step, ``steps`` frames from its keyframe: ``decided``
        (the frame's blended probability: the colour models and the graph cut spoke where the flow failed)
        where the chain lost the subject (its reliability without the distance decay below
        ``decided_below``), the chain's own ``p`` elsewhere; all (wh, ww) float32 in [0, 1].

        With no keyframe on the other side nothing re-anchors a chain that lost the subject (an occlusion, a
        fast limb); between keyframes the other direction does. Carried on from its own lost label, the chain
        keeps the subject where it was lost while the subject moves on, out of the zone where colour and the
        cut may find it (libby: the dog behind a post after the last keyframe). Where the chain still holds,
        its own label stands: a decision there is the chain's label snapped to the image, and carrying it
        would compound the cut's errors frame by frame. Only for ``decided_frames`` frames from the keyframe:
        the keyframe's colour models describe a scene that moves on, and a chain that carries decisions for
        longer grows into background of the subject's colours (parkour from its first frame alone: the mask
        covered the railing and the buildings by frame 40)."""
        if not self.carries_decided(steps):
            return p
        # on how well the flow held, not on r itself: the distance decay alone takes every pixel below 0.5 ~35
        # frames from the keyframe
        take = r < self.decided_below * (_DECAY**steps)
        if not take.any():
            return p
        # along the frame's edge the round trip fails (content enters and leaves there), so the chain is "lost"
        # there on every frame (MatAnyone test-sample1: all of its top 3 work rows by frame 10): a decision
        # carried there would become the chain's own label for good and creep along the edge frame by frame
        # (its black top row, the colour of his hair, came out as foreground). There the chain's label stands.
        e = _EDGE_PX
        take[:e] = take[-e:] = False
        take[:, :e] = take[:, -e:] = False
        return np.where(take, decided, p).astype(np.float32)


def photometric_fit(warped: np.ndarray, dst: np.ndarray, level: float) -> np.ndarray:
    """How well a flow explains the destination frame, (h, w) float32 in [0, 1]: 1 - e / ``level``, e the
    absolute grey difference of the source frame warped by the flow (``warped``) and ``dst`` (both (h, w)
    uint8), smoothed over ~2 px (sensor noise and the warp's interpolation are not motion errors).

    DIS's forward-backward check fails wherever the reverse flow misses, also where the forward flow is right
    (fast limbs, motion blur, texture the reverse search lands off): the chain's reliability then drops to ~0,
    the band widens towards band_max there and colour decides. Where the warped frame matches, the flow is
    evidence whatever the round trip says (Tuning.photo_fit)."""
    e = cv2.GaussianBlur(cv2.absdiff(warped, dst).astype(np.float32), (0, 0), 2.0)
    return np.clip(1.0 - e * np.float32(1.0 / level), 0.0, 1.0)


_EDGE_PX = 4  # work px along the frame's edge where a one-sided chain keeps its own label
_LOST = 0.3  # chain reliability below which the carried label is no evidence any more
_TRACKED = 0.5  # this step's flow consistency a pixel needs to count as tracked again
_GHOST_R = 0.5  # reliability a released pixel's background label gets
_MIN_BG = 64  # reliable background pixels needed to estimate the background's motion


def release_ghost(
    p: np.ndarray, r: np.ndarray, to_src: np.ndarray, c: np.ndarray, tol_px: float
) -> tuple[np.ndarray, np.ndarray]:
    """Background the subject uncovered, where the chain left a ghost of the subject: (p, r) → (p, r).

    When the subject moves off static background (judo: arms coming down in front of a wall), the flow over the
    uncovered pixels soon is the background's (~0), so the warp keeps the subject's old probability there while
    the forward-backward check has zeroed the reliability, which never recovers (it is a product along the
    chain): the ghost of the keyframe's pose stays at p ~ 1, r ~ 0, and colour, the graph cut and the matting
    fill it with whatever lies behind (a poster, a bicycle). A pixel whose chain is lost (``r`` < _LOST) but
    whose flow this step is consistent again (``c`` > _TRACKED) and moves like the background (within
    ``tol_px`` of the median motion of the reliable background) is background: p → 0, r → _GHOST_R.

    p, r: (h, w) float32 [0, 1] after this step's warp (destination grid); to_src: (h, w, 2) float32 flow
    dst→src in work px; c: (h, w) float32 its consistency in [0, 1]; tol_px in work px."""
    lost = (r < _LOST) & (p > 0.05) & (c > _TRACKED)
    if not lost.any():
        return p, r
    bg = (p < 0.05) & (r > 0.5) & (c > _TRACKED)
    if bg.sum() < _MIN_BG:
        return p, r
    # per component, in place on the extracted samples: the same medians as np.median(to_src[bg], axis=0) at
    # ~70 % of its cost (called for every chain step)
    v_bg = np.array([np.median(to_src[..., i][bg], overwrite_input=True) for i in (0, 1)], np.float32)
    # compared only where the chain is lost, not over the whole frame
    ys, xs = np.nonzero(lost)
    dv = to_src[ys, xs] - v_bg
    near = dv[:, 0] * dv[:, 0] + dv[:, 1] * dv[:, 1] < tol_px * tol_px
    if not near.any():
        return p, r
    ys, xs = ys[near], xs[near]
    p, r = p.astype(np.float32, copy=True), r.astype(np.float32, copy=True)
    p[ys, xs], r[ys, xs] = 0.0, _GHOST_R
    return p, r


# what a blend hook receives: (frame, grey (wh, ww) uint8, forward or None, backward or None, the blend)
BlendHook = Callable[[int, np.ndarray, Direction | None, Direction | None, Blended], None]


class Chains:
    """One pre-pass's chains. Results go to ``store``; per-keyframe checks may add to ``warnings``.

    keyframe_prob: keyframe → its (wh, ww) float32 probability; cuts: scene cuts found so far (frames
    after a cut); timings: the propagator's timing dict (``wait_s``, ``blend_s`` are added to);
    check_cancel: raises when the pass is cancelled; on_blend: called with each stored frame's blend inputs
    and result (a debugging view, ``scripts/debug_blend.py``; None in production)."""

    def __init__(
        self,
        span: Span,
        motion: Motion,
        keyframe_prob: Callable[[int], np.ndarray],
        colours: ColourModels,
        blender: Blender,
        store: ResultStore,
        cuts: list[int],
        warnings: list[str],
        timings: dict[str, float],
        check_cancel: Callable[[], None],
        on_blend: BlendHook | None = None,
    ) -> None:
        self.span, self.motion, self.keyframe_prob = span, motion, keyframe_prob
        self.on_blend = on_blend
        self.colours, self.blender, self.store = colours, blender, store
        self.cuts, self.warnings, self.timings, self.check_cancel = cuts, warnings, timings, check_cancel
        self.next_kf: dict[int, int | None] = {}  # frame → the first keyframe at or after it
        nk = None
        for k in reversed(range(span.lo, span.hi + 1)):
            if k in span.keyframes:
                nk = k
            self.next_kf[k] = nk

    def run(self, frames: Iterable[Item], on_progress: Callable[[int, int], None] | None = None) -> None:
        """The forward chain over the pre-pass items; each keyframe runs the backward chain over the frames
        pending since the previous one."""
        span, motion = self.span, self.motion
        total = span.hi - span.lo + 1
        scratch = Scratch()
        prev_kf = None  # index of the last keyframe seen (forward chain anchor)
        pf = rf = None  # forward chain state: probability, reliability (float32 work res)
        fwd_backoff = Backoff()  # its keypoint-fallback memory
        pending: list[int] = []  # frames since prev_kf waiting for the next keyframe
        td = time.perf_counter()
        g_last = None  # the previous decoded frame's gray (keypoint motion)
        t_last = None  # its number: t - 1, or less where the decoder skipped corrupt frames
        try:
            for done, (t, gray, bins, pair) in enumerate(frames, start=1):
                self.timings["wait_s"] += time.perf_counter() - td  # waiting for the decode and flow threads
                self.check_cancel()
                if pair is not None:
                    ab, ba, c_ab, c_ba = pair
                    # the previous frame's record is complete now that its flow to t is known (over a skipped
                    # corrupt frame the flow bridges the gap)
                    if pending and pending[-1] == t_last:
                        rec = replace(
                            Pending.of(scratch.pop(t_last)),
                            to_next=ab.astype(np.float16),
                            c_next=(c_ab * 255).astype(np.uint8),
                        )
                        scratch.put(t_last, *rec.arrays())
                    if pf is not None:
                        pf, rf = motion.step(pf, rf, ba, c_ba, g_last, gray, fwd_backoff)
                if t in span.keyframes:
                    p_kf = self.keyframe_prob(t)
                    self._check_agreement(prev_kf, t, pf, p_kf)
                    if bins is not None:
                        self.colours.learn(t, p_kf, bins)
                    if pending:
                        self._backward(pending, scratch, p_kf, prev_kf, t, gray)
                        pending = []
                        scratch.clear()
                    pf, rf, prev_kf = p_kf, np.ones_like(p_kf), t
                    fwd_backoff = Backoff()  # the forward chain starts again here
                    self.colours.keep_only(t)  # later frames need this keyframe's model only
                    if span.stores(t):
                        self.store.put(t, to_u8(p_kf), np.zeros(p_kf.shape, bool), 1.0)
                elif self.next_kf.get(t) is not None:
                    # wait for the next keyframe: keep the forward state compactly
                    p_u8 = np.zeros_like(gray) if pf is None else to_u8(pf)
                    r_u8 = np.zeros_like(gray) if rf is None else to_u8(rf)
                    scratch.put(t, *Pending(p_u8, r_u8, gray, bins).arrays())
                    pending.append(t)
                elif span.stores(t) or (pf is not None and motion.carries_decided(t - prev_kf)):
                    # past the last keyframe the forward chain alone speaks; it carries on the frame's decision
                    # where it lost the subject, so a chunk decides the frames before its range too, as a whole
                    # run does (its trimaps must equal the whole run's)
                    tb = time.perf_counter()
                    fwd = Direction(pf, rf, 1.0, _DECAY ** (t - prev_kf)) if pf is not None else None
                    model = self.colours.between(prev_kf, None, 1.0, 0.0)
                    b = self._store(t, gray, fwd, None, bins, model, keep=span.stores(t))
                    if pf is not None:
                        pf = motion.carry_decided(pf, rf, b.p, t - prev_kf)
                    self.timings["blend_s"] += time.perf_counter() - tb
                if on_progress is not None:
                    on_progress(done, total)
                g_last, t_last = gray, t
                td = time.perf_counter()
        finally:
            scratch.clear()

    def _store(self, t, gray, fwd, bwd, bins, model, keep: bool = True) -> Blended:
        """Blend frame t's directions; store the result unless ``keep`` is False (a frame outside the stored
        range that a one-sided chain still needs decided, see Motion.carry_decided)."""
        b = self.blender.blend(gray, fwd, bwd, bins, model)
        if keep:
            if self.on_blend is not None:
                self.on_blend(t, gray, fwd, bwd, b)
            self.store.put(t, to_u8(b.p), b.unknown, b.confidence)
        return b

    def _backward(self, pending: list[int], scratch: Scratch, p_kf, a: int | None, b: int, g_kf) -> None:
        """Backward chain from keyframe b (probability ``p_kf``, grey ``g_kf``) over ``pending`` (frames
        a+1..b-1, or lo..b-1 when a is None), blending each stored frame with its forward record."""
        pb, rb = p_kf, np.ones_like(p_kf)
        backoff = Backoff()
        g_next = g_kf  # gray of the next decoded frame (keypoint motion)
        for t in reversed(pending):
            self.check_cancel()
            rec = Pending.of(scratch.pop(t))
            tb = time.perf_counter()
            c = rec.c_next.astype(np.float32) / 255.0
            pb, rb = self.motion.step(pb, rb, rec.to_next.astype(np.float32), c, g_next, rec.gray, backoff)
            g_next = rec.gray
            stored = self.span.stores(t)
            if a is None and (stored or self.motion.carries_decided(b - t)):
                # before the first keyframe the backward chain alone speaks (see the forward chain's tail)
                model = self.colours.between(None, b, 0.0, 1.0)
                bwd = Direction(pb, rb, 1.0, _DECAY ** (b - t))
                decided = self._store(t, rec.gray, None, bwd, rec.bins, model, keep=stored)
                pb = self.motion.carry_decided(pb, rb, decided.p, b - t)
            elif a is not None and stored:
                # linear temporal weights: the closer keyframe counts more (next to B, B wins 9:1 at gap 10)
                tf_, tb_ = float(b - t), float(t - a)
                fwd = Direction(
                    rec.p.astype(np.float32) / 255.0,
                    rec.r.astype(np.float32) / 255.0,
                    tf_,
                    _DECAY ** (t - a),
                )
                model = self.colours.between(a, b, tf_, tb_)
                self._store(t, rec.gray, fwd, Direction(pb, rb, tb_, _DECAY ** (b - t)), rec.bins, model)
            self.timings["blend_s"] += time.perf_counter() - tb

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
        raw_overlap = bool(((self.keyframe_prob(a) >= 0.5) & drawn).any())
        # measured on DAVIS parkour, keyframes every 30: the same person keeps 18-78 % of the mask after the
        # forward chain; a mask from another DAVIS clip 0-1.3 %; the bundled example's blob (no raw overlap,
        # the flow follows it) 78 %, a box drawn elsewhere 7 %
        if share < 0.02 or (not raw_overlap and share < 0.10):
            self.warnings.append(
                f"keyframe masks on frames {a} and {b} do not overlap, even after following the motion between "
                f"them ({100 * share:.0f} % of frame {b}'s mask): check they show the same object (the trimaps "
                "between them will be poor)"
            )
