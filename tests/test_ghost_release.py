"""Ghost release (vmatte issue 14, judo): where a chain lost its reliability over background the subject uncovered,
the subject's old label must not stay there once the flow tracks that background again; the subject itself,
moving unlike the background, keeps its label even where its chain is lost."""

from __future__ import annotations

import numpy as np

from vmatte.motion.flow import FlowPair
from vmatte.propagate.chain import Motion, release_ghost
from vmatte.propagate.tuning import Tuning
from vmatte.testing import Scene

W, H = 160, 96


def _frames() -> tuple[np.ndarray, np.ndarray]:
    """Two grey frames (H, W) uint8: a static textured background and a textured subject (rows 56-88, columns
    40-80 on frame a) that moves 4 px right on frame b."""
    bg = (Scene(width=W, height=H, frames=2, static=True).background(0).mean(axis=-1) * 255).astype(np.uint8)
    rng = np.random.default_rng(5)
    tex = rng.integers(0, 255, (32, 40), dtype=np.uint8)
    a, b = bg.copy(), bg.copy()
    a[56:88, 40:80] = tex
    b[56:88, 44:84] = tex
    return a, b


def _state() -> tuple[np.ndarray, np.ndarray]:
    """Chain state on frame a: reliable background (p 0, r 1), the reliable subject, a lost part of the subject
    (rows 72-88: p 1, r 0) and a ghost over static background (rows 8-40, columns 90-140: p 1, r 0)."""
    p = np.zeros((H, W), np.float32)
    r = np.ones((H, W), np.float32)
    p[56:88, 40:80] = 1.0
    r[72:88, 40:80] = 0.0
    p[8:40, 90:140] = 1.0
    r[8:40, 90:140] = 0.0
    return p, r


def _step(ghost_px: float) -> tuple[np.ndarray, np.ndarray]:
    a, b = _frames()
    flow = FlowPair("medium", W, H)
    try:
        _ab, ba, _c_ab, c_ba = flow.compute(a, b)
        p, r = _state()
        return Motion(flow, 0.0, None, 0.0, ghost_px).step(p, r, ba, c_ba, a, b)
    finally:
        flow.close()


def test_ghost_over_static_background_is_released():
    p, r = _step(2.0)
    ghost = (slice(12, 36), slice(94, 136))
    assert float(p[ghost].mean()) < 0.1  # background again
    assert float(r[ghost].mean()) > 0.4  # and the chain trusts that label from now on


def test_without_release_the_ghost_stays():
    """The mechanism, shown: the plain step carries the subject's old label over static background."""
    p, r = _step(0.0)
    ghost = (slice(12, 36), slice(94, 136))
    assert float(p[ghost].mean()) > 0.9
    assert float(r[ghost].max()) < 0.1


def test_lost_moving_subject_keeps_its_label():
    """A lost part of the subject moves 4 px unlike the (still) background: not released."""
    p, _r = _step(2.0)
    lost_subject = (slice(76, 86), slice(52, 78))  # b's grid, inside the moved subject, away from its edges
    assert float(p[lost_subject].mean()) > 0.9
    reliable_subject = (slice(60, 68), slice(52, 78))
    assert float(p[reliable_subject].mean()) > 0.9


def test_release_needs_reliable_background_and_consistency():
    """No reliable background to measure its motion, or an inconsistent flow: nothing changes."""
    p = np.ones((H, W), np.float32)
    r = np.zeros((H, W), np.float32)
    flow = np.zeros((H, W, 2), np.float32)
    c = np.ones((H, W), np.float32)
    p2, r2 = release_ghost(p, r, flow, c, 1.0)
    assert np.array_equal(p2, p) and np.array_equal(r2, r)  # no background anywhere
    p[:, :40], r[:, :40] = 0.0, 1.0
    c[:, 40:] = 0.0
    p2, r2 = release_ghost(p, r, flow, c, 1.0)
    assert np.array_equal(p2, p) and np.array_equal(r2, r)  # lost pixels whose flow is not consistent
    c[:, 40:] = 1.0
    p2, r2 = release_ghost(p, r, flow, c, 1.0)
    assert float(p2[:, 40:].max()) == 0.0 and float(r2[:, 40:].min()) > 0.4


def test_shipped_default_is_on():
    assert Tuning().ghost_motion > 0
