"""The paper's tables from the run summaries (``ResultStore.summaries()``): pure functions to DataFrames.

Row selection, shared with :mod:`fac_lens.experiments.figures`:

* a run belongs to one cell of a table by its model, dataset and *method label* (the method ``name``,
  or ``strategy-A`` .. ``strategy-D`` for the strategy runs);
* a run's ``sweep`` is a label only (the run id does not include it, so a run shared by two sweeps
  carries one of their labels): a cell takes the runs labelled with the table's sweeps (``eval``, and
  ``ablation`` for Table 2) when there are any, otherwise every run of that method;
* runs of one cell that differ only in seed or code version are averaged (runs of one seed first,
  then over seeds); runs with different hyperparameters or generation settings in one cell raise a
  :class:`FacLensError` (filter the frame).

Accuracy and F1 are reported as stored (fractions in [0, 1]); F1 is the weighted F1 of App. G
(datasets with yes/no or multiple-choice answers only). Where a cell has several seeds the table
adds the standard deviation over seeds; given the runs' records (``records=ResultStore.records``)
it adds each method's difference to vanilla on the same samples with its paired bootstrap interval
and the exact McNemar p-value (:mod:`.significance`). :func:`table_text` writes them as the paper
does ("0.600 ± 0.014", "+0.100 [+0.020, +0.180] p=0.03").
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..config import FacConfig
from ..data.loaders import BENCHMARKS, benchmark_info
from ..errors import FacLensError
from .methods import LABELS
from .significance import RecordSource, compare_rows
from .store import CONFIG_KEYS
from .timing import NOISE_FLOOR, TimingResult

#: Columns that make up a run's configuration (seed and code version excluded: those runs are averaged).
CONFIG = ("name", "mode", *CONFIG_KEYS, "baseline", "max_new_tokens", "batch_size")
NUMERIC = (
    *(k for k in FacConfig.field_names(numeric=True) if k in CONFIG_KEYS),
    "n_perception",
    "n_reasoning",
    "n",
    "n_skipped",
    "accuracy",
    "f1",
    "binary_f1",
    "seconds_per_batch",
    "seconds_total",
    "max_new_tokens",
    "batch_size",
    "seed",
)
METRICS = ("accuracy", "f1", "binary_f1", "seconds_per_batch", "seconds_total")
METHOD_ORDER = LABELS  # vanilla, static, dynamic, strategy-A .. strategy-D, the two ablations
ABLATION_LABELS = {
    "vanilla": "vanilla",
    "perception_only": "w/o reasoning rescaling",
    "reasoning_only": "w/o perception rescaling",
}
#: Settings a Table 2 full run shares with an ablation run: that class's fields (``*_perc`` /
#: ``*_reas``), the query set and the generation settings.
_SHARED_FIELDS = ("query", "max_new_tokens", "batch_size")
PERCEPTION_FIELDS = (*(k for k in CONFIG_KEYS if k.endswith("_perc")), *_SHARED_FIELDS)
REASONING_FIELDS = (*(k for k in CONFIG_KEYS if k.endswith("_reas")), *_SHARED_FIELDS)

#: How to produce the runs a figure or table needs (named in the error messages).
HOW = {
    "eval": "`fac-lens eval --dataset {dataset}` (vanilla and FAC runs labelled sweep 'eval')",
    "ablation": "`fac-lens sweep --grid ablation --dataset {dataset}`",
    "boundary": "`fac-lens sweep --grid boundary --dataset {dataset}`",
    "gains": "`fac-lens sweep --grid gains --dataset {dataset}`",
    "thresholds": "`fac-lens sweep --grid thresholds --dataset {dataset}`",
    "vanilla": "`fac-lens eval --dataset {dataset} --method vanilla` with the same generation settings",
}


def how(kind: str, dataset: str | None = None) -> str:
    """The command that produces the runs of ``kind`` (for error messages)."""
    return HOW[kind].format(dataset=dataset if dataset is not None else "<dataset>")


# ---------------------------------------------------------------------------------------------------------
# shared row selection (also used by figures.py)


def normalize(summaries: pd.DataFrame, need: Iterable[str] = ()) -> pd.DataFrame:
    """A checked copy of ``summaries``: missing optional columns added, numbers numeric, ``method`` label.

    Raises:
        FacLensError: not a DataFrame, empty, or a column in ``need`` missing.
    """
    if not isinstance(summaries, pd.DataFrame):
        raise FacLensError(
            f"summaries must be a pandas DataFrame, got {type(summaries).__name__}: "
            "pass ResultStore.summaries()"
        )
    if summaries.empty:
        raise FacLensError(
            "summaries is empty: no run has been summarised yet; run an evaluation or a sweep first "
            f"(e.g. {how('eval')}) and pass ResultStore.summaries()"
        )
    missing = [c for c in ("model", "dataset", "name", *need) if c not in summaries.columns]
    if missing:
        raise FacLensError(
            f"summaries lacks the column(s) {missing}: pass the frame from ResultStore.summaries() "
            "(one row per run with the spec's columns)"
        )
    df = summaries.copy()
    for col in ("sweep", *CONFIG):
        if col not in df.columns:
            df[col] = None
    for col in NUMERIC:
        if col in df.columns:
            df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
    df["method"] = [method_label(n, s) for n, s in zip(df["name"], df["strategy"], strict=True)]
    return df.reset_index(drop=True)


def method_label(name: object, strategy: object = None) -> str:
    """``name``, or ``strategy-<S>`` for the strategy runs."""
    if name == "strategy" and _value(strategy) is not None:
        return f"strategy-{strategy}"
    return str(name)


def _value(v: object) -> object:
    """None for missing values (None/NaN), floats rounded so that equal settings compare equal."""
    if v is None:
        return None
    if isinstance(v, float | np.floating):
        return None if math.isnan(v) else round(float(v), 6)
    if isinstance(v, int | np.integer):
        return round(float(v), 6)
    return v


def bool_mask(values: Iterable[bool]) -> np.ndarray:
    """A boolean row mask (a plain list would select columns when empty)."""
    return np.fromiter(values, dtype=bool)


def config_key(row: pd.Series, cols: Sequence[str] = CONFIG) -> tuple:
    """The hashable configuration of one run."""
    return tuple(_value(row[c]) for c in cols)


def describe_configs(rows: pd.DataFrame, cols: Sequence[str] = CONFIG) -> str:
    """The columns whose values differ between ``rows``, with the values (for error messages)."""
    parts = []
    for c in cols:
        values = sorted({repr(_value(v)) for v in rows[c]})
        if len(values) > 1:
            parts.append(f"{c} in {{{', '.join(values)}}}")
    return "; ".join(parts) or "identical settings"


def baseline_notes(summaries: pd.DataFrame) -> list[str]:
    """One line per baseline in ``summaries`` with the hyper-parameters its runs used, to print
    under a table (``"vcd: alpha=1.0, beta=0.1, noise_step=500, seed=0"``)."""
    if "baseline" not in summaries.columns:
        return []
    rows = summaries[summaries["baseline"].notna()]
    notes = []
    for name in order_methods(rows["name"].unique()):
        settings = sorted({str(v) for v in rows.loc[rows["name"] == name, "baseline"]})
        notes.append(f"{name}: {' | '.join(settings)}")
    return notes


def check_metric(df: pd.DataFrame, metric: str) -> None:
    """Raise unless ``metric`` is a numeric summary column with a value somewhere in ``df``."""
    if metric not in df.columns:
        raise FacLensError(
            f"metric {metric!r} is not a summaries column: use one of {[m for m in METRICS if m in df]}"
        )
    if pd.to_numeric(df[metric], errors="coerce").isna().all():
        hint = {
            "f1": " (f1 needs all-yes/no or all-multiple-choice answers)",
            "binary_f1": " (binary_f1 needs yes/no answers)",
        }.get(metric, "")
        raise FacLensError(f"metric {metric!r} is NaN for every selected run{hint}: use metric='accuracy'")


def resolve(df: pd.DataFrame, column: str, value: str | None, what: str) -> str:
    """``value``, checked against ``df[column]``; when None, the column's only value (else an error)."""
    present = sorted({str(v) for v in df[column].dropna()})
    if value is not None:
        if value not in present:
            raise FacLensError(f"no runs with {column} == {value!r} for {what}: {column}s present: {present}")
        return value
    if len(present) != 1:
        raise FacLensError(
            f"{what} holds {len(present)} {column}s {present}: pass {column}=<one of them> "
            f"(or filter summaries to one {column})"
        )
    return present[0]


