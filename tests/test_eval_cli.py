"""``vmatte eval`` end to end on small PNG sequences and a video, and its one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from vmatte.cli import main as cli
from vmatte.evaluate import metrics as M
from vmatte.testing import Scene

SCENE = Scene(width=64, height=48, frames=5, seed=3)


def write_seq(folder: Path, alphas, name="{:04d}.png") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, a in enumerate(alphas):
        cv2.imwrite(str(folder / name.format(i)), np.clip(a * 255 + 0.5, 0, 255).astype(np.uint8))
    return folder


def quantise(a: np.ndarray) -> np.ndarray:
    return np.clip(a * 255 + 0.5, 0, 255).astype(np.uint8).astype(np.float32) / 255


@pytest.fixture(scope="module")
def seqs(tmp_path_factory):
    d = tmp_path_factory.mktemp("eval")
    gts = [SCENE.alpha(t) for t in range(SCENE.frames)]
    rng = np.random.default_rng(0)
    preds = [np.clip(g + rng.normal(0, 0.05, g.shape) * ((g > 0) & (g < 1)), 0, 1) for g in gts]
    tris = []
    for g in gts:
        t = np.full(g.shape, 128, np.uint8)
        t[g == 0] = 0
        t[g == 1] = 255
        tris.append(t)
    gt_dir = write_seq(d / "gt", gts)
    pred_dir = write_seq(d / "pred", preds)
    tri_dir = d / "tri"
    tri_dir.mkdir()
    for i, t in enumerate(tris):
        cv2.imwrite(str(tri_dir / f"{i:04d}.png"), t)
    return d, gt_dir, pred_dir, tri_dir, [quantise(g) for g in gts], [quantise(p) for p in preds], tris


def test_eval_sequences_table_json_plot(seqs, capsys):
    d, gt_dir, pred_dir, tri_dir, gts, preds, tris = seqs
    out_json, out_png = d / "r.json", d / "r.png"
    rc = cli(
        [
            "eval",
            str(pred_dir),
            str(gt_dir),
            "--trimaps",
            str(tri_dir),
            "--json",
            str(out_json),
            "--plot",
            str(out_png),
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    assert "dtSSD" in text and "MESSDdt" in text and "/ 1000" in text and "x 100" in text
    r = json.loads(out_json.read_text())
    assert r["frames"] == 5 and r["size"] == [64, 48] and len(r["per_frame"]) == 5
    # per-frame values equal the metric functions on the decoded frames
    for i, row in enumerate(r["per_frame"]):
        region = tris[i] == 128
        assert row["SAD"] == pytest.approx(M.sad(preds[i], gts[i]), rel=1e-6)
        assert row["MSE_unknown"] == pytest.approx(M.mse(preds[i], gts[i], region), rel=1e-6)
        assert row["Grad"] == pytest.approx(M.grad(preds[i], gts[i]), rel=1e-5)
        assert row["Conn_unknown"] == pytest.approx(M.conn(preds[i], gts[i], region), rel=1e-6)
        if i == 0:
            assert row["dtSSD"] is None
        else:
            both = region | (tris[i - 1] == 128)
            assert row["dtSSD"] == pytest.approx(
                M.dtssd(preds[i], preds[i - 1], gts[i], gts[i - 1]), rel=1e-6
            )
            assert row["dtSSD_unknown"] == pytest.approx(
                M.dtssd(preds[i], preds[i - 1], gts[i], gts[i - 1], both), rel=1e-6
            )
            assert row["MESSDdt"] > 0
    assert r["clip"]["dtSSD"] == pytest.approx(np.mean([x["dtSSD"] for x in r["per_frame"][1:]]))
    assert r["clip"]["SAD"] > 0 and r["clip"]["SAD_unknown"] <= r["clip"]["SAD"] + 1e-12
    img = cv2.imread(str(out_png))
    assert img is not None and img.shape[1] == 960 and (img < 250).any()


def test_eval_identical_is_zero(seqs):
    from vmatte.evaluate.score import evaluate

    _, gt_dir, *_ = seqs
    r = evaluate(gt_dir, gt_dir)
    assert all(v == 0.0 for v in r["clip"].values() if v is not None)


def test_eval_video_against_sequence(seqs, tmp_path):
    av = pytest.importorskip("av")
    _, gt_dir, pred_dir, _, _, preds, _ = seqs
    video = tmp_path / "pred.mov"
    with av.open(str(video), "w") as out:  # PNG-in-MOV with alpha: lossless, alpha read back exactly
        s = out.add_stream("png", rate=24)
        s.width, s.height, s.pix_fmt = 64, 48, "rgba"
        for p in preds:
            rgba = np.zeros((48, 64, 4), np.uint8)
            rgba[..., :3] = 90  # colour must not leak into the score: alpha is read from the alpha channel
            rgba[..., 3] = np.clip(p * 255 + 0.5, 0, 255).astype(np.uint8)
            for pkt in s.encode(av.VideoFrame.from_ndarray(rgba, format="rgba")):
                out.mux(pkt)
        for pkt in s.encode():
            out.mux(pkt)
    from vmatte.evaluate.score import evaluate

    a = evaluate(video, gt_dir)
    b = evaluate(pred_dir, gt_dir)
    for k in ("SAD", "MSE", "Grad", "Conn", "dtSSD", "MESSDdt"):
        assert a["clip"][k] == pytest.approx(b["clip"][k], rel=1e-6), k


def test_eval_frame_count_and_size_mismatch_are_one_line_errors(seqs, tmp_path, capsys):
    _, gt_dir, pred_dir, *_ = seqs
    short = write_seq(tmp_path / "short", [SCENE.alpha(t) for t in range(3)])
    assert cli(["eval", str(short), str(gt_dir)]) == 3
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(gt_dir) in err and "more frames" in err
    big = write_seq(tmp_path / "big", [np.zeros((50, 64), np.float32)] * 5)
    assert cli(["eval", str(big), str(gt_dir)]) == 3
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(big) in err and "64x50" in err
    assert cli(["eval", str(tmp_path / "missing"), str(gt_dir)]) == 3
    assert cli(["eval", str(pred_dir), str(gt_dir), "--plot", str(tmp_path / "x.jpg")]) == 2
