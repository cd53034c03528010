"""Large-displacement motion for the propagation chains: where dense DIS flow fails (the subject moves farther
per frame than DIS's coarse-to-fine search reaches, or blurs), a keypoint track of the subject still holds.

ORB keypoints inside the subject are matched across the frame pair and a similarity transform (rotation,
scale, translation) is fitted with RANSAC (cv2.estimateAffinePartial2D): the subject's bulk motion. The chain
then carries its probability with that transform wherever the flow's forward-backward check fails, so a fast
subject keeps a definite body instead of dissolving into a ghost.

Conventions: gray frames (H, W) uint8; probabilities / reliabilities (H, W) float32 in [0, 1]; transforms
2x3 float32 mapping source pixel coordinates to target ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

_MIN_INLIERS = 12
_TRUST = 0.7  # reliability kept by a keypoint-carried pixel (a rigid fit of a body that is not quite rigid)
# steps a chain waits after the fallback lost before trying it again (see Backoff)
BACKOFF_STEPS = 4


@dataclass
class Backoff:
    """One chain's memory of the fallback: ``wait`` steps left before :func:`carry` tries the keypoint motion
    again. After a step where it found no motion or one that explained the subject no better than the flow,
    the next BACKOFF_STEPS steps of that chain keep the flow without trying.

    Why: on real footage the fallback fired (the flow's error over the subject above its trigger) on 147 of
    breakdance's 155 chain steps and 67 of parkour's 180 (DAVIS, keyframes every 10) and never took over: a
    similarity motion explains a body that bends 1.6-2.4x worse than the flow, where it explains a rigid disc
    moving past DIS's reach 10x better (tests/test_propagate_hard.py), on every step. The ORB matching cost
    breakdance 52 ms a frame. It took over on none of the 27 DAVIS runs (keyframes every 10, 20, first only)
    nor on the 11 composites of scripts/bench_smooth_e2e.py. With the backoff their masks and trimaps are
    byte-identical (checked: every 10 on the 9 clips; every 20 and first only on breakdance, parkour,
    dance-twirl and horsejump-high; the composites), and ORB and RANSAC run 33 times instead of 147 on
    breakdance (4.4 -> 1.0 CPU s), 23 instead of 67 on parkour (2.5 -> 0.9). A chain makes a new Backoff at
    its keyframe, so a farm chunk, whose chains start at the same keyframes, sees the same steps as a whole
    run."""

    wait: int = 0


class KeypointMotion:
    """Bulk motion of a masked region between two frames from ORB matches + RANSAC similarity fit."""

    def __init__(self, features: int = 400, reach: float = 0.25) -> None:
        self.orb = cv2.ORB_create(nfeatures=features, fastThreshold=12)
        self.orb_all = cv2.ORB_create(nfeatures=features * 2, fastThreshold=12)
        self.reach = (
            reach  # search window: the region's box widened by this fraction of the frame's long side
        )
        self.matcher = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True)

    def estimate(self, src: np.ndarray, dst: np.ndarray, region: np.ndarray) -> np.ndarray | None:
        """2x3 float32 transform taking ``region`` ((H, W) bool, on ``src``) to where it lies in ``dst``, or
        None when too few consistent matches support one. A large subject's keypoints are found at half size (a
        bulk motion needs no finer detail; ORB was the largest cost of this fallback at full size)."""
        # large subjects only: a small one has too few keypoints left at half size
        half = int(region.sum()) > 16000
        if half:
            src = cv2.resize(src, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
            dst = cv2.resize(dst, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
            size = (src.shape[1], src.shape[0])
            region = cv2.resize(region.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
        if not region.any():
            return None
        m = cv2.dilate(region.astype(np.uint8) * 255, np.ones((7, 7), np.uint8))
        kp1, d1 = self.orb.detectAndCompute(src, m)
        if d1 is None or len(kp1) < _MIN_INLIERS:
            return None
        ys, xs = np.nonzero(region)
        r = round(self.reach * max(src.shape))
        win = np.zeros_like(m)
        win[max(0, ys.min() - r) : ys.max() + r + 1, max(0, xs.min() - r) : xs.max() + r + 1] = 255
        kp2, d2 = self.orb_all.detectAndCompute(dst, win)
        if d2 is None or len(kp2) < _MIN_INLIERS:
            return None
        matches = [x for x in self.matcher.match(d1, d2) if x.distance < 64]
        if len(matches) < _MIN_INLIERS:
            return None
        a = np.float32([kp1[x.queryIdx].pt for x in matches])
        b = np.float32([kp2[x.trainIdx].pt for x in matches])
        tf, inl = cv2.estimateAffinePartial2D(
            a, b, method=cv2.RANSAC, ransacReprojThreshold=1.5 if half else 3.0
        )
        if tf is None or inl is None or int(inl.sum()) < _MIN_INLIERS or inl.mean() < 0.3:
            return None
        tf = tf.astype(np.float32)
        if half:
            tf[:, 2] *= 2.0  # back to full-size pixel coordinates (rotation and scale are size-free)
        return tf


def carry(
    motion: KeypointMotion,
    src_gray: np.ndarray,
    dst_gray: np.ndarray,
    p_src: np.ndarray,
    r_src: np.ndarray,
    p_flow: np.ndarray,
    r_flow: np.ndarray,
    src_by_flow: np.ndarray,
    fail: float,
    backoff: Backoff | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Blend the flow-warped state (p_flow, r_flow, target grid) with the source state (p_src, r_src) carried
    by the subject's keypoint motion, per pixel by which motion explains the target frame better.

    Forward-backward consistency cannot see a motion both flows missed (over a fast subject DIS returns the
    background's ~0 flow both ways, which is perfectly consistent), so the test is photometric: the source
    frame warped by the flow (``src_by_flow``, target grid) and by the keypoint transform are compared with
    the target frame (mean absolute grey difference, smoothed over a few px). Only runs when the flow's
    error over the subject exceeds ``fail`` grey levels, and not while ``backoff`` (the chain's, None: always
    try) waits after a loss. Returns (p, r) float32 on the target grid."""
    if backoff is not None and backoff.wait > 0:
        backoff.wait -= 1
        return p_flow, r_flow
    src_region = p_src >= 0.5
    if not src_region.any():
        return p_flow, r_flow
    dst = dst_gray.astype(np.float32)
    e_flow = cv2.GaussianBlur(np.abs(src_by_flow.astype(np.float32) - dst), (0, 0), 3.0)
    region = src_region | (p_flow >= 0.5)
    if float(e_flow[region].mean()) <= fail:
        return p_flow, r_flow
    tf = motion.estimate(src_gray, dst_gray, src_region)
    if tf is None:
        return _lost(backoff, p_flow, r_flow)
    h, w = p_flow.shape
    warp = dict(dsize=(w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    g_kp = cv2.warpAffine(src_gray, tf, **warp).astype(np.float32)
    e_kp = cv2.GaussianBlur(np.abs(g_kp - dst), (0, 0), 3.0)
    p_kp = cv2.warpAffine(p_src, tf, **dict(warp, borderMode=cv2.BORDER_CONSTANT))
    # decided per subject, not per pixel (the subject's colour can match the background's in places): each
    # motion is judged where it puts the subject (the background does not move with the subject, so the rest
    # of the frame says nothing about it); the keypoint motion must explain its subject clearly better, and
    # then takes over around both placements (a per-pixel choice left ghosts where colours happen to match)
    kp_region = p_kp >= 0.5
    flow_region = p_flow >= 0.5
    if not kp_region.any():
        return _lost(backoff, p_flow, r_flow)
    ef = float(e_flow[flow_region].mean()) if flow_region.any() else 255.0
    ek = float(e_kp[kp_region].mean())
    if ek > 0.7 * ef:
        return _lost(backoff, p_flow, r_flow)
    zone = cv2.dilate((region | kp_region).astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    k = zone.astype(np.float32)
    r_kp = cv2.warpAffine(r_src, tf, **dict(warp, borderMode=cv2.BORDER_CONSTANT)) * _TRUST
    p = p_flow + k * (p_kp - p_flow)
    r = r_flow + k * (r_kp - r_flow)
    return p.astype(np.float32), np.clip(r, 0.0, 1.0).astype(np.float32)


def _lost(backoff: Backoff | None, p: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The fallback lost this step: the chain waits BACKOFF_STEPS steps before trying again; (p, r) as given."""
    if backoff is not None:
        backoff.wait = BACKOFF_STEPS
    return p, r
