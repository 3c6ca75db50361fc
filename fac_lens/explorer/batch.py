"""The batch check: accuracy of a setting against vanilla on the loaded samples, with its interval."""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..config import FacConfig
from ..data.answers import answer_format, extract_answer, is_correct
from ..data.uncertainty import Comparison, compare_to_baseline
from ..gains import Gains
from ..generation import generate
from ..lens_model import LensModel


@dataclass(frozen=True)
class BatchCheck:
    """Vanilla and the setting on the same samples.

    Attributes:
        n: samples checked; vanilla, method: their accuracies.
        comparison: the paired difference (method - vanilla) with its 95% bootstrap interval and
            McNemar's p-value.
    """

    n: int
    vanilla: float
    method: float
    comparison: Comparison

    def html(self) -> str:
        d = self.comparison.accuracy
        verdict = "within noise" if d.within_noise else ("better" if d.value > 0 else "worse")
        return (
            f"<div class='fac-batch-result'><b>batch check</b> on {self.n} samples: vanilla "
            f"{self.vanilla:.1%}, this setting {self.method:.1%}; difference {d.value:+.1%} "
            f"(95% CI {d.low:+.1%} .. {d.high:+.1%}, {html.escape(verdict)}; McNemar p = "
            f"{self.comparison.p_value:.3g})</div>"
        )


def record(sample: Any, trace: str) -> dict[str, Any]:
    """One evaluation record of a sample's generated trace."""
    predicted = extract_answer(trace, kind=answer_format(sample), choices=sample.choices)
    return {
        "sample_id": sample.id,
        "correct": is_correct(predicted, sample),
        "answer": sample.answer,
        "predicted": predicted,
        "choices": list(sample.choices),
    }


def batch_check(
    model: LensModel,
    samples: Sequence[Any],
    fac: Gains | FacConfig,
    max_new_tokens: int = 48,
    on_step: Callable[[int, int], None] | None = None,
    vanilla_records: dict[str, dict[str, Any]] | None = None,
) -> BatchCheck:
    """Generate every sample vanilla (unless already in ``vanilla_records``, which is filled in) and
    with ``fac``; score both; ``on_step(done, total)`` reports progress."""
    vanilla_records = {} if vanilla_records is None else vanilla_records
    total = len(samples) * 2
    done = 0
    vanilla, method = [], []
    for sample in samples:
        inputs = model.prepare(sample.image, sample.prompt())
        if sample.id not in vanilla_records:
            text = generate(model, inputs, max_new_tokens=max_new_tokens).text[0]
            vanilla_records[sample.id] = record(sample, text)
        vanilla.append(vanilla_records[sample.id])
        done += 1
        if on_step:
            on_step(done, total)
        method.append(record(sample, generate(model, inputs, max_new_tokens=max_new_tokens, fac=fac).text[0]))
        done += 1
        if on_step:
            on_step(done, total)
    comparison = compare_to_baseline(method, vanilla, n_resamples=2000, seed=0)
    accuracy = lambda rows: sum(r["correct"] for r in rows) / len(rows)  # noqa: E731
    return BatchCheck(len(samples), accuracy(vanilla), accuracy(method), comparison)
