"""Every output preset, written from frames with known alpha and decoded back (VP9 alpha via libvpx).

Tolerances per codec (alpha / colour, in [0, 1] units):
- lossless 8-bit (qtrle, PNG-in-MOV, FFV1, PNG): exactly the 8-bit rounding of the true alpha; colour exact.
- 16-bit PNG: exactly the 16-bit rounding.
- ProRes 4444 (yuva444p10le): alpha within 10-bit rounding (1.5/1023); colour within 3/255 (RGB→YUV 10 bit).
- ProRes gray matte: the matte is the luma, DCT-coded (near-lossless): within 2/255, mean 1e-3.
- VP9 (lossy, yuva420p, crf 18): alpha max 0.15, mean 0.01; colour mean 0.03 where alpha > 0.5.
- EXR half: alpha within 1e-3; colour = linear(sRGB) within 2e-3 relative.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from io_helpers import q, stream_codecs, tiny_scene, video_times, with_alpha, write_all, write_vfr_clip

from vmatte.config import build_config
from vmatte.io.config import OutputConfig
from vmatte.io.decode import open_clip
from vmatte.io.encode import open_writer, resolve_output_path
from vmatte.io.readback import iter_alpha, iter_rgba, read_alpha_mode
from vmatte.io.writers.common import srgb_to_linear

PTS = [0, 40, 90, 130]  # ms: variable frame rate on purpose


@pytest.fixture(scope="module")
def scene():
    return tiny_scene(len(PTS))


@pytest.fixture(scope="module")
def src(tmp_path_factory, scene):
    """VFR H.264 with AAC audio, and its decoded frames carrying the scene's true alpha."""
    path = write_vfr_clip(tmp_path_factory.mktemp("src") / "shot.mp4", scene, PTS, audio=True)
    clip = open_clip(path)
    return clip.info, with_alpha(clip.frames(), scene)


def _alpha_tol(fmt: str, content: str, depth: int):
    """(max error, mean error) allowed for alpha read back from ``fmt``."""
    if fmt == "vp9":
        return 0.15, 0.01
    if fmt == "prores4444":
        # the matte rides in luma, which ProRes DCT-codes (near-lossless); the alpha plane is lossless
        return (2 / 255, 1e-3) if content == "alpha" else (1.5 / 1023, 1e-3)
    if fmt == "exr":
        return 1e-3, 1e-4
    return (0.5 / 65535 + 1e-6, 1e-6) if depth == 16 else (0.5 / 255 + 1e-6, 1e-6)


PRESETS = [
    "prores4444",
    "webm-alpha",
    "qtrle",
    "png-mov",
    "ffv1",
    "png-seq",
    "png16-seq",
    "exr-seq",
    "matte",
    "matte-png",
    "prores-plus-matte",
]


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_round_trip(preset, src, tmp_path):
    info, frames = src
    cfg = build_config(preset=preset, overrides={"input": info.path, "output": {"decontaminate": False}})
    for k, out in enumerate(cfg.outputs):
        spec_path = f"o{k}/shot.%04d" if out.format in ("png", "exr") else f"o{k}"
        ext = {
            "prores4444": ".mov",
            "vp9": ".webm",
            "qtrle": ".mov",
            "png-mov": ".mov",
            "ffv1": ".mkv",
            "png": ".png",
            "exr": ".exr",
        }[out.format]
        out = OutputConfig(**{**out.__dict__, "path": str(tmp_path / (spec_path + ext))})
        w = open_writer(out, info)
        path = write_all(w, frames)
        assert not list(path.parent.glob(".*vmatte-tmp*")), "temp files left behind"
        depth = 16 if out.bit_depth == 16 else 8
        got = list(iter_alpha(path))
        assert len(got) == len(frames)
        errs = [
            np.abs(
                a - (q(f.alpha, 2**depth) if out.format in ("png", "qtrle", "png-mov", "ffv1") else f.alpha)
            )
            for (_, _, a), f in zip(got, frames)
        ]
        max_tol, mean_tol = _alpha_tol(out.format, out.content, depth)
        assert max(e.max() for e in errs) <= max_tol, (preset, max(e.max() for e in errs))
        assert np.mean([e.mean() for e in errs]) <= mean_tol
        if out.format in ("png", "exr"):
            # file number = start_number + clip frame index
            assert [p for _, p, _ in got] == [out.start_number + f.index for f in frames]
        else:
            # every frame keeps its input time (VFR survives), audio comes along
            assert video_times(path) == pytest.approx([f.time_s for f in frames], abs=1.5e-3)
            audio = stream_codecs(path)["audio"]
            assert audio == (["opus"] if out.format == "vp9" else ["aac"])
        if out.content == "rgba":
            _check_colour(out, path, frames)
            probe = path if out.format not in ("png", "exr") else path.with_name(path.name % out.start_number)
            assert read_alpha_mode(probe) == ("premultiplied" if out.premultiplied else "straight")


