"""Temporal smoothing options (schema only)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SmoothConfig:
    """Motion-compensated, edge-aware temporal smoothing of alpha.

    enabled: turn smoothing on/off.
    strength: 0..1, weight of the motion-compensated history where flow is reliable.
    lookahead: frames of delay the smoother may hold (bounded memory: lookahead + 1 frames).
    scene_cut_threshold: histogram distance above which a scene cut resets temporal state.
    """

    enabled: bool = True
    strength: float = 0.6
    lookahead: int = 2
    scene_cut_threshold: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.strength <= 1.0:
            raise ValueError(f"strength must be in [0, 1], got {self.strength}")
        if not 0 <= self.lookahead <= 16:
            raise ValueError(f"lookahead must be in [0, 16], got {self.lookahead}")
