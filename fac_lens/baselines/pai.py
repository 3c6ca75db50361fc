"""PAI, "Paying more attention to image" (Liu et al., ECCV 2024).

Follows the official code, github.com/LALBJ/PAI: the attention edit is in ``attention.py``
(``llama_new_forward``), the guidance in ``CFG.py`` (``CFGLogits``). The defaults are those of the
README's commands (``--alpha 0.2 --gamma 1.1 --start-layer 2 --end-layer 32``); ``alpha`` and the
layers are also the ``argparse`` defaults of ``pope_eval.py`` / ``chair_eval.py``, whose ``--gamma``
default (2) the README's commands override with 1.1.

In layers ``start <= l < end``, the pre-softmax attention logits ``a`` of the last query (the token
being predicted from) to the image keys become ``a + alpha |a|`` in every head. Optionally (``gamma
!= 1``) PAI guides the next-token distribution away from the language prior with a text-only pass::

    log p = gamma (log p(y | v, x) - log p(y | x)) + log p(y | x)

restricted, as in the official ``CFG.py``, to the plausible set ``{y : p(y | v, x) >= beta max_w
p(w | v, x)}`` (``beta=0.1``; VCD's adaptive plausibility constraint, the same helper). With
``gamma = 1`` the guidance is the conditional distribution itself and no second pass runs.

The text-only pass is the prompt with its image tokens removed (left-padded), decoded alongside with
its own KV cache; it has no image keys, so the attention edit leaves it unchanged (the official code
switches the edit off for that pass).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import FacLensError
from ..generation import GenerationResult, hf_generate
from ..lens_model import LensModel
from .attention_edit import Keys, NoWeightEdit, attention_edits
from .base import Baseline, check_range
from .layers import resolve_layers
from .paired import TOKEN_KEYS, paired_generate, plausible

#: the official ``--start-layer 2 --end-layer 32`` of the 32-layer LLaVA-1.5 (0-based, end
#: exclusive), scaled to depth
PAPER_LAYERS = (2, 32)


class LastQueryAmplify(NoWeightEdit):
    """``a + alpha |a|`` on the image keys of the last query row."""

    def __init__(self, alpha: float):
        self.alpha = alpha

    def scores(self, scores: torch.Tensor, keys: Keys) -> torch.Tensor:
        image = keys.image[:, None, :].to(scores.dtype)  # [B, 1, K]
        scores = scores.clone()
        last = scores[:, :, -1, :]
        scores[:, :, -1, :] = last + self.alpha * last.abs() * image
        return scores


def text_only(inputs: Mapping[str, Any], image_token_id: int, pad_token_id: int = 0) -> dict[str, Any]:
    """The prompts without their image tokens (and without images), left-padded: [B, N'] each."""
    ids = inputs["input_ids"]
    mask = inputs.get("attention_mask")
    mask = torch.ones_like(ids) if mask is None else mask
    keep = (ids != image_token_id) & mask.bool()
    length = int(keep.sum(1).max())
    out: dict[str, Any] = {}
    for key in TOKEN_KEYS:
        if key not in inputs:
            continue
        value = inputs[key]
        fill = pad_token_id if key == "input_ids" else 0
        rows = torch.full((ids.shape[0], length), fill, dtype=value.dtype, device=value.device)
        for b in range(ids.shape[0]):
            kept = value[b][keep[b]]
            rows[b, length - len(kept) :] = kept
        out[key] = rows
    if "attention_mask" in out:
        out["attention_mask"] = (
            torch.arange(length, device=ids.device)[None] >= length - keep.sum(1)[:, None]
        ).to(out["attention_mask"].dtype)
    return out


def guidance_scores(main: torch.Tensor, text: torch.Tensor, gamma: float, beta: float = 0.1) -> torch.Tensor:
    """PAI's guidance on [B, V] logits of the image prompt and of the text-only prompt, ``-inf``
    outside the plausible set of the image prompt (``p < beta max p``)."""
    conditional, unconditional = main.log_softmax(-1), text.log_softmax(-1)
    return plausible(gamma * (conditional - unconditional) + unconditional, main, beta)


@dataclass(frozen=True)
class PAI(Baseline):
    """Pay attention to image. Defaults: the official LLaVA-1.5 settings ``alpha=0.2``, guidance
    ``gamma=1.1`` (``gamma=1``: attention edit only) cut to the plausible set of ``beta=0.1``;
    layers None: its 2..31 of 32 scaled to the model's depth."""

    alpha: float = 0.2
    start: int | None = None
    end: int | None = None
    gamma: float = 1.1
    beta: float = 0.1
    name = "pai"

    def __post_init__(self) -> None:
        check_range("PAI alpha", self.alpha, 0.0)
        check_range("PAI gamma", self.gamma, 0.0)
        check_range("PAI beta", self.beta, 0.0, 1.0)
        if self.beta <= 0:
            raise FacLensError("PAI beta must be > 0 (the plausibility cut-off is log beta)")

    def check_model(self, n_layers: int) -> None:
        resolve_layers("PAI", self.start, self.end, PAPER_LAYERS, n_layers)

    @contextmanager
    def applied(self, model: LensModel, inputs: Mapping[str, Any] | None = None) -> Iterator[None]:
        """The attention edit alone (no guidance) for every forward inside the block."""
        layers = set(resolve_layers("PAI", self.start, self.end, PAPER_LAYERS, model.n_layers))
        edit = LastQueryAmplify(self.alpha)
        with attention_edits(model, lambda layer: edit if layer in layers else None):
            yield

    def generate(
        self,
        model: LensModel,
        inputs: Mapping[str, Any],
        max_new_tokens: int,
        images: Sequence[Any] | None = None,
        prompts: Sequence[str] | None = None,
        **generate_kwargs,
    ) -> GenerationResult:
        self.check_model(model.n_layers)
        inputs = model.normalize(inputs, require_image=True)
        context = lambda: self.applied(model)  # noqa: E731
        if self.gamma == 1:
            return hf_generate(model, inputs, max_new_tokens, context, **generate_kwargs)
        tokenizer = model.tokenizer
        pad = tokenizer.pad_token_id if tokenizer is not None and tokenizer.pad_token_id is not None else 0
        contrast = text_only(inputs, model.image_token_id, pad)
        return paired_generate(
            model,
            inputs,
            contrast,
            lambda main, text: guidance_scores(main, text, self.gamma, self.beta),
            max_new_tokens,
            context,
            **generate_kwargs,
        )
