"""SmolVLM: the Idefics3 layout under its own HF class (see idefics3.py)."""

from __future__ import annotations

from .base import conditional_generation_spec
from .idefics3 import LIMITS, FacIdefics3Adapter, text_model
from .image_grids import crop_grids

SPEC = conditional_generation_spec(
    "SmolVLMForConditionalGeneration",
    FacIdefics3Adapter,
    text_model=text_model,
    known_limits="no stock transformer-lens entry (served by the Idefics3 adapter); " + LIMITS,
    image_layout=crop_grids,
)
