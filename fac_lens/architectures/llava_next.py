"""LLaVA-NeXT (LLaVA 1.6: anyres tiling of the image into CLIP crops + Llama/Mistral decoder)."""

from __future__ import annotations

from transformer_lens.model_bridge.supported_architectures.llava_next import LlavaNextArchitectureAdapter

from .base import conditional_generation_spec
from .image_grids import anyres_grids
from .native_attention import keep_native_attention


class FacLlavaNextAdapter(LlavaNextArchitectureAdapter):
    """The transformer-lens LLaVA-NeXT adapter with HF-native text attention (see llava.py)."""

    def __init__(self, cfg) -> None:
        super().__init__(cfg)
        keep_native_attention(self)


SPEC = conditional_generation_spec(
    "LlavaNextForConditionalGeneration",
    FacLlavaNextAdapter,
    known_limits="anyres: the number of image tokens depends on the image size (the processor's); the "
    "row-newline features sit on image-token positions and count as image",
    image_layout=anyres_grids,
)
