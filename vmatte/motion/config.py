"""Motion options (schema only; no numpy/OpenCV import)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# options that lived in [propagate] / [smooth] before one motion estimate served both (old key → new key)
MOVED_KEYS = {
    "propagate.flow": "flow.preset",
    "propagate.work_size": "flow.work_size",
    "propagate.scene_cut": "flow.scene_cut",
    "smooth.flow": "flow.preset",
    "smooth.work_size": "flow.work_size",
    "smooth.scene_cut_threshold": "flow.scene_cut",
}


@dataclass(frozen=True)
class FlowConfig:
    """Motion between frames, estimated once per frame pair and shared by propagation, alpha feedback and
    temporal smoothing (so they must agree on its resolution and preset).

    preset: OpenCV DIS optical-flow preset ("ultrafast", "fast", "medium"): speed against accuracy.
    work_size: long side in px of the working resolution flow is computed at (propagation results are
        upsampled; the smoother samples the flow at full resolution, bilinearly, in the unknown band only).
    scene_cut: colour-histogram distance (total variation of an HSV histogram, 0-1, see
        vmatte.motion.scenecut) between consecutive frames above which a frame starts a new shot: propagation
        does not carry masks across it and smoothing does not average across it (0 disables).
    """

    preset: Literal["ultrafast", "fast", "medium"] = "medium"
    work_size: int = 640
    scene_cut: float = 0.3

    def __post_init__(self) -> None:
        if self.preset not in ("ultrafast", "fast", "medium"):
            raise ValueError(f"preset must be ultrafast, fast or medium, got {self.preset!r}")
        if self.work_size < 64:
            raise ValueError(f"work_size must be >= 64 px, got {self.work_size}")
        if not 0.0 <= self.scene_cut <= 1.0:
            raise ValueError(f"scene_cut must be in [0, 1] (0 disables), got {self.scene_cut}")
