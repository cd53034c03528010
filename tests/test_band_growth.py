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


def test_widen_grows_only_near_the_cut_and_keeps_the_core_of_thin_parts():
    soft = soft_edge(30.0)
    tri = band_around(soft, 4)  # band x 91..99
    # foreground parts beside the cut stretch, narrower than twice the widening (6 px): a 2-px line keeps its
    # label, a 3-px line and a 9-px bar give up their outer half and keep a definite core
    tri[5:20, 101:103] = TRIMAP_FG
    tri[25:40, 101:104] = TRIMAP_FG
    tri[45:58, 101:110] = TRIMAP_FG
    alpha = soft.copy()
    alpha[60:, :] = (alpha[60:, :] >= 0.5).astype(np.float32)  # the lower half is a hard edge: not cut there
    wider = band.widen(tri, alpha, 6)
    assert wider is not None
    grown = (wider == TRIMAP_UNKNOWN) & (tri != TRIMAP_UNKNOWN)
    assert grown[:60].sum() > 0
    assert not grown[75:].any()  # far from the cut stretch nothing changes
    assert (wider[7:18, 101:103] == TRIMAP_FG).all()
    assert (wider[27:38, 102] == TRIMAP_FG).all() and (wider[27:38, [101, 103]] == TRIMAP_UNKNOWN).all()
    assert (wider[47:56, 103:108] == TRIMAP_FG).all() and (wider[47:56, 101:103] == TRIMAP_UNKNOWN).all()
    assert (wider[47:56, 108:110] == TRIMAP_FG).all()  # beyond the widening's reach
    assert ((wider == tri) | (wider == TRIMAP_UNKNOWN)).all()  # definite labels only ever become unknown
    # the old limit kept parts narrower than the widening whole: no margin at all on an arm or a lock of hair
    # narrower than twice it (the 9-px bar here)


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


# -- band margin ([engine] band_margin): the band widened on both sides on every frame, before the first pass


def with_prior(trimap: np.ndarray, kind: str | None = None, rgb: np.ndarray | None = None) -> Frame:
    """A propagated frame: its trimap and the probability it was cut from (here the trimap itself); a
    keyframe of that ``kind`` when one is given."""
    return Frame(
        index=1,
        pts=None,
        time_base=None,
        rgb=np.zeros((H, W, 3), np.uint8) if rgb is None else rgb,
        trimap=trimap,
        keyframe=kind is not None,
        keyframe_kind=kind,
        prior=trimap.copy(),
    )


def test_pad_widens_the_whole_band_on_both_sides_and_keeps_thin_parts():
    tri = band_around(soft_edge(1.0), 2)  # hard edge at x = 80, band x 78..82
    tri[10:60, 100:103] = TRIMAP_FG  # a 3-px foreground line in the background, 18 px from the band
    wider = band.pad(tri, 6)
    assert wider is not None
    cols = np.nonzero((wider == TRIMAP_UNKNOWN).all(0))[0]
    assert cols.min() <= 73 and cols.max() >= 86  # about 6 px more into both sides, along the whole edge
    # beside the line the background is a 17-px gap: only its outer half may go (x 83..86 of 83..99)
    beside, away = (wider[15:55] == TRIMAP_UNKNOWN), (wider[65:] == TRIMAP_UNKNOWN)
    assert beside[:, 83:87].all() and not beside[:, 92:].any() and away[:, 83:89].all()
    assert (wider[10:60, 100:103] == TRIMAP_FG).all()  # beyond the margin's reach: keeps its label
    assert (wider[:, :60] == TRIMAP_FG).all() and (wider[:, 110:] == TRIMAP_BG).all()  # far off: unchanged
    assert ((wider == tri) | (wider == TRIMAP_UNKNOWN)).all()  # definite labels only ever become unknown
    # nothing to pad: no band, or no foreground part wide enough to have a soft edge
    assert band.pad(np.full((H, W), TRIMAP_BG, np.uint8), 6) is None
    thin = np.full((H, W), TRIMAP_BG, np.uint8)
    thin[:, 79:82] = TRIMAP_UNKNOWN
    assert band.pad(thin, 6) is None


