"""The calibration split: disjoint from the evaluated samples, recorded by name, size and id hash."""

import hashlib

import pytest

from fac_lens.data.sample import Sample
from fac_lens.data.synthetic import load_split
from fac_lens.errors import FacLensError
from fac_lens.experiments.calibration_split import CalibrationSplit, hold_out, synthetic_validation
from fac_lens.experiments.fingerprint import samples_digest

TEST = "data/synthetic/test/test.jsonl"


def _samples(n, prefix="q"):
    return [Sample(f"{prefix}{i}", "image", f"question {i}?", "yes", "k") for i in range(n)]


def test_synthetic_calibration_is_the_validation_split_disjoint_from_the_test_split():
    split = synthetic_validation("synthetic", 5)
    assert split.name == "synthetic:validation"
    assert split.ids == [f"validation-{i:06d}" for i in range(5)]
    test_ids = {s.id for s in load_split(TEST)}
    assert not set(split.ids) & test_ids
    split.check_disjoint(list(load_split(TEST)))  # does not raise
    expected = hashlib.sha256("\n".join(f"validation-{i:06d}" for i in range(5)).encode()).hexdigest()
    content = samples_digest(split.samples)
    assert split.record() == {"split": "synthetic:validation", "n": 5, "ids_sha256": expected, "sha256": content}
    pope = synthetic_validation("synthetic-pope", 4)
    assert len(pope.samples) == 4 and all(i.startswith("validation-") for i in pope.ids)


def test_hold_out_evaluates_the_first_samples_and_calibrates_on_the_next():
    samples = _samples(10)
    evaluated, split = hold_out(samples, limit=4, n=3, dataset="mmstar")
    assert [s.id for s in evaluated] == ["q0", "q1", "q2", "q3"]
    assert split.ids == ["q4", "q5", "q6"] and split.name == "mmstar:held-out"
    evaluated, split = hold_out(samples, limit=None, n=3, dataset="mmstar")  # all but the last 3
    assert [s.id for s in evaluated] == [f"q{i}" for i in range(7)] and split.ids == ["q7", "q8", "q9"]
    evaluated, split = hold_out(samples, limit=9, n=3, dataset="mmstar")  # the held-out part comes first
    assert len(evaluated) == 7 and split.ids == ["q7", "q8", "q9"]
    with pytest.raises(FacLensError, match="too few"):
        hold_out(_samples(3), limit=None, n=3, dataset="mmstar")
    with pytest.raises(FacLensError, match="calibration-n"):
        hold_out(samples, limit=None, n=0, dataset="mmstar")


def test_overlapping_calibration_is_refused_with_the_fix():
    split = CalibrationSplit("mmstar:mine", tuple(_samples(3)))
    with pytest.raises(FacLensError, match=r"shares 1 sample id.*'q2'.*--calibration"):
        split.check_disjoint(_samples(5, prefix="x") + _samples(3)[2:])
    assert split.first(2).ids == ["q0", "q1"] and split.first(2).digest() != split.digest()


def test_run_sweep_refuses_a_calibration_split_that_overlaps_the_evaluated_samples(tmp_path):
    from types import SimpleNamespace

    from fac_lens.experiments.methods import Method
    from fac_lens.experiments.store import ResultStore
    from fac_lens.experiments.sweeps import Setting, run_sweep

    store = ResultStore(tmp_path / "r.sqlite")
    samples = _samples(4)
    with pytest.raises(FacLensError, match="shares 2 sample id"):
        run_sweep(
            SimpleNamespace(n_layers=6),
            samples,
            [Setting("eval", Method.vanilla())],
            store,
            "m",
            "d",
            calibration=CalibrationSplit("d:mine", tuple(samples[2:])),
        )
    assert store.runs() == []  # nothing written
