"""Thin straight parts (kite lines, spokes, poles, rigging) found again between keyframes.

A line one or two pixels wide does not survive the propagation's working resolution and warps: it arrives as a
smear of low probability, the band around it widens into an unknown slab, and the engine, seeing no foreground
sample there, mattes the line away (DAVIS kite-surf: 10 % of the lines' pixels kept between keyframes).

So the line is looked for in the frame itself and followed from frame to frame forward from the keyframe
(:class:`LineTrack`, in the propagation pass, which decodes every frame from the keyframe before a range on: a
farm chunk finds the same lines as a full run):

- at a keyframe, the mask's parts narrower than ``WIDTH_PX`` in the directions that hold at least ``MIN_SHARE``
  of them (a subject's hair or fingers are thin too, but in every direction) are split into straight
  *segments* (a Hough transform, overlapping ones dropped); each gets its polarity (brighter or darker than
  its surroundings: a morphological top-hat or black-hat with a ``RIDGE_PX`` disk) and its level, the mean
  ridge along it;
- on the next frame each segment is looked for where it was, each end moved by up to ``STEP_PX`` across the
  segment (so it may shift and turn a little): the position whose mean ridge along the whole segment is
  highest wins, if it stands out from the positions searched (at least ``STAND_OUT`` x their median) and keeps
  ``KEEP_LEVEL`` of the keyframe's level;
- a segment that does not stand out on its own moves as the ones that did (:func:`_joint_motion`: one
  similarity transform fitted to their end points, robustly; a keyframe's lines hang from the same canopy or
  kite and harness) and is looked for within ``JOINT_PX`` of where that puts it (:func:`_near`); if it is not
  there either it is not drawn on that frame, and looked for again from its carried place. That place
  (``UNSURE_PX`` wide) is unknown in the trimap, not background: the keyframe had a line there and nothing
  says it left (see below).

The whole segment votes: a paraglider's line is a ridge of 5-6 grey levels at 480p over landscape texture of
4-5, hopeless pixel by pixel, but 200 px of it in a row stand out. The best position is refined to a quarter
pixel, and each end is then carried outward along the line while the ridge goes on and stands out from its
sides (:func:`_extend`: lines slide along themselves, which the search across them cannot see). Measured on
DAVIS (keys every 10, line pixels of the GT found within 1 px | share of the found pixels on GT lines | CPU ms
per frame): the earlier
pixel-wise search (ridge pixels peaking across the line, an oriented 41-px line filter, a structure-tensor
direction test, connected pieces 41 px long) paragliding-launch 1.5 % | 0.94 | 24, kite-surf 25 % | 1.00 |
10; this one 7 % | 0.93 | 10 and 57 % | 0.98 | 7. ``vmatte run`` J, classic engine, frames 0-40: kite-surf
0.758 -> 0.782, paragliding-launch 0.795 -> 0.800 (2026-12-06). The joint motion (2026-12-07): paragliding
15 % -> 24 % | 0.91, kite-surf 57 % -> 59 % | 0.97; CPU ms per line step, before it and ``MIN_SHARE``
0.05 -> after: paragliding 18 -> 56 (32 segments a keyframe instead of 16), kite-surf 12 -> 15; DAVIS every 10
IoU paragliding 0.641 -> 0.652 (hard 0.132 -> 0.129, recall 0.588 -> 0.601), mean of 9 0.835 -> 0.836, recall
0.902 -> 0.904; every 20 0.791 -> 0.792, worst decile 0.626 -> 0.629. ``vmatte run`` J: kite-surf 0.7841 ->
0.7854, paragliding 0.7992 -> 0.7947: the classic engine mattes each 1-px line found 3 px wide across its
unknown ring, and a line placed a pixel off counts as both missed and extra (a 1-px ring instead: J 0.8017
and 0.7987, but recall on kite-surf 0.794 -> 0.639, the lines' own edge then definite; not taken).

The trimap (:func:`apply`): line pixels foreground, a ring of ``width / 3`` px around them unknown (the engine
mattes the line's edge), and the unknown band beyond that, up to ``CLEAR_REACH`` (1.5) x width px from the line and
as far from the subject's definite body, background: a one-pixel seed in an unknown slab otherwise spreads into a
smear of foreground (kite-surf, classic engine: alpha > 0.5 10-20 px around each line; ``vmatte run`` J 0.673
without the clearing, 0.730 with it). The clearing spares pixels that are themselves a ridge as strong as the
weakest segment's at its keyframe (``KEEP_RIDGE``, :meth:`Found.masks`): in a fan of lines (a paraglider's) a line
the search did not find runs within that reach of one it found, and clearing it made it definite background. DAVIS,
keys every 10 (with ``MIN_SHARE`` 0.15 -> 0.05, 2026-12-07; IoU / hard / recall / unknown): paragliding-launch 0.633
/ 0.148 / 0.545 / 2.92 -> 0.641 / 0.132 / 0.588 / 3.02, kite-surf 0.748 / 0.054 / 0.778 / 3.23 -> 0.750 / 0.048 /
0.792 / 3.28; ``vmatte run`` J, classic engine, frames 0-40: 0.7998 -> 0.7992 and 0.7830 -> 0.7841. MIN_SHARE alone
raised paragliding's hard error to 0.164: the new segments cleared their neighbours. Sizes are px at the search size
(short side 480 px, smaller frames as they are). Larger frames are searched at 480p (:func:`shrink`; the found lines
are scaled back by :func:`apply`): the lines are no thinner there relative to the picture.

Segments not found (2026-12-07, session 24): paragliding-launch's keyframe segments cover ~80 % of its GT
line pixels, but 23 % are found one frame later and 21-25 % at every distance from the keyframe (kite-surf
64 % -> 51 % from 1 to 9 frames on): the rest were definite background, the propagation's word far from the
body. Unknown at their carried places instead (UNSURE_PX 5), DAVIS keys every 10: hard error 0.0252 ->
0.0200, boundary recall 0.909 -> 0.925, unknown ratio 1.559 -> 1.612, IoU and worst decile unchanged
(paragliding-launch hard 0.128 -> 0.082, recall 0.606 -> 0.750, unknown 3.02 -> 3.46; kite-surf within 0.001,
unknown 2.83 -> 2.86); every 20: 0.0374 -> 0.0314, 0.885 -> 0.905, 1.787 -> 1.849; first frame only: 0.0910 ->
0.0876, 0.852 -> 0.862, 4.474 -> 4.534. 3 / 5 / 7 px wide, every 10: hard 0.0212 / 0.0200 / 0.0190, recall 0.921
/ 0.925 / 0.928, unknown 1.597 / 1.612 / 1.625. ``vmatte run`` (classic engine, frames 0-40): paragliding-launch J
0.8055 -> 0.8024, F 0.790 -> 0.794, dtSSD 13.21 -> 13.29 (its prior, the propagation's "background", keeps
most of a faint line in the band near 0, as before; a learned engine sees the line there); kite-surf unchanged.
Of paragliding's GT line pixels still definite background after that, 72 % lie within 3 px of the segments of
the keyframe before or after as drawn there (49 % / 45 %), kite-surf's 20 %: its lines moved and the rest do not.
Not kept, every 10 (hard / recall / unknown, from 0.0200 / 0.925 / 1.612): both keyframes' segments unknown on
every frame between them, 7 px wide: 0.0148 / 0.943 / 1.826 (kite-surf's unknown 2.86 -> 4.11, strips where its
lines no longer are); only segments the other keyframe also has there (half their length within its segments'
7-px strips): 0.0176 / 0.933 / 1.655 (5 px wide: 0.0179 / 0.932 / 1.648). Marking a place unknown because a line
was there 5 frames away is deferring, and the classic engine did not gain from the carried places (J above;
with its prior there neutral, 0.5 instead of the propagation's 0: J 0.7998, F 0.796), so not from more of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from vmatte.frame import TRIMAP_BG, TRIMAP_FG, TRIMAP_UNKNOWN
from vmatte.propagate.store import pack, unpack

WIDTH_PX = 7  # parts of a keyframe mask narrower than this (at 480p) are lines
N_ORIENT = 16
MIN_SHARE = 0.05  # an orientation bin holding this share of the keyframe's line pixels is searched (a fan of
# lines spreads over many bins: at 0.15 a paraglider's keyframe gave 16 segments, at 0.05 32, and the lines'
# pixels found between keyframes rose from 7 % to 15 % at the same precision, 0.91-0.93)
MIN_LINE_PX = 200  # at 480p: fewer line pixels at the keyframe and there is nothing to look for
MIN_SEGMENT_PX = 30  # at 480p: the shortest straight segment kept (shorter pieces do not stand out)
LEAVE_SHARE = 0.25  # a segment is a line when this share of it lies farther than WIDTH_PX from the body: the
# tips of a furry edge line up along the body's tangents and form straight "segments" hugging it (the bundled
# example's fuzzy disc: 3 segments, 0 % of them away from the body; the search then took the background's
# dark lines for them and drew an opaque line beside the disc after its last keyframe); DAVIS keyframes'
# kite and paraglider lines: 54-100 %
RIDGE_PX = 5  # the top-hat's disk: keeps lines up to ~4 px wide, less of the texture around them
STEP_PX = 12  # at 480p: how far each end of a segment may move between two frames
STAND_OUT = 3.0  # a segment's best position must score this many times the median of the positions searched
KEEP_LEVEL = 0.6  # ... and this share of its mean ridge at the keyframe
JOINT_PX = 3.0  # at 480p: a segment not found on its own is looked for this far around its joint-motion place
JOINT_SIDE = 2.0  # ... and taken where its ridge is this many times the ridge 3 px to either side
SIDE_PX = 3.0  # px: how far beside a line its ridge is compared with (_extend, _near)
CLEAR_REACH = 1.5  # x the width: how far from a found line apply clears the unknown band
UNSURE_PX = 5  # at 480p: a segment not found on a frame is unknown this wide at its carried place (see apply)
KEEP_RIDGE = 1.0  # x the weakest segment's keyframe level: a ridge this strong is not cleared (see apply)


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
class Segment:
    """A straight line piece at the search size: end points (px, float), polarity (+1 brighter than its
    surroundings, -1 darker) and level (its mean ridge at the keyframe, grey levels)."""

    x1: float
    y1: float
    x2: float
    y2: float
    polarity: int
    level: float


@dataclass(frozen=True)
class LineModel:
    """What the lines of one keyframe look like: their segments (their width is ``WIDTH_PX`` at the search
    size), and the keyframe mask's area in px at the search size (what a lost line is weighed against)."""

    segments: tuple[Segment, ...]
    mask_px: int


