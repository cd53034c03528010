"""Shipped configs and presets load, and the reference config lists every option (it is generated)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

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
    from vmatte.errors import ConfigError

    cfg = tmp_path / "old.toml"
    cfg.write_text("[propagate]\nband = 0.02\nlayer_radius = 0.04\n")
    with pytest.raises(ConfigError) as exc:
        build_config(config_file=cfg)
    msg = str(exc.value)
    assert (
        msg == f"{cfg}: 'propagate.layer_radius' is no longer an option (now a built-in constant): delete it"
    )
    assert "\n" not in msg
