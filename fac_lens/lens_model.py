"""LensModel: a multimodal HF model wrapped in a transformer-lens bridge, plus shape facts."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .architectures import ArchitectureSpec
from .attention_probe import ATTENTION_NAME
from .bridging import bridge_has_hooks, unbridged
from .inputs import model_errors, normalize_inputs, prepare_inputs
from .offline import refuse_urls


@dataclass(eq=False)
class LensModel:
    """A wrapped model. Build it with :func:`fac_lens.load`.

    Attributes:
        bridge: the transformer-lens ``TransformerBridge``; hooks such as
            ``blocks.{l}.attn.hook_z`` fire on every forward of ``hf``.
        hf: the HF model, edited in place by the bridge (its forwards run through the hooks).
        processor: the HF processor, or None when only a model object was given.
        spec: architecture facts (see :mod:`fac_lens.architectures`).
        n_layers, n_heads, d_head: text decoder shape (query heads); ``d_head`` is each head's width
            in the ``o_proj`` input (``hook_z``): with multi-head latent attention (Kimi-K2.5,
            DeepSeek-V3) the value head size, not the query/key one.
        n_kv_heads: key/value heads (GQA).
        image_token_id: the id that marks image positions in ``input_ids``.

    A model dispatched by accelerate (``hf.hf_device_map``: layers on several devices, or
    offloaded to CPU or disk and streamed in by hooks) keeps its placement: inputs go to
    :attr:`device`, and what fac_lens makes for a layer lives on :meth:`layer_devices`.
    """

    bridge: Any
    hf: nn.Module
    processor: Any
    spec: ArchitectureSpec
    n_layers: int
    n_heads: int
    d_head: int
    n_kv_heads: int
    image_token_id: int
    _param_names: dict[str, torch.Tensor] = field(repr=False, default_factory=dict)
    _o_proj_names: list[str] = field(repr=False, default_factory=list)

    @property
    def device(self) -> torch.device:
        """Where inputs go: the first parameter's device, or a dispatched model's main device."""
        device_map = dispatch_map(self.hf)
        if device_map is not None:
            return main_device(device_map)
        return next(self.hf.parameters()).device

    def layer_devices(self) -> list[torch.device]:
        """The device each text layer computes on (its ``o_proj`` input lives there)."""
        device_map = dispatch_map(self.hf)
        if device_map is None or len(self._o_proj_names) != self.n_layers:
            return [self.device] * self.n_layers
        main = main_device(device_map)
        return [execution_device(device_map, name, main) for name in self._o_proj_names]

    @property
    def dtype(self) -> torch.dtype:
        return next(self.hf.parameters()).dtype

    @property
    def tokenizer(self) -> Any:
        """The tokenizer (from the processor), or None."""
        return getattr(self.processor, "tokenizer", None)

    @property
    def attention_modules(self) -> list[nn.Module]:
        """The text decoder's HF attention modules, one per layer."""
        return self.spec.text_attention(self.hf)

    def output_projections(self) -> list[nn.Linear]:
        """Each layer's ``o_proj``; ``hook_z`` is its input, split into heads."""
        return [self.spec.output_projection(m) for m in self.attention_modules]

    def __repr__(self) -> str:
        return (
            f"LensModel({self.spec.hf_architecture}, layers={self.n_layers}, heads={self.n_heads}, "
            f"kv_heads={self.n_kv_heads}, d_head={self.d_head}, device={self.device}, "
            f"dtype={self.dtype}, processor={type(self.processor).__name__ if self.processor else None})"
        )

    # ----------------------------------------------------------------------------------- inputs
    def prepare(
        self, images: Any, text: str | Sequence[str], chat: bool | None = None
    ) -> dict[str, torch.Tensor]:
        """Build model inputs through the processor: see :func:`fac_lens.inputs.prepare_inputs`.

        Image URLs are refused (fac_lens never downloads).
        """
        refuse_urls(images)
        return prepare_inputs(self, images, text, chat)

    def normalize(self, inputs: Mapping[str, Any], require_image: bool = True) -> dict[str, torch.Tensor]:
        """Check and complete a dict of HF kwargs: see :func:`fac_lens.inputs.normalize_inputs`."""
        return normalize_inputs(self, inputs, require_image)

    # ------------------------------------------------------------------------------ attention
    @contextmanager
    def attention_implementation(self, name: str) -> Iterator[None]:
        """Run the text decoder with another HF attention function inside the block.

        ``"eager"`` makes ``blocks.{l}.attn.hook_pattern`` fire (N x N per layer); the default
        outside any block is fac_lens's SDPA-based function.
        """
        config = self.spec.text_config(self.hf)
        previous = config._attn_implementation
        config._attn_implementation = name
        try:
            yield
        finally:
            config._attn_implementation = previous

    def has_bridge_hooks(self) -> bool:
        """Whether any transformer-lens hook is attached to the bridge (yours, for instance)."""
        return bridge_has_hooks(self.bridge)

    def unbridged(self):
        """Context: ``hf`` runs through its original HF modules (see :func:`fac_lens.bridging.unbridged`)."""
        return unbridged(self.hf)

    @contextmanager
    def fast_path(self) -> Iterator[None]:
        """``unbridged()`` unless a transformer-lens hook is attached (then hooks must fire)."""
        if self.has_bridge_hooks():
            yield
        else:
            with self.unbridged():
                yield

    def reset_state(self) -> None:
        """Clear per-call state the HF model caches between forwards (Qwen2.5-VL rope deltas)."""
        self.spec.reset_state(self.hf)

    def forward(self, inputs: Mapping[str, Any], **kwargs) -> Any:
        """``hf(**inputs)`` after normalising inputs and clearing cached per-call state."""
        inputs = self.normalize(inputs, require_image=False)
        self.reset_state()
        with model_errors():
            return self.hf(**inputs, **kwargs)

    # ---------------------------------------------------------------------------------- saving
    def state_dict_hf(self) -> dict[str, torch.Tensor]:
        """The HF state dict under the original parameter names (the bridge renames modules)."""
        return {name: tensor.detach() for name, tensor in self._param_names.items()}

    def save_pretrained(self, path: str, **kwargs) -> None:
        """Save weights (e.g. after :func:`fac_lens.fold_gains`) and the processor to ``path``.

        The result loads with plain ``from_pretrained``, without fac_lens.
        """
        config = self.spec.text_config(self.hf)
        previous = config._attn_implementation
        try:
            config._attn_implementation = "sdpa"
            self.hf.save_pretrained(path, state_dict=self.state_dict_hf(), **kwargs)
        finally:
            config._attn_implementation = previous
        if self.processor is not None and hasattr(self.processor, "save_pretrained"):
            self.processor.save_pretrained(path)