def _ridge(gray: np.ndarray, polarity: int, width: int) -> np.ndarray:
    """(H, W) float32 ridge strength: top-hat (bright lines) or black-hat (dark lines) with a width-px disk."""
    el = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (width, width))
    op = cv2.MORPH_TOPHAT if polarity > 0 else cv2.MORPH_BLACKHAT
    return cv2.morphologyEx(gray, op, el).astype(np.float32)


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


def _draw(
    seg: np.ndarray, shape: tuple[int, int], thickness: int = 1, out: np.ndarray | None = None
) -> np.ndarray:
    """(H, W) uint8 {0, 1}: the segment (x1, y1, x2, y2) drawn ``thickness`` px wide, on ``out`` when given
    (a frame's found lines: no frame-sized array per segment)."""
    if out is None:
        out = np.zeros(shape, np.uint8)
    x1, y1, x2, y2 = (round(float(v)) for v in seg)
    cv2.line(out, (x1, y1), (x2, y2), 1, thickness)
    return out


def _segments(on: np.ndarray) -> list[np.ndarray]:
    """The straight segments of a thin mask ((H, W) bool): (4,) float32 end points, longest first; a segment
    mostly on pixels a longer one already covers is dropped (the Hough transform finds each line many times)."""
    found = cv2.HoughLinesP(on.view(np.uint8) * np.uint8(255), 1, np.pi / 360, 20, None, MIN_SEGMENT_PX, 4)
    if found is None:
        return []
    segs = sorted(
        found.reshape(-1, 4).astype(np.float32), key=lambda s: -float(np.hypot(s[2] - s[0], s[3] - s[1]))
    )
    covered = np.zeros(on.shape, np.uint8)
    out = []
    for seg in segs:
        line = _draw(seg, on.shape)
        n = int(line.sum())
        if n and int((line & covered).sum()) > 0.5 * n:
            continue
        out.append(seg)
        covered |= _draw(seg, on.shape, 3)
    return out


