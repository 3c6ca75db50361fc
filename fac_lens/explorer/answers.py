"""Answer probabilities before and after rescaling, and a verdict on a trace."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import torch

from ..config import FacConfig
from ..errors import FacLensError
from ..gains import Gains
from ..lens_model import LensModel
from ..rescale import rescale
from ..teacher_forcing import teacher_forcing


@dataclass(frozen=True, eq=False)
class AnswerProbabilities:
    """p(candidate) at one position, vanilla and rescaled, on the same token sequence.

    Attributes:
        tokens: the candidate tokens as text; ids: their ids.
        position: the position whose next-token distribution is read.
        logits_before, logits_after: float [C] the candidates' logits.
        before, after: float [C] their probabilities (softmax over the whole vocabulary).
    """

    tokens: tuple[str, ...]
    ids: tuple[int, ...]
    position: int
    logits_before: torch.Tensor
    logits_after: torch.Tensor
    before: torch.Tensor
    after: torch.Tensor

    def logit_difference(self) -> tuple[float, float] | None:
        """(before, after) of logit(first candidate) - logit(second); None with one candidate."""
        if len(self.ids) < 2:
            return None
        return (
            float(self.logits_before[0] - self.logits_before[1]),
            float(self.logits_after[0] - self.logits_after[1]),
        )

    def html(self) -> str:
        rows = "".join(
            f"<tr><td><code>{html.escape(repr(t))}</code></td><td>{float(b):.4f}</td><td>{float(a):.4f}</td>"
            f"<td>{float(a - b):+.4f}</td></tr>"
            for t, b, a in zip(self.tokens, self.before, self.after, strict=True)
        )
        diff = self.logit_difference()
        note = ""
        if diff is not None:
            note = (
                f"<div>logit difference {html.escape(repr(self.tokens[0]))} - {html.escape(repr(self.tokens[1]))}: "
                f"{diff[0]:+.3f} vanilla, {diff[1]:+.3f} rescaled</div>"
            )
        return (
            f"<div class='fac-probs'><b>answer probabilities</b> (next token after position {self.position}, "
            "vanilla trace)<table><tr><th>token</th><th>p vanilla</th><th>p rescaled</th><th>change</th></tr>"
            f"{rows}</table>{note}</div>"
        )


def candidate_ids(model: LensModel, words: Sequence[str]) -> tuple[list[int], list[str]]:
    """Token ids of candidate answers: each word's first token (a leading space tried too)."""
    tokenizer = model.tokenizer
    if tokenizer is None:
        raise FacLensError("answer probabilities need the model's tokenizer (load it with its processor)")
    ids, tokens = [], []
    for word in words:
        word = word.strip()
        if not word:
            continue
        encoded = tokenizer.encode(word, add_special_tokens=False)
        if not encoded:
            raise FacLensError(f"the tokenizer turns {word!r} into no token: give another answer word")
        if encoded[0] not in ids:
            ids.append(encoded[0])
            tokens.append(tokenizer.convert_ids_to_tokens(encoded[0]))
    if not ids:
        raise FacLensError("no candidate answer given: type words such as 'yes, no'")
    return ids, tokens


def answer_probabilities(
    model: LensModel,
    sequence: Mapping[str, Any],
    position: int,
    candidates: Sequence[int],
    fac: Gains | FacConfig,
    prompt_length: int,
    tokens: Sequence[str] | None = None,
) -> AnswerProbabilities:
    """The candidates' probabilities as the next token after ``position`` of ``sequence`` (prompt
    + trace, batch of 1), without and with ``fac`` (dynamic: each trace position gets the gains
    generation gave it, through :func:`~fac_lens.teacher_forcing.teacher_forcing`)."""
    index = torch.tensor(list(candidates))

    def logits(rescaled: bool) -> torch.Tensor:
        with ExitStack() as stack, torch.no_grad():
            if rescaled:
                stack.enter_context(rescale(model, fac))
                if isinstance(fac, FacConfig):
                    stack.enter_context(teacher_forcing(prompt_length))
            out = model.forward(sequence)
        return out.logits[0, position].float().cpu()

    before, after = logits(False), logits(True)
    names = tuple(tokens) if tokens is not None else tuple(str(i) for i in candidates)
    return AnswerProbabilities(
        names,
        tuple(int(i) for i in candidates),
        position,
        before[index],
        after[index],
        before.softmax(-1)[index],
        after.softmax(-1)[index],
    )
