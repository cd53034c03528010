"""Thin straight parts (kite lines, spokes, poles, rigging) found again between keyframes.

A line one or two pixels wide does not survive the propagation's working resolution and warps: it arrives as a
smear of low probability, the band around it widens into an unknown slab, and the engine, seeing no foreground
sample there, mattes the line away (DAVIS kite-surf: 10 % of the lines' pixels kept between keyframes).

So the line is looked for in the frame itself, with an appearance model learnt at the keyframe, and followed
from frame to frame forward from it (:class:`LineTrack`, in the propagation pass, which decodes every frame
from the keyframe before a range on: a farm chunk finds the same lines as a full run):

- at a keyframe, the mask's parts narrower than ``WIDTH_PX`` give the lines' *polarity* (brighter or darker
  than their surroundings: a morphological top-hat or black-hat of the grey image), their *orientations*
  (16 bins; those holding at least ``MIN_SHARE`` of the line pixels), and two levels: the median ridge
  strength on them and the median response of an oriented line filter (the ridge averaged along a
  ``LENGTH_PX`` segment), both halved;
- on the next frame, within ``STEP_PX`` of where the line was, a pixel is line where the ridge is that strong,
  the line filter in one of the keyframe's orientations answers that much, the ridge peaks across the line
  (one pixel wide), and its connected piece is at least ``LENGTH_PX`` long. Water ripples, fur and texture
  are ridges too, but short or in other directions; a rail of another direction next to the subject is
  never searched for.

The trimap (:func:`apply`): line pixels foreground, a ring of ``width / 3`` px around them unknown (the engine
mattes the line's edge), and the unknown band beyond that, up to ``1.5 x width`` px from the line and as far from
the subject's definite body, background: a one-pixel seed in an unknown slab otherwise spreads into a smear of
foreground (kite-surf, classic engine: alpha > 0.5 10-20 px around each line; ``vmatte run`` J 0.673 without
the clearing, 0.730 with it; reaching 3 x width gave the same J but more hard error next to lines not found,
0.074 against 0.064). Sizes are px at the search size
(short side 480 px, smaller frames as they are). Larger frames are searched at 480p (:func:`shrink`; the found lines are scaled back by
:func:`apply`): the oriented filters cost ~5x per frame at 1080p and the lines are no thinner there relative
to the picture. Measured on kite-surf (854x480): learning 0.075 CPU s per keyframe, following 0.014 CPU s per
frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from vmatte.frame import TRIMAP_BG, TRIMAP_FG, TRIMAP_UNKNOWN

WIDTH_PX = 7  # parts of a keyframe mask narrower than this (at 480p) are lines
LENGTH_PX = 41  # the oriented filter's length, and the shortest piece kept (at 480p)
N_ORIENT = 16
MIN_SHARE = 0.15  # an orientation bin holding this share of the keyframe's line pixels is searched
MIN_LINE_PX = 200  # at 480p: fewer line pixels at the keyframe and there is nothing to look for
STEP_PX = 14  # at 480p: how far a line may move between two frames
ANGLE_TOL = 0.8  # bins: a found pixel's ridge runs within this of a searched direction
KEEP = 0.2  # a frame that finds less than this share of the last frame's line pixels lost them: keep the last


SEARCH_SHORT = 480  # px: the short side lines are searched at


def shrink(img: np.ndarray, is_mask: bool = False) -> np.ndarray:
    """A grey image (uint8) or mask (bool) at the search size (short side at most SEARCH_SHORT): area
    averaged, a mask's pixel kept where it covers 30 % of the small pixel (a 1-px line at 1080p covers 44 %)."""
    h, w = img.shape
    f = SEARCH_SHORT / min(h, w)
    if f >= 1.0:
        return img
    size = (max(1, round(w * f)), max(1, round(h * f)))
    if is_mask:
        return cv2.resize(img.astype(np.float32), size, interpolation=cv2.INTER_AREA) >= 0.3
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA)


