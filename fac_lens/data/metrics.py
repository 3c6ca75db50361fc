"""The paper's evaluation metrics (Appendix G): accuracy, binary F1, weighted F1, per-kind scores.

The F1 the paper reports is the weighted F1 (eqs. 36-40) in both of its schemes: a binary scheme
for yes/no datasets (HallusionBench) and a multi-class scheme for multiple-choice datasets (MMStar,
SEED-Bench). :func:`f1_labels` turns evaluation records into the labels of the scheme they fit and
:func:`reported_f1` scores them; datasets of neither kind (free-form answers) have no F1 (NaN).

Predictions and references are answer labels (e.g. normalized answers, option letters, "yes"/
"no"); a prediction may be None (no answer could be extracted), which never matches a
reference. Pure Python: the F1 scores follow scikit-learn's ``f1_score`` semantics with
``zero_division=0`` without depending on it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any

from ..errors import FacLensError
from .answers import normalize_answer

__all__ = ["accuracy", "binary_f1", "f1_labels", "f1_scheme", "per_kind", "reported_f1", "weighted_f1"]

YES_NO = ("yes", "no")

Metric = Callable[[Sequence[Any], Sequence[Any]], float]


def _pairs(predictions: Iterable[Any], references: Iterable[Any]) -> tuple[list[Any], list[Any]]:
    """Both sequences as lists; empty or mismatched inputs raise FacLensError."""
    predictions, references = list(predictions), list(references)
    if len(predictions) != len(references):
        raise FacLensError(
            f"predictions and references differ in length: {len(predictions)} predictions, "
            f"{len(references)} references; pass one prediction per reference"
        )
    if not references:
        raise FacLensError("no predictions and references to score: both are empty")
    if any(r is None for r in references):
        raise FacLensError("a reference is None; every reference must be a label")
    return predictions, references


def _f1(tp: int, fp: int, fn: int) -> float:
    """F1 = 2 tp / (2 tp + fp + fn); 0.0 when undefined (no positive predicted or present)."""
    denominator = 2 * tp + fp + fn
    return 2 * tp / denominator if denominator else 0.0


def accuracy(predictions: Iterable[Any], references: Iterable[Any]) -> float:
    """The fraction of predictions equal to their reference.

    Args:
        predictions: predicted labels (None counts as wrong).
        references: reference labels, one per prediction.

    Returns:
        Accuracy in [0, 1].

    Raises:
        FacLensError: empty inputs or different lengths.
    """
    predictions, references = _pairs(predictions, references)
    return sum(p == r for p, r in zip(predictions, references, strict=True)) / len(references)


def binary_f1(predictions: Iterable[Any], references: Iterable[Any], positive: Hashable = "yes") -> float:
    """F1 of the positive class, as sklearn's ``f1_score(average="binary", pos_label=positive)``.

    Every label other than ``positive`` (including None) counts as negative; unlike sklearn,
    more than two distinct labels are allowed. F1 is 0.0 when undefined (no positive in the
    references nor the predictions), as with ``zero_division=0``.

    Args:
        predictions: predicted labels.
        references: reference labels, one per prediction.
        positive: the positive label.

    Returns:
        2 tp / (2 tp + fp + fn), which equals 2 P R / (P + R).

    Raises:
        FacLensError: empty inputs or different lengths.
    """
    predictions, references = _pairs(predictions, references)
    tp = sum(p == positive and r == positive for p, r in zip(predictions, references, strict=True))
    fp = sum(p == positive and r != positive for p, r in zip(predictions, references, strict=True))
    fn = sum(p != positive and r == positive for p, r in zip(predictions, references, strict=True))
    return _f1(tp, fp, fn)


def weighted_f1(predictions: Iterable[Any], references: Iterable[Any]) -> float:
    """Multi-class F1 averaged over classes weighted by support, as sklearn's ``average="weighted"``.

    The classes are the labels present in the references or the predictions; each class's F1
    is 2 tp / (2 tp + fp + fn) (0.0 when undefined, ``zero_division=0``) and its weight is its
    support (count) in the references, so classes that only appear in predictions weigh 0 (they
    still lower the recall of the true classes).

    Args:
        predictions: predicted labels (None is a label that no reference has).
        references: reference labels, one per prediction.

    Returns:
        sum over classes of support * F1, divided by the number of references.

    Raises:
        FacLensError: empty inputs or different lengths.
    """
    predictions, references = _pairs(predictions, references)
    support = Counter(references)
    predicted = Counter(predictions)
    true_positive = Counter(r for p, r in zip(predictions, references, strict=True) if p == r)
    total = 0.0
    for label, count in support.items():
        tp = true_positive[label]
        total += count * _f1(tp, predicted[label] - tp, count - tp)
    return total / len(references)


def _record_fields(record: Any) -> tuple[Any, Any, Any]:
    """(kind, prediction, reference) from a mapping or a 3-tuple."""
    if isinstance(record, Mapping):
        try:
            return record["kind"], record["prediction"], record["reference"]
        except KeyError as e:
            raise FacLensError(f"a record lacks the key {e}; records need kind, prediction, reference") from e
    if isinstance(record, (tuple, list)) and len(record) == 3:
        return record[0], record[1], record[2]
    raise FacLensError(
        f"a record must be a (kind, prediction, reference) tuple or a mapping with those keys, got {record!r}"
    )


def per_kind(records: Iterable[Any], metric: Metric = accuracy) -> dict[str, float]:
    """A metric computed separately for each kind of question.

    Args:
        records: (kind, prediction, reference) tuples, or mappings with the keys "kind",
            "prediction" and "reference".
        metric: a function (predictions, references) -> float, e.g. :func:`accuracy` or
            ``functools.partial(binary_f1, positive="yes")``.

    Returns:
        {kind: score}, kinds in sorted order.

    Raises:
        FacLensError: no records, or a record of the wrong shape.
    """
    groups: dict[Any, tuple[list[Any], list[Any]]] = defaultdict(lambda: ([], []))
    for record in records:
        kind, prediction, reference = _record_fields(record)
        groups[kind][0].append(prediction)
        groups[kind][1].append(reference)
    if not groups:
        raise FacLensError("no records to score: per_kind needs at least one (kind, prediction, reference)")
    return {kind: metric(*groups[kind]) for kind in sorted(groups, key=str)}


# ---------------------------------------------------------------------------------------------
# Appendix G: the reported F1 of evaluation records.
# ---------------------------------------------------------------------------------------------


def f1_scheme(records: Sequence[Mapping[str, Any]]) -> str | None:
    """The Appendix G scheme evaluation records fit: "multiple_choice" when every record has options
    (``choices``), "binary" when every reference (``answer``) is yes/no, else None (no F1)."""
    if not records:
        return None
    if all(r.get("choices") for r in records):
        return "multiple_choice"
    if all(normalize_answer(r["answer"]) in YES_NO for r in records):
        return "binary"
    return None


def _label(answer: Any, scheme: str) -> str | None:
    """An answer as a label of the scheme: an upper-case letter, or "yes"/"no" (None otherwise)."""
    if answer is None:
        return None
    if scheme == "multiple_choice":
        return str(answer).strip().upper() or None
    label = normalize_answer(str(answer))
    return label if label in YES_NO else None


def f1_labels(records: Sequence[Mapping[str, Any]]) -> tuple[list[str | None], list[str]] | None:
    """(predicted labels, reference labels) of the records' Appendix G scheme; None without one.

    Records need ``answer``, ``predicted``, ``correct`` and ``choices``. ``correct`` is
    authoritative: a correct record predicts its reference; a wrong one predicts its own label,
    or None (a class no reference has) when it gave no label of the scheme or the reference's.
    """
    scheme = f1_scheme(records)
    if scheme is None:
        return None
    references = [_label(r["answer"], scheme) for r in records]
    predictions = []
    for r, reference in zip(records, references, strict=True):
        predicted = _label(r["predicted"], scheme)
        predictions.append(reference if r["correct"] else (None if predicted == reference else predicted))
    return predictions, references  # type: ignore[return-value]


def reported_f1(records: Sequence[Mapping[str, Any]]) -> float:
    """The F1 the paper reports (App. G): :func:`weighted_f1` of :func:`f1_labels`; NaN when the
    records fit neither scheme (free-form answers)."""
    labels = f1_labels(records)
    return weighted_f1(*labels) if labels is not None else float("nan")
