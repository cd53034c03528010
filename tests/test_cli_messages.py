"""What a user reads: one line per mistake, naming what to type instead (issue 12, messages)."""

from __future__ import annotations

import json

import pytest

from tests.hostile import run_cli


@pytest.mark.parametrize(
    "typo, meant",
    [("--maks", "--masks"), ("--fames", "--frames"), ("-masks", "--masks"), ("--overwite", "--overwrite")],
)
def test_typod_flag_gets_one_line_with_the_nearest_flag(tmp_path, clip_path, masks_dir, typo, meant):
    r = run_cli("run", clip_path, typo, masks_dir, "-o", tmp_path / "o.mov")
    assert r.code == 2, r
    assert len(r.lines) == 1, r  # not the whole usage block
    assert r.lines[0].startswith("vmatte: error: ") and f"did you mean {meant}?" in r.lines[0], r
    assert "usage:" not in r.stderr


def test_unknown_flag_far_from_any_gets_no_wild_guess(clip_path):
    r = run_cli("run", clip_path, "--frobnicate", "3")
    assert r.code == 2 and len(r.lines) == 1 and "did you mean" not in r.stderr, r
    assert "--frobnicate" in r.stderr and "vmatte run --help" in r.stderr


def test_forgotten_masks_flag_suggests_it(tmp_path, clip_path, masks_dir):
    r = run_cli("run", clip_path, masks_dir)
    assert r.code == 2 and len(r.lines) == 1, r
    assert f"did you mean --masks {masks_dir}?" in r.lines[0], r


def test_report_is_written_for_an_unknown_flag(tmp_path, clip_path, masks_dir):
    rep = tmp_path / "r.json"
    r = run_cli("run", clip_path, "--maks", masks_dir, "--report", rep)
    assert r.code == 2, r
    d = json.loads(rep.read_text())
    assert d["status"] == "error" and d["exit_code"] == 2 and "--masks" in d["error"]
    assert d["input"] == str(clip_path)
    # --report=FILE spelling, and an argparse error (bad choice) rather than an unknown flag
    rep2 = tmp_path / "r2.json"
    r = run_cli("run", clip_path, "--masks", masks_dir, "--engine", "nope", f"--report={rep2}")
    assert r.code == 2 and len(r.lines) == 1, r
    assert json.loads(rep2.read_text())["exit_code"] == 2


def test_report_for_a_bad_command_line_never_clobbers_an_input(tmp_path, clip_path, masks_dir):
    before = clip_path.read_bytes()
    r = run_cli("run", clip_path, "--maks", masks_dir, "--report", clip_path)
    assert r.code == 2 and clip_path.read_bytes() == before


def test_rgba_to_a_format_without_alpha_names_extensions_and_the_other_contents(
    tmp_path, clip_path, masks_dir
):
    r = run_cli("run", clip_path, "--masks", masks_dir, "-o", tmp_path / "out.mp4")
    assert r.code == 2 and len(r.errors) == 1, r
    for word in (".mov", ".webm", ".mkv", "PNG/EXR sequence", "--composite", "--alpha-only"):
        assert word in r.errors[0], (word, r)
    assert not (tmp_path / "out.mp4").exists()


def test_unknown_extension_suggests_only_what_can_be_typed(tmp_path, clip_path, masks_dir):
    r = run_cli("run", clip_path, "--masks", masks_dir, "-o", tmp_path / "out.gif")
    assert r.code == 2 and len(r.errors) == 1, r
    assert ".mov" in r.errors[0] and "format explicitly" not in r.errors[0], r


@pytest.mark.parametrize("bg, guess", [("nosuchcolour", None), ("gren", "green")])
def test_bad_composite_colour_is_a_usage_error_before_the_model_loads(
    tmp_path, clip_path, masks_dir, bg, guess
):
    r = run_cli(
        "run", clip_path, "--masks", masks_dir, "-o", tmp_path / "c.mov", "--composite", bg, engine={}
    )
    assert r.code == 2 and len(r.errors) == 1, r
    assert f"--composite {bg}" in r.errors[0]
    assert (f"did you mean '{guess}'" in r.errors[0]) if guess else "did you mean" not in r.errors[0]


