"""The registry of tiny models, keyed by HF ``model_type``: a builder and a per-row image maker each."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from .gemma3 import gemma3_image, tiny_gemma3
from .idefics import idefics_image, tiny_idefics3, tiny_smolvlm
from .kimi import kimi_image, tiny_kimi_k25
from .kimi_vl import kimi_vl_image, tiny_kimi_vl
from .llava import anyres_image, square_image, tiny_llava, tiny_llava_next, tiny_llava_onevision
from .qwen import qwen_image, tiny_qwen2_5_vl, tiny_qwen2_vl, tiny_qwen3_vl

Builder = Callable[..., torch.nn.Module]
"""``builder(seed=0, dtype=torch.float32, **sizes)``: a random HF model in eval mode."""
ImageMaker = Callable[..., tuple[list[int], dict[str, torch.Tensor]]]
"""``image(hf, row, padded, generator)``: one row's image tokens and its HF image kwargs (batch 1)."""


@dataclass(frozen=True)
class TinyModel:
    """One supported architecture at test size.

    ``pad_tiles``: rows' ``pixel_values`` [1, n_tiles, 3, S, S] differ in ``n_tiles`` and are
    zero-padded to the most when batched, as the architecture's processor does (anyres).
    """

    build: Builder
    image: ImageMaker
    pad_tiles: bool = False


MODELS: dict[str, TinyModel] = {
    "qwen2_5_vl": TinyModel(tiny_qwen2_5_vl, qwen_image),
    "qwen2_vl": TinyModel(tiny_qwen2_vl, qwen_image),
    "qwen3_vl": TinyModel(tiny_qwen3_vl, qwen_image),
    "llava": TinyModel(tiny_llava, square_image),
    "llava_next": TinyModel(tiny_llava_next, anyres_image, pad_tiles=True),
    "llava_onevision": TinyModel(tiny_llava_onevision, anyres_image, pad_tiles=True),
    "gemma3": TinyModel(tiny_gemma3, gemma3_image),
    "idefics3": TinyModel(tiny_idefics3, idefics_image),
    "smolvlm": TinyModel(tiny_smolvlm, idefics_image),
    "kimi_k25": TinyModel(tiny_kimi_k25, kimi_image),
    "kimi_vl": TinyModel(tiny_kimi_vl, kimi_vl_image),
}
CLASS_KEYS = {"KimiVLForConditionalGeneration": "kimi_vl"}
"""Registry keys of models whose ``config.model_type`` is another's (Kimi-VL runs in Kimi-K2.5's classes)."""
BUILDERS: dict[str, Builder] = {model_type: model.build for model_type, model in MODELS.items()}
