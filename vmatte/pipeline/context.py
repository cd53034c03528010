"""How far a run of frames ``start..end`` must reach outside them so its output equals the same frames of a
whole-clip run. One place for the rule; the runner, the farm plan and the propagator all ask here.

All frame numbers are inclusive 0-based clip indices. Pure functions of the config and the keyframe list: no
clip is opened, nothing is imported beyond the standard library.
"""

from __future__ import annotations

from collections.abc import Sequence


def smoothing_context(smooth_cfg) -> tuple[int, int, str]:
    """(warm-up frames before a range, look-ahead frames after it, where the figures came from) of the
    temporal smoother: its output for frame t depends on raw alpha of frames t - lookbehind .. t + lookahead
    (``TemporalSmoother.warmup_frames`` is ``lookbehind``), so the window follows from the config alone."""
    if not smooth_cfg.enabled:
        return 0, 0, "smoothing disabled"
    return (
        int(smooth_cfg.lookbehind),
        int(smooth_cfg.lookahead),
        "TemporalSmoother window (lookbehind / lookahead)",
    )


def context_range(
    start: int, end: int, frame_count: int, keyframes: Sequence[int], config
) -> tuple[int, int]:
    """Inclusive (first, last) clip frames a run of ``start..end`` must decode, matte and smooth so that its
    output equals the same frames of a whole-clip run (outputs outside ``start..end`` are dropped).

    - smoothing: ``warm-up`` frames before and ``look-ahead`` frames after (a finite window);
    - alpha feedback (``propagate.use_alpha_feedback``): the trimap of a frame depends on the matte of the frame
      before it, back to the last keyframe (keyframe trimaps are fixed), so matting starts at the keyframe at or
      before the smoothing warm-up (frame 0 when there is none). The chain also restarts engine batches at every
      keyframe (see ``runner._Chain.push``) so batch boundaries, and hence which alpha a trimap sees, match;
    - the band margin the keyframe's matte chooses (:func:`starts_at_keyframe`) needs the same start.
    """
    warmup, lookahead, _ = smoothing_context(config.smooth)
    first = max(0, start - warmup)
    last = min(frame_count - 1, end + lookahead)
    if starts_at_keyframe(config):
        before = [k for k in keyframes if k <= first]
        first = before[-1] if before else 0
    return first, last


def starts_at_keyframe(config) -> bool:
    """Whether a run's matting must start at the keyframe before it: with alpha feedback, and where the band
    margin follows the keyframe's matte (``[engine] band_margin = "auto"``, unless the engine is ViTMatte, whose
    margin does not follow it; "auto" may become the classic engine, so it counts)."""
    adaptive = config.engine.band_margin == "auto" and config.engine.name != "vitmatte"
    return bool(config.propagate.use_alpha_feedback or adaptive)


def propagation_range(start: int, end: int, keyframes: Sequence[int]) -> tuple[int, int]:
    """Inclusive (first, last) frames the working-resolution propagation pass reads for a matting range
    ``start..end``: from the keyframe at or before ``start`` to the keyframe at or after ``end`` (the range's own
    ends where there is none), so a chunk's trimaps equal a whole-clip run's."""
    before = [k for k in keyframes if k <= start]
    after = [k for k in keyframes if k >= end]
    return (before[-1] if before else start), (after[0] if after else end)