def _normal(seg: np.ndarray) -> tuple[float, float]:
    """Unit normal of a segment (x1, y1, x2, y2)."""
    x1, y1, x2, y2 = (float(v) for v in seg)
    nx, ny = y1 - y2, x2 - x1
    norm = max(float(np.hypot(nx, ny)), 1e-6)
    return nx / norm, ny / norm


def _scores(ridge: np.ndarray, seg: np.ndarray, d1: np.ndarray, d2: np.ndarray) -> np.ndarray:
    """Mean ridge along the segment with end 1 moved across it by each of ``d1`` (K1,) px and end 2 by each of
    ``d2`` (K2,): (K1, K2) float32; positions less than half inside the image score 0."""
    x1, y1, x2, y2 = (float(v) for v in seg)
    n = max(2, int(np.hypot(x2 - x1, y2 - y1)))
    t = np.linspace(0.0, 1.0, n, dtype=np.float32)
    nx, ny = _normal(seg)
    off = d1[:, None, None] * (1.0 - t) + d2[None, :, None] * t  # (K1, K2, n)
    xs = (x1 + (x2 - x1) * t + off * nx).astype(np.float32)
    ys = (y1 + (y2 - y1) * t + off * ny).astype(np.float32)
    h, w = ridge.shape
    inside = (xs >= 0) & (xs <= w - 1) & (ys >= 0) & (ys <= h - 1)
    k = d1.size * d2.size
    vals = cv2.remap(ridge, xs.reshape(k, n), ys.reshape(k, n), cv2.INTER_LINEAR).reshape(xs.shape)
    count = inside.sum(axis=-1)
    return np.where(count > n // 2, (vals * inside).sum(axis=-1) / np.maximum(count, 1), 0.0).astype(
        np.float32
    )


