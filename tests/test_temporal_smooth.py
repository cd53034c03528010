"""Temporal smoother: flicker goes, moving edges are not trailed, cuts reset, memory is bounded, chunks are exact."""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import cv2
import numpy as np
import pytest

from vmatte.frame import Frame
from vmatte.motion.config import FlowConfig
from vmatte.motion.scenecut import SceneCutDetector
from vmatte.temporal.config import SmoothConfig
from vmatte.temporal.smooth import TemporalSmoother
from vmatte.temporal.tuning import Tuning
from vmatte.testing import Scene

W, H = 128, 80


def trimap_of(alpha: np.ndarray, r: int = 3) -> np.ndarray:
    k = np.ones((2 * r + 1, 2 * r + 1), np.uint8)
    tri = np.full(alpha.shape, 128, np.uint8)
    tri[cv2.dilate((alpha > 0).astype(np.uint8), k) == 0] = 0
    tri[cv2.erode((alpha >= 1).astype(np.uint8), k) == 1] = 255
    return tri


def noisy_clip(scene: Scene, seed: int = 0, noise: float = 0.06, invert: bool = False, start: int = 0):
    """Frames of ``scene`` with alpha = GT + independent noise in the unknown band; also returns GT."""
    rng = np.random.default_rng(seed)
    frames, gts = [], []
    for t in range(scene.frames):
        gt = scene.alpha(t)
        tri = trimap_of(gt)
        a = gt.copy()
        band = tri == 128
        a[band] = np.clip(gt[band] + rng.normal(0, noise, band.sum()), 0, 1)
        rgb = scene.rgb(t)
        if invert:
            rgb = 255 - rgb
        frames.append(
            Frame(
                index=start + t,
                pts=start + t,
                time_base=Fraction(1, 24),
                rgb=rgb,
                trimap=tri,
                alpha=a.astype(np.float32),
            )
        )
        gts.append(gt)
    return frames, gts


def run(sm: TemporalSmoother, frames):
    out = []
    for f in frames:
        out.extend(sm.push(f))
    out.extend(sm.flush())
    return out


def band_of(frames):
    return [f.trimap == 128 for f in frames]


def test_static_clip_stops_shimmering():
    scene = Scene(width=W, height=H, frames=12, static=True, seed=1)
    frames, gts = noisy_clip(scene, seed=1)
    out = run(TemporalSmoother(SmoothConfig()), frames)
    band = frames[0].trimap == 128
    before = np.stack([f.alpha[band] for f in frames])
    after = np.stack([f.alpha[band] for f in out])
    # frame-to-frame change inside the band (the shimmer) on the frames with a full window
    d_before = np.abs(np.diff(before[3:-3], axis=0)).mean()
    d_after = np.abs(np.diff(after[3:-3], axis=0)).mean()
    assert d_after < 0.3 * d_before, (d_before, d_after)
    # and it got closer to the truth, not just flatter (on soft pixels: at alpha 0/1 the clipped noise is a
    # bias no averaging removes)
    soft = band & (gts[0] > 0.1) & (gts[0] < 0.9)
    err_before = np.mean([np.abs(f.alpha - g)[soft].mean() for f, g in zip(frames[3:-3], gts[3:-3])])
    err_after = np.mean([np.abs(f.alpha - g)[soft].mean() for f, g in zip(out[3:-3], gts[3:-3])])
    assert err_after < 0.6 * err_before, (err_before, err_after)


