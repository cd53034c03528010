"""vmatte.motion: one [flow] config for propagation and smoothing, and one motion estimate per frame pair."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from config_helpers import config_error

from vmatte.config import build_config
from vmatte.motion.config import MOVED_KEYS, FlowConfig
from vmatte.propagate.config import PropagateConfig


def test_flow_config_validation():
    FlowConfig(scene_cut=0.0)  # 0 disables scene cuts
    for bad in (dict(preset="slow"), dict(work_size=32), dict(scene_cut=1.5), dict(scene_cut=-0.1)):
        with pytest.raises(ValueError):
            FlowConfig(**bad)


def test_flow_options_live_in_one_section(tmp_path):
    cfg = build_config(
        overrides={"input": "x.mp4", "flow": {"preset": "fast", "work_size": 320, "scene_cut": 0}}
    )
    assert (cfg.flow.preset, cfg.flow.work_size, cfg.flow.scene_cut) == ("fast", 320, 0)
    for cls_cfg in (cfg.propagate, cfg.smooth):
        names = set(type(cls_cfg).__dataclass_fields__)
        assert not names & {"flow", "work_size", "scene_cut", "scene_cut_threshold"}


@pytest.mark.parametrize("old", sorted(MOVED_KEYS))
def test_moved_keys_name_their_new_place(tmp_path, old):
    section, key = old.split(".")
    value = '"fast"' if key == "flow" else ("0.3" if "scene" in key else "320")
    f, exc = config_error(tmp_path, f"[{section}]\n{key} = {value}\n")
    new = MOVED_KEYS[old]
    assert f"'{old}' moved to '{new}'" in str(exc) and str(f) in str(exc)
    assert f"[flow] {new.split('.')[1]} = " in (exc.hint or "")


# -- one motion estimate per frame pair --------------------------------------------------------------------


def _chain(clip, kf, flow_cfg, smoothers, cut_from=None, archive_bytes=None):
    """The runner's main pass with an engine batch of 1: push → matte (the scene's alpha, plus deterministic
    noise) → observe → smooth. Each smoother gets the frames as a (smoother, strip motion?) pair.
    archive_bytes: cap the RAM and disk of the store's archive of pre-pass flows (None: the default)."""
    from vmatte.propagate import Propagator

    prop = Propagator(clip, kf, PropagateConfig(), flow=flow_cfg)
    if archive_bytes is not None:
        prop.motion._archive.budget = prop.motion._archive.disk_limit = archive_bytes
    prop.prepare()
    outs = [[] for _ in smoothers]
    carried = []
    rng = np.random.default_rng(0)
    for frame in clip.frames(0, clip.info.frame_count - 1):
        (f,) = prop.push(frame)
        carried.append(f.motion)
        noise = rng.normal(0, 0.05, f.trimap.shape).astype(np.float32)
        alpha = np.clip((f.trimap.astype(np.float32) / 255.0) + noise * (f.trimap == 128), 0, 1)
        f = f.replace(alpha=alpha.astype(np.float32))
        prop.observe(f)
        for out, (sm, strip) in zip(outs, smoothers):
            out.extend(sm.push(f.replace(motion=None) if strip else f))
    for out, (sm, _) in zip(outs, smoothers):
        out.extend(sm.flush())
    prop.close()
    return prop, outs, carried


@pytest.fixture(scope="module")
def rigid(tmp_path_factory):
    from vmatte.testing import Scene, write_masks, write_sequence

    scene = Scene(width=160, height=96, frames=21, speed=2.5, fur=0.05)
    tmp = tmp_path_factory.mktemp("motion")
    return write_sequence(tmp / "frames", scene), write_masks(tmp / "masks", scene, [0, 10, 20])


