"""``fl.generate``: reasoning traces, vanilla, rescaled or under a baseline, through HF ``generate``."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import torch

from .config import FacConfig
from .errors import FacLensError
from .gains import Gains
from .inputs import model_errors
from .lens_model import LensModel
from .rescale import RECORD, RescaleHandle, rescale
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
    method: Any = None,
    images: Sequence[Any] | None = None,
    prompts: Sequence[str] | None = None,
    record: str = "all",
    **generate_kwargs,
) -> GenerationResult:
    """Generate greedily (unless ``generate_kwargs`` say otherwise), vanilla, rescaled or under a
    baseline method.

    Uses HF ``generate`` under the bridge's hooks, which is correct for Qwen2.5-VL's mRoPE
    (transformer-lens's own ``bridge.generate`` is not).

    Args:
        model: a loaded :class:`LensModel`.
        inputs: HF kwargs (batch allowed; left padding for batches).
        max_new_tokens: length of the continuation.
        method: None (vanilla), static :class:`Gains`, a dynamic :class:`FacConfig`, or a
            baseline of :mod:`fac_lens.baselines` (``fl.baselines.VCD()``, ...).
        fac: alias of ``method`` (FAC settings only); give one of the two.
        images, prompts: the raw images and question texts, for the baselines that look at them
            (CGD's and AGLA's scorers); ignored by the others.
        record: dynamic mode: ``"all"`` records S_v of every layer in every pass, ``"bands"`` only
            where it decides (the same tokens, less work per step); see :func:`fac_lens.rescale`.
        **generate_kwargs: passed to ``hf.generate`` (e.g. ``do_sample``, ``eos_token_id``).
    """
    from .baselines.base import Baseline

    if fac is not None and method is not None:
        raise FacLensError("give the method once: method=... (fac=... is its alias)")
    method = fac if method is None else method
    max_new_tokens = as_int("max_new_tokens", max_new_tokens, minimum=1)
    if record not in RECORD:
        raise FacLensError(
            f"record={record!r}: use 'all' (S_v of every layer) or 'bands' (only where it decides)"
        )
    if isinstance(method, Baseline):
        with model_errors():
            return method.generate(
                model, inputs, max_new_tokens, images=images, prompts=prompts, **generate_kwargs
            )
    if method is not None and not isinstance(method, (Gains, FacConfig)):
        raise FacLensError(
            f"method must be None, fl.Gains, fl.FacConfig or a fac_lens.baselines method, got "
            f"{type(method).__name__}"
        )
    inputs = model.normalize(inputs, require_image=isinstance(method, FacConfig))
    context = (
        (lambda: rescale(model, method, record=record)) if method is not None else (lambda: nullcontext(None))
    )
    return hf_generate(model, inputs, max_new_tokens, context, **generate_kwargs)


def hf_generate(
    model: LensModel,
    inputs: dict[str, torch.Tensor],
    max_new_tokens: int,
    context: Callable[[], AbstractContextManager],
    **generate_kwargs,
) -> GenerationResult:
    """HF ``generate`` on normalised ``inputs`` inside ``context()`` (greedy unless told otherwise);
    the model's per-call state is cleared before and after."""
    generate_kwargs.setdefault("do_sample", False)
    tokenizer = model.tokenizer
    if tokenizer is not None and tokenizer.pad_token_id is not None:
        generate_kwargs.setdefault("pad_token_id", tokenizer.pad_token_id)
    model.reset_state()
    try:
        with torch.no_grad(), model.fast_path(), context() as handle, model_errors():
            sequences = model.hf.generate(**inputs, max_new_tokens=max_new_tokens, **generate_kwargs)
    finally:
        model.reset_state()
    return result(model, inputs, sequences, handle if isinstance(handle, RescaleHandle) else None)


def result(
    model: LensModel, inputs: Mapping[str, Any], sequences: torch.Tensor, handle: RescaleHandle | None = None
) -> GenerationResult:
    """A :class:`GenerationResult` of ``sequences`` [B, N + T] for prompts ``inputs``."""
    prompt_length = inputs["input_ids"].shape[1]
    tokenizer = model.tokenizer
    text = (
        tokenizer.batch_decode(sequences[:, prompt_length:], skip_special_tokens=True)
        if tokenizer is not None
        else None
    )
    return GenerationResult(sequences.cpu(), prompt_length, text, handle)
