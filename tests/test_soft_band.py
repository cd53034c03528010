"""The unknown band follows how soft the subject's edge is (issue 14, "cover the soft edge")."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from test_propagate import RigidScene

from vmatte.io.decode import open_clip
from vmatte.io.masks import load_keyframes
from vmatte.propagate import Propagator
from vmatte.propagate.trimap import signed_distance, soft_edge_zone
from vmatte.propagate.tuning import Tuning
from vmatte.testing import write_masks, write_sequence

KF = [0, 12]
TUNE = Tuning(
    layer_radius=0.04, layer_coherence=0.0, soft_band=0.1
)  # the soft band is off by default; ungated layer motion as in test_propagate


def _matte_in_band(alpha: np.ndarray, tri: np.ndarray) -> np.ndarray:
    """A perfect engine that can only answer inside the band: true alpha where unknown, the label elsewhere."""
    return np.where(tri == 128, alpha, tri.astype(np.float32) / 255.0).astype(np.float32)


def _run(scene, tmp_path, tune):
    """Push every frame with the engine's alpha fed back one frame late; per non-keyframe frame
    (coverage of the truly fractional pixels by the band, unknown area)."""
    seq = write_sequence(tmp_path / f"f{scene.fur}", scene)
    kdir = write_masks(tmp_path / f"m{scene.fur}", scene, KF)
    clip = open_clip(seq)
    prop = Propagator(clip, load_keyframes(kdir, clip.info), tuning=tune)
    prop.prepare()
    cover, area = [], []
    for f in clip.frames(0, scene.frames - 1):
        out = prop.push(f)[0]
        a = scene.alpha(f.index)
        prop.observe(f.replace(alpha=_matte_in_band(a, out.trimap)))
        if f.index in KF:
            continue
        soft = (a > 0.05) & (a < 0.95)
        unk = out.trimap == 128
        cover.append((soft & unk).sum() / soft.sum())
        area.append(int(unk.sum()))
    prop.close()
    return np.array(cover), np.array(area)


@pytest.mark.parametrize("fur", [0.8])
def test_band_covers_a_wide_soft_edge(tmp_path, fur):
    """Fur whose fractional zone is ~4x the default band: with the soft band the fractional pixels end up
    inside the band within a few frames of the keyframe (85-90 % of them from frame 5 on, missing mostly
    strand tips: the band grows ~1 px per frame into the zone the last matte found soft); without it a
    quarter to a third stay outside, forced to 0 or 1."""
    scene = RigidScene(width=160, height=96, frames=13, speed=2.5, fur=fur)
    cover_on, _ = _run(scene, tmp_path, TUNE)
    cover_off, _ = _run(scene, tmp_path / "off", replace(TUNE, soft_band=0.0))
    assert cover_off.mean() < 0.8, cover_off
    assert cover_on[4:].min() >= 0.85, cover_on
    assert cover_on.mean() >= cover_off.mean() + 0.15, (cover_on, cover_off)


def test_hard_edge_stays_narrow(tmp_path):
    """A hard edge (1.5 px ramp): the matte is 0 or 1 next to the contour, so the soft band adds little."""
    scene = RigidScene(width=160, height=96, frames=13, speed=2.5, fur=0.0)
    _, area_on = _run(scene, tmp_path, TUNE)
    _, area_off = _run(scene, tmp_path / "off", replace(TUNE, soft_band=0.0))
    assert area_on.sum() <= 1.3 * area_off.sum(), (area_on, area_off)


def test_soft_edge_zone_is_capped_and_grown():
    h, w = 64, 64
    mask = np.zeros((h, w), bool)
    mask[:, :32] = True
    d = signed_distance(mask)
    alpha = np.zeros((h, w), np.float32)
    alpha[:, 30:40] = 0.5  # soft stripe across the boundary
    alpha[:, 55:60] = 0.5  # soft far from the boundary (beyond the cap)
    z = soft_edge_zone(alpha, np.ones((h, w), bool), d, grow_px=2, cap_px=12)
    assert z[:, 28:42].all() and not z[:, :27].any()  # grown by 2 px on each side
    assert not z[:, 46:].any()  # capped
    unreliable = soft_edge_zone(alpha, np.zeros((h, w), bool), d, grow_px=2, cap_px=12)
    assert not unreliable.any()
