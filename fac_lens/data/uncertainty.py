"""How sure a difference between two runs on the same samples is: a paired percentile bootstrap
confidence interval of the difference (accuracy and the reported F1) and the exact McNemar test.

    comparison = compare_to_baseline(method_records, vanilla_records, n_resamples=10_000, seed=0)
    comparison.accuracy.low, comparison.accuracy.high, comparison.p_value

Records are the evaluation records of two runs (dicts with ``sample_id``, ``correct``, and for the
F1 ``answer``, ``predicted``, ``choices``); they are paired by sample id (or any ``key``). Resampling
is seeded (numpy ``default_rng(seed)``), so a table or figure drawn twice shows the same intervals.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..errors import FacLensError
from .metrics import f1_labels, weighted_f1

__all__ = [
    "Comparison",
    "Difference",
    "bootstrap_ci",
    "compare_to_baseline",
    "mcnemar_exact",
    "pair_records",
    "resample_counts",
]

Record = Mapping[str, Any]


@dataclass(frozen=True)
class Difference:
    """One metric's difference (method - baseline) on the paired samples, with its bootstrap CI."""

    metric: str
    value: float
    low: float
    high: float
    confidence: float

    @property
    def within_noise(self) -> bool:
        """Whether the interval contains 0 (the difference is not distinguishable from none)."""
        return bool(self.low <= 0.0 <= self.high)


