"""Case study of one sample: vanilla vs rescaled reasoning traces, and the contribution maps of the
answer token before and after rescaling (the paper's Appendix H)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from .config import FacConfig
from .contribution import ContributionMap, contribution_map
from .errors import FacLensError
from .gains import Gains
from .generation import GenerationResult, generate
from .lens_model import LensModel
from .rescale import rescale
from .validation import as_int


@dataclass(frozen=True, eq=False)
class CaseStudy:
    """One sample seen with and without rescaling.

    Attributes:
        vanilla_trace, fac_trace: the generated reasoning traces.
        answer_token: the vanilla-trace token the maps explain: the answer (the token after
            ``</think>``) unless another token was asked for.
        before, after: contribution maps of that token on the vanilla trace, without and with
            rescaling (the same token sequence, so the maps are comparable).
        vanilla_tokens, fac_tokens: the generated tokens as text (special tokens left out).
        fac_answer_token: the token of the rescaled trace that ``after_own`` explains (its answer,
            or the same generated index as ``answer_token``).
        after_own: the rescaled model's map of that token on its own trace.
        vanilla_ids, fac_ids: [N + T] prompt and trace ids of each generation; prompt_length: N.
        answer_position: position in ``vanilla_ids`` of ``answer_token`` (its map is taken at the
            position before).
        fac_passes: dynamic mode: float [n_layers, n_heads] S_v of each forward pass of the
            rescaled generation (prefill, then one per decoding step); empty for static gains.

    Under dynamic rescaling every map gets the gains generation used at each position (the
    prefill's over the prompt, each decoding step's over its own token: :func:`teacher_forcing`).
    """

    question: str
    vanilla_trace: str
    fac_trace: str
    answer_token: str
    before: ContributionMap
    after: ContributionMap
    vanilla_tokens: tuple[str, ...] = ()
    fac_tokens: tuple[str, ...] = ()
    fac_answer_token: str | None = None
    after_own: ContributionMap | None = None
    vanilla_ids: torch.Tensor | None = None
    fac_ids: torch.Tensor | None = None
    prompt_length: int | None = None
    answer_position: int | None = None
    fac_passes: tuple[torch.Tensor, ...] = ()

    @property
    def first_difference(self) -> int | None:
        """Index of the first generated token where the two traces differ (None if identical)."""
        return first_divergence(self.vanilla_tokens, self.fac_tokens)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary (top-3 heads instead of the maps)."""
        return {
            "question": self.question,
            "vanilla_trace": self.vanilla_trace,
            "fac_trace": self.fac_trace,
            "answer_token": self.answer_token,
            "fac_answer_token": self.fac_answer_token,
            "first_difference": self.first_difference,
            "top_heads_vanilla": self.before.ranking(top=3),
            "top_heads_fac": self.after.ranking(top=3),
            "top_heads_fac_own_trace": None if self.after_own is None else self.after_own.ranking(top=3),
        }


def first_divergence(tokens: Sequence[str], reference: Sequence[str]) -> int | None:
    """Index of the first position where two token sequences differ (a length difference counts
    at the shorter one's end); None when they are equal."""
    for index, (a, b) in enumerate(zip(tokens, reference, strict=False)):
        if a != b:
            return index
    return None if len(tokens) == len(reference) else min(len(tokens), len(reference))