def test_smoother_reuses_the_feedback_flows_and_results_do_not_change(rigid):
    from vmatte.io.decode import open_clip
    from vmatte.io.masks import load_keyframes
    from vmatte.temporal.config import SmoothConfig
    from vmatte.temporal.smooth import TemporalSmoother

    clip = open_clip(rigid[0])
    kf = load_keyframes(rigid[1], clip.info)
    flow = FlowConfig(work_size=128)  # below the frame size: the shared greys are resized ones
    shared = TemporalSmoother(SmoothConfig(), flow)
    alone = TemporalSmoother(SmoothConfig(), flow)
    other = TemporalSmoother(SmoothConfig(), FlowConfig(work_size=96))  # another resolution: shares nothing
    prop, (a, b, _), carried = _chain(clip, kf, flow, [(shared, False), (alone, True), (other, False)])
    assert len(a) == len(b) == 21
    for x, y in zip(a, b):
        assert np.array_equal(x.alpha, y.alpha), x.index  # bit-identical to computing the flows itself
    # the propagation pass computed the 20 adjacent pairs and archived them: feedback and the smoother took
    # every pair from the store, and the main pass ran no DIS at all (it ran 2 per pair before the archive)
    assert prop.motion.archived == 40
    assert shared.stats()["flows_reused"] == 40 and shared.stats()["flows_computed"] == 0
    assert alone.stats()["flows_computed"] == 40 and alone.stats()["flows_reused"] == 0
    assert other.stats()["flows_reused"] == 0
    assert prop.motion.dis_calls == 0
    # bounded: greys and pairs for the longest feedback lag (8: 11 and 9), whatever the clip length
    assert len(prop.motion._grays) <= 11 and len(prop.motion._pairs) <= 9
    assert all(m.cut is False for m in carried)


def test_flows_from_the_archive_or_computed_again_give_the_same_matte(rigid):
    """The pre-pass archives its flows within a disk limit; pairs past it are computed again by the main pass,
    with the same numbers (DIS is deterministic), so the room left on the disk never changes a result (a farm
    chunk's pass also covers other frames than a whole run's)."""
    from vmatte.io.decode import open_clip
    from vmatte.io.masks import load_keyframes
    from vmatte.temporal.config import SmoothConfig
    from vmatte.temporal.smooth import TemporalSmoother

    clip = open_clip(rigid[0])
    kf = load_keyframes(rigid[1], clip.info)
    flow = FlowConfig(work_size=128)
    pair_bytes = 2 * 128 * 77 * 2 * 4  # two float32 flows of a 128x77 working frame
    runs = {}
    for cap in (None, 7 * pair_bytes, 0):
        sm = TemporalSmoother(SmoothConfig(), flow)
        prop, (out,), _ = _chain(clip, kf, flow, [(sm, False)], archive_bytes=cap)
        runs[cap] = (prop.motion.archived, prop.motion.dis_calls, [f.alpha for f in out])
    # (flows archived, DIS run by the main pass): all 20 pairs; 7 in RAM + 7 on disk; none
    assert [runs[c][:2] for c in (None, 7 * pair_bytes, 0)] == [(40, 0), (28, 12), (0, 40)]
    for cap in (7 * pair_bytes, 0):
        assert all(np.array_equal(x, y) for x, y in zip(runs[None][2], runs[cap][2]))