@dataclass(frozen=True)
class Comparison:
    """A method's run against a baseline run on their common samples.

    Attributes:
        n: paired samples.
        accuracy: the accuracy difference and its CI.
        f1: the reported-F1 difference and its CI (None when the samples have no F1 scheme).
        b: samples the baseline answered right and the method wrong.
        c: samples the baseline answered wrong and the method right.
        p_value: exact two-sided McNemar p-value of (b, c).
        n_resamples, seed: the bootstrap's settings.
    """

    n: int
    accuracy: Difference
    f1: Difference | None
    b: int
    c: int
    p_value: float
    n_resamples: int
    seed: int

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-able)."""
        return asdict(self)


def mcnemar_exact(b: int, c: int) -> float:
    """Exact two-sided McNemar p-value: ``min(1, 2 * P[X <= min(b, c)])``, X ~ Binomial(b + c, 1/2).

    Args:
        b, c: the discordant pair counts (non-negative ints). 1.0 when b + c == 0.
    """
    for name, value in (("b", b), ("c", c)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise FacLensError(
                f"mcnemar_exact: {name}={value!r} must be a non-negative int (a count of pairs)"
            )
    n = int(b) + int(c)
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(int(b), int(c)) + 1))
    return min(1.0, 2 * tail / 2**n)


def resample_counts(n: int, n_resamples: int, seed: int = 0) -> np.ndarray:
    """How often each of ``n`` samples is drawn in each bootstrap resample.

    The draws are ``default_rng(seed).integers(0, n, size=(n_resamples, n))``.

    Returns:
        int32 [n_resamples, n], read-only (cached: many comparisons share one n); rows sum to n.
    """
    _check_settings(n_resamples, 0.5)
    if n < 1:
        raise FacLensError("resample_counts: no samples to resample (n must be >= 1)")
    return _cached_counts(int(n), int(n_resamples), int(seed))


@functools.lru_cache(maxsize=2)
def _cached_counts(n: int, n_resamples: int, seed: int) -> np.ndarray:
    draws = np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))
    offsets = n * np.arange(n_resamples)[:, None]
    counts = np.bincount((draws + offsets).ravel(), minlength=n_resamples * n).astype(np.int32)
    counts = counts.reshape(n_resamples, n)
    counts.flags.writeable = False
    return counts


def bootstrap_ci(values: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """The percentile interval holding ``confidence`` of ``values`` (float [n_resamples])."""
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(np.asarray(values, dtype=float), [tail, 100 - tail])
    return float(low), float(high)


def _check_settings(n_resamples: int, confidence: float) -> None:
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)) or n_resamples < 1:
        raise FacLensError(f"n_resamples={n_resamples!r} must be a positive int (e.g. 10000)")
    if not 0 < confidence < 1:
        raise FacLensError(f"confidence={confidence!r} must be in (0, 1), e.g. 0.95")


def pair_records(
    method: Sequence[Record], baseline: Sequence[Record], key: Callable[[Record], Hashable] | None = None
) -> tuple[list[Record], list[Record]]:
    """The records of both runs on their common samples, in the same order (the baseline's).

    Args:
        key: what identifies a sample (default: ``record["sample_id"]``).

    Raises:
        FacLensError: a key repeated within one run, or no common samples.
    """
    key = key or (lambda r: r["sample_id"])
    by_key = []
    for name, records in (("method", method), ("baseline", baseline)):
        keyed: dict[Hashable, Record] = {}
        for record in records:
            k = key(record)
            if k in keyed:
                raise FacLensError(
                    f"the {name} records repeat sample {k!r}: pass the records of one run "
                    "(or a key that tells repeated runs apart, e.g. (seed, sample_id))"
                )
            keyed[k] = record
        by_key.append(keyed)
    common = [k for k in by_key[1] if k in by_key[0]]
    if not common:
        raise FacLensError(
            f"the runs have no common samples ({len(method)} method and {len(baseline)} baseline records): "
            "compare runs of the same dataset (and limit), e.g. vanilla and FAC from one sweep"
        )
    return [by_key[0][k] for k in common], [by_key[1][k] for k in common]


def _correct(records: Sequence[Record]) -> np.ndarray:
    return np.array([bool(r["correct"]) for r in records], dtype=float)


def _resampled_weighted_f1(
    counts: np.ndarray, predictions: Sequence[Any], references: Sequence[Any]
) -> np.ndarray:
    """Weighted F1 (as :func:`~fac_lens.data.metrics.weighted_f1`) of every resample: float [R]."""
    classes = sorted(set(references), key=str)
    truth = np.array([[r == k for k in classes] for r in references], dtype=float)  # [n, K]
    guess = np.array([[p == k for k in classes] for p in predictions], dtype=float)  # [n, K]
    weights = counts.astype(float)
    support, predicted, hits = weights @ truth, weights @ guess, weights @ (truth * guess)
    denominator = support + predicted
    f1 = np.divide(2 * hits, denominator, out=np.zeros_like(hits), where=denominator > 0)
    return (support * f1).sum(axis=1) / len(references)


def compare_to_baseline(
    method: Sequence[Record],
    baseline: Sequence[Record],
    n_resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
    key: Callable[[Record], Hashable] | None = None,
) -> Comparison:
    """A method's records against a baseline's on their common samples.

    Both metrics are resampled with the same paired draws (:func:`resample_counts`); the intervals
    are percentile intervals of (method - baseline). The F1 is the reported F1
    (:func:`~fac_lens.data.metrics.reported_f1`), compared only when both runs fit one scheme.

    Raises:
        FacLensError: no common samples, a repeated key, or bad settings.
    """
    _check_settings(n_resamples, confidence)
    method, baseline = pair_records(method, baseline, key)
    ours, theirs = _correct(method), _correct(baseline)
    counts = resample_counts(len(method), n_resamples, seed)
    n = len(method)
    accuracy_diffs = counts @ (ours - theirs) / n
    observed = float(ours.mean() - theirs.mean())
    accuracy_diff = Difference("accuracy", observed, *bootstrap_ci(accuracy_diffs, confidence), confidence)
    f1_diff = None
    labels = f1_labels(method), f1_labels(baseline)
    if labels[0] is not None and labels[1] is not None and labels[0][1] == labels[1][1]:
        value = weighted_f1(*labels[0]) - weighted_f1(*labels[1])
        diffs = _resampled_weighted_f1(counts, *labels[0]) - _resampled_weighted_f1(counts, *labels[1])
        f1_diff = Difference("f1", value, *bootstrap_ci(diffs, confidence), confidence)
    b = int(((theirs == 1) & (ours == 0)).sum())
    c = int(((theirs == 0) & (ours == 1)).sum())
    return Comparison(n, accuracy_diff, f1_diff, b, c, mcnemar_exact(b, c), int(n_resamples), int(seed))
