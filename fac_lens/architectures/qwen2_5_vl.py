"""Qwen2.5-VL (and its fine-tunes Ocean-R1, R1-Onevision): windowed ViT + mRoPE GQA decoder."""

from __future__ import annotations

import torch
from transformer_lens.model_bridge.supported_architectures.qwen2_5_vl import (
    Qwen2_5_VLArchitectureAdapter,
)

from .base import conditional_generation_spec
from .image_grids import merged_patch_grids


class FacQwen2_5_VLAdapter(Qwen2_5_VLArchitectureAdapter):
    """The transformer-lens adapter without its torchvision requirement.

    torchvision is only needed by the video/fast image processors, never by the model; it cannot
    import against the CPU torch on these machines, and transformer-lens would try to pip-install it.
    """

    required_libraries: list[str] = []


def add_mm_token_type_ids(inputs: dict[str, torch.Tensor], image_token_id: int) -> dict[str, torch.Tensor]:
    """Add ``mm_token_type_ids`` (1 on image tokens) so Qwen-VL models compute real mRoPE positions.

    Without it the model silently falls back to 1-D positions.
    """
    if "mm_token_type_ids" in inputs or "input_ids" not in inputs:
        return inputs
    out = dict(inputs)
    out["mm_token_type_ids"] = (inputs["input_ids"] == image_token_id).to(torch.int32)
    return out


def reset_rope_deltas(hf) -> None:
    """Qwen-VL models cache ``rope_deltas`` between calls; a stale value shifts the next positions."""
    hf.model.rope_deltas = None


def fallback_qwen_processor(path: str, **files):
    """``files``: ``from_pretrained`` options (``cache_dir``, ``trust_remote_code``, ...)."""
    from .qwen_vl_processor import QwenVLProcessor

    return QwenVLProcessor.from_pretrained(path, **files)


SPEC = conditional_generation_spec(
    "Qwen2_5_VLForConditionalGeneration",
    FacQwen2_5_VLAdapter,
    add_model_inputs=add_mm_token_type_ids,
    reset_state=reset_rope_deltas,
    fallback_processor=fallback_qwen_processor,
    known_limits="mRoPE needs `mm_token_type_ids` (fac_lens adds them)",
    image_layout=merged_patch_grids,
)
