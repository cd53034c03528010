"""Keyframe suggestions for the propagation report: where a new keyframe mask would help most.

Used by :meth:`vmatte.propagate.propagator.Propagator.suggestions` and by a chunked job, which ranks the
confidences of all its chunks together (vmatte.farm.jobreport).
"""

from __future__ import annotations

import numpy as np


def rank_suggestions(confidence: dict[int, float], keyframes, k: int, span: int) -> list[int]:
    """Up to ``k`` frame numbers where a new keyframe mask would help most: lowest ``confidence`` (frame →
    [0, 1]) first, skipping frames ≥ 0.999, at least max(3, gap/4) frames from each other and from
    ``keyframes`` (gap = median keyframe spacing, ``span`` frames when there is one keyframe). A chunked job
    ranks the confidences of all its chunks with this, so its suggestions cover the whole clip."""
    kfs = sorted(keyframes)
    gaps = np.diff(kfs) if len(kfs) > 1 else np.array([span])
    sep = max(3, int(np.median(gaps)) // 4)
    known = set(kfs)
    picked: list[int] = []
    for i, c in sorted(confidence.items(), key=lambda kv: (kv[1], kv[0])):
        if len(picked) >= k or c >= 0.999:
            break
        if i in known or any(abs(i - j) < sep for j in (*picked, *kfs)):
            continue
        picked.append(i)
    return picked