def test_moving_edge_is_not_trailed():
    # a fast subject (5 px/frame) over a panning background; clean GT alpha in: a smoother that blends
    # unaligned or occluded history would leave a trail behind the edge and raise the error
    scene = Scene(width=W, height=H, frames=12, speed=5.0, seed=2)
    frames, gts = noisy_clip(scene, seed=2, noise=0.0)
    out = run(TemporalSmoother(SmoothConfig()), frames)
    for f_in, f_out, gt in zip(frames, out, gts):
        band = f_in.trimap == 128
        err = np.abs(f_out.alpha - gt)[band]
        assert err.mean() < 0.02, (f_in.index, err.mean())
        assert np.quantile(err, 0.99) < 0.25
    # with noise: the error near the moving edge does not grow compared with the unsmoothed input, and the
    # flicker (dtSSD in the band) does not either. This fur rotates against the subject's motion (non-rigid),
    # so the consistency weights reject most of the history and the smoother mostly abstains here (measured:
    # -7 % dtSSD; -2 % with sigma_alpha 0.15 and jitter_px 0.5, a trail, see vmatte.temporal.tuning); static
    # content is where it bites (test above) and the benchmarks measure real clips.
    from vmatte.evaluate.metrics import dtssd

    frames, gts = noisy_clip(scene, seed=3, noise=0.06)
    out = run(TemporalSmoother(SmoothConfig()), frames)
    err_in = np.mean([np.abs(f.alpha - g)[f.trimap == 128].mean() for f, g in zip(frames, gts)])
    err_out = np.mean([np.abs(o.alpha - g)[f.trimap == 128].mean() for f, o, g in zip(frames, out, gts)])
    assert err_out <= err_in, (err_in, err_out)

    def flicker(seq):
        return np.mean(
            [
                dtssd(
                    seq[i].alpha,
                    seq[i - 1].alpha,
                    gts[i],
                    gts[i - 1],
                    (frames[i].trimap == 128) | (frames[i - 1].trimap == 128),
                )
                for i in range(1, len(seq))
            ]
        )

    assert flicker(out) < 0.97 * flicker(frames), (flicker(frames), flicker(out))


def test_trails_are_rejected_when_flow_is_wrong(monkeypatch):
    # force zero motion (as if flow failed): the consistency weights must keep the moving edge where it is
    scene = Scene(width=W, height=H, frames=10, speed=5.0, seed=4)
    frames, gts = noisy_clip(scene, seed=4, noise=0.0)
    monkeypatch.setattr(
        TemporalSmoother, "_flow", lambda self, a, b: np.zeros((*a.gray.shape, 2), np.float32)
    )
    out = run(TemporalSmoother(SmoothConfig()), frames)
    naive = run(TemporalSmoother(SmoothConfig(), tuning=Tuning(sigma_alpha=100.0, sigma_color=100.0)), frames)
    err = np.mean([np.abs(f.alpha - g)[f.trimap == 128].mean() for f, g in zip(out, gts)])
    err_naive = np.mean([np.abs(f.alpha - g)[f.trimap == 128].mean() for f, g in zip(naive, gts)])
    assert err_naive > 0.03  # the test can fail: blind averaging of unaligned frames does trail
    assert err < 0.5 * err_naive, (err, err_naive)


def test_only_the_unknown_band_changes_and_output_is_ordered():
    scene = Scene(width=W, height=H, frames=9, seed=5)
    frames, _ = noisy_clip(scene, seed=5)
    out = run(TemporalSmoother(SmoothConfig()), frames)
    assert [f.index for f in out] == [f.index for f in frames]
    changed = 0
    for f_in, f_out in zip(frames, out):
        definite = f_in.trimap != 128
        assert np.array_equal(f_out.alpha[definite], f_in.alpha[definite])
        assert np.array_equal(f_out.rgb, f_in.rgb) and f_out.pts == f_in.pts
        assert f_out.alpha.dtype == np.float32 and f_out.alpha.min() >= 0 and f_out.alpha.max() <= 1
        changed += int(not np.array_equal(f_out.alpha, f_in.alpha))
    assert changed == len(frames)


def test_scene_cut_resets_and_nothing_blends_across():
    a_frames, _ = noisy_clip(Scene(width=W, height=H, frames=7, seed=6), seed=6)
    b_frames, _ = noisy_clip(Scene(width=W, height=H, frames=7, seed=7), seed=7, invert=True, start=7)
    sm = TemporalSmoother(SmoothConfig())
    joined = run(sm, a_frames + b_frames)
    # (stats survive flush)
    assert sm.stats()["scene_cuts"] == 1
    sep = run(TemporalSmoother(SmoothConfig()), a_frames) + run(TemporalSmoother(SmoothConfig()), b_frames)
    for x, y in zip(joined, sep):
        assert np.array_equal(x.alpha, y.alpha), x.index
    # and the cut really matters: a smoother that did not see it would differ at the boundary
    blind = run(TemporalSmoother(SmoothConfig(), FlowConfig(scene_cut=1.0)), a_frames + b_frames)
    assert not np.array_equal(blind[6].alpha, joined[6].alpha)


def test_cut_releases_pending_frames_at_once():
    a_frames, _ = noisy_clip(Scene(width=W, height=H, frames=5, seed=8), seed=8)
    b_frames, _ = noisy_clip(Scene(width=W, height=H, frames=2, seed=9), seed=9, invert=True, start=5)
    sm = TemporalSmoother(SmoothConfig(lookahead=3))
    for f in a_frames:
        sm.push(f)
    out = sm.push(b_frames[0])
    assert [f.index for f in out] == [2, 3, 4]  # the rest of shot A, without waiting for look-ahead


