"""Config pieces shared by the tiny builders, and the seeded instantiation they all end with."""

from __future__ import annotations

import torch

from .ids import BOS, EOS, PAD, VOCAB


def decoder(
    n_layers: int,
    n_heads: int,
    n_kv_heads: int,
    d_head: int,
    init: float,
    intermediate: int | None = None,
    vocab: int = VOCAB,
    **extra,
) -> dict:
    """Text-decoder config fields (hidden = ``n_heads * d_head``); ``extra`` adds or overrides."""
    hidden = n_heads * d_head
    return dict(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=intermediate or 2 * hidden,
        num_hidden_layers=n_layers,
        num_attention_heads=n_heads,
        num_key_value_heads=n_kv_heads,
        max_position_embeddings=32768,
        initializer_range=init,
        bos_token_id=BOS,
        eos_token_id=EOS,
        pad_token_id=PAD,
        **extra,
    )


def mrope_section(d_head: int) -> list[int]:
    """mRoPE's split of the ``d_head / 2`` rotary frequencies: temporal, height, width."""
    half = d_head // 2
    return [half - 2 * (half // 3), half // 3, half // 3]


def clip_tower() -> dict:
    """A two-layer CLIP tower on 28 x 28 images, 7 x 7 patches (16 patches + CLS)."""
    return dict(
        model_type="clip_vision_model",
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=28,
        patch_size=7,
        projection_dim=32,
    )


def siglip_tower(image_size: int, patch_size: int = 7) -> dict:
    """A two-layer SigLIP tower without the pooling head (as in the real checkpoints)."""
    return dict(
        model_type="siglip_vision_model",
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        vision_use_head=False,
        image_size=image_size,
        patch_size=patch_size,
    )


def build(model_class, config, seed: int, dtype: torch.dtype):
    """``model_class(config)`` in eval mode, initialised from ``seed``, leaving the global RNG as it was."""
    config.architectures = [model_class.__name__]
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = model_class(config)
    finally:
        torch.random.set_rng_state(state)
    return model.to(dtype).eval()