def test_api_errors_speak_api(tmp_path, clip_path, masks_dir):
    import vmatte
    from vmatte.errors import ConfigError, OutputError

    out = tmp_path / "exists.mov"
    out.write_bytes(b"x")
    cfg = vmatte.RunConfig(
        input=str(clip_path), masks=str(masks_dir), outputs=(vmatte.OutputConfig(path=str(out)),)
    )
    with pytest.raises(OutputError) as e:
        vmatte.run(cfg)
    assert "RunConfig(overwrite=True)" in str(e.value) and "--overwrite" not in str(e.value)
    cfg = vmatte.RunConfig(
        input=str(clip_path),
        masks=str(masks_dir),
        outputs=(vmatte.OutputConfig(path=str(tmp_path / "o.mp4")),),
    )
    with pytest.raises(ConfigError) as e:
        vmatte.run(cfg)
    assert "content" in str(e.value) and "--composite" not in str(e.value)
    # and the command line still speaks flags afterwards
    r = run_cli("run", clip_path, "--masks", masks_dir, "-o", out)
    assert r.code == 7 and "pass --overwrite" in r.errors[0], r


# -- which mask became which frame, and masks that are not what they seem ------------------------------------
def test_mapping_line_and_doubtful_numbers(tmp_path, clip_path, scene):
    import cv2

    from vmatte.io.masks import number_doubt

    for name in (
        "000120.png",
        "frame_120.png",
        "shot.0120.png",
        "shot_v2.0120.png",
        "frame120.png",
        "00007.jpg",
    ):
        assert number_doubt(name) is None, name
    for name in ("test-sample1.png", "mask_v2.png", "take3.png"):
        assert number_doubt(name), name
    masks = tmp_path / "keys"
    masks.mkdir()
    cv2.imwrite(str(masks / "test-sample0.png"), scene.mask(0))
    cv2.imwrite(str(masks / "mask_v8.png"), scene.mask(8))
    r = run_cli("run", clip_path, "--masks", masks, "-o", tmp_path / "o.mov", engine={})
    assert r.code == 0, r
    assert "vmatte: keyframes: test-sample0.png -> 0, mask_v8.png -> 8" in r.lines, r
    doubts = [ln for ln in r.lines if ln.startswith("vmatte: warning:") and "read as keyframe" in ln]
    assert len(doubts) == 2 and "'v8' looks like a version number" in " ".join(doubts), r


def test_binary_mask_saved_as_jpeg_is_read_as_binary(tmp_path, clip_path, scene):
    import cv2
    import numpy as np

    from vmatte.io.decode import open_clip
    from vmatte.io.masks import load_keyframes

    info = open_clip(clip_path).info
    d = tmp_path / "jpg"
    d.mkdir()
    cv2.imwrite(str(d / "000000.jpg"), scene.mask(0), [cv2.IMWRITE_JPEG_QUALITY, 75])
    v = cv2.imread(str(d / "000000.jpg"), 0)
    assert ((v > 0) & (v < 255)).any()  # the compression noise this is about
    k = load_keyframes(d, info)
    assert k.kind(0) == "binary"
    assert len(k.warnings) == 1 and "binary mask saved as JPG" in k.warnings[0]
    # a soft matte saved as JPEG stays soft, and a PNG binary mask says nothing
    s = tmp_path / "soft"
    s.mkdir()
    ramp = np.tile(np.linspace(0, 255, scene.width, dtype=np.float32), (scene.height, 1)).astype(np.uint8)
    cv2.imwrite(str(s / "000000.jpg"), ramp)
    assert load_keyframes(s, info).kind(0) == "alpha"


def test_keyframes_showing_different_objects_are_warned_about(tmp_path, clip_path, masks_dir, scene):
    import cv2
    import numpy as np

    from vmatte.config import build_config
    from vmatte.io.decode import open_clip
    from vmatte.io.masks import load_keyframes
    from vmatte.propagate import Propagator

    clip = open_clip(clip_path)
    same = Propagator(clip, load_keyframes(masks_dir, clip.info), build_config().propagate)
    same.prepare()
    assert same.warnings == []
    d = tmp_path / "other"
    d.mkdir()
    cv2.imwrite(str(d / "000000.png"), scene.mask(0))
    other = np.zeros((scene.height, scene.width), np.uint8)
    union = (scene.mask(0) > 0) | (scene.mask(8) > 0)
    ys, xs = np.nonzero(union)
    # a box where the object never is on either keyframe: below or right of it
    if ys.max() + 20 < scene.height:
        other[ys.max() + 6 :, :] = 255
    else:
        other[:, xs.max() + 6 :] = 255
    assert not (other.astype(bool) & union).any()
    cv2.imwrite(str(d / "000008.png"), other)
    diff = Propagator(clip, load_keyframes(d, clip.info), build_config().propagate)
    diff.prepare()
    assert len(diff.warnings) == 1 and "frames 0 and 8 do not overlap" in diff.warnings[0], diff.warnings