def test_pad_measures_a_thin_part_along_itself_not_across_a_gap():
    # a 40-px body in a 2-px band and, 2 px of background beside the band, a 2-px foreground line (a strap, a
    # kite line): the body gives up its outer 6 px, the line keeps its label; a thickness taken over a square
    # window would see the body's depth across the gap and make the line unknown whole
    tri = np.zeros((H, W), np.uint8)
    tri[18:103, 18:62] = TRIMAP_UNKNOWN
    tri[20:101, 20:60] = TRIMAP_FG
    tri[20:101, 64:66] = TRIMAP_FG
    wider = band.pad(tri, 6)
    assert wider is not None
    rows = slice(30, 90)
    assert (wider[rows, 54:60] == TRIMAP_UNKNOWN).all() and (wider[rows, 30:53] == TRIMAP_FG).all()
    assert (wider[rows, 64:66] == TRIMAP_FG).all()
    assert (wider[rows, 62:64] == TRIMAP_BG).all()  # the 2-px gap keeps its label too


def test_margin_covers_a_soft_edge_the_band_missed_but_not_on_soft_keyframes_or_given_trimaps():
    truth = soft_edge(16.0)  # alpha from 1 at x = 80 to 0 at x = 96
    tri = band_around(truth, 2)
    soft = (truth > 0) & (truth < 1)

    def run(margin, frame):
        engine = TruthEngine(truth, 0)
        engine.band_margin = margin
        (out,) = engine.push(frame) + engine.flush()
        return (
            (soft & (out.trimap == TRIMAP_UNKNOWN)).sum() / soft.sum(),
            np.abs(out.alpha - truth).sum(),
            out,
        )

    cov0, sad0, _ = run(0.0, with_prior(tri))
    cov1, sad1, out = run(0.05, with_prior(tri))  # 6 px at 120 px
    assert cov0 < 0.35 < 0.7 < cov1 and sad1 < 0.5 * sad0
    assert (out.alpha[out.trimap == TRIMAP_FG] == 1).all() and (out.alpha[out.trimap == TRIMAP_BG] == 0).all()
    # a binary keyframe is padded like its neighbours (the runner then holds its matte to the mask); a soft
    # keyframe's band is the user's alpha, used as given
    drawn = np.where(truth >= 0.5, 255, 0).astype(np.uint8)
    cov_kf, sad_kf, _ = run(0.05, with_prior(tri, "binary").replace(prior=drawn))
    assert cov_kf == cov1 and sad_kf == sad1
    soft_kf = with_prior(tri, "alpha").replace(prior=np.round(truth * 255).astype(np.uint8))
    assert np.array_equal(run(0.05, soft_kf)[2].trimap, tri)
    # the frame says what the user drew, not its values: a soft matte that happens to be all 0 / 1 is still
    # the user's band (the runner does not hold it to a mask either), and a keyframe nobody named is not padded
    for kind in ("alpha", "trimap", None):
        kf = with_prior(tri).replace(keyframe=True, keyframe_kind=kind, prior=drawn)
        assert np.array_equal(run(0.05, kf)[2].trimap, tri), kind
    given = Frame(index=1, pts=None, time_base=None, rgb=np.zeros((H, W, 3), np.uint8), trimap=tri)
    assert np.array_equal(run(0.05, given)[2].trimap, tri)  # a trimap from outside is used as given


