"""The evaluation harness: generate a reasoning trace per sample under a method, extract and score
the answer, and summarise accuracy, the reported F1 (App. G weighted F1) and binary F1 per kind.

    records = evaluate_batches(model, samples, Method.vanilla())
    summary = summarize(records)
"""

from __future__ import annotations

import math
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from tqdm.auto import tqdm

from ..data.answers import answer_format, extract_answer, is_correct, normalize_answer
from ..data.metrics import YES_NO, binary_f1, reported_f1
from ..data.sample import Sample
from ..data.synthetic import diagnose, final_answer
from ..generation import generate
from ..lens_model import LensModel
from ..ratios import HeadRatios
from .methods import Method
from .passes import eos_token_ids, generated_lengths, pass_head_counts


def score(sample: Sample, trace: str) -> tuple[str | None, bool, str | None]:
    """(predicted answer, correct, error step) of one generated trace.

    Synthetic samples answer with the word after ``</think>`` and get an error step from
    :func:`fac_lens.data.synthetic.diagnose`; other benchmarks go through
    :func:`fac_lens.data.answers.extract_answer` in the sample's answer format (error step None).
    """
    if sample.source == "synthetic":
        predicted = final_answer(trace)
        correct = predicted == sample.answer
        return predicted, correct, diagnose(sample, trace, predicted)
    predicted = extract_answer(trace, kind=answer_format(sample), choices=sample.choices)
    correct = is_correct(predicted, sample)
    return predicted, correct, "correct" if correct else None


def chunks(samples: Sequence[Sample], batch_size: int) -> list[Sequence[Sample]]:
    """Fixed consecutive batches: the unit of work (and of sharding) of every sweep."""
    return [samples[i : i + batch_size] for i in range(0, len(samples), batch_size)]