# -- what a run says up front, and --progress json --------------------------------------------------------
def _offline(monkeypatch):
    import vmatte.engine.weights as W

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(W, "_cached_snapshot", lambda repo_id: None)


def test_fallback_and_compile_notice_print_before_frames_even_when_the_run_fails(
    tmp_path, clip_path, masks_dir, monkeypatch
):
    import vmatte.engine.classic as C
    import vmatte.io.encode as E
    from vmatte.errors import OutputError

    _offline(monkeypatch)
    monkeypatch.setattr(C, "numba_cache_ready", lambda: False)

    def broken_writer(*a, **k):
        raise OutputError("disk says no")

    monkeypatch.setattr(E, "open_writer", broken_writer)  # fails after the engine loaded, before any frame
    r = run_cli("run", clip_path, "--masks", masks_dir, "-o", tmp_path / "o.mov", "--progress", "lines")
    assert r.code == 7, r
    fallback = [ln for ln in r.lines if "using the classic (closed-form) engine" in ln]
    assert len(fallback) == 1 and fallback[0].startswith("vmatte: warning:"), r
    assert any("compiling the classic engine (first run only" in ln for ln in r.lines), r
    assert r.lines[-1].startswith("vmatte: error: disk says no"), r


def _events(r) -> list[dict]:
    evs = [json.loads(ln) for ln in r.lines]  # every line must be JSON
    assert evs and evs[-1]["event"] == "end", evs[-3:]
    return evs


def test_progress_json_is_all_json_with_a_final_event(tmp_path, clip_path, masks_dir, monkeypatch):
    _offline(monkeypatch)
    out = tmp_path / "o.mov"
    r = run_cli("run", clip_path, "--masks", masks_dir, "-o", out, "--progress", "json", "--engine", "auto")
    assert r.code == 0, r
    evs = _events(r)
    end = evs[-1]
    assert end["status"] == "ok" and end["exit_code"] == 0 and end["outputs"] == [str(out)], end
    assert any("classic" in w for w in end["warnings"]), end
    kinds = {e["event"] for e in evs}
    assert {"progress", "info", "warning", "end"} <= kinds, kinds
    assert any(e["event"] == "info" and e["message"].startswith("wrote ") for e in evs)
    matte = [e for e in evs if e.get("stage") == "matte"]
    assert matte[0]["eta_s"] is None  # no ETA from the first frame alone (it pays for the pipeline fill)
    # an error: the end event carries it, and no plain line follows
    r = run_cli("run", clip_path, "--masks", masks_dir, "-o", out, "--progress", "json", engine={})
    assert r.code == 7, r
    end = _events(r)[-1]
    assert end["status"] == "error" and end["exit_code"] == 7 and "already exists" in end["error"], end
    # a bad command line, too
    r = run_cli("run", clip_path, "--maks", masks_dir, "--progress", "json")
    assert r.code == 2 and _events(r)[-1]["exit_code"] == 2, r