_COARSE = np.arange(-STEP_PX, STEP_PX + 1, dtype=np.float32)  # px: the search across a segment
_FINE = np.arange(-0.5, 0.51, 0.25, dtype=np.float32)  # px: around the best coarse position


def _moved(seg: np.ndarray, d1: float, d2: float) -> np.ndarray:
    """The segment (4,) float32 with end 1 moved ``d1`` px and end 2 ``d2`` px along its normal."""
    nx, ny = _normal(seg)
    return seg + np.array([d1 * nx, d1 * ny, d2 * nx, d2 * ny], np.float32)


def _extend(ridge: np.ndarray, seg: np.ndarray, level: float) -> np.ndarray:
    """The segment (4,) float32 with each end carried outward along it, in 2-px steps up to STEP_PX, while the
    ridge there keeps half the keyframe's ``level`` and twice the ridge 3 px to either side (texture as strong
    as the line is as strong beside it): lines slide along themselves, which the search across them cannot
    see, and a line's end moves with what holds it (a kite line's with the surfer's hands)."""
    x1, y1, x2, y2 = (float(v) for v in seg)
    length = max(float(np.hypot(x2 - x1, y2 - y1)), 1e-6)
    ux, uy = (x2 - x1) / length, (y2 - y1) / length
    h, w = ridge.shape
    ends = [np.array([x1, y1], np.float32), np.array([x2, y2], np.float32)]
    for e, sign in ((0, -1.0), (1, 1.0)):
        steps = np.arange(2.0, STEP_PX + 0.1, 2.0, dtype=np.float32)
        px = ends[e][0] + sign * ux * steps
        py = ends[e][1] + sign * uy * steps
        ok = (px >= 0) & (px <= w - 1) & (py >= 0) & (py <= h - 1)
        # on the line, and beside it (3 px either side): the ridge must go on and stand out from its sides
        nx, ny = _normal(seg)
        xs = np.stack([px, px + SIDE_PX * nx, px - SIDE_PX * nx]).astype(np.float32)
        ys = np.stack([py, py + SIDE_PX * ny, py - SIDE_PX * ny]).astype(np.float32)
        v = cv2.remap(ridge, xs, ys, cv2.INTER_LINEAR)
        good = ok & (v[0] >= 0.5 * level) & (v[0] >= 2.0 * np.maximum(v[1], v[2]))
        run = int(np.argmin(good)) if not good.all() else good.size  # steps before the first miss
        if run:
            ends[e] = np.array([px[run - 1], py[run - 1]], np.float32)
    return np.concatenate(ends)


