"""Trimap propagation: keyframe masks → a trimap (and a binary mask, and a confidence) on every frame.

``Propagator(clip, keyframes, cfg, frame_range=None, cancel=None)``: ``prepare()`` runs the cheap pass at working
resolution; ``push(frame)`` / ``flush()`` attach full-resolution trimaps in clip order; ``observe(frame)`` feeds
matted alpha back; ``summary()`` is the JSON report. Never imports torch.
"""

from vmatte.propagate.config import PropagateConfig
from vmatte.propagate.propagator import FlowPair, Propagator

__all__ = ["FlowPair", "PropagateConfig", "Propagator"]