def test_library_prints_and_warnings_become_one_counted_line(tmp_path, clip_path, masks_dir, monkeypatch):
    import contextlib
    import io
    import warnings

    import vmatte.engine.classic as C

    real = C.solve_band
    calls = []

    def chatty(rgb, trimap, margin=4, notes=None, **prior):
        # pymatting's block, exactly as ichol prints it, and a Python warning from a library
        calls.append(1)  # once per solve: the 12 frames, and again where the band was widened (grow_band)
        print("PERFORMANCE WARNING:")
        print(
            "Thresholded incomplete Cholesky decomposition failed due to insufficient positive-definiteness "
            "of matrix A with parameters:"
        )
        print("    discard_threshold = 1.000000e-04")
        print("    shift = 0.000000e+00")
        print("Try decreasing discard_threshold or start with a larger shift")
        print("")
        warnings.warn("something deprecated", DeprecationWarning, stacklevel=1)
        return real(rgb, trimap, margin, notes, **prior)

    monkeypatch.setattr(C, "solve_band", chatty)
    rep = tmp_path / "r.json"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        r = run_cli(
            "run",
            clip_path,
            "--masks",
            masks_dir,
            "-o",
            tmp_path / "o.mov",
            "--engine",
            "classic",
            "--report",
            rep,
        )
    assert r.code == 0, r
    assert "Thresholded" not in out.getvalue()
    perf = [ln for ln in r.lines if "PERFORMANCE WARNING" in ln]
    n = f"{len(calls)} times"
    assert len(calls) >= 12
    assert len(perf) == 1 and n in perf[0] and "the matte is the same" in perf[0], r
    dep = [ln for ln in r.lines if "something deprecated" in ln]
    assert len(dep) == 1 and "DeprecationWarning" in dep[0] and n in dep[0], r
    assert not any(ln.startswith(("discard_threshold", "shift", "Try decreasing")) for ln in r.lines)
    assert sum("PERFORMANCE WARNING" in w for w in json.loads(rep.read_text())["warnings"]) == 1


# -- one rule for --frames beyond the clip: refused everywhere, with the range that would work ---------------
@pytest.mark.parametrize("rng, fix", [("5-200", "--frames 5-11"), ("20-30", "a range within 0-11")])
@pytest.mark.parametrize("how", ["run", "chunk", "propagate", "plan"])
def test_frames_beyond_the_clip_are_refused_everywhere(tmp_path, clip_path, masks_dir, rng, fix, how):
    argv = {
        "run": ["run", clip_path, "--masks", masks_dir, "-o", tmp_path / "o.mov"],
        "chunk": ["run", clip_path, "--masks", masks_dir, "-o", tmp_path / "o.mov", "--chunk", "4"],
        "propagate": ["propagate", clip_path, "--masks", masks_dir, "--out", tmp_path / "p"],
        "plan": ["plan", clip_path, "--masks", masks_dir, "--chunk", "4"],
    }[how]
    r = run_cli(*argv, "--frames", rng, engine={})
    assert r.code == 2 and len(r.errors) == 1, r
    assert (
        f"--frames {rng}: " in r.errors[0] and "has 12 frames (0-11)" in r.errors[0] and fix in r.errors[0]
    ), r
    assert not (tmp_path / "o.mov").exists() and not (tmp_path / "p").exists()


def test_frames_beyond_the_clip_through_the_api(tmp_path, clip_path, masks_dir):
    import vmatte
    from vmatte.errors import UsageError

    cfg = vmatte.RunConfig(
        input=str(clip_path),
        masks=str(masks_dir),
        frames="5-200",
        outputs=(vmatte.OutputConfig(path=str(tmp_path / "o.mov")),),
    )
    with pytest.raises(UsageError, match=r"frames = 5-200: .* has 12 frames \(0-11\): use frames = 5-11"):
        vmatte.run(cfg)


def test_propagate_refuses_to_replace_earlier_results_without_overwrite(tmp_path, clip_path, masks_dir):
    out = tmp_path / "check"
    argv = ["propagate", clip_path, "--masks", masks_dir, "--out", out, "--quiet", "--frames", "0-3"]
    assert run_cli(*argv).code == 0
    before = (out / "propagate.json").read_bytes()
    r = run_cli(*argv)
    assert r.code == 7 and len(r.errors) == 1 and "pass --overwrite" in r.errors[0], r
    assert (out / "propagate.json").read_bytes() == before
    assert run_cli(*argv, "--overwrite").code == 0
    # an empty existing folder is fine
    (tmp_path / "empty").mkdir()
    assert (
        run_cli("propagate", clip_path, "--masks", masks_dir, "--out", tmp_path / "empty", "--quiet").code
        == 0
    )


