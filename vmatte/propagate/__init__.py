"""Trimap propagation: keyframe masks → a trimap (and a binary mask, and a confidence) on every frame.

``Propagator(clip, keyframes, cfg, frame_range=None, cancel=None)``: ``prepare()`` runs the cheap pass at working
resolution; ``push(frame)`` / ``flush()`` attach full-resolution trimaps in clip order; ``observe(frame)`` feeds
matted alpha back; ``summary()`` is the JSON report. Never imports torch. ``make_propagator(...)`` returns it, or
with ``propagator = "sam2"`` a :class:`~vmatte.propagate.sam2.Sam2Propagator` (same interface; torch and
transformers load when it prepares).

The config dataclass is imported eagerly (``vmatte.config`` needs it); the propagator, which pulls in OpenCV,
loads on first attribute access so that ``import vmatte`` stays light.
"""

from vmatte.propagate.config import PropagateConfig

__all__ = ["FlowPair", "PropagateConfig", "Propagator", "make_propagator"]


def __getattr__(name: str):
    # PEP 562 lazy attributes: `from vmatte.propagate import Propagator` still works, cv2 loads only then
    if name == "Propagator":
        from vmatte.propagate import propagator

        return propagator.Propagator
    if name == "FlowPair":  # moved to vmatte.motion.flow (kept here for existing imports)
        from vmatte.motion.flow import FlowPair

        return FlowPair
    if name == "make_propagator":  # flow, or SAM 2 (vmatte.propagate.sam2) per PropagateConfig.propagator
        from vmatte.propagate import sam2

        return sam2.make_propagator
    raise AttributeError(f"module 'vmatte.propagate' has no attribute {name!r}")
