"""``fl.generate``: reasoning traces, vanilla or rescaled, through HF ``generate``."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import torch

from .config import FacConfig
from .gains import Gains
from .inputs import model_errors
from .lens_model import LensModel
from .rescale import RescaleHandle, rescale
from .validation import as_int


@dataclass(frozen=True, eq=False)
class GenerationResult:
    """A generated continuation.

    Attributes:
        sequences: [B, N + T] prompt and generated ids (as HF returns them; left padding kept).
        prompt_length: N.
        text: decoded continuation per sample, or None without a tokenizer.
        rescale: the handle of the rescale block (dynamic mode: per-step ratios), or None.
    """

    sequences: torch.Tensor
    prompt_length: int
    text: list[str] | None
    rescale: RescaleHandle | None = None

    @property
    def new_tokens(self) -> torch.Tensor:
        """[B, T] generated ids (the reasoning trace)."""
        return self.sequences[:, self.prompt_length :]


def generate(
    model: LensModel,
    inputs: Mapping[str, Any],
    max_new_tokens: int = 64,
    fac: Gains | FacConfig | None = None,
    **generate_kwargs,
) -> GenerationResult:
    """Generate greedily (unless ``generate_kwargs`` say otherwise), optionally rescaled.

    Uses HF ``generate`` under the bridge's hooks, which is correct for Qwen2.5-VL's mRoPE
    (transformer-lens's own ``bridge.generate`` is not).

    Args:
        model: a loaded :class:`LensModel`.
        inputs: HF kwargs (batch allowed; left padding for batches).
        max_new_tokens: length of the continuation.
        fac: None (vanilla), static :class:`Gains`, or a dynamic :class:`FacConfig`.
        **generate_kwargs: passed to ``hf.generate`` (e.g. ``do_sample``, ``eos_token_id``).
    """
    max_new_tokens = as_int("max_new_tokens", max_new_tokens, minimum=1)
    inputs = model.normalize(inputs, require_image=fac is not None and isinstance(fac, FacConfig))
    generate_kwargs.setdefault("do_sample", False)
    tokenizer = model.tokenizer
    if tokenizer is not None and tokenizer.pad_token_id is not None:
        generate_kwargs.setdefault("pad_token_id", tokenizer.pad_token_id)
    model.reset_state()
    context = rescale(model, fac) if fac is not None else nullcontext(None)
    try:
        with torch.no_grad(), model.fast_path(), context as handle, model_errors():
            sequences = model.hf.generate(**inputs, max_new_tokens=max_new_tokens, **generate_kwargs)
    finally:
        model.reset_state()
    prompt_length = inputs["input_ids"].shape[1]
    text = (
        tokenizer.batch_decode(sequences[:, prompt_length:], skip_special_tokens=True)
        if tokenizer is not None
        else None
    )
    return GenerationResult(sequences.cpu(), prompt_length, text, handle)
