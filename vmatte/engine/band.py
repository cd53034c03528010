"""The unknown band follows the soft edge: where the engine's alpha is cut off by the band, widen it and matte
again (any engine; :class:`~vmatte.engine.base.BatchingEngine` runs the loop, ``[engine] grow_band`` steps).

A propagated band has one width for the whole outline, but how far a soft edge reaches varies along it: hair,
fur and motion blur spill past a band that fits a hard edge. The engine itself shows where: an unknown pixel
next to definite background whose alpha is still clearly above 0 (or next to definite foreground and clearly
below 1) has a matte the band truncated, since the true alpha cannot jump from that value to 0 (1) across one
pixel. Only those stretches are widened, by :data:`STEP` of the short side per step, into both sides (the
inner side matters as much: a binary mask is the alpha-0.5 contour of hair, whose alpha inside it is 0.5-1).

Measured (2026-12-05) with ``scripts/bench_smooth_e2e.py`` (11 real GT mattes moving over DAVIS footage,
classic engine, keys every 24, means of ratios to the per-frame oracle), off -> 1 step -> 2 steps: SAD 1.34 ->
1.23 -> 1.23x, MSE 2.38 -> 2.08 -> 2.07x, Grad 1.88 -> 1.66 -> 1.65x, dtSSD 1.26 -> 1.22 -> 1.23x, soft-pixel
coverage 0.449 -> 0.561 -> 0.571; the chain's wall time 50 -> 78 -> 99 s (the engine solves a wider band up
to steps + 1 times), hence 1 step for "auto". DAVIS, ``vmatte run`` on frames 0-40 with keys every 10: binary
J unchanged (see the README). Widening only outwards raised SAD (gt05 1.40 -> 1.71x), and so did larger steps
or a lower LEVEL.

Growth only finds a cut where the engine already saw the soft edge; fur, hair and motion blur that begin
beyond the band stay at 0 or 1. So the band is also widened on every frame before the first pass, by
:data:`MARGIN` of the short side into both sides (``[engine] band_margin``, :func:`pad`), with growth's limits
on thin parts; the classic engine holds the added pixels to the propagation's side unless the colours say
otherwise (``[engine] prior``), so a hard edge stays where it was. Measured (2026-12-07, same benchmark, grow
1 step), margin 0 -> 0.025: SAD 0.74 -> 0.74x, MSE 0.74 -> 0.61x, Grad 0.87 -> 0.72x, dtSSD 0.89 -> 0.83x,
soft-pixel coverage 0.524 -> 0.734 (0.697 -> 0.848 of the soft mass), band area 0.43 -> 0.93x the oracle's,
smoothing -4.1 -> -5.2 % dtSSD; the chain's CPU 102 -> 200 s for the 11 clips (the engine solves about twice
the pixels). DAVIS ``vmatte run`` (7 clips, frames 0-40, keys every 10): J 0.8644 -> 0.8645, dtSSD 9.12 ->
9.12. Without growth's limits (which :func:`pad` explains), margin 0.025 with the added pixels pulled to their
label at 0.03 / 0.3 / 1: coverage 0.773 / 0.764 / 0.758, dtSSD 0.79 / 0.83 / 0.87x; pulled at 0.3, margin
0.0125 / 0.05: coverage 0.660 / 0.851, dtSSD 0.84 / 0.83x. Binary keyframes are padded too (held to their
mask afterwards, so alpha > 0.5 still reproduces it; their band was narrower than their neighbours', and the
soft edge popped there): coverage 0.734 -> 0.755, SAD 0.740 -> 0.743x, MSE 0.608 -> 0.603x, Grad 0.721 ->
0.709x, dtSSD 0.831 -> 0.830x, keyframe IoU 1.000 (2026-12-07, session 22). Trimap and soft keyframes are
the user's band, used as given.

Thin parts (2026-12-07, session 25). The limits kept every part narrower than twice the widening whole (no
disk of its radius fits in it: an arm, a leg, a lock of hair, the gap between two legs; 24 px at 480p with the
margin), so the margin and growth skipped the parts whose soft edge lies nearest the band. Now a part gives up
at most its outer half (:func:`_reach`), its thickness measured along the part itself (:func:`_thickness`).
Same benchmark: SAD 0.732 -> 0.722x, MSE 0.578 -> 0.561x, Grad 0.680 -> 0.658x, dtSSD 0.805 -> 0.795x (dim3,
fur beside a dancer's white leg, 1.47 -> 1.42x), coverage 0.757 -> 0.750 (a background gap beside a thin part
now gives up only its outer half), band area 0.97 -> 0.95x the oracle's, the chain's CPU 188 -> 211 s; DAVIS
``vmatte run`` J 0.8642 -> 0.8645, F 0.9096 -> 0.9096, dtSSD 9.160 -> 9.120; the classic engine's CPU on DAVIS
parkour (100 frames, keys every 30) 0.518 -> 0.511 s/frame; :func:`pad` alone on parkour's mask, measured only
near the band (where anything can change), 17-19 -> 16-17 CPU ms at 480p, 152-169 -> 157-174 ms at 1080p
(twice, back to back; over the whole frame 27-32 and 234-285 ms). Not kept:

- the thickness as a plain max filter over the widening's square (a thin part beside a thick one counts as
  thick): dtSSD 0.787x, SAD 0.715x, coverage 0.751, but at margin 0.05 DAVIS paragliding-launch J 0.802 ->
  0.792 (its lines next to the pilot lost their core);
- margin 0.05 (the user's choice for soft subjects, ``[engine] band_margin``): coverage 0.849 (0.917 of the
  soft mass), dtSSD 0.778x, SAD 0.752x, MSE 0.531x, Grad 0.623x, band 1.51x the oracle's, chain CPU 257 s, but
  paragliding-launch J 0.802 -> 0.794 and breakdance 0.851 -> 0.850 (5 of the 7 clips run); with the old
  limits: coverage 0.839, dtSSD 0.793x, SAD 0.766x, J 0.8638 (a limb narrower than 48 px then got no margin
  at all).

Soft keyframes (2026-12-07, session 26). One margin does not fit every subject: 0.05 covers fur and lace
(coverage 0.849) but costs thin lines next to a hard-edged subject (DAVIS paragliding-launch J 0.802 ->
0.794). So with ``band_margin = "auto"`` each binary or soft keyframe's matte chooses the margin of the frames
up to the next keyframe (:func:`softness`, :func:`soft_margin`, ``Engine.margin_after``; the chain carries
it, and mattes a binary keyframe again with it so its soft edge is as wide as its neighbours'): :data:`MARGIN`
where the edge is hard, up to :data:`SOFT_MARGIN` where it is soft. The wider margin keeps the base margin's
test of what is a wide part (:func:`_reach`). Same benchmark, fixed 0.025 -> chosen at keyframes (0.025 ->
0.075 over a share of 0.25 -> 0.45): coverage 0.750 -> 0.863 (0.860 -> 0.914 of the soft mass), dtSSD 0.795
-> 0.776x, SAD 0.722 -> 0.736x, MSE 0.561 -> 0.523x, Grad 0.658 -> 0.615x, band 0.95 -> 1.44x the oracle's,
the chain's CPU 207 -> 271 s; dim1 (a see-through sheet whose alpha-0.17 half lies outside the binary mask)
stays at 0.40. Ramped to 0.05 over 0.25 -> 0.35: coverage 0.837, dtSSD 0.778x, SAD 0.735x, 244 s. DAVIS
``vmatte run`` J: see the README (their keyframes' softness is 0.14-0.27, at the foot of the ramp). Matted
once, at the base margin, the keyframes covered 0.59-0.84 of the soft pixels where their neighbours covered
0.82-0.98 (a pop at every keyframe); matted again, within 0.01-0.08 of their neighbours.

Conventions: trimaps (H, W) uint8 {0, 128, 255}; alpha (H, W) float32 [0, 1]; sizes in px of the frame.
"""

