"""Matting engines: frames with a trimap in, frames with alpha out (see ``base.py`` for the protocol).

    load_engine(cfg, on_warning=print) -> Engine    # "auto" | "vitmatte" | "classic"
    resolve_weights(model) -> WeightsSource | None  # where ViTMatte weights would come from (cheap, no torch)
    device_summary() -> dict                        # torch / CUDA state for ``vmatte info``

Importing this package does not import torch (the CLI imports it); engines import torch when they are built.
"""

from __future__ import annotations

from collections.abc import Callable

from vmatte.engine.base import BatchingEngine, Engine, FakeEngine
from vmatte.engine.config import DEFAULT_MODEL, EngineConfig
from vmatte.engine.weights import WeightsSource, get_vitmatte_hint, resolve_weights, unavailable_message
from vmatte.errors import ModelError, UsageError
from vmatte.pipeline.threads import cap_torch

__all__ = [
    "DEFAULT_MODEL",
    "BatchingEngine",
    "Engine",
    "EngineConfig",
    "FakeEngine",
    "VmatteWarning",
    "WeightsSource",
    "device_summary",
    "load_engine",
    "resolve_weights",
]


def load_engine(
    cfg: EngineConfig | None = None,
    *,
    on_warning: Callable[[str], None] | None = None,
    on_info: Callable[[str], None] | None = None,
) -> BatchingEngine:
    """Build the engine ``cfg`` asks for.

    "auto": ViTMatte when its weights resolve (local path, HF cache, or the hub answers a short probe), else the
    classic engine with exactly one warning (through ``on_warning``) saying how to get ViTMatte.
    "vitmatte": never falls back; raises ModelError at once when weights cannot be had (no 40 s hub retries).
    "classic": closed-form matting, no weights.

    Warnings are also kept on the engine (``engine.load_warnings``) so every :func:`vmatte.run` that reuses it
    reports them; without ``on_warning`` they are issued as Python warnings (:class:`VmatteWarning`), never
    dropped. ``on_info`` receives notes such as the classic engine's one-time compile.
    """
    cfg = cfg or EngineConfig()
    said: list[str] = []

    def warn(message: str) -> None:
        said.append(message)
        if on_warning is not None:
            on_warning(message)
        else:
            import warnings

            warnings.warn(message, VmatteWarning, stacklevel=3)

    engine = _load(cfg, warn, on_info)
    engine.load_warnings = tuple(said)  # type: ignore[attr-defined]
    from vmatte.engine import band

    engine.grow_steps = band.steps_for(engine.name) if cfg.grow_band == "auto" else cfg.grow_band
    engine.band_margin = band.margin_for(engine.name) if cfg.band_margin == "auto" else cfg.band_margin
    engine.soft_margin = band.soft_margin_for(engine.name) if cfg.band_margin == "auto" else 0.0
    # torch may have loaded just now, inside a run's thread plan: its pool is sized for the engine's device
    cap_torch(str(getattr(engine, "device", "cpu")))
    return engine


class VmatteWarning(UserWarning):
    """A Python warning issued by vmatte's API where no ``on_warning`` callback was given."""


def _load(cfg: EngineConfig, on_warning: Callable[[str], None], on_info) -> BatchingEngine:
    if cfg.name == "classic":
        return _classic(cfg, on_info)
    if cfg.name not in ("auto", "vitmatte"):
        raise UsageError(f"unknown engine '{cfg.name}'", hint="use auto, vitmatte or classic")
    source = resolve_weights(cfg.model, probe_timeout_s=cfg.hub_probe_timeout_s)
    if source is None:
        reason = unavailable_message(cfg.model)
        if cfg.name == "vitmatte":
            raise ModelError(reason, hint=get_vitmatte_hint(cfg.model))
        on_warning(
            f"{reason}: using the classic (closed-form) engine; for ViTMatte {get_vitmatte_hint(cfg.model)}"
        )
        return _classic(cfg, on_info)
    return _vitmatte(cfg, source)


def _classic(cfg: EngineConfig, on_info=None) -> BatchingEngine:
    from vmatte.engine.classic import ClassicEngine, warm_up

    warm_up(on_info)  # numba compiles here on a first run, not inside the first frame's timing
    return ClassicEngine(prior=cfg.prior)


def _vitmatte(cfg: EngineConfig, source: WeightsSource) -> BatchingEngine:
    from vmatte.engine.vitmatte import VitMatteEngine
    from vmatte.engine.weights import load_model

    model = load_model(source)
    return VitMatteEngine(
        model,
        device=cfg.device,
        precision=cfg.precision,
        batch_size=cfg.batch_size,
        tile=cfg.tile,
        compile=cfg.compile,
        memory_budget_gb=cfg.memory_budget_gb,
        crop_threshold=cfg.crop_threshold,
        source=source.describe(),
    )


def device_summary() -> dict:
    """torch / CUDA state (versions, GPUs with free memory, bf16 support); {"torch": None} if torch is missing."""
    try:
        from vmatte.engine.cuda import describe_devices
    except ImportError as exc:
        return {"torch": None, "error": str(exc)}
    return describe_devices()
