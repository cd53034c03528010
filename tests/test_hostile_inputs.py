"""Broken input clips: each one is processed correctly or refused with exit 3 and one line naming the file.

The catalogue (truncated, bit-rotted, empty, audio-only, fake, huge, odd, rotated, VFR, missing/duplicate pts,
deep and 4:4:4, corrupt frames, image sequences with gaps …) lives in ``tests/hostile.py``; every entry runs the
real CLI (in-process, with a fast FakeEngine replacing model loading) and checks the whole contract: exit code,
one ``vmatte: error:`` line, no traceback, input byte-identical, no partial output, no temporaries.
Inputs that can hang a process (a FIFO) run in a subprocess with a timeout.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import av
import cv2
import hostile as h
import numpy as np
import pytest

from vmatte.testing import write_masks

SUBPROCESS = {"fifo_named_mp4", "dev_zero"}  # may block a process forever: run them where a timeout can kill


def _masks(d: Path, size: tuple[int, int] | None, frames: tuple[int, ...]) -> Path:
    w, hgt = size or (h.W, h.H)
    return write_masks(d / "keys", h.scene(w, hgt, max(frames) + 1), list(frames))


def _read_output(path: Path) -> dict:
    """Frames of an RGBA output: pts (seconds), display size, alphas (float32)."""
    out: dict = {"t": [], "alpha": [], "size": None, "rotation": 0}
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        for f in c.decode(s):
            rgba = f.to_ndarray(format="rgba64le")
            out["t"].append(float(f.pts * s.time_base))
            out["alpha"].append(rgba[..., 3].astype(np.float32) / 65535.0)
            out["size"] = (f.width, f.height)
            out["rotation"] = getattr(f, "rotation", 0) or 0
    return out


def _input_times(path: Path) -> list[float]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return [float(f.pts * s.time_base) for f in c.decode(s) if f.pts is not None]


# Known bugs in modules this suite does not own, reported to their owners; strict, so the marker must go when fixed.
BUGS: dict[str, str] = {}


def _params(cases):
    return [
        pytest.param(
            c,
            id=c.name,
            marks=[pytest.mark.xfail(reason=BUGS[c.name], strict=True)] if c.name in BUGS else [],
        )
        for c in cases
    ]


@pytest.mark.parametrize("case", _params(h.CLIPS))
def test_hostile_clip(case: h.HostileClip, tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    clip = case.make(d)
    masks = _masks(tmp_path, case.mask_size, case.mask_frames)
    out = tmp_path / "out" / "matte.mov"
    report = tmp_path / "report.json"
    guarded = (
        {}
        if not Path(clip).exists() or not (Path(clip).is_file() or Path(clip).is_dir())
        else {Path(clip): h.sha(clip)}
    )
    guarded[masks] = h.sha(masks)
    argv = ["run", clip, "--masks", masks, "-o", out, "--report", report, "--progress", "none"]
    if case.config:
        cfg = tmp_path / "vmatte.toml"
        cfg.write_text(case.config)
        argv += ["--config", cfg]
    if case.name in SUBPROCESS:
        res = h.run_cli_subprocess(*argv, timeout=case.timeout)
    else:
        res = h.run_cli(*argv, engine={"batch_size": 2})

    assert res.code in case.exits, f"{case.name}: expected exit {case.exits} ({case.note}), got {res}"
    if res.code != 0:
        # the line names the culprit: the clip, or for a mask error the mask (folder)
        culprit = masks.name if res.code == 4 else (case.culprit or Path(clip).name)
        h.assert_one_error_line(res, case.exits, culprit, *case.mention)
        h.assert_nothing_left(out, before=guarded)
        if report.exists():
            rep = json.loads(report.read_text())
            assert rep["exit_code"] == res.code and rep["status"] == "error"
        return

    # processed: the output is complete, decodable, and the input untouched
    assert "Traceback" not in res.stderr, str(res)
    assert res.errors == [], str(res)
    for p, digest in guarded.items():
        assert h.sha(p) == digest, f"input {p} was modified"
    assert h.leftovers(out.parent) == []
    rep = json.loads(report.read_text())
    got = _read_output(out)
    assert len(got["alpha"]) == rep["frames_written"] > 0
    assert rep["status"] == "ok"
    CHECKS.get(case.name, lambda *a: None)(Path(clip), got, rep, res, masks)


# ---- per-input checks of a successful run --------------------------------------------------------------


def _same_times(clip: Path, got: dict, *_):
    want = _input_times(clip)
    assert len(got["t"]) == len(want)
    assert np.allclose(got["t"], want, atol=1e-3), f"output timing {got['t']} != input {want}"


def _one_frame(clip, got, rep, *_):
    assert len(got["alpha"]) == 1


def _odd(clip, got, *_):
    assert got["size"] == (97, 61)


def _increasing(clip, got, rep, res, *_):
    t = got["t"]
    assert all(b > a for a, b in itertools.pairwise(t)), f"output timestamps not strictly increasing: {t}"
    # every input frame is written, or the ones dropped are reported
    assert len(t) == h.N or rep["warnings"], f"{h.N - len(t)} frames dropped without a warning"


def _display(a: np.ndarray, rotation: int) -> np.ndarray:
    """Stored pixels → what a player shows (PyAV's rotation: degrees counter-clockwise)."""
    return np.ascontiguousarray(np.rot90(a, k=round(rotation / 90) % 4))


def _rotated(clip, got, rep, res, masks):
    # the output shows what the input shows: same display orientation, the matte on the object
    with av.open(str(clip)) as c:
        f = next(c.decode(video=0))
        in_rot, in_stored = f.rotation or 0, (f.width, f.height)
    want = _display(np.zeros(in_stored[::-1]), in_rot).shape
    shown = _display(got["alpha"][0], got["rotation"])
    assert shown.shape == want, f"output displays as {shown.shape[::-1]}, the input as {want[::-1]}"
    m0 = cv2.imread(str(masks / "000000.png"), cv2.IMREAD_GRAYSCALE) > 127
    if m0.shape != want:  # masks given in the stored orientation
        m0 = _display(m0, in_rot)
    a0 = shown
    iou = np.logical_and(a0 > 0.5, m0).sum() / max(1, np.logical_or(a0 > 0.5, m0).sum())
    assert iou > 0.8, f"matte of frame 0 does not line up with its mask (IoU {iou:.2f})"


def _corrupt_mid(clip, got, rep, res, *_):
    assert rep["corrupt_frames"] == [3, 5], (
        f"corrupt frames reported as {rep['corrupt_frames']}, they are 3 and 5"
    )
    warned = [w for w in res.lines if "warning" in w and "corrupt" in w]
    assert warned and "3" in warned[0] and "5" in warned[0], f"no warning naming frames 3 and 5: {res}"
    # the frames after a skipped one keep their own timestamps (numbering did not shift)
    want = [t / 24 for t in range(10) if t not in (3, 5)]
    assert np.allclose(got["t"], want, atol=1e-3), (
        f"timing after skipped frames shifted: {got['t']} != {want}"
    )


def _seq_gap(clip, got, rep, res, *_):
    assert any("4" in w and "5" in w for w in rep["warnings"]), (
        f"gap (frames 4-5) not reported: {rep['warnings']}"
    )


def _truncated(clip, got, rep, res, *_):
    # frames lost to the truncation are reported, not silently dropped
    if rep["frames_written"] < rep["frame_range"][1] - rep["frame_range"][0] + 1:
        assert rep["warnings"], "frames lost without a warning"


CHECKS = {
    "vfr_pts": _same_times,
    "bframes": _same_times,
    "one_frame": _one_frame,
    "odd_size_97x61_ffv1": _odd,
    "duplicate_pts_mkv": _increasing,
    "backwards_pts_mkv": _increasing,
    "no_pts_raw_h264": _increasing,
    "rotated_90_masks_as_stored": _rotated,
    "rotated_90_masks_as_displayed": _rotated,
    "corrupt_frames_mid_clip": _corrupt_mid,
    "sequence_with_gap": _seq_gap,
    "truncated_mp4_faststart": _truncated,
    "truncated_mkv": _truncated,
    "hevc_10bit_420": _same_times,
    "prores4444_with_alpha_10bit": _same_times,
}


def test_catalogue_is_big_enough():
    """The closing note counts these; keep the table honest (unique names, every kind from the issue)."""
    names = [c.name for c in h.CLIPS]
    assert len(names) == len(set(names))
    for word in (
        "truncated",
        "flipped",
        "zero_frames",
        "one_frame",
        "audio_only",
        "renamed",
        "huge",
        "odd",
        "rotated",
        "vfr",
        "pts",
        "10bit",
        "12bit",
        "444",
        "gap",
        "corrupt_frames",
    ):
        assert any(word in n for n in names), word


def test_corrupt_frames_reported_through_api(tmp_path):
    """The API reports skipped frames by clip number in the report (what a farm wrapper reads)."""
    import vmatte
    from vmatte.engine.base import FakeEngine
    from vmatte.io.config import OutputConfig

    clip = h.mjpeg_mkv(tmp_path / "bad.mkv", h.scene(frames=10), corrupt=(3, 5))
    masks = _masks(tmp_path, None, (0,))
    cfg = vmatte.RunConfig(
        input=str(clip), masks=str(masks), outputs=(OutputConfig(path=str(tmp_path / "o.mov")),)
    )
    rep = vmatte.run(cfg, engine=FakeEngine(batch_size=2))
    assert rep.corrupt_frames == [3, 5]
    assert rep.frames_written == 8


def test_huge_frame_is_never_allocated(tmp_path):
    """A clip that declares 16000x16000 fails before any frame is decoded: peak RSS stays far below one frame
    (16000*16000*3 bytes = 768 MB)."""
    import psutil

    clip = h.huge_mkv(tmp_path / "huge.mkv", 16000)
    masks = _masks(tmp_path, None, (0,))
    proc = psutil.Process()
    before = proc.memory_info().rss
    res = h.run_cli("run", clip, "--masks", masks, "-o", tmp_path / "o.mov", "--progress", "none", engine={})
    grew = proc.memory_info().rss - before
    h.assert_one_error_line(res, (3, 4), "huge.mkv")
    assert grew < 300 * 2**20, f"RSS grew {grew / 2**20:.0f} MB refusing a huge clip"


def test_time_base_survives_vfr(tmp_path):
    """VFR at the API level: each output pts equals the input pts in seconds (no rebuilt constant rate)."""
    import vmatte
    from vmatte.engine.base import FakeEngine
    from vmatte.io.config import OutputConfig

    ms = [0, 41, 42, 150, 151, 400, 1000, 1001]
    clip = h.vfr_mp4(tmp_path / "vfr.mp4", ms)
    masks = _masks(tmp_path, None, (0,))
    out = tmp_path / "o.mov"
    vmatte.run(
        vmatte.RunConfig(input=str(clip), masks=str(masks), outputs=(OutputConfig(path=str(out)),)),
        engine=FakeEngine(),
    )
    got = _read_output(out)["t"]
    assert np.allclose(got, [m / 1000 for m in ms], atol=1e-3), got