def _check_colour(out: OutputConfig, path, frames) -> None:
    for (_, _, rgba), f in zip(iter_rgba(path), frames):
        want = f.rgb_float()
        a = f.alpha
        if out.format == "exr":
            lin = srgb_to_linear(want)
            want = lin * a[..., None] if out.premultiplied else lin
            assert np.abs(rgba[..., :3] - want).max() <= 2e-3 * max(1.0, float(want.max()))
            continue
        if out.premultiplied:
            want = want * a[..., None]
        err = np.abs(rgba[..., :3] - want)
        if out.format == "vp9":
            assert err[a > 0.5].mean() <= 0.03
        elif out.format == "prores4444":
            assert err.max() <= 3 / 255
        elif out.premultiplied:
            # colour x alpha is rounded once to the output's depth
            depth = 16 if out.bit_depth == 16 else 8
            assert err.max() <= 0.5 / (2**depth - 1) + 1e-6
        else:
            assert err.max() <= 1e-6  # lossless


def test_premultiplied_png16_records_and_multiplies(src, tmp_path):
    info, frames = src
    cfg = OutputConfig(
        path=str(tmp_path / "p.%04d.png"), format="png", bit_depth=16, premultiplied=True, decontaminate=False
    )
    path = write_all(open_writer(cfg, info), frames)
    _check_colour(cfg, path, frames)
    assert read_alpha_mode(tmp_path / "p.0000.png") == "premultiplied"
    # straight and premultiplied differ where alpha is soft (the test above can tell them apart)
    soft = (frames[0].alpha > 0.1) & (frames[0].alpha < 0.9)
    assert soft.any()


@pytest.mark.parametrize("premultiplied", [False, True])
def test_exr_is_always_premultiplied_header_and_float(src, tmp_path, premultiplied):
    """One EXR convention (premultiplied, linear) whatever ``premultiplied`` says: -o x.%04d.exr (default
    config) and the exr-seq preset (premultiplied = true) write the same pixels and header."""
    import dataclasses

    from vmatte.io.writers.sequence import exr_attributes

    info, frames = src
    cfg = OutputConfig(
        path=str(tmp_path / "e.%04d.exr"),
        format="exr",
        bit_depth=32,
        start_number=1001,
        decontaminate=False,
        premultiplied=premultiplied,
    )
    path = write_all(open_writer(cfg, info, frame_range=(0, len(frames) - 1)), frames)
    _check_colour(dataclasses.replace(cfg, premultiplied=True), path, frames)
    attrs = exr_attributes((tmp_path / "e.1001.exr").read_bytes())
    assert attrs["vmatte/alpha"] == "premultiplied"
    assert read_alpha_mode(tmp_path / "e.1001.exr") == "premultiplied"
    assert attrs["vmatte/transfer"].startswith("linear")


def test_exr_cli_pattern_and_preset_agree(tmp_path):
    """`-o x.%04d.exr` and `--pipeline exr-seq` write byte-identical frames (both half float, premultiplied)."""
    from vmatte.io.writers.sequence import exr_attributes

    scene = tiny_scene(2)
    clip = write_vfr_clip(tmp_path / "c.mp4", scene, [0, 40])
    info = open_clip(clip).info
    frames = with_alpha(open_clip(clip).frames(), scene)
    got = {}
    for name, overrides in (
        ("pattern", {"input": str(clip), "outputs": [{"path": str(tmp_path / "a" / "x.%04d.exr")}]}),
        ("preset", {"input": str(clip), "output": {"path": str(tmp_path / "b" / "x.%04d.exr")}}),
    ):
        cfg = build_config(preset="exr-seq" if name == "preset" else None, overrides=overrides)
        out = cfg.outputs[0]
        write_all(open_writer(out, info), frames)
        first = sorted(Path(resolve_output_path(out, info)).parent.glob("*.exr"))[0]
        got[name] = (exr_attributes(first.read_bytes())["vmatte/alpha"], first.read_bytes())
    assert got["pattern"][0] == got["preset"][0] == "premultiplied"
    assert got["pattern"][1] == got["preset"][1]  # same pixels, same header: one convention


