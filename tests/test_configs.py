"""Shipped configs and presets load, and the reference config lists every option (it is generated)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from config_helpers import built_in_constant, config_error

from vmatte.config import RunConfig, build_config, list_presets
from vmatte.configtools import load_toml, to_dict

REPO = Path(__file__).resolve().parents[1]


def _keys(d: dict, prefix: str = "") -> set[str]:
    out = set()
    for k, v in d.items():
        if isinstance(v, dict) and k != "options":
            out |= _keys(v, f"{prefix}{k}.")
        elif isinstance(v, list) and v and isinstance(v[0], dict):
            out |= _keys(v[0], f"{prefix}{k}.")
        else:
            out.add(f"{prefix}{k}")
    return out


def test_reference_config_is_up_to_date():
    r = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gen_reference_config.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr


def test_reference_config_lists_every_option_with_a_comment():
    ref = load_toml(REPO / "configs" / "reference.toml")
    want = _keys(to_dict(RunConfig())) - {"input", "masks"}
    assert _keys(ref) == want
    text = (REPO / "configs" / "reference.toml").read_text()
    bare = [ln for ln in text.splitlines() if "=" in ln and not ln.startswith("#") and "  # " not in ln]
    assert not bare, f"options without a comment (add them to the dataclass docstring): {bare}"
    build_config(config_file=REPO / "configs" / "reference.toml")


@pytest.mark.parametrize("name", ["workstation", "farm"])
def test_profiles_load(name):
    build_config(config_file=REPO / "configs" / f"{name}.toml", overrides={"input": "x.mp4"})


def test_every_preset_builds_a_config():
    presets = list_presets()
    assert len(presets) >= 10
    for name in presets:
        cfg = build_config(preset=name, overrides={"input": "x.mp4"})
        assert cfg.outputs, name


def test_a_removed_propagate_option_is_a_clear_one_line_error(tmp_path):
    """Experimental knobs left [propagate] for vmatte.propagate.tuning: an old config naming one says so."""
    cfg, exc = config_error(tmp_path, "[propagate]\nband = 0.02\nlayer_radius = 0.04\n")
    assert str(exc) == built_in_constant(cfg, "propagate.layer_radius")


@pytest.mark.parametrize("key", ["tile_overlap", "crop_margin", "attention"])
def test_a_removed_engine_option_is_a_clear_one_line_error(tmp_path, key):
    """Tuned engine constants left [engine] for vmatte.engine.vitmatte: an old config naming one says so."""
    value = '"sdpa"' if key == "attention" else "48"
    cfg, exc = config_error(tmp_path, f"[engine]\nbatch_size = 2\n{key} = {value}\n")
    assert str(exc) == built_in_constant(cfg, f"engine.{key}")


def test_queue_depth_is_built_in_with_the_old_automatic_value(tmp_path):
    """pipeline.queue_depth (0 = 2 x batch size, at least 4) is no longer an option; the same rule is built in."""
    from vmatte.pipeline.stream import queue_depth

    cfg, exc = config_error(tmp_path, "[pipeline]\nqueue_depth = 8\n")
    assert str(exc) == built_in_constant(cfg, "pipeline.queue_depth")
    assert [queue_depth(b) for b in (1, 2, 3, 8)] == [4, 4, 6, 16] and queue_depth() == 4


def test_the_engine_constants_keep_the_old_defaults():
    """Results do not change: the constants are the removed options' defaults (64 px each, attention auto)."""
    pytest.importorskip("torch")
    import inspect

    from vmatte.engine import vitmatte

    assert vitmatte.TILE_OVERLAP == 64 and vitmatte.CROP_MARGIN == 64
    params = inspect.signature(vitmatte.VitMatteEngine).parameters
    assert params["tile_overlap"].default == 64 and params["crop_margin"].default == 64
    assert params["attention"].default == "auto"


def test_per_output_encoder_threads_name_the_run_wide_option(tmp_path):
    """Encoder threads are one setting for the run: [pipeline] encode_threads. outputs.threads (and the
    [output] patch table) say where the value goes now."""
    from vmatte.errors import ConfigError

    cfg, exc = config_error(
        tmp_path, '[[outputs]]\nformat = "png"\n\n[[outputs]]\nformat = "vp9"\nthreads = 4\n'
    )
    assert str(exc) == (
        f"{cfg}: 'outputs[1].threads' is no longer an option: set [pipeline] encode_threads = 4 instead"
    )
    with pytest.raises(ConfigError, match=r"'output\.threads' is no longer an option: set \[pipeline\]"):
        build_config(overrides={"output": {"threads": 2}})
    assert build_config(overrides={"pipeline": {"encode_threads": 4}}).pipeline.encode_threads == 4