def pick_cell(rows: pd.DataFrame, prefer: Sequence[str], what: str) -> pd.DataFrame | None:
    """The runs of one table cell (see the module docstring), or None when there are none."""
    if rows.empty:
        return None
    preferred = rows[rows["sweep"].isin(list(prefer))]
    if not preferred.empty:
        rows = preferred
    keys = {config_key(r) for _, r in rows.iterrows()}
    if len(keys) > 1:
        raise FacLensError(
            f"{what}: {len(keys)} different configurations ({describe_configs(rows)}): keep one, e.g. "
            f"label the evaluation runs sweep {prefer[0]!r} or filter summaries to the settings you report"
        )
    return rows


def vanilla_rows(
    df: pd.DataFrame, model: str, dataset: str, like: pd.DataFrame | None = None
) -> pd.DataFrame:
    """The vanilla runs of (model, dataset); with ``like``: only those with its generation settings."""
    rows = df[(df["model"] == model) & (df["dataset"] == dataset) & (df["name"] == "vanilla")]
    if like is not None:
        for col in ("max_new_tokens", "batch_size"):
            wanted = {_value(v) for v in like[col]} - {None}
            if wanted:
                rows = rows.loc[bool_mask(_value(v) in wanted or _value(v) is None for v in rows[col])]
    return rows


