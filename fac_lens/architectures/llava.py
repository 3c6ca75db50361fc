"""LLaVA (CLIP or SigLIP tower + projector + Llama/Qwen2/Mistral decoder)."""

from __future__ import annotations

from transformer_lens.model_bridge.supported_architectures.llava import LlavaArchitectureAdapter

from .base import conditional_generation_spec
from .image_grids import square_patch_grids
from .native_attention import keep_native_attention

BRIDGED_VISION_TOWERS = ("clip_vision_model", "siglip_vision_model", "siglip")


class FacLlavaAdapter(LlavaArchitectureAdapter):
    """The transformer-lens LLaVA adapter with HF-native text attention.

    transformer-lens re-implements LLaVA's attention in eager form. fac_lens keeps HF's own
    attention instead (as transformer-lens does for Qwen2.5-VL) so the attention function can be
    chosen per call: SDPA where no pattern is read, the O(N) visual-mass probe for ratios, eager
    for ``hook_pattern``. ``hook_z`` (the per-head output before ``o_proj``) fires either way.
    """

    def __init__(self, cfg) -> None:
        super().__init__(cfg)
        vision_type = getattr(getattr(cfg, "vision_config", None), "model_type", "clip_vision_model")
        if vision_type not in BRIDGED_VISION_TOWERS:
            # transformer-lens bridges CLIP and SigLIP towers only; another tower (fac-smol's
            # DINOv2) stays a plain HF module inside the bridged model.
            self.component_mapping.pop("vision_encoder")
        keep_native_attention(self)


SPEC = conditional_generation_spec(
    "LlavaForConditionalGeneration", FacLlavaAdapter, image_layout=square_patch_grids
)
