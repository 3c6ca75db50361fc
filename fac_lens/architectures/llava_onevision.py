"""LLaVA-OneVision (SigLIP tower, anyres-max tiling, Qwen2 decoder)."""

from __future__ import annotations

from transformer_lens.model_bridge.supported_architectures.llava_onevision import (
    LlavaOnevisionArchitectureAdapter,
)

from .base import conditional_generation_spec
from .image_grids import anyres_grids
from .native_attention import keep_native_attention


class FacLlavaOnevisionAdapter(LlavaOnevisionArchitectureAdapter):
    """The transformer-lens LLaVA-OneVision adapter with HF-native text attention (see llava.py)."""

    def __init__(self, cfg) -> None:
        super().__init__(cfg)
        keep_native_attention(self)


SPEC = conditional_generation_spec(
    "LlavaOnevisionForConditionalGeneration",
    FacLlavaOnevisionAdapter,
    known_limits="anyres: the number of image tokens depends on the image size (the processor's); the "
    "row-newline features sit on image-token positions and count as image",
    image_layout=anyres_grids,
)
