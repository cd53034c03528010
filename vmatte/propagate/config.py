"""Trimap propagation options (schema only)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class PropagateConfig:
    """How keyframe masks become a trimap on every frame.

    Band widths are fractions of the frame's short side so that a 4K clip gets the same band, relative to the
    picture, as a 480p one (``band`` 0.012 ≈ 6 px at 480p, 26 px at 2160p).

    work_size: long side in px of the working resolution used for flow (results are upsampled).
    band: unknown band half-width at keyframes drawn as binary masks / soft alphas, fraction of the short side.
    band_min / band_max: limits of the adaptive band between keyframes, fraction of the short side.
    flow: OpenCV DIS preset.
    use_alpha_feedback: warp the previous frame's alpha as extra trimap evidence.
    """

    work_size: int = 640
    band: float = 0.012
    band_min: float = 0.006
    band_max: float = 0.05
    flow: Literal["ultrafast", "fast", "medium"] = "medium"
    use_alpha_feedback: bool = True
    suggest_keyframes: int = 5

    def __post_init__(self) -> None:
        if self.work_size < 64:
            raise ValueError(f"work_size must be >= 64 px, got {self.work_size}")
        if not (0 < self.band_min <= self.band <= self.band_max < 0.5):
            raise ValueError(
                f"need 0 < band_min <= band <= band_max < 0.5, got {self.band_min}, {self.band}, {self.band_max}"
            )
