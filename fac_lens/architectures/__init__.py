"""Registry of supported architectures: one small module each.

To add an architecture, write ``fac_lens/architectures/<name>.py`` defining ``SPEC`` (an
:class:`ArchitectureSpec`) and list the module in ``_MODULES`` below.
"""

from __future__ import annotations

import importlib

from ..errors import FacLensError
from .base import ArchitectureSpec

_MODULES = {
    "Qwen2_5_VLForConditionalGeneration": "qwen2_5_vl",
    "LlavaForConditionalGeneration": "llava",
    "Qwen2VLForConditionalGeneration": "qwen2_vl",
    "Qwen3VLForConditionalGeneration": "qwen3_vl",
    "Gemma3ForConditionalGeneration": "gemma3",
    "Idefics3ForConditionalGeneration": "idefics3",
    "SmolVLMForConditionalGeneration": "smolvlm",
    "LlavaNextForConditionalGeneration": "llava_next",
    "LlavaOnevisionForConditionalGeneration": "llava_onevision",
    "Kimi_K25ForConditionalGeneration": "kimi_k25",
    "KimiVLForConditionalGeneration": "kimi_vl",
}


def supported_architectures() -> list[str]:
    """HF architecture class names fac_lens can wrap."""
    return sorted(_MODULES)


def spec_for(architecture: str) -> ArchitectureSpec:
    """Return the spec for an HF architecture name, or raise naming the supported ones."""
    if architecture not in _MODULES:
        raise FacLensError(
            f"fac_lens has no adapter for architecture {architecture!r}. Supported: "
            f"{', '.join(supported_architectures())}. To add one, write "
            "fac_lens/architectures/<name>.py with a SPEC (see qwen2_5_vl.py) and register it "
            "in fac_lens/architectures/__init__.py."
        )
    module = importlib.import_module(f".{_MODULES[architecture]}", __name__)
    return module.SPEC


def model_class(architecture: str) -> type:
    """The class that builds ``architecture``: transformers' own, or (Kimi-VL) the thin subclass of
    one that its fac_lens module defines. Never a checkpoint's code."""
    import transformers

    spec_for(architecture)  # refuses unsupported names
    found = getattr(transformers, architecture, None)
    if found is None:
        found = getattr(importlib.import_module(f".{_MODULES[architecture]}", __name__), architecture)
    return found


__all__ = ["ArchitectureSpec", "model_class", "spec_for", "supported_architectures"]
