"""CGD, CLIP-guided decoding (Deng et al., 2024).

Follows the official code, github.com/d-ailin/CLIP-Guided-Decoding: the score is ``get_rank_scores``
in ``gen/clip_guided.py`` with ``prob_type: lennorm_sum_log``, the defaults those of ``conf/run/
*.yaml`` and ``run_main.sh`` (``scoring.alpha 0.01``, ``scoring.beta 1`` for CLIP,
``max_cand_num 3``, ``num_return_sequences 3``).

Decoding goes one sentence at a time. For each sentence, ``candidates`` continuations are proposed
and each candidate ``c`` is scored by the image-text similarity of an external scorer (CLIP in the
paper; weight 1) plus ``alpha`` times the model's length-normalised log-likelihood::

    S(c) = CLIP(v, c) + alpha * (1/|c|) sum_t log p(c_t | v, x, c_<t)

and the best one is kept. A sentence ends at a token of ``sentence_end_ids`` (default: the
tokenizer's ``.``, ``!``, ``?`` and newline) or at EOS.

What still differs from the official code: there, each kept candidate samples 3 continuations
(``top_k=5``, ``temperature=0.2``), the 3 best of all of them are kept (a beam of sentences), and a
candidate's score is cumulative over the whole response so far (mean CLIP score of its sentences,
log-likelihood normalised over all its tokens). Here the proposal is deterministic (the
``candidates`` most likely first tokens, each continued greedily to the end of the sentence), one
candidate is kept per sentence, and each sentence is scored on its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import FacLensError
from ..generation import GenerationResult, result
from ..lens_model import LensModel
from ..validation import as_int
from .base import Baseline, check_range
from .paired import TOKEN_KEYS
from .scorers import ImageTextScorer


def sentence_end_ids(model: LensModel) -> set[int]:
    """EOS and the ids of tokens that end a sentence in the model's tokenizer."""
    ends = set(_eos(model))
    tokenizer = model.tokenizer
    if tokenizer is not None:
        for text in (".", "!", "?", "\n"):
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
            if len(ids) == 1:
                ends.add(int(ids[0]))
    return ends


def _eos(model: LensModel) -> list[int]:
    eos = getattr(model.hf.generation_config, "eos_token_id", None)
    return [] if eos is None else [int(e) for e in (eos if isinstance(eos, (list, tuple)) else [eos])]


class _SentenceEnd:
    """Stopping criterion: the last generated token ends a sentence."""

    def __init__(self, ends: set[int]):
        self.ends = torch.tensor(sorted(ends))

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs) -> torch.Tensor:
        return torch.isin(input_ids[:, -1], self.ends.to(input_ids.device))


def _row_inputs(inputs: Mapping[str, Any], tokens: torch.Tensor) -> dict[str, Any]:
    """One prompt (batch 1) followed by ``tokens`` [1, t]; per-token kwargs are re-derived."""
    out = {k: v for k, v in inputs.items() if k not in TOKEN_KEYS}
    out["input_ids"] = torch.cat([inputs["input_ids"], tokens.to(inputs["input_ids"].device)], dim=1)
    mask = inputs.get("attention_mask", torch.ones_like(inputs["input_ids"]))
    out["attention_mask"] = torch.cat([mask, torch.ones_like(tokens).to(mask)], dim=1)
    return out