def _leaves_body(seg: np.ndarray, body_px: np.ndarray) -> float:
    """Share of the segment's pixels ((4,) float32 end points) lying farther than WIDTH_PX from the subject's
    body (``body_px``, (H, W) float32 distance to it in px)."""
    return float(np.mean(body_px[_draw(seg, body_px.shape) > 0] > WIDTH_PX))


def learn(gray: np.ndarray, mask: np.ndarray) -> LineModel | None:
    """The line model of a keyframe: ``gray`` (H, W) uint8, ``mask`` (H, W) bool, both at the search size
    (:func:`shrink`). None where the mask has too few thin pixels in a dominant direction (most subjects, hair) or
    they hold no straight segment."""
    el = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (WIDTH_PX, WIDTH_PX))
    thick = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_OPEN, el) > 0
    thin = mask & ~thick
    if thin.sum() < MIN_LINE_PX:
        return None
    orient = _orientation(thin)
    hist = np.bincount(orient[thin], minlength=N_ORIENT) / thin.sum()
    on = thin & np.isin(orient, np.nonzero(hist >= MIN_SHARE)[0])
    if on.sum() < MIN_LINE_PX:
        return None
    ridges = {p: _ridge(gray, p, RIDGE_PX) for p in (1, -1)}
    segments = []
    zero = np.zeros(1, np.float32)
    # px from the subject's body (the mask's parts wider than a line); the frame's edge counts as far
    body_px = cv2.distanceTransform(np.pad(~thick, 1, constant_values=True).view(np.uint8), cv2.DIST_L2, 5)
    for seg in _segments(on):
        if _leaves_body(seg, body_px[1:-1, 1:-1]) < LEAVE_SHARE:
            continue  # fuzz along the body's outline (a furry edge's tips line up on its tangents), no line
        at = {p: float(_scores(r, seg, zero, zero)[0, 0]) for p, r in ridges.items()}
        polarity = 1 if at[1] >= at[-1] else -1
        if at[polarity] > 0:  # a segment on a flat image has nothing to be found by
            segments.append(Segment(*(float(v) for v in seg), polarity, at[polarity]))
    if not segments:
        return None
    return LineModel(tuple(segments), int(mask.sum()))