def test_memory_is_bounded_and_delay_is_lookahead():
    cfg = SmoothConfig(lookahead=2, lookbehind=3)
    sm = TemporalSmoother(cfg)
    frames, _ = noisy_clip(Scene(width=W, height=H, frames=12, seed=10), seed=10)
    emitted = 0
    for i, f in enumerate(frames):
        out = sm.push(f)
        emitted += len(out)
        assert sm.frames_held <= sm.max_frames_held == 3 + 2 + 1
        assert emitted == max(0, i + 1 - cfg.lookahead)  # delay is exactly the look-ahead
        # flows kept only for pairs inside the window
        assert all(len(e.flows) <= 2 * max(cfg.lookahead, cfg.lookbehind) for e in sm._entries)
    assert len(sm.flush()) == cfg.lookahead and sm.frames_held == 0
    assert sm.stats()["max_frames_held"] == 6


def test_flow_only_between_consecutive_frames():
    # farther neighbours are reached by chaining consecutive flows: 2 DIS calls per frame whatever the window
    frames, _ = noisy_clip(Scene(width=W, height=H, frames=10, seed=12), seed=12)
    for lb, la in ((3, 3), (6, 2)):
        sm = TemporalSmoother(SmoothConfig(lookbehind=lb, lookahead=la))
        out = []
        for f in frames:
            out.extend(sm.push(f))
            assert all(set(e.flows) <= {e.pos - 1, e.pos + 1} for e in sm._entries)
        out.extend(sm.flush())
        assert sm.stats()["flows_computed"] == 2 * (len(frames) - 1)
        assert len(out) == len(frames)


def test_chunk_with_warmup_equals_single_run():
    cfg = SmoothConfig()
    frames, _ = noisy_clip(Scene(width=W, height=H, frames=16, seed=11), seed=11)
    full = {f.index: f.alpha for f in run(TemporalSmoother(cfg), frames)}
    sm = TemporalSmoother(cfg)
    start, end = 6, 10
    feed = frames[start - sm.warmup_frames : end + sm.lookahead + 1]
    chunk = [f for f in run(sm, feed) if start <= f.index <= end]
    assert [f.index for f in chunk] == list(range(start, end + 1))
    for f in chunk:
        assert np.array_equal(f.alpha, full[f.index]), f.index
    # one warm-up frame fewer is not enough (so the figure is tight)
    sm2 = TemporalSmoother(cfg)
    short = run(sm2, frames[start - sm2.warmup_frames + 1 : end + sm2.lookahead + 1])
    assert not np.array_equal(next(f for f in short if f.index == start).alpha, full[start])


def test_deterministic_and_reusable_after_flush():
    frames, _ = noisy_clip(Scene(width=W, height=H, frames=8, seed=12), seed=12)
    sm = TemporalSmoother(SmoothConfig())
    first = run(sm, frames)
    second = run(sm, frames)  # flush reset the state: the next clip starts fresh
    third = run(TemporalSmoother(SmoothConfig()), frames)
    for x, y, z in zip(first, second, third):
        assert np.array_equal(x.alpha, y.alpha) and np.array_equal(x.alpha, z.alpha)
    stats = sm.stats()
    assert stats["frames"] == 16 and stats["ms_per_frame"] > 0
    import json

    json.dumps(stats)


def test_disabled_is_passthrough_and_missing_alpha_is_an_error():
    frames, _ = noisy_clip(Scene(width=W, height=H, frames=3, seed=13), seed=13)
    sm = TemporalSmoother(SmoothConfig(enabled=False))
    assert [sm.push(f)[0] is f for f in frames] == [True] * 3
    assert sm.flush() == []
    with pytest.raises(ValueError):
        TemporalSmoother(SmoothConfig()).push(dataclasses.replace(frames[0], alpha=None))


