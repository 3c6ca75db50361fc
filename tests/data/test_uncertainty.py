"""Paired bootstrap intervals and the exact McNemar test against references written out here."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from fac_lens.data.metrics import f1_labels, reported_f1
from fac_lens.data.uncertainty import (
    bootstrap_ci,
    compare_to_baseline,
    mcnemar_exact,
    pair_records,
    resample_counts,
)
from fac_lens.errors import FacLensError


def records(correct, prefix="s", answers=None, predicted=None):
    """Records with sample ids s0, s1, ...; yes/no answers when given."""
    out = []
    for i, ok in enumerate(correct):
        answer = answers[i] if answers else "cube"
        out.append(
            {
                "sample_id": f"{prefix}{i}",
                "correct": bool(ok),
                "answer": answer,
                "predicted": predicted[i] if predicted else answer,
                "choices": [],
            }
        )
    return out


# --- McNemar ------------------------------------------------------------------------------------


def enumerated_mcnemar(b: int, c: int) -> float:
    """Two-sided exact p by enumerating every sign pattern of the b + c discordant pairs: the share
    of patterns at least as extreme (min count <= min(b, c)) under a fair coin."""
    n = b + c
    if n == 0:
        return 1.0
    extreme = sum(
        1 for signs in itertools.product((0, 1), repeat=n) if min(sum(signs), n - sum(signs)) <= min(b, c)
    )
    return min(1.0, extreme / 2**n)


@pytest.mark.parametrize("b,c", [(0, 0), (1, 0), (0, 5), (3, 3), (2, 7), (9, 1), (4, 6), (0, 12)])
def test_mcnemar_matches_enumeration(b, c):
    assert mcnemar_exact(b, c) == pytest.approx(enumerated_mcnemar(b, c), abs=1e-15)


def test_mcnemar_by_hand():
    # b=1, c=5: n=6, P[X<=1] = (1 + 6) / 64, p = 14 / 64
    assert mcnemar_exact(1, 5) == pytest.approx(14 / 64)
    assert mcnemar_exact(5, 1) == pytest.approx(14 / 64)
    # b=0, c=10: p = 2 / 1024
    assert mcnemar_exact(0, 10) == pytest.approx(2 / 1024)
    assert mcnemar_exact(3, 3) == 1.0  # 2 * P[X<=3 | n=6] = 2 * 42/64 > 1 -> 1
    assert mcnemar_exact(0, 0) == 1.0


def test_mcnemar_large_counts_stay_finite():
    p = mcnemar_exact(400, 520)  # 2**920 overflows a float; the exact integer division does not
    assert 0.0 < p < 0.001


@pytest.mark.parametrize("b,c", [(-1, 2), (1.5, 2), (True, 1)])
def test_mcnemar_rejects_bad_counts(b, c):
    with pytest.raises(FacLensError, match="non-negative int"):
        mcnemar_exact(b, c)


# --- bootstrap ------------------------------------------------------------------------------------


def reference_bootstrap(ours, theirs, n_resamples, seed, confidence=0.95):
    """Plain resampling loop: draw indices, take the mean difference of each resample, percentiles."""
    ours, theirs = np.asarray(ours, float), np.asarray(theirs, float)
    n = len(ours)
    draws = np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))
    diffs = []
    for row in draws:
        diffs.append(ours[row].mean() - theirs[row].mean())
    tail = 100 * (1 - confidence) / 2
    return tuple(np.percentile(diffs, [tail, 100 - tail]))


def test_resample_counts_rows_are_the_drawn_indices():
    counts = resample_counts(5, 3, seed=7)
    draws = np.random.default_rng(7).integers(0, 5, size=(3, 5))
    assert counts.shape == (3, 5) and (counts.sum(axis=1) == 5).all()
    for row, drawn in zip(counts, draws, strict=True):
        assert row.tolist() == [int((drawn == i).sum()) for i in range(5)]


def test_accuracy_interval_matches_a_plain_resampling_loop():
    rng = np.random.default_rng(1)
    ours = rng.random(40) < 0.7
    theirs = rng.random(40) < 0.55
    comparison = compare_to_baseline(records(ours), records(theirs), n_resamples=2000, seed=3)
    low, high = reference_bootstrap(ours, theirs, 2000, 3)
    assert comparison.accuracy.low == pytest.approx(low, abs=1e-12)
    assert comparison.accuracy.high == pytest.approx(high, abs=1e-12)
    assert comparison.accuracy.value == pytest.approx(ours.mean() - theirs.mean())
    assert comparison.accuracy.low <= comparison.accuracy.value <= comparison.accuracy.high


def test_interval_is_seeded_and_changes_with_the_seed():
    rng = np.random.default_rng(0)
    ours, theirs = rng.random(50) < 0.6, rng.random(50) < 0.5
    a = compare_to_baseline(records(ours), records(theirs), n_resamples=100, seed=11)
    b = compare_to_baseline(records(ours), records(theirs), n_resamples=100, seed=11)
    others = [
        compare_to_baseline(records(ours), records(theirs), n_resamples=100, seed=s) for s in (12, 13, 14)
    ]
    assert a == b
    assert any((a.accuracy.low, a.accuracy.high) != (o.accuracy.low, o.accuracy.high) for o in others)


def test_identical_runs_give_a_zero_interval_and_p_one():
    same = [1, 0, 1, 1, 0, 1]
    comparison = compare_to_baseline(records(same), records(same), n_resamples=300)
    assert (comparison.accuracy.value, comparison.accuracy.low, comparison.accuracy.high) == (0.0, 0.0, 0.0)
    assert comparison.accuracy.within_noise
    assert (comparison.b, comparison.c, comparison.p_value) == (0, 0, 1.0)


def test_discordant_counts_and_p_value():
    #            s0 s1 s2 s3 s4 s5 s6 s7
    theirs = [1, 1, 0, 0, 0, 0, 0, 1]
    ours = [1, 0, 1, 1, 1, 1, 0, 1]
    comparison = compare_to_baseline(records(ours), records(theirs), n_resamples=200)
    assert (comparison.b, comparison.c) == (1, 4)  # b: s1; c: s2..s5
    assert comparison.p_value == pytest.approx(2 * (1 + 5) / 32)
    assert comparison.accuracy.value == pytest.approx(6 / 8 - 3 / 8)


def test_a_clear_gain_excludes_zero():
    ours, theirs = [1] * 60, [0] * 30 + [1] * 30
    comparison = compare_to_baseline(records(ours), records(theirs), n_resamples=1000)
    assert comparison.accuracy.low > 0 and not comparison.accuracy.within_noise
    assert comparison.p_value == pytest.approx(2 / 2**30)


def test_pairs_by_sample_id_not_position():
    theirs = records([1, 0, 1])
    ours = list(reversed(records([1, 0, 1])))  # same answers, other order
    comparison = compare_to_baseline(ours + records([0], prefix="extra"), theirs, n_resamples=100)
    assert comparison.n == 3 and comparison.accuracy.value == 0.0 and (comparison.b, comparison.c) == (0, 0)


def test_no_common_samples_is_an_error_that_names_the_fix():
    with pytest.raises(FacLensError, match="no common samples.*same dataset"):
        compare_to_baseline(records([1, 0], prefix="a"), records([1, 0], prefix="b"))


def test_repeated_sample_is_an_error():
    with pytest.raises(FacLensError, match="repeat sample 's0'"):
        pair_records(records([1]) + records([0]), records([1]))


@pytest.mark.parametrize("kwargs", [{"n_resamples": 0}, {"confidence": 1.0}, {"confidence": 0}])
def test_bad_settings(kwargs):
    with pytest.raises(FacLensError):
        compare_to_baseline(records([1]), records([1]), **kwargs)


def test_bootstrap_ci_percentiles():
    values = np.arange(101, dtype=float)  # 0..100: the 2.5th and 97.5th percentiles are 2.5 and 97.5
    assert bootstrap_ci(values) == pytest.approx((2.5, 97.5))
    assert bootstrap_ci(values, confidence=0.5) == pytest.approx((25.0, 75.0))


def test_f1_interval_matches_a_plain_resampling_loop():
    rng = np.random.default_rng(5)
    answers = list(rng.choice(["yes", "no"], size=30))
    ours_pred = [a if rng.random() < 0.8 else ("no" if a == "yes" else "yes") for a in answers]
    theirs_pred = ["yes"] * 30  # always "yes"
    ours = records(
        [p == a for p, a in zip(ours_pred, answers, strict=True)], answers=answers, predicted=ours_pred
    )
    theirs = records(
        [p == a for p, a in zip(theirs_pred, answers, strict=True)], answers=answers, predicted=theirs_pred
    )
    comparison = compare_to_baseline(ours, theirs, n_resamples=400, seed=2)

    def weighted_f1_by_hand(pred, ref):
        total = 0.0
        for label in set(ref):
            tp = sum(p == label and r == label for p, r in zip(pred, ref, strict=True))
            fp = sum(p == label and r != label for p, r in zip(pred, ref, strict=True))
            fn = sum(p != label and r == label for p, r in zip(pred, ref, strict=True))
            total += sum(r == label for r in ref) * (2 * tp / (2 * tp + fp + fn))
        return total / len(ref)

    draws = np.random.default_rng(2).integers(0, 30, size=(400, 30))
    diffs = [
        weighted_f1_by_hand([ours_pred[i] for i in row], [answers[i] for i in row])
        - weighted_f1_by_hand([theirs_pred[i] for i in row], [answers[i] for i in row])
        for row in draws
    ]
    assert comparison.f1 is not None
    assert (comparison.f1.low, comparison.f1.high) == pytest.approx(tuple(np.percentile(diffs, [2.5, 97.5])))
    assert comparison.f1.value == pytest.approx(reported_f1(ours) - reported_f1(theirs))


def test_no_f1_for_free_form_answers():
    comparison = compare_to_baseline(records([1, 0]), records([0, 0]), n_resamples=10)
    assert comparison.f1 is None and math.isnan(reported_f1(records([1, 0])))
    assert f1_labels(records([1, 0])) is None
