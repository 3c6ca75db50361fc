"""Differences to vanilla with their uncertainty, for the tables, the figures and the command line.

The runs of a table cell or sweep setting are compared with the vanilla runs of the same model,
dataset and generation settings on their common (seed, sample) pairs: a paired percentile bootstrap
interval of the difference and the exact McNemar test (:mod:`fac_lens.data.uncertainty`).

Records come from a *record source*: a function ``run_id -> records`` such as
``ResultStore.records``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd

from ..data.uncertainty import Comparison, Difference, compare_to_baseline
from ..errors import FacLensError
from .store import ResultStore

RecordSource = Callable[[str], Sequence[Mapping[str, Any]]]

#: The bootstrap settings tables, figures and the command line use unless told otherwise.
DEFAULTS: dict[str, Any] = {"n_resamples": 10_000, "confidence": 0.95, "seed": 0}


def _seed(value: Any) -> int | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return int(value)


def keyed_records(rows: pd.DataFrame, records: RecordSource) -> list[dict[str, Any]]:
    """The records of every run in ``rows`` (summary rows), each with ``key`` = (seed, sample_id);
    where two runs share a seed (e.g. two code versions) the later run's record is kept."""
    if "run_id" not in rows.columns:
        raise FacLensError("the summary rows lack run_id: pass ResultStore.summaries() to compare runs")
    seeds = rows["seed"] if "seed" in rows.columns else [None] * len(rows)
    keyed: dict[tuple, dict[str, Any]] = {}
    for run_id, seed in zip(rows["run_id"], seeds, strict=True):
        for record in records(str(run_id)):
            key = (_seed(seed), record["sample_id"])
            keyed[key] = {**record, "key": key}
    return list(keyed.values())


def compare_rows(
    rows: pd.DataFrame | None,
    vanilla: pd.DataFrame | None,
    records: RecordSource,
    **settings: Any,
) -> Comparison | None:
    """The runs ``rows`` against the vanilla runs ``vanilla`` (None when either is missing).

    Args:
        settings: ``n_resamples``, ``confidence``, ``seed`` (:data:`DEFAULTS`).
    """
    if rows is None or vanilla is None or rows.empty or vanilla.empty:
        return None
    return compare_to_baseline(
        keyed_records(rows, records),
        keyed_records(vanilla, records),
        key=lambda r: r["key"],
        **{**DEFAULTS, **settings},
    )


def difference(comparison: Comparison | None, metric: str) -> Difference | None:
    """The comparison's :class:`Difference` for ``metric`` ("accuracy" or "f1"); None without one."""
    if metric not in ("accuracy", "f1"):
        raise FacLensError(
            f"differences to vanilla have intervals for 'accuracy' and 'f1', not {metric!r}: "
            "use one of those, or draw without records"
        )
    return None if comparison is None else getattr(comparison, metric)


def vanilla_run_id(store: ResultStore, run_id: str) -> str | None:
    """The vanilla run of ``run_id``'s model, dataset and generation settings (the newest), if any."""
    run = store.run(run_id)
    matches = [
        r["run_id"]
        for r in store.runs(model=run["model"], dataset=run["dataset"])
        if r["method"].get("name") == "vanilla" and _generation(r) == _generation(run)
    ]
    return matches[-1] if matches else None


def _generation(run: dict[str, Any]) -> dict[str, Any]:
    """A run's generation settings without its calibration split (vanilla runs have none)."""
    return {k: v for k, v in run["generation"].items() if k != "calibration"}


def compare_run_to_vanilla(store: ResultStore, run_id: str, **settings: Any) -> Comparison | None:
    """``run_id`` against its vanilla run (:func:`vanilla_run_id`); None for a vanilla run or when
    no vanilla run with records exists."""
    if store.run(run_id)["method"].get("name") == "vanilla":
        return None
    vanilla = vanilla_run_id(store, run_id)
    if vanilla is None or not store.done_sample_ids(vanilla):
        return None
    return compare_to_baseline(store.records(run_id), store.records(vanilla), **{**DEFAULTS, **settings})


def describe(comparison: Comparison) -> str:
    """One line for the terminal: the differences with their intervals and the McNemar test."""
    level = f"{100 * comparison.accuracy.confidence:g}%"
    parts = [f"accuracy {_signed(comparison.accuracy)}"]
    if comparison.f1 is not None:
        parts.append(f"F1 {_signed(comparison.f1)}")
    return (
        f"vs vanilla on {comparison.n} paired samples: {', '.join(parts)} ({level} paired bootstrap); "
        f"McNemar p={comparison.p_value:.3g} (vanilla-only right {comparison.b}, method-only right "
        f"{comparison.c})"
    )


def _signed(diff: Difference) -> str:
    noise = " (inside the noise)" if diff.within_noise else ""
    return f"{diff.value:+.3f} [{diff.low:+.3f}, {diff.high:+.3f}]{noise}"
