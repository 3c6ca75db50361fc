"""Decoding that combines, at every step, the logits of the prompt with those of a second view.

VCD (a noised image), AGLA (a masked image) and PAI's guidance (no image) each need a second
forward pass per step with its own KV cache. Both views run as one batch through HF ``generate``
(rows ``[main; contrast]``): HF keeps positions, mRoPE and caches right for every architecture; a
logits processor combines ``main`` and ``contrast`` logits and gives both rows the same combined
scores, so both continue with the same token.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch

from ..errors import FacLensError
from ..generation import GenerationResult, hf_generate, result
from ..lens_model import LensModel

#: per-token kwargs, [B, N] like input_ids; every other tensor is image data stacked along dim 0
TOKEN_KEYS = ("input_ids", "attention_mask", "token_type_ids", "mm_token_type_ids")

Combine = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``combine(main [B, V], contrast [B, V]) -> [B, V]`` float32 next-token scores."""


def _left_pad(tensor: torch.Tensor, length: int, value: int) -> torch.Tensor:
    extra = length - tensor.shape[1]
    if extra == 0:
        return tensor
    pad = torch.full(
        (tensor.shape[0], extra, *tensor.shape[2:]), value, dtype=tensor.dtype, device=tensor.device
    )
    return torch.cat([pad, tensor], dim=1)


def stack_rows(
    main: Mapping[str, Any], contrast: Mapping[str, Any], pad_token_id: int = 0
) -> tuple[dict[str, Any], int]:
    """Rows of ``main`` then rows of ``contrast`` as one batch, left-padded to one length.

    Image tensors of both are concatenated along dim 0; a contrast without images (a text-only
    view) adds none. Returns (batch, left padding added to the main rows).
    """
    if main["input_ids"].shape[0] != contrast["input_ids"].shape[0]:
        raise FacLensError(
            f"contrast_inputs have {contrast['input_ids'].shape[0]} rows for {main['input_ids'].shape[0]} "
            "prompts: give one contrast row per prompt"
        )
    extra_keys = set(contrast) - set(main)
    if extra_keys:
        raise FacLensError(f"contrast_inputs have keys the inputs lack: {sorted(extra_keys)}")
    length = max(main["input_ids"].shape[1], contrast["input_ids"].shape[1])
    out: dict[str, Any] = {}
    for key, value in main.items():
        if not isinstance(value, torch.Tensor):
            out[key] = value
            continue
        other = contrast.get(key)
        if key in TOKEN_KEYS:
            if other is None:
                other = torch.zeros_like(contrast["input_ids"], dtype=value.dtype)
            fill = pad_token_id if key == "input_ids" else 0
            out[key] = torch.cat(
                [_left_pad(value, length, fill), _left_pad(other.to(value.device), length, fill)]
            )
        elif other is None:
            out[key] = value
        else:
            if other.shape[1:] != value.shape[1:]:
                raise FacLensError(
                    f"contrast_inputs[{key!r}] has shape {tuple(other.shape)}, the inputs' has "
                    f"{tuple(value.shape)}: build both views with the same processor settings"
                )
            out[key] = torch.cat([value, other.to(value.device, value.dtype)])
    return out, length - main["input_ids"].shape[1]


class PairedLogits:
    """Logits processor: rows ``[:B]`` and ``[B:]`` are the two views; both get ``combine``'s scores."""

    def __init__(self, n_rows: int, combine: Combine):
        self.n_rows = n_rows
        self.combine = combine

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        main, contrast = scores[: self.n_rows].float(), scores[self.n_rows :].float()
        combined = self.combine(main, contrast).to(scores.dtype)
        return torch.cat([combined, combined])


def paired_generate(
    model: LensModel,
    inputs: dict[str, torch.Tensor],
    contrast: Mapping[str, Any],
    combine: Combine,
    max_new_tokens: int,
    context: Callable[[], AbstractContextManager] = nullcontext,
    **generate_kwargs,
) -> GenerationResult:
    """Greedy decoding of ``argmax combine(l(inputs), l(contrast))`` with one KV cache per view.

    Args:
        inputs: normalised model inputs [B, N].
        contrast: the second view's inputs, one row per prompt (normalised or not).
        context: a context manager factory the generation runs in (attention edits).
    """
    from transformers import LogitsProcessorList

    if generate_kwargs.get("do_sample"):
        raise FacLensError("contrastive decoding here is greedy: leave do_sample unset")
    tokenizer = model.tokenizer
    pad = tokenizer.pad_token_id if tokenizer is not None and tokenizer.pad_token_id is not None else 0
    batch, extra = stack_rows(inputs, contrast, pad)
    n_rows = inputs["input_ids"].shape[0]
    processors = LogitsProcessorList([PairedLogits(n_rows, combine)])
    out = hf_generate(model, batch, max_new_tokens, context, logits_processor=processors, **generate_kwargs)
    sequences = out.sequences[:n_rows, extra:]
    return result(model, inputs, sequences)


def plausible(scores: torch.Tensor, main: torch.Tensor, beta: float) -> torch.Tensor:
    """Adaptive plausibility constraint: ``-inf`` where ``p(y) < beta * max p`` under ``main``
    (``logit(y) < log beta + max logit``). Shapes [B, V]."""
    cutoff = (
        torch.log(torch.tensor(beta, dtype=main.dtype, device=main.device))
        + main.max(-1, keepdim=True).values
    )
    return scores.masked_fill(main < cutoff, float("-inf"))