@dataclass(frozen=True)
class CGD(Baseline):
    """CLIP-guided decoding. ``scorer``: an :class:`ImageTextScorer` (CLIP in the paper; not bundled).
    Defaults: the official ``alpha=0.01`` (weight of the length-normalised log-likelihood; CLIP's
    weight is 1), 3 candidates per sentence."""

    scorer: ImageTextScorer | None = None
    alpha: float = 0.01
    candidates: int = 3
    name = "cgd"
    needs_images = True

    def __post_init__(self) -> None:
        check_range("CGD alpha", self.alpha, 0.0)
        as_int("CGD candidates", self.candidates, minimum=1)
        if self.scorer is not None and not isinstance(self.scorer, ImageTextScorer):
            raise FacLensError("CGD's scorer needs a score(image, texts) -> [n] tensor method")

    def generate(
        self,
        model: LensModel,
        inputs: Mapping[str, Any],
        max_new_tokens: int,
        images: Sequence[Any] | None = None,
        prompts: Sequence[str] | None = None,
        sentence_end: set[int] | None = None,
        decode: Callable[[list[int]], str] | None = None,
        **generate_kwargs,
    ) -> GenerationResult:
        """``sentence_end``: token ids that end a sentence; ``decode``: ids -> text for the scorer
        (default: the tokenizer)."""
        if generate_kwargs:
            raise FacLensError(
                f"CGD runs its own sentence-level search and takes no HF generate options; got "
                f"{sorted(generate_kwargs)}: drop them"
            )
        if self.scorer is None or images is None:
            raise FacLensError(
                "CGD scores sentences against the image with an external scorer: give "
                "CGD(scorer=...) (e.g. a CLIP wrapper) and fl.generate(..., images=...)"
            )
        inputs = model.normalize(inputs, require_image=True)
        batch = inputs["input_ids"].shape[0]
        if len(images) != batch:
            raise FacLensError(f"CGD got {len(images)} images for {batch} prompts: give one per prompt")
        if batch > 1 and (prompts is None or model.processor is None):
            raise FacLensError(
                "CGD decodes one prompt at a time: pass a batch of 1, or images= and prompts= with a "
                "model that has a processor (each prompt is then prepared alone)"
            )
        if decode is None:
            if model.tokenizer is None:
                raise FacLensError("CGD needs decode= (ids -> text) for a model without a tokenizer")
            decode = lambda ids: model.tokenizer.decode(ids, skip_special_tokens=True)  # noqa: E731
        ends = sentence_end_ids(model) if sentence_end is None else set(sentence_end)
        rows = [inputs] if batch == 1 else [model.prepare([images[b]], [prompts[b]]) for b in range(batch)]
        traces = [
            self._decode_row(model, row, images[b], max_new_tokens, ends, decode)
            for b, row in enumerate(rows)
        ]
        pad = (
            model.tokenizer.pad_token_id
            if model.tokenizer is not None and model.tokenizer.pad_token_id is not None
            else 0
        )
        length = max(len(t) for t in traces)
        new = torch.full((batch, length), pad, dtype=torch.long)
        for b, trace in enumerate(traces):
            new[b, : len(trace)] = torch.tensor(trace, dtype=torch.long)
        return result(model, inputs, torch.cat([inputs["input_ids"].cpu(), new], dim=1))

    def _decode_row(self, model, inputs, image, max_new_tokens, ends, decode) -> list[int]:
        accepted: list[int] = []
        eos = set(_eos(model))
        while len(accepted) < max_new_tokens:
            budget = max_new_tokens - len(accepted)
            prefix = torch.tensor([accepted], dtype=torch.long)
            first = self._logprobs(model, _row_inputs(inputs, prefix))  # [V]
            proposals = []
            for token in first.topk(self.candidates).indices.tolist():
                tokens, logps = [token], [float(first[token])]
                if budget > 1 and token not in ends:
                    more, more_logps = self._continue(
                        model, _row_inputs(inputs, torch.tensor([[*accepted, token]])), budget - 1, ends
                    )
                    tokens, logps = tokens + more, logps + more_logps
                proposals.append((tokens, sum(logps) / len(logps)))
            similarity = torch.as_tensor(
                self.scorer.score(image, [decode(t) for t, _ in proposals]), dtype=torch.float64
            )
            scores = [float(s) + self.alpha * lp for (_, lp), s in zip(proposals, similarity, strict=True)]
            best = proposals[max(range(len(scores)), key=scores.__getitem__)][0]
            accepted += best
            if best[-1] in eos:
                break
        return accepted[:max_new_tokens]

    @staticmethod
    def _logprobs(model: LensModel, row: dict[str, Any]) -> torch.Tensor:
        """[V] next-token log-probabilities after ``row`` (one full forward)."""
        row = model.normalize(row, require_image=True)
        model.reset_state()
        try:
            with torch.no_grad(), model.fast_path():
                logits = model.hf(**row).logits[0, -1].float()
        finally:
            model.reset_state()
        return logits.log_softmax(-1).cpu()

    @staticmethod
    def _continue(
        model: LensModel, row: dict[str, Any], budget: int, ends: set[int]
    ) -> tuple[list[int], list[float]]:
        """Greedy continuation to a sentence end (at most ``budget`` tokens) and each token's log-prob."""
        from transformers import StoppingCriteriaList

        row = model.normalize(row, require_image=True)
        model.reset_state()
        try:
            with torch.no_grad(), model.fast_path():
                out = model.hf.generate(
                    **row,
                    max_new_tokens=budget,
                    do_sample=False,
                    stopping_criteria=StoppingCriteriaList([_SentenceEnd(ends)]),
                    output_logits=True,
                    return_dict_in_generate=True,
                    pad_token_id=model.hf.generation_config.pad_token_id or 0,
                )
        finally:
            model.reset_state()
        tokens = out.sequences[0, row["input_ids"].shape[1] :].tolist()
        logps = [
            float(step[0].float().log_softmax(-1)[t]) for step, t in zip(out.logits, tokens, strict=False)
        ]
        return tokens[: len(logps)], logps
