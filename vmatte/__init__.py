"""vmatte: clean alpha mattes for video from a few keyframe masks.

    decode → propagate (trimaps) → matte (engine) → smooth (temporal) → encode

Importing this package pulls in neither torch nor av; heavy modules load on first use.

Python API (for farm wrappers and editing-tool plugins)::

    import vmatte
    engine = vmatte.load_engine(vmatte.EngineConfig(name="vitmatte"))      # load once
    for clip in clips:
        cfg = vmatte.RunConfig(input=clip, masks=f"{clip}.masks", outputs=(vmatte.OutputConfig(path=...),))
        report = vmatte.run(cfg, engine=engine, on_progress=print, cancel=my_threading_event)
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from vmatte.config import EngineConfig, OutputConfig, PropagateConfig, RunConfig, SmoothConfig, build_config
from vmatte.errors import VmatteError
from vmatte.frame import Frame

__version__ = "0.1.0"

# Library code reports through the run report and exceptions; logging stays silent unless the application
# configures it (without this, Python's last-resort handler would print warnings a second time).
logging.getLogger("vmatte").addHandler(logging.NullHandler())

__all__ = [
    "EngineConfig",
    "Frame",
    "OutputConfig",
    "PropagateConfig",
    "RunConfig",
    "SmoothConfig",
    "VmatteError",
    "__version__",
    "build_config",
    "load_engine",
    "run",
]

if TYPE_CHECKING:
    from vmatte.engine.base import Engine
    from vmatte.pipeline.report import Report


def run(config: RunConfig, engine: Engine | None = None, on_progress=None, cancel=None) -> Report:
    """Run the whole chain for one clip; see :func:`vmatte.pipeline.runner.run`."""
    from vmatte.pipeline.runner import run as _run

    return _run(config, engine=engine, on_progress=on_progress, cancel=cancel)


def load_engine(config: EngineConfig | None = None, *, on_warning=None) -> Engine:
    """Load an engine once (e.g. the ViTMatte model) to reuse across many :func:`run` calls.

    ``on_warning(message: str)`` receives warnings such as the auto engine falling back to classic."""
    from vmatte.engine import load_engine as _load

    return _load(config or EngineConfig(), on_warning=on_warning)