def test_ffmpeg_writer_round_trip(src, tmp_path):
    from vmatte.io.encode import ffmpeg_binary

    # imageio-ffmpeg (a dependency) always provides one: a missing binary is a failure, not a skip
    assert ffmpeg_binary() is not None
    info, frames = src
    cfg = OutputConfig(
        path=str(tmp_path / "x.mov"), format="prores4444", writer="ffmpeg", decontaminate=False
    )
    path = write_all(open_writer(cfg, info), frames)
    got = read_alpha = [a for _, _, a in iter_alpha(path)]
    assert max(np.abs(a - f.alpha).max() for a, f in zip(read_alpha, frames)) <= 1.5 / 1023
    assert len(got) == len(frames)
    assert video_times(path) == pytest.approx([f.time_s for f in frames], abs=1.5e-3)
    assert stream_codecs(path)["audio"] == ["aac"]
    assert read_alpha_mode(path) == "straight"
    _check_colour(cfg, path, frames)


def test_ffmpeg_writer_missing_binary_is_one_line_error(src, tmp_path, monkeypatch):
    from vmatte.errors import OutputError

    info, _ = src
    monkeypatch.setenv("VMATTE_FFMPEG", str(tmp_path / "no-such-ffmpeg"))
    with pytest.raises(OutputError, match="no ffmpeg executable"):
        open_writer(OutputConfig(path=str(tmp_path / "x.mov"), writer="ffmpeg"), info)
    assert not (tmp_path / "x.mov").exists()


def test_ten_bit_source_stays_deep(tmp_path):
    """yuv444p10le (FFV1) and yuv420p10le (H.264) sources decode to uint16 with 10-bit detail, and ProRes /
    PNG16 / FFV1 outputs keep that detail (errors far below one 8-bit step)."""
    scene = tiny_scene(2)
    yy, xx = np.mgrid[0 : scene.height, 0 : scene.width]
    ramp = ((xx + yy * scene.width) * 64 % 65536).astype(np.uint16)  # 1024 levels
    rgb16 = [np.stack([ramp, ramp[::-1], np.full_like(ramp, 40000)], axis=-1)] * 2
    for codec, pix, name in (("ffv1", "yuv444p10le", "deep.mkv"), ("libx264", "yuv420p10le", "deep.mp4")):
        path = write_vfr_clip(tmp_path / name, scene, [0, 40], codec=codec, pix_fmt=pix, rgb16=rgb16)
        clip = open_clip(path)
        assert clip.info.bit_depth == 10, (pix, clip.info)
        frames = with_alpha(clip.frames(), scene)
        assert frames[0].rgb.dtype == np.uint16
        levels = np.unique(frames[0].rgb[..., 1] >> 6)
        assert levels.size > 256, f"{pix}: decoded to only {levels.size} levels"
    # outputs from the 4:4:4 source
    clip = open_clip(tmp_path / "deep.mkv")
    frames = with_alpha(clip.frames(), scene)
    for fmt, path, tol in (
        ("prores4444", "d.mov", 2.5 / 1023),
        ("png", "d.%04d.png", 1e-6),
        ("ffv1", "d.mkv", 1e-6),
    ):
        cfg = OutputConfig(path=str(tmp_path / "out" / path), format=fmt, decontaminate=False)
        out = write_all(open_writer(cfg, clip.info), frames)
        for (_, _, rgba), f in zip(iter_rgba(out), frames):
            assert np.abs(rgba[..., :3] - f.rgb_float()).max() <= tol, fmt


