"""Output promises through a real run: single-image outputs (one-frame runs only) and image sequences that
appear under their final names only when complete, leaving nothing behind when the run fails or is cancelled."""

from __future__ import annotations

import cv2
from hostile import assert_one_error_line, run_cli

import vmatte
from vmatte.engine.base import FakeEngine
from vmatte.io.config import OutputConfig


def test_single_image_output_for_a_one_frame_run(tmp_path, clip_path, masks_dir):
    out = tmp_path / "key0.png"
    cfg = vmatte.RunConfig(
        input=str(clip_path), masks=str(masks_dir), frames="5-5", outputs=(OutputConfig(path=str(out)),)
    )
    vmatte.run(cfg, engine=FakeEngine())
    img = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert img is not None and img.shape[2] == 4  # RGBA, the clip's size
    assert sorted(p.name for p in tmp_path.iterdir()) == ["key0.png"]


def test_single_image_output_for_many_frames_is_one_line_exit_2(tmp_path, clip_path, masks_dir):
    out = tmp_path / "key0.png"
    res = run_cli("run", clip_path, "--masks", masks_dir, "-o", out, engine={})
    line = assert_one_error_line(res, 2, "key0.png", "pattern", "--frames")
    assert "key%04d.png" in line and "12 frames" in line
    assert not out.exists() and not list(tmp_path.iterdir())
