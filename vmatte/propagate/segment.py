"""Graph-cut segmentation of one frame from propagated shape and local colour evidence (Video SnapCut's final
step, Bai et al. 2009): a binary MRF over the working-resolution frame whose data term is the log-odds of the
propagated probability plus the local colour models, and whose pairwise term is a contrast-sensitive Potts
cost (Boykov & Jolly 2001), so the decided boundary snaps to image edges instead of following a blurred warp.
Solved exactly with PyMaxflow (Boykov-Kolmogorov max-flow) on the bounding box of the zone that is in doubt;
pixels outside the zone keep their propagated label.

Conventions: images (H, W, 3) uint8; probabilities (H, W) float32 in [0, 1]; masks (H, W) bool.
"""

from __future__ import annotations

import maxflow
import numpy as np

_HUGE = 1e6  # terminal capacity that pins a pixel outside the zone to its propagated label


def logit(p: np.ndarray, eps: float = 0.02) -> np.ndarray:
    """log(p / (1 - p)) with p clipped to [eps, 1 - eps] (float32)."""
    q = np.clip(p, eps, 1.0 - eps).astype(np.float32)
    return np.log(q / (1.0 - q))


def graph_cut(
    rgb: np.ndarray, score: np.ndarray, zone: np.ndarray, fixed: np.ndarray, smooth: float
) -> np.ndarray:
    """Binary segmentation minimising sum(data) + smooth * sum(contrast-weighted label changes).

    rgb: (H, W, 3) uint8 frame; score: (H, W) float32 foreground log-odds (> 0 favours foreground, its
    magnitude is the cost in nats of the other label); zone: (H, W) bool, the pixels the cut may decide;
    fixed: (H, W) bool, the label of every pixel outside the zone; smooth: Potts weight in nats per unit edge
    between pixels of equal colour (it falls off as exp(-beta |dI|^2), beta from the zone's mean contrast).
    Returns the (H, W) bool foreground mask.
    """
    out = fixed.copy()
    ys, xs = np.nonzero(zone)
    if ys.size == 0:
        return out
    # the bounding box of the zone widened by one pixel, so zone pixels on its edge meet their pinned neighbours
    h, w = zone.shape
    y0, y1 = max(0, ys.min() - 1), min(h, ys.max() + 2)
    x0, x1 = max(0, xs.min() - 1), min(w, xs.max() + 2)
    img = rgb[y0:y1, x0:x1].astype(np.float32)
    z = zone[y0:y1, x0:x1]
    s = score[y0:y1, x0:x1].astype(np.float32)
    f = fixed[y0:y1, x0:x1]
    s = np.where(z, s, np.where(f, _HUGE, -_HUGE))
    dx = img[:, 1:] - img[:, :-1]
    dy = img[1:] - img[:-1]
    dx2 = (dx * dx).sum(-1)
    dy2 = (dy * dy).sum(-1)
    mean = (dx2.mean() + dy2.mean()) / 2.0 if dx2.size and dy2.size else 1.0
    beta = 1.0 / (2.0 * max(float(mean), 1e-3))
    wr = np.zeros(z.shape, np.float32)
    wd = np.zeros(z.shape, np.float32)
    wr[:, :-1] = smooth * np.exp(-beta * dx2)
    wd[:-1] = smooth * np.exp(-beta * dy2)
    g = maxflow.Graph[float]()
    nodes = g.add_grid_nodes(z.shape)
    right = np.array([[0, 0, 0], [0, 0, 1], [0, 0, 0]])
    down = np.array([[0, 0, 0], [0, 0, 0], [0, 1, 0]])
    g.add_grid_edges(nodes, weights=wr, structure=right, symmetric=True)
    g.add_grid_edges(nodes, weights=wd, structure=down, symmetric=True)
    # source = foreground: a node cut to the sink (background) pays its source capacity, the foreground odds
    g.add_grid_tedges(nodes, np.maximum(s, 0.0), np.maximum(-s, 0.0))
    g.maxflow()
    fg = ~g.get_grid_segments(nodes)
    out[y0:y1, x0:x1] = np.where(z, fg, f)
    return out
