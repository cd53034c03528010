"""Engine options (schema only; no torch import)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

DEFAULT_MODEL = "hustvl/vitmatte-small-composition-1k"


@dataclass(frozen=True)
class EngineConfig:
    """How alpha is estimated from (rgb, trimap).

    name: "auto" (vitmatte if weights resolve offline, else classic with a warning), "vitmatte", "classic".
    model: hub id, local directory saved by ``save_pretrained``, or an original hustvl checkpoint file (.pth).
    device: "auto" (cuda if available), "cpu", "cuda", "cuda:N".
    precision: "auto" (bf16 on CUDA with bf16 support, fp16 on other CUDA, fp32 on CPU), "fp32", "fp16", "bf16".
    batch_size: frames per forward pass; 0 picks one from free device memory and frame size.
    compile: torch.compile the model (CUDA only pays off for long clips; compile time reported separately).
    tile: 0 = tile only frames that would not fit the device memory budget even at batch size 1 (never on CPU);
        N = frames whose long side exceeds N px are matted in overlapping N-px tiles (feathered blend).
    tile_overlap: px shared by neighbouring tiles.
    hub_probe_timeout_s: the longest "auto"/"vitmatte" wait to learn whether the hub is reachable (0 = never probe).
    attention: "sdpa" runs ViTDet attention through scaled_dot_product_attention with the relative position terms
        folded into queries/keys (same result, no N x N score matrix: large frames fit, fused GPU kernels);
        "eager" is transformers' own; "auto" = sdpa on CUDA, eager on CPU (where the wider q/k cost ~1.4x).
    memory_budget_gb: cap this process's CUDA memory (0 = 90 % of what is free when the engine loads); batch size,
        tiling and out-of-memory back-off keep the run inside it.
    crop_threshold: vitmatte mattes a frame on a crop around its unknown band (plus ``crop_margin`` px) when that
        crop covers at most this fraction of the frame, several crops batched; whole frames otherwise. 0 = always
        whole frames.
    crop_margin: px of context around the unknown band in a crop.
    """

    name: Literal["auto", "vitmatte", "classic"] = "auto"
    model: str = DEFAULT_MODEL
    device: str = "auto"
    precision: Literal["auto", "fp32", "fp16", "bf16"] = "auto"
    batch_size: int = 0
    compile: bool = False
    tile: int = 0
    tile_overlap: int = 64
    hub_probe_timeout_s: float = 3.0
    attention: Literal["auto", "sdpa", "eager"] = "auto"
    memory_budget_gb: float = 0.0
    crop_threshold: float = 0.6
    crop_margin: int = 64

    def __post_init__(self) -> None:
        if self.batch_size < 0:
            raise ValueError(f"batch_size must be >= 0, got {self.batch_size}")
        if self.tile < 0 or self.tile_overlap < 0:
            raise ValueError("tile and tile_overlap must be >= 0")
        if self.tile and self.tile < 64:
            raise ValueError(f"tile must be 0 (automatic) or >= 64 px, got {self.tile}")
        if self.attention not in ("auto", "sdpa", "eager"):
            raise ValueError(f"attention must be auto, sdpa or eager, got {self.attention!r}")
        if self.hub_probe_timeout_s < 0 or self.memory_budget_gb < 0:
            raise ValueError("hub_probe_timeout_s and memory_budget_gb must be >= 0")
        if not 0.0 <= self.crop_threshold <= 1.0 or self.crop_margin < 0:
            raise ValueError("crop_threshold must be in [0, 1] and crop_margin >= 0")