def order_methods(labels: Iterable[str]) -> list[str]:
    """Paper order (vanilla, static, dynamic, strategies, ablations), others alphabetically after."""
    labels = set(labels)
    known = [m for m in METHOD_ORDER if m in labels]
    return known + sorted(labels - set(known))


def _paper_position(dataset: str) -> int:
    """The column of a dataset in the paper's tables (the benchmarks' order); after them: others."""
    try:
        return list(BENCHMARKS).index(benchmark_info(dataset.split("[")[0]).name)
    except FacLensError:
        return len(BENCHMARKS)


def order_datasets(datasets: Iterable[str]) -> list[str]:
    """Paper order (MathVista-mini, MathVision-mini, HallusionBench, CLEVR, MMStar, SEED-Bench, with
    or without a ``[:limit]`` suffix), other datasets alphabetically after."""
    return sorted(set(datasets), key=lambda d: (_paper_position(d), d))


def default_methods(df: pd.DataFrame) -> list[str]:
    """Methods of the evaluation: those in runs labelled 'eval'/'ablation' plus vanilla, else all."""
    labelled = df[df["sweep"].isin(["eval", "ablation"])]
    if labelled.empty:
        return order_methods(df["method"])
    extra = {"vanilla"} & set(df["method"])
    return order_methods(set(labelled["method"]) | extra)


# ---------------------------------------------------------------------------------------------------------
# tables


#: Columns a table adds per dataset with the runs' records: the difference to vanilla and its interval.
DELTA_COLUMNS = {
    "accuracy": ("delta_accuracy", "delta_accuracy_low", "delta_accuracy_high", "mcnemar_p"),
    "f1": ("delta_f1", "delta_f1_low", "delta_f1_high"),
}
VanillaOf = Callable[[str, str, pd.DataFrame], "pd.DataFrame | None"]