@dataclass(frozen=True)
class Found:
    """One frame's lines at the search size (h, w), kept PNG-packed like the propagation's results (a few kB a
    frame: a paraglider's frame has ~1 200 line pixels and ~17 000 to keep): the lines found, the pixels
    within :func:`apply`'s clearing reach of them that are a ridge of a segment's polarity at least
    ``KEEP_RIDGE`` x the weakest segment's keyframe level (lines the search did not find), and the carried
    places of the segments not found (``UNSURE_PX`` wide). ``share``: 1 - the length of the segments not found
    over the keyframe mask's area, in [0, 1] (the propagation's confidence takes it in:
    Propagator._lines_confidence)."""

    packed: bytes
    share: float = 1.0

    @classmethod
    def of(
        cls, line: np.ndarray, keep: np.ndarray, unsure: np.ndarray | None = None, share: float = 1.0
    ) -> Found:
        """From (h, w) bool masks of the line pixels, of the pixels to keep and of the places of the segments
        not found (``unsure``, None: none); a line pixel is a line pixel whatever else it is."""
        lab = np.where(keep, np.uint8(2), np.uint8(0))
        if unsure is not None:
            lab[unsure] = 3
        lab[line] = 1
        return cls(pack(lab), share)

    def masks(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """((h, w) bool line pixels, pixels to keep, places of the segments not found)."""
        lab = unpack(self.packed)
        return lab == 1, lab == 2, lab == 3


class LineTrack:
    """The lines of one keyframe followed forward, one frame at a time (at the search size, :func:`shrink`)."""

    def __init__(self, model: LineModel) -> None:
        self.model = model
        self._at = [np.array([s.x1, s.y1, s.x2, s.y2], np.float32) for s in model.segments]
        # what losing each segment costs a frame: its pixels' share of the subject (a 1-px line: its length)
        self._cost = [
            float(np.hypot(s.x2 - s.x1, s.y2 - s.y1)) / max(model.mask_px, 1) for s in model.segments
        ]

    def step(self, gray: np.ndarray) -> Found | None:
        """The lines on the next frame, grey (H, W) uint8; None where none was found."""
        ridges = {p: _ridge(gray, p, RIDGE_PX) for p in {s.polarity for s in self.model.segments}}
        found = np.zeros(gray.shape, np.uint8)
        before, after, missed = [], [], []
        for i, seg in enumerate(self.model.segments):
            ridge = ridges[seg.polarity]
            score = _scores(ridge, self._at[i], _COARSE, _COARSE)
            j1, j2 = np.unravel_index(int(np.argmax(score)), score.shape)
            best = float(score[j1, j2])
            if best < STAND_OUT * float(np.median(score)) or best < KEEP_LEVEL * seg.level:
                missed.append(i)  # not found on its own: see the joint motion below
                continue
            fine = _scores(ridge, self._at[i], _COARSE[j1] + _FINE, _COARSE[j2] + _FINE)
            f1, f2 = np.unravel_index(int(np.argmax(fine)), fine.shape)
            moved = _moved(self._at[i], float(_COARSE[j1] + _FINE[f1]), float(_COARSE[j2] + _FINE[f2]))
            before.append(self._at[i])
            after.append(moved)
            self._at[i] = _extend(ridge, moved, seg.level)
            _draw(self._at[i], gray.shape, out=found)
        motion = _joint_motion(before, after) if missed else None
        unsure = np.zeros(gray.shape, np.uint8)
        lost = set()
        for i in missed:
            seg = self.model.segments[i]
            if motion is not None:
                # carried with the others whether or not it shows on this frame: looked for from there next time
                self._at[i] = (
                    cv2.transform(self._at[i].reshape(1, 2, 2), motion).reshape(4).astype(np.float32)
                )
                at = _near(ridges[seg.polarity], self._at[i], seg.level)
                if at is not None:
                    self._at[i] = _extend(ridges[seg.polarity], at, seg.level)
                    _draw(self._at[i], gray.shape, out=found)
                    continue
            # not seen on this frame, but the keyframe had it: where it should be is not known to be
            # background (UNSURE_PX, apply)
            _draw(self._at[i], gray.shape, UNSURE_PX, out=unsure)
            lost.add(i)
        if not found.any() and not unsure.any():
            return None
        share = max(0.0, 1.0 - sum(self._cost[i] for i in lost))
        near = cv2.distanceTransform(1 - found, cv2.DIST_L2, 3) <= CLEAR_REACH * WIDTH_PX + 1
        keep = np.zeros(gray.shape, bool)
        for p, ridge in ridges.items():
            weakest = min(s.level for s in self.model.segments if s.polarity == p)
            keep |= ridge >= KEEP_RIDGE * weakest
        return Found.of(found > 0, keep & near, unsure > 0, share)


def _joint_motion(before: list[np.ndarray], after: list[np.ndarray]) -> np.ndarray | None:
    """The similarity transform ((2, 3) float64) that moved the segments found on their own (end points
    ``before`` -> ``after``, (4,) float32 each), fitted robustly (RANSAC, 2 px); None with fewer than two,
    fewer than four end points that agree with it, or a change of scale beyond 0.8-1.25.
    The lines of one keyframe hang from the same things (a canopy and a harness, a kite and a bar), so a
    line too faint to stand out on its own moves as its neighbours did."""
    if len(before) < 2:
        return None
    src = np.concatenate([b.reshape(2, 2) for b in before])
    dst = np.concatenate([a.reshape(2, 2) for a in after])
    motion, inliers = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=2.0)
    if motion is None or int(inliers.sum()) < 4:
        return None  # two segments that disagree say nothing about the rest
    scale = float(np.hypot(motion[0, 0], motion[1, 0]))
    return motion if 0.8 <= scale <= 1.25 else None  # lines do not grow or shrink by a quarter in a frame


