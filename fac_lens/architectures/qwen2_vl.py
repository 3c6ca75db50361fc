"""Qwen2-VL: full-attention ViT (fc1/fc2 MLP, LayerNorm) + patch merger + mRoPE GQA decoder.

transformer-lens 4.3 has no Qwen2-VL adapter; the text decoder and the multimodal wrapper have the
Qwen2.5-VL layout, so fac_lens reuses that adapter with the Qwen2-VL vision block mapped as it is.
"""

from __future__ import annotations

from transformer_lens.model_bridge.generalized_components import LinearBridge
from transformer_lens.model_bridge.generalized_components.base import GeneralizedComponent

from .base import conditional_generation_spec
from .image_grids import merged_patch_grids
from .qwen2_5_vl import (
    FacQwen2_5_VLAdapter,
    add_mm_token_type_ids,
    fallback_qwen_processor,
    reset_rope_deltas,
)


class FacQwen2VLAdapter(FacQwen2_5_VLAdapter):
    """The Qwen2.5-VL adapter with Qwen2-VL's vision MLP (``fc1``/``fc2``, no gate)."""

    def __init__(self, cfg) -> None:
        super().__init__(cfg)
        vision = self.component_mapping["vision_encoder"]
        vision.submodules["blocks"].submodules["mlp"] = GeneralizedComponent(
            name="mlp", submodules={"in": LinearBridge(name="fc1"), "out": LinearBridge(name="fc2")}
        )


SPEC = conditional_generation_spec(
    "Qwen2VLForConditionalGeneration",
    FacQwen2VLAdapter,
    add_model_inputs=add_mm_token_type_ids,
    reset_state=reset_rope_deltas,
    fallback_processor=fallback_qwen_processor,
    known_limits="no stock transformer-lens adapter (the Qwen2.5-VL one, vision MLP remapped); "
    "mRoPE needs `mm_token_type_ids` (fac_lens adds them)",
    image_layout=merged_patch_grids,
)