def seed_values(rows: pd.DataFrame, metric: str) -> pd.Series:
    """``metric`` per seed of one cell's runs (runs of one seed, e.g. two code versions, averaged)."""
    seeds = rows["seed"].fillna(-1) if "seed" in rows.columns else pd.Series(0, index=rows.index)
    return rows.groupby(seeds)[metric].mean()


def _cell_stats(rows: pd.DataFrame | None, metric: str) -> tuple[float, float]:
    """(mean over seeds, standard deviation over seeds; NaN with fewer than two seeds)."""
    if rows is None:
        return float("nan"), float("nan")
    values = seed_values(rows, metric).dropna()
    if values.empty:
        return float("nan"), float("nan")
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else float("nan")


def _metric_columns(
    cells: dict[tuple, pd.DataFrame | None], datasets: list[str], with_deltas: bool
) -> list[tuple[str, str]]:
    columns = []
    for dataset in datasets:
        present = [rows for (_, _, d), rows in cells.items() if d == dataset and rows is not None]
        has_f1 = any(rows["f1"].notna().any() for rows in present)
        seeds = any(len(seed_values(rows, "accuracy")) > 1 for rows in present)
        for metric in ("accuracy", "f1") if has_f1 else ("accuracy",):
            columns.append((dataset, metric))
            if seeds:
                columns.append((dataset, f"{metric}_std"))
        if with_deltas:
            columns += [(dataset, c) for c in DELTA_COLUMNS["accuracy"]]
            if has_f1:
                columns += [(dataset, c) for c in DELTA_COLUMNS["f1"]]
    return columns


def _delta_values(comparison: Any) -> dict[str, float]:
    """The DELTA_COLUMNS values of one comparison (NaN where there is none)."""
    values = dict.fromkeys((*DELTA_COLUMNS["accuracy"], *DELTA_COLUMNS["f1"]), float("nan"))
    if comparison is None:
        return values
    values["mcnemar_p"] = comparison.p_value
    for metric in ("accuracy", "f1"):
        diff = getattr(comparison, metric)
        if diff is not None:
            names = DELTA_COLUMNS[metric][:3]
            values.update(zip(names, (diff.value, diff.low, diff.high), strict=True))
    return values


def _frame(
    cells: dict[tuple, pd.DataFrame | None],
    index: list[tuple[str, str]],
    datasets: list[str],
    vanilla_of: VanillaOf,
    records: RecordSource | None,
    settings: dict[str, Any],
) -> pd.DataFrame:
    columns = _metric_columns(cells, datasets, records is not None)
    data = []
    for model, label in index:
        values: dict[tuple[str, str], float] = {}
        for dataset in datasets:
            rows = cells.get((model, label, dataset))
            for metric in ("accuracy", "f1"):
                mean, std = _cell_stats(rows, metric)
                values[dataset, metric], values[dataset, f"{metric}_std"] = mean, std
            if records is not None and label != "vanilla" and rows is not None:
                comparison = compare_rows(rows, vanilla_of(model, dataset, rows), records, **settings)
                values.update({(dataset, k): v for k, v in _delta_values(comparison).items()})
        data.append([values.get(column, float("nan")) for column in columns])
    return pd.DataFrame(
        data,
        index=pd.MultiIndex.from_tuples(index, names=["model", "method"]),
        columns=pd.MultiIndex.from_tuples(columns, names=["dataset", "metric"]),
    )


def _vanilla_of(df: pd.DataFrame, prefer: Sequence[str], table: str) -> VanillaOf:
    """The vanilla runs a cell is compared with: same model, dataset and generation settings."""

    def pick(model: str, dataset: str, like: pd.DataFrame) -> pd.DataFrame | None:
        rows = vanilla_rows(df, model, dataset, like=like)
        return pick_cell(rows, prefer, f"{table} vanilla cell ({model}, {dataset})")

    return pick


def table1(
    summaries: pd.DataFrame,
    methods: Sequence[str] = ("vanilla", "dynamic"),
    records: RecordSource | None = None,
    **settings: Any,
) -> pd.DataFrame:
    """Table 1: accuracy for every benchmark and F1 where it is defined (yes/no or multiple-choice
    answers: HallusionBench, MMStar, SEED-Bench), per method; with the records, the difference to
    vanilla and its uncertainty.

    Args:
        summaries: ``ResultStore.summaries()``.
        methods: method labels (``name``, or ``strategy-A`` .. ``strategy-D``), in row order.
        records: ``run_id -> records`` (``ResultStore.records``) to add the difference to vanilla.
        settings: the bootstrap's ``n_resamples``, ``confidence``, ``seed`` (defaults 10000, 0.95, 0).

    Returns:
        Index (model, method); columns (dataset, metric) with metric ``accuracy`` and, where any run of
        the dataset has one, ``f1``; ``accuracy_std`` / ``f1_std`` (over seeds) where a cell of the
        dataset has several seeds; with ``records`` the :data:`DELTA_COLUMNS` (NaN on vanilla rows).
        Runs labelled sweep 'eval' are preferred; seeds are averaged.
    """
    df = normalize(summaries, need=("accuracy", "f1"))
    methods = list(methods)
    absent = [m for m in methods if m not in set(df["method"])]
    if absent:
        raise FacLensError(
            f"no runs of method(s) {absent} in summaries (methods present: {order_methods(df['method'])}): "
            f"run them with {how('eval')}, or pass methods=<those present>"
        )
    df = df[df["method"].isin(methods)]
    models = sorted(df["model"].unique())
    datasets = order_datasets(df["dataset"])
    cells = {}
    for model in models:
        for label in methods:
            for dataset in datasets:
                rows = df[(df["model"] == model) & (df["method"] == label) & (df["dataset"] == dataset)]
                cells[model, label, dataset] = pick_cell(
                    rows, ("eval",), f"Table 1 cell ({model}, {label}, {dataset})"
                )
    index = [(m, label) for m in models for label in methods]
    return _frame(cells, index, datasets, _vanilla_of(df, ("eval",), "Table 1"), records, settings)


def table2(summaries: pd.DataFrame, records: RecordSource | None = None, **settings: Any) -> pd.DataFrame:
    """Table 2 (ablation): vanilla, w/o reasoning rescaling (``perception_only``), w/o perception
    rescaling (``reasoning_only``) and the full method, per benchmark.

    The full method is the run whose name is the ablation runs' mode (``dynamic`` unless they were
    ``static``; the row is labelled ``full (dynamic)`` or ``full (static)``) and whose perception
    settings equal those of the ``perception_only`` run and reasoning settings those of the
    ``reasoning_only`` run. Runs labelled sweep 'ablation' or 'eval' are preferred.

    Returns:
        Index (model, method); columns (dataset, metric) as in :func:`table1` (``records`` and
        ``settings`` too).
    """
    df = normalize(summaries, need=("accuracy", "f1"))
    ablations = df[df["name"].isin(["perception_only", "reasoning_only"])]
    if ablations.empty:
        raise FacLensError(
            "no ablation runs (name 'perception_only' or 'reasoning_only') in summaries: "
            f"run {how('ablation')}"
        )
    prefer = ("ablation", "eval")
    models = sorted(ablations["model"].unique())
    datasets = order_datasets(ablations["dataset"])
    cells: dict[tuple, pd.DataFrame | None] = {}
    full_labels: dict[str, set[str]] = {m: set() for m in models}
    for model in models:
        for dataset in datasets:
            scope = df[(df["model"] == model) & (df["dataset"] == dataset)]
            picked = {}
            for name in ("vanilla", "perception_only", "reasoning_only"):
                picked[name] = pick_cell(
                    scope[scope["name"] == name], prefer, f"Table 2 cell ({model}, {name}, {dataset})"
                )
                cells[model, ABLATION_LABELS[name], dataset] = picked[name]
            refs = [r for r in (picked["perception_only"], picked["reasoning_only"]) if r is not None]
            if not refs:
                continue
            modes = {str(m) for r in refs for m in r["mode"] if m in ("static", "dynamic")}
            full = "static" if modes == {"static"} else "dynamic"
            candidates = scope[scope["name"] == full]
            for ref, fields in (
                (picked["perception_only"], PERCEPTION_FIELDS),
                (picked["reasoning_only"], REASONING_FIELDS),
            ):
                if ref is None:
                    continue
                for col in fields:
                    wanted = _value(ref[col].iloc[0])
                    if wanted is not None:
                        candidates = candidates.loc[bool_mask(_value(v) == wanted for v in candidates[col])]
            label = f"full ({full})"
            full_labels[model].add(label)
            cells[model, label, dataset] = pick_cell(
                candidates, prefer, f"Table 2 cell ({model}, {label}, {dataset})"
            )
    index = [(m, label) for m in models for label in (*ABLATION_LABELS.values(), *sorted(full_labels[m]))]
    return _frame(cells, index, datasets, _vanilla_of(df, prefer, "Table 2"), records, settings)


