"""Decoder hardening, alpha read-back of inputs, output-path errors, and the no-torch rule for io/."""

from __future__ import annotations

import errno
import itertools
import subprocess
import sys

import numpy as np
import pytest
from io_helpers import tiny_scene, with_alpha, write_all, write_vfr_clip

from vmatte.errors import ConfigError, DiskFull, OutputError
from vmatte.io.config import OutputConfig
from vmatte.io.decode import open_clip
from vmatte.io.encode import check_output_path, open_writer
from vmatte.io.readback import iter_alpha


def test_io_modules_do_not_import_torch():
    code = (
        "import sys\n"
        "import vmatte.io.decode, vmatte.io.encode, vmatte.io.readback, vmatte.io.compose\n"
        "bad = [m for m in ('torch', 'transformers') if m in sys.modules]\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.fixture(scope="module")
def scene():
    return tiny_scene(3)


@pytest.fixture(scope="module")
def vp9_alpha(tmp_path_factory, scene):
    """An RGBA VP9 .webm written by our writer from an H.264 source + the scene's alpha."""
    d = tmp_path_factory.mktemp("vp9")
    clip = open_clip(write_vfr_clip(d / "src.mp4", scene, [0, 40, 80]))
    frames = with_alpha(clip.frames(), scene)
    cfg = OutputConfig(path=str(d / "rgba.webm"), format="vp9", decontaminate=False)
    return write_all(open_writer(cfg, clip.info), frames), frames


def test_vp9_alpha_input_is_detected_and_its_alpha_read(vp9_alpha):
    path, frames = vp9_alpha
    info = open_clip(path).info
    assert info.has_alpha and info.codec == "vp9" and info.pix_fmt == "yuva420p"
    got = list(iter_alpha(path))
    assert [i for i, _, _ in got] == [0, 1, 2]
    for (_, _, a), f in zip(got, frames):
        assert np.abs(a - f.alpha).mean() < 0.01  # FFmpeg's native decoder would give all-ones here
    # the colour still decodes through the normal path
    assert len(list(open_clip(path).frames())) == 3


def test_has_alpha_and_rotation_and_start_time(tmp_path, scene):
    path = write_vfr_clip(tmp_path / "rot.mp4", scene, [1000, 1040, 1080], rotation=90)
    info = open_clip(path).info
    assert info.rotation == 90
    assert not info.has_alpha  # yuv420p; gray-like names must not be mistaken for alpha
    assert info.start_time_s == pytest.approx(1.0)
    assert info.bit_depth == 8
    frames = list(open_clip(path).frames())
    assert [f.time_s for f in frames] == pytest.approx([1.0, 1.04, 1.08])
    assert frames[0].rgb.dtype == np.uint8
    # the rotation is carried into outputs as a display matrix (frames themselves are not turned)
    cfg = OutputConfig(path=str(tmp_path / "o.mov"), format="qtrle", content="alpha")
    out = write_all(open_writer(cfg, info), with_alpha(frames, scene))
    assert open_clip(out).info.rotation == 90


def test_full_range_source_decodes_full_range(tmp_path, scene):
    """A yuvj/full-range clip must not be squeezed as if limited (swscale's default for unstated range)."""
    import av

    path = tmp_path / "full.mkv"
    rgb = np.zeros((scene.height, scene.width, 3), np.uint8)
    rgb[:, : scene.width // 2] = 255
    with av.open(str(path), "w") as out:
        s = out.add_stream("ffv1", rate=24)
        s.width, s.height, s.pix_fmt = scene.width, scene.height, "yuv444p"
        s.codec_context.color_range = 2
        vf = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv444p", dst_color_range=2)
        for p in [*s.encode(vf), *s.encode(None)]:
            out.mux(p)
    info = open_clip(path).info
    assert info.color["color_range"] == 2
    f = next(open_clip(path).frames())
    assert f.rgb[0, 0].min() >= 253 and f.rgb[0, -1].max() <= 2


def test_output_is_input_refused(tmp_path, scene):
    path = write_vfr_clip(tmp_path / "in.mp4", scene, [0, 40, 80])
    info = open_clip(path).info
    with pytest.raises(OutputError, match="output path is the input clip"):
        check_output_path(path, info, overwrite=True)
    (tmp_path / "old.mp4").write_bytes(b"previous render")
    with pytest.raises(OutputError, match="already exists"):
        open_writer(
            OutputConfig(path=str(tmp_path / "old.mp4"), format="h264", content="composite"),
            info,
            overwrite=False,
        )
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="cannot create output folder"):
        check_output_path(blocker / "sub" / "o.mov", info, overwrite=False)
    with pytest.raises(ConfigError, match="has no alpha channel"):
        open_writer(OutputConfig(path=str(tmp_path / "o.mp4"), format="h264"), info)
    from vmatte.errors import UsageError

    with pytest.raises(UsageError, match="frame-number pattern"):  # 3 frames into one image
        open_writer(OutputConfig(path=str(tmp_path / "o.png"), format="png"), info)


def test_sequence_output_over_input_sequence_refused(tmp_path, scene):
    from vmatte.testing import write_sequence

    seq = write_sequence(tmp_path / "seq", scene, pattern="f.%04d.png")
    info = open_clip(str(seq / "f.%04d.png")).info
    with pytest.raises(OutputError, match="overwrite the input sequence"):
        check_output_path(seq / "f.%03d.png", info, overwrite=True)  # another pattern, same files


def test_disk_full_is_retryable_and_leaves_nothing(tmp_path, scene, monkeypatch):
    clip = open_clip(write_vfr_clip(tmp_path / "in.mp4", scene, [0, 40, 80]))
    frames = with_alpha(clip.frames(), scene)
    cfg = OutputConfig(path=str(tmp_path / "out" / "s.%04d.png"), format="png", decontaminate=False)
    w = open_writer(cfg, clip.info)

    def full(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("vmatte.io.writers.sequence.os.replace", full)
    w.write(frames[0])  # frames go to temp names; they are renamed into place by close()
    with pytest.raises(DiskFull) as err:
        w.close()
    assert err.value.retryable and err.value.exit_code == 8
    w.abort()
    assert not (tmp_path / "out").exists()  # the folder the writer created goes too


def test_abort_removes_video_temp(tmp_path, scene):
    clip = open_clip(write_vfr_clip(tmp_path / "in.mp4", scene, [0, 40, 80]))
    frames = with_alpha(clip.frames(), scene)
    w = open_writer(OutputConfig(path=str(tmp_path / "o.mov"), decontaminate=False), clip.info)
    for f in frames:
        w.write(f)
    assert not (tmp_path / "o.mov").exists()  # nothing under the final name before close
    w.abort()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def test_iter_alpha_gray_matte_video_and_sequence(tmp_path, scene):
    """Gray mattes (no alpha channel) read back as their gray value; sequences give file numbers as pts."""
    clip = open_clip(write_vfr_clip(tmp_path / "in.mp4", scene, [0, 40, 80]))
    frames = with_alpha(clip.frames(), scene)
    for cfg in (
        OutputConfig(path=str(tmp_path / "m.mkv"), format="ffv1", content="alpha"),
        OutputConfig(path=str(tmp_path / "m" / "m.%03d.png"), format="png", content="alpha", start_number=7),
    ):
        path = write_all(open_writer(cfg, clip.info), frames)
        got = list(iter_alpha(path))
        assert len(got) == 3
        for (_, _, a), f in zip(got, frames):
            assert np.abs(a - f.alpha).max() <= 0.5 / 255 + 1e-6
    assert [p for _, p, _ in iter_alpha(tmp_path / "m" / "m.%03d.png")] == [7, 8, 9]
    assert [p for _, p, _ in iter_alpha(tmp_path / "m")] == [7, 8, 9]
    with pytest.raises(Exception, match="no such file"):
        list(iter_alpha(tmp_path / "none.mov"))


def test_exr_sequence_reads_back_as_input(tmp_path, scene):
    """Our linear EXR, fed back in as a clip, decodes to the colour that went out (sRGB curve inverted).
    Opaque frames: EXR colour is premultiplied, so only where alpha = 1 is it the colour itself."""
    clip = open_clip(write_vfr_clip(tmp_path / "in.mp4", scene, [0, 40, 80]))
    frames = list(clip.frames())  # no alpha: written opaque
    cfg = OutputConfig(
        path=str(tmp_path / "e" / "e.%04d.exr"), format="exr", bit_depth=32, decontaminate=False
    )
    write_all(open_writer(cfg, clip.info), frames)
    back = open_clip(cfg.path)
    assert back.info.kind == "sequence" and back.info.frame_count == 3 and back.info.bit_depth == 16
    for f, g in zip(frames, back.frames()):
        assert np.abs(f.rgb_float() - g.rgb_float()).max() <= 1e-4


def test_colour_tags_carried_into_outputs(tmp_path, scene):
    """A BT.709-tagged, limited-range source: YUV outputs carry its tags and convert with its matrix."""
    import av

    path = tmp_path / "tagged.mkv"
    with av.open(str(path), "w") as out:
        s = out.add_stream("ffv1", rate=24)
        s.width, s.height, s.pix_fmt = scene.width, scene.height, "yuv444p"
        cc = s.codec_context
        cc.color_range, cc.color_primaries, cc.color_trc, cc.colorspace = 1, 1, 1, 1
        for t in range(2):
            vf = av.VideoFrame.from_ndarray(scene.rgb(t), format="rgb24").reformat(
                format="yuv444p", dst_colorspace="itu709", dst_color_range=1
            )
            for p in s.encode(vf):
                out.mux(p)
        for p in s.encode(None):
            out.mux(p)
    clip = open_clip(path)
    assert clip.info.color == {"color_range": 1, "color_primaries": 1, "color_trc": 1, "colorspace": 1}
    frames = with_alpha(clip.frames(), scene)
    # the decoder honoured the BT.709 matrix: colours match the scene within YUV rounding
    assert np.abs(frames[0].rgb_float() - scene.rgb(0) / 255).max() <= 3 / 255
    out = write_all(
        open_writer(OutputConfig(path=str(tmp_path / "o.mov"), decontaminate=False), clip.info), frames
    )
    with av.open(str(out)) as c:
        v = c.streams.video[0].codec_context
        assert (v.color_range, v.color_primaries, v.color_trc, v.colorspace) == (1, 1, 1, 1)
    from vmatte.io.readback import iter_rgba

    for (_, _, rgba), f in zip(iter_rgba(out), frames):
        assert np.abs(rgba[..., :3] - f.rgb_float()).max() <= 3 / 255


def test_hostile_inputs_refused_in_one_line(tmp_path, scene):
    """FIFO, tiny frames, a huge declared PNG, a sequence with a gap: InputError before anything is decoded."""
    import os
    import struct
    import zlib

    from vmatte.errors import InputError
    from vmatte.testing import Scene, write_sequence

    fifo = tmp_path / "pipe.mp4"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="not a regular file"):
        open_clip(fifo)
    tiny = write_vfr_clip(
        tmp_path / "tiny.mkv", Scene(width=8, height=8, frames=2), [0, 1], codec="ffv1", pix_fmt="yuv444p"
    )
    with pytest.raises(InputError, match="too small"):
        open_clip(tiny)
    seq = write_sequence(tmp_path / "gap", scene, pattern="%04d.png")
    (seq / "0001.png").unlink()
    with pytest.raises(InputError, match=r"missing frame.*number 1"):
        open_clip(seq)
    huge = tmp_path / "huge"
    huge.mkdir()
    png = (seq / "0000.png").read_bytes()
    ihdr = struct.pack(">II", 60000, 60000) + png[24:29]
    (huge / "0000.png").write_bytes(
        png[:16] + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr)) + png[33:]
    )
    with pytest.raises(InputError, match="60000x60000"):
        open_clip(huge)


