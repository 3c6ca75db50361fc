"""LLaVA family: LLaVA (CLIP tower, Llama decoder), LLaVA-NeXT and LLaVA-OneVision (anyres tiling)."""

from __future__ import annotations

import torch

from .configs import build, clip_tower, decoder, siglip_tower
from .ids import LLAVA_IMAGE, QWEN_VIDEO, VOCAB

PINPOINTS = [[28, 56], [56, 28], [56, 56]]  # anyres grid resolutions (height, width)


def tiny_llava(
    seed: int = 0,
    n_layers: int = 3,
    n_heads: int = 4,
    n_kv_heads: int = 2,
    d_head: int = 16,
    dtype: torch.dtype = torch.float32,
    intermediate: int | None = None,
    vocab: int = VOCAB,
    init: float = 0.15,
):
    """A random ``LlavaForConditionalGeneration`` (CLIP tower, projector, Llama GQA decoder)."""
    from transformers import LlavaConfig, LlavaForConditionalGeneration

    config = LlavaConfig(
        vision_config=clip_tower(),
        text_config=decoder(
            n_layers, n_heads, n_kv_heads, d_head, init, intermediate, vocab, model_type="llama"
        ),
        image_token_id=LLAVA_IMAGE,
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
        projector_hidden_act="gelu",
        pad_token_id=0,
    )
    return build(LlavaForConditionalGeneration, config, seed, dtype)


def tiny_llava_next(seed=0, n_layers=3, n_heads=4, n_kv_heads=2, d_head=16, dtype=torch.float32, init=0.15):
    """A random ``LlavaNextForConditionalGeneration`` (CLIP tower, anyres tiling, Llama decoder)."""
    from transformers import LlavaNextConfig, LlavaNextForConditionalGeneration

    config = LlavaNextConfig(
        vision_config=clip_tower(),
        text_config=decoder(n_layers, n_heads, n_kv_heads, d_head, init, model_type="llama"),
        image_token_index=LLAVA_IMAGE,
        image_grid_pinpoints=PINPOINTS,
        vision_feature_layer=-1,
        pad_token_id=0,
    )
    return build(LlavaNextForConditionalGeneration, config, seed, dtype)


def tiny_llava_onevision(
    seed=0, n_layers=3, n_heads=4, n_kv_heads=2, d_head=16, dtype=torch.float32, init=0.15
):
    """A random ``LlavaOnevisionForConditionalGeneration`` (SigLIP tower, anyres-max tiling, Qwen2
    decoder with q/k/v biases)."""
    from transformers import LlavaOnevisionConfig, LlavaOnevisionForConditionalGeneration

    config = LlavaOnevisionConfig(
        vision_config=siglip_tower(image_size=28),
        text_config=decoder(n_layers, n_heads, n_kv_heads, d_head, init, model_type="qwen2"),
        image_token_index=LLAVA_IMAGE,
        video_token_index=QWEN_VIDEO,
        image_grid_pinpoints=PINPOINTS,
        vision_feature_layer=-1,
        pad_token_id=0,
    )
    return build(LlavaOnevisionForConditionalGeneration, config, seed, dtype)


def square_image(hf, row: int, padded: bool, generator: torch.Generator):
    """One tower-sized image, ``pixel_values`` [1, 3, S, S]: one image token per patch (CLS dropped)."""
    vision = hf.config.vision_config
    size = vision.image_size
    pixels = torch.randn(1, 3, size, size, generator=generator)
    return [hf.config.image_token_id] * (size // vision.patch_size) ** 2, {"pixel_values": pixels}


def anyres_image(hf, row: int, padded: bool, generator: torch.Generator):
    """One anyres image, 28 x 56 (56 x 56 on odd rows when ``padded``): ``pixel_values``
    [1, n_tiles, 3, S, S] (base crop and tiles), ``image_sizes`` [1, 2]."""
    from transformers.models.llava_next.modeling_llava_next import image_size_to_num_patches

    size = hf.config.vision_config.image_size
    image_size = [56, 56] if padded and row % 2 else [28, 56]
    n_tiles = image_size_to_num_patches(image_size, hf.config.image_grid_pinpoints, size)
    pixels = torch.randn(1, n_tiles, 3, size, size, generator=generator)
    sizes = torch.tensor([image_size])
    # the token count (base crop, unpadded tiles, row newlines) is the one the model computes
    with torch.no_grad():
        features = hf.model.get_image_features(pixel_values=pixels.to(hf.dtype), image_sizes=sizes)
    pooled = getattr(features, "pooler_output", features)
    n = sum(f.shape[0] for f in pooled)
    return [hf.config.image_token_id] * n, {"pixel_values": pixels, "image_sizes": sizes}
