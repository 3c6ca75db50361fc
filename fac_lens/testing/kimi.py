"""Kimi-K2.5: MoonViT tower and a DeepSeek-V3 decoder (multi-head latent attention, mixture of experts)."""

from __future__ import annotations

import math

import torch

from .configs import build, decoder
from .ids import QWEN_IDS
from .qwen import grid_image


def tiny_kimi_k25(seed=0, n_layers=3, n_heads=4, d_head=12, dtype=torch.float32, init=0.15):
    """A random ``Kimi_K25ForConditionalGeneration``: MoonViT tower (2-D RoPE, 2 x 2 patch merge),
    projector, and a DeepSeek-V3 decoder with multi-head latent attention (compressed Q and KV,
    decoupled interleaved RoPE; value heads of ``d_head`` = 12 against query/key heads of 24) and a
    routed mixture of experts (4 experts, 2 per token, one shared) after one dense layer."""
    from transformers import Kimi_K25Config, Kimi_K25ForConditionalGeneration

    text = decoder(
        n_layers, n_heads, n_heads, 16, init,  # hidden 64; MLA: as many KV heads as heads
        model_type="deepseek_v3",
        moe_intermediate_size=32,
        n_shared_experts=1,
        n_routed_experts=4,
        num_experts_per_tok=2,
        n_group=2,
        topk_group=1,
        first_k_dense_replace=1,
        kv_lora_rank=32,
        q_lora_rank=48,
        qk_rope_head_dim=8,
        qk_nope_head_dim=16,
        v_head_dim=d_head,
        rope_interleave=True,
        tie_word_embeddings=False,
    )  # fmt: skip
    config = Kimi_K25Config(
        vision_config=dict(
            patch_size=14,
            pos_emb_height=8,
            pos_emb_width=8,
            pos_emb_time=4,
            num_attention_heads=2,
            num_hidden_layers=2,
            hidden_size=32,
            intermediate_size=64,
            merge_kernel_size=[2, 2],
        ),
        text_config=text,
        projection_hidden_size=32,
        **QWEN_IDS,
        tie_word_embeddings=False,
    )
    return build(Kimi_K25ForConditionalGeneration, config, seed, dtype)


def kimi_image(hf, row: int, padded: bool, generator: torch.Generator):
    """:func:`~.qwen.grid_image` with MoonViT's patches [n_patches, 3, patch, patch]."""
    vision = hf.config.vision_config
    patch = (3, vision.patch_size, vision.patch_size)
    return grid_image(hf, row, padded, generator, patch, math.prod(vision.merge_kernel_size))
