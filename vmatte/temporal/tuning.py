"""Tuned constants of the temporal smoother: not user options.

Each was a ``[smooth]`` option once, set on the flicker benchmark (scripts/bench_flicker.py) with no reason
for a user to move it. They live in one frozen dataclass so that bench scripts (``bench_flicker.py --set
KEY=VALUE``) and tests can still vary them through ``TemporalSmoother(..., tuning=Tuning(...))``; a config
file cannot (``SmoothConfig.REMOVED`` makes an old key a clear one-line error).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Tuning:
    """Smoother constants (defaults = the shipped behaviour).

    sigma_color: colour tolerance (RGB in [0, 1], per-channel RMS) of the photometric check: a warped pixel
        whose colour differs by sigma_color gets weight exp(-1/2).
    sigma_alpha: alpha noise tolerance of the edge-aware range weight. The tolerance at a pixel is
        sqrt(sigma_alpha² + (jitter_px · |∇alpha|)²): a difference that noise or a sub-pixel edge shift
        explains is flicker and gets averaged; a larger one is motion the flow missed and gets ~0 weight.
    sigma_time: temporal Gaussian width in frames.
    fb_tolerance: forward-backward flow consistency tolerance in working-resolution px (occlusion check).
    combine: "mean" (weighted mean), "median" (weighted median) or "mode" (weighted median, then the weighted
        mean of the candidates within ~sigma_mode of it).
    jitter_px: edge displacement in px still treated as flicker. Measured (before 2026-12-07, sigma_alpha
        0.1): 1.0 (1.5) takes the flicker benchmark from -21 % to -35 % (-40 %) dtSSD but doubles the error on
        a moving non-rigid fur edge.
    sigma_mode: alpha width of the "mode" average around the median.
    snap_saturated: with combine "mean", pull the result to 0 (1) where candidates at exactly 0 (1) hold most
        of the weight (clipped noise at a saturated pixel is one-sided).

    sigma_alpha and jitter_px were 0.1 and 0.5 until 2026-12-07 (session 22); now 0.2 and 0.1: more
    tolerance for noise where alpha is flat (fur, semi-transparent areas), less for a shifted steep edge
    (where misaligned history shows). Measured end to end (scripts/bench_smooth_e2e.py: 11 real GT mattes over
    DAVIS, classic engine, ratios to the per-frame oracle; its real-footage arm, DAVIS parkour / breakdance /
    dance-twirl, smoothing's change, where averaging misaligned frames raises SAD), on scripts/bench_flicker.py
    and on tests/test_temporal_smooth.py's moving fur edge that rotates against its subject's motion (input:
    band error 0.0274, band dtSSD 5.43), 0.1 / 0.5 -> 0.2 / 0.1:
    - composites: dtSSD 0.830 -> 0.806x, SAD 0.743 -> 0.732x, MSE 0.603 -> 0.579x, Grad 0.709 -> 0.680x;
    - real footage: dtSSD -0.9 -> -1.4 %, MSE -1.3 -> -2.0 %, SAD -2.9 -> -2.7 %;
    - bench_flicker: dtSSD -25.0 -> -25.2 % (static -29.1 -> -30.1, moving -21.1 -> -20.6), SAD -25.3 ->
      -26.3 %;
    - the non-rigid fur edge: error 0.0249 -> 0.0250, flicker -5.1 -> -7.2 %.
    Not shipped: sigma_alpha alone at 0.15 / 0.25 / 0.4 (jitter 0.5): composites 0.819 / 0.799 / 0.785x, but
    the fur edge's error 0.0258 / 0.0291 / - and its flicker -1.6 % / up (a trail), and the real footage's SAD
    gain fell to -0.6 % at 0.4. With jitter 0.1: sigma_alpha 0.15 gives 0.822x; at 0.25 the fur edge flickers
    more than its input (+1.5 %). sigma_color 0.12 (semi-transparent pixels over a moving background change
    colour) raised the fur edge's error further. A wider window (lookahead and lookbehind 8) left the
    composites at 0.831x: the weights, not the window, limit the average.
    """

    sigma_color: float = 0.08
    sigma_alpha: float = 0.2
    sigma_time: float = 3.0
    fb_tolerance: float = 0.75
    combine: Literal["mode", "median", "mean"] = "mean"
    jitter_px: float = 0.1
    sigma_mode: float = 0.08
    snap_saturated: bool = True

    def __post_init__(self) -> None:
        if self.combine not in ("mode", "median", "mean"):
            raise ValueError(f"combine must be mode, median or mean, got {self.combine!r}")
        for name in ("sigma_color", "sigma_alpha", "sigma_mode", "jitter_px", "sigma_time", "fb_tolerance"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
