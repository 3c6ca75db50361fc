"""Case study of one sample: vanilla vs rescaled reasoning traces, and the contribution maps of the
answer token before and after rescaling (the paper's Appendix H)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .config import FacConfig
from .contribution import ContributionMap, contribution_map
from .gains import Gains
from .generation import generate
from .lens_model import LensModel
from .rescale import rescale


@dataclass(frozen=True)
class CaseStudy:
    """One sample seen with and without rescaling.

    Attributes:
        vanilla_trace, fac_trace: the generated reasoning traces.
        answer_token: the token right after ``</think>`` in the vanilla trace (the answer).
        before, after: contribution maps of that token on the vanilla trace, without and with
            rescaling (the same token sequence, so the maps are comparable).
    """

    question: str
    vanilla_trace: str
    fac_trace: str
    answer_token: str
    before: ContributionMap
    after: ContributionMap

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary (top-3 heads instead of the maps)."""
        return {
            "question": self.question,
            "vanilla_trace": self.vanilla_trace,
            "fac_trace": self.fac_trace,
            "answer_token": self.answer_token,
            "top_heads_vanilla": self.before.ranking(top=3),
            "top_heads_fac": self.after.ranking(top=3),
        }


def case_study(
    model: LensModel, image: Any, question: str, fac: Gains | FacConfig, max_new_tokens: int = 48
) -> CaseStudy:
    """Generate with and without ``fac``; contribution maps of the vanilla answer token.

    The answer token is the one after the last ``</think>`` (the last generated token when the
    trace has none); its map is taken at the position that predicts it.
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
    before = contribution_map(model, sequence, target=None, position=answer_position - 1)
    with rescale(model, fac):
        after = contribution_map(model, sequence, target=None, position=answer_position - 1)
    return CaseStudy(question, vanilla.text[0], rescaled.text[0], tokens[answer_position], before, after)
