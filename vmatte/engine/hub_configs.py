"""ViTMatte configurations matching the published hub checkpoints, and random models built from them.

Speed and memory do not depend on weight values, so benchmarks and tests use randomly initialised models with
the hub architectures (no download needed):

| name  | ViTDet hidden | layers | heads | decoder convstream / fusion        | params  | use                 |
|-------|---------------|--------|-------|------------------------------------|---------|---------------------|
| small | 384           | 12     | 6     | 48/96/192 / 256/128/64/32          | ~25.8 M | hustvl/vitmatte-small-* |
| base  | 768           | 12     | 12    | 48/96/192 / 256/128/64/32          | ~96.7 M | hustvl/vitmatte-base-*  |
| tiny  | 32            | 2      | 2     | 8/16/16 / 32/16/16/16              | ~0.1 M  | tests only              |

"tiny" keeps every structural feature of the real ones (4 input channels, patch 16, window attention in one block,
global attention + residual bottleneck in the other, relative position embeddings, absolute position embeddings
from a 224 px pretrain grid), so tests exercise the same code paths as the hub models.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

HUB_CONFIGS: dict[str, dict[str, Any]] = {
    "small": {
        "backbone": {
            "hidden_size": 384,
            "num_hidden_layers": 12,
            "num_attention_heads": 6,
            "mlp_ratio": 4,
            "window_size": 14,
            "window_block_indices": [0, 1, 3, 4, 6, 7, 9, 10],
            "residual_block_indices": [2, 5, 8, 11],
        },
        "convstream_hidden_sizes": [48, 96, 192],
        "fusion_hidden_sizes": [256, 128, 64, 32],
    },
    "base": {
        "backbone": {
            "hidden_size": 768,
            "num_hidden_layers": 12,
            "num_attention_heads": 12,
            "mlp_ratio": 4,
            "window_size": 14,
            "window_block_indices": [0, 1, 3, 4, 6, 7, 9, 10],
            "residual_block_indices": [2, 5, 8, 11],
        },
        "convstream_hidden_sizes": [48, 96, 192],
        "fusion_hidden_sizes": [256, 128, 64, 32],
    },
    "tiny": {
        "backbone": {
            "hidden_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "mlp_ratio": 2,
            "window_size": 14,
            "window_block_indices": [0],
            "residual_block_indices": [1],
        },
        "convstream_hidden_sizes": [8, 16, 16],
        "fusion_hidden_sizes": [32, 16, 16, 16],
    },
}


def hub_config(name: str):
    """``VitMatteConfig`` for ``name`` in {"small", "base", "tiny"} (imports transformers)."""
    from transformers import VitDetConfig, VitMatteConfig

    if name not in HUB_CONFIGS:
        raise ValueError(f"unknown ViTMatte config {name!r}: choose one of {', '.join(HUB_CONFIGS)}")
    spec = HUB_CONFIGS[name]
    bb = spec["backbone"]
    backbone = VitDetConfig(
        num_channels=4,  # RGB + trimap
        image_size=512,  # sets the size of the global blocks' relative position tables (interpolated at run time)
        pretrain_image_size=224,
        patch_size=16,
        hidden_size=bb["hidden_size"],
        num_hidden_layers=bb["num_hidden_layers"],
        num_attention_heads=bb["num_attention_heads"],
        mlp_ratio=bb["mlp_ratio"],
        use_absolute_position_embeddings=True,
        use_relative_position_embeddings=True,
        window_size=bb["window_size"],
        window_block_indices=list(bb["window_block_indices"]),
        residual_block_indices=list(bb["residual_block_indices"]),
        out_features=[f"stage{bb['num_hidden_layers']}"],
    )
    return VitMatteConfig(
        backbone_config=backbone,
        hidden_size=bb["hidden_size"],
        convstream_hidden_sizes=list(spec["convstream_hidden_sizes"]),
        fusion_hidden_sizes=list(spec["fusion_hidden_sizes"]),
    )


def random_model(name: str, seed: int = 0):
    """A randomly initialised ``VitMatteForImageMatting`` (eval mode, fp32, CPU) with the ``name`` architecture.

    BatchNorm running statistics are randomised too (HF init leaves mean 0 / var 1, which would make the decoder
    an identity-ish map and hide preprocessing bugs in parity tests).
    """
    import torch
    from transformers import VitMatteForImageMatting

    torch.manual_seed(seed)
    model = VitMatteForImageMatting(hub_config(name)).eval()
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                n = module.num_features
                module.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                module.running_var.copy_(torch.rand(n, generator=g) * 0.5 + 0.75)
                module.weight.copy_(1.0 + 0.1 * torch.randn(n, generator=g))
                module.bias.copy_(0.1 * torch.randn(n, generator=g))
            # HF initialises relative position tables to zero; random values make parity tests sensitive to them
            for pname in ("rel_pos_h", "rel_pos_w"):
                p = getattr(module, pname, None)
                if isinstance(p, torch.nn.Parameter):
                    p.copy_(0.02 * torch.randn(p.shape, generator=g))
        # Calibrate the last 1x1 conv so logits have std ~3 on a random input: with HF's small init every alpha
        # sits at 0.50 +- 0.001 and a parity test could not tell a preprocessing bug from rounding noise.
        x = torch.randn(1, 4, 64, 96, generator=g)
        x[:, 3] = torch.rand(1, 64, 96, generator=g)
        head = model.decoder.matting_head.matting_convs
        raw = head(_decoder_features(model, x)) - head[-1].bias.view(1, -1, 1, 1)
        k = 3.0 / max(float(raw.std()), 1e-12)
        head[-1].weight.mul_(k)
        head[-1].bias.fill_(-k * float(raw.mean()))
    return model


def _decoder_features(model, pixel_values):
    """(B, C, H, W) input of the matting head for ``pixel_values`` (B, 4, H, W)."""
    features = model.backbone(pixel_values).feature_maps[-1]
    dec = model.decoder
    detail = dec.convstream(pixel_values)
    for i, block in enumerate(dec.fusion_blocks):
        features = block(features, detail[f"detailed_feature_map_{len(dec.fusion_blocks) - i - 1}"])
    return features


def save_random_model(directory: str | Path, name: str = "tiny", seed: int = 0) -> Path:
    """Save ``random_model(name, seed)`` with ``save_pretrained`` (config.json + model.safetensors) into ``directory``.

    Returns the directory. It loads through exactly the path users take for a local model directory.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    random_model(name, seed).save_pretrained(directory, safe_serialization=True)
    return directory