from __future__ import annotations

import cv2
import numpy as np

from vmatte.frame import TRIMAP_BG, TRIMAP_FG, TRIMAP_UNKNOWN
from vmatte.propagate.trimap import near_wide

LEVEL = 0.1  # alpha this far from the definite neighbour's value at the band's edge counts as cut off
REACH = 3  # cut-offs count within this many steps of a wide foreground part
STEP = 0.0125  # widening per step, fraction of the frame's short side (3 px at 240p, 13.5 px at 1080p)

_RING = np.ones((3, 3), np.uint8)

# [engine] grow_band = "auto": steps per engine. ViTMatte's are not measured (no weights here), so it keeps
# the band as propagated until they are
AUTO_STEPS = {"classic": 1}

# [engine] band_margin = "auto": the band widened by this fraction of the short side on every frame, before the
# first pass (6 px at 240p, 12 px at 480p); ViTMatte's is not measured (no weights here)
MARGIN = 0.025
AUTO_MARGIN = {"classic": MARGIN}

# ... and up to this much where the keyframe's matte shows a soft edge (:func:`soft_margin`): the margin rises
# from MARGIN to SOFT_MARGIN as the share of fractional alpha near the keyframe's edge (:func:`softness`) rises
# across SOFT_SHARE
SOFT_MARGIN = 0.075
AUTO_SOFT_MARGIN = {"classic": SOFT_MARGIN}
SOFT_SHARE = (0.25, 0.45)
SOFT_RING = MARGIN  # softness is measured this far (fraction of the short side) on both sides of the edge