def test_frames_without_trimap_use_a_band_from_alpha():
    frames, _ = noisy_clip(Scene(width=W, height=H, frames=6, seed=14), seed=14)
    bare = [dataclasses.replace(f, trimap=None) for f in frames]
    out = run(TemporalSmoother(SmoothConfig()), bare)
    for f_in, f_out in zip(bare, out):
        hard = (f_in.alpha == 0) | (f_in.alpha == 1)
        far = cv2.erode(hard.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        assert np.array_equal(f_out.alpha[far], f_in.alpha[far])


def test_config_validation():
    for bad in (
        dict(strength=1.5),
        dict(lookahead=-1),
        dict(lookbehind=17),
    ):
        with pytest.raises(ValueError):
            SmoothConfig(**bad)
    for bad in (dict(combine="max"), dict(sigma_alpha=0.0)):
        with pytest.raises(ValueError):
            Tuning(**bad)


def test_a_removed_smooth_option_is_a_clear_one_line_error(tmp_path):
    """Tuned knobs left [smooth] for vmatte.temporal.tuning: an old config naming one says so in one line."""
    from config_helpers import built_in_constant, config_error

    cfg, exc = config_error(tmp_path, "[smooth]\nstrength = 0.5\nsigma_alpha = 0.2\n")
    assert str(exc) == built_in_constant(cfg, "smooth.sigma_alpha")


# -- scene-cut detector ------------------------------------------------------------------------------------


def test_scene_cut_detector_basics():
    scene = Scene(width=W, height=H, frames=4, seed=15)
    det = SceneCutDetector()
    assert det.update(scene.rgb(0)) is True  # the first frame starts a shot
    assert det.update(scene.rgb(1)) is False
    assert det.update(scene.rgb(2)) is False
    assert det.update(255 - scene.rgb(3)) is True
    assert det.cuts == 1
    det.reset()
    assert det.update(scene.rgb(0)) is True and det.cuts == 0
    with pytest.raises(ValueError):
        det.update(np.zeros((4, 4), np.uint8))


def test_scene_cut_detector_on_real_footage(shared_data):
    davis = shared_data / "davis2016-eorvos" / "DAVIS" / "JPEGImages" / "480p"
    clips = [davis / "blackswan", davis / "dance-twirl", davis / "dog"]
    if not all(c.is_dir() for c in clips):
        pytest.skip("DAVIS clips not present")
    det = SceneCutDetector()
    cuts = []
    n = 0
    for c in clips:
        # every 3rd frame of the first 24: faster motion than the original, still one shot
        for f in sorted(c.glob("*.jpg"))[:24:3]:
            if det.update(cv2.imread(str(f))[:, :, ::-1].copy()):
                cuts.append(n)
            n += 1
    assert cuts == [0, 8, 16]


def test_cost_bench_clip_band_share_and_shared_flows():
    """scripts/bench_smooth_cost.py: the band's share grows with --band-px and the smoother takes every flow
    from the primed store (so its figure is the smoother's own work, no DIS)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    from bench_smooth_cost import run as run_cost
    from bench_smooth_cost import synthetic_clip

    shares = []
    for band_px in (2, 8):
        frames = synthetic_clip(192, 108, 6, band_px)
        shares.append(float(np.mean([(f.trimap == 128).mean() for f in frames])))
    assert 0.0 < shares[0] < shares[1] < 0.5
    made = []

    def factory():
        made.append(TemporalSmoother(SmoothConfig(lookahead=2, lookbehind=2)))
        return made[-1]

    cpu, wall, alphas = run_cost(frames, factory)
    assert len(alphas) == 6 and cpu >= 0.0 and wall > 0.0
    st = made[0].stats()
    assert st["flows_computed"] == 0 and st["flows_reused"] == 10


@pytest.mark.parametrize("band_px", [1, 6])
def test_band_restricted_steps_are_bit_identical_to_full_frame(band_px):
    """crop_to_band (band points by findNonZero, the colour guide blurred only where read) changes no bit
    of the output against the full-frame steps, on a moving clip whose neighbours land near the frame edge."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    from bench_smooth_cost import synthetic_clip

    class FullFrame(TemporalSmoother):
        crop_to_band = False

    frames = synthetic_clip(160, 96, 8, band_px)
    frames += [f.replace(index=f.index + 8) for f in noisy_clip(Scene(W, H, frames=6), seed=3)[0]]
    for cfg, tn in (
        (SmoothConfig(), Tuning()),
        (SmoothConfig(lookahead=2, lookbehind=3), Tuning(combine="mode")),
    ):
        a, b = run(FullFrame(cfg, tuning=tn), frames), run(TemporalSmoother(cfg, tuning=tn), frames)
        assert [f.index for f in a] == [f.index for f in b]
        for fa, fb in zip(a, b):
            assert np.array_equal(fa.alpha, fb.alpha)
