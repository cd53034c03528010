"""Engine options (schema only; no torch import)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

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
        N = frames whose long side exceeds N px are matted in N-px tiles that overlap by 64 px (feathered blend,
        vmatte.engine.vitmatte.TILE_OVERLAP).
    hub_probe_timeout_s: the longest "auto"/"vitmatte" wait to learn whether the hub is reachable (0 = never probe:
        weights from the local cache or a folder only, as with HF_HUB_OFFLINE=1). A site-specific latency: nodes
        behind a slow proxy need more, offline nodes set 0 so no task waits on a probe.
    memory_budget_gb: cap this process's CUDA memory (0 = 90 % of what is free when the engine loads); batch size,
        tiling and out-of-memory back-off keep the run inside it.
    crop_threshold: vitmatte mattes a frame on a crop around its unknown band (plus 64 px of context,
        vmatte.engine.vitmatte.CROP_MARGIN) when that crop covers at most this fraction of the frame, several
        crops batched; whole frames otherwise. 0 = always whole frames.
    grow_band: where the matte reaches the edge of the unknown band (hair, fur, blur wider than the band),
        widen the band there by 1.25 % of the short side and matte the frame again, at most this many times
        ("auto": 1 with the classic engine, 0 with ViTMatte, not measured without its weights; 0 = never;
        vmatte.engine.band; keyframes keep their band). Costs an engine pass per step on the frames that
        need it.
    band_margin: matte this much more on both sides of the propagated band, as a fraction of the short side
        (so soft edges beyond the band are matted, not forced to 0 or 1), on every frame but trimap and soft
        keyframes (used as given); the classic engine holds the added pixels to the propagation's side (at a
        binary keyframe, the mask's) unless the colours say otherwise ("auto": 0.025 with the classic engine,
        12 px at 480p, rising up to 0.075 after a keyframe whose matte has a soft edge,
        vmatte.engine.band.softness; 0 with ViTMatte, not measured without its weights; 0 = off;
        vmatte.engine.band.MARGIN). A part gives up at most its outer half. The classic engine's cost grows
        with the band: 1.6x its CPU at 0.025 (DAVIS parkour, 854x480). A number is used on every frame: 0.05
        on every frame covers less of a soft edge than "auto" (composites of real GT mattes: soft pixels in
        the band 0.85 vs 0.86) and loses a little on thin lines next to a hard-edged subject (DAVIS
        paragliding-launch J 0.80 -> 0.79).
    prior: classic engine: how strongly the propagation's foreground probability pulls the unknown band's
        alpha towards the side it leans to, where the colours do not decide (a head in front of a wall of
        its colour; measured in vmatte.engine.classic). 0 = colour alone. ViTMatte reads the trimap only.

    The attention kernel is not an option: fused SDPA on CUDA, transformers' eager attention on CPU (same
    result; see ``vmatte.engine.vitmatte.VitMatteEngine``).
    """

    # keys of earlier versions, now constants of vmatte.engine.vitmatte (TILE_OVERLAP, CROP_MARGIN) or, for
    # attention, chosen by the device
    REMOVED: ClassVar[frozenset[str]] = frozenset({"tile_overlap", "crop_margin", "attention"})

    name: Literal["auto", "vitmatte", "classic"] = "auto"
    model: str = DEFAULT_MODEL
    device: str = "auto"
    precision: Literal["auto", "fp32", "fp16", "bf16"] = "auto"
    batch_size: int = 0
    compile: bool = False
    tile: int = 0
    hub_probe_timeout_s: float = 3.0
    memory_budget_gb: float = 0.0
    crop_threshold: float = 0.6
    grow_band: int | Literal["auto"] = "auto"
    band_margin: float | Literal["auto"] = "auto"
    prior: float = 0.03

    def __post_init__(self) -> None:
        if self.batch_size < 0:
            raise ValueError(f"batch_size must be >= 0, got {self.batch_size}")
        if self.tile < 0:
            raise ValueError(f"tile must be >= 0, got {self.tile}")
        if self.tile and self.tile < 64:
            raise ValueError(f"tile must be 0 (automatic) or >= 64 px, got {self.tile}")
        if self.hub_probe_timeout_s < 0 or self.memory_budget_gb < 0:
            raise ValueError("hub_probe_timeout_s and memory_budget_gb must be >= 0")
        if self.grow_band != "auto" and not (isinstance(self.grow_band, int) and 0 <= self.grow_band <= 8):
            raise ValueError(f'grow_band must be "auto" or an integer in [0, 8], got {self.grow_band!r}')
        if self.band_margin != "auto" and not (
            isinstance(self.band_margin, (int, float)) and 0.0 <= self.band_margin <= 0.2
        ):
            raise ValueError(
                f'band_margin must be "auto" or a fraction in [0, 0.2], got {self.band_margin!r}'
            )
        if not 0.0 <= self.prior <= 100.0:
            raise ValueError(f"prior must be in [0, 100], got {self.prior}")
        if not 0.0 <= self.crop_threshold <= 1.0:
            raise ValueError(f"crop_threshold must be in [0, 1], got {self.crop_threshold}")
