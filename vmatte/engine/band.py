"""The unknown band follows the soft edge: where the engine's alpha is cut off by the band, widen it and matte
again (any engine; :class:`~vmatte.engine.base.BatchingEngine` runs the loop, ``[engine] grow_band`` steps).

A propagated band has one width for the whole outline, but how far a soft edge reaches varies along it: hair,
fur and motion blur spill past a band that fits a hard edge. The engine itself shows where: an unknown pixel
next to definite background whose alpha is still clearly above 0 (or next to definite foreground and clearly
below 1) has a matte the band truncated, since the true alpha cannot jump from that value to 0 (1) across one
pixel. Only those stretches are widened, by :data:`STEP` of the short side per step, into both sides (the
inner side matters as much: a binary mask is the alpha-0.5 contour of hair, whose alpha inside it is 0.5-1).

Measured (2026-12-05) with ``scripts/bench_smooth_e2e.py`` (11 real GT mattes moving over DAVIS footage,
classic engine, keys every 24, means of ratios to the per-frame oracle), off -> 1 step -> 2 steps: SAD 1.34 ->
1.23 -> 1.23x, MSE 2.38 -> 2.08 -> 2.07x, Grad 1.88 -> 1.66 -> 1.65x, dtSSD 1.26 -> 1.22 -> 1.23x, soft-pixel
coverage 0.449 -> 0.561 -> 0.571; the chain's wall time 50 -> 78 -> 99 s (the engine solves a wider band up
to steps + 1 times), hence 1 step for "auto". DAVIS, ``vmatte run`` on frames 0-40 with keys every 10: binary
J unchanged (see the README). Widening only outwards raised SAD (gt05 1.40 -> 1.71x), and so did larger steps
or a lower LEVEL.

Growth only finds a cut where the engine already saw the soft edge; fur, hair and motion blur that begin
beyond the band stay at 0 or 1. So the band is also widened on every frame before the first pass, by
:data:`MARGIN` of the short side into both sides (``[engine] band_margin``, :func:`pad`), with growth's limits
on thin parts; the classic engine holds the added pixels to the propagation's side unless the colours say
otherwise (``[engine] prior``), so a hard edge stays where it was. Measured (2026-12-07, same benchmark, grow
1 step), margin 0 -> 0.025: SAD 0.74 -> 0.74x, MSE 0.74 -> 0.61x, Grad 0.87 -> 0.72x, dtSSD 0.89 -> 0.83x,
soft-pixel coverage 0.524 -> 0.734 (0.697 -> 0.848 of the soft mass), band area 0.43 -> 0.93x the oracle's,
smoothing -4.1 -> -5.2 % dtSSD; the chain's CPU 102 -> 200 s for the 11 clips (the engine solves about twice
the pixels). DAVIS ``vmatte run`` (7 clips, frames 0-40, keys every 10): J 0.8644 -> 0.8645, dtSSD 9.12 ->
9.12. Without growth's limits (which :func:`pad` explains), margin 0.025 with the added pixels pulled to their
label at 0.03 / 0.3 / 1: coverage 0.773 / 0.764 / 0.758, dtSSD 0.79 / 0.83 / 0.87x; pulled at 0.3, margin
0.0125 / 0.05: coverage 0.660 / 0.851, dtSSD 0.84 / 0.83x. Binary keyframes are padded too (held to their
mask afterwards, so alpha > 0.5 still reproduces it; their band was narrower than their neighbours', and the
soft edge popped there): coverage 0.734 -> 0.755, SAD 0.740 -> 0.743x, MSE 0.608 -> 0.603x, Grad 0.721 ->
0.709x, dtSSD 0.831 -> 0.830x, keyframe IoU 1.000 (2026-12-07, session 22). Trimap and soft keyframes are
the user's band, used as given.

Conventions: trimaps (H, W) uint8 {0, 128, 255}; alpha (H, W) float32 [0, 1]; sizes in px of the frame.
"""

from __future__ import annotations

import cv2
import numpy as np

from vmatte.frame import TRIMAP_BG, TRIMAP_FG, TRIMAP_UNKNOWN
from vmatte.propagate.trimap import near_wide

LEVEL = 0.1  # alpha this far from the definite neighbour's value at the band's edge counts as cut off
REACH = 3  # cut-offs count within this many steps of a wide foreground part
STEP = 0.0125  # widening per step, fraction of the frame's short side (3 px at 240p, 13.5 px at 1080p)

_RING = np.ones((3, 3), np.uint8)

# [engine] grow_band = "auto": steps per engine. ViTMatte's are not measured (no weights here), so it keeps
# the band as propagated until they are
AUTO_STEPS = {"classic": 1}

