"""``vmatte propagate`` end to end: video and image-sequence input, outputs, report, bad masks (exit 4)."""

from __future__ import annotations

import json

import cv2
import numpy as np

from vmatte.cli import main as cli_main
from vmatte.testing import Scene, write_sequence


def test_propagate_cli_on_video(clip_path, masks_dir, scene, tmp_path, capsys):
    out = tmp_path / "out"
    rc = cli_main(["propagate", str(clip_path), "--masks", str(masks_dir), "--out", str(out), "--quiet"])
    assert rc == 0
    trimaps = sorted((out / "trimaps").glob("*.png"))
    masks = sorted((out / "masks").glob("*.png"))
    assert [p.name for p in trimaps] == [f"{i:06d}.png" for i in range(scene.frames)]
    assert [p.name for p in masks] == [p.name for p in trimaps]
    assert not list(out.rglob("*.tmp*"))
    tri = cv2.imread(str(trimaps[4]), cv2.IMREAD_UNCHANGED)
    assert tri.shape == (scene.height, scene.width) and set(np.unique(tri)) <= {0, 128, 255}
    m8 = cv2.imread(str(masks[8]), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(m8, scene.mask(8))  # keyframe 8 is exact
    report = json.loads((out / "propagate.json").read_text())
    assert len(report["confidence"]) == scene.frames
    assert report["confidence"][0] == 1.0 and report["confidence"][8] == 1.0
    assert all(0.0 <= c <= 1.0 for c in report["confidence"])
    assert report["keyframes"] == [0, 8]
    assert all(s not in (0, 8) for s in report["suggested_keyframes"])
    printed = capsys.readouterr().out
    assert "frames/s" in printed


def test_propagate_cli_image_sequence_with_range(tmp_path):
    sc = Scene(width=96, height=64, frames=9, speed=2.0, fur=0.05)
    frames = write_sequence(tmp_path / "frames", sc, pattern="%05d.jpg")  # DAVIS layout: JPEG frames
    masks = tmp_path / "masks"
    masks.mkdir()
    cv2.imwrite(str(masks / "00000.png"), sc.mask(0))
    cv2.imwrite(str(masks / "00008.png"), sc.mask(8))
    out = tmp_path / "out"
    rc = cli_main(
        [
            "propagate",
            str(frames),
            "--masks",
            str(masks),
            "--out",
            str(out),
            "--frames",
            "3-5",
            "--work-size",
            "80",
            "--band",
            "0.02",
            "--quiet",
        ]
    )
    assert rc == 0
    assert sorted(p.name for p in (out / "trimaps").glob("*.png")) == [
        "000003.png",
        "000004.png",
        "000005.png",
    ]
    report = json.loads((out / "propagate.json").read_text())
    assert report["frames"] == [3, 5] and report["work_size"] == [80, 53]


def test_propagate_cli_bad_masks(clip_path, scene, tmp_path, capsys):
    masks = tmp_path / "m"
    masks.mkdir()
    cv2.imwrite(str(masks / "000050.png"), scene.mask(0))  # the clip has 12 frames
    rc = cli_main(["propagate", str(clip_path), "--masks", str(masks), "--out", str(tmp_path / "o")])
    assert rc == 4
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "000050.png" in err[0] and "12 frames" in err[0]
    assert not (tmp_path / "o").exists()  # nothing written before the masks are valid
    rc = cli_main(
        ["propagate", str(clip_path), "--masks", str(masks), "--out", str(tmp_path / "o"), "--band", "0.9"]
    )
    assert rc == 2  # a bad option is a usage error


def test_tune_malloc_fixes_both_thresholds_unless_the_user_set_one(monkeypatch, real_tune_malloc):
    """Fixing the mmap threshold alone leaves glibc's trim threshold at 128 kB, and every frame's temporaries
    were faulted in again (DAVIS parkour 17.5 s -> 10.5 s with both set): the command sets both, or neither
    when the user tuned the allocator."""
    import ctypes
    import sys

    calls = []

    class FakeLibc:
        def mallopt(self, param, value):
            calls.append((param, value))
            return 1

    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(ctypes, "CDLL", lambda name: FakeLibc())
    for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"):
        monkeypatch.delenv(k, raising=False)
    real_tune_malloc()
    assert sorted(calls) == [(-3, 4 << 20), (-1, 32 << 20)]  # M_MMAP_THRESHOLD, M_TRIM_THRESHOLD
    for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"):
        calls.clear()
        monkeypatch.setenv(k, "1048576")
        real_tune_malloc()
        assert calls == []
        monkeypatch.delenv(k)
