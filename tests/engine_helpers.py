"""Helpers shared by the ViTMatte engine tests (tests/test_engine_vitmatte.py on the CPU, tests/test_gpu.py)."""

from __future__ import annotations

from pathlib import Path

ENGINE_CONSTANTS = ("tile_overlap", "attention", "crop_margin")  # VitMatteEngine arguments, not EngineConfig


def make_vitmatte(model_dir: Path | str, **kw):
    """A VitMatteEngine for the model saved in ``model_dir``, loaded as a user's would be (``load_engine``),
    whole frames unless ``crop_threshold`` is given. The built-in constants (ENGINE_CONSTANTS) are run
    constants, not config options: with any of them the engine is built by its constructor instead."""
    from vmatte.engine import EngineConfig, load_engine

    kw.setdefault("crop_threshold", 0.0)  # whole frames: the tests compare with transformers' full-frame path
    const = {k: kw.pop(k) for k in ENGINE_CONSTANTS if k in kw}
    if not const:
        return load_engine(EngineConfig(name="vitmatte", model=str(model_dir), **kw))
    from vmatte.engine.vitmatte import VitMatteEngine
    from vmatte.engine.weights import WeightsSource, load_model

    source = WeightsSource("dir", str(model_dir), str(model_dir))
    return VitMatteEngine(load_model(source), **kw, **const)