def case_study(
    model: LensModel,
    image: Any,
    question: str,
    fac: Gains | FacConfig,
    max_new_tokens: int = 48,
    token: int | None = None,
) -> CaseStudy:
    """Generate with and without ``fac``; contribution maps of one token of each trace.

    Args:
        token: index of the generated token whose maps are taken (e.g. the first wrong one);
            default: the answer token, the one after the last ``</think>`` (the last generated
            token when the trace has none). A map is taken at the position that predicts it.
    """
    _check_fac(model, fac)
    token = None if token is None else as_int("token", token, minimum=0)
    max_new_tokens = as_int("max_new_tokens", max_new_tokens, minimum=1)
    inputs = model.prepare(image, question)
    vanilla = generate(model, inputs, max_new_tokens=max_new_tokens)
    rescaled = generate(model, inputs, max_new_tokens=max_new_tokens, fac=fac)
    vanilla_position, vanilla_tokens = _scored_token(model, vanilla, token)
    fac_position, fac_tokens = _scored_token(
        model, rescaled, token if token is not None else None, strict=False
    )
    on_vanilla = _sequence(inputs, vanilla.sequences)
    on_rescaled = _sequence(inputs, rescaled.sequences)
    before = contribution_map(
        model, on_vanilla, position=vanilla_position - 1, prompt_length=vanilla.prompt_length
    )
    with rescale(model, fac):
        after = contribution_map(
            model, on_vanilla, position=vanilla_position - 1, prompt_length=vanilla.prompt_length
        )
        after_own = contribution_map(
            model, on_rescaled, position=fac_position - 1, prompt_length=rescaled.prompt_length
        )
    return CaseStudy(
        question,
        vanilla.text[0],
        rescaled.text[0],
        vanilla_tokens[vanilla_position],
        before,
        after,
        _token_texts(model, vanilla.new_tokens[0]),
        _token_texts(model, rescaled.new_tokens[0]),
        fac_answer_token=fac_tokens[fac_position],
        after_own=after_own,
        vanilla_ids=vanilla.sequences[0],
        fac_ids=rescaled.sequences[0],
        prompt_length=vanilla.prompt_length,
        answer_position=vanilla_position,
        fac_passes=tuple(p[0] for p in rescaled.rescale.pass_ratios) if isinstance(fac, FacConfig) else (),
    )


def _check_fac(model: LensModel, fac: Any) -> None:
    """``fac`` is static Gains or a dynamic FacConfig that fits the model (checked before any work)."""
    if isinstance(fac, Gains):
        fac.check_model(model.n_layers, model.n_heads)
    elif isinstance(fac, FacConfig):
        fac.check_model(model.n_layers)
    else:
        raise FacLensError(
            f"fac must be fl.Gains (static) or fl.FacConfig (dynamic), got {type(fac).__name__}"
        )


def _sequence(inputs: dict[str, Any], ids: torch.Tensor) -> dict[str, Any]:
    """The prompt's inputs with ``input_ids`` replaced by prompt + trace ([1, N]), fully attended."""
    sequence = {k: v for k, v in inputs.items() if k != "mm_token_type_ids"}
    sequence["input_ids"] = ids
    sequence["attention_mask"] = ids.new_ones(ids.shape)
    return sequence


def _scored_token(
    model: LensModel, result: GenerationResult, token: int | None, strict: bool = True
) -> tuple[int, list[str]]:
    """(position in the sequence of the token whose map is taken, the sequence's tokens).

    ``token`` indexes the generated tokens; None: the answer after the last ``</think>``. With
    ``strict=False`` an index past the end falls back to the last generated token.
    """
    tokens = model.tokenizer.convert_ids_to_tokens(result.sequences[0])
    start, n_generated = result.prompt_length, len(tokens) - result.prompt_length
    if token is not None:
        if 0 <= token < n_generated:
            return start + token, tokens
        if strict:
            raise FacLensError(f"token={token} is outside the generated trace (0..{n_generated - 1})")
        return len(tokens) - 1, tokens
    ends = [i for i in range(start, len(tokens)) if tokens[i] == "</think>"]
    return (min(ends[-1] + 1, len(tokens) - 1) if ends else len(tokens) - 1), tokens


def _token_texts(model: LensModel, ids) -> tuple[str, ...]:
    """Each generated token as text, special tokens (end of turn, padding) left out."""
    tokenizer = model.tokenizer
    special = set(tokenizer.all_special_ids)
    return tuple(tokenizer.decode([i]) for i in ids.tolist() if i not in special)