# px: the search around a segment's predicted position
_NEAR = np.arange(-JOINT_PX, JOINT_PX + 0.1, 0.5, dtype=np.float32)


def _near(ridge: np.ndarray, seg: np.ndarray, level: float) -> np.ndarray | None:
    """The segment (4,) float32 moved to the best position within JOINT_PX of its predicted place ``seg``, if
    the ridge there keeps KEEP_LEVEL of the keyframe's ``level`` and JOINT_SIDE x the ridge 3 px to either
    side (the search is too narrow for the median test of the free search); None otherwise."""
    score = _scores(ridge, seg, _NEAR, _NEAR)
    j1, j2 = np.unravel_index(int(np.argmax(score)), score.shape)
    best, d1, d2 = float(score[j1, j2]), float(_NEAR[j1]), float(_NEAR[j2])
    sides = _scores(
        ridge,
        seg,
        np.array([d1 - SIDE_PX, d1 + SIDE_PX], np.float32),
        np.array([d2 - SIDE_PX, d2 + SIDE_PX], np.float32),
    )
    if best < KEEP_LEVEL * level or best < JOINT_SIDE * max(float(sides[0, 0]), float(sides[1, 1])):
        return None
    return _moved(seg, d1, d2)


def apply(trimap: np.ndarray, found: Found) -> np.ndarray:
    """``trimap`` (H, W) uint8 {0, 128, 255} with the ``found`` line pixels (at the search size) foreground, an
    unknown ring around them, the band beyond cleared but for the pixels ``found`` keeps, and the places of
    the segments not found unknown (see the module docstring). Returns a new array."""
    tri = trimap.copy()
    line, keep, unsure = found.masks()
    shape, width = line.shape, float(WIDTH_PX)
    if shape != trimap.shape:
        line, keep, unsure = (
            cv2.resize(m.view(np.uint8), trimap.shape[::-1], interpolation=cv2.INTER_NEAREST) > 0
            for m in (line, keep, unsure)
        )
        width = width * trimap.shape[0] / shape[0]
    d_line = cv2.distanceTransform((~line).view(np.uint8), cv2.DIST_L2, 3)
    d_body = cv2.distanceTransform((trimap != TRIMAP_FG).view(np.uint8), cv2.DIST_L2, 3)
    edge, reach = width / 3.0, CLEAR_REACH * width
    clear = (trimap == TRIMAP_UNKNOWN) & (d_line > edge) & (d_line <= reach) & (d_body > reach) & ~keep
    tri[clear] = TRIMAP_BG
    tri[unsure & (trimap != TRIMAP_FG)] = TRIMAP_UNKNOWN  # after the clearing: it does not clear them
    tri[(d_line <= edge) & (trimap != TRIMAP_FG)] = TRIMAP_UNKNOWN
    tri[line] = TRIMAP_FG
    return tri