def steps_for(engine_name: str) -> int:
    """Widening steps ``grow_band = "auto"`` gives this engine."""
    return AUTO_STEPS.get(engine_name, 0)


def margin_for(engine_name: str) -> float:
    """Band margin ``band_margin = "auto"`` gives this engine (fraction of the short side)."""
    return AUTO_MARGIN.get(engine_name, 0.0)


def soft_margin_for(engine_name: str) -> float:
    """The widest margin ``band_margin = "auto"`` gives this engine where a keyframe's edge is soft (0 = the
    margin does not follow softness)."""
    return AUTO_SOFT_MARGIN.get(engine_name, 0.0)


def softness(alpha: np.ndarray, mask: np.ndarray) -> float:
    """How soft a matte's edge is: the share of pixels with fractional alpha (0.05-0.95) among those within
    :data:`SOFT_RING` of the short side of ``mask``'s edge (both sides). alpha (H, W) float32 [0, 1]; mask
    (H, W) uint8, foreground > 127. 0 when the mask has no edge.

    A hard edge's matte is fractional over a pixel or two of the ring (plus the engine's haze); hair, fur and
    motion blur fill more of it. Measured on keyframe 0 of the shipped chain's output (2026-12-07): the 11
    composites of real GT mattes 0.18-0.49 (9 of 11 >= 0.29), the 7 DAVIS clips 0.14-0.27. Cost, once per
    keyframe: 2.6 / 14 / 56 CPU ms at 480p / 1080p / 4K."""
    h, w = mask.shape
    fg = (mask > 127).view(np.uint8)
    edge = cv2.morphologyEx(fg, cv2.MORPH_GRADIENT, _RING)
    if not edge.any():
        return 0.0
    ring = cv2.distanceTransform(1 - edge, cv2.DIST_L2, 3) <= margin_px(SOFT_RING, w, h)
    a = alpha[ring]
    return float(np.count_nonzero((a > 0.05) & (a < 0.95)) / a.size)


def soft_margin(share: float, margin: float, widest: float) -> float:
    """The band margin for a :func:`softness` ``share``: ``margin`` up to the low end of :data:`SOFT_SHARE`,
    ``widest`` from its high end, linear between (a ramp, so a clip near the threshold does not flip margins
    from one keyframe to the next)."""
    lo, hi = SOFT_SHARE
    t = min(1.0, max(0.0, (share - lo) / (hi - lo)))
    return margin + t * max(0.0, widest - margin)


def margin_px(margin: float, width: int, height: int) -> int:
    """A band margin (fraction of the short side) in px at this frame size: 0 for 0, else at least 1."""
    return max(1, round(margin * min(width, height))) if margin > 0 else 0


def step_px(width: int, height: int) -> int:
    """One widening step in px at this frame size (at least 1)."""
    return max(1, round(STEP * min(width, height)))


def cut_off(trimap: np.ndarray, alpha: np.ndarray, level: float = LEVEL) -> np.ndarray:
    """(H, W) bool: unknown pixels 8-adjacent to definite background with alpha > ``level``, or to definite
    foreground with alpha < 1 - ``level`` (the band truncated the matte there)."""
    unknown = trimap == TRIMAP_UNKNOWN
    near_bg = cv2.dilate((trimap == TRIMAP_BG).view(np.uint8), _RING) > 0
    near_fg = cv2.dilate((trimap == TRIMAP_FG).view(np.uint8), _RING) > 0
    return unknown & ((near_bg & (alpha > level)) | (near_fg & (alpha < 1.0 - level)))


def widen(trimap: np.ndarray, alpha: np.ndarray, px: int, level: float = LEVEL) -> np.ndarray | None:
    """``trimap`` with definite pixels within ``px`` of a cut-off pixel (:func:`cut_off`) made unknown, or
    None when the matte is cut off nowhere (nothing to do).

    No part is made unknown whole: the inner half of every part keeps its label (:func:`_reach`). Made
    unknown whole, an arm, a leg or a gap between them loses the constraint that holds it, and fades (DAVIS
    parkour, classic engine: J 0.895 -> 0.872 when they were widened whole). And only cut-offs within
    ``REACH`` steps of a wide foreground part count: the thin unknown ring of a kite line
    (vmatte.propagate.lines) widened into halos of water around the lines (kite-surf J 0.758 -> 0.729)."""
    return _reach(trimap, cut_off(trimap, alpha, level), px)