# -- what each output holds -------------------------------------------------------------------------------
def test_content_flags_refuse_ambiguous_combinations(tmp_path, clip_path, masks_dir):
    base = ["run", clip_path, "--masks", masks_dir]
    r = run_cli(*base, "-o", tmp_path / "a.mov", "--composite", "green", "--alpha-only", engine={})
    assert r.code == 2 and len(r.errors) == 1 and "pick one" in r.errors[0], r
    r = run_cli(*base, "-o", tmp_path / "a.mov", "-o", tmp_path / "c.mp4", "--composite", "green", engine={})
    assert r.code == 2 and len(r.errors) == 1 and "would apply to all 2 outputs" in r.errors[0], r
    assert "[[outputs]]" in r.errors[0]
    r = run_cli(*base, "--pipeline", "prores-plus-matte", "--alpha-only", "-o", tmp_path / "x.mov", engine={})
    assert r.code == 2 and "would apply to all 2 outputs" in r.errors[0], r
    assert not list(tmp_path.glob("*.mov")) and not list(tmp_path.glob("*.mp4"))


def test_per_output_content_through_a_config_file_as_the_readme_says(tmp_path, clip_path, masks_dir):
    import av

    cfg = tmp_path / "two.toml"
    cfg.write_text(
        '[[outputs]]\ncontent = "rgba"\n\n[[outputs]]\ncontent = "composite"\nbackground = "green"\n'
    )
    a, c = tmp_path / "a.mov", tmp_path / "comp.mp4"
    r = run_cli("run", clip_path, "--masks", masks_dir, "--config", cfg, "-o", a, "-o", c, engine={})
    assert r.code == 0, r
    with av.open(str(a)) as f:
        assert "a" in f.streams.video[0].codec_context.pix_fmt.replace("yuv", "")  # yuva444p..: alpha kept
    with av.open(str(c)) as f:
        assert f.streams.video[0].codec_context.name == "h264"


# -- the README's Python API snippet runs as printed, without weights, and says what happened ----------------
def _readme_api_snippet() -> str:
    import re
    import textwrap
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = text.split("### Python API", 1)[1]
    block = re.search(r"\n\n((?:    .*\n|\n)+?)\n(?! )", section)
    assert block, "no indented code block after '### Python API' in README.md"
    return textwrap.dedent(block.group(1))


def test_readme_api_snippet_runs_as_printed_without_weights(tmp_path, clip_path, masks_dir):
    import os
    import shutil
    import subprocess
    import sys

    code = _readme_api_snippet()
    assert "import threading, vmatte" in code and "vmatte.run(" in code
    ex = tmp_path / "examples"
    ex.mkdir()
    shutil.copy(clip_path, ex / "clip.mp4")  # a tiny clip where the snippet expects the bundled example
    shutil.copytree(masks_dir, ex / "keyframes")
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(tmp_path / "empty-cache"))
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert (ex / "clip.api.mov").is_file()
    last = r.stdout.strip().splitlines()[-1]
    assert last.startswith("classic ") and "using the classic (closed-form) engine" in last, r.stdout[-2000:]
    assert "EngineConfig(model=DIR)" in last and "--model" not in last
    assert "VmatteWarning" in r.stderr  # and it was said where no on_warning was given


@pytest.mark.parametrize("flag", ["--tile-overlap", "--attention"])
def test_removed_engine_flags_say_they_are_gone_not_a_look_alike(tmp_path, clip_path, masks_dir, flag):
    """--tile-overlap became a constant: the line must not suggest --tile, a different option."""
    value = "sdpa" if flag == "--attention" else "48"
    r = run_cli("run", clip_path, "--masks", masks_dir, flag, value, "-o", tmp_path / "o.mov")
    assert r.code == 2 and len(r.lines) == 1, r
    assert r.lines[0].startswith(f"vmatte: error: {flag} is no longer an option: "), r
    assert r.lines[0].endswith("; drop it") and "did you mean" not in r.stderr, r
    assert not (tmp_path / "o.mov").exists()


def test_a_config_with_a_removed_option_fails_the_run_with_exit_2(tmp_path, clip_path, masks_dir):
    cfg = tmp_path / "old.toml"
    cfg.write_text("[[outputs]]\nthreads = 2\n")
    r = run_cli("run", clip_path, "--masks", masks_dir, "--config", cfg, "-o", tmp_path / "o.mov")
    assert r.code == 2 and len(r.lines) == 1, r
    assert (
        "'outputs[0].threads' is no longer an option: set [pipeline] encode_threads = 2 instead" in r.lines[0]
    )
