"""End to end through the CLI and the API: the chain writes a real matte, keeps timing, fails cleanly."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import threading
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

import vmatte
from vmatte.engine.base import FakeEngine
from vmatte.errors import Interrupted, MaskError, OutputError
from vmatte.io.config import OutputConfig

REPO = Path(__file__).resolve().parents[1]


def _cli(*args, cwd=None, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "vmatte", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
    )


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _decoded_alpha(path: Path):
    """(pts list, alpha arrays float32) of an RGBA .mov."""
    pts, alphas = [], []
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            rgba = f.to_ndarray(format="rgba64le")
            pts.append(f.pts)
            alphas.append(rgba[..., 3].astype(np.float32) / 65535.0)
    return pts, alphas


def _input_pts(path: Path):
    with av.open(str(path)) as c:
        return [f.pts for f in c.decode(video=0)]


def test_cli_run_writes_prores_with_real_matte_and_input_timing(tmp_path, clip_path, masks_dir, scene):
    out = tmp_path / "out.mov"
    report = tmp_path / "report.json"
    before = _sha(clip_path)
    r = _cli(
        "run",
        clip_path,
        "--masks",
        masks_dir,
        "-o",
        out,
        "--engine",
        "classic",
        "--report",
        report,
        "--progress",
        "lines",
    )
    assert r.returncode == 0, r.stderr
    assert _sha(clip_path) == before  # input untouched
    with av.open(str(out)) as c:
        s = c.streams.video[0]
        assert s.codec_context.name == "prores"
        assert "yuva444p" in s.codec_context.pix_fmt  # alpha plane present
    pts, alphas = _decoded_alpha(out)
    assert pts == _input_pts(clip_path)  # same frame count, same timestamps
    # real matte content: soft values along edges, not a copy of the trimap (which has only 0/0.5/1)
    soft = [np.mean((a > 0.02) & (a < 0.98)) for a in alphas]
    assert min(soft) > 0.0
    distinct = np.unique(np.round(alphas[5] * 255)).size
    assert distinct > 20
    # and it is the right matte: close to the true alpha of the synthetic scene
    err = np.mean([np.abs(a - scene.alpha(t)).mean() for t, a in enumerate(alphas)])
    assert err < 0.05
    import json

    rep = json.loads(report.read_text())
    assert rep["status"] == "ok" and rep["frames_written"] == scene.frames
    assert set(rep["times"]) >= {"decode_wait", "propagate", "engine", "smooth", "encode", "total"}


def test_api_reuses_engine_across_clips(tmp_path, clip_path, masks_dir):
    engine = FakeEngine(batch_size=3)
    for i in range(2):
        cfg = vmatte.RunConfig(
            input=str(clip_path),
            masks=str(masks_dir),
            outputs=(OutputConfig(path=str(tmp_path / f"o{i}.mov")),),
        )
        events = []
        rep = vmatte.run(cfg, engine=engine, on_progress=events.append)
        assert rep.frames_written == 12 and (tmp_path / f"o{i}.mov").exists()
        assert events and events[-1]["done"] == 12
    assert engine.frames_matted + engine.frames_trivial == 24


def test_api_cancel_leaves_no_output(tmp_path, clip_path, masks_dir):
    cancel = threading.Event()
    out = tmp_path / "o.mov"

    def on_progress(event):
        if event.get("stage") == "matte" and event["done"] >= 2:
            cancel.set()

    cfg = vmatte.RunConfig(input=str(clip_path), masks=str(masks_dir), outputs=(OutputConfig(path=str(out)),))
    with pytest.raises(Interrupted):
        vmatte.run(cfg, engine=FakeEngine(batch_size=1), on_progress=on_progress, cancel=cancel)
    assert not out.exists()
    assert not list(tmp_path.glob(".*vmatte-tmp*"))


def test_missing_masks_folder_is_one_line_and_no_output(tmp_path, clip_path):
    out = tmp_path / "o.mov"
    r = _cli("run", clip_path, "--masks", tmp_path / "nope", "-o", out, "--engine", "classic")
    assert r.returncode == MaskError.exit_code
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "nope" in lines[0] and lines[0].startswith("vmatte: error:")
    assert not out.exists()


def test_wrong_size_mask_names_file(tmp_path, clip_path):
    masks = tmp_path / "masks"
    masks.mkdir()
    cv2.imwrite(str(masks / "000003.png"), np.zeros((50, 70), np.uint8) + 255)
    out = tmp_path / "o.mov"
    r = _cli("run", clip_path, "--masks", masks, "-o", out, "--engine", "classic")
    assert r.returncode == MaskError.exit_code
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "000003.png" in lines[0] and "70x50" in lines[0]
    assert not out.exists()


def test_masks_of_the_picture_run_on_a_clip_with_codec_padding(tmp_path, clip_path, scene):
    # masks drawn on a 160x88 picture that the clip stores as 160x96 (coded size, no crop signalled): the run
    # goes through at clip size, the keyframe's matte holds the mask, the padding rows are background
    masks = tmp_path / "masks"
    masks.mkdir()
    for t in (0, 8):
        cv2.imwrite(str(masks / f"{t:06d}.png"), scene.mask(t)[:88])
    out = tmp_path / "a"
    cfg = vmatte.RunConfig(
        input=str(clip_path),
        masks=str(masks),
        outputs=(OutputConfig(path=str(out / "%05d.png"), content="alpha", format="png", start_number=0),),
        engine=vmatte.config.EngineConfig(name="classic"),
        progress="none",
    )
    rep = vmatte.run(cfg)
    assert rep.frames_written == 12
    key = cv2.imread(str(out / "00000.png"), cv2.IMREAD_UNCHANGED)
    assert key.shape == (96, 160)
    assert np.array_equal(key[:88] > 127, scene.mask(0)[:88] > 0)
    assert not key[88:].any()
    assert any("codec padding" in w for w in rep.warnings), rep.warnings


def test_unreadable_clip_names_file(tmp_path, masks_dir):
    bad = tmp_path / "notes.mp4"
    bad.write_text("this is not a video\n")
    out = tmp_path / "o.mov"
    r = _cli("run", bad, "--masks", masks_dir, "-o", out, "--engine", "classic")
    assert r.returncode == 3
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "notes.mp4" in lines[0]
    assert not out.exists()


def test_existing_output_refused_without_overwrite(tmp_path, clip_path, masks_dir):
    out = tmp_path / "o.mov"
    out.write_bytes(b"precious")
    cfg = vmatte.RunConfig(input=str(clip_path), masks=str(masks_dir), outputs=(OutputConfig(path=str(out)),))
    with pytest.raises(OutputError, match="already exists"):
        vmatte.run(cfg, engine=FakeEngine())
    assert out.read_bytes() == b"precious"


def test_engine_failure_mid_run_aborts_outputs(tmp_path, clip_path, masks_dir):
    out = tmp_path / "o.mov"
    cfg = vmatte.RunConfig(input=str(clip_path), masks=str(masks_dir), outputs=(OutputConfig(path=str(out)),))
    with pytest.raises(RuntimeError, match="injected"):
        vmatte.run(cfg, engine=FakeEngine(batch_size=2, fail_on=6))
    assert not out.exists()
    assert not list(tmp_path.glob(".*vmatte-tmp*"))
