"""Tiling of frames too large for one forward: tile layout, feathered blend weights, and the blend itself.

A frame of (H, W) is covered by overlapping (th, tw) tiles (:func:`tile_starts` per axis); each tile's alpha is
weighted by the outer product of two 1-D :func:`feather` ramps and the weighted mean is the frame's alpha
(:func:`blend_tiles`). Tiles with no unknown pixels never reach the model; pixels no tile covered take the
trimap's value. numpy only (the engine runs the tiles; this module only lays them out and blends them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from vmatte.frame import Frame

if TYPE_CHECKING:
    from vmatte.engine.cuda import Ticket


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering [0, length) with at least ``overlap`` px shared."""
    if length <= tile:
        return [0]
    stride = max(1, tile - overlap)
    n = math.ceil((length - tile) / stride) + 1
    return [round(i * (length - tile) / (n - 1)) for i in range(n)]


def feather(length: int, start: int, size: int, total: int, overlap: int) -> np.ndarray:
    """1-D blend weights (size,) float32: linear ramps over ``overlap`` px on sides that meet another tile,
    flat 1 at the frame border. Weights stay > 0 so every covered pixel has a defined average."""
    w = np.ones(size, np.float32)
    ramp = max(1, min(overlap, size // 2))
    r = (np.arange(ramp, dtype=np.float32) + 1.0) / (ramp + 1.0)
    if start > 0:
        w[:ramp] = np.minimum(w[:ramp], r)
    if start + size < total:
        w[size - ramp :] = np.minimum(w[size - ramp :], r[::-1])
    return w


@dataclass
class TiledFrame:
    """One frame in flight as tiles: the engine's tickets hold the tiles' alphas, in the order of ``boxes``."""

    frame: Frame
    boxes: list[tuple[int, int, int, int]]  # (y0, x0, th, tw) of tiles that went to the model
    tickets: list[Ticket]
    tile: int
    overlap: int


def blend_tiles(job: TiledFrame, alphas: list[np.ndarray]) -> np.ndarray:
    """Feathered average of tile alphas ((th, tw) float32 each, in the order of ``job.boxes``) → (H, W) float32;
    pixels no tile covered take the trimap's value (1 where definite foreground, else 0)."""
    h, w = job.frame.height, job.frame.width
    acc = np.zeros((h, w), np.float32)
    wsum = np.zeros((h, w), np.float32)
    for (y0, x0, th, tw), a in zip(job.boxes, alphas):
        wt = np.outer(feather(h, y0, th, h, job.overlap), feather(w, x0, tw, w, job.overlap))
        acc[y0 : y0 + th, x0 : x0 + tw] += a * wt
        wsum[y0 : y0 + th, x0 : x0 + tw] += wt
    covered = wsum > 0
    out = (job.frame.trimap == 255).astype(np.float32)
    out[covered] = acc[covered] / wsum[covered]
    return out
