"""Trimap propagation options (schema only)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class PropagateConfig:
    """How keyframe masks become a trimap on every frame (the flow's preset, working resolution and scene cuts
    are :class:`~vmatte.motion.config.FlowConfig`, shared with smoothing).

    Band widths are fractions of the frame's short side so that a 4K clip gets the same band, relative to the
    picture, as a 480p one (``band`` 0.012 ≈ 6 px at 480p, 26 px at 2160p).

    band: unknown band half-width at keyframes drawn as binary masks / soft alphas, fraction of the short side.
    band_min / band_max: limits of the adaptive band between keyframes, fraction of the short side: band_min
        where both directions agree and flow is consistent, up to band_max where flow is inconsistent.
    use_alpha_feedback: warp the latest matted alpha (observe()) as extra trimap evidence.
    suggest_keyframes: how many frames to suggest for new keyframe masks.
    snap: guided-filter the propagated probability with the frame before thresholding (edge snapping).
    snap_radius: guided filter radius, fraction of the working short side.
    sure: probability a pixel needs (>= sure or <= 1 - sure) in every weighted direction to be definite.
    max_feedback_lag: alpha older than this many frames is not used as evidence.
    layer_radius: foreground-layer flow: near and outside the mask the flow is replaced by the object's own
        motion, extrapolated from the mask interior eroded by this fraction of the short side (0 = raw flow,
        the default: it helps rigid motion but lowered mean IoU on DAVIS, 0.773 -> 0.756, where limbs and
        cloth move unlike the interior they would be extrapolated from).
    band_from_disagreement: widen the band where the forward and backward probabilities differ.
    unknown_disagreement: mark unknown every pixel where the two directions disagree, even beyond band_max.
    unknown_soft: mark unknown every pixel whose propagated probability is soft (between 1 - sure and sure),
        however far from the mask boundary (thin lines and hair live there).
    color_model: 0..1, weight of the keyframes' colour models where the flow is unreliable (0 = flow only).
        Each keyframe gets P(foreground | colour) learnt within color_zone of its boundary (5-bit RGB bins);
        between keyframes the two models are blended by temporal weight and mixed into the propagated
        probability with weight color_model x (1 - flow reliability) x (how well colour separated the
        keyframe: none at 50 % accuracy, full at 90 %). On DAVIS (keyframes every 10) it raised mean IoU
        0.773 -> 0.81 and cut hard error 0.046 -> 0.03: fast motion (libby, breakdance) is where flow fails.
    color_zone: half-width of the zone around the boundary where colour models learn and apply, fraction of
        the short side.
    color_cell: local colour models: the frame is cut into square cells of this fraction of the short side,
        each with its own colour statistics (learnt over the cell widened by half a cell), backed by the
        keyframe's global model; 0 = the global model only. Local models separate a subject whose colours
        recur elsewhere in the background (DAVIS every-10 IoU 0.809 global -> 0.826 local).
    propagator: "flow" (OpenCV DIS flow + colour models, no weights), "sam2" (SAM 2 video through transformers:
        learned tracking, needs weights) or "auto" (sam2 when its weights are found offline or the hub answers a
        short probe, flow otherwise with one warning). See vmatte.propagate.sam2.
    propagator_model: SAM 2 weights: a hub id (found in the HF cache offline first) or a save_pretrained folder.
    propagator_device: where SAM 2 runs: "auto" (CUDA in bf16 when available, else CPU in fp32), "cpu", "cuda",
        "cuda:N".
    soft_band: soft edges (hair, fur, motion blur) with alpha feedback: pixels where the latest matte, carried
        to this frame by the flow, is fractional become unknown, up to this fraction of the short side from
        the propagated boundary (0 disables); hard edges, where the matte is 0 or 1, stay narrow. Off by
        default: it covers more of a soft edge on composite clips (soft-pixel coverage 0.455 -> 0.655 at 0.1,
        scripts/bench_smooth_e2e.py) but on real footage a half-transparent ghost feeds itself (DAVIS parkour
        0-20, keys 0/10/20, classic engine: frame IoU mean 0.888 off, 0.843 at 0.03, 0.820 at 0.1).
    soft_grow: the soft zone so carried grows by this fraction of the short side per frame (the edge moves,
        and a soft zone the last band cut short can extend past it).
    graph_cut: decide the mask with a graph cut (segment.graph_cut: data term = log-odds of the propagated
        probability plus the local colour models, contrast-sensitive Potts term of this weight in nats; solved
        with PyMaxflow) where the flow is unreliable, so the decided edge follows image edges (0 = off).
    cut_color: weight of the local colour log-odds in the cut's data term (times the keyframes' colour
        accuracy factor, see color_model).
    cut_reach: where the flow is unreliable the cut (and colour) zone reaches this fraction of the short side
        beyond color_zone: a subject the warps lost track of can be found again a little farther away.
    cut_below: the cut decides only pixels whose flow reliability is below this (1.01 = everywhere).
    thin_level / thin_width: thin parts narrower than thin_width work px that survive the warps as a ridge of
        probability at least thin_level above its surroundings stay in the mask (0 = off).
    keep_thin: at binary keyframes, parts of the mask (and gaps in it) narrower than the band keep the drawn
        label instead of vanishing into the band (kite lines, a forearm seen edge-on).
    keypoint_motion: large-displacement fallback (motion.carry): when the flow-warped source differs from the
        frame by more than this many grey levels over the subject, ORB keypoint matches + a RANSAC similarity
        fit carry the subject instead, if they explain it clearly better (0 = off).
    band_inner: the unknown band reaches at most this fraction of the short side into the mask, so failing
        flow leaves a definite body with an unknown edge (0 = no limit).
    """

    band: float = 0.012
    band_min: float = 0.006
    band_max: float = 0.05
    use_alpha_feedback: bool = True
    suggest_keyframes: int = 5
    snap: bool = True
    snap_radius: float = 0.012
    sure: float = 0.9
    max_feedback_lag: int = 8
    layer_radius: float = 0.0
    band_from_disagreement: bool = False
    unknown_disagreement: bool = False
    unknown_soft: bool = True
    color_model: float = 1.0
    color_zone: float = 0.06
    color_cell: float = 0.167
    propagator: Literal["flow", "sam2", "auto"] = "flow"
    propagator_model: str = "facebook/sam2.1-hiera-tiny"
    propagator_device: str = "auto"
    soft_band: float = 0.0
    soft_grow: float = 0.008
    graph_cut: float = 2.0
    cut_color: float = 1.0
    cut_reach: float = 0.05
    cut_below: float = 0.6
    thin_level: float = 0.25
    thin_width: int = 5
    keep_thin: bool = True
    keypoint_motion: float = 12.0
    band_inner: float = 0.025

    def __post_init__(self) -> None:
        if not (0 < self.band_min <= self.band <= self.band_max < 0.5):
            raise ValueError(
                f"need 0 < band_min <= band <= band_max < 0.5, got {self.band_min}, {self.band}, {self.band_max}"
            )
        if not (0.5 < self.sure < 1.0):
            raise ValueError(f"sure must be in (0.5, 1), got {self.sure}")
        if (
            not (0.0 <= self.color_model <= 1.0)
            or not (0.0 < self.color_zone < 0.5)
            or not (0 <= self.color_cell <= 1)
        ):
            raise ValueError(
                "color_model must be in [0, 1], color_zone in (0, 0.5) and color_cell in [0, 1], got "
                f"{self.color_model}, {self.color_zone}, {self.color_cell}"
            )
        if self.propagator not in ("flow", "sam2", "auto"):
            raise ValueError(f"propagator must be flow, sam2 or auto, got {self.propagator!r}")
        if not self.propagator_model:
            raise ValueError("propagator_model must name a hub id or a folder")
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", self.propagator_device):
            raise ValueError(
                f"propagator_device must be auto, cpu, cuda or cuda:N, got {self.propagator_device!r}"
            )
        if not (0.0 <= self.soft_band < 0.5) or not (0.0 < self.soft_grow < 0.5):
            raise ValueError(
                f"soft_band must be in [0, 0.5) and soft_grow in (0, 0.5), got {self.soft_band}, {self.soft_grow}"
            )
        if min(
            self.graph_cut, self.cut_color, self.cut_reach, self.thin_level, self.keypoint_motion
        ) < 0 or not (self.thin_width >= 2 and 0 <= self.band_inner < 0.5):
            raise ValueError(
                "graph_cut, cut_color, cut_reach, thin_level and keypoint_motion must be >= 0, thin_width >= 2, "
                f"band_inner in [0, 0.5); got {self.graph_cut}, {self.cut_color}, {self.cut_reach}, "
                f"{self.thin_level}, {self.keypoint_motion}, {self.thin_width}, {self.band_inner}"
            )
        if self.suggest_keyframes < 0 or self.max_feedback_lag < 0:
            raise ValueError("suggest_keyframes and max_feedback_lag must be >= 0")
