"""Temporal smoothing options (schema only; no numpy/opencv import)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


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
    sigma_color: colour tolerance (RGB in [0, 1], per-channel RMS) of the photometric check: a warped pixel
        whose colour differs by sigma_color gets weight exp(-1/2).
    sigma_alpha: alpha noise tolerance of the edge-aware range weight. The tolerance at a pixel is
        sqrt(sigma_alpha² + (jitter_px · |∇alpha|)²): a difference that noise or a sub-pixel edge shift
        explains is flicker and gets averaged; a larger one is motion the flow missed (non-rigid hair, a
        moving edge) and gets ~0 weight, so it cannot leave a trail.
    jitter_px: edge displacement in px still treated as flicker (see sigma_alpha). Measured trade-off: 1.0
        (1.5) takes the flicker benchmark from -21 % to -35 % (-40 %) dtSSD, but doubles the error a moving,
        non-rigid fur edge picks up (tests/test_temporal_smooth.py, worst frame: mean 0.009 -> 0.019, 99th
        percentile 0.13 -> 0.28).
    sigma_time: temporal Gaussian width in frames.
    fb_tolerance: forward-backward flow consistency tolerance in working-resolution px (occlusion check).
    combine: how the weighted candidates (this frame + warped neighbours) become one alpha per pixel:
        "mode" (weighted median, then the weighted mean of the candidates within ~sigma_mode of it: noise is
        averaged, while an edge that jitters by a pixel is voted back to where most frames put it instead of
        being blurred by a mean), "median" (weighted median only) or "mean" (weighted mean).
    sigma_mode: alpha width of the "mode" average around the median.
    snap_saturated: with combine "mean", pull the result to 0 (1) where candidates at exactly 0 (1) hold most
        of the weight (a ramp from 1/4 to 3/4 of it): clipped noise at a saturated pixel is one-sided, so
        a plain mean keeps a bias there that the weighted median would not.
    """

    enabled: bool = True
    strength: float = 1.0
    lookahead: int = 4
    lookbehind: int = 4
    sigma_color: float = 0.08
    sigma_alpha: float = 0.1
    sigma_time: float = 3.0
    fb_tolerance: float = 0.75
    combine: Literal["mode", "median", "mean"] = "mean"
    jitter_px: float = 0.5
    sigma_mode: float = 0.08
    snap_saturated: bool = True

    def __post_init__(self) -> None:
        if not 0.0 <= self.strength <= 1.0:
            raise ValueError(f"strength must be in [0, 1], got {self.strength}")
        if not 0 <= self.lookahead <= 16:
            raise ValueError(f"lookahead must be in [0, 16], got {self.lookahead}")
        if not 0 <= self.lookbehind <= 16:
            raise ValueError(f"lookbehind must be in [0, 16], got {self.lookbehind}")
        if self.combine not in ("mode", "median", "mean"):
            raise ValueError(f"combine must be mode, median or mean, got {self.combine!r}")
        for name in ("sigma_color", "sigma_alpha", "sigma_mode", "jitter_px", "sigma_time", "fb_tolerance"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
