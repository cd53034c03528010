"""Output promises through a real run: single-image outputs (one-frame runs only) and image sequences that
appear under their final names only when complete, leaving nothing behind when the run fails or is cancelled."""

from __future__ import annotations

import threading

import cv2
import pytest
from hostile import assert_one_error_line, run_cli

import vmatte
from vmatte.engine.base import FakeEngine
from vmatte.errors import Interrupted
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


def _seq_cfg(clip_path, masks_dir, out_pattern, **kw):
    return vmatte.RunConfig(
        input=str(clip_path), masks=str(masks_dir), outputs=(OutputConfig(path=str(out_pattern)),), **kw
    )


def test_sequence_appears_only_when_complete(tmp_path, clip_path, masks_dir):
    """While the run is going no frame stands under its final name; at the end all 12 do."""
    folder = tmp_path / "renders" / "shot"
    seen: list[list[str]] = []

    def on_progress(event):
        if event.get("stage") == "matte" and folder.is_dir():
            seen.append(sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")))

    vmatte.run(
        _seq_cfg(clip_path, masks_dir, folder / "f.%04d.png"),
        engine=FakeEngine(batch_size=1),
        on_progress=on_progress,
    )
    assert seen and all(names == [] for names in seen), seen[:3]
    assert sorted(p.name for p in folder.iterdir()) == [f"f.{i:04d}.png" for i in range(12)]
    from vmatte.io.writers.common import CREATED_FOLDERS

    # a finished output's folders are no longer candidates for the forced-exit cleanup of a later run
    assert folder not in CREATED_FOLDERS and folder.parent not in CREATED_FOLDERS


@pytest.mark.parametrize("how", ["fails", "cancelled"])
def test_failed_or_cancelled_sequence_leaves_no_folder(tmp_path, clip_path, masks_dir, how):
    """The output folders the run created go again, with every temporary; nothing under the final names."""
    out = tmp_path / "renders" / "shot" / "f.%04d.png"
    cancel = threading.Event()

    def on_progress(event):
        if event.get("stage") == "matte" and event["done"] >= 3:
            cancel.set()

    cfg = _seq_cfg(clip_path, masks_dir, out)
    if how == "fails":
        with pytest.raises(RuntimeError, match="injected"):
            vmatte.run(cfg, engine=FakeEngine(batch_size=1, fail_on=6))
    else:
        with pytest.raises(Interrupted):
            vmatte.run(cfg, engine=FakeEngine(batch_size=1), on_progress=on_progress, cancel=cancel)
    assert list(tmp_path.rglob("*")) == []


def test_failed_run_keeps_an_existing_folder_and_its_files(tmp_path, clip_path, masks_dir):
    """A folder that was there before (other chunks' frames, the user's files) stays, untouched."""
    folder = tmp_path / "shot"
    folder.mkdir()
    (folder / "f.0100.png").write_bytes(b"another chunk")
    with pytest.raises(RuntimeError, match="injected"):
        vmatte.run(_seq_cfg(clip_path, masks_dir, folder / "f.%04d.png"), engine=FakeEngine(fail_on=6))
    assert [p.name for p in folder.iterdir()] == ["f.0100.png"]


def test_failed_video_run_removes_the_folder_it_created(tmp_path, clip_path, masks_dir):
    out = tmp_path / "new" / "deeper" / "o.mov"
    cfg = vmatte.RunConfig(input=str(clip_path), masks=str(masks_dir), outputs=(OutputConfig(path=str(out)),))
    with pytest.raises(RuntimeError, match="injected"):
        vmatte.run(cfg, engine=FakeEngine(batch_size=2, fail_on=6))
    assert list(tmp_path.iterdir()) == []
