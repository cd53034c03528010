"""Frozen dataclasses as the config schema: build them from plain dicts (TOML files, presets, CLI flags).

Precedence is applied by :func:`deep_merge` on dicts before any dataclass is built:
defaults < config file < preset (``--pipeline``) < CLI flags. Unknown keys are errors that name the source
and key and suggest the nearest known key.
"""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from vmatte.errors import ConfigError

T = TypeVar("T")


def deep_merge(base: dict, override: dict) -> dict:
    """Merge ``override`` into a copy of ``base``: tables merge recursively, everything else (arrays too) replaces."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def load_toml(path: str | Path) -> dict:
    """Read a TOML file; a syntax error becomes a one-line ConfigError naming the file."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{p}: config file not found", hint="check the path") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML ({exc})", hint="fix the syntax") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read config file ({exc})") from None


def _suggest(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.5)
    return f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(sorted(known))}"


def _coerce(value: Any, tp: Any, where: str, source: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where, source)
            except ConfigError as exc:
                errors.append(exc)
        raise errors[0] if errors else ConfigError(f"{source}: {where} cannot be null")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{source}: {where} = {value!r} is not one of {', '.join(map(repr, args))}")
        return value
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: {where} must be a table, got {type(value).__name__}")
        return from_dict(tp, value, source=source, prefix=f"{where}.")
    if origin in (tuple, list):
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise ConfigError(f"{source}: {where} must be a list, got {type(value).__name__}")
        item_tp = args[0] if args else Any
        items = [_coerce(v, item_tp, f"{where}[{i}]", source) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: {where} must be a table, got {type(value).__name__}")
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "on", "1", "false", "no", "off", "0"):
            return value.lower() in ("true", "yes", "on", "1")
        raise ConfigError(f"{source}: {where} must be true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(f"{source}: {where} must be an integer, got {value!r}")
        try:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{source}: {where} must be an integer, got {value!r}") from None
    if tp is float:
        if isinstance(value, bool):
            raise ConfigError(f"{source}: {where} must be a number, got {value!r}")
        try:
            out = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{source}: {where} must be a number, got {value!r}") from None
        if out != out or out in (float("inf"), float("-inf")):
            raise ConfigError(f"{source}: {where} must be a finite number, got {value!r}")
        return out
    if tp is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"{source}: {where} must be a string, got {type(value).__name__}")
        return str(value)
    return value


def from_dict(cls: type[T], data: dict, *, source: str = "config", prefix: str = "") -> T:
    """Build dataclass ``cls`` from ``data``; unknown keys raise ConfigError naming ``source`` and the key."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: {prefix.rstrip('.') or 'config'} must be a table")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs = {}
    for key, value in data.items():
        name = key.replace("-", "_")
        removed = getattr(cls, "REMOVED", ())
        if name in removed:  # a key of an earlier version: say so, not "did you mean"
            # REMOVED: a set of names (now built-in constants) or a mapping name → the option that replaces it
            instead = removed.get(name) if isinstance(removed, Mapping) else None
            if instead:
                raise ConfigError(
                    f"{source}: '{prefix}{key}' is no longer an option",
                    hint=f"set {instead} = {value!r} instead",
                )
            raise ConfigError(
                f"{source}: '{prefix}{key}' is no longer an option (now a built-in constant)",
                hint="delete it",
            )
        if name not in fields:
            raise ConfigError(f"{source}: unknown key '{prefix}{key}'", hint=_suggest(name, list(fields)))
        kwargs[name] = _coerce(value, hints[name], f"{prefix}{key}", source)
    try:
        obj = cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: {prefix.rstrip('.') or 'config'}: {exc}") from None
    return obj


def to_dict(obj: Any) -> Any:
    """Dataclass → plain dict/list/scalars (for reports and `vmatte config --show`)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj
