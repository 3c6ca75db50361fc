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
from .errors import FacLensError


@dataclass(eq=False)
class LensModel:
    """A wrapped model. Build it with :func:`fac_lens.load`.

    Attributes:
        bridge: the transformer-lens ``TransformerBridge``; hooks such as
            ``blocks.{l}.attn.hook_z`` fire on every forward of ``hf``.
        hf: the HF model, edited in place by the bridge (its forwards run through the hooks).
        processor: the HF processor, or None when only a model object was given.
        spec: architecture facts (see :mod:`fac_lens.architectures`).
        n_layers, n_heads, d_head: text decoder shape (query heads).
        n_kv_heads: key/value heads (GQA).
        image_token_id: the id that marks image positions in ``input_ids``.
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

    @property
    def device(self) -> torch.device:
        return next(self.hf.parameters()).device

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
        self,
        images: Any,
        text: str | Sequence[str],
        chat: bool | None = None,
    ) -> dict[str, torch.Tensor]:
        """Build model inputs through the processor (left-padded, on the model's device).

        Args:
            images: a PIL image / array, or a list with one per prompt.
            text: the question(s). Where a prompt has no image placeholder one is put first.
            chat: wrap each prompt in the processor's chat template with a generation prompt.
                Default: whenever the processor has a chat template.

        Returns:
            HF model kwargs including ``mm_token_type_ids`` where the architecture uses them.
        """
        if self.processor is None:
            raise FacLensError(
                "this LensModel has no processor (it was loaded from a model object); pass raw "
                "input dicts (input_ids, attention_mask, pixel_values, ...) to analysis calls, or "
                "load with fl.load(model, processor=...)"
            )
        texts = [text] if isinstance(text, str) else list(text)
        image_list = images if isinstance(images, (list, tuple)) else [images]
        if any(image is None for image in image_list):
            raise FacLensError("prepare() got no image; every prompt needs one")
        placeholder = self._image_placeholder()
        use_chat = chat if chat is not None else bool(getattr(self.processor, "chat_template", None))
        prompts = []
        for item in texts:
            if use_chat:
                messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": item}]}]
                prompts.append(self.processor.apply_chat_template(messages, add_generation_prompt=True))
            elif self._image_token_text() not in item:
                prompts.append(placeholder + item)
            else:
                prompts.append(item)
        tokenizer = self.tokenizer
        if tokenizer is not None:
            tokenizer.padding_side = "left"
        encoded = self.processor(images=image_list, text=prompts, return_tensors="pt", padding=True)
        return self.normalize(dict(encoded))

    def _image_token_text(self) -> str:
        token = getattr(self.processor, "image_token", None)
        if token is None and self.tokenizer is not None:
            token = self.tokenizer.convert_ids_to_tokens(self.image_token_id)
        return token

    def _image_placeholder(self) -> str:
        token = self._image_token_text()
        start = getattr(self.processor, "vision_start", None)
        end = getattr(self.processor, "vision_end", None)
        if start is None and token == "<|image_pad|>":
            start, end = "<|vision_start|>", "<|vision_end|>"
        return f"{start or ''}{token}{end or ''}"

    def normalize(self, inputs: Mapping[str, Any], require_image: bool = True) -> dict[str, torch.Tensor]:
        """Check and complete a dict of HF kwargs; move tensors to the model's device.

        Raises:
            FacLensError: no ``input_ids``; no image tokens (when required); mismatched batch or
                sequence shapes.
        """
        if not isinstance(inputs, Mapping):
            raise FacLensError(
                f"inputs must be a dict of HF model kwargs (input_ids, attention_mask, "
                f"pixel_values, ...), got {type(inputs).__name__}; build one with model.prepare()"
            )
        out = {k: v for k, v in inputs.items() if v is not None}
        if "input_ids" not in out:
            raise FacLensError("inputs need 'input_ids' (fac_lens finds image positions in them)")
        ids = torch.as_tensor(out["input_ids"])
        if ids.dim() == 1:
            ids = ids[None]
        if ids.dim() != 2:
            raise FacLensError(f"input_ids must be [batch, seq], got shape {tuple(ids.shape)}")
        out["input_ids"] = ids
        mask = out.get("attention_mask")
        if mask is not None:
            mask = torch.as_tensor(mask)
            mask = mask[None] if mask.dim() == 1 else mask
            if mask.shape != ids.shape:
                raise FacLensError(
                    f"attention_mask shape {tuple(mask.shape)} does not match input_ids "
                    f"{tuple(ids.shape)}; pass the mask the processor returned"
                )
            out["attention_mask"] = mask
        if require_image:
            per_row = (ids == self.image_token_id).sum(-1)
            if bool((per_row == 0).any()):
                rows = (per_row == 0).nonzero().flatten().tolist()
                raise FacLensError(
                    f"prompt row(s) {rows} contain no image tokens (id {self.image_token_id}); "
                    "modality ratios need an image in every prompt: build inputs with "
                    "model.prepare(image, text) or put the image placeholder in the text"
                )
            if "pixel_values" not in out:
                raise FacLensError("inputs have image tokens but no 'pixel_values'")
        out = self.spec.add_model_inputs(out, self.image_token_id)
        device, dtype = self.device, self.dtype
        moved = {}
        for key, value in out.items():
            if isinstance(value, torch.Tensor):
                value = value.to(device)
                if key == "pixel_values" and value.is_floating_point():
                    value = value.to(dtype)
            moved[key] = value
        return moved

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
        return any(
            len(point._forward_hooks) or len(point._backward_hooks) or getattr(point, "fwd_hooks", None)
            for point in self.bridge.hook_dict.values()
        )

    @contextmanager
    def unbridged(self) -> Iterator[None]:
        """Run ``hf`` through its original HF modules inside the block (the bridge's wrappers,
        which fire transformer-lens hook points, are put back on exit, also on an exception).

        fac_lens uses it for its own forwards when no transformer-lens hook is attached: the
        wrappers cost Python time per module call (about 2% of a 7B-sized CPU decoding step) and
        fac_lens's own gains, gates and probes sit on the HF modules, so they fire either way.
        """
        swaps: list[tuple[nn.Module, str, nn.Module]] = []
        try:
            _swap_in_originals(self.hf, swaps)
            yield
        finally:
            for parent, name, wrapper in reversed(swaps):
                parent._modules[name] = wrapper

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


def _is_bridge_component(module: nn.Module) -> bool:
    return "_original_component" in module._modules and module._modules["_original_component"] is not None


def _swap_in_originals(module: nn.Module, swaps: list[tuple[nn.Module, str, nn.Module]]) -> None:
    """Replace every bridge wrapper below ``module`` by the HF module it wraps (recorded in swaps)."""
    for name, child in list(module._modules.items()):
        if child is None:
            continue
        if _is_bridge_component(child):
            original = child
            while _is_bridge_component(original):
                original = original._modules["_original_component"]
            module._modules[name] = original
            swaps.append((module, name, child))
            child = original
        _swap_in_originals(child, swaps)


__all__ = ["LensModel", "ATTENTION_NAME"]