def test_percent_d_in_a_real_file_name_is_a_file(tmp_path, scene):
    path = write_vfr_clip(tmp_path / "take 100%done.mp4", scene, [0, 40, 80])
    clip = open_clip(path)
    assert clip.info.kind == "video" and len(list(clip.frames())) == 3
    out = tmp_path / "out 5%d.mov"
    out.write_bytes(b"old")
    with pytest.raises(OutputError, match="already exists"):
        check_output_path(out, clip.info, overwrite=False)


def test_corrupt_frames_skipped_with_their_numbers(tmp_path):
    import hostile

    clip = open_clip(hostile.mjpeg_mkv(tmp_path / "bad.mkv", hostile.scene(frames=8), corrupt=(3, 5)))
    bad: list[int] = []
    assert [f.index for f in clip.frames(corrupt=bad)] == [0, 1, 2, 4, 6, 7]
    assert bad == [3, 5] and clip.corrupt == {3, 5}
    from vmatte.errors import InputError

    with pytest.raises(InputError, match="more than 1 corrupt"):
        list(clip.frames(max_corrupt=1))


def test_duplicate_and_backwards_pts_stay_increasing(tmp_path):
    import hostile

    clip = open_clip(
        hostile.mjpeg_mkv(
            tmp_path / "b.mkv", hostile.scene(), pts=[0, 1, 2, 5, 3, 4, 6, 7], dts=[0, 1, 2, 3, 3, 4, 6, 7]
        )
    )
    pts = [f.pts for f in clip.frames()]
    assert all(b > a for a, b in itertools.pairwise(pts)), pts


def test_sequence_abort_removes_this_runs_frames(tmp_path, scene):
    """A failed run's frames go with it, so the same command can be retried without --overwrite; frames of
    other chunks in the folder stay."""
    clip = open_clip(write_vfr_clip(tmp_path / "in.mp4", scene, [0, 40, 80]))
    frames = with_alpha(clip.frames(), scene)
    cfg = OutputConfig(path=str(tmp_path / "s" / "f.%04d.png"), format="png", content="alpha")
    write_all(open_writer(cfg, clip.info, frame_range=(2, 2)), frames[2:])  # another chunk, finished
    w = open_writer(cfg, clip.info, frame_range=(0, 1))
    w.write(frames[0])
    w.abort()
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["f.0002.png"]
    write_all(open_writer(cfg, clip.info, frame_range=(0, 1)), frames[:2])  # the retry
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["f.0000.png", "f.0001.png", "f.0002.png"]
