"""Kimi-VL (Kimi-VL-A3B-Thinking / -Instruct, the paper's first model) on transformers' own classes.

A Kimi-VL download is a ``kimi_vl`` checkpoint whose model class lives in remote code beside the
weights (``modeling_kimi_vl.py``: MoonViT + a projector + a DeepSeek-V3 MLA/MoE decoder).
transformers has no ``kimi_vl`` model, but its native Kimi-K2.5 classes are built from the same
parts. :mod:`fac_lens.architectures.kimi_vl_checkpoint` converts the config and renames the
weights (a documented table), and the model is an instance of the class below: transformers'
``Kimi_K25ForConditionalGeneration`` unchanged, except that it also takes the Kimi-VL processor's
``image_grid_hws`` [n_images, 2] (turned into ``image_grid_thw`` [n_images, 3] with ``t = 1``).
Its own class name gives Kimi-VL its own row in the supported-models matrix; the transformer-lens
adapter is Kimi-K2.5's (:mod:`.kimi_k25`).
"""

from __future__ import annotations

import inspect

import torch
from transformers import Kimi_K25ForConditionalGeneration

from .base import conditional_generation_spec
from .kimi_k25 import SPEC as KIMI_K25


def grid_thw(hws: torch.Tensor) -> torch.Tensor:
    """Kimi-VL's ``image_grid_hws`` [n, 2] as ``image_grid_thw`` [n, 3] (one frame each)."""
    return torch.nn.functional.pad(hws, (1, 0), value=1)


def native_image_inputs(inputs: dict[str, torch.Tensor], image_token_id: int) -> dict[str, torch.Tensor]:
    """The inputs with ``image_grid_hws`` replaced by ``image_grid_thw`` (what the multimodal core reads)."""
    if "image_grid_hws" not in inputs:
        return inputs
    out = dict(inputs)
    hws = out.pop("image_grid_hws")
    if out.get("image_grid_thw") is None and hws is not None:
        out["image_grid_thw"] = grid_thw(hws)
    return out


class KimiVLForConditionalGeneration(Kimi_K25ForConditionalGeneration):
    """transformers' Kimi-K2.5 model holding a converted Kimi-VL checkpoint (no remote code)."""

    def forward(self, *args, image_grid_hws: torch.Tensor | None = None, **kwargs):
        """As ``Kimi_K25ForConditionalGeneration.forward``; ``image_grid_hws`` [n, 2] (Kimi-VL's
        processor) stands for ``image_grid_thw`` [n, 3] = ``(1, h, w)`` when that is not given."""
        if image_grid_hws is not None and kwargs.get("image_grid_thw") is None:
            kwargs["image_grid_thw"] = grid_thw(image_grid_hws)
        return super().forward(*args, **kwargs)

    def generate(self, *args, image_grid_hws: torch.Tensor | None = None, **kwargs):
        """As the parent's; ``image_grid_hws`` as in :meth:`forward` (the image encoder runs first)."""
        if image_grid_hws is not None and kwargs.get("image_grid_thw") is None:
            kwargs["image_grid_thw"] = grid_thw(image_grid_hws)
        return super().generate(*args, **kwargs)

    def save_pretrained(self, *args, save_original_format: bool = False, **kwargs):
        """As the parent's, but in transformers' own names by default: transformers 5.24's Kimi-K2.5
        "original format" (its default) turns a decoder's ``self_attn.q_proj`` (Kimi-VL has no query
        LoRA) into ``self_wqkv`` and cannot load that back."""
        return super().save_pretrained(*args, save_original_format=save_original_format, **kwargs)


def _forward_signature() -> inspect.Signature:
    """The parent's ``forward`` signature with ``image_grid_hws`` before ``**kwargs``."""
    parent = inspect.signature(Kimi_K25ForConditionalGeneration.forward)
    *named, variadic = parent.parameters.values()
    extra = inspect.Parameter("image_grid_hws", inspect.Parameter.KEYWORD_ONLY, default=None)
    return parent.replace(parameters=[*named, extra, variadic])


# generate() checks its kwargs (pixel_values, ...) against the names forward's signature lists
KimiVLForConditionalGeneration.forward.__signature__ = _forward_signature()


SPEC = conditional_generation_spec(
    "KimiVLForConditionalGeneration",
    KIMI_K25.adapter_class,
    add_model_inputs=native_image_inputs,
    known_limits=KIMI_K25.known_limits + "; loaded from a `kimi_vl` checkpoint by renaming its weights "
    "(its code never runs); its processor is remote code, loaded only with `trust_remote_code=True` "
    "(else pass `processor=` or the processor's output)",
    image_layout=KIMI_K25.image_layout,  # image_grid_hws becomes image_grid_thw in add_model_inputs
)
