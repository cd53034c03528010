"""The model only where the edge is: crop boxes around a frame's unknown band, common sizes for batching, paste.

A frame whose unknown band (plus ``margin`` px of context for the model) fits in a box covering at most
``threshold`` of the frame's area is matted on that box alone; the rest of the frame is known (0 or 1 in the
trimap) and is answered from the trimap, exactly as the full-frame path's clamp would. Crops of one batch are
grown to one common size (multiples of ``divisor``, more real context rather than padding) so they stack into
one forward pass. No torch here.
"""

from __future__ import annotations

import numpy as np

from vmatte.frame import TRIMAP_FG, TRIMAP_UNKNOWN

Box = tuple[int, int, int, int]  # y0, y1, x0, x1 (end-exclusive)


def band_box(trimap: np.ndarray, margin: int) -> Box | None:
    """Bounding box of the unknown pixels of a (H, W) uint8 trimap grown by ``margin`` px and clipped; None if
    there are none."""
    unknown = trimap == TRIMAP_UNKNOWN
    rows = np.flatnonzero(unknown.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(unknown.any(axis=0))
    h, w = trimap.shape
    return (
        max(0, int(rows[0]) - margin),
        min(h, int(rows[-1]) + 1 + margin),
        max(0, int(cols[0]) - margin),
        min(w, int(cols[-1]) + 1 + margin),
    )


def crop_box(trimap: np.ndarray, margin: int, threshold: float, divisor: int = 32) -> Box | None:
    """The box to matte instead of the whole frame, or None for the whole frame (band too large, no band, or
    ``threshold`` <= 0). The box's sides are rounded up to multiples of ``divisor`` (the model pads to those
    anyway) where the frame allows."""
    if threshold <= 0:
        return None
    box = band_box(trimap, margin)
    if box is None:
        return None
    h, w = trimap.shape
    bh = min(h, _round_up(box[1] - box[0], divisor))
    bw = min(w, _round_up(box[3] - box[2], divisor))
    if bh * bw > threshold * h * w:
        return None
    return fit_box(box, bh, bw, h, w)


def fit_box(box: Box, bh: int, bw: int, h: int, w: int) -> Box:
    """``box`` resized to (bh, bw) around its centre and shifted to lie inside an (h, w) frame (bh <= h, bw <= w).
    Grows symmetrically, so the original box stays inside the result when bh, bw are at least its size."""
    y0, y1, x0, x1 = box
    cy, cx = y0 + (y1 - y0 - bh) // 2, x0 + (x1 - x0 - bw) // 2
    cy = min(max(0, cy), h - bh)
    cx = min(max(0, cx), w - bw)
    return (cy, cy + bh, cx, cx + bw)


def common_boxes(boxes: list[Box], h: int, w: int) -> list[Box]:
    """The boxes of one batch grown to one common size (the largest height and width among them), each still
    containing its original box and lying inside the (h, w) frame."""
    bh = max(b[1] - b[0] for b in boxes)
    bw = max(b[3] - b[2] for b in boxes)
    return [fit_box(b, bh, bw, h, w) for b in boxes]


def paste(crop_alpha: np.ndarray, box: Box, trimap: np.ndarray) -> np.ndarray:
    """(bh, bw) float32 alpha of a crop → (H, W) float32 frame alpha: the crop inside ``box``, the trimap's
    answer (1 where foreground, else 0) outside it (all known there by construction of the box)."""
    out = (trimap == TRIMAP_FG).astype(np.float32)
    y0, y1, x0, x1 = box
    out[y0:y1, x0:x1] = crop_alpha
    return out


def _round_up(n: int, d: int) -> int:
    return -(-n // d) * d