def test_classic_engine_mattes_the_margin_without_moving_a_hard_edge():
    """On a real solve: a soft red-over-blue edge is recovered beyond the propagated band, and on a hard
    edge the added pixels stay at their side (the prior holds them where the colours agree)."""
    from vmatte.engine.classic import ClassicEngine

    rng = np.random.default_rng(0)

    def picture(alpha):
        fg, bg = np.array([220, 40, 30], np.float32), np.array([30, 60, 200], np.float32)
        img = alpha[..., None] * fg + (1 - alpha[..., None]) * bg + rng.normal(0, 2, (H, W, 3))
        return np.clip(img, 0, 255).astype(np.uint8)

    for width, check in ((14.0, "soft"), (1.0, "hard")):
        truth = soft_edge(width)
        tri = band_around(truth, 2)
        rgb = picture(truth)
        outs = {}
        for margin in (0.0, 0.05):
            engine = ClassicEngine()
            engine.band_margin = margin
            (outs[margin],) = engine.push(with_prior(tri, rgb=rgb)) + engine.flush()
        sad = {m: float(np.abs(o.alpha - truth).sum()) for m, o in outs.items()}
        if check == "soft":
            assert sad[0.05] < 0.7 * sad[0.0]
        else:
            assert np.array_equal(outs[0.05].alpha >= 0.5, truth >= 0.5)
            assert sad[0.05] < 1.2 * sad[0.0] + 20


def test_band_margin_option_is_checked_and_reaches_the_engine():
    for bad in (-0.01, 0.5, "wide"):
        with pytest.raises(ValueError, match="band_margin"):
            EngineConfig(band_margin=bad)
    from vmatte.engine import load_engine

    engine = load_engine(EngineConfig(name="classic", band_margin=0.01))
    assert engine.band_margin == 0.01 and engine.describe()["band_margin"] == 0.01
    assert load_engine(EngineConfig(name="classic")).band_margin == band.margin_for("classic") == band.MARGIN
    assert band.margin_for("vitmatte") == 0.0  # not measured without its weights: the band as propagated


# -- the margin follows the keyframe: wider after a keyframe whose matte has a soft edge (band.softness)


def test_softness_tells_a_soft_edge_from_a_hard_one_and_the_margin_ramps_with_it():
    mask = np.where(soft_edge(16.0) >= 0.5, 255, 0).astype(np.uint8)
    assert band.softness(soft_edge(16.0), mask) == 1.0  # fractional all across the ring (3 px each side)
    assert band.softness(soft_edge(1.0), mask) < 0.2
    assert band.softness(soft_edge(1.0), np.zeros((H, W), np.uint8)) == 0.0  # no edge
    lo, hi = band.SOFT_SHARE
    assert (
        band.soft_margin(lo - 0.1, 0.025, 0.05) == 0.025 and band.soft_margin(hi + 0.1, 0.025, 0.05) == 0.05
    )
    assert band.soft_margin((lo + hi) / 2, 0.025, 0.05) == pytest.approx(0.0375)
    assert band.soft_margin(1.0, 0.025, 0.0) == 0.025  # never narrower than the base margin


class _Stub:
    """A propagator that hands the chain prepared frames and ignores what it observes."""

    def push(self, frame):
        return [frame]

    def flush(self):
        return []

    def observe(self, frame):
        pass


