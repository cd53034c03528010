"""Keyframe mask folders: names, kinds, and every way a user can get them wrong (one-line MaskError)."""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

from vmatte.errors import MaskError
from vmatte.io.decode import ClipInfo
from vmatte.io.masks import frame_number, load_keyframes
from vmatte.testing import Scene

W, H, N = 64, 48, 30


def info(w=W, h=H, n=N) -> ClipInfo:
    return ClipInfo(
        path="clip.mp4",
        kind="video",
        width=w,
        height=h,
        frame_count=n,
        time_base=Fraction(1, 24),
        rate=Fraction(24),
    )


def disc(value=255, bg=0, dtype=np.uint8) -> np.ndarray:
    img = np.full((H, W), bg, dtype)
    cv2.circle(img, (W // 2, H // 2), 12, int(value), -1)
    return img


def one_line_error(folder, *names, n=N) -> str:
    with pytest.raises(MaskError) as ei:
        load_keyframes(folder, info(n=n))
    msg = str(ei.value)
    assert "\n" not in msg
    assert ei.value.exit_code == 4
    for name in names:
        assert name in msg, msg
    return msg


@pytest.mark.parametrize(
    "name, expected",
    [
        ("000120.png", 120),
        ("frame_120.png", 120),
        ("mask.0120.png", 120),
        ("shot_v2.0120.png", 120),
        ("shot2_take3_0007.tif", 7),
        ("mask.png", None),
        ("final_mask.exr", None),
    ],
)
def test_frame_number_is_last_digit_group(name, expected):
    assert frame_number(name) == expected


def test_kinds_are_detected(tmp_path):
    d = tmp_path / "k"
    d.mkdir()
    scene = Scene(width=W, height=H, frames=8, speed=2.0)
    cv2.imwrite(str(d / "000000.png"), scene.mask(0))  # binary
    tri = disc()
    tri[(cv2.dilate(disc(), np.ones((5, 5))) > 0) & (disc() == 0)] = 128
    cv2.imwrite(str(d / "frame_1.png"), tri)  # trimap
    alpha = np.clip(scene.alpha(2) * 255 + 0.5, 0, 255).astype(np.uint8)
    cv2.imwrite(str(d / "mask.0002.png"), alpha)  # soft alpha
    a16 = np.clip(scene.alpha(3) * 65535 + 0.5, 0, 65535).astype(np.uint16)
    cv2.imwrite(str(d / "shot_v2.0003.png"), a16)  # 16-bit alpha
    cv2.imwrite(str(d / "000004.png"), disc(65535, dtype=np.uint16))  # 16-bit binary
    rgba = np.full((H, W, 4), 255, np.uint8)  # white colour planes: the mask is in the alpha channel
    rgba[:, :, 3] = disc()
    cv2.imwrite(str(d / "000005.png"), rgba)
    opaque = np.dstack([disc()] * 3 + [np.full((H, W), 255, np.uint8)])  # opaque alpha: colour planes count
    cv2.imwrite(str(d / "000006.png"), opaque)
    kf = load_keyframes(d, info())
    assert kf.indices == [0, 1, 2, 3, 4, 5, 6]
    kinds = {i: kf.kind(i) for i in kf.indices}
    assert kinds == {0: "binary", 1: "trimap", 2: "alpha", 3: "alpha", 4: "binary", 5: "binary", 6: "binary"}
    kind, arr = kf.get(1)
    assert kind == "trimap"
    assert arr.dtype == np.uint8 and set(np.unique(arr)) == {0, 128, 255}
    np.testing.assert_array_equal(arr, tri)
    _k, a = kf.get(3)
    assert a.dtype == np.float32 and abs(float(a.max()) - 1) < 1e-6
    np.testing.assert_allclose(a, scene.alpha(3), atol=1e-4)
    for i in (4, 5, 6):
        np.testing.assert_array_equal(kf.get(i)[1], disc())
    assert kf.items[3].bit_depth == 16


def test_palette_and_colour_masks(tmp_path):
    Image = pytest.importorskip(
        "PIL.Image"
    )  # Pillow is not a vmatte dependency; it only writes palette PNGs here

    d = tmp_path / "p"
    d.mkdir()
    idx = (disc() > 0).astype(np.uint8)
    im = Image.fromarray(idx, mode="P")
    im.putpalette([0, 0, 0, 128, 0, 0] + [0] * 762)  # DAVIS-style: index 1 is dark red (value 128!)
    im.save(d / "000010.png")
    # a palette whose entry 0 is not black: background must still be entry 0
    im2 = Image.fromarray(idx, mode="P")
    im2.putpalette([40, 200, 40, 255, 255, 0] + [0] * 762)
    im2.save(d / "000011.png")
    red = np.zeros((H, W, 3), np.uint8)
    red[disc() > 0] = (0, 0, 200)  # BGR red on black
    cv2.imwrite(str(d / "000012.png"), red)
    kf = load_keyframes(d, info())
    for i in (10, 11, 12):
        kind, arr = kf.get(i)
        assert kind == "binary", i
        np.testing.assert_array_equal(arr, disc())


def test_missing_and_empty_folders(tmp_path):
    one_line_error(tmp_path / "nope", "nope", "not found")
    f = tmp_path / "file.png"
    f.write_bytes(b"x")
    one_line_error(f, "file.png", "not a folder")
    (tmp_path / "empty").mkdir()
    one_line_error(tmp_path / "empty", "empty", "no mask images")


def test_non_image_files_are_ignored_with_a_warning(tmp_path):
    d = tmp_path / "m"
    d.mkdir()
    cv2.imwrite(str(d / "000003.png"), disc())
    (d / "notes.txt").write_text("shot notes")
    (d / ".DS_Store").write_bytes(b"\0")
    kf = load_keyframes(d, info())
    assert kf.indices == [3]
    assert len(kf.warnings) == 1 and "notes.txt" in kf.warnings[0]
    (d / "000003.png").unlink()
    one_line_error(d, "no mask images")  # only junk left


def test_name_without_number(tmp_path):
    cv2.imwrite(str(tmp_path / "mask.png"), disc())
    one_line_error(tmp_path, "mask.png", "no frame number")


def test_two_files_for_one_frame(tmp_path):
    cv2.imwrite(str(tmp_path / "000005.png"), disc())
    cv2.imwrite(str(tmp_path / "frame_5.png"), disc())
    one_line_error(tmp_path, "000005.png", "frame_5.png", "frame 5")


def test_frame_beyond_clip(tmp_path):
    cv2.imwrite(str(tmp_path / "000030.png"), disc())
    msg = one_line_error(tmp_path, "000030.png", "30 frames")
    assert "0-29" in msg


def test_size_mismatch_names_both_sizes_and_the_fix(tmp_path):
    cv2.imwrite(str(tmp_path / "000412.png"), np.zeros((40, 80), np.uint8) + 255)
    msg = one_line_error(tmp_path, "000412.png", n=500)
    assert msg.endswith("is 80x40 but the clip is 64x48: export masks at clip resolution")
    # the same for a format whose size is only known after decoding
    (tmp_path / "000412.png").unlink()
    cv2.imwrite(str(tmp_path / "000412.bmp"), np.zeros((40, 80), np.uint8) + 255)
    one_line_error(tmp_path, "000412.bmp", "80x40", n=500)


@pytest.mark.parametrize("kind, value", [("binary", 255), ("trimap", 128), ("alpha", 77)])
@pytest.mark.parametrize("ext", ["png", "bmp"])
def test_mask_of_the_picture_without_the_codecs_padding_rows(tmp_path, kind, value, ext):
    # a 64x40 picture stored as 64x48 (coded size, no crop signalled: MatAnyone's test-sample2.mp4 is 1920x1080
    # stored as 1920x1088): the mask drawn on the picture is read with background in the padding rows
    mask = np.zeros((40, W), np.uint8)
    mask[10:30, 20:40] = 255
    mask[0:10, 20:40] = value  # the second level makes it a trimap / alpha where it is not 255
    if kind == "binary":
        mask[0:10, 20:40] = 255
    cv2.imwrite(str(tmp_path / f"000003.{ext}"), mask)
    kf = load_keyframes(tmp_path, info())
    assert kf.kind(3) == kind
    got_kind, arr = kf.get(3)
    assert got_kind == kind
    assert arr.shape == (H, W)
    assert not arr[40:].any()  # background in every kind (0)
    assert (arr[10:30, 20:40] == (1.0 if kind == "alpha" else 255)).all()
    assert (kf.probability(3)[:40] > 0).sum() == (mask > 0).sum()
    assert any("extra 8 rows at the bottom" in w and "codec padding" in w for w in kf.warnings), kf.warnings


@pytest.mark.parametrize(
    "mask_wh, clip_wh",
    [
        ((64, 40), (64, 44)),  # the clip is not a coded size (44 is not a multiple of 8)
        ((64, 24), (64, 48)),  # too many rows missing for alignment
        ((64, 56), (64, 48)),  # mask larger than the clip
        ((56, 48), (64, 40)),  # one side short, the other long
    ],
)
def test_other_size_mismatches_stay_errors(tmp_path, mask_wh, clip_wh):
    cv2.imwrite(str(tmp_path / "000001.png"), np.full(mask_wh[::-1], 255, np.uint8))
    with pytest.raises(MaskError, match="export masks at clip resolution"):
        load_keyframes(tmp_path, info(*clip_wh))


def test_corrupt_file(tmp_path):
    (tmp_path / "000002.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    one_line_error(tmp_path, "000002.png", "cannot read")


def test_black_and_white_masks(tmp_path):
    cv2.imwrite(str(tmp_path / "000000.png"), disc())
    cv2.imwrite(str(tmp_path / "000004.png"), np.zeros((H, W), np.uint8))
    cv2.imwrite(str(tmp_path / "000008.png"), np.full((H, W), 255, np.uint8))
    kf = load_keyframes(tmp_path, info())
    assert kf.indices == [0, 4, 8]
    text = " ".join(kf.warnings)
    assert "000004.png" in text and "all black" in text
    assert "000008.png" in text and "all white" in text
    # every mask black: nothing to matte
    (tmp_path / "000000.png").unlink()
    (tmp_path / "000008.png").unlink()
    one_line_error(tmp_path, "every mask is all black")


def test_no_torch_import():
    code = (
        "import sys; import vmatte.io.masks, vmatte.propagate, vmatte.cli.propagate; "
        "from vmatte.cli import build_parser; build_parser(); "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])
