"""Run configuration: one frozen dataclass tree, built from defaults < config file < preset < CLI flags.

Schema pieces live beside the code they configure (``engine/config.py``, ``propagate/config.py``,
``temporal/config.py``, ``io/config.py``); this module composes them and knows where configs come from.
``configs/reference.toml`` lists every option with a one-line comment.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import ClassVar, Literal

from vmatte.configtools import deep_merge, from_dict, load_toml, to_dict
from vmatte.engine.config import EngineConfig
from vmatte.errors import ConfigError, UsageError
from vmatte.io.config import OutputConfig
from vmatte.motion.config import MOVED_KEYS, FlowConfig
from vmatte.propagate.config import PropagateConfig
from vmatte.temporal.config import SmoothConfig

__all__ = [
    "EngineConfig",
    "FlowConfig",
    "OutputConfig",
    "PipelineConfig",
    "PropagateConfig",
    "RunConfig",
    "SmoothConfig",
    "build_config",
    "list_presets",
    "load_preset",
    "parse_frame_range",
]


@dataclass(frozen=True)
class PipelineConfig:
    """Plumbing of the chain.

    encode_threads: codec threads of each video encoder (every output of the run); 0 = all cores. A farm task
        given N cores sets N; Ray tasks get their CPUs.
    max_corrupt_frames: undecodable frames skipped (and reported) before the run fails.
    cpu_threads: cap on each numeric library's thread pool (OpenCV, torch on CPU, BLAS) during the run;
        0 = the cores this process may use. Pools are sized from it in one place
        (vmatte.pipeline.threads.plan_threads: OpenCV and BLAS at most 4, torch 4 when the model runs on a GPU,
        encode-stage workers). A farm task given N cores sets N; Ray tasks set their CPUs.
    post_device: where temporal smoothing's per-point work runs: "auto" (in torch on the engine's device when
        that is CUDA, else numpy/OpenCV on the CPU) or "cpu" (always numpy/OpenCV). "cpu" gives the same alpha
        as a CPU host and spends no GPU memory on it (~25 MB per held 1080p frame); the two agree to 1e-6
        away from the snap-to-0/1 step (vmatte.temporal.torch_path). Flows stay on the CPU; decontamination
        stays on the CPU too (pymatting's solve has no matching GPU form: vmatte.io.foreground says why).

    Not options: each inter-thread queue holds two engine batches, at least 4 frames
    (``vmatte.pipeline.stream.queue_depth``).
    """

    # keys of earlier versions, now built-in (queue_depth: vmatte.pipeline.stream.queue_depth)
    REMOVED: ClassVar[frozenset[str]] = frozenset({"queue_depth"})

    encode_threads: int = 0
    max_corrupt_frames: int = 10
    cpu_threads: int = 0
    post_device: Literal["auto", "cpu"] = "auto"


@dataclass(frozen=True)
class RunConfig:
    """Everything one ``vmatte run`` needs.

    input: the clip: a video file, a folder of frames or a printf pattern (frames/%06d.png).
    masks: folder of keyframe masks named by frame number (000120.png).
    outputs: one table per output; several outputs are decoded and matted once.
    frames: "START-END" inclusive clip frame numbers to render ("" = the whole clip).
    overwrite: replace existing outputs (otherwise an existing output is an error, exit 7).
    report: write a JSON run report to this path ("" = none), also on failure.
    progress: "auto" (a bar on a terminal, plain lines otherwise), "bar", "lines", "json" (one JSON object per
        line on stderr, for farm monitors) or "none".
    """

    input: str = ""
    masks: str = ""
    outputs: tuple[OutputConfig, ...] = (OutputConfig(),)
    frames: str = ""
    engine: EngineConfig = field(default_factory=EngineConfig)
    flow: FlowConfig = field(default_factory=FlowConfig)
    propagate: PropagateConfig = field(default_factory=PropagateConfig)
    smooth: SmoothConfig = field(default_factory=SmoothConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    overwrite: bool = False
    report: str = ""
    progress: Literal["auto", "bar", "lines", "json", "none"] = "auto"

    def replace(self, **changes) -> RunConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return to_dict(self)


_RANGE = re.compile(r"^\s*(\d+)\s*(?:[-:]\s*(\d+)\s*)?$")


def parse_frame_range(text: str) -> tuple[int, int] | None:
    """'START-END' (inclusive clip frame numbers) → (start, end); '' → None (whole clip)."""
    if not text:
        return None
    m = _RANGE.match(text)
    if not m:
        raise UsageError(f"--frames {text!r} is not START-END", hint="use e.g. --frames 100-199 (inclusive)")
    start = int(m.group(1))
    end = int(m.group(2)) if m.group(2) is not None else start
    if end < start:
        raise UsageError(f"--frames {text!r}: END is before START", hint="use START-END with START <= END")
    return start, end


def _preset_dir():
    return resources.files("pipelines")


def list_presets() -> dict[str, str]:
    """Preset name → its first comment line (description)."""
    out = {}
    for entry in sorted(_preset_dir().iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".toml"):
            text = entry.read_text(encoding="utf-8")
            first = next((ln for ln in text.splitlines() if ln.startswith("#")), "#")
            out[entry.name[:-5]] = first.lstrip("# ").strip()
    return out


def load_preset(name: str) -> dict:
    """Preset ``name`` (a file in pipelines/, shipped in the wheel) as a partial config dict."""
    names = list_presets()
    if name not in names:
        import difflib

        close = difflib.get_close_matches(name, list(names), n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"available: {', '.join(names)}"
        raise ConfigError(f"unknown pipeline preset '{name}'", hint=hint)
    import tomllib

    text = (_preset_dir() / f"{name}.toml").read_text(encoding="utf-8")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:  # a broken shipped preset is a bug, but say which
        raise ConfigError(f"pipelines/{name}.toml: not valid TOML ({exc})") from None


def _check_moved(layer: dict, source: str) -> None:
    """A key that moved to another section (``MOVED_KEYS``) is an error that names its new place."""
    for old, new in MOVED_KEYS.items():
        section, key = old.split(".")
        table = layer.get(section)
        if isinstance(table, dict) and (key in table or key.replace("_", "-") in table):
            sec, name = new.split(".")
            raise ConfigError(
                f"{source}: '{old}' moved to '{new}' (one motion estimate now serves propagation and smoothing)",
                hint=f"write it as [{sec}] {name} = {table.get(key, table.get(key.replace('_', '-')))!r}",
            )


def build_config(
    *,
    config_file: str | Path | None = None,
    preset: str | None = None,
    overrides: dict | None = None,
    overrides_source: str = "command line",
) -> RunConfig:
    """Compose a RunConfig: defaults < config file < preset < overrides (CLI flags, as a partial dict).

    ``overrides_source`` names the top layer in error messages (e.g. "request" for ``vmatte serve`` jobs).
    ``outputs`` is an array of tables and replaces as a whole; an ``[output]`` table (in a file, preset or
    overrides) patches every output instead, which is how flags like ``--premultiplied`` apply to all outputs.
    """
    layers: list[tuple[str, dict]] = []
    if config_file:
        layers.append((str(config_file), load_toml(config_file)))
    if preset:
        layers.append((f"pipelines/{preset}.toml", load_preset(preset)))
    if overrides:
        layers.append((overrides_source, overrides))

    merged: dict = {}
    output_patch: dict = {}
    for source, layer in layers:
        layer = dict(layer)
        patch = layer.pop("output", None)
        if patch is not None:
            if not isinstance(patch, dict):
                raise ConfigError(f"{source}: 'output' must be a table")
            from_dict(OutputConfig, patch, source=source, prefix="output.")  # validate keys early
            output_patch = deep_merge(output_patch, patch)
        _check_moved(layer, source)
        # validate each layer on its own so an unknown key names the file it came from
        from_dict(RunConfig, layer, source=source)
        merged = deep_merge(merged, layer)
    outputs = merged.get("outputs") or [{}]
    merged["outputs"] = [deep_merge(o, output_patch) for o in outputs]
    return from_dict(RunConfig, merged, source=layers[-1][0] if layers else "defaults")