def test_chunk_numbers_and_audio_range(src, tmp_path):
    """Two farm chunks write side by side; a chunk's own existing frame is refused without overwrite."""
    from vmatte.errors import OutputError

    info, frames = src
    pattern = str(tmp_path / "shot.%04d.png")
    cfg = OutputConfig(path=pattern, format="png", content="alpha", start_number=1001)
    write_all(open_writer(cfg, info, frame_range=(0, 1)), frames[:2])
    write_all(open_writer(cfg, info, frame_range=(2, 3)), frames[2:])
    assert sorted(p.name for p in tmp_path.glob("shot.*.png")) == [f"shot.{n}.png" for n in range(1001, 1005)]
    with pytest.raises(OutputError, match=r"shot\.1003\.png: already exists"):
        open_writer(cfg, info, frame_range=(2, 3))
    open_writer(cfg, info, frame_range=(2, 3), overwrite=True).close()
    # a video chunk keeps the input times of its frames and only its share of the audio
    vcfg = OutputConfig(path=str(tmp_path / "chunk.mov"), format="qtrle", decontaminate=False)
    path = write_all(open_writer(vcfg, info, frame_range=(2, 3)), frames[2:])
    assert video_times(path) == pytest.approx([f.time_s for f in frames[2:]], abs=1.5e-3)
    import av

    with av.open(str(path)) as c:
        a = c.streams.audio[0]
        times = [float(p.pts * a.time_base) for p in c.demux(a) if p.size]
    assert min(times) >= frames[2].time_s - 0.03 and max(times) <= frames[3].time_s + 0.1


def test_default_output_paths(src):
    info, _ = src
    assert resolve_output_path(OutputConfig(), info).name == "shot.matte-rgba.mov"
    assert resolve_output_path(OutputConfig(format="vp9"), info).name == "shot.matte-rgba.webm"
    p = resolve_output_path(OutputConfig(format="exr", content="alpha"), info)
    assert (p.parent.name, p.name) == ("shot.matte", "shot.%06d.exr")
    assert resolve_output_path(OutputConfig(path="/x/frames/", format="png"), info).name == "shot.%06d.png"
    assert resolve_output_path(OutputConfig(path="/x/out.webm"), info).suffix == ".webm"


@pytest.mark.parametrize("preset", ["comp-green", "comp-black"])
def test_composite_presets_round_trip(preset, src, tmp_path):
    """Opaque composites: colour = a*rgb + (1-a)*bg per pixel, input times and audio kept."""
    from vmatte.io.compose import parse_color

    info, frames = src
    (out,) = build_config(
        preset=preset, overrides={"input": info.path, "output": {"decontaminate": False}}
    ).outputs
    ext = {"prores4444": ".mov", "h264": ".mp4"}[out.format]
    out = OutputConfig(**{**out.__dict__, "path": str(tmp_path / ("comp" + ext))})
    path = write_all(open_writer(out, info), frames)
    bg = np.asarray(parse_color(out.background), np.float32)
    for (_, _, rgba), f in zip(iter_rgba(path), frames):
        a = f.alpha[..., None]
        want = a * f.rgb_float() + (1 - a) * bg
        err = np.abs(rgba[..., :3] - want)
        if out.format == "prores4444":
            # ProRes DCT-codes colour: near-lossless on average, a few levels at saturated green/orange edges
            assert err.mean() <= 1 / 255 and err.max() <= 12 / 255
        else:  # H.264 4:2:0 at crf 16: lossy, judged on the mean
            assert err.mean() <= 0.02
        assert np.all(rgba[..., 3] == 1.0)
    assert video_times(path) == pytest.approx([f.time_s for f in frames], abs=1.5e-3)
    assert stream_codecs(path)["audio"] == ["aac"]


def test_ffmpeg_binary_resolution_order(tmp_path, monkeypatch):
    """VMATTE_FFMPEG > PATH > imageio-ffmpeg's bundled binary; an unusable VMATTE_FFMPEG is not replaced."""
    import imageio_ffmpeg

    from vmatte.io.ffmpeg_exe import ffmpeg_binary, require_ffmpeg

    fake = tmp_path / "bin" / "ffmpeg"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.delenv("VMATTE_FFMPEG", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert ffmpeg_binary() == imageio_ffmpeg.get_ffmpeg_exe()
    monkeypatch.setenv("PATH", str(fake.parent))
    assert ffmpeg_binary() == str(fake)
    other = tmp_path / "other-ffmpeg"
    other.write_text("#!/bin/sh\n")
    other.chmod(0o755)
    monkeypatch.setenv("VMATTE_FFMPEG", str(other))
    assert ffmpeg_binary() == str(other)
    monkeypatch.setenv("VMATTE_FFMPEG", str(tmp_path / "missing"))
    assert ffmpeg_binary() is None
    with pytest.raises(Exception, match=r"VMATTE_FFMPEG=.*missing") as exc:
        require_ffmpeg("x.mov")
    assert "\n" not in str(exc.value)