@dataclass(frozen=True)
class LineModel:
    """What the lines of one keyframe look like: polarity (+1 brighter, -1 darker), the orientation bins to
    search (indices into N_ORIENT), the ridge and line-filter levels (grey levels), and the sizes (px)."""

    polarity: int
    orients: tuple[int, ...]
    ridge_level: float
    line_level: float
    width: int
    length: int


def _ridge(gray: np.ndarray, polarity: int, width: int) -> np.ndarray:
    """(H, W) float32 ridge strength: top-hat (bright lines) or black-hat (dark lines) with a width-px disk."""
    el = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (width, width))
    op = cv2.MORPH_TOPHAT if polarity > 0 else cv2.MORPH_BLACKHAT
    return cv2.morphologyEx(gray, op, el).astype(np.float32)


def _kernel(orient: int, length: int) -> np.ndarray:
    """A normalised 1-px segment of ``length`` px at angle orient x pi / N_ORIENT."""
    k = np.zeros((length, length), np.float32)
    c = length // 2
    th = np.pi * orient / N_ORIENT
    dx, dy = np.cos(th) * c, np.sin(th) * c
    cv2.line(k, (round(c - dx), round(c - dy)), (round(c + dx), round(c + dy)), 1.0, 1)
    return k / k.sum()


def _angle(img: np.ndarray) -> np.ndarray:
    """(H, W) float32 direction in [0, pi) of the lines in ``img`` (float32: a mask or a ridge map): the
    structure tensor's, turned 90 degrees (its dominant gradient runs across a line)."""
    m = cv2.GaussianBlur(img, (0, 0), 1.5)
    gx = cv2.Sobel(m, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(m, cv2.CV_32F, 0, 1, ksize=3)
    jxx = cv2.GaussianBlur(gx * gx, (0, 0), 3.0)
    jyy = cv2.GaussianBlur(gy * gy, (0, 0), 3.0)
    jxy = cv2.GaussianBlur(gx * gy, (0, 0), 3.0)
    return np.mod(0.5 * np.arctan2(2 * jxy, jxx - jyy) + np.pi / 2, np.pi).astype(np.float32)


def _orientation(mask: np.ndarray) -> np.ndarray:
    """(H, W) int orientation bin of a thin mask's local direction."""
    return np.round(_angle(mask.astype(np.float32)) / np.pi * N_ORIENT).astype(np.int64) % N_ORIENT


def learn(gray: np.ndarray, mask: np.ndarray) -> tuple[LineModel, np.ndarray] | None:
    """The line model of a keyframe and its line pixels ((H, W) bool): ``gray`` (H, W) uint8, ``mask`` (H, W)
    bool, both at the search size (:func:`shrink`). None where the mask has too few thin pixels in a dominant direction (most subjects, hair)."""
    width, length = WIDTH_PX, LENGTH_PX  # images here are at most the search size (shrink)
    m8 = mask.astype(np.uint8)
    el = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (width, width))
    thin = mask & (cv2.morphologyEx(m8, cv2.MORPH_OPEN, el) == 0)
    if thin.sum() < MIN_LINE_PX:
        return None
    bright, dark = _ridge(gray, 1, width), _ridge(gray, -1, width)
    polarity = 1 if np.median(bright[thin]) >= np.median(dark[thin]) else -1
    ridge = bright if polarity > 0 else dark
    orient = _orientation(thin)
    hist = np.bincount(orient[thin], minlength=N_ORIENT) / thin.sum()
    orients = tuple(int(o) for o in np.nonzero(hist >= MIN_SHARE)[0])
    on = thin & np.isin(orient, orients)
    if on.sum() < MIN_LINE_PX:
        return None
    resp = np.max([cv2.filter2D(ridge, -1, _kernel(o, length)) for o in orients], axis=0)
    model = LineModel(
        polarity,
        orients,
        0.5 * float(np.median(ridge[on])),
        0.5 * float(np.median(resp[on])),
        width,
        length,
    )
    return model, on


