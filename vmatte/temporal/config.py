"""Temporal smoothing options (schema only; no numpy/opencv import)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import ClassVar

from vmatte.temporal.tuning import Tuning


@dataclass(frozen=True)
class SmoothConfig:
    """Motion-compensated, edge-aware temporal smoothing of alpha inside the unknown band.

    Output frame t is a confidence-weighted average of frames ``t - lookbehind .. t + lookahead`` of the same
    shot, each warped onto frame t with optical flow. The window is finite (no recursion), so memory is
    bounded (``lookbehind + lookahead + 1`` frames) and a chunk that starts with ``lookbehind`` warm-up frames
    and ends with ``lookahead`` extra frames reproduces a single run exactly. The flow (preset, working
    resolution) and scene cuts are :class:`~vmatte.motion.config.FlowConfig`, shared with propagation.

    enabled: turn smoothing on/off (off: frames pass through unchanged, no delay).
    strength: 0..1, how far alpha moves from the frame's own value towards the motion-compensated average
        (1 = full average, 0 = no change).
    lookahead: future frames used (= frames of output delay), 0..16.
    lookbehind: past frames used, 0..16.
    The tuned constants (colour, alpha and time widths, occlusion tolerance, how candidates combine) are
    not options: see :mod:`vmatte.temporal.tuning`.
    """

    # keys a config file may still carry from earlier versions: now constants (vmatte.temporal.tuning)
    REMOVED: ClassVar[frozenset[str]] = frozenset(f.name for f in fields(Tuning))

    enabled: bool = True
    strength: float = 1.0
    lookahead: int = 4
    lookbehind: int = 4

    def __post_init__(self) -> None:
        if not 0.0 <= self.strength <= 1.0:
            raise ValueError(f"strength must be in [0, 1], got {self.strength}")
        if not 0 <= self.lookahead <= 16:
            raise ValueError(f"lookahead must be in [0, 16], got {self.lookahead}")
        if not 0 <= self.lookbehind <= 16:
            raise ValueError(f"lookbehind must be in [0, 16], got {self.lookbehind}")
