"""scripts/bench_smooth_e2e.py's band statistics: coverage by pixel count and by soft mass, and the split of the
matte's SAD into error the band forced, wrong definite labels and error inside the band."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from script_helpers import load_script


@pytest.fixture(scope="module")
def be():
    return load_script("bench_smooth_e2e")


def _write(work: Path, sub: str, name: str, img: np.ndarray) -> None:
    (work / sub).mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(work / sub / name), img)


def test_band_stats_splits_the_error_by_where_it_lies(tmp_path, be):
    """One 1x8 frame (not a keyframe): GT alpha 0, 0, 128, 3, 255, 255, 0, 0; vmatte's band holds pixel 2 only.
    Pixel 3 (α = 3/255) is soft but labelled background: forced error 3/255. Pixel 6 is GT background labelled
    foreground: a wrong label, error 1. Pixel 2 is matted 0.5 off. Pixels 0, 1, 4, 5, 7 are right."""
    name = "00001.png"
    gt = np.array([[0, 0, 128, 3, 255, 255, 0, 0]], np.uint8)
    tri = np.array([[0, 0, 128, 0, 255, 255, 255, 0]], np.uint8)
    out = np.array([[0, 0, 255, 0, 255, 255, 255, 0]], np.uint8)
    _write(tmp_path, "gt", name, gt)
    _write(tmp_path, "vm_tri", name, tri)
    _write(tmp_path, "oracle_tri", name, np.array([[0, 128, 128, 128, 128, 255, 0, 0]], np.uint8))
    _write(tmp_path, "out_smooth", name, out)
    s = be.band_stats(tmp_path)
    assert s["coverage"] == pytest.approx(0.5)  # 1 of the 2 soft pixels
    a2, a3 = 128 / 255, 3 / 255
    # soft mass: min(α, 1 - α) of the held pixel over both
    assert s["soft_mass_coverage"] == pytest.approx(min(a2, 1 - a2) / (min(a2, 1 - a2) + a3), rel=1e-5)
    err_band, err_forced, err_wrong = 1 - a2, a3, 1.0
    total = err_band + err_forced + err_wrong
    split = s["sad_split"]
    assert split["forced"] == pytest.approx(err_forced / total, rel=1e-5)
    assert split["wrong_label"] == pytest.approx(err_wrong / total, rel=1e-5)
    assert split["band"] == pytest.approx(err_band / total, rel=1e-5)
    assert s["band_area_vs_oracle"] == pytest.approx(1 / 4)


def test_real_clip_keeps_keyframes_sparse_and_the_edge_soft(tmp_path, be, monkeypatch):
    """A 12-frame stand-in for a DAVIS clip (a square moving 3 px a frame): masks are written on frames 0 and 10
    only, the ground truth is the binary mask scaled like the frames (an area average, so its edge is fractional
    where the square's edge falls between pixels), and a second build with the same options reuses the files."""
    jpg, ann = tmp_path / "JPEGImages" / "480p" / "sq", tmp_path / "Annotations" / "480p" / "sq"
    jpg.mkdir(parents=True)
    ann.mkdir(parents=True)
    for t in range(12):
        img = np.full((48, 64, 3), 40, np.uint8)
        mask = np.zeros((48, 64), np.uint8)
        mask[10:31, 5 + 3 * t : 26 + 3 * t] = 255
        img[mask > 0] = 200
        assert cv2.imwrite(str(jpg / f"{t:05d}.jpg"), img)
        assert cv2.imwrite(str(ann / f"{t:05d}.png"), mask)
    monkeypatch.setattr(be.B, "DAVIS", tmp_path / "JPEGImages" / "480p")
    work = tmp_path / "work"
    info = be.build_real_clip("sq", 12, 0.5, work)
    assert info == {"frames": 12}
    assert sorted(p.name for p in (work / "masks").iterdir()) == ["000000.png", "000010.png"]
    assert len(list((work / "in").iterdir())) == len(list((work / "gt").iterdir())) == 12
    gt = cv2.imread(str(work / "gt" / "00001.png"), cv2.IMREAD_GRAYSCALE)
    assert gt.shape == (24, 32)
    # rows 10..30 at half size: rows 5..14 full, row 15 half covered (source rows 30 in, 31 out)
    assert gt[10, 10] == 255 and gt[2, 10] == 0 and 0 < gt[15, 10] < 255
    key = cv2.imread(str(work / "masks" / "000010.png"), cv2.IMREAD_GRAYSCALE)
    assert set(np.unique(key)) <= {0, 255}  # the keyframe is binary, as an artist draws it
    stamp = (work / "stamp").stat().st_mtime_ns
    be.build_real_clip("sq", 12, 0.5, work)
    assert (work / "stamp").stat().st_mtime_ns == stamp


def test_set_reaches_the_smoother_the_runner_builds(be):
    """--set changes the constants of every smoother the chain builds (the runner passes none), and only inside
    the run; a key the smoother does not have is refused before anything runs."""
    from vmatte.config import SmoothConfig
    from vmatte.temporal.smooth import TemporalSmoother

    overrides = be.parse_sets(["sigma_alpha=0.3", "combine=median", "snap_saturated=false"])
    assert overrides == {"sigma_alpha": 0.3, "combine": "median", "snap_saturated": False}
    with be.smoother_tuning(overrides):
        sm = TemporalSmoother(SmoothConfig(), device=None)
        assert (sm.tuning.sigma_alpha, sm.tuning.combine, sm.tuning.snap_saturated) == (0.3, "median", False)
    assert TemporalSmoother(SmoothConfig()).tuning.sigma_alpha != 0.3
    with pytest.raises(SystemExit, match="sigma_bogus"):
        be.parse_sets(["sigma_bogus=1"])


def _fake_runs(monkeypatch, part) -> list:
    """vmatte.run replaced by a stub that records ``part(config)`` of each run it is given (the list returned)
    and reports one frame written."""
    import vmatte

    seen: list = []

    class Report:
        frames_written = 1
        times = type("Times", (), {"engine": 0.0, "smooth": 0.0})
        smoothing = None

    monkeypatch.setattr(vmatte, "run", lambda cfg: seen.append(part(cfg)) or Report())
    return seen


def test_smooth_option_changes_the_window_of_every_run(be, monkeypatch, tmp_path):
    """--smooth KEY=VALUE sets [smooth] options (the window) for the smoothing-on run; smoothing-off stays off;
    a key SmoothConfig does not have is refused before anything runs."""
    from vmatte.config import SmoothConfig

    assert be.parse_sets(["lookahead=8", "strength=0.5"], SmoothConfig, "--smooth") == {
        "lookahead": 8,
        "strength": 0.5,
    }
    with pytest.raises(SystemExit, match=re.escape("--smooth 'sigma_alpha=0.3'")):
        be.parse_sets(["sigma_alpha=0.3"], SmoothConfig, "--smooth")
    seen = _fake_runs(monkeypatch, lambda cfg: cfg.smooth)
    monkeypatch.setattr(be, "SMOOTH_SETS", {"lookahead": 8, "lookbehind": 2})
    be.run_chain(tmp_path, smooth=True)
    be.run_chain(tmp_path, smooth=False)
    assert (seen[0].enabled, seen[0].lookahead, seen[0].lookbehind) == (True, 8, 2)
    assert (seen[1].enabled, seen[1].lookahead) == (False, 8)


def test_propagate_option_reaches_every_run(be, monkeypatch, tmp_path):
    """--propagate KEY=VALUE sets [propagate] options (e.g. the keyframe hold) for both runs; a key
    PropagateConfig does not have is refused before anything runs."""
    from vmatte.config import PropagateConfig

    assert be.parse_sets(["hold_keyframes=false"], PropagateConfig, "--propagate") == {
        "hold_keyframes": False
    }
    with pytest.raises(SystemExit, match=re.escape("--propagate 'lookahead=8'")):
        be.parse_sets(["lookahead=8"], PropagateConfig, "--propagate")
    seen = _fake_runs(monkeypatch, lambda cfg: cfg.propagate)
    monkeypatch.setattr(be, "PROPAGATE_SETS", {"hold_keyframes": False})
    be.run_chain(tmp_path, smooth=True)
    be.run_chain(tmp_path, smooth=False)
    assert [p.hold_keyframes for p in seen] == [False, False]
    assert PropagateConfig().hold_keyframes  # the default holds
