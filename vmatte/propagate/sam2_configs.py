"""Randomly initialised SAM 2 video models for tests and speed figures (speed does not depend on weight values).

``save_random_sam2(folder, "test")`` writes a ``save_pretrained`` folder that loads through the same path as a
user's weights (``--propagator-model FOLDER``). Shapes:

- "test": input 128 px, Hiera hidden 32, blocks [1, 2, 2, 1], dims [32, 64, 128, 256], heads [1, 1, 2, 2],
  windows [8, 4, 4, 4], global block [4], FPN / mask decoder / memory attention 128 (1 layer), memory encoder
  128 with 64 output channels (hard-coded by the architecture), 3 memory slots, 4 object pointers (so a session's
  window, 4 frames, fills within a few frames): ~2.5 M parameters, a few frames per second on 2 idle CPU cores. Smaller than FACTS.md's 256 px config so the tests stay short.
- "hiera-tiny": transformers' ``Sam2VideoConfig()`` defaults, which are facebook/sam2.1-hiera-tiny's shape
  (1024 px, Hiera [1, 2, 7, 2] x 96..768, memory attention 4 x 256, 7 memory slots).

Random weights put the object-score logit near 0, so the model would call the object absent on every tracked
frame and return empty masks; ``present_bias`` sets that head's last bias so the object is seen and the masks
carry the (random) decoder's logits, which exercises the whole path.
"""

from __future__ import annotations

from pathlib import Path


def sam2_config(name: str = "test"):
    """A ``Sam2VideoConfig`` by name ("test" or "hiera-tiny")."""
    from transformers import Sam2VideoConfig

    if name == "hiera-tiny":
        return Sam2VideoConfig()
    if name != "test":
        raise ValueError(f"unknown SAM 2 test config {name!r}: test or hiera-tiny")
    from transformers.models.sam2.configuration_sam2 import Sam2HieraDetConfig, Sam2VisionConfig

    size = 128
    backbone = Sam2HieraDetConfig(
        hidden_size=32,
        num_attention_heads=1,
        image_size=[size, size],
        blocks_per_stage=[1, 2, 2, 1],
        embed_dim_per_stage=[32, 64, 128, 256],
        num_attention_heads_per_stage=[1, 1, 2, 2],
        window_size_per_stage=[8, 4, 4, 4],
        global_attention_blocks=[4],
        window_positional_embedding_background_size=[4, 4],
    )
    vision = Sam2VisionConfig(
        backbone_config=backbone,
        backbone_channel_list=[256, 128, 64, 32],
        backbone_feature_sizes=[[size // 4] * 2, [size // 8] * 2, [size // 16] * 2],
        fpn_hidden_size=128,
    )
    return Sam2VideoConfig(
        vision_config=vision,
        prompt_encoder_config={
            "hidden_size": 128,
            "image_size": size,
            "patch_size": 16,
            "mask_input_channels": 16,
        },
        mask_decoder_config={
            "hidden_size": 128,
            "mlp_dim": 256,
            "num_attention_heads": 4,
            "iou_head_hidden_dim": 128,
        },
        image_size=size,
        num_maskmem=3,
        memory_attention_hidden_size=128,
        memory_attention_num_layers=1,
        memory_attention_feed_forward_hidden_size=256,
        memory_attention_rope_feat_sizes=[size // 16] * 2,
        memory_encoder_hidden_size=128,
        mask_downsampler_embed_dim=128,
        memory_fuser_embed_dim=128,
        memory_fuser_intermediate_dim=256,
        max_object_pointers_in_encoder=4,
    )


def save_random_sam2(
    folder: str | Path, name: str = "test", *, seed: int = 0, present_bias: float = 3.0
) -> Path:
    """Save a randomly initialised ``Sam2VideoModel`` of config ``name`` to ``folder`` (save_pretrained)."""
    import torch
    from transformers import Sam2VideoModel

    torch.manual_seed(seed)
    model = Sam2VideoModel(sam2_config(name)).eval()
    with torch.no_grad():
        model.mask_decoder.pred_obj_score_head.proj_out.bias.fill_(present_bias)
    folder = Path(folder)
    model.save_pretrained(folder)
    return folder
