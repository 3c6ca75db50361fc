"""Case study of one sample: vanilla vs rescaled reasoning traces, and the contribution maps of the
answer token before and after rescaling (the paper's Appendix H)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .config import FacConfig
from .contribution import ContributionMap, contribution_map
from .errors import FacLensError
from .gains import Gains
from .generation import generate
from .lens_model import LensModel
from .rescale import rescale


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
    """

    question: str
    vanilla_trace: str
    fac_trace: str
    answer_token: str
    before: ContributionMap
    after: ContributionMap
    vanilla_tokens: tuple[str, ...] = ()
    fac_tokens: tuple[str, ...] = ()

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
            "first_difference": self.first_difference,
            "top_heads_vanilla": self.before.ranking(top=3),
            "top_heads_fac": self.after.ranking(top=3),
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
    """Generate with and without ``fac``; contribution maps of one token of the vanilla trace.

    Args:
        token: index of the generated token whose maps are taken (e.g. the first wrong one);
            default: the answer token, the one after the last ``</think>`` (the last generated
            token when the trace has none). A map is taken at the position that predicts it.
    """
    inputs = model.prepare(image, question)
    vanilla = generate(model, inputs, max_new_tokens=max_new_tokens)
    rescaled = generate(model, inputs, max_new_tokens=max_new_tokens, fac=fac)
    ids = vanilla.sequences
    sequence = {k: v for k, v in inputs.items() if k != "mm_token_type_ids"}
    sequence["input_ids"] = ids
    sequence["attention_mask"] = ids.new_ones(ids.shape)
    tokens = model.tokenizer.convert_ids_to_tokens(ids[0])
    generated = range(vanilla.prompt_length, len(tokens))
    ends = [i for i in generated if tokens[i] == "</think>"]
    answer_position = min(ends[-1] + 1, len(tokens) - 1) if ends else len(tokens) - 1
    if token is not None:
        if not 0 <= token < len(tokens) - vanilla.prompt_length:
            raise FacLensError(
                f"token={token} is outside the generated trace (0..{len(tokens) - vanilla.prompt_length - 1})"
            )
        answer_position = vanilla.prompt_length + token
    before = contribution_map(model, sequence, target=None, position=answer_position - 1)
    with rescale(model, fac):
        after = contribution_map(model, sequence, target=None, position=answer_position - 1)
    return CaseStudy(
        question,
        vanilla.text[0],
        rescaled.text[0],
        tokens[answer_position],
        before,
        after,
        _token_texts(model, vanilla.new_tokens[0]),
        _token_texts(model, rescaled.new_tokens[0]),
    )


def _token_texts(model: LensModel, ids) -> tuple[str, ...]:
    """Each generated token as text, special tokens (end of turn, padding) left out."""
    tokenizer = model.tokenizer
    special = set(tokenizer.all_special_ids)
    return tuple(tokenizer.decode([i]) for i in ids.tolist() if i not in special)
