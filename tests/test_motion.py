"""vmatte.motion: one [flow] config for propagation and smoothing, and one motion estimate per frame pair."""

from __future__ import annotations

import pytest

from vmatte.config import build_config
from vmatte.errors import ConfigError
from vmatte.motion.config import MOVED_KEYS, FlowConfig


def test_flow_config_validation():
    FlowConfig(scene_cut=0.0)  # 0 disables scene cuts
    for bad in (dict(preset="slow"), dict(work_size=32), dict(scene_cut=1.5), dict(scene_cut=-0.1)):
        with pytest.raises(ValueError):
            FlowConfig(**bad)


def test_flow_options_live_in_one_section(tmp_path):
    cfg = build_config(
        overrides={"input": "x.mp4", "flow": {"preset": "fast", "work_size": 320, "scene_cut": 0}}
    )
    assert (cfg.flow.preset, cfg.flow.work_size, cfg.flow.scene_cut) == ("fast", 320, 0)
    for cls_cfg in (cfg.propagate, cfg.smooth):
        names = set(type(cls_cfg).__dataclass_fields__)
        assert not names & {"flow", "work_size", "scene_cut", "scene_cut_threshold"}


@pytest.mark.parametrize("old", sorted(MOVED_KEYS))
def test_moved_keys_name_their_new_place(tmp_path, old):
    section, key = old.split(".")
    f = tmp_path / "old.toml"
    value = '"fast"' if key == "flow" else ("0.3" if "scene" in key else "320")
    f.write_text(f"[{section}]\n{key} = {value}\n")
    with pytest.raises(ConfigError) as exc:
        build_config(config_file=f)
    new = MOVED_KEYS[old]
    assert f"'{old}' moved to '{new}'" in str(exc.value) and str(f) in str(exc.value)
    assert f"[flow] {new.split('.')[1]} = " in (exc.value.hint or "")
