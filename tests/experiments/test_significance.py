"""Differences to vanilla from a results store: which vanilla run, which pairs, the printed line."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from fac_lens.errors import FacLensError
from fac_lens.experiments.significance import (
    compare_rows,
    compare_run_to_vanilla,
    describe,
    keyed_records,
    vanilla_run_id,
)
from fac_lens.experiments.store import METHOD_KEYS, ResultStore

GENERATION = {"max_new_tokens": 16, "batch_size": 2, "seed": 0}


def method(name: str) -> dict:
    return {**dict.fromkeys(METHOD_KEYS), "name": name, "mode": "none" if name == "vanilla" else "dynamic"}


def add_run(
    store: ResultStore, name: str, correct: list[int], generation: dict = GENERATION, dataset="d"
) -> str:
    run_id = store.ensure_run(
        model="m", dataset=dataset, sweep="eval", method=method(name), generation=generation, code_version="v"
    )
    store.add_records(
        [
            {
                "run_id": run_id,
                "sample_id": f"s{i}",
                "kind": "k",
                "question": "q",
                "answer": "7",
                "choices": [],
                "trace": "t",
                "predicted": "7" if ok else "8",
                "correct": bool(ok),
                "error": None,
                "seconds": 1.0,
                "batch_seconds": 2.0,
                "batch_size": 2,
                "code_version": "v",
            }  # fmt: skip
            for i, ok in enumerate(correct)
        ]
    )
    return run_id


@pytest.fixture
def store(tmp_path: Path) -> ResultStore:
    with ResultStore(tmp_path / "s.sqlite") as s:
        yield s


def test_a_run_is_compared_with_the_vanilla_run_of_its_generation_settings(store):
    vanilla = add_run(store, "vanilla", [1, 0, 0, 0])
    add_run(store, "vanilla", [1, 1, 1, 1], generation={**GENERATION, "max_new_tokens": 99})  # other settings
    add_run(store, "vanilla", [1, 1, 1, 1], dataset="other")  # other dataset
    dynamic = add_run(store, "dynamic", [1, 1, 1, 0])
    assert vanilla_run_id(store, dynamic) == vanilla
    comparison = compare_run_to_vanilla(store, dynamic, n_resamples=300)
    assert (comparison.n, comparison.b, comparison.c) == (4, 0, 2)
    assert comparison.accuracy.value == pytest.approx(3 / 4 - 1 / 4)
    assert comparison.p_value == pytest.approx(2 * 1 / 4)  # b + c = 2, min 0: 2 * C(2, 0) / 2^2
    line = describe(comparison)
    assert line.startswith("vs vanilla on 4 paired samples: accuracy +0.500 [")
    assert "95% paired bootstrap" in line and "McNemar p=0.5" in line
    assert compare_run_to_vanilla(store, vanilla) is None  # vanilla is not compared with itself


def test_no_vanilla_run_gives_none(store):
    dynamic = add_run(store, "dynamic", [1, 0])
    assert vanilla_run_id(store, dynamic) is None and compare_run_to_vanilla(store, dynamic) is None


def test_cell_records_are_keyed_by_seed_and_the_later_run_wins(store):
    first = add_run(store, "dynamic", [0, 0])
    again = add_run(store, "dynamic", [1, 1], generation={**GENERATION, "model_weights": "new"})  # same seed
    other_seed = add_run(store, "dynamic", [1, 0], generation={**GENERATION, "seed": 1})
    rows = pd.DataFrame({"run_id": [first, again, other_seed], "seed": [0, 0, 1]})
    keyed = {r["key"]: r["correct"] for r in keyed_records(rows, store.records)}
    assert keyed == {(0, "s0"): True, (0, "s1"): True, (1, "s0"): True, (1, "s1"): False}
    with pytest.raises(FacLensError, match="run_id"):
        keyed_records(pd.DataFrame({"seed": [0]}), store.records)
    assert compare_rows(rows, None, store.records) is None
