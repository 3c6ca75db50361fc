"""What fac_lens needs to know about one multimodal architecture."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn


@dataclass(frozen=True)
class ArchitectureSpec:
    """Facts and small adapters for one HF multimodal architecture.

    Attributes:
        hf_architecture: HF class name, as in ``config.architectures[0]``.
        adapter_class: the transformer-lens ``ArchitectureAdapter`` subclass used to build the
            bridge (registered for the duration of the build only).
        text_config: returns the config object the text decoder's attention reads.
        vision_config: returns the vision tower's config, or None.
        multimodal_core: returns the module that receives ``input_ids`` and image inputs on every
            forward, including ``model.hf.model(...)`` calls and each ``generate`` step.
        text_attention: returns the text decoder's HF attention modules, one per layer.
        output_projection: returns a layer's HF ``o_proj`` (an ``nn.Linear``).
        image_token_id: returns the id that marks image positions in ``input_ids``.
        add_model_inputs: adds architecture-specific kwargs derived from ``input_ids`` (Qwen2.5-VL:
            ``mm_token_type_ids`` so that mRoPE positions are used).
        reset_state: clears per-call state the HF model keeps between forwards.
        fallback_processor: ``f(path, **from_pretrained_options)`` builds a processor when ``AutoProcessor``
            cannot load one here (torchvision missing), or None.
        known_limits: what does not work, or works differently, for this architecture (shown in
            the README's supported-models matrix).
        image_layout: ``f(hf, inputs) -> list[ImageLayout]``: each image's token run on its own patch
            grid (see :mod:`fac_lens.architectures.image_grids`), or None where unknown.
    """

    hf_architecture: str
    adapter_class: type
    text_config: Callable[[nn.Module], Any]
    vision_config: Callable[[nn.Module], Any]
    multimodal_core: Callable[[nn.Module], nn.Module]
    text_attention: Callable[[nn.Module], list[nn.Module]]
    output_projection: Callable[[nn.Module], nn.Linear]
    image_token_id: Callable[[nn.Module], int]
    add_model_inputs: Callable[[dict[str, torch.Tensor], int], dict[str, torch.Tensor]]
    reset_state: Callable[[nn.Module], None]
    fallback_processor: Callable[..., Any] | None = None
    known_limits: str = ""
    image_layout: Callable[[nn.Module, dict[str, Any]], list[Any]] | None = None


def unwrap(module: nn.Module) -> nn.Module:
    """The HF module inside a transformer-lens bridge component (the module itself if none)."""
    while getattr(module, "original_component", None) is not None:
        module = module.original_component
    return module


def no_extra_inputs(inputs: dict[str, torch.Tensor], image_token_id: int) -> dict[str, torch.Tensor]:
    """Leave the inputs as they are (architectures that derive nothing from ``input_ids``)."""
    return inputs


def no_state(hf: nn.Module) -> None:
    """Nothing to reset."""


def language_model(hf: nn.Module) -> nn.Module:
    """The text decoder of the usual HF VLM layout (``model.language_model``)."""
    return hf.model.language_model


def text_layers(
    hf: nn.Module, text_model: Callable[[nn.Module], nn.Module] = language_model
) -> list[nn.Module]:
    """Decoder layers of the text model (``model.language_model.layers`` by default)."""
    return list(text_model(hf).layers)


def conditional_generation_spec(
    hf_architecture: str,
    adapter_class: type,
    add_model_inputs: Callable[[dict[str, torch.Tensor], int], dict[str, torch.Tensor]] = no_extra_inputs,
    reset_state: Callable[[nn.Module], None] = no_state,
    fallback_processor: Callable[..., Any] | None = None,
    text_model: Callable[[nn.Module], nn.Module] = language_model,
    known_limits: str = "",
    image_layout: Callable[[nn.Module, dict[str, Any]], list[Any]] | None = None,
) -> ArchitectureSpec:
    """Spec of a ``*ForConditionalGeneration`` model with the usual layout: ``config.text_config``,
    ``config.vision_config``, ``model`` (the multimodal core), ``model.language_model.layers[i]
    .self_attn.o_proj`` (``text_model`` names another decoder, e.g. Idefics3's
    ``model.text_model``) and ``config.image_token_id``."""
    return ArchitectureSpec(
        hf_architecture=hf_architecture,
        adapter_class=adapter_class,
        text_config=lambda hf: hf.config.text_config,
        vision_config=lambda hf: hf.config.vision_config,
        multimodal_core=lambda hf: hf.model,
        text_attention=lambda hf: [unwrap(layer.self_attn) for layer in text_layers(hf, text_model)],
        output_projection=lambda attn: unwrap(attn.o_proj),
        image_token_id=lambda hf: int(hf.config.image_token_id),
        add_model_inputs=add_model_inputs,
        reset_state=reset_state,
        fallback_processor=fallback_processor,
        known_limits=known_limits,
        image_layout=image_layout,
    )
