"""Helpers shared by the tests of config errors (test_core, test_configs, test_motion, test_temporal_smooth)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vmatte.config import build_config
from vmatte.errors import ConfigError


def config_error(tmp_path: Path, toml: str, name: str = "old.toml") -> tuple[Path, ConfigError]:
    """Write ``toml`` to ``tmp_path / name``, load it, and return (that file, the ConfigError it raised).

    Fails the test when loading raises nothing, or when the error is not one line with exit code 2 (every
    config error is: the CLI prints it as one ``vmatte: error:`` line)."""
    cfg = tmp_path / name
    cfg.write_text(toml)
    with pytest.raises(ConfigError) as exc:
        build_config(config_file=cfg)
    assert "\n" not in str(exc.value) and exc.value.exit_code == 2, str(exc.value)
    return cfg, exc.value


def built_in_constant(cfg: Path, key: str) -> str:
    """The error message for ``key`` (dotted, e.g. "smooth.sigma_alpha"), a removed option that is now a
    built-in constant, named in the config file ``cfg``."""
    return f"{cfg}: '{key}' is no longer an option (now a built-in constant): delete it"