def run_batch(
    model: LensModel,
    batch: Sequence[Sample],
    method: Method,
    ratios: HeadRatios | None = None,
    max_new_tokens: int = 64,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Generate and score one batch; one record per sample (without run_id / code_version).

    Besides the scores, a record holds ``generated_tokens`` (up to and including the first EOS) and,
    for a dynamic method, ``head_counts``: the heads identified in each forward pass that produced
    one of the sample's tokens (:func:`.passes.pass_head_counts`; None otherwise).
    """
    images, prompts = [s.image for s in batch], [s.prompt() for s in batch]
    inputs = model.prepare(images, prompts)
    torch.manual_seed(seed)
    start = time.perf_counter()
    out = generate(
        model,
        inputs,
        max_new_tokens=max_new_tokens,
        method=method.intervention(ratios),
        images=images,
        prompts=prompts,
    )
    seconds = time.perf_counter() - start
    lengths = generated_lengths(out.new_tokens, eos_token_ids(model))
    handle = out.rescale
    if handle is not None and handle.config is not None:
        head_counts: list[Any] = pass_head_counts(handle.pass_ratios, handle.config, lengths)
    else:
        head_counts = [None] * len(batch)
    records = []
    for sample, trace, n_tokens, counts in zip(batch, out.text, lengths, head_counts, strict=True):
        predicted, correct, error = score(sample, trace)
        records.append(
            {
                "sample_id": sample.id,
                "kind": sample.kind,
                "question": sample.question,
                "answer": sample.answer,
                "choices": list(sample.choices),
                "trace": " ".join(trace.split()),
                "predicted": predicted,
                "correct": bool(correct),
                "error": error,
                "seconds": seconds / len(batch),
                "batch_seconds": seconds,
                "batch_size": len(batch),
                "generated_tokens": n_tokens,
                "head_counts": counts,
            }
        )
    return records


def evaluate_batches(
    model: LensModel,
    samples: Sequence[Sample],
    method: Method,
    ratios: HeadRatios | None = None,
    batch_size: int = 16,
    max_new_tokens: int = 64,
    seed: int = 0,
    progress: bool = True,
    on_batch: Callable[[list[dict[str, Any]]], None] | None = None,
) -> list[dict[str, Any]]:
    """Evaluate every sample under ``method``; records in sample order.

    Args:
        ratios: the recorded ratio map a static method identifies its heads on.
        on_batch: called with each batch's records as soon as they exist (e.g. to store them).
    """
    method.check_model(model.n_layers)
    records: list[dict[str, Any]] = []
    for batch in tqdm(chunks(samples, batch_size), desc=f"eval {method.name}", disable=not progress):
        batch_records = run_batch(model, batch, method, ratios, max_new_tokens, seed)
        if on_batch is not None:
            on_batch(batch_records)
        records.extend(batch_records)
    return records


def _yes_no(records: Sequence[dict[str, Any]]) -> Iterator[tuple[str, str]]:
    for r in records:
        reference = normalize_answer(r["answer"])
        if reference in YES_NO:
            predicted = normalize_answer(r["predicted"]) if r["predicted"] is not None else None
            yield predicted, reference


def _accuracy(records: Sequence[dict[str, Any]]) -> float:
    return sum(bool(r["correct"]) for r in records) / len(records)


def _error_steps(records: Sequence[dict[str, Any]]) -> dict[str, int]:
    """How many wrong answers went wrong at each step (perception / reasoning; synthetic only)."""
    return dict(Counter(r["error"] for r in records if not r["correct"] and r["error"]))


def summarize(records: Sequence[dict[str, Any]], n_skipped: int = 0) -> dict[str, Any]:
    """The keys the results store holds for a run.

    ``f1`` is the F1 the paper reports (App. G): the weighted F1 of yes/no or option-letter labels
    (:func:`~fac_lens.data.metrics.reported_f1`; NaN for free-form answers); ``binary_f1`` is the F1
    of "yes" over the yes/no samples (NaN without any). Also accuracy, accuracy per kind, error
    steps, per-batch time, and ``n_skipped``: samples left out before evaluation (e.g. text-only
    questions, which have no image).
    """
    if not records:
        return {"n": 0, "n_skipped": n_skipped}
    yes_no = list(_yes_no(records))
    batch_seconds = [r["batch_seconds"] for r in records]
    batch_sizes = [r["batch_size"] for r in records]
    n_batches = sum(1 / size for size in batch_sizes)
    return {
        "n": len(records),
        "n_skipped": n_skipped,
        "accuracy": _accuracy(records),
        "f1": reported_f1(records),
        "binary_f1": binary_f1(*zip(*yes_no, strict=True)) if yes_no else float("nan"),
        "per_kind": {kind: row["accuracy"] for kind, row in kind_breakdown(records).items()},
        "errors": _error_steps(records),
        "seconds_per_batch": sum(s / b for s, b in zip(batch_seconds, batch_sizes, strict=True)) / n_batches,
        "seconds_total": sum(r["seconds"] for r in records),
        **run_stats(records),
    }


def run_stats(records: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Seconds per generated token (the run's time over its tokens up to each EOS) and the mean and
    standard deviation (ddof 0) of the heads identified per forward pass over every pass of every
    sample (dynamic runs; NaN for the others and for records stored without these keys)."""
    nan = float("nan")
    tokens = [r.get("generated_tokens") for r in records]
    known = all(t is not None for t in tokens) and sum(tokens) > 0
    out = {"seconds_per_token": sum(r["seconds"] for r in records) / sum(tokens) if known else nan}
    for cls in ("perception", "reasoning"):
        counts = [c for r in records if r.get("head_counts") for c in r["head_counts"][cls]]
        mean = sum(counts) / len(counts) if counts else nan
        var = sum((c - mean) ** 2 for c in counts) / len(counts) if counts else nan
        out[f"heads_{cls}_mean"], out[f"heads_{cls}_std"] = mean, math.sqrt(var)
    return out


def kind_breakdown(records: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per question kind: ``{"n", "accuracy", "errors"}`` (error steps of the wrong answers)."""
    by_kind: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        by_kind[r["kind"]].append(r)
    return {
        kind: {"n": len(rows), "accuracy": _accuracy(rows), "errors": _error_steps(rows)}
        for kind, rows in sorted(by_kind.items())
    }
