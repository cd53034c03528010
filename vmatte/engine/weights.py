"""Where ViTMatte weights come from, found without waiting on the network, and loaded without running code.

:func:`resolve_weights` is cheap (no torch import): it checks, in order, a local directory saved with
``save_pretrained``, a checkpoint file (an original hustvl ``.pth`` or a ``.safetensors`` state dict), the Hugging
Face cache, and finally whether the hub answers within a short bounded probe. ``from_pretrained`` of a hub id with
no network retries for ~40 s; we never call it unless the probe succeeded.

:func:`load_model` turns a :class:`WeightsSource` into an eval-mode ``VitMatteForImageMatting`` on the CPU. Only
safetensors and ``torch.load(weights_only=True)`` are used, never ``trust_remote_code``; every failure is a one-line
:class:`~vmatte.errors.ModelError`.
"""

from __future__ import annotations

import json
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from vmatte.errors import ModelError, say
from vmatte.pipeline.threads import run_in_thread

_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*/[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
_CHECKPOINT_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt", ".safetensors")
# huggingface_hub's CLI is `hf` (its old name is gone from the versions we install; a test checks both)
DOWNLOAD_COMMAND = "hf download {model}"


def get_vitmatte_hint(model: str = "hustvl/vitmatte-small-composition-1k") -> str:
    """How to get ``model``'s weights: the ``hf download`` command for a hub id, else a local folder."""
    if looks_like_hub_id(model):
        cmd = DOWNLOAD_COMMAND.format(model=model)
        model_dir = say("pass --model DIR", "pass EngineConfig(model=DIR)")
        return f"download it with `{cmd}` (then it is found in the HF cache offline) or {model_dir}"
    return (
        say("pass --model", "pass EngineConfig(model=...)")
        + " a save_pretrained folder or a ViTMatte checkpoint file"
    )


@dataclass(frozen=True)
class WeightsSource:
    """Where weights will be read from.

    kind: "dir" (a save_pretrained folder), "checkpoint" (a single state-dict file: original hustvl .pth or
        .safetensors), "hub-cache" (a snapshot folder in the HF cache), "hub" (download; the hub answered a probe).
    location: the folder or file path, or the hub id for "hub".
    model: what the user asked for (hub id or path), for messages.
    """

    kind: Literal["dir", "checkpoint", "hub-cache", "hub"]
    location: str
    model: str

    def describe(self) -> str:
        return {
            "dir": f"local folder {self.location}",
            "checkpoint": f"checkpoint file {self.location}",
            "hub-cache": f"Hugging Face cache {self.location}",
            "hub": f"download from the hub ({self.location})",
        }[self.kind]


def looks_like_hub_id(model: str) -> bool:
    """True for 'org/name' strings that are not an existing path."""
    return bool(_HUB_ID.match(model)) and not Path(model).exists()


def hub_cache_dir() -> Path:
    """The HF hub cache folder, read from the environment on every call (tests and users may change it)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "huggingface")
    return Path(home) / "hub"


def _cached_snapshot(repo_id: str) -> Path | None:
    """Snapshot folder in the HF cache that holds config.json and weights for ``repo_id``, else None."""
    from huggingface_hub import try_to_load_from_cache

    cache = str(hub_cache_dir())
    cfg = try_to_load_from_cache(repo_id, "config.json", cache_dir=cache)
    if not isinstance(cfg, str):
        return None
    for name in _WEIGHT_FILES:
        hit = try_to_load_from_cache(repo_id, name, cache_dir=cache)
        if isinstance(hit, str):
            return Path(cfg).parent
    return None


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def probe_hub(timeout_s: float) -> bool:
    """True if the hub endpoint accepts a TCP connection within ``timeout_s`` seconds (DNS included).

    Runs in a daemon thread joined with a timeout because ``getaddrinfo`` ignores socket timeouts.
    """
    if hub_offline() or timeout_s <= 0:
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    host, port = url.hostname or "huggingface.co", url.port or (443 if url.scheme == "https" else 80)

    def attempt() -> bool:
        try:
            with socket.create_connection((host, port), timeout=timeout_s):
                return True
        except OSError:
            return False

    try:
        return run_in_thread(attempt, name="hub-probe")(timeout_s)
    except TimeoutError:
        return False


def resolve_weights(model: str, *, probe_timeout_s: float = 3.0) -> WeightsSource | None:
    """Find weights for ``model`` (hub id, folder or checkpoint file) without loading them; None if unavailable.

    Never waits on the network longer than ``probe_timeout_s`` (0 = never probe). Does not import torch.
    A path that exists is returned as is (whether it is valid is for :func:`load_model` to say).
    """
    p = Path(model).expanduser()
    if p.is_dir():
        return WeightsSource("dir", str(p), model)
    if p.is_file():
        return WeightsSource("checkpoint", str(p), model)
    if not looks_like_hub_id(model):
        return None
    snap = _cached_snapshot(model)
    if snap is not None:
        return WeightsSource("hub-cache", str(snap), model)
    if probe_hub(probe_timeout_s):
        return WeightsSource("hub", model, model)
    return None


def unavailable_message(model: str) -> str:
    """One line saying why ``model`` could not be found (for the ModelError and the auto-fallback warning)."""
    if looks_like_hub_id(model):
        where = "offline" if hub_offline() else "the hub did not answer"
        return f"ViTMatte weights '{model}' are not in the Hugging Face cache ({hub_cache_dir()}) and {where}"
    return f"ViTMatte weights '{model}' not found (no such file or folder)"


# -- loading (imports torch) -------------------------------------------------------------------------------
def load_model(source: WeightsSource):
    """Load ``source`` → eval-mode fp32 ``VitMatteForImageMatting`` on the CPU. Raises ModelError (one line)."""
    if source.kind == "checkpoint":
        return _load_checkpoint_file(Path(source.location))
    if source.kind in ("dir", "hub-cache"):
        return _load_pretrained_dir(Path(source.location))
    return _load_from_hub(source.location)


def _load_from_hub(repo_id: str):
    from huggingface_hub import snapshot_download

    try:
        folder = snapshot_download(repo_id, allow_patterns=["config.json", *_WEIGHT_FILES, "*.safetensors"])
    except Exception as exc:
        raise ModelError(
            f"could not download '{repo_id}' ({type(exc).__name__}: {str(exc).splitlines()[0][:160]})",
            hint=get_vitmatte_hint(repo_id),
        ) from None
    return _load_pretrained_dir(Path(folder))


def _load_pretrained_dir(folder: Path):
    cfg_path = folder / "config.json"
    if not cfg_path.is_file():
        ckpts = (
            sorted(q for q in folder.iterdir() if q.suffix in _CHECKPOINT_SUFFIXES) if folder.is_dir() else []
        )
        if len(ckpts) == 1:  # a folder holding just one original checkpoint
            return _load_checkpoint_file(ckpts[0])
        raise ModelError(
            f"{folder} has no config.json: not a save_pretrained folder",
            hint="pass a folder saved with save_pretrained, a .pth/.safetensors checkpoint, or a hub id",
        )
    try:
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{cfg_path} is not valid JSON ({exc})") from None
    model_type = cfg.get("model_type")
    if model_type != "vitmatte":
        raise ModelError(
            f"{folder} holds a '{model_type}' model, not ViTMatte (config.json model_type)",
            hint="pass a ViTMatte checkpoint such as hustvl/vitmatte-small-composition-1k",
        )
    if not any((folder / n).is_file() for n in _WEIGHT_FILES):
        raise ModelError(f"{folder} has config.json but no weights (model.safetensors or pytorch_model.bin)")
    from transformers import VitMatteForImageMatting
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # missing keys are checked below and reported as a ModelError instead
    try:
        model, info = VitMatteForImageMatting.from_pretrained(
            str(folder), local_files_only=True, output_loading_info=True, trust_remote_code=False
        )
    except Exception as exc:
        raise ModelError(
            f"could not load ViTMatte from {folder}: {type(exc).__name__}: {_first_line(exc)}",
            hint="the weights file may be truncated or corrupt: download it again",
        ) from None
    finally:
        hf_logging.set_verbosity(verbosity)
    missing = [k for k in info.get("missing_keys", []) if not k.endswith("num_batches_tracked")]
    mismatched = info.get("mismatched_keys", [])
    if missing or mismatched:
        raise ModelError(
            f"{folder}: weights do not match the ViTMatte architecture in config.json "
            f"({len(missing)} missing, {len(mismatched)} mismatched, e.g. {(missing or mismatched)[0]})"
        )
    return model.eval()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else ""


def read_state_dict(path: Path) -> dict[str, Any]:
    """Tensors from a checkpoint file, never executing code. Unwraps {"model": ...}/{"state_dict": ...}."""
    import pickle

    import torch

    if not path.is_file():
        raise ModelError(f"checkpoint {path} not found")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd: Any = load_file(str(path), device="cpu")
        else:
            sd = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # weights_only refuses pickles that reference arbitrary callables (e.g. os.system via __reduce__)
        what = _first_line(exc).split("WeightsUnpickler error:")[-1].strip()[:160]
        raise ModelError(
            f"refused to load {path}: it is not a plain tensor checkpoint and could run code when unpickled ({what})",
            hint="only load checkpoints from sources you trust; prefer .safetensors",
        ) from None
    except Exception as exc:
        raise ModelError(
            f"checkpoint {path} is unreadable ({type(exc).__name__}: {_first_line(exc)})",
            hint="the file may be truncated or corrupt: download it again",
        ) from None
    for wrapper in ("model", "state_dict", "module"):
        if isinstance(sd, dict) and isinstance(sd.get(wrapper), dict):
            sd = sd[wrapper]
    if not isinstance(sd, dict) or not sd or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise ModelError(f"checkpoint {path} does not hold a state dict of tensors")
    return sd


# Original hustvl/ViTMatte (detectron2-style) → transformers names, as in transformers' convert_vitmatte_to_hf.py:
# substring renames applied to every key, then whole-key renames for the patch embedding stem.
_SUBSTRING_RENAMES = (
    ("backbone.blocks", "backbone.encoder.layer"),
    ("attn", "attention"),
    ("fusion_blks", "fusion_blocks"),
    ("bn", "batch_norm"),
)
_KEY_RENAMES = {
    "backbone.pos_embed": "backbone.embeddings.position_embeddings",
    "backbone.patch_embed.proj.weight": "backbone.embeddings.projection.weight",
    "backbone.patch_embed.proj.bias": "backbone.embeddings.projection.bias",
}


def original_to_hf(sd: dict[str, Any]) -> dict[str, Any]:
    """Rename an original hustvl ViTMatte state dict to transformers' key names (tensors are shared, not copied)."""
    out = {}
    for key, val in sd.items():
        key = _KEY_RENAMES.get(key, key)
        for old, new in _SUBSTRING_RENAMES:
            if old in key and new not in key:
                key = key.replace(old, new)
        out[key] = val
    return out


def hf_to_original(sd: dict[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`original_to_hf` (used by tests to fabricate original-style checkpoints)."""
    inverse_keys = {v: k for k, v in _KEY_RENAMES.items()}
    out = {}
    for key, val in sd.items():
        if key in inverse_keys:
            key = inverse_keys[key]
        else:
            for old, new in _SUBSTRING_RENAMES:
                key = key.replace(new, old)
        out[key] = val
    return out


def config_from_state_dict(sd: dict[str, Any]):
    """Infer a ``VitMatteConfig`` from transformers-named tensors (works for small, base and any other size).

    hidden size ← position embeddings; layers ← block indices; head dim ← relative position tables; window vs
    global blocks ← table length (2*14-1 for window 14); residual blocks ← presence of bottleneck convs; decoder
    widths ← conv weights.
    """
    from transformers import VitDetConfig, VitMatteConfig

    def get(k):
        if k not in sd:
            raise ModelError(f"not a ViTMatte checkpoint: tensor '{k}' is missing")
        return sd[k]

    pos = get("backbone.embeddings.position_embeddings")  # (1, 1 + (pretrain/patch)^2, hidden)
    proj = get("backbone.embeddings.projection.weight")  # (hidden, channels, patch, patch)
    hidden, channels, patch = int(pos.shape[-1]), int(proj.shape[1]), int(proj.shape[-1])
    grid = round((pos.shape[1] - 1) ** 0.5)
    layer_ids = sorted(
        {int(m.group(1)) for k in sd if (m := re.match(r"backbone\.encoder\.layer\.(\d+)\.", k))}
    )
    if not layer_ids or layer_ids != list(range(len(layer_ids))):
        raise ModelError("not a ViTMatte checkpoint: backbone blocks are missing or not numbered 0..N-1")
    window_blocks, residual_blocks, window_size, head_dim = [], [], 0, None
    for i in layer_ids:
        rel = sd.get(f"backbone.encoder.layer.{i}.attention.rel_pos_h")
        if rel is not None:
            head_dim = int(rel.shape[1])
            size = (int(rel.shape[0]) + 1) // 2
            # global blocks' tables are sized for image_size/patch (32 at 512 px); window blocks' for the window
            if size != 512 // patch:
                window_blocks.append(i)
                window_size = size
        if f"backbone.encoder.layer.{i}.residual.conv1.weight" in sd:
            residual_blocks.append(i)
    if head_dim is None:
        raise ModelError("not a ViTMatte checkpoint: no relative position tables in the backbone")
    convs = sorted(
        (int(m.group(1)), int(v.shape[0]))
        for k, v in sd.items()
        if (m := re.match(r"decoder\.convstream\.convs\.(\d+)\.conv\.weight$", k))
    )
    fusions = sorted(
        (int(m.group(1)), int(v.shape[0]))
        for k, v in sd.items()
        if (m := re.match(r"decoder\.fusion_blocks\.(\d+)\.conv\.conv\.weight$", k))
    )
    if not convs or not fusions:
        raise ModelError("not a ViTMatte checkpoint: the detail-capture decoder is missing")
    mlp = sd.get("backbone.encoder.layer.0.mlp.fc1.weight")
    backbone = VitDetConfig(
        num_channels=channels,
        image_size=512,
        pretrain_image_size=grid * patch,
        patch_size=patch,
        hidden_size=hidden,
        num_hidden_layers=len(layer_ids),
        num_attention_heads=hidden // head_dim,
        mlp_ratio=int(mlp.shape[0] // hidden) if mlp is not None else 4,
        use_absolute_position_embeddings=True,
        use_relative_position_embeddings=True,
        window_size=window_size,
        window_block_indices=window_blocks,
        residual_block_indices=residual_blocks,
        out_features=[f"stage{len(layer_ids)}"],
    )
    return VitMatteConfig(
        backbone_config=backbone,
        hidden_size=hidden,
        convstream_hidden_sizes=[c for _, c in convs],
        fusion_hidden_sizes=[c for _, c in fusions],
    )


def _load_checkpoint_file(path: Path):
    """A single-file state dict: original hustvl naming (converted on the fly) or transformers naming."""
    from transformers import VitMatteForImageMatting

    sd = read_state_dict(path)
    if not any(k.startswith("backbone.encoder.layer.") for k in sd):
        if not any(k.startswith(("backbone.blocks.", "backbone.pos_embed")) for k in sd):
            raise ModelError(
                f"{path} is not a ViTMatte checkpoint (no ViT backbone tensors; first key '{next(iter(sd))}')",
                hint="pass an original hustvl ViTMatte .pth, a transformers ViTMatte folder, or a hub id",
            )
        sd = original_to_hf(sd)
    config = config_from_state_dict(sd)
    model = VitMatteForImageMatting(config)
    try:
        result = model.load_state_dict(sd, strict=False)
    except RuntimeError as exc:  # shape mismatches
        raise ModelError(f"{path} does not match the ViTMatte architecture ({_first_line(exc)})") from None
    missing = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
    if missing or result.unexpected_keys:
        example = (missing or result.unexpected_keys)[0]
        raise ModelError(
            f"{path} does not match the ViTMatte architecture ({len(missing)} missing, "
            f"{len(result.unexpected_keys)} unexpected tensors, e.g. '{example}')"
        )
    return model.eval()
