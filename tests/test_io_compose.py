"""Composites (colour, image, clip picked by timestamp) and foreground decontamination."""

from __future__ import annotations

from fractions import Fraction

import cv2
import numpy as np
import pytest
from io_helpers import H, W, tiny_scene, with_alpha, write_all, write_vfr_clip

from vmatte.errors import ConfigError
from vmatte.frame import Frame
from vmatte.io.compose import Background, estimate_foreground, needs_foreground, parse_color, soft_band_box
from vmatte.io.config import OutputConfig
from vmatte.io.decode import open_clip
from vmatte.io.encode import open_writer
from vmatte.io.readback import iter_rgba


def _frames(n=3, pts_ms=(0, 40, 80)):
    """Frames: left half opaque red, right half transparent, a soft column between; pts in ms."""
    alpha = np.zeros((H, W), np.float32)
    alpha[:, : W // 2] = 1.0
    alpha[:, W // 2] = 0.5
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[..., 0] = 200
    return [
        Frame(index=i, pts=pts_ms[i], time_base=Fraction(1, 1000), rgb=rgb, alpha=alpha) for i in range(n)
    ]


class _Info:
    """Just what writers read from ClipInfo (no audio, 8-bit)."""

    def __init__(self, path):
        from vmatte.io.decode import ClipInfo

        self.info = ClipInfo(
            path=str(path),
            kind="video",
            width=W,
            height=H,
            frame_count=3,
            time_base=Fraction(1, 1000),
            rate=Fraction(25),
        )


def test_needs_foreground_truth_table():
    assert needs_foreground(OutputConfig())
    assert needs_foreground(OutputConfig(content="composite"))
    assert not needs_foreground(OutputConfig(content="alpha"))
    assert not needs_foreground(OutputConfig(decontaminate=False))


def test_parse_color():
    assert parse_color("#00ff00") == (0.0, 1.0, 0.0)
    assert parse_color("#0f0") == (0.0, 1.0, 0.0)
    assert parse_color("0,255,0") == (0.0, 1.0, 0.0)
    assert parse_color("0.0,0.5,1.0") == (0.0, 0.5, 1.0)
    assert parse_color("green") == pytest.approx((0, 177 / 255, 64 / 255))
    assert parse_color("not-a-colour.png") is None
    with pytest.raises(ConfigError, match="not a colour and no such image or clip"):
        Background("/no/such/bg.png")


@pytest.mark.parametrize("bg", ["#0000ff", "image"])
def test_composite_over_colour_and_image(tmp_path, bg):
    frames = _frames()
    if bg == "image":
        img = np.zeros((H * 2, W * 2, 3), np.uint8)
        img[..., 2] = 255  # blue, twice the frame size: scaled down to cover
        cv2.imwrite(str(tmp_path / "bg.png"), img[..., ::-1])
        bg = str(tmp_path / "bg.png")
    cfg = OutputConfig(
        path=str(tmp_path / "c.%04d.png"),
        format="png",
        content="composite",
        background=bg,
        decontaminate=False,
    )
    path = write_all(open_writer(cfg, _Info(tmp_path / "in.mp4").info), frames)
    for _, _, rgba in iter_rgba(path):
        assert np.allclose(rgba[:, 0, :3], [200 / 255, 0, 0], atol=1 / 255)  # opaque: foreground
        assert np.allclose(rgba[:, -1, :3], [0, 0, 1], atol=1 / 255)  # transparent: background
        assert np.allclose(rgba[:, W // 2, :3], [100 / 255, 0, 0.5], atol=1 / 255)  # 50 % mix
        assert np.all(rgba[..., 3] == 1.0)


def test_composite_over_clip_picks_background_by_time(tmp_path):
    """Background clip frames at 0, 30, 70 ms in three colours; our frames at 0, 40, 80 ms must get the
    background frame on screen at that moment: colours 0, 1, 2 (not 0, 1, 1 by index or rounded fps)."""
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    scene = tiny_scene(3)
    rgb16 = [np.tile(np.array(c, np.uint16) * 257, (H, W, 1)) for c in colours]
    bg_path = write_vfr_clip(
        tmp_path / "bg.mkv", scene, [0, 30, 70], codec="ffv1", pix_fmt="bgr0", rgb16=rgb16
    )
    frames = _frames()
    cfg = OutputConfig(
        path=str(tmp_path / "c.mkv"),
        format="ffv1",
        content="composite",
        background=str(bg_path),
        decontaminate=False,
    )
    path = write_all(open_writer(cfg, _Info(tmp_path / "in.mp4").info), frames)
    got = [rgba[0, -1, :3] for _, _, rgba in iter_rgba(path)]
    for g, c in zip(got, colours):
        assert np.allclose(g, np.array(c) / 255, atol=1 / 255), (got, colours)


def test_decontamination_removes_background_fringe():
    """I = aF + (1-a)B with a known, smooth F and a saturated B: the estimate of F in the soft band must be
    much closer to F than the observed I is (which carries B: the fringe)."""
    rng = np.random.default_rng(0)
    h, w = 48, 64
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    alpha = np.clip((40 - np.hypot(xx - 20, yy - 24)) / 12, 0, 1).astype(np.float32)
    fg = np.stack([0.8 + 0.05 * np.sin(xx / 9), 0.6 + 0.05 * np.cos(yy / 7), 0.3 + 0 * xx], -1).astype(
        np.float32
    )
    bg = np.zeros((h, w, 3), np.float32)
    bg[..., 1] = 0.9  # green screen
    bg += rng.normal(0, 0.01, bg.shape).astype(np.float32)
    obs = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
    est = estimate_foreground(obs.astype(np.float32), alpha)
    assert est.dtype == np.float32 and est.shape == obs.shape
    band = (alpha > 0.05) & (alpha < 0.95)
    err_obs = np.abs(obs - fg)[band].mean()
    err_est = np.abs(est - fg)[band].mean()
    assert err_est < 0.35 * err_obs, (err_est, err_obs)
    # outside the band's box nothing changes
    y0, y1, x0, x1 = soft_band_box(alpha)
    outside = np.ones((h, w), bool)
    outside[y0:y1, x0:x1] = False
    assert np.array_equal(est[outside], obs[outside])


def test_rgba_writer_uses_decontaminated_colour(tmp_path):
    """Decontamination on: the RGBA output's edge colour is the estimate; off: the observed colour."""
    scene = tiny_scene(1)
    clip = open_clip(write_vfr_clip(tmp_path / "s.mp4", scene, [0]))
    frames = with_alpha(clip.frames(), scene)
    fg = estimate_foreground(frames[0].rgb_float(), frames[0].alpha)
    out = {}
    for deco in (True, False):
        cfg = OutputConfig(
            path=str(tmp_path / f"d{int(deco)}.%04d.png"), format="png", decontaminate=deco, bit_depth=16
        )
        path = write_all(open_writer(cfg, clip.info), [frames[0].replace(foreground=fg)])
        out[deco] = next(iter_rgba(path))[2][..., :3]
    assert np.abs(out[True] - fg).max() <= 1e-4
    assert np.abs(out[False] - frames[0].rgb_float()).max() <= 1e-4
    assert np.abs(out[True] - out[False]).max() > 0.01
