"""Model inputs: build them through the processor, or check and complete a raw dict of HF kwargs."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
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
    texts = [text] if isinstance(text, str) else list(text) if isinstance(text, (list, tuple)) else [None]
    if not texts or not all(isinstance(item, str) for item in texts):
        raise FacLensError(f"prepare() needs text as a str or a non-empty list of str, got {text!r:.80}")
    image_list = images if isinstance(images, (list, tuple)) else [images]
    if not image_list or any(image is None for image in image_list):
        raise FacLensError("prepare() got no image; every prompt needs one")
    if len(image_list) != len(texts):
        raise FacLensError(
            f"prepare() got {len(image_list)} images for {len(texts)} prompts: give one image per prompt"
        )
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
    with _left_padding(model.tokenizer), model_errors("the processor"):
        encoded = model.processor(images=image_list, text=prompts, return_tensors="pt", padding=True)
    # the tokenizer's ids are not checked against the embedding: the forward that uses them checks
    return normalize_inputs(model, dict(encoded), check_vocabulary=False)


@contextmanager
def model_errors(what: str = "the model") -> Iterator[None]:
    """Report what HF refuses in a forward (image tokens that do not match the images, ...) as a
    :class:`FacLensError` that keeps HF's message; fac_lens's own context managers still clean up."""
    try:
        yield
    except FacLensError:
        raise
    except (
        ValueError,
        TypeError,
        IndexError,
        KeyError,
        StopIteration,
        AttributeError,
        ArithmeticError,
    ) as error:
        raise FacLensError(
            f"{what} refused these inputs ({type(error).__name__}: {error or 'no message'}). Check that "
            "input_ids hold one image placeholder per image in pixel_values (with the count of image "
            "tokens the processor writes) and only ids of the vocabulary: build inputs with "
            "model.prepare(image, text)"
        ) from error


@contextmanager
def _left_padding(tokenizer: Any) -> Iterator[None]:
    """Pad on the left inside the block; the tokenizer's own ``padding_side`` is restored after."""
    if tokenizer is None:
        yield
        return
    previous = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        yield
    finally:
        tokenizer.padding_side = previous


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
    model: LensModel, inputs: Mapping[str, Any], require_image: bool = True, check_vocabulary: bool = True
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
    try:
        ids = torch.as_tensor(out["input_ids"])
    except (TypeError, ValueError, RuntimeError) as error:
        raise FacLensError(f"input_ids must be an integer [batch, seq] tensor: {error}") from error
    if ids.dim() == 1:
        ids = ids[None]
    if ids.dim() != 2:
        raise FacLensError(f"input_ids must be [batch, seq], got shape {tuple(ids.shape)}")
    _check_ids(model, ids, check_vocabulary)
    out["input_ids"] = ids
    mask = out.get("attention_mask")
    if mask is not None:
        mask = _mask_tensor(mask)
        mask = mask[None] if mask.dim() == 1 else mask
        if mask.shape != ids.shape:
            raise FacLensError(
                f"attention_mask shape {tuple(mask.shape)} does not match input_ids "
                f"{tuple(ids.shape)}; pass the mask the processor returned"
            )
        out["attention_mask"] = mask
    if "pixel_values" not in out and bool((ids == model.image_token_id).any()):
        raise FacLensError(
            f"input_ids hold image tokens (id {model.image_token_id}) but the inputs have no "
            "'pixel_values': pass the processor's pixel_values with them (model.prepare builds both)"
        )
    if require_image:
        per_row = (ids == model.image_token_id).sum(-1)
        if bool((per_row == 0).any()):
            rows = (per_row == 0).nonzero().flatten().tolist()
            raise FacLensError(
                f"prompt row(s) {rows} contain no image tokens (id {model.image_token_id}); "
                "modality ratios need an image in every prompt: build inputs with "
                "model.prepare(image, text) or put the image placeholder in the text"
            )
    _check_pixels(model, ids, out.get("pixel_values"))
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


def _check_ids(model: LensModel, ids: torch.Tensor, check_vocabulary: bool) -> None:
    """Token ids: a non-empty integer tensor (of the embedding's vocabulary, when checked)."""
    if ids.dtype.is_floating_point or ids.dtype in (torch.bool, torch.complex64, torch.complex128):
        raise FacLensError(f"input_ids must be integer token ids, got dtype {ids.dtype}")
    if ids.numel() == 0:
        raise FacLensError(f"input_ids are empty (shape {tuple(ids.shape)}): give at least one token")
    if not check_vocabulary:
        return
    n_vocab = model.hf.get_input_embeddings().num_embeddings
    bad = ids[(ids < 0) | (ids >= n_vocab)]
    if bad.numel():
        raise FacLensError(
            f"input_ids hold {bad.numel()} id(s) outside the vocabulary [0, {n_vocab}), e.g. "
            f"{bad[:3].tolist()}: tokenize with this model's tokenizer (model.prepare)"
        )


def _check_pixels(model: LensModel, ids: torch.Tensor, pixels: Any) -> None:
    """``pixel_values`` go with image tokens, and are finite floats."""
    if pixels is None:
        return
    if not isinstance(pixels, torch.Tensor) or not pixels.is_floating_point():
        raise FacLensError("pixel_values must be a float tensor, as the processor returns it")
    if not bool(torch.isfinite(pixels).all()):
        raise FacLensError("pixel_values hold NaN or inf: pass the images through model.prepare")
    if not bool((ids == model.image_token_id).any()):
        raise FacLensError(
            f"inputs have pixel_values but input_ids hold no image token (id {model.image_token_id}): "
            "put the image placeholder in the text, or build inputs with model.prepare(image, text)"
        )


def _mask_tensor(mask: Any) -> torch.Tensor:
    """An attention mask of 0 (padding) and 1 (token)."""
    try:
        mask = torch.as_tensor(mask)
    except (TypeError, ValueError, RuntimeError) as error:
        raise FacLensError(f"attention_mask must be a [batch, seq] tensor of 0 and 1: {error}") from error
    if not bool(((mask == 0) | (mask == 1)).all()):
        raise FacLensError("attention_mask must hold 0 (padding) and 1 (token): pass the processor's mask")
    return mask
