"""Where SAM 2 video weights come from and how they load (for :mod:`vmatte.propagate.sam2`).

Resolution is the ViTMatte engine's own (:func:`vmatte.engine.weights.resolve_weights`: a local folder, the HF
cache, then a bounded hub probe); this module adds SAM 2's messages and a loader that checks the architecture.
Only ``from_pretrained`` with ``local_files_only`` and safetensors / plain state dicts, never ``trust_remote_code``.
"""

from __future__ import annotations

import json
from pathlib import Path

from vmatte.engine.weights import (
    DOWNLOAD_COMMAND,
    WeightsSource,
    hub_cache_dir,
    hub_offline,
    looks_like_hub_id,
)
from vmatte.errors import ModelError, say

DEFAULT_MODEL = "facebook/sam2.1-hiera-tiny"
_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")


def get_sam2_hint(model: str) -> str:
    """What to do when SAM 2 weights are missing (for errors and the auto fallback warning)."""
    hub = model if looks_like_hub_id(model) else DEFAULT_MODEL
    cmd = DOWNLOAD_COMMAND.format(model=hub)
    local = say("pass --propagator-model DIR", "set PropagateConfig(propagator_model=DIR)")
    flow = say("use --propagator flow", "use PropagateConfig(propagator='flow')")
    return f"download it with `{cmd}` (then it is found in the HF cache offline), {local} (a save_pretrained folder), or {flow}"


def sam2_unavailable(model: str) -> str:
    """One line saying why SAM 2 weights ``model`` could not be found."""
    if looks_like_hub_id(model):
        where = "offline" if hub_offline() else "the hub did not answer"
        return f"SAM 2 weights '{model}' are not in the Hugging Face cache ({hub_cache_dir()}) and {where}"
    return f"SAM 2 weights '{model}' not found (no such folder)"


def load_sam2(source: WeightsSource):
    """``source`` → eval-mode ``Sam2VideoModel`` on the CPU (fp32). Raises ModelError (one line)."""
    folder = Path(source.location)
    if source.kind == "hub":
        from huggingface_hub import snapshot_download

        try:
            folder = Path(
                snapshot_download(
                    source.location, allow_patterns=["config.json", *_WEIGHT_FILES, "*.safetensors"]
                )
            )
        except Exception as exc:
            raise ModelError(
                f"could not download SAM 2 weights '{source.location}' ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0][:160] if str(exc) else ''})",
                hint=get_sam2_hint(source.model),
            ) from None
    cfg_path = folder / "config.json"
    if not cfg_path.is_file():
        raise ModelError(
            f"{folder} has no config.json: not a save_pretrained folder", hint=get_sam2_hint(source.model)
        )
    try:
        model_type = json.loads(cfg_path.read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError) as exc:
        raise ModelError(f"{cfg_path} is not valid JSON ({exc})") from None
    if model_type not in ("sam2_video", "sam2"):
        raise ModelError(
            f"{folder} holds a '{model_type}' model, not SAM 2 (config.json model_type)",
            hint=f"pass SAM 2 video weights such as {DEFAULT_MODEL}",
        )
    if not any((folder / n).is_file() for n in _WEIGHT_FILES):
        raise ModelError(f"{folder} has config.json but no weights (model.safetensors or pytorch_model.bin)")
    try:
        from transformers import Sam2VideoModel
    except ImportError:
        import transformers

        raise ModelError(
            f"transformers {transformers.__version__} has no Sam2VideoModel",
            hint="pip install 'transformers>=4.56' or use --propagator flow",
        ) from None
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # missing keys are reported below as a ModelError instead
    try:
        model, info = Sam2VideoModel.from_pretrained(
            str(folder), local_files_only=True, output_loading_info=True, trust_remote_code=False
        )
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise ModelError(
            f"could not load SAM 2 from {folder}: {type(exc).__name__}: {first}",
            hint="the weights file may be truncated or corrupt: download it again",
        ) from None
    finally:
        hf_logging.set_verbosity(verbosity)
    missing, mismatched = info.get("missing_keys", []), info.get("mismatched_keys", [])
    if missing or mismatched:
        raise ModelError(
            f"{folder}: weights do not match the SAM 2 video architecture in config.json "
            f"({len(missing)} missing, {len(mismatched)} mismatched, e.g. {(list(missing) or list(mismatched))[0]})",
            hint="image-only SAM 2 checkpoints lack the memory modules: use a video checkpoint",
        )
    return model.eval()