# [engine] band_margin = "auto": the band widened by this fraction of the short side on every frame, before the
# first pass (6 px at 240p, 12 px at 480p); ViTMatte's is not measured (no weights here)
MARGIN = 0.025
AUTO_MARGIN = {"classic": MARGIN}


def steps_for(engine_name: str) -> int:
    """Widening steps ``grow_band = "auto"`` gives this engine."""
    return AUTO_STEPS.get(engine_name, 0)


def margin_for(engine_name: str) -> float:
    """Band margin ``band_margin = "auto"`` gives this engine (fraction of the short side)."""
    return AUTO_MARGIN.get(engine_name, 0.0)


def step_px(width: int, height: int) -> int:
    """One widening step in px at this frame size (at least 1)."""
    return max(1, round(STEP * min(width, height)))


def cut_off(trimap: np.ndarray, alpha: np.ndarray, level: float = LEVEL) -> np.ndarray:
    """(H, W) bool: unknown pixels 8-adjacent to definite background with alpha > ``level``, or to definite
    foreground with alpha < 1 - ``level`` (the band truncated the matte there)."""
    unknown = trimap == TRIMAP_UNKNOWN
    near_bg = cv2.dilate((trimap == TRIMAP_BG).view(np.uint8), _RING) > 0
    near_fg = cv2.dilate((trimap == TRIMAP_FG).view(np.uint8), _RING) > 0
    return unknown & ((near_bg & (alpha > level)) | (near_fg & (alpha < 1.0 - level)))


def widen(trimap: np.ndarray, alpha: np.ndarray, px: int, level: float = LEVEL) -> np.ndarray | None:
    """``trimap`` with definite pixels within ``px`` of a cut-off pixel (:func:`cut_off`) made unknown, or
    None when the matte is cut off nowhere (nothing to do).

    Thin parts are left alone. Parts narrower than the widening (an arm, a leg, a gap between them: no disk
    of radius ``px`` fits in them) keep their label: made unknown whole they lose the constraint that holds
    them, and fade (DAVIS parkour, classic engine: J 0.895 -> 0.872 when they were widened too). And only
    cut-offs within ``REACH`` steps of a wide foreground part count: the thin unknown ring of a kite line
    (vmatte.propagate.lines) widened into halos of water around the lines (kite-surf J 0.758 -> 0.729)."""
    return _reach(trimap, cut_off(trimap, alpha, level), px)


def pad(trimap: np.ndarray, px: int) -> np.ndarray | None:
    """``trimap`` with the band widened by ``px`` into both sides along its whole length (:data:`MARGIN`),
    with :func:`widen`'s limits: parts narrower than ``px`` keep their label, and only band within ``REACH``
    widths of a wide foreground part grows; None when nothing changes. (H, W) uint8 {0, 128, 255} in and
    out. Without those limits the thin unknown rings of kite lines grew into water the engine then pulled
    towards the lines (DAVIS kite-surf J 0.797 -> 0.749), and a small subject made unknown whole was matted
    as background (libby J 0.848 -> 0.619, added pixels pulled at 0.3)."""
    unknown = trimap == TRIMAP_UNKNOWN
    definite = cv2.dilate((~unknown).view(np.uint8), _RING) > 0
    return _reach(trimap, unknown & definite, px)


def _reach(trimap: np.ndarray, seeds: np.ndarray, px: int) -> np.ndarray | None:
    """``trimap`` with definite pixels within ``px`` of ``seeds`` ((H, W) bool, on the band) made unknown,
    except parts narrower than ``px``; only seeds within ``REACH * px`` of a wide foreground part count.
    None when nothing changes or there is no wide foreground part."""
    if not seeds.any():
        return None
    keep = np.zeros(trimap.shape, bool)
    for label in (TRIMAP_FG, TRIMAP_BG):
        part = (trimap == label).view(np.uint8)
        wide = near_wide(cv2.distanceTransform(part, cv2.DIST_L2, 5), px)
        keep |= (part > 0) & ~wide
        if label == TRIMAP_FG:
            core = (wide & (part > 0)).view(np.uint8)
            if not core.any():
                return None  # no wide foreground at all: nothing whose soft edge could spill
            seeds = seeds & (cv2.distanceTransform(1 - core, cv2.DIST_L2, 5) <= REACH * px)
            if not seeds.any():
                return None
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1, 2 * px + 1))
    reach = (cv2.dilate(seeds.view(np.uint8), disk) > 0) & ~keep
    out = trimap.copy()
    out[reach] = TRIMAP_UNKNOWN
    return out