def table4(timing: TimingResult) -> pd.DataFrame:
    """Table 4: the cost of each method, from an interleaved, repeated timing
    (:func:`fac_lens.experiments.timing.benchmark`; the per-run times of a sweep are not comparable).

    Returns:
        Index ``method`` (the timed labels, the noise floor ``vanilla (again)`` included); text
        columns ``seconds per batch``, ``seconds per token``, ``overhead per batch``, ``overhead per
        token``: the median over repeats with its interquartile range in brackets; overheads are
        relative to vanilla in the same repeat (``-`` for vanilla). The noise floor's overhead is
        what two identical methods differ by.
    """
    if not isinstance(timing, TimingResult):
        raise FacLensError(
            f"table4 takes a TimingResult, got {type(timing).__name__}: the per-run times in the summaries "
            "depend on trace length, run order and warm-up; time the methods with "
            "fac_lens.experiments.timing.benchmark(...) (or Experiment.timing())"
        )
    summary = timing.summary()
    columns = {
        "seconds per batch": ("seconds_per_batch", "{:.3g}", "{:.3g}"),
        "seconds per token": ("seconds_per_token", "{:.3g}", "{:.3g}"),
        "overhead per batch": ("overhead_batch_pct", "{:+.1f}%", "{:+.1f}"),
        "overhead per token": ("overhead_token_pct", "{:+.1f}%", "{:+.1f}"),
    }
    data = []
    for _, row in summary.iterrows():
        cells = []
        for key, median_fmt, bound_fmt in columns.values():
            if key.startswith("overhead") and row["method"] == "vanilla":
                cells.append("-")
                continue
            median, q25, q75 = row[key], row[f"{key}_q25"], row[f"{key}_q75"]
            cells.append(f"{median_fmt.format(median)} [{bound_fmt.format(q25)}, {bound_fmt.format(q75)}]")
        data.append(cells)
    index = pd.Index(
        [f"{m} (noise floor)" if m == NOISE_FLOOR else m for m in summary["method"]], name="method"
    )
    return pd.DataFrame(data, index=index, columns=list(columns))


# ---------------------------------------------------------------------------------------------------------
# rendering


def _mean_std(mean: float, std: float, fmt: str) -> str:
    if math.isnan(mean):
        return "-"
    return format(mean, fmt) + ("" if math.isnan(std) else f" ± {format(std, fmt)}")


def _delta_text(values: pd.Series, metric: str, fmt: str) -> str:
    value, low, high = (float(values.get(c, float("nan"))) for c in DELTA_COLUMNS[metric][:3])
    if math.isnan(value):
        return "-"
    text = f"{format(value, '+' + fmt)} [{format(low, '+' + fmt)}, {format(high, '+' + fmt)}]"
    p = float(values.get("mcnemar_p", float("nan"))) if metric == "accuracy" else float("nan")
    return text if math.isnan(p) else f"{text} p={p:.2g}"


