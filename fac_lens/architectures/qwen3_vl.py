"""Qwen3-VL: ViT with DeepStack mergers + a decoder with per-head QK-norm and interleaved mRoPE."""

from __future__ import annotations

from transformer_lens.model_bridge.supported_architectures.qwen3_vl import Qwen3VLArchitectureAdapter

from .base import conditional_generation_spec
from .image_grids import merged_patch_grids
from .qwen2_5_vl import add_mm_token_type_ids, reset_rope_deltas


class FacQwen3VLAdapter(Qwen3VLArchitectureAdapter):
    """The transformer-lens adapter (HF-native attention) without its torchvision requirement."""

    required_libraries: list[str] = []


SPEC = conditional_generation_spec(
    "Qwen3VLForConditionalGeneration",
    FacQwen3VLAdapter,
    add_model_inputs=add_mm_token_type_ids,
    reset_state=reset_rope_deltas,
    known_limits="DeepStack adds visual features between the first blocks, so `resid_post[i]` differs from "
    "`resid_pre[i+1]` at image positions; mRoPE needs `mm_token_type_ids` (fac_lens adds them)",
    image_layout=merged_patch_grids,
)
