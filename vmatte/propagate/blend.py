"""One frame's trimap from the two chains: blend the forward and backward evidence, lean on colour where the
flow is unreliable, snap to image edges, decide the mask (a graph cut around the boundary) and the unknown band.

Conventions: every array is (wh, ww) at the propagator's working resolution; probabilities and reliabilities
float32 in [0, 1]; grey frames uint8; radii in work px; temporal weights are plain floats (0 = absent).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from vmatte.propagate.colour import ColourModel, ColourModels
from vmatte.propagate.config import PropagateConfig
from vmatte.propagate.segment import graph_cut, logit
from vmatte.propagate.trimap import guided_filter, signed_distance, thin_ridges
from vmatte.propagate.tuning import Tuning

# per-frame confidence: the agreement counted where only one direction carries weight. DAVIS (9 clips), Spearman
# correlation of confidence with frame IoU, mean over clips: keys every 10 0.303 (1.0) -> 0.452, every 20
# 0.352 -> 0.406; libby's first suggested keyframe becomes 47, its worst frame (the dog behind a post after the
# last keyframe), instead of 25
UNVERIFIED_AGREEMENT = 0.5

# a piece of the mask no chain backs is dropped when it is nowhere wider than _STRIP_PX work px, or when it is
# at least _STRIP_LENGTH times as long as it is wide (its area over its width squared): a strip is a strip
# however wide (Tuning.anchored)
_STRIP_PX = 4.0
_STRIP_LENGTH = 5.0


def loose_strips(mask: np.ndarray, anchor: np.ndarray, width: float, length: float) -> np.ndarray:
    """(wh, ww) bool: the 8-connected pieces of ``mask`` that hold no ``anchor`` pixel and are nowhere wider
    than ``width`` px or at least ``length`` times as long as they are wide (area >= length x width², width =
    twice the largest distance to the piece's outside); both masks (wh, ww) bool."""
    n, lab, stats, _ = cv2.connectedComponentsWithStats(mask.view(np.uint8), connectivity=8)
    loose = np.zeros_like(mask)
    if n <= 1:
        return loose
    held = np.bincount(lab[anchor & mask], minlength=n) > 0
    held[0] = True  # the background label
    for i in np.flatnonzero(~held):  # few, and small: each in its own box
        x, y, w, h = (int(v) for v in stats[i, :4])
        piece = lab[y : y + h, x : x + w] == i
        # half-width: the largest distance to the background (the frame's edges count as background)
        half = cv2.distanceTransform(np.pad(piece.view(np.uint8), 1), cv2.DIST_L2, 3)
        wide = 2 * float(half.max())
        if wide <= width or float(stats[i, cv2.CC_STAT_AREA]) >= length * wide * wide:
            loose[y : y + h, x : x + w] |= piece
    return loose


@dataclass(frozen=True)
class Direction:
    """One chain's evidence at a frame: probability ``p`` and reliability ``r`` ((wh, ww) float32 in [0, 1]), its
    temporal weight (> 0; linear in the distance to the other keyframe) and the distance decay folded into ``r``
    (in (0, 1]; 1 at the keyframe): ``r / decay`` is how well the flow held along the chain."""

    p: np.ndarray
    r: np.ndarray
    weight: float
    decay: float = 1.0


@dataclass(frozen=True)
class Blended:
    """A frame's result: probability (wh, ww) float32 in [0, 1] (mask = p >= 0.5), unknown (wh, ww) bool and
    confidence in [0, 1] (reliability x agreement of the directions near the boundary; UNVERIFIED_AGREEMENT
    where one direction alone speaks)."""

    p: np.ndarray
    unknown: np.ndarray
    confidence: float


@dataclass(frozen=True)
class Band:
    """Radii of the unknown band in work px: ``r_min`` where the flow is reliable, ``r_max`` where it is not,
    ``r_in`` how far it may reach into the mask (0 = no limit)."""

    r_min: float
    r_max: float
    r_in: float


class Blender:
    """Blends the directions of one pass. cfg / tune: the pass's options and constants; work: (ww, wh)
    working size in px; band: the band radii; colours: the pass's keyframe colour models (grid shared)."""

    def __init__(
        self, cfg: PropagateConfig, tune: Tuning, work: tuple[int, int], band: Band, colours: ColourModels
    ) -> None:
        self.cfg, self.tune = cfg, tune
        self.ww, self.wh = work
        self.band = band
        self.colours = colours

    def blend(
        self,
        gray: np.ndarray,
        fwd: Direction | None,
        bwd: Direction | None,
        bins: np.ndarray | None = None,
        model: ColourModel | None = None,
    ) -> Blended:
        """Blend the forward / backward evidence (None = that direction is absent) of a frame whose grey image
        is ``gray`` and colour bins ``bins`` (None: colour models off), with the colour ``model`` for it."""
        cfg, tune = self.cfg, self.tune
        r_min, r_max = self.band.r_min, self.band.r_max
        zero = np.zeros((self.wh, self.ww), np.float32)
        pf, rf, tw_f = (fwd.p, fwd.r, fwd.weight) if fwd is not None else (zero, zero, 0.0)
        pb, rb, tw_b = (bwd.p, bwd.r, bwd.weight) if bwd is not None else (zero, zero, 0.0)
        wf, wb = rf * tw_f, rb * tw_b
        wsum = wf + wb
        tw = tw_f + tw_b
        # where neither direction is reliable fall back to the temporal-only blend (and mark it unknown below)
        p_plain = (tw_f * pf + tw_b * pb) / max(tw, 1e-6)
        p = np.where(wsum > 1e-3, (wf * pf + wb * pb) / np.maximum(wsum, 1e-6), p_plain)
        rel = wsum / max(tw, 1e-6)  # reliability in [0, 1]
        p_chain = p  # what the chains say, before colour speaks
        pc = None  # colour P(foreground) over the zone, when the colour models speak
        lam = 0.0
        if model is not None and bins is not None:
            lam = cfg.color_model * float(np.clip((model.accuracy - 0.5) / 0.4, 0.0, 1.0))
            zone = self._zone(p, rel)
            if lam > 0 and zone.any():
                # colour speaks only where the flow is unreliable, and only as much as it separated the keyframe;
                # one reliable direction is enough (Tuning.colour_rel_max)
                if tune.colour_rel_max:
                    if tune.colour_undecayed:
                        # how well the flow held, not how far the chain came: a chain's age is no reason for
                        # colour to relabel a background it tracked consistently (Tuning.colour_undecayed)
                        held = np.maximum(self._held(fwd), self._held(bwd))
                        wgt = lam * (1.0 - held[zone])
                    else:
                        wgt = lam * (1.0 - np.maximum(rf, rb)[zone])  # an absent direction's r is zero
                else:
                    wgt = lam * (1.0 - rel[zone])
                pc = np.full_like(p, np.nan)  # NaN: outside the zone, no colour evidence
                pc[zone] = self.colours.prob(model, bins, zone)
                p = p.astype(np.float32, copy=True)
                p[zone] = p[zone] * (1.0 - wgt) + pc[zone] * wgt
        if cfg.snap:
            rad = max(1, round(tune.snap_radius * min(self.ww, self.wh)))
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
        if tune.anchored and pc is not None:
            # colour classifies pixels, not objects: a strip no chain puts in the foreground is not the subject;
            # there the chains' word stands (below 0.5 throughout the strip)
            loose = loose_strips(mask, p_chain >= 0.5, _STRIP_PX, _STRIP_LENGTH)
            if loose.any():
                mask = mask & ~loose
                p = np.where(loose, p_chain, p).astype(np.float32)
        if tune.thin_level > 0:
            # thin parts (lines, spokes) live only as low ridges of p: keep them foreground, not erased
            ridge = thin_ridges(p, tune.thin_width, tune.thin_level) & ~mask
            if tune.anchored:
                # a ridge the chains carry, not one colour drew
                ridge &= p_chain >= tune.thin_level
            if ridge.any():
                mask = mask | ridge
                p = np.where(ridge, 1.0, p).astype(np.float32)
        d = signed_distance(mask)
        # adaptive band: per-pixel radius from band_min (reliable) to band_max (unreliable); unreliability is
        # spread a little so an occlusion next to the boundary widens the band where it meets the boundary
        u = 1.0 - rel
        both = has_f & has_b
        gap = np.where(both, np.abs(pf - pb), 0.0).astype(np.float32)
        if tune.band_from_disagreement:
            # where the two directions put the boundary in different places the truth is likely between them
            u = np.maximum(u, gap)
        k = max(3, int(2 * r_min) | 1)
        u = cv2.dilate(u, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
        radius = r_min + (r_max - r_min) * u
        unknown = np.abs(d) <= radius
        # definite only where every direction that carries weight is sure of the same label (after a cut: a
        # label is in doubt where a weighted direction says the opposite)
        sure = tune.sure
        agree_at = 0.5 if cut else sure
        fg_ok = (~has_f | (pf >= agree_at)) & (~has_b | (pb >= agree_at)) & (has_f | has_b)
        bg_ok = (~has_f | (pf <= 1 - agree_at)) & (~has_b | (pb <= 1 - agree_at)) & (has_f | has_b)
        near = np.abs(d) <= r_max
        unknown |= near & ~np.where(mask, fg_ok, bg_ok)
        if tune.unknown_soft:
            # thin structures (lines, hair) survive the working resolution and the warps only as soft
            # probabilities, often far from the 0.5 contour: a soft value anywhere is not a definite label
            lo_, hi_ = 1.0 - sure, sure
            soft = (p > lo_) & (p < hi_)
            soft |= has_f & (pf > lo_) & (pf < hi_)
            soft |= has_b & (pb > lo_) & (pb < hi_)
            unknown |= soft
        if self.band.r_in > 0:
            # the body is decided only where some evidence backs it: a reliable direction or the colour models
            backed = rel > 0.3
            if pc is not None:
                # ... where the chains lean that way too (core_flow): see Tuning
                backed |= (np.nan_to_num(pc, nan=0.0) > 0.6) & (p_chain >= tune.core_flow)
            unknown &= ~((d > self._inner_reach(d)) & backed)
            # two reliable directions that contradict each other (keyframes that disagree) stay unknown near the
            # boundary, and deep inside the mask too where neither outweighs the other 3:1 (half way between the
            # keyframes: once colour no longer hazes an old chain, colour_undecayed, such a region can be a solid
            # part of the mask); next to a keyframe its own direction decides
            contradict = both & (rf > 0.5) & (rb > 0.5) & (gap > 0.5)
            balanced = 3.0 * np.minimum(wf, wb) >= np.maximum(wf, wb)
            unknown |= contradict & (near | balanced)
        if tune.unknown_disagreement:
            # a limb one direction sees and the other does not can sit beyond band_max: keep all of it unknown
            unknown |= gap > 0.5
        if (tw_f == 0 and tw_b == 0) or not (has_f | has_b).any():
            unknown[:] = True  # no evidence at all (a shot without a keyframe)
        # per-frame confidence: reliability x agreement over the zone where the trimap matters
        # a pixel only one direction reaches (before the first / after the last keyframe, or where one chain
        # lost it) has no second opinion: its agreement is unverified, not perfect
        agree = np.where(both, 1.0 - gap, np.float32(UNVERIFIED_AGREEMENT))
        score = rel * agree
        roi = near
        conf = float(score[roi].mean()) if roi.any() else float(score.mean())
        return Blended(p, unknown, conf)

    def _held(self, d: Direction | None) -> np.ndarray | float:
        """How well the flow held along a direction's chain, (wh, ww) float32 in [0, 1]: its reliability
        without the distance decay (0 for an absent direction)."""
        if d is None:
            return 0.0
        return d.r if d.decay >= 1.0 else np.minimum(d.r * np.float32(1.0 / d.decay), np.float32(1.0))

    def _inner_reach(self, d: np.ndarray) -> np.ndarray:
        """How far (px, (wh, ww) float32) the unknown band may reach into the mask given its signed distance
        ``d``: at most ``band_inner`` and at most half the local half-thickness of the part (the largest
        inside distance within band_max), never below band_min. Decide, don't defer: where the flow fails
        the band stays an edge and every limb keeps a definite core instead of turning into an all-unknown
        ghost. (The only place the propagator narrows the band inside the subject.)"""
        k = 2 * round(self.band.r_max) + 1
        # a square max filter (separable in OpenCV, an ellipse is not and cost ~10x)
        half = cv2.dilate(np.maximum(d, 0.0), np.ones((k, k), np.uint8))
        return np.clip(0.5 * half, self.band.r_min, self.band.r_in)

    def _zone(self, p: np.ndarray, rel: np.ndarray) -> np.ndarray:
        """(wh, ww) bool: where colour and the graph cut may decide: within ``color_zone`` of the propagated
        boundary, widened by up to ``cut_reach`` where the flow is unreliable (the subject may be far from
        where the warps put it)."""
        short = min(self.ww, self.wh)
        reach = self.tune.color_zone * short
        d = np.abs(signed_distance(p >= 0.5))
        if self.cfg.graph_cut > 0 and self.tune.cut_reach > 0:
            reach = reach + self.tune.cut_reach * short * (1.0 - cv2.blur(rel, (9, 9)))
        return d <= reach

    def _cut(self, p, rel, bins, pc, lam) -> np.ndarray:
        """Graph-cut mask (wh, ww) bool from the snapped probability ``p``, the colour probability ``pc`` over
        the zone (or None) weighted by ``lam`` and the flow reliability ``rel`` (see segment.graph_cut)."""
        cfg, tune = self.cfg, self.tune
        # the cut decides over its zone (below cut_below's reliability: everywhere by default); where the flow
        # is reliable its data term is the propagated label, which stands, and only its edge snaps to the image
        zone = self._zone(p, rel) & (rel < tune.cut_below)
        score = logit(p)
        if pc is not None and tune.cut_color > 0:
            has = np.isfinite(pc)
            score = score + (tune.cut_color * lam) * np.where(has, logit(np.where(has, pc, 0.5), 0.05), 0.0)
        b = bins.astype(np.int32)
        rgb = np.dstack(((b >> 10) & 31, (b >> 5) & 31, b & 31)).astype(np.uint8) << 3
        return graph_cut(rgb, score, zone, p >= 0.5, cfg.graph_cut)
