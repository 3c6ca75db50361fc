"""Idefics3 and SmolVLM (SigLIP-style tower, pixel-shuffle connector, Llama decoder at
``model.text_model``)."""

from __future__ import annotations

from transformer_lens.model_bridge.supported_architectures.idefics3 import Idefics3ArchitectureAdapter

from .base import conditional_generation_spec
from .image_grids import crop_grids
from .native_attention import keep_native_attention


class FacIdefics3Adapter(Idefics3ArchitectureAdapter):
    """The transformer-lens Idefics3 adapter with HF-native text attention (see llava.py).

    Also serves ``SmolVLMForConditionalGeneration`` (same modules under another class name), which
    transformer-lens 4.3 does not list.
    """

    def __init__(self, cfg) -> None:
        super().__init__(cfg)
        keep_native_attention(self)


def text_model(hf):
    return hf.model.text_model


LIMITS = "image splitting (several crops per image) is the processor's; every crop's tokens count as image"

SPEC = conditional_generation_spec(
    "Idefics3ForConditionalGeneration",
    FacIdefics3Adapter,
    text_model=text_model,
    known_limits=LIMITS,
    image_layout=crop_grids,
)
