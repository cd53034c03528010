"""Trimap propagation options (schema only)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class PropagateConfig:
    """How keyframe masks become a trimap on every frame.

    Band widths are fractions of the frame's short side so that a 4K clip gets the same band, relative to the
    picture, as a 480p one (``band`` 0.012 ≈ 6 px at 480p, 26 px at 2160p).

    work_size: long side in px of the working resolution used for flow (results are upsampled).
    band: unknown band half-width at keyframes drawn as binary masks / soft alphas, fraction of the short side.
    band_min / band_max: limits of the adaptive band between keyframes, fraction of the short side: band_min
        where both directions agree and flow is consistent, up to band_max where flow is inconsistent.
    flow: OpenCV DIS preset.
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
    scene_cut: colour-histogram distance (total variation, 0-1, see vmatte.temporal.scenecut) between
        consecutive frames above which propagation does not carry masks across (0 disables).
    """

    work_size: int = 640
    band: float = 0.012
    band_min: float = 0.006
    band_max: float = 0.05
    flow: Literal["ultrafast", "fast", "medium"] = "medium"
    use_alpha_feedback: bool = True
    suggest_keyframes: int = 5
    snap: bool = True
    snap_radius: float = 0.012
    sure: float = 0.9
    max_feedback_lag: int = 8
    scene_cut: float = 0.3
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

    def __post_init__(self) -> None:
        if self.work_size < 64:
            raise ValueError(f"work_size must be >= 64 px, got {self.work_size}")
        if not (0 < self.band_min <= self.band <= self.band_max < 0.5):
            raise ValueError(
                f"need 0 < band_min <= band <= band_max < 0.5, got {self.band_min}, {self.band}, {self.band_max}"
            )
        if self.flow not in ("ultrafast", "fast", "medium"):
            raise ValueError(f"flow must be ultrafast, fast or medium, got {self.flow!r}")
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
        if self.suggest_keyframes < 0 or self.max_feedback_lag < 0 or not (0 <= self.scene_cut <= 1):
            raise ValueError("suggest_keyframes and max_feedback_lag must be >= 0, scene_cut in [0, 1]")