def find(model: LineModel, gray: np.ndarray, region: np.ndarray) -> np.ndarray:
    """(H, W) bool: line pixels of ``model`` inside ``region`` (H, W) bool on a frame whose grey image is
    ``gray`` (H, W) uint8. Works on the region's bounding box."""
    out = np.zeros(region.shape, bool)
    if not region.any():
        return out
    ys, xs = np.nonzero(region)
    pad = model.length
    y0, y1 = max(0, ys.min() - pad), min(gray.shape[0], ys.max() + pad + 1)
    x0, x1 = max(0, xs.min() - pad), min(gray.shape[1], xs.max() + pad + 1)
    g, u = gray[y0:y1, x0:x1], region[y0:y1, x0:x1]
    ridge = _ridge(g, model.polarity, model.width)
    strong = (ridge >= model.ridge_level) & u
    if not strong.any():
        return out
    cand = np.zeros_like(strong)
    # the ridge itself runs in the direction searched: a rail 11 degrees off still answers a long line filter
    ang = _angle(ridge)
    for o in model.orients:
        resp = cv2.filter2D(ridge, -1, _kernel(o, model.length))
        # one pixel wide: the ridge peaks across the line (neighbours perpendicular to the direction)
        th = np.pi * o / N_ORIENT
        ny, nx = round(np.cos(th)), round(-np.sin(th))
        peak = (ridge >= np.roll(ridge, (ny, nx), (0, 1))) & (ridge >= np.roll(ridge, (-ny, -nx), (0, 1)))
        off = np.abs(np.mod(ang - th + np.pi / 2, np.pi) - np.pi / 2)
        cand |= strong & peak & (resp >= model.line_level) & (off <= ANGLE_TOL * np.pi / N_ORIENT)
    n, lab, stats, _ = cv2.connectedComponentsWithStats(cand.astype(np.uint8), connectivity=8)
    long_ = np.zeros(n, bool)
    long_[1:] = np.maximum(stats[1:, cv2.CC_STAT_WIDTH], stats[1:, cv2.CC_STAT_HEIGHT]) >= model.length
    out[y0:y1, x0:x1] = long_[lab]
    return out


class LineTrack:
    """The lines of one keyframe followed forward, one frame at a time (at the search size, :func:`shrink`)."""

    def __init__(self, model: LineModel, lines: np.ndarray) -> None:
        self.model = model
        self.last = lines  # (H, W) bool: where the lines were last found
        r = 2 * STEP_PX + 1
        self._disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (r, r))

    def step(self, gray: np.ndarray) -> np.ndarray:
        """Line pixels (flat indices, int64) on the next frame, grey (H, W) uint8."""
        corridor = cv2.dilate(self.last.view(np.uint8), self._disk) > 0
        found = find(self.model, gray, corridor)
        if found.sum() >= KEEP * self.last.sum():
            self.last = found
        return np.flatnonzero(found)


def apply(trimap: np.ndarray, found: np.ndarray, shape: tuple[int, int], width: int) -> np.ndarray:
    """``trimap`` (H, W) uint8 {0, 128, 255} with line pixels ``found`` (flat indices into the search size
    ``shape`` (h, w)) foreground, an unknown ring around them and the band beyond cleared (see the module
    docstring); ``width`` is the lines' width at the search size. Returns a new array."""
    tri = trimap.copy()
    line = np.zeros(shape, bool)
    line.flat[found] = True
    if shape != trimap.shape:
        line = cv2.resize(line.view(np.uint8), trimap.shape[::-1], interpolation=cv2.INTER_NEAREST) > 0
        width = width * trimap.shape[0] / shape[0]
    d_line = cv2.distanceTransform((~line).view(np.uint8), cv2.DIST_L2, 3)
    d_body = cv2.distanceTransform((trimap != TRIMAP_FG).view(np.uint8), cv2.DIST_L2, 3)
    edge, reach = width / 3.0, 1.5 * width
    tri[(trimap == TRIMAP_UNKNOWN) & (d_line > edge) & (d_line <= reach) & (d_body > reach)] = TRIMAP_BG
    tri[(d_line <= edge) & (trimap != TRIMAP_FG)] = TRIMAP_UNKNOWN
    tri[line] = TRIMAP_FG
    return tri