def table_text(table: pd.DataFrame, floatfmt: str = ".3f") -> pd.DataFrame:
    """A :func:`table1` / :func:`table2` frame as the paper writes it: per dataset ``accuracy`` and
    ``f1`` as "mean ± std" (std where there are several seeds) and, where the frame has them,
    ``Δ accuracy`` ("+0.100 [+0.020, +0.180] p=0.03": difference to vanilla, its interval and the
    McNemar p) and ``Δ f1``; "-" where there is no value."""
    table = _check_df(table)
    out: dict[tuple[str, str], list[str]] = {}
    for dataset in dict.fromkeys(table.columns.get_level_values(0)):
        part = table[dataset]
        for metric in ("accuracy", "f1"):
            if metric not in part.columns:
                continue
            std = (
                part[f"{metric}_std"] if f"{metric}_std" in part.columns else pd.Series(math.nan, part.index)
            )
            out[dataset, metric] = [_mean_std(m, s, floatfmt) for m, s in zip(part[metric], std, strict=True)]
            if DELTA_COLUMNS[metric][0] in part.columns:
                out[dataset, f"Δ {metric}"] = [
                    _delta_text(row, metric, floatfmt) for _, row in part.iterrows()
                ]
    frame = pd.DataFrame(out, index=table.index)
    frame.columns = pd.MultiIndex.from_tuples(list(out), names=table.columns.names)
    return frame


def _cell_text(value: object, floatfmt: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, float | np.floating):
        return "-" if math.isnan(value) else format(float(value), floatfmt)
    return str(value)


def _flat(label: object) -> str:
    if isinstance(label, tuple):
        return " ".join(str(part) for part in label if str(part) != "")
    return str(label)


def _check_df(df: object) -> pd.DataFrame:
    if not isinstance(df, pd.DataFrame):
        raise FacLensError(f"expected a pandas DataFrame (e.g. from table1), got {type(df).__name__}")
    return df


def _with_index(df: pd.DataFrame) -> pd.DataFrame:
    """Index levels as leading columns (dropped when it is an unnamed default index)."""
    unnamed_default = isinstance(df.index, pd.RangeIndex) and df.index.name is None
    if unnamed_default:
        return df
    names = [n if n is not None else "" for n in df.index.names]
    flat = df.copy()
    flat.columns = [_flat(c) for c in flat.columns]
    values = [df.index.get_level_values(i).tolist() for i in range(df.index.nlevels)]
    flat = flat.reset_index(drop=True)
    for i, (name, column) in enumerate(zip(names, values, strict=True)):
        flat.insert(i, name or f"level_{i}", column)
    return flat


def to_markdown(df: pd.DataFrame, floatfmt: str = ".3f") -> str:
    """A GitHub markdown table: index levels as leading columns, column levels joined by spaces,
    floats with ``floatfmt``, missing values as ``-``."""
    df = _with_index(_check_df(df))
    header = [_flat(c) for c in df.columns]
    numeric = [pd.api.types.is_numeric_dtype(df[c]) for c in df.columns]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    lines = [line(header), "|" + "|".join("---:" if n else ":---" for n in numeric) + "|"]
    for row in df.itertuples(index=False):
        lines.append(line([_cell_text(v, floatfmt) for v in row]))
    return "\n".join(lines) + "\n"


def to_latex(df: pd.DataFrame, floatfmt: str = ".3f") -> str:
    """A LaTeX ``tabular`` (booktabs rules; column levels as ``\\multicolumn`` headers; repeated row
    labels printed once; text escaped; floats with ``floatfmt``; missing values as ``--``)."""
    df = _check_df(df)
    styler = df.style.format(lambda v: "--" if _is_missing(v) else _cell_text(v, floatfmt), escape="latex")
    styler = styler.format_index(escape="latex", axis=0).format_index(escape="latex", axis=1)
    if isinstance(df.index, pd.RangeIndex) and df.index.name is None:
        styler = styler.hide(axis="index")
    return styler.to_latex(hrules=True, multicol_align="c", multirow_align="naive")


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float | np.floating) and math.isnan(value))
