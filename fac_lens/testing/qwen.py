"""Qwen-VL family: Qwen2.5-VL, Qwen2-VL and Qwen3-VL (ViT with patch merger, mRoPE decoder).

Their images are flattened patch grids with ``image_grid_thw``; :func:`grid_image` also serves
Kimi-K2.5, whose MoonViT takes the same grids.
"""

from __future__ import annotations

import math

import torch

from .configs import build, decoder, mrope_section
from .ids import BOS, EOS, PAD, QWEN_IDS, VOCAB


def tiny_qwen2_5_vl(
    seed: int = 0,
    n_layers: int = 4,
    n_heads: int = 4,
    n_kv_heads: int = 2,
    d_head: int = 16,
    dtype: torch.dtype = torch.float32,
    intermediate: int | None = None,
    vocab: int = VOCAB,
    init: float = 0.15,
    vision_depth: int = 2,
    vision_hidden: int = 32,
    token_ids: dict[str, int] | None = None,
):
    """A random ``Qwen2_5_VLForConditionalGeneration`` (windowed ViT, patch merger, mRoPE GQA decoder).

    ``token_ids`` may override ``image_token_id``, ``video_token_id``, ``vision_start_token_id``,
    ``vision_end_token_id``, ``bos_token_id``, ``eos_token_id``, ``pad_token_id``.

    The default ``init`` (weight std 0.15) gives peaked attention, so heads differ as in trained
    models; the benchmarks pass 0.02 (HF's default) with 7B-like sizes.
    """
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    ids = dict(QWEN_IDS, bos_token_id=BOS, eos_token_id=EOS, pad_token_id=PAD)
    ids.update(token_ids or {})
    text = decoder(n_layers, n_heads, n_kv_heads, d_head, init, intermediate, vocab)
    text["rope_scaling"] = {"type": "mrope", "mrope_section": mrope_section(d_head)}
    for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
        text[key] = ids[key]
    config = Qwen2_5_VLConfig(
        vision_config=dict(
            depth=vision_depth,
            hidden_size=vision_hidden,
            intermediate_size=2 * vision_hidden,
            num_heads=2 if vision_hidden <= 32 else 4,
            out_hidden_size=n_heads * d_head,
            patch_size=14,
            spatial_merge_size=2,
            temporal_patch_size=2,
            window_size=56,
            fullatt_block_indexes=[vision_depth - 1],
        ),
        text_config=text,
        **ids,
    )
    return build(Qwen2_5_VLForConditionalGeneration, config, seed, dtype)


def tiny_qwen2_vl(seed=0, n_layers=3, n_heads=4, n_kv_heads=2, d_head=16, dtype=torch.float32, init=0.15):
    """A random ``Qwen2VLForConditionalGeneration`` (full-attention ViT, fc1/fc2 MLP, mRoPE decoder)."""
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration

    text = decoder(n_layers, n_heads, n_kv_heads, d_head, init)
    text["rope_scaling"] = {"type": "mrope", "mrope_section": mrope_section(d_head)}
    config = Qwen2VLConfig(
        vision_config=dict(
            depth=2,
            embed_dim=32,
            hidden_size=n_heads * d_head,
            num_heads=2,
            mlp_ratio=2,
            patch_size=14,
            spatial_merge_size=2,
            temporal_patch_size=2,
        ),
        text_config=text,
        **QWEN_IDS,
        bos_token_id=BOS,
        eos_token_id=EOS,
        pad_token_id=PAD,
    )
    return build(Qwen2VLForConditionalGeneration, config, seed, dtype)


def tiny_qwen3_vl(seed=0, n_layers=3, n_heads=4, n_kv_heads=2, d_head=16, dtype=torch.float32, init=0.15):
    """A random ``Qwen3VLForConditionalGeneration`` (DeepStack ViT, QK-norm, interleaved mRoPE)."""
    from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration

    text = decoder(n_layers, n_heads, n_kv_heads, d_head, init, head_dim=d_head)
    text["rope_parameters"] = {
        "rope_type": "default",
        "rope_theta": 10000.0,
        "mrope_section": mrope_section(d_head),
        "mrope_interleaved": True,
    }
    config = Qwen3VLConfig(
        vision_config=dict(
            depth=2,
            hidden_size=32,
            intermediate_size=64,
            num_heads=2,
            out_hidden_size=n_heads * d_head,
            patch_size=16,
            spatial_merge_size=2,
            temporal_patch_size=2,
            num_position_embeddings=16,
            deepstack_visual_indexes=[0],
        ),
        text_config=text,
        **QWEN_IDS,
        tie_word_embeddings=False,
    )
    return build(Qwen3VLForConditionalGeneration, config, seed, dtype)


def grid_image(
    hf, row: int, padded: bool, generator: torch.Generator, patch_shape: tuple[int, ...], merge: int
) -> tuple[list[int], dict[str, torch.Tensor]]:
    """One image as a patch grid: 1 x 4 x 4, or 1 x 4 x (4 + 2 row) when ``padded`` (rows differ).

    Returns the tokens (vision start, one image token per ``merge`` patches, vision end) and
    ``pixel_values`` [n_patches, *patch_shape], ``image_grid_thw`` [1, 3].
    """
    grid = (1, 4, 4 + 2 * row) if padded else (1, 4, 4)
    n_patches = math.prod(grid)
    pixels = torch.randn(n_patches, *patch_shape, generator=generator)
    config = hf.config
    tokens = [config.vision_start_token_id, *[config.image_token_id] * (n_patches // merge)]
    tokens.append(config.vision_end_token_id)
    return tokens, {"pixel_values": pixels, "image_grid_thw": torch.tensor([grid])}


def qwen_image(hf, row: int, padded: bool, generator: torch.Generator):
    """:func:`grid_image` with Qwen's flattened patches [n_patches, 3 * temporal * patch * patch]."""
    vision = hf.config.vision_config
    patch = (3 * vision.temporal_patch_size * vision.patch_size**2,)
    return grid_image(hf, row, padded, generator, patch, vision.spatial_merge_size**2)