def test_the_chain_carries_the_margin_a_keyframe_chose_to_the_frames_after_it():
    """After a binary keyframe whose matte is soft, the keyframe (matted again) and the next frames' band are
    widened by the wide margin; after a hard one, by the base margin; before any keyframe, and after a drawn
    trimap, by the engine's own."""
    from vmatte.pipeline.report import Report
    from vmatte.pipeline.runner import _Chain

    def run(truth, soft_margin, kind="binary"):
        tri = band_around(truth, 2)
        drawn = np.where(truth >= 0.5, 255, 0).astype(np.uint8)
        engine = TruthEngine(truth, 0)
        engine.band_margin, engine.soft_margin = 0.025, soft_margin
        out, report = [], Report(input="x")
        chain = _Chain(_Stub(), engine, None, out.append, report)
        frames = [with_prior(tri).replace(index=0)]
        kf = with_prior(tri, kind).replace(index=1, prior=None if kind == "trimap" else drawn)
        frames += [kf, with_prior(tri).replace(index=2)]
        for f in frames:
            chain.push(f)
        chain.flush()
        assert report.engine["keyframe_margins"] == ({"1": out[2].band_margin} if out[2].band_margin else {})
        return [(f.band_margin, int((f.trimap == TRIMAP_UNKNOWN).sum())) for f in out]

    before, key, after = run(soft_edge(16.0), 0.05)
    # the keyframe is matted again with the margin it chose, so its band is as wide as the frames' after it
    assert before[0] is None and key[0] == after[0] == 0.05
    assert key[1] == after[1] > before[1]  # 6 px each side instead of 3
    before, key, after = run(soft_edge(1.0), 0.05)  # a hard keyframe: the base margin, matted once
    assert key[0] is None and after[0] == 0.025 and key[1] == after[1] == before[1]
    assert run(soft_edge(16.0), 0.0)[2] == before  # [engine] band_margin set to a number: no carry
    assert run(soft_edge(16.0), 0.05, "trimap")[2] == before  # a drawn trimap has no edge to measure
    # a soft keyframe's band is the user's: it chooses the margin after it but is not padded or matted again
    before, key, after = run(soft_edge(16.0), 0.05, "alpha")
    assert key[0] is None and after[0] == 0.05
    assert key[1] == (band_around(soft_edge(16.0), 2) == TRIMAP_UNKNOWN).sum() < before[1] < after[1]


def test_the_classic_engine_finds_its_own_keyframe_matte_soft_or_hard():
    """On a real solve of a red-over-blue edge: a 16-px ramp chooses the wide margin, a hard edge the base one."""
    from vmatte.engine.classic import ClassicEngine

    rng = np.random.default_rng(1)
    fg, bg = np.array([220, 40, 30], np.float32), np.array([30, 60, 200], np.float32)
    for width, margin in ((16.0, band.SOFT_MARGIN), (1.0, band.MARGIN)):
        truth = soft_edge(width)
        rgb = np.clip(
            truth[..., None] * fg + (1 - truth[..., None]) * bg + rng.normal(0, 2, (H, W, 3)), 0, 255
        )
        drawn = np.where(truth >= 0.5, 255, 0).astype(np.uint8)
        engine = ClassicEngine()
        engine.band_margin, engine.soft_margin = band.MARGIN, band.SOFT_MARGIN
        kf = with_prior(band_around(truth, 2), "binary", rgb.astype(np.uint8)).replace(prior=drawn)
        (out,) = engine.push(kf) + engine.flush()
        assert engine.margin_after(out) == pytest.approx(margin), width


def test_band_margin_auto_follows_softness_only_for_the_classic_engine():
    from vmatte.engine import load_engine

    assert (
        load_engine(EngineConfig(name="classic")).soft_margin == band.soft_margin_for("classic") > band.MARGIN
    )
    assert load_engine(EngineConfig(name="classic", band_margin=0.03)).soft_margin == 0.0
    assert band.soft_margin_for("vitmatte") == 0.0


def test_a_wider_margin_keeps_the_base_margins_wide_parts():
    """A soft keyframe's wider margin pads at least what the base margin padded: a 16-px bar (8 px deep) is
    wide at 6 px but not at 10, so measured at its own width the wider margin would pad nothing."""
    tri = np.zeros((H, W), np.uint8)
    tri[20:100, 66:94] = TRIMAP_UNKNOWN
    tri[22:98, 72:88] = TRIMAP_FG
    base = band.pad(tri, 6)
    assert base is not None and band.pad(tri, 10) is None
    wider = band.pad(tri, 10, 6)
    assert wider is not None and ((base == TRIMAP_UNKNOWN) <= (wider == TRIMAP_UNKNOWN)).all()
    assert (wider == TRIMAP_UNKNOWN).sum() > (base == TRIMAP_UNKNOWN).sum()
