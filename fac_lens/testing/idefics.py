"""Idefics3 and SmolVLM (one layout, two classes): SigLIP-style tower, pixel-shuffle connector,
Llama decoder."""

from __future__ import annotations

import torch

from .configs import build, decoder
from .ids import LLAVA_IMAGE


def _idefics_config(config_class, n_layers, n_heads, n_kv_heads, d_head, init):
    return config_class(
        vision_config=dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=56,
            patch_size=7,
        ),
        text_config=decoder(n_layers, n_heads, n_kv_heads, d_head, init, model_type="llama"),
        image_token_id=LLAVA_IMAGE,
        scale_factor=2,
        pad_token_id=0,
    )


def tiny_idefics3(seed=0, n_layers=3, n_heads=4, n_kv_heads=2, d_head=16, dtype=torch.float32, init=0.15):
    """A random ``Idefics3ForConditionalGeneration``: 16 image tokens per 56 x 56 image."""
    from transformers import Idefics3Config, Idefics3ForConditionalGeneration

    config = _idefics_config(Idefics3Config, n_layers, n_heads, n_kv_heads, d_head, init)
    return build(Idefics3ForConditionalGeneration, config, seed, dtype)


def tiny_smolvlm(seed=0, n_layers=3, n_heads=4, n_kv_heads=2, d_head=16, dtype=torch.float32, init=0.15):
    """A random ``SmolVLMForConditionalGeneration`` (the Idefics3 layout under its own class)."""
    from transformers import SmolVLMConfig, SmolVLMForConditionalGeneration

    config = _idefics_config(SmolVLMConfig, n_layers, n_heads, n_kv_heads, d_head, init)
    return build(SmolVLMForConditionalGeneration, config, seed, dtype)


def idefics_image(hf, row: int, padded: bool, generator: torch.Generator):
    """One image of one tile: ``pixel_values`` [1, 1, 3, S, S], ``pixel_attention_mask`` [1, 1, S, S];
    (S / patch)^2 / scale_factor^2 image tokens."""
    vision = hf.config.vision_config
    size = vision.image_size
    n = (size // vision.patch_size) ** 2 // hf.config.scale_factor**2
    pixels = torch.randn(1, 1, 3, size, size, generator=generator)
    mask = torch.ones(1, 1, size, size, dtype=torch.bool)
    return [hf.config.image_token_id] * n, {"pixel_values": pixels, "pixel_attention_mask": mask}
