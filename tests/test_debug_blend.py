"""The propagation's blend hook (``Propagator.on_blend``) and the developer view built on it
(``scripts/debug_blend.py``): every stored in-between frame is shown once, keyframes never, and watching
changes nothing."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from script_helpers import load_script

from vmatte.io.decode import open_clip
from vmatte.io.masks import load_keyframes
from vmatte.motion.config import FlowConfig
from vmatte.motion.flow import work_shape
from vmatte.propagate import Propagator
from vmatte.testing import Scene, write_masks, write_sequence

SCENE = Scene(width=96, height=64, frames=9, speed=2.0)
KF = [0, 8]


@pytest.fixture(scope="module")
def clip_and_keys(tmp_path_factory):
    root = tmp_path_factory.mktemp("blend")
    return write_sequence(root / "frames", SCENE), write_masks(root / "masks", SCENE, KF)


def _results(seq, kdir, hook=None):
    clip = open_clip(seq)
    prop = Propagator(clip, load_keyframes(kdir, clip.info))
    prop.keep_flows = False
    prop.on_blend = hook
    prop.prepare()
    prop.close()
    return [prop.result(t)[0] for t in range(SCENE.frames)]


def test_blend_hook_sees_every_in_between_frame_once_and_changes_nothing(clip_and_keys):
    seq, kdir = clip_and_keys
    seen = []

    def hook(t, gray, fwd, bwd, blended):
        assert gray.dtype == np.uint8 and blended.p.shape == gray.shape == blended.unknown.shape
        # between two keyframes both directions reach the frame, each with its (h, w) p and reliability
        assert fwd is not None and bwd is not None
        assert fwd.p.shape == fwd.r.shape == bwd.p.shape == gray.shape
        seen.append(t)

    watched = _results(seq, kdir, hook)
    assert sorted(seen) == list(range(1, 8))
    plain = _results(seq, kdir)
    assert all(np.array_equal(a, b) for a, b in zip(watched, plain))


def test_debug_blend_script_writes_one_panel_row_pair_per_frame(clip_and_keys, tmp_path, capsys):
    seq, kdir = clip_and_keys
    mod = load_script("debug_blend")
    out = tmp_path / "blend.png"
    assert mod.main([str(seq), "--masks", str(kdir), "--frames", "0,3,5", "--out", str(out)]) == 0
    img = cv2.imread(str(out))
    ww, wh = work_shape(SCENE.width, SCENE.height, FlowConfig().work_size)
    # two frames (3 and 5; keyframe 0 is left out, and said so), each two rows of four working-size panels
    assert img.shape[:2] == (2 * 2 * wh, 4 * ww)
    assert "[0] are keyframes" in capsys.readouterr().out
    # only keyframes asked: nothing to show, exit 2 and no file
    other = tmp_path / "none.png"
    assert mod.main([str(seq), "--masks", str(kdir), "--frames", "8", "--out", str(other)]) == 2
    assert not other.exists()