def pad(trimap: np.ndarray, px: int, wide_px: int | None = None) -> np.ndarray | None:
    """``trimap`` with the band widened by ``px`` into both sides along its whole length (:data:`MARGIN`),
    with :func:`widen`'s limits: the inner half of every part keeps its label, and only band within ``REACH``
    widths of a wide foreground part grows (wide: a disk of radius ``px``, or ``wide_px`` where smaller, fits
    in it); None when nothing changes. (H, W) uint8 {0, 128, 255} in and
    out. Without those limits the thin unknown rings of kite lines grew into water the engine then pulled
    towards the lines (DAVIS kite-surf J 0.797 -> 0.749), and a small subject made unknown whole was matted
    as background (libby J 0.848 -> 0.619, added pixels pulled at 0.3)."""
    unknown = trimap == TRIMAP_UNKNOWN
    definite = cv2.dilate((~unknown).view(np.uint8), _RING) > 0
    return _reach(trimap, unknown & definite, px, wide_px)


def _thickness(depth: np.ndarray, part: np.ndarray, px: int) -> np.ndarray:
    """(H, W) float32: a part's local half-thickness, the largest ``depth`` (float32 px to the part's outside)
    within about ``px`` px of each pixel along the part itself (``part``, (H, W) bool): 5x5 dilations kept
    inside the part, so a thin part beside a thick one (a line leaving the body, the gap between two legs)
    is not taken for thick. 0 outside the part."""
    five = np.ones((5, 5), np.uint8)
    inside = part.astype(np.float32)
    half, grown = depth.copy(), np.empty_like(depth)
    for _ in range((px + 1) // 2):  # in place: ~2x faster than np.where at 1080p
        cv2.dilate(half, five, dst=grown)
        cv2.multiply(grown, inside, dst=half)
    return half


def _reach(trimap: np.ndarray, seeds: np.ndarray, px: int, wide_px: int | None = None) -> np.ndarray | None:
    """``trimap`` with definite pixels within ``px`` of ``seeds`` ((H, W) bool, on the band) made unknown,
    except the inner half of each part: a pixel keeps its label where it lies deeper in its part than half the
    part's local half-thickness (the largest depth within ``px``), so a part narrower than twice ``px`` gives
    up its outer half and keeps a definite core; only seeds within ``REACH * px`` of a wide foreground part
    (one a disk of radius ``px``, or ``wide_px`` where smaller, fits in) count. None when nothing changes or
    there is no wide foreground part. (A soft keyframe's wider margin keeps the base margin's ``wide_px``: with
    its own, the lace of composite dim9, 12 px at its thickest, was no longer wide at 12 px and got no margin.)

    Until 2026-12-07 (session 25) parts narrower than ``px`` kept their label whole: no margin or growth at
    all on an arm, a leg or a lock of hair narrower than twice the margin (24 px at 480p), whose soft edge
    then stayed 0 or 1. Measured in the module docstring."""
    if not seeds.any():
        return None
    # only pixels within px of a seed can change, and their thickness looks px further: the rest keeps its
    # label without measuring it (most of a frame around a small subject)
    x, y, w, h = cv2.boundingRect(seeds.view(np.uint8))
    m = 2 * px + 2
    roi = (slice(max(0, y - m), y + h + m), slice(max(0, x - m), x + w + m))
    keep = np.ones(trimap.shape, bool)
    keep[roi] = False
    for label in (TRIMAP_FG, TRIMAP_BG):
        part = trimap == label
        depth = cv2.distanceTransform(part.view(np.uint8), cv2.DIST_L2, 5)
        d, p = depth[roi], part[roi]
        keep[roi] |= p & (d > 0.5 * _thickness(d, p, px))
        if label == TRIMAP_FG:
            core = (near_wide(depth, px if wide_px is None else min(px, wide_px)) & part).view(np.uint8)
            if not core.any():
                return None  # no wide foreground at all: nothing whose soft edge could spill
            seeds = seeds & (cv2.distanceTransform(1 - core, cv2.DIST_L2, 5) <= REACH * px)
            if not seeds.any():
                return None
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1, 2 * px + 1))
    reach = (cv2.dilate(seeds.view(np.uint8), disk) > 0) & ~keep
    out = trimap.copy()
    out[reach] = TRIMAP_UNKNOWN
    return out