def dispatch_map(hf: nn.Module) -> dict[str, Any] | None:
    """accelerate's ``hf_device_map`` when it spreads the model (several devices, or offload)."""
    device_map = getattr(hf, "hf_device_map", None)
    if not device_map:
        return None
    values = {str(v) for v in device_map.values()}
    return device_map if len(values) > 1 or values & {"disk", "meta"} else None


def _as_device(value: Any) -> torch.device:
    return torch.device(f"cuda:{value}") if isinstance(value, int) else torch.device(value)


def main_device(device_map: Mapping[str, Any]) -> torch.device:
    """accelerate's rule: the first accelerator in the map, else the CPU (offloaded weights run
    there)."""
    accelerators = [v for v in device_map.values() if str(v) not in ("cpu", "disk", "meta")]
    return _as_device(accelerators[0]) if accelerators else torch.device("cpu")


def execution_device(device_map: Mapping[str, Any], name: str, main: torch.device) -> torch.device:
    """The device module ``name`` computes on: its map entry (longest prefix); CPU- or
    disk-offloaded entries compute on ``main``."""
    keys = [k for k in device_map if k == "" or name == k or name.startswith(k + ".")]
    if not keys:
        return main
    value = device_map[max(keys, key=len)]
    return main if str(value) in ("cpu", "disk", "meta") else _as_device(value)


__all__ = ["LensModel", "ATTENTION_NAME"]
