"""Trimap propagation options (schema only)."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import ClassVar, Literal

from vmatte.propagate.tuning import Tuning


@dataclass(frozen=True)
class PropagateConfig:
    """How keyframe masks become a trimap on every frame (the flow's preset, working resolution and scene cuts
    are :class:`~vmatte.motion.config.FlowConfig`, shared with smoothing).

    Band widths are fractions of the frame's short side so that a 4K clip gets the same band, relative to the
    picture, as a 480p one (``band`` 0.012 ≈ 6 px at 480p, 26 px at 2160p). Tuned constants and experimental
    knobs of the flow propagator are not options: see :mod:`vmatte.propagate.tuning`.

    band: unknown band half-width at keyframes drawn as binary masks / soft alphas, fraction of the short side.
    band_min / band_max: limits of the adaptive band between keyframes, fraction of the short side: band_min
        where both directions agree and flow is consistent, up to band_max where flow is inconsistent.
    use_alpha_feedback: warp the latest matted alpha (observe()) as extra trimap evidence.
    suggest_keyframes: how many frames to suggest for new keyframe masks.
    snap: guided-filter the propagated probability with the frame before thresholding (edge snapping).
    max_feedback_lag: alpha older than this many frames is not used as evidence.
    color_model: 0..1, weight of the keyframes' colour models where the flow is unreliable (0 = flow only).
        Each keyframe gets P(foreground | colour) learnt near its boundary (5-bit RGB bins, local models per
        cell of a grid); between keyframes the two models are blended by temporal weight and mixed into the
        propagated probability with weight color_model x (1 - flow reliability) x (how well colour separated
        the keyframe: none at 50 % accuracy, full at 90 %). On DAVIS (keyframes every 10) it raised mean IoU
        0.773 -> 0.81 and cut hard error 0.046 -> 0.03: fast motion (libby, breakdance) is where flow fails.
    propagator: "flow" (OpenCV DIS flow + colour models, no weights), "sam2" (SAM 2 video through transformers:
        learned tracking, needs weights) or "auto" (sam2 when its weights are found offline or the hub answers a
        short probe, flow otherwise with one warning). See vmatte.propagate.sam2.
    propagator_model: SAM 2 weights: a hub id (found in the HF cache offline first) or a save_pretrained folder.
    propagator_device: where SAM 2 runs: "auto" (CUDA in bf16 when available, else CPU in fp32), "cpu", "cuda",
        "cuda:N".
    graph_cut: decide the mask with a graph cut (segment.graph_cut: data term = log-odds of the propagated
        probability plus the local colour models, contrast-sensitive Potts term of this weight in nats; solved
        with PyMaxflow) around the propagated boundary, so the decided edge follows image edges (0 = off).
    keep_thin: at binary keyframes, parts of the mask (and gaps in it) narrower than the band keep the drawn
        label instead of vanishing into the band (kite lines, a forearm seen edge-on).
    hold_keyframes: at keyframes drawn as binary masks the matte's alpha > 0.5 reproduces the mask exactly: the
        engine's soft edge is kept where it agrees and moved just across 0.5 where it does not (trimap and
        soft keyframes are used as given either way).
    """

    # keys a config file may still carry from earlier versions: now constants (vmatte.propagate.tuning)
    REMOVED: ClassVar[frozenset[str]] = frozenset(f.name for f in fields(Tuning))

    band: float = 0.012
    band_min: float = 0.006
    band_max: float = 0.05
    use_alpha_feedback: bool = True
    suggest_keyframes: int = 5
    snap: bool = True
    max_feedback_lag: int = 8
    color_model: float = 1.0
    propagator: Literal["flow", "sam2", "auto"] = "flow"
    propagator_model: str = "facebook/sam2.1-hiera-tiny"
    propagator_device: str = "auto"
    graph_cut: float = 2.0
    keep_thin: bool = True
    hold_keyframes: bool = True

    def __post_init__(self) -> None:
        if not (0 < self.band_min <= self.band <= self.band_max < 0.5):
            raise ValueError(
                f"need 0 < band_min <= band <= band_max < 0.5, got {self.band_min}, {self.band}, {self.band_max}"
            )
        if not (0.0 <= self.color_model <= 1.0) or self.graph_cut < 0:
            raise ValueError(
                f"color_model must be in [0, 1] and graph_cut >= 0, got {self.color_model}, {self.graph_cut}"
            )
        if self.propagator not in ("flow", "sam2", "auto"):
            raise ValueError(f"propagator must be flow, sam2 or auto, got {self.propagator!r}")
        if not self.propagator_model:
            raise ValueError("propagator_model must name a hub id or a folder")
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", self.propagator_device):
            raise ValueError(
                f"propagator_device must be auto, cpu, cuda or cuda:N, got {self.propagator_device!r}"
            )
        if self.suggest_keyframes < 0 or self.max_feedback_lag < 0:
            raise ValueError("suggest_keyframes and max_feedback_lag must be >= 0")
