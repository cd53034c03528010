"""Tuned constants of the flow propagator: not user options.

Each was a ``[propagate]`` option once. They are either experimental (off by default: ``layer_radius``,
``band_from_disagreement``, ``unknown_disagreement``, ``soft_band``) or internal thresholds set once on a
benchmark that a user has no reason to move. They live in one frozen dataclass so that the bench scripts
(``scripts/bench_propagate.py --tune KEY=VALUE``) and tests can still vary them, through
``Propagator(..., tuning=Tuning(...))``; a config file cannot (``vmatte.propagate.config.REMOVED`` makes an old
key a clear error).

Fractions are of the working resolution's short side unless noted.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tuning:
    """Propagation constants (defaults = the shipped behaviour).

    sure: probability a pixel needs (>= sure or <= 1 - sure) in every weighted direction to be definite.
    snap_radius: guided filter radius of edge snapping, fraction of the working short side (2 px at 640x360).
        A wider filter smears every part narrower than itself (an arm seen edge-on, a kite line) into a low
        ridge that the 0.5 threshold erases. 2026-12-07, DAVIS every 10 (flows cached), radius 0.003 / 0.005 /
        0.008 / 0.012 (the old default) / 0.016: IoU 0.841 / 0.845 / 0.844 / 0.842 / 0.837, hard 0.026 / 0.027 /
        0.027 / 0.026 / 0.026, recall 0.907 / 0.906 / 0.906 / 0.907 / 0.908, unknown 1.59 / 1.55 / 1.56 / 1.57 /
        1.60, worst decile 0.697 / 0.701 / 0.701 / 0.699 / 0.694 (at 1 px the mask picks up texture: extra
        0.037 -> 0.045); every 20 at 0.008: unchanged (0.805). ``vmatte run`` J (classic, frames 0-40, keys
        every 10, 7 clips) 0.012 -> 0.005: 0.8613 -> 0.8644, 6 clips up, breakdance 0.8519 -> 0.8518; dtSSD
        9.20 -> 9.12, lower on all 7. Composites over DAVIS (bench_smooth_e2e, 11 clips, means of ratios to the
        oracle): SAD 0.77 -> 0.74x (lower on all 11), MSE 0.81 -> 0.74x, Grad 0.93 -> 0.87x, dtSSD 0.93 -> 0.89x,
        coverage 0.527 -> 0.524. The SAM 2 propagator snaps with the same radius (not measured: no weights here).
    unknown_soft: mark unknown every pixel whose propagated probability is soft (between 1 - sure and sure),
        however far from the mask boundary (thin lines and hair live there).
    color_zone: half-width of the zone around the boundary where colour models learn and apply.
    color_cell: local colour models: square cells of this fraction of the short side, each with its own colour
        statistics, backed by the keyframe's global model; 0 = the global model only (DAVIS every-10 IoU
        0.809 global -> 0.826 local).
    layer_radius: foreground-layer flow: near and outside the mask the flow is replaced by the object's own
        motion, extrapolated from the mask interior eroded by this fraction (0 = raw flow). Alone it helps
        rigid motion but lowers DAVIS every-10 IoU 0.829 -> 0.792, where limbs and cloth move unlike the
        interior: hence layer_coherence.
    layer_coherence: the layer's motion is extended only where the interior motions it averages agree, their
        standard deviation below this many work px (FlowPair.layer_flow; 0 = everywhere). 2026-12-05, with
        layer_radius 0.06: composites over DAVIS (bench_smooth_e2e, 11 clips, means of ratios to the oracle)
        SAD 1.67 -> 1.34x, MSE 3.50 -> 2.39x, dtSSD 1.40 -> 1.27x; DAVIS every-10 IoU 0.829 =, worst decile
        0.691 =, unknown 1.91 -> 1.92; parkour 0-20 J 0.888 =. At 0.2 px DAVIS lost 0.001 IoU (horsejump-high
        0.878 -> 0.870), at 0.1 px the composites kept less (SAD 2.03x on dim0/3/6/8 against 1.98x at 0.15).
    line_rescue: between keyframes, the thin straight parts of the keyframe before (kite lines, spokes) are
        followed in the frames themselves and made foreground (vmatte.propagate.lines). DAVIS, keys every 10,
        ``vmatte run`` classic: kite-surf J 0.695 -> 0.730 (pixel-wise search), 0.782 since 2026-12-06 (whole
        segments searched and carried along, see the module); clips whose masks have no such parts unchanged.
    layer_trust: where the foreground layer's motion carried a chain's label past the subject's edge, the
        chain keeps the consistency of the interior motion it averaged instead of the raw flow's at that pixel
        (FlowPair.layer_motion ``trust``). Without it a background that moves fast beside a rigid subject (a
        dancer next to a moving composite, a car passing a sign) makes the subject's own edge "unreliable",
        colour takes over there, and a background object of the subject's colour is pulled into the mask.
        2026-12-06: composites over DAVIS (bench_smooth_e2e, 11 clips, means of ratios to the oracle) SAD
        1.23 -> 0.89x, MSE 2.08 -> 1.14x, Grad 1.66 -> 1.15x, dtSSD 1.22 -> 1.04x, coverage 0.561 -> 0.531
        (the band 0.64 -> 0.46x the oracle's); DAVIS every-10 IoU 0.831 =, hard 0.028 =, recall 0.901 =,
        unknown 1.84 -> 1.82, worst decile 0.691 =; every-20 IoU 0.786 -> 0.785, unknown 2.10 -> 2.08, worst
        decile 0.630 -> 0.626; first frame only IoU 0.525 -> 0.526; ``vmatte run`` J on 6 DAVIS clips 0.8313 =.
    colour_rel_max: the colour models' weight is lam x (1 - the more reliable direction's reliability), not
        lam x (1 - the directions' mean): where one direction's flow failed (a dancer crossing beside the
        subject, an occlusion) and the other's holds, a mean of 0.9 and 0 made colour outvote the reliable
        direction and pull background of the subject's colour into the mask. 2026-12-06: composites over
        DAVIS (bench_smooth_e2e, 11 clips, means of ratios to the oracle) SAD 0.89 -> 0.86x, MSE 1.14 ->
        1.06x, Grad 1.15 -> 1.10x, dtSSD 1.04 -> 1.01x (dim0 SAD 1.08 -> 1.01, dim3 1.72 -> 1.67); DAVIS
        every-10 IoU 0.833 -> 0.835, hard 0.028 -> 0.029, recall 0.902 -> 0.898, unknown 1.77 -> 1.70,
        worst decile 0.692 -> 0.693; every-20 IoU 0.787 -> 0.790, hard 0.043 -> 0.044, recall 0.875 ->
        0.872, unknown 2.03 -> 1.94; ``vmatte run`` J on 6 DAVIS clips 0.8363 -> 0.8367 (dance-twirl
        0.874 -> 0.878).
    band_from_disagreement: widen the band where the forward and backward probabilities differ (off).
    unknown_disagreement: mark unknown every pixel where the two directions disagree, even beyond band_max (off).
    soft_band: with alpha feedback, pixels where the latest matte carried to this frame is fractional become
        unknown up to this fraction from the propagated boundary (0 = off: on DAVIS parkour 0-20, classic
        engine, frame IoU 0.888 off, 0.843 at 0.03, 0.820 at 0.1; a half-transparent ghost feeds itself).
    soft_grow: the soft zone so carried grows by this fraction per frame.
    cut_color: weight of the local colour log-odds in the graph cut's data term (times the keyframes' colour
        accuracy factor).
    cut_reach: where the flow is unreliable the cut (and colour) zone reaches this fraction beyond color_zone.
    cut_below: the cut decides only pixels whose flow reliability is below this (1.01 = everywhere in its zone, the
        default since 2026-12-07). Where the flow is reliable the cut's data term is the propagated probability
        itself, so the label stands, but the cut still snaps its boundary to the image's edges. With the photometric
        fit (photo_fit) against 0.6 before: DAVIS every 10 at 0.4 / 0.6 / 0.8 / 0.9 / 1.01: IoU 0.836 / 0.837 /
        0.839 / 0.840 / 0.841, hard 0.027 / 0.027 / 0.026 / 0.026 / 0.026, recall 0.905 / 0.906 / 0.907 / 0.908 /
        0.908, unknown 1.58 / 1.59 / 1.59 / 1.59 / 1.60, worst decile 0.692 / 0.693 / 0.694 / 0.698 / 0.699 (8 of 9
        clips up at 1.01, blackswan 0.972 -> 0.966); every 20 IoU 0.799 -> 0.804, hard 0.039 -> 0.037, recall 0.883
        -> 0.887, unknown 1.83 -> 1.84, worst decile 0.646 -> 0.656; first frame only IoU 0.535 -> 0.537, recall
        0.722 -> 0.724; ``vmatte run`` J (classic, frames 0-40, keys every 10, 7 clips) 0.8384 -> 0.8420 (parkour
        0.8875 -> 0.8941, libby 0.8098 -> 0.8183, breakdance 0.8404 -> 0.8452, kite-surf 0.7844 -> 0.7841), dtSSD
        9.93 -> 9.81. It costs on the soft composites (bench_smooth_e2e, 11 clips, means of ratios to the oracle):
        SAD 0.81 -> 0.83x, MSE 0.91 -> 0.95x, Grad 1.03 -> 1.06x, dtSSD 0.98 -> 0.99x, coverage 0.522 -> 0.527 (dim8
        SAD 1.17 -> 1.27x, dim0 0.76 -> 0.82x); the shares of SAD on wrong definite labels and forced by the band
        hardly move (dim8 0.00 / 0.28 both times), so the cost is the engine's, on a band placed differently. CPU
        per frame of the pass (dog / parkour / breakdance, flows cached): 97 / 95 / 121 ms at 0.6, 92 / 94 / 115 ms
        at 1.01.
    thin_level / thin_width: thin parts narrower than thin_width work px that survive the warps as a ridge of
        probability at least thin_level above its surroundings stay in the mask (thin_level 0 = off).
    keypoint_motion: large-displacement fallback (motion.carry) when the flow-warped source differs from the
        frame by more than this many grey levels over the subject (0 = off).
    band_inner: the unknown band reaches at most this fraction into the mask, so failing flow leaves a definite
        body with an unknown edge (0 = no limit).
    core_flow: inside that limit the colour models back a definite body only where the chains themselves give
        the pixel at least this probability (reliable or not): colour alone must not make definite foreground
        of another object the cut and the colour blend already pulled into the mask (composites over DAVIS,
        dim0/dim6/dim8: SAD 2.89 -> 2.64x the oracle, MSE 7.58 -> 6.56x; DAVIS every-10 IoU 0.829 =, hard
        0.028 -> 0.027, unknown 1.91 -> 1.92; parkour 0-20 fast-motion J 0.889 -> 0.888; 0 = colour alone).
    ghost_motion: where a chain lost its reliability (an uncovered region keeps the subject's old label) but the
        flow is consistent again and moves like the background within this fraction of the short side, the
        pixel becomes background (chain.release_ghost; 0 = off). DAVIS every-10 (parkour, breakdance,
        dance-twirl, horsejump-high): IoU 0.8669 -> 0.8686, hard 0.0059 -> 0.0056, worst10 0.772 -> 0.780,
        unknown 1.570 -> 1.545, recall 0.975 = (0.003: 0.869 / 0.0054 / 0.779 / 1.56). Judo with one keyframe
        (issue 14): part of the wall the arms uncover is cleared; the poster and bicycle still leak (their
        chain is lost while the blurred arms still pass, and the flow there follows the arms).
    colour_undecayed: the colour models' weight follows how well the flow held (the product of its
        consistencies), not the chain's reliability, which also decays by 2 % a step however well the flow
        holds (chain._DECAY, for the boundary's drift, which the band's width answers). With one keyframe
        the decayed reliability sank to 0.3 by frame 60 over a static background, and colour took over a
        clip's well-tracked background: MatAnyone test-sample2 (one mask, 108 frames) grew islands of a
        dark jacket beside the subject's face from frame ~50. 2026-12-06: composites over DAVIS
        (bench_smooth_e2e, 11 clips, keys every 24, means of ratios to the oracle) SAD 0.86 -> 0.81x, MSE
        1.06 -> 0.89x, Grad 1.10 -> 1.02x, dtSSD 1.01 -> 0.97x, coverage 0.528 -> 0.523; DAVIS first frame
        only IoU 0.526 -> 0.532, hard 0.201 -> 0.200, unknown 4.67 -> 4.59, worst decile 0.320 -> 0.332;
        every-10 IoU 0.835 -> 0.834, hard 0.029 -> 0.030, recall 0.898 -> 0.897; every-20 IoU 0.790 =, hard
        0.044 -> 0.045, recall 0.872 -> 0.869, unknown 1.94 -> 1.91 (with blend's rule that keyframes which
        contradict each other stay unknown half way between them however deep in the mask).
    photo_fit: a chain step keeps 1 - e / photo_fit of its reliability where the source frame warped by the flow
        differs from the destination by e grey levels (smoothed over 2 px), however the forward-backward check came
        out (chain.photometric_fit; 0 = off). The round trip fails wherever DIS's reverse flow misses, also where
        the forward flow is right; the chain's reliability then drops to ~0, the band widens and colour decides. It
        raises the chain's reliability only; the foreground layer still weighs its interior by the round trip's
        consistency (raising that too cost composite dim6 SAD 0.76 -> 0.79x the oracle). 2026-12-07, DAVIS every 10
        at 4 / 8 / 16 / 32: unknown 1.71 -> 1.68 / 1.65 / 1.59 / 1.53, recall 0.904 -> 0.905 / 0.905 / 0.906 /
        0.903; at 16 IoU 0.836 -> 0.837, hard 0.027 =, worst decile 0.693 =; every 20 IoU 0.792 -> 0.799, hard 0.042
        -> 0.039, recall 0.878 -> 0.883, unknown 1.92 -> 1.83, worst decile 0.629 -> 0.646; first frame only IoU
        0.533 -> 0.535, hard 0.195 -> 0.199 (libby, the dog lost behind posts), unknown 4.62 -> 4.41; ``vmatte run``
        J (classic, frames 0-40, keys every 10, 7 clips) 0.8362 -> 0.8384 (libby 0.8025 -> 0.8098, breakdance 0.8373
        -> 0.8404, kite-surf 0.7854 -> 0.7844); parkour 70-89 (keys 70 / 80) 0.8923 -> 0.8884 (frame 78 0.761 ->
        0.734). It does not help where the flow itself is wrong: parkour 79's head lies ~20 work px from where the
        chain from keyframe 80 puts it; the blend's p over it is 0.64 before, 0.62 after, and unknown either way,
        and the classic engine mattes it as the wall behind. Counting it only where the frame is textured (local std
        >= 4 grey levels) kept less (unknown 1.61). Composites over DAVIS (bench_smooth_e2e, 11 clips, means of
        ratios to the oracle): SAD 0.81x =, MSE 0.90 -> 0.91x, Grad 1.02 -> 1.03x, dtSSD 0.98x =, coverage 0.524 ->
        0.522 (dim6 SAD 0.73 -> 0.76x). Cost: 1.3 CPU ms a chain step at 640x360.
    anchored: a piece of the mask that no chain puts in the foreground (the chains' probability below 0.5 over
        all of it: the colour models or the cut alone made it) and nowhere wider than 4 work px is dropped, and a
        thin ridge (thin_level) is kept only where the chains give it thin_level themselves. Colour classifies
        pixels, not objects: MatAnyone test-sample1's black top row, a codec line above the subject's head, took
        the colour of his hair and suit, the cut keeps a 1-px line at the frame's edge cheaply, and with the
        classic engine's prior it became an opaque line in the matte. Dropping every unbacked piece, wide ones
        too, lost libby's dog coming out from behind a trunk (every-10 worst decile 0.214 -> 0.167). 2026-12-07,
        DAVIS every 10: IoU 0.8415 -> 0.8421, hard 0.0259 -> 0.0263, recall 0.9083 -> 0.9071, unknown 1.595 ->
        1.566; every 20: IoU 0.804 -> 0.805, hard 0.037 -> 0.038, recall 0.887 -> 0.885, unknown 1.84 -> 1.79;
        ``vmatte run`` J (7 clips) 0.8612 -> 0.8613. Such a piece at least 5 times as long as it is wide (area /
        width², blend._STRIP_LENGTH) is dropped however wide (2026-12-07, session 24): the same clip from its
        first-frame mask kept the dark gap of the ceiling fixture above his head, once the head had touched the
        frame's top and moved down, as a detached bar 6-12 work px tall and ~70 long on frames 48-78 (an opaque
        bar in the matte); now on frames 71-72 only, where it joins the head. Unbacked pieces wider than 4 px on
        DAVIS are at most 4.8 widths long with keys every 10 (unchanged to 4 decimals); first frame only IoU
        0.6019 -> 0.6027, unknown 4.481 -> 4.474; every 20 unknown 1.7867 -> 1.7861, the rest equal. At 6 / 8
        widths: first frame 0.6026 / 0.6023, and the bar stays on frame 70. Counting a piece backed on under
        10 % of its area as unbacked too (aimed at parkour's handrail from its first frame, which a lost chain
        backs at one end): first frame 0.6009, not kept.
    carry_decided: a one-sided chain (past the last keyframe, before the first) carries on the frame's decided
        probability (after colour and the cut) where the flow along it held less than this (its reliability
        without the distance decay), instead of its own lost label (chain.Motion.carry_decided; 0 = off).
        Between keyframes the other direction re-anchors a lost chain; past the last one nothing did, and the
        chain kept the subject where it lost it while the subject moved on, out of reach of colour and the cut
        (libby: the dog behind a post after keyframe 40, frame IoU 0.03 at 48). Not at the frame's 4-px edge,
        where the chain is lost on every frame (MatAnyone test-sample1's black top row crept in as
        foreground). 2026-12-07, DAVIS (flows cached): every 10 IoU 0.845 -> 0.850, hard 0.027 -> 0.025, recall
        0.906 -> 0.909, unknown 1.55 -> 1.56, worst decile 0.701 -> 0.740 (libby 0.215 -> 0.568, its frames
        46 / 48 0.17 / 0.03 -> 0.63 / 0.77 under ``vmatte run``; dance-twirl 0.824 -> 0.805, its last frames
        86-89 lose 0.02-0.06); every 20 IoU 0.805 -> 0.810, hard 0.039 -> 0.037, worst decile 0.656 -> 0.668;
        first frame only IoU 0.537 -> 0.602, hard 0.199 -> 0.091, recall 0.721 -> 0.852, unknown 4.34 -> 4.48,
        worst decile 0.336 -> 0.360 (breakdance 0.21 -> 0.47: the dancer is kept, not lost by frame ~20).
        Judged on the decayed reliability (every pixel below 0.5 ~35 frames from the keyframe) and with no
        frame limit, the first-frame protocol leaked instead: IoU 0.533, hard 0.219, unknown 6.44. At 0.3 / 0.5 /
        0.7: every 10 IoU 0.850 / 0.850 / 0.849, worst decile 0.740 / 0.740 / 0.738; first frame only IoU 0.601 /
        0.602 / 0.585, unknown 4.47 / 4.48 / 4.96. Composites (keys at both ends) and
        ``vmatte run`` J on frames 0-40 (keyframe 40 last) have no one-sided frames: unchanged.
    carry_frames: carry_decided only this many frames from the keyframe. A chain that carries decisions for
        longer turns into a frame-by-frame colour segmentation that grows into background of the subject's
        colours as the scene moves on (parkour from its first frame alone: railings and buildings by frame
        40). First frame only, 15 / 20 / 30 / unlimited: IoU 0.561 / 0.582 / 0.602 / 0.564, hard 0.163 / 0.135 /
        0.091 / 0.196, unknown 4.34 / 4.17 / 4.48 / 5.76, worst decile 0.337 / 0.363 / 0.360 / 0.315 (every
        10 and 20 unchanged: their one-sided runs are shorter). Leaks remain where the chain is lost for
        long: parkour's mask takes in parts of the railing from frame ~20 (IoU 0.26 -> 0.43: without it the
        runner is lost by frame 45).
    """

    sure: float = 0.9
    snap_radius: float = 0.005
    unknown_soft: bool = True
    color_zone: float = 0.06
    color_cell: float = 0.167
    layer_radius: float = 0.06
    layer_coherence: float = 0.15
    band_from_disagreement: bool = False
    unknown_disagreement: bool = False
    soft_band: float = 0.0
    soft_grow: float = 0.008
    cut_color: float = 1.0
    cut_reach: float = 0.05
    cut_below: float = 1.01
    thin_level: float = 0.25
    thin_width: int = 5
    keypoint_motion: float = 12.0
    band_inner: float = 0.025
    core_flow: float = 0.35
    ghost_motion: float = 0.006
    line_rescue: bool = True
    layer_trust: bool = True
    colour_rel_max: bool = True
    colour_undecayed: bool = True
    photo_fit: float = 16.0
    anchored: bool = True
    carry_decided: float = 0.5
    carry_frames: int = 30

    def __post_init__(self) -> None:
        if not (0.5 < self.sure < 1.0):
            raise ValueError(f"sure must be in (0.5, 1), got {self.sure}")
        if not (0.0 < self.color_zone < 0.5) or not (0 <= self.color_cell <= 1):
            raise ValueError(f"color_zone must be in (0, 0.5) and color_cell in [0, 1], got {self}")
        if not (0.0 <= self.soft_band < 0.5) or not (0.0 < self.soft_grow < 0.5):
            raise ValueError(f"soft_band must be in [0, 0.5) and soft_grow in (0, 0.5), got {self}")
        if not (0.0 <= self.carry_decided <= 1.0) or self.carry_frames < 0:
            raise ValueError(f"carry_decided must be in [0, 1] and carry_frames >= 0, got {self}")
        if min(
            self.cut_color,
            self.cut_reach,
            self.thin_level,
            self.keypoint_motion,
            self.layer_radius,
            self.ghost_motion,
            self.layer_coherence,
        ) < 0 or not (self.thin_width >= 2 and 0 <= self.band_inner < 0.5 and 0 <= self.core_flow <= 1):
            raise ValueError(
                "cut_color, cut_reach, thin_level, keypoint_motion, layer_radius, ghost_motion and layer_coherence must be >= 0, "
                "thin_width >= 2, "
                f"band_inner in [0, 0.5), core_flow in [0, 1]; got {self}"
            )


TUNING = Tuning()  # the shipped constants
