"""Evaluate a model on the synthetic benchmark: answers, accuracy per kind, and where errors arise."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from tqdm.auto import tqdm

from ..generation import generate
from ..lens_model import LensModel
from .sample import Sample
from .synthetic import diagnose


def final_answer(trace: str) -> str | None:
    """The word after ``</think>`` (the synthetic benchmark's answers are single words)."""
    if "</think>" not in trace:
        return None
    words = trace.split("</think>", 1)[1].split()
    return words[0] if words else None


def evaluate(
    model: LensModel,
    samples: Sequence[Sample],
    batch_size: int = 32,
    max_new_tokens: int = 48,
    fac: Any = None,
    progress: bool = True,
) -> list[dict]:
    """Generate a trace for every sample; one record per sample.

    Returns:
        ``[{"id", "kind", "question", "answer", "trace", "predicted", "correct", "error"}]`` where
        ``error`` is ``"correct"``, ``"perception"``, ``"reasoning"`` (see
        :func:`fac_lens.data.synthetic.diagnose`).
    """
    records = []
    batches = range(0, len(samples), batch_size)
    for start in tqdm(batches, desc="evaluate", disable=not progress):
        chunk = samples[start : start + batch_size]
        inputs = model.prepare([s.image for s in chunk], [s.question for s in chunk])
        out = generate(model, inputs, max_new_tokens=max_new_tokens, fac=fac)
        for sample, trace in zip(chunk, out.text, strict=True):
            predicted = final_answer(trace)
            records.append(
                {
                    "id": sample.id,
                    "kind": sample.kind,
                    "question": sample.question,
                    "answer": sample.answer,
                    "trace": " ".join(trace.split()),
                    "predicted": predicted,
                    "correct": predicted == sample.answer,
                    "error": diagnose(sample, trace, predicted),
                }
            )
    return records


def summarize(records: Sequence[dict]) -> dict:
    """Accuracy overall and per kind, and counts of error kinds per question kind."""
    by_kind: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        by_kind[record["kind"]].append(record)
    return {
        "n": len(records),
        "accuracy": sum(r["correct"] for r in records) / max(1, len(records)),
        "per_kind": {
            kind: {
                "n": len(rows),
                "accuracy": sum(r["correct"] for r in rows) / len(rows),
                "errors": dict(Counter(r["error"] for r in rows if not r["correct"])),
            }
            for kind, rows in sorted(by_kind.items())
        },
        "errors": dict(Counter(r["error"] for r in records if not r["correct"])),
    }
