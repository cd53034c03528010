"""SAM 2 video propagation (``--propagator sam2``) with a tiny random model saved like a user's weights.

Random weights say nothing about quality: these tests pin the mechanics (keyframes exact, both directions used,
chunks equal the whole run, memory flat in clip length, missing weights exit 5, auto falls back to flow). A
``weights`` test runs real checkpoints: ``VMATTE_WEIGHTS=1 VMATTE_SAM2_WEIGHTS=DIR pytest -m weights`` with DIR a
``save_pretrained`` folder of SAM 2 video (e.g. ``hf download facebook/sam2.1-hiera-tiny``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from vmatte.cli import main as cli_main
from vmatte.engine.weights import WeightsSource
from vmatte.io.decode import open_clip
from vmatte.io.masks import load_keyframes
from vmatte.propagate.config import PropagateConfig
from vmatte.propagate.sam2 import Sam2Propagator, blend_directions, make_propagator, sam_unknown
from vmatte.testing import Scene, write_clip, write_masks

pytest.importorskip("transformers.models.sam2_video")

KEYS = [0, 3]


@pytest.fixture(scope="module")
def sam2_dir(tmp_path_factory) -> Path:
    from vmatte.propagate.sam2_configs import save_random_sam2

    return save_random_sam2(tmp_path_factory.mktemp("sam2") / "tiny-sam2", "test", seed=0)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """(scene, clip path, masks folder): 6 frames of 128x80, keyframes 0 and 3."""
    d = tmp_path_factory.mktemp("sam2clip")
    sc = Scene(width=128, height=80, frames=6, speed=3.0)
    return sc, write_clip(d / "clip.mp4", sc), write_masks(d / "keys", sc, KEYS)


@pytest.fixture(scope="module")
def cli_out(tmp_path_factory, small, sam2_dir) -> Path:
    """``vmatte propagate --propagator sam2`` on the small clip (the whole run every other test compares to)."""
    _sc, clip, masks = small
    out = tmp_path_factory.mktemp("sam2out") / "out"
    rc = cli_main(
        [
            "propagate",
            str(clip),
            "--masks",
            str(masks),
            "--out",
            str(out),
            "--propagator",
            "sam2",
            "--propagator-model",
            str(sam2_dir),
            "--quiet",
        ]
    )
    assert rc == 0
    return out


def _prop(small, sam2_dir, frame_range=None) -> Sam2Propagator:
    _sc, clip, masks = small
    c = open_clip(str(clip))
    kf = load_keyframes(str(masks), c.info)
    pcfg = PropagateConfig(propagator="sam2", propagator_model=str(sam2_dir))
    p = Sam2Propagator(c, kf, pcfg, frame_range, source=WeightsSource("dir", str(sam2_dir), str(sam2_dir)))
    p.prepare()
    return p


@pytest.fixture(scope="module")
def chunk_1_2(small, sam2_dir) -> Sam2Propagator:
    """The propagator a farm chunk of frames 1-2 runs (it tracks the segment between keyframes 0 and 3)."""
    return _prop(small, sam2_dir, frame_range=(1, 2))


def _read(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


def test_propagate_cli_sam2_keyframes_exact_and_report(cli_out, small):
    sc, _clip, _masks = small
    trimaps = sorted((cli_out / "trimaps").glob("*.png"))
    assert [p.name for p in trimaps] == [f"{i:06d}.png" for i in range(sc.frames)]
    for k in KEYS:
        np.testing.assert_array_equal(_read(cli_out / "masks" / f"{k:06d}.png"), sc.mask(k))
    for p in trimaps:
        assert set(np.unique(_read(p))) <= {0, 128, 255}
    rep = json.loads((cli_out / "propagate.json").read_text())
    assert rep["propagator"] == "sam2" and rep["input_size"] == 128
    # segment 0-3: 2 keyframe calls + 2 frames, each way; after keyframe 3: 1 keyframe call + 2 frames
    assert rep["model_calls"] == 2 * (2 + 2) + 1 + 2
    assert rep["confidence"][0] == 1.0 and rep["confidence"][3] == 1.0
    assert all(0.0 <= c <= 1.0 for c in rep["confidence"])
    assert all(s not in KEYS for s in rep["suggested_keyframes"])


def test_chunks_equal_the_whole_run(cli_out, small, sam2_dir, chunk_1_2):
    """A chunk's propagator (what a farm chunk runs) gives the whole run's trimaps exactly: seams are invisible."""
    for rng in ((4, 5), (1, 2)):
        p = _prop(small, sam2_dir, frame_range=rng) if rng == (4, 5) else chunk_1_2
        assert (p.lo, p.hi) == ((3, 5) if rng == (4, 5) else (0, 3))
        for i in range(rng[0], rng[1] + 1):
            tri, mask, _ = p.result(i)
            np.testing.assert_array_equal(
                tri, _read(cli_out / "trimaps" / f"{i:06d}.png"), err_msg=f"frame {i}"
            )
            np.testing.assert_array_equal(
                mask, _read(cli_out / "masks" / f"{i:06d}.png"), err_msg=f"frame {i}"
            )


def test_later_keyframe_changes_frames_before_it(small, sam2_dir, tmp_path, chunk_1_2):
    """Both directions are used: adding keyframe 3 changes frames 1 and 2 (backward pass + blend)."""
    sc, clip, _masks = small
    only_first = write_masks(tmp_path / "k0", sc, [0])
    c = open_clip(str(clip))
    src = WeightsSource("dir", str(sam2_dir), str(sam2_dir))
    cfg = PropagateConfig(propagator="sam2", propagator_model=str(sam2_dir))
    fwd = Sam2Propagator(c, load_keyframes(str(only_first), c.info), cfg, (0, 2), source=src)
    fwd.prepare()
    both = chunk_1_2
    assert fwd.model_calls == 1 + 2 and both.model_calls == 2 * (2 + 2)
    for i in (1, 2):
        p_fwd, _ = fwd.work_result(i)
        p_both, _ = both.work_result(i)
        assert np.abs(p_fwd.astype(int) - p_both.astype(int)).max() > 0, f"frame {i} ignored keyframe 3"


def test_blend_follows_nearer_and_surer_direction():
    a = np.full((4, 4), 255, np.uint8)  # forward: sure foreground
    b = np.zeros((4, 4), np.uint8)  # backward: sure background
    (p, _pf, _pb, u), _ = blend_directions((a, 1.0, 1), (b, 1.0, 9))  # one frame after A, nine before B
    assert np.allclose(p, 0.9) and np.allclose(u, 1.0)  # the nearer keyframe wins 9:1; disagreement widens
    (p, *_), _ = blend_directions((a, 1.0, 9), (b, 1.0, 1))
    assert np.allclose(p, 0.1)
    unsure = np.full((4, 4), 128, np.uint8)
    (p, *_), _ = blend_directions(
        (unsure, 1.0, 1), (b, 1.0, 9)
    )  # the nearer direction is unsure: the other decides
    assert p.max() < 0.35
    (p, _pf, pb, u), pres = blend_directions(
        (a, 0.8, 10), None
    )  # one direction: itself, band widening with distance
    assert (
        pb is None
        and np.allclose(p, 1.0)
        and np.allclose(u, 1 - 0.98**10)
        and pres == pytest.approx(0.8 * 0.98**10)
    )


def test_band_from_uncertain_logits_and_disagreement():
    p = np.zeros((40, 60), np.float32)
    p[:, 30:] = 1.0  # a sharp, sure edge at x = 30 that both passes agree on
    unk, near = sam_unknown(p, p, p, np.zeros_like(p), r_min=2, r_max=8, sure=0.9)
    cols = np.where(unk.any(0))[0]
    assert cols.min() >= 26 and cols.max() <= 33  # the edge band only, about r_min either side
    assert near[:, 23:37].all() and not near[:, :20].any()
    soft = p.copy()
    soft[:, 5:8] = 0.5  # uncertain logits far from the edge (a thin part) are unknown too
    unk_soft, _ = sam_unknown(soft, soft, None, np.zeros_like(p), 2, 8, 0.9)
    assert unk_soft[:, 5:8].all() and not unk_soft[:, 12:20].any()
    unk_wide, _ = sam_unknown(p, p, p, np.ones_like(p), 2, 8, 0.9)  # the passes disagree: up to r_max
    cols = np.where(unk_wide.any(0))[0]
    assert cols.min() <= 23 and cols.max() >= 36
    other = 1.0 - p  # the other pass is sure of the opposite label near the edge: unknown there
    unk_dis, _ = sam_unknown(p, p, other, np.zeros_like(p), 2, 8, 0.9)
    assert unk_dis[:, 23:37].all()


@pytest.mark.slow
def test_memory_is_flat_in_clip_length(tmp_path, sam2_dir):
    """A 15-frame run holds no more in its session than a 5-frame one, and keeps no full-size frames."""
    sc = Scene(width=96, height=64, frames=15, speed=1.0)
    clip = write_clip(tmp_path / "long.mp4", sc)
    masks = write_masks(tmp_path / "k", sc, [0])
    c = open_clip(str(clip))
    kf = load_keyframes(str(masks), c.info)
    src = WeightsSource("dir", str(sam2_dir), str(sam2_dir))
    cfg = PropagateConfig(propagator="sam2", propagator_model=str(sam2_dir))
    runs = []
    for rng in ((0, 4), (0, 14)):
        p = Sam2Propagator(c, kf, cfg, rng, source=src)
        p.prepare()
        runs.append(p.summary())
    short, long = runs
    assert short["model_calls"] == 5 and long["model_calls"] == 15
    assert (
        long["peak_session_frames"] == short["peak_session_frames"] == 4
    )  # the model's window, not the clip
    assert long["peak_session_bytes"] == short["peak_session_bytes"] > 0
    assert long["compact_bytes"] < 15 * 96 * 64 // 2  # per-frame results are compressed 8-bit maps


def test_missing_model_exits_5_naming_it(tmp_path, small, monkeypatch, capsys):
    _sc, clip, masks = small
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    out = tmp_path / "out"
    rc = cli_main(["propagate", str(clip), "--masks", str(masks), "--out", str(out), "--propagator", "sam2"])
    err = capsys.readouterr().err
    assert rc == 5
    assert (
        err.count("\n") == 1
        and "facebook/sam2.1-hiera-tiny" in err
        and "hf download facebook/sam2.1-hiera-tiny" in err
    )
    assert not out.exists()  # nothing written before the model was settled


def test_wrong_model_folder_exits_5(tmp_path, small, capsys):
    _sc, clip, masks = small
    bad = tmp_path / "not-sam2"
    bad.mkdir()
    (bad / "config.json").write_text(json.dumps({"model_type": "vitmatte"}))
    (bad / "model.safetensors").write_bytes(b"")
    args = ["propagate", str(clip), "--masks", str(masks), "--out", str(tmp_path / "o"), "--quiet"]
    rc = cli_main([*args, "--propagator", "sam2", "--propagator-model", str(bad)])
    assert rc == 5 and "'vitmatte' model, not SAM 2" in capsys.readouterr().err


def test_auto_falls_back_to_flow_with_one_warning(tmp_path, small, monkeypatch, capsys):
    _sc, clip, masks = small
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    cfg = tmp_path / "c.toml"
    cfg.write_text('[propagate]\npropagator = "auto"\n')
    out = tmp_path / "out"
    rc = cli_main(
        ["propagate", str(clip), "--masks", str(masks), "--out", str(out), "--config", str(cfg), "--quiet"]
    )
    err = capsys.readouterr().err
    assert rc == 0
    warnings = [ln for ln in err.splitlines() if "warning" in ln]
    assert (
        len(warnings) == 1 and "using flow propagation" in warnings[0] and "sam2.1-hiera-tiny" in warnings[0]
    )
    assert "propagator" not in json.loads((out / "propagate.json").read_text())  # the flow report


def test_auto_picks_sam2_when_weights_are_found(small, sam2_dir):
    _sc, clip, masks = small
    c = open_clip(str(clip))
    cfg = PropagateConfig(propagator="auto", propagator_model=str(sam2_dir))
    warned: list[str] = []
    p = make_propagator(
        c, load_keyframes(str(masks), c.info), cfg, on_warning=warned.append, probe_timeout_s=0
    )
    assert isinstance(p, Sam2Propagator) and warned == []


@pytest.mark.slow
def test_run_cli_with_sam2_and_classic_engine(tmp_path, small, sam2_dir):
    sc, clip, masks = small
    out, report = tmp_path / "out.mov", tmp_path / "report.json"
    r = subprocess.run(
        [
            *(
                sys.executable,
                "-m",
                "vmatte",
                "run",
                clip,
                "--masks",
                masks,
                "-o",
                out,
                "--engine",
                "classic",
            ),
            *(
                "--propagator",
                "sam2",
                "--propagator-model",
                sam2_dir,
                "--report",
                report,
                "--progress",
                "none",
            ),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    rep = json.loads(report.read_text())
    assert rep["frames_written"] == sc.frames and out.is_file()
    assert rep["propagation"]["propagator"] == "sam2" and rep["propagation"]["model_calls"] == 11


def test_preprocessing_matches_the_processor(small):
    """Plain-torch resize + normalise equals Sam2VideoProcessor's (needs torchvision, which vmatte does not)."""
    try:
        import torchvision  # noqa: F401
        from transformers import Sam2VideoProcessor
        from transformers.models.sam2.image_processing_sam2 import Sam2ImageProcessor
        from transformers.models.sam2_video.video_processing_sam2_video import Sam2VideoVideoProcessor
    except Exception as exc:  # torchvision absent, or a CUDA build beside a CPU torch
        pytest.skip(f"the SAM 2 processor needs a working torchvision ({type(exc).__name__})")
    import torch

    _sc, clip, _masks = small
    size = {"height": 128, "width": 128}
    proc = Sam2VideoProcessor(Sam2ImageProcessor(size=size), Sam2VideoVideoProcessor(size=size))
    c = open_clip(str(clip))
    frame = next(iter(c.frames(1, 1)))
    p = Sam2Propagator.__new__(Sam2Propagator)  # only the tensor helpers
    p.input_size, p.dtype = 128, torch.float32
    p._norm = (
        torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1),
        torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1),
    )
    ours = p._normalize(p._pixels(frame))
    theirs = proc(images=frame.rgb_u8(), return_tensors="pt").pixel_values[0]
    assert torch.allclose(ours, theirs, atol=1.5 / 255 / 0.224)  # at most one uint8 rounding step apart


@pytest.mark.weights
@pytest.mark.skipif(
    not os.environ.get("VMATTE_SAM2_WEIGHTS"), reason="set VMATTE_SAM2_WEIGHTS to a SAM 2 folder"
)
def test_real_sam2_tracks_the_synthetic_subject(tmp_path):
    """Real checkpoints: propagated masks of an easy moving subject overlap the truth (IoU > 0.8)."""
    sc = Scene(width=320, height=192, frames=12, speed=2.5)
    clip = write_clip(tmp_path / "clip.mp4", sc)
    masks = write_masks(tmp_path / "k", sc, [0, 11])
    out = tmp_path / "out"
    model = os.environ["VMATTE_SAM2_WEIGHTS"]
    rc = cli_main(
        [
            *("propagate", str(clip), "--masks", str(masks), "--out", str(out)),
            *("--propagator", "sam2", "--propagator-model", model, "--quiet"),
        ]
    )
    assert rc == 0
    ious = []
    for t in range(1, 11):
        m = _read(out / "masks" / f"{t:06d}.png") > 0
        g = sc.mask(t) > 0
        ious.append((m & g).sum() / max(1, (m | g).sum()))
    assert np.mean(ious) > 0.8, ious
