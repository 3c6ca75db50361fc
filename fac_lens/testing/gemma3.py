"""Gemma3: SigLIP tower, pooled projector, sliding-window decoder with bidirectional image blocks."""

from __future__ import annotations

import torch

from .configs import build, decoder, siglip_tower
from .ids import BOI, EOI, LLAVA_IMAGE


def tiny_gemma3(seed=0, n_layers=3, n_heads=4, n_kv_heads=2, d_head=16, dtype=torch.float32, init=0.15):
    """A random ``Gemma3ForConditionalGeneration``: SigLIP tower, pooled projector, a decoder with
    QK-norm, sandwich norms, alternating sliding-window (12 tokens) and global layers, and
    bidirectional attention inside each image block (``token_type_ids``)."""
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration

    text = decoder(
        n_layers, n_heads, n_kv_heads, d_head, init,
        model_type="gemma3_text",
        head_dim=d_head,
        query_pre_attn_scalar=d_head,
        sliding_window=12,
        layer_types=["sliding_attention" if i % 2 == 0 else "full_attention" for i in range(n_layers)],
        tie_word_embeddings=False,  # tied, a random Gemma greedily repeats one token
    )  # fmt: skip
    config = Gemma3Config(
        vision_config=siglip_tower(image_size=56),
        text_config=text,
        mm_tokens_per_image=16,
        image_token_index=LLAVA_IMAGE,
        boi_token_index=BOI,
        eoi_token_index=EOI,
        pad_token_id=0,
        tie_word_embeddings=False,
    )
    return build(Gemma3ForConditionalGeneration, config, seed, dtype)


def gemma3_image(hf, row: int, padded: bool, generator: torch.Generator):
    """One 56 x 56 image, ``pixel_values`` [1, 3, S, S]: begin, ``mm_tokens_per_image`` image
    tokens, end."""
    config = hf.config
    size = config.vision_config.image_size
    tokens = [config.boi_token_index, *[config.image_token_id] * int(config.mm_tokens_per_image)]
    tokens.append(config.eoi_token_index)
    return tokens, {"pixel_values": torch.randn(1, 3, size, size, generator=generator)}