def test_one_scene_cut_decision_travels_with_the_frame(tmp_path):
    """A cut is decided once, by the propagation pass (which stops there), and the smoother takes it from the frame."""
    import cv2

    from vmatte.io.decode import open_clip
    from vmatte.io.masks import load_keyframes
    from vmatte.temporal.config import SmoothConfig
    from vmatte.temporal.smooth import TemporalSmoother
    from vmatte.testing import Scene, write_masks

    sc = Scene(width=96, height=64, frames=10, speed=2.0, fur=0.05)
    d = tmp_path / "cut"
    d.mkdir()
    for t in range(10):
        rgb = sc.rgb(t)
        if t >= 6:
            rgb = np.ascontiguousarray(rgb[:, :, ::-1] // 3 + 150)  # another shot: other palette
        cv2.imwrite(str(d / f"{t:06d}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    clip = open_clip(d)
    kf = load_keyframes(write_masks(tmp_path / "k", sc, [0]), clip.info)
    flow = FlowConfig()
    carried_sm = TemporalSmoother(SmoothConfig(), flow)
    own_sm = TemporalSmoother(SmoothConfig(), flow)
    prop, (a, b), carried = _chain(clip, kf, flow, [(carried_sm, False), (own_sm, True)])
    assert prop.cuts == [6]
    for t in range(
        6, 10
    ):  # propagation stops at the cut: no keyframe in the new shot, nothing is known there
        tri, _, conf = prop.result(t)
        assert np.all(tri == 128) and conf == 0.0
    # ... but not before it (one direction alone: at most blend.UNVERIFIED_AGREEMENT)
    assert prop.result(5)[2] > 0.3
    assert set(prop.suggestions()) & {6, 7, 8, 9}  # the new shot wants a keyframe
    assert [m.cut for m in carried] == [t == 6 for t in range(10)]
    assert carried_sm.stats()["scene_cuts"] == own_sm.stats()["scene_cuts"] == 1
    for x, y in zip(a, b):
        assert np.array_equal(x.alpha, y.alpha), x.index


def test_carried_cut_is_used_without_running_the_detector(monkeypatch):
    """The smoother takes the propagation pass's decision: its own detector does not run on such frames."""
    from vmatte.frame import Frame
    from vmatte.motion.scenecut import SceneCutDetector
    from vmatte.motion.shared import FrameMotion, MotionStore
    from vmatte.temporal.config import SmoothConfig
    from vmatte.temporal.smooth import TemporalSmoother

    calls = []
    monkeypatch.setattr(SceneCutDetector, "update", lambda self, rgb: calls.append(1) or False)
    flow = FlowConfig()
    store = MotionStore(flow)
    sm = TemporalSmoother(SmoothConfig(lookahead=0, lookbehind=1), flow)
    rgb = np.zeros((32, 48, 3), np.uint8)
    for t, cut in enumerate([False, False, True, False]):
        f = Frame(t, t, None, rgb, alpha=np.zeros((32, 48), np.float32), motion=FrameMotion(t, cut, store))
        sm.push(f)
    assert sm.stats()["scene_cuts"] == 1 and not calls
    store.close()


def test_chunked_report_sums_reused_flows():
    from vmatte.farm.jobreport import _combine_smoothing

    chunk = {"frames": 5, "seconds": 1.0, "flows_computed": 2, "flows_reused": 6, "max_frames_held": 9}
    both = _combine_smoothing([chunk, dict(chunk, flows_reused=4)])
    assert both["flows_reused"] == 10 and both["flows_computed"] == 4


def _subject_motion_reference(flow, m):
    """subject_motion as first written (full-plane np.where per window): the optimised one must match it bit for
    bit."""
    import cv2

    from vmatte.motion.flow import _FG_SUPPORT, _FG_WINDOWS

    if not m.any():
        return flow
    out = flow.copy()
    filled = m >= 0.999
    weighted = flow * m[..., None]
    for k in _FG_WINDOWS:
        den = cv2.blur(m, (k, k))
        num = cv2.blur(weighted, (k, k))
        ok = (den > _FG_SUPPORT) & ~filled
        np.divide(num, np.maximum(den, _FG_SUPPORT)[..., None], out=num)
        out = np.where(ok[..., None], num, out)
        filled |= ok
    return out


@pytest.mark.parametrize("case", ["blob", "small", "full", "empty", "speck"])
def test_subject_motion_bit_identical_to_reference(case):
    import cv2

    from vmatte.motion.flow import subject_motion

    rng = np.random.default_rng(7)
    h, w = 180, 320
    flow = rng.normal(0.0, 3.0, (h, w, 2)).astype(np.float32)
    yy, xx = np.mgrid[:h, :w]
    m = np.zeros((h, w), np.float32)
    if case == "blob":  # soft-edged disc: all three windows take part
        m = (((yy - 90) ** 2 + (xx - 160) ** 2) < 50**2).astype(np.float32)
        m = cv2.resize(cv2.resize(m, (w // 3, h // 3), interpolation=cv2.INTER_AREA), (w, h))
    elif case == "small":  # far corners have no support at any window: they keep the image flow
        m[10:14, 10:14] = 1.0
    elif case == "full":
        m[:] = 1.0
    elif case == "speck":  # support too thin for the small windows
        m[90, 160] = 0.5
    before = flow.copy()
    got = subject_motion(flow, m)
    ref = _subject_motion_reference(flow, m)
    assert got.dtype == np.float32 and got.shape == flow.shape
    assert np.array_equal(got, ref)
    assert np.array_equal(flow, before)  # the input flow (possibly the shared store's) is not modified
    if case == "blob":
        assert not np.array_equal(got, flow)  # the case does exercise the replacement


def test_flows_between_composes_adjacent_pairs_once():
    """Feedback from an older matte (an engine batch) composes the adjacent pairs the smoother needs anyway:
    DIS runs once per adjacent pair, the composed flow follows a translating texture, and without the grey
    frames in between the store falls back to one direct pair."""
    import cv2

    from vmatte.frame import Frame
    from vmatte.motion.shared import MotionStore

    rng = np.random.default_rng(3)
    tex = cv2.GaussianBlur(rng.integers(0, 256, (200, 260), dtype=np.uint8), (0, 0), 2.0)
    frames = [
        Frame(t, t, None, np.dstack([tex[20:116, 30 + 3 * t : 158 + 3 * t]] * 3)) for t in range(5)
    ]  # the view pans 3 px right per frame: what is at x on frame t is at x + 3(t - s) on frame s
    store = MotionStore(FlowConfig(), grays=8, pairs=8)
    grays = [store.gray(f) for f in frames]
    ts, st = store.flows_between(4, grays[4], 1, grays[1])
    assert store.dis_calls == 6  # pairs (4,3), (3,2), (2,1), two directions each
    inner = (slice(16, -16), slice(24, -24))
    scale = grays[0].shape[1] / 128  # working px per frame px
    assert abs(float(np.median(ts[inner][..., 0])) - 9 * scale) < 0.5 * scale
    assert abs(float(np.median(st[inner][..., 0])) + 9 * scale) < 0.5 * scale
    # the smoother's adjacent pairs now come from the store
    store.flows(3, grays[3], 4, grays[4])
    assert store.dis_calls == 6 and store.reused >= 2
    # composition is the explicit one
    warp = store.flow_pair(grays[0].shape[1], grays[0].shape[0]).warp
    a43, _, _ = store.flows(4, grays[4], 3, grays[3])
    a32, _, _ = store.flows(3, grays[3], 2, grays[2])
    a21, _, _ = store.flows(2, grays[2], 1, grays[1])
    a42 = a43 + warp(a32, a43)
    assert np.allclose(ts, a42 + warp(a21, a42), atol=1e-5)
    # a store that never saw the frames in between: one direct pair
    other = MotionStore(FlowConfig())
    other.flows_between(4, grays[4], 1, grays[1])
    assert other.dis_calls == 2
    store.close()
    other.close()


class _CountingMotion:
    """A keypoint motion that returns ``tf`` and counts its calls."""

    def __init__(self, tf):
        self.tf, self.calls = tf, 0

    def estimate(self, src, dst, region):
        self.calls += 1
        return self.tf


def _shifted_disc(shift: int = 10):
    """A textured frame, the same frame ``shift`` px to the right, and the disc mask on the first."""
    rng = np.random.default_rng(0)
    src = cv2.GaussianBlur(rng.integers(0, 255, (120, 160), dtype=np.uint8), (0, 0), 1.5)
    dst = np.roll(src, shift, axis=1)
    p = np.zeros((120, 160), np.float32)
    cv2.circle(p, (60, 60), 25, 1.0, -1)
    return src, dst, p


def test_keypoint_fallback_waits_after_a_loss_and_not_after_a_win():
    """A chain whose fallback found nothing does not try again for BACKOFF_STEPS steps (breakdance: 147 of
    155 steps tried, none taken, 52 ms a frame); one whose fallback carried the subject tries on the next."""
    from vmatte.motion.keypoint import BACKOFF_STEPS, Backoff, carry

    src, dst, p = _shifted_disc()
    r = np.ones_like(p)
    lost = _CountingMotion(None)
    backoff = Backoff()
    for _ in range(2 * (BACKOFF_STEPS + 1)):
        # a zero flow leaves the disc behind (src_by_flow = src), and fail -1 always triggers the fallback
        out_p, _ = carry(lost, src, dst, p, r, p, r, src, -1.0, backoff)
        assert out_p is p
    assert lost.calls == 2  # steps 1 and BACKOFF_STEPS + 2
    won = _CountingMotion(np.float32([[1, 0, 10], [0, 1, 0]]))  # the true motion
    backoff = Backoff()
    for _ in range(3):
        out_p, _ = carry(won, src, dst, p, r, p, r, src, -1.0, backoff)
        # the disc moved 10 px right: x 35-85 -> 45-95
        assert out_p is not p and out_p[60, 90] > 0.5 and out_p[60, 38] < 0.5
    assert won.calls == 3 and backoff.wait == 0
    # without a backoff (None) every step tries
    lost.calls = 0
    for _ in range(3):
        carry(lost, src, dst, p, r, p, r, src, -1.0)
    assert lost.calls == 3
