"""Gemma 3 multimodal (SigLIP tower, pooled projector, Gemma 3 decoder: QK-norm, sandwich norms,
alternating sliding-window and global layers, bidirectional attention inside each image block)."""

from __future__ import annotations

import torch
from transformer_lens.model_bridge.supported_architectures.gemma3_multimodal import (
    Gemma3MultimodalArchitectureAdapter,
)

from .base import conditional_generation_spec
from .image_grids import pooled_grids
from .native_attention import keep_native_attention


class FacGemma3Adapter(Gemma3MultimodalArchitectureAdapter):
    """The transformer-lens Gemma 3 multimodal adapter with HF-native text attention (see llava.py)."""

    def __init__(self, cfg) -> None:
        super().__init__(cfg)
        keep_native_attention(self)


def add_token_type_ids(inputs: dict[str, torch.Tensor], image_token_id: int) -> dict[str, torch.Tensor]:
    """Add ``token_type_ids`` (1 on image tokens), as the Gemma 3 processor does.

    Gemma 3 lets the tokens of one image attend to each other bidirectionally only when it gets
    them; without them the image block is causal (a different model from the one trained).
    """
    if "token_type_ids" in inputs or "input_ids" not in inputs:
        return inputs
    out = dict(inputs)
    out["token_type_ids"] = (inputs["input_ids"] == image_token_id).long()
    return out


SPEC = conditional_generation_spec(
    "Gemma3ForConditionalGeneration",
    FacGemma3Adapter,
    add_model_inputs=add_token_type_ids,
    known_limits="the post-attention RMSNorm cancels a gain shared by every head of a layer (only gains "
    "that differ within a layer act); sliding-window layers see the last `sliding_window` keys only, so "
    "at decoding steps their S_v is 0 once the image is out of the window; bidirectional image blocks "
    "need `token_type_ids` (fac_lens adds them)",
    image_layout=pooled_grids,
)
