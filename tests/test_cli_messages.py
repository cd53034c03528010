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
