"""scripts/bench_smooth_e2e.py's band statistics: coverage by pixel count and by soft mass, and the split of the
matte's SAD into error the band forced, wrong definite labels and error inside the band."""

from __future__ import annotations

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
