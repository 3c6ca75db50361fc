"""Model inputs: build them through the processor, or check and complete a raw dict of HF kwargs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch

from .errors import FacLensError

if TYPE_CHECKING:
    from .lens_model import LensModel


def prepare_inputs(
    model: LensModel,
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
    if model.processor is None:
        raise FacLensError(
            "this LensModel has no processor (it was loaded from a model object); pass raw "
            "input dicts (input_ids, attention_mask, pixel_values, ...) to analysis calls, or "
            "load with fl.load(model, processor=...)"
        )
    texts = [text] if isinstance(text, str) else list(text)
    image_list = images if isinstance(images, (list, tuple)) else [images]
    if any(image is None for image in image_list):
        raise FacLensError("prepare() got no image; every prompt needs one")
    placeholder = _image_placeholder(model)
    use_chat = chat if chat is not None else bool(getattr(model.processor, "chat_template", None))
    prompts = []
    for item in texts:
        if use_chat:
            messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": item}]}]
            prompts.append(model.processor.apply_chat_template(messages, add_generation_prompt=True))
        elif _image_token_text(model) not in item:
            prompts.append(placeholder + item)
        else:
            prompts.append(item)
    tokenizer = model.tokenizer
    if tokenizer is not None:
        tokenizer.padding_side = "left"
    encoded = model.processor(images=image_list, text=prompts, return_tensors="pt", padding=True)
    return normalize_inputs(model, dict(encoded))


def _image_token_text(model: LensModel) -> str:
    token = getattr(model.processor, "image_token", None)
    if token is None and model.tokenizer is not None:
        token = model.tokenizer.convert_ids_to_tokens(model.image_token_id)
    return token


def _image_placeholder(model: LensModel) -> str:
    token = _image_token_text(model)
    start = getattr(model.processor, "vision_start", None)
    end = getattr(model.processor, "vision_end", None)
    if start is None and token == "<|image_pad|>":
        start, end = "<|vision_start|>", "<|vision_end|>"
    return f"{start or ''}{token}{end or ''}"


def normalize_inputs(
    model: LensModel, inputs: Mapping[str, Any], require_image: bool = True
) -> dict[str, torch.Tensor]:
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
        per_row = (ids == model.image_token_id).sum(-1)
        if bool((per_row == 0).any()):
            rows = (per_row == 0).nonzero().flatten().tolist()
            raise FacLensError(
                f"prompt row(s) {rows} contain no image tokens (id {model.image_token_id}); "
                "modality ratios need an image in every prompt: build inputs with "
                "model.prepare(image, text) or put the image placeholder in the text"
            )
        if "pixel_values" not in out:
            raise FacLensError("inputs have image tokens but no 'pixel_values'")
    out = model.spec.add_model_inputs(out, model.image_token_id)
    device, dtype = model.device, model.dtype
    moved = {}
    for key, value in out.items():
        if isinstance(value, torch.Tensor):
            value = value.to(device)
            if key == "pixel_values" and value.is_floating_point():
                value = value.to(dtype)
        moved[key] = value
    return moved
