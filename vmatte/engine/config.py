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
    tile: long-side size in px above which frames are matted in overlapping tiles (0 = never tile).
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

    def __post_init__(self) -> None:
        if self.batch_size < 0:
            raise ValueError(f"batch_size must be >= 0, got {self.batch_size}")
        if self.tile < 0 or self.tile_overlap < 0:
            raise ValueError("tile and tile_overlap must be >= 0")
