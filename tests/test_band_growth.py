"""The unknown band follows the soft edge (vmatte.engine.band, [engine] grow_band): where the matte is cut off
by the band it is widened and matted again; thin parts and keyframes keep their labels."""

from __future__ import annotations

import numpy as np
import pytest

from vmatte.engine import band
from vmatte.engine.base import BatchingEngine
from vmatte.engine.config import EngineConfig
from vmatte.frame import TRIMAP_BG, TRIMAP_FG, TRIMAP_UNKNOWN, Frame
from vmatte.propagate.trimap import mask_to_trimap

H, W = 120, 160


def soft_edge(width_px: float) -> np.ndarray:
    """(H, W) float32 alpha: 1 left of x = 80, a linear ramp down to 0 over ``width_px`` px right of it."""
    x = np.arange(W, dtype=np.float32)[None, :].repeat(H, 0)
    return np.clip(1.0 - (x - 80.0) / width_px, 0.0, 1.0).astype(np.float32)


def band_around(alpha: np.ndarray, radius: float) -> np.ndarray:
    return mask_to_trimap(alpha >= 0.5, radius)


class TruthEngine(BatchingEngine):
    """Answers the true alpha inside whatever band it is given (an ideal engine): what growth can reach then
    depends only on the band."""

    name = "truth"

    def __init__(self, truth: np.ndarray, steps: int) -> None:
        super().__init__()
        self.truth, self.grow_steps, self.calls = truth, steps, 0

    def _launch(self, frames):
        self.calls += len(frames)
        return [self.truth.copy() for _ in frames]

    def _collect(self, handle):
        return handle


def matte(engine: BatchingEngine, trimap: np.ndarray, keyframe: bool = False) -> Frame:
    f = Frame(
        index=1, pts=None, time_base=None, rgb=np.zeros((H, W, 3), np.uint8), trimap=trimap, keyframe=keyframe
    )
    (out,) = engine.push(f) + engine.flush()
    return out


def test_cut_off_finds_a_matte_the_band_truncated_and_nothing_on_a_hard_edge():
    soft = soft_edge(30.0)  # the 0.5 contour sits at x = 95
    tri = band_around(soft, 4)
    cut = band.cut_off(tri, soft)
    assert cut.any() and (tri[cut] == TRIMAP_UNKNOWN).all()
    band_cols = np.nonzero((tri == TRIMAP_UNKNOWN).any(0))[0]
    edges = {int(band_cols.min()), int(band_cols.max())}
    assert {int(x) for x in np.unique(np.nonzero(cut)[1])} == edges  # the band's two edges, nowhere inside
    hard = soft_edge(2.0)
    assert not band.cut_off(band_around(hard, 4), hard).any()
    assert band.widen(band_around(hard, 4), hard, 3) is None


def test_widen_grows_only_near_the_cut_and_keeps_thin_parts():
    soft = soft_edge(30.0)
    tri = band_around(soft, 4)
    # a thin foreground part (3 px wide) beside the cut stretch: it must keep its label
    tri[10:60, 104:107] = TRIMAP_FG
    alpha = soft.copy()
    alpha[60:, :] = (alpha[60:, :] >= 0.5).astype(np.float32)  # the lower half is a hard edge: not cut there
    wider = band.widen(tri, alpha, 6)
    assert wider is not None
    grown = (wider == TRIMAP_UNKNOWN) & (tri != TRIMAP_UNKNOWN)
    assert grown[:60].sum() > 0
    assert not grown[75:].any()  # far from the cut stretch nothing changes
    assert (wider[10:60, 104:107] == TRIMAP_FG).all()
    assert ((wider == tri) | (wider == TRIMAP_UNKNOWN)).all()  # definite labels only ever become unknown


def test_growth_covers_a_soft_edge_wider_than_the_band_and_lowers_the_error():
    truth = soft_edge(24.0)
    tri = band_around(truth, 3)
    soft = (truth > 0) & (truth < 1)

    def run(steps):
        out = matte(TruthEngine(truth, steps), tri)
        coverage = (soft & (out.trimap == TRIMAP_UNKNOWN)).sum() / soft.sum()
        return coverage, float(np.abs(out.alpha - truth).sum()), out

    cov0, sad0, _ = run(0)
    cov2, sad2, out = run(2)
    assert cov0 < 0.35 and cov2 > 1.5 * cov0
    assert sad2 < 0.6 * sad0
    # the frame comes back with the band it was matted on, and its alpha agrees with that band
    assert (out.alpha[out.trimap == TRIMAP_FG] == 1).all() and (out.alpha[out.trimap == TRIMAP_BG] == 0).all()


def test_each_step_mattes_again_only_frames_that_need_it_and_stops_when_nothing_is_cut():
    truth = soft_edge(24.0)
    engine = TruthEngine(truth, 8)
    matte(engine, band_around(truth, 3))
    assert 2 <= engine.calls <= 9 and engine.frames_regrown == engine.calls - 1
    hard = soft_edge(1.0)
    engine = TruthEngine(hard, 2)
    matte(engine, band_around(hard, 3))
    assert engine.calls == 1 and engine.frames_regrown == 0


def test_keyframes_keep_the_band_they_were_given():
    truth = soft_edge(24.0)
    tri = band_around(truth, 3)
    engine = TruthEngine(truth, 2)
    out = matte(engine, tri, keyframe=True)
    assert np.array_equal(out.trimap, tri) and engine.calls == 1


def test_grow_band_option_is_checked_and_reaches_the_engine():
    for bad in (9, -1, "more"):
        with pytest.raises(ValueError, match="grow_band"):
            EngineConfig(grow_band=bad)
    from vmatte.engine import load_engine

    engine = load_engine(EngineConfig(name="classic", grow_band=1))
    assert engine.grow_steps == 1 and engine.describe()["grow_band"] == 1
    assert load_engine(EngineConfig(name="classic")).grow_steps == band.steps_for("classic") == 1
    assert band.steps_for("vitmatte") == 0  # not measured without its weights: the band as propagated
