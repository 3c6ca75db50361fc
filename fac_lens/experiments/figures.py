"""The paper's figures from stored results: the run summaries (``ResultStore.summaries()``) and the
stored arrays (ratio maps, per-sample ratio maps, contribution maps).

Single-panel functions take ``ax=`` and return the Axes they drew on (the current Axes when None);
multi-panel functions take ``fig=`` (a new figure when None) and return the Figure. The drawing
primitives, the palette and the style helpers are :mod:`fac_lens.plotting`. Nothing is drawn at import.

Sweep figures take the runs labelled with the sweep (``sweep == "boundary"``, ``"gains"``,
``"thresholds"``) and, because a run shared by two sweeps carries only one label, also every other run
of the same model and dataset whose fixed hyperparameters equal theirs (the default configuration is
usually one cell of each sweep and of the evaluation).

Given the runs' records (``records=ResultStore.records``), the boundary heatmap (Fig. 4) and the
gain / threshold curves (Fig. 5) mark the settings whose difference to vanilla is inside the noise
(its paired bootstrap interval contains 0, :mod:`.significance`): hatched cells, hollow markers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from ..errors import FacLensError
from ..plotting import (  # contribution_before_after (Appendix H) is re-exported from there
    PALETTE,
    as_array,
    as_mask,
    contribution_before_after,  # noqa: F401
    current_axes,
    outline_classes,
    panel_axes,
    plot_head_map,
    plot_layer_trajectory,
)
from ..ratios import HeadRatios
from .significance import DEFAULTS, RecordSource, compare_rows, difference
from .tables import (
    CONFIG,
    bool_mask,
    check_metric,
    config_key,
    default_methods,
    describe_configs,
    how,
    normalize,
    pick_cell,
    resolve,
    vanilla_rows,
)
from .timing import NOISE_FLOOR, TimingResult

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: Axis symbols of the swept fields, in the order :func:`_fixed_text` lists the fixed ones.
SYMBOLS = {
    "g_reas": r"$g_{reas}$",
    "tau_reas": r"$\tau_{reas}$",
    "g_perc": r"$g_{perc}$",
    "tau_perc": r"$\tau_{perc}$",
    "l_reas": r"$\ell_{reas}$",
    "l_perc": r"$\ell_{perc}$",
}


# ---------------------------------------------------------------------------------------------------------
# helpers


def _fmt(value: float) -> str:
    return f"{value:g}"


def sweep_rows(
    df: pd.DataFrame, sweep: str, varying: Sequence[str], dataset: str | None, model: str | None
) -> tuple[pd.DataFrame, str]:
    """The runs of one sweep on one model (all datasets when ``dataset`` is None), and that model.

    Labelled runs fix the other hyperparameters (one setting per dataset); unlabelled runs of the same
    model and dataset with those fixed settings join them (see the module docstring).
    """
    where = f"dataset {dataset!r}" if dataset is not None else "any dataset"
    labelled = df[(df["sweep"] == sweep) & (df["name"] != "vanilla")]
    if dataset is not None:
        labelled = labelled[labelled["dataset"] == dataset]
    if labelled.empty:
        raise FacLensError(f"no rows with sweep == {sweep!r} for {where}: run {how(sweep, dataset)}")
    model = resolve(labelled, "model", model, f"the {sweep!r} runs on {where}")
    labelled = labelled[labelled["model"] == model]
    labelled = labelled[labelled[list(varying)].notna().all(axis=1)]
    if labelled.empty:
        raise FacLensError(
            f"the {sweep!r} runs on {where} have no values for {list(varying)}: run {how(sweep, dataset)}"
        )
    fixed = [c for c in CONFIG if c not in varying]
    parts = []
    for name, group in labelled.groupby("dataset", sort=True):
        keys = {config_key(r, fixed) for _, r in group.iterrows()}
        if len(keys) > 1:
            raise FacLensError(
                f"the {sweep!r} runs on dataset {name!r} mix {len(keys)} settings of the hyperparameters it "
                f"keeps fixed ({describe_configs(group, fixed)}): filter summaries to one setting"
            )
        scope = df[(df["model"] == model) & (df["dataset"] == name) & (df["name"] != "vanilla")]
        scope = scope[scope[list(varying)].notna().all(axis=1)]
        parts.append(scope.loc[bool_mask(config_key(r, fixed) in keys for _, r in scope.iterrows())])
    return pd.concat(parts), model


def _vanilla_value(df: pd.DataFrame, model: str, dataset: str, like: pd.DataFrame, metric: str) -> float:
    rows = pick_cell(
        vanilla_rows(df, model, dataset, like=like), ("eval",), f"the vanilla runs on {dataset!r} ({model})"
    )
    if rows is None or rows[metric].isna().all():
        raise FacLensError(
            f"relative_to_vanilla needs a vanilla run of {model!r} on dataset {dataset!r} with the sweep's "
            f"generation settings and a {metric!r}: run {how('vanilla', dataset)}, "
            "or pass relative_to_vanilla=False"
        )
    return float(rows[metric].mean())


def _inside_noise(
    df: pd.DataFrame,
    rows: pd.DataFrame,
    cols: Sequence[str],
    model: str,
    dataset: str,
    metric: str,
    records: RecordSource,
    settings: dict[str, Any],
) -> dict[tuple[float, float], bool]:
    """{setting (cols values): whether its difference to vanilla is inside the noise}."""
    vanilla = pick_cell(
        vanilla_rows(df, model, dataset, like=rows), ("eval",), f"the vanilla runs on {dataset!r} ({model})"
    )
    if vanilla is None:
        raise FacLensError(
            f"marking the noise needs a vanilla run of {model!r} on dataset {dataset!r} with the sweep's "
            f"generation settings: run {how('vanilla', dataset)}, or draw without records"
        )
    noise = {}
    for setting, group in rows.groupby(list(cols)):
        diff = difference(compare_rows(group, vanilla, records, **settings), metric)
        noise[tuple(float(v) for v in setting)] = diff is not None and diff.within_noise
    return noise


def _noise_label(settings: dict[str, Any]) -> str:
    level = 100 * {**DEFAULTS, **settings}["confidence"]
    return f"inside the noise ({level:g}% interval of the difference to vanilla contains 0)"


def _fixed_text(rows: pd.DataFrame, varying: Sequence[str]) -> str:
    parts = []
    for col in SYMBOLS:
        if col in varying:
            continue
        values = rows[col].dropna().unique()
        if len(values) == 1:
            parts.append(f"{SYMBOLS[col]}={_fmt(float(values[0]))}")
    return ", ".join(parts)


# ---------------------------------------------------------------------------------------------------------
# Figure 3: efficiency


def _display_label(cell: pd.DataFrame, label: str) -> str:
    mode = cell["mode"].iloc[0]
    if label in ("perception_only", "reasoning_only") and mode in ("static", "dynamic"):
        return f"{label} ({mode})"
    return label


def efficiency_scatter(
    summaries: pd.DataFrame,
    dataset: str | None = None,
    ax: Axes | None = None,
    model: str | None = None,
    methods: Sequence[str] | None = None,
    timing: TimingResult | None = None,
) -> Axes:
    """Figure 3: one point per method, x = (accuracy / seconds per batch)^2, y = accuracy.

    Args:
        summaries: ``ResultStore.summaries()`` (the accuracy; and the time when ``timing`` is None).
        dataset, model: which runs (may be None when the frame holds only one).
        methods: method labels (``name`` or ``strategy-A`` ..); default: the methods of runs labelled
            'eval'/'ablation' plus vanilla. Runs labelled 'eval' are preferred; seeds are averaged.
        timing: an interleaved, repeated timing (:func:`.timing.benchmark`) of these methods: x uses
            its median seconds per batch, with a horizontal bar over its interquartile range; each
            label shows the per-token overhead over vanilla, and the noise floor (vanilla timed
            twice) is written in the corner. Without it, x uses the sweep's per-run times (which
            depend on trace length and run order).
    """
    df = normalize(summaries, need=("accuracy", "seconds_per_batch"))
    dataset = resolve(df, "dataset", dataset, "summaries")
    scope = df[df["dataset"] == dataset]
    model = resolve(scope, "model", model, f"dataset {dataset!r}")
    scope = scope[scope["model"] == model]
    methods = default_methods(scope) if methods is None else list(methods)
    timed = timing.summary().set_index("method") if timing is not None else None
    points = []  # (label, x, x range, accuracy): computed first, so that an error draws nothing
    for label in methods:
        cell = pick_cell(
            scope[scope["method"] == label], ("eval",), f"method {label!r} on {dataset!r} ({model})"
        )
        if cell is None:
            raise FacLensError(
                f"no runs of method {label!r} on dataset {dataset!r} ({model}): run {how('eval', dataset)}, "
                "or leave it out of methods="
            )
        accuracy = float(cell["accuracy"].mean())
        text = _display_label(cell, label)
        if timed is not None:
            if label not in timed.index:
                raise FacLensError(
                    f"method {label!r} was not timed (timed: {list(timed.index)}): time it with "
                    "benchmark(...), or leave it out of methods="
                )
            row = timed.loc[label]
            seconds, slow, fast = (
                row["seconds_per_batch"],
                row["seconds_per_batch_q75"],
                row["seconds_per_batch_q25"],
            )
            if label != "vanilla":
                text += f" ({row['overhead_token_pct']:+.1f}%/token)"
        else:
            seconds = float(cell["seconds_per_batch"].mean())
            slow = fast = seconds
        if not seconds > 0 or not fast > 0 or math.isnan(accuracy):
            raise FacLensError(
                f"method {label!r} on {dataset!r} has accuracy={accuracy} and seconds_per_batch={seconds}: "
                "re-run it so that both are recorded (seconds_per_batch must be > 0)"
            )
        x = (accuracy / seconds) ** 2
        points.append((text, x, ((accuracy / slow) ** 2, (accuracy / fast) ** 2), accuracy, label))
    import seaborn as sns

    from ..baselines import BASELINE_NAMES

    ax = current_axes(ax, style="whitegrid")
    # one colour per method (tab20 past deep's 10), baselines drawn as diamonds
    colors = sns.color_palette("deep" if len(points) <= 10 else "tab20", max(len(points), 1))
    for color, (text, x, (low, high), accuracy, label) in zip(colors, points, strict=False):
        marker = "D" if label in BASELINE_NAMES else "o"
        ax.scatter([x], [accuracy], s=70, color=color, marker=marker, label=text, zorder=3)
        if high > low:
            ax.hlines(accuracy, low, high, color=color, alpha=0.6, label=f"_{text} IQR")
    ax.set_xlabel(r"$(\mathrm{Acc}/\mathrm{AvgBatchTime})^2$  [s$^{-2}$]")
    ax.set_ylabel("accuracy")
    ax.set_title(f"efficiency on {dataset} ({model})")
    if timing is not None:
        floor = timing.noise_floor()
        summary = timed.loc[NOISE_FLOOR] if NOISE_FLOOR in timed.index else None
        note = f"{timing.settings.get('repeats', '?')} interleaved repeats; bars: IQR"
        if floor is not None and summary is not None:
            note += (
                f"\nnoise floor (vanilla vs vanilla): {floor:+.1f}%/token "
                f"[{summary['overhead_token_pct_q25']:+.1f}, {summary['overhead_token_pct_q75']:+.1f}]"
            )
    else:
        note = None
    ax.margins(x=0.15, y=0.15)
    if points:  # beside the Axes: the methods' points often sit close together
        ax.legend(
            loc="center left",
            bbox_to_anchor=(1.02, 0.5),
            fontsize="small",
            frameon=False,
            title=note,
            title_fontsize="x-small",
            alignment="left",
        )
    return ax


# ---------------------------------------------------------------------------------------------------------
# Figure 4: boundary sweep


def boundary_heatmap(
    summaries: pd.DataFrame,
    dataset: str,
    metric: str = "accuracy",
    relative_to_vanilla: bool = False,
    ax: Axes | None = None,
    model: str | None = None,
    annotate: bool = True,
    *,
    records: RecordSource | None = None,
    **settings: Any,
) -> Axes:
    """Figure 4: ``metric`` over the boundary grid, rows l_perc (increasing upwards), columns l_reas.

    Every (l_perc, l_reas) pair of the grid's values is a cell; pairs without a run are blank (NaN).
    With ``relative_to_vanilla`` a cell is metric - vanilla metric (same model, dataset, generation).
    With ``records`` (``ResultStore.records``; metric accuracy or f1) cells whose difference to
    vanilla is inside the noise are hatched, with a legend entry; ``settings``: the bootstrap's
    ``n_resamples``, ``confidence``, ``seed``.
    """
    df = normalize(summaries, need=(metric,))
    varying = ("l_perc", "l_reas")
    rows, model = sweep_rows(df, "boundary", varying, dataset, model)
    check_metric(rows, metric)
    grid = rows.groupby(list(varying))[metric].mean().unstack("l_reas")
    grid = grid.reindex(index=sorted(rows["l_perc"].unique()), columns=sorted(rows["l_reas"].unique()))
    if relative_to_vanilla:
        grid = grid - _vanilla_value(df, model, dataset, rows, metric)
    noise = {}
    if records is not None:
        difference(None, metric)  # checks the metric before anything is computed
        noise = _inside_noise(df, rows, varying, model, dataset, metric, records, settings)
    cells = [
        (i, j) for i, p in enumerate(grid.index) for j, r in enumerate(grid.columns) if noise.get((p, r))
    ]
    grid.index = [int(v) for v in grid.index]
    grid.columns = [int(v) for v in grid.columns]
    import seaborn as sns

    ax = current_axes(ax, style="white")
    label = f"{metric} - vanilla" if relative_to_vanilla else metric
    kwargs: dict[str, Any] = {"cmap": "vlag_r", "center": 0.0} if relative_to_vanilla else {"cmap": "mako"}
    fontsize = max(5.0, min(10.0, 90.0 / max(grid.shape)))
    sns.heatmap(
        grid,
        ax=ax,
        annot=annotate,
        fmt="+.3f" if relative_to_vanilla else ".3f",
        annot_kws={"fontsize": fontsize},
        cbar_kws={"label": label},
        **kwargs,
    )
    _hatch_cells(ax, cells, _noise_label(settings) if records is not None else None)
    ax.invert_yaxis()
    ax.set_xlabel(r"reasoning boundary $\ell_{reas}$ (first reasoning layer)")
    ax.set_ylabel(r"perception boundary $\ell_{perc}$ (last perception layer)")
    fixed = _fixed_text(rows, varying)
    ax.set_title(f"{dataset} ({model}): {label}" + (f"\n{fixed}" if fixed else ""), fontsize="medium")
    return ax


#: Legends under the Axes (below the axis label), never over the data; ``_UNDER_SETTINGS``: below
#: rotated setting labels.
_BELOW = {"loc": "upper center", "bbox_to_anchor": (0.5, -0.3), "fontsize": "small", "frameon": False}
_UNDER_SETTINGS = {**_BELOW, "bbox_to_anchor": (0.5, -0.5)}


def _hatch_cells(ax: Axes, cells: Sequence[tuple[int, int]], label: str | None) -> None:
    """Hatch heatmap cells (row, column) and add a legend entry ``label`` (when not None)."""
    from matplotlib.patches import Patch, Rectangle

    style = {"fill": False, "hatch": "//", "edgecolor": "0.6", "linewidth": 0.0, "hatch_linewidth": 1.5}
    for i, j in cells:
        ax.add_patch(Rectangle((j, i), 1, 1, **style))
    if label is not None:
        ax.legend(
            handles=[Patch(label=label, **{**style, "linewidth": 0.5})],
            **_BELOW,
        )


def boundary_heatmaps(
    summaries: pd.DataFrame,
    metric: str = "accuracy",
    relative_to_vanilla: bool = False,
    fig: Figure | None = None,
    *,
    records: RecordSource | None = None,
    **settings: Any,
) -> Figure:
    """Figure 4: one :func:`boundary_heatmap` panel per (model, dataset) with boundary runs, on ``fig``
    (an empty Figure; default: a new one); ``records`` and ``settings`` as there."""
    df = normalize(summaries, need=(metric,))
    labelled = df[(df["sweep"] == "boundary") & (df["name"] != "vanilla")]
    if labelled.empty:
        raise FacLensError(f"no rows with sweep == 'boundary': run {how('boundary')}")
    panels = sorted({(m, d) for m, d in zip(labelled["model"], labelled["dataset"], strict=True)})
    fig, axes = panel_axes(fig, len(panels), 6.0, 5.0, style="white")
    for ax, (model, dataset) in zip(axes, panels, strict=True):
        boundary_heatmap(
            df, dataset, metric, relative_to_vanilla, ax=ax, model=model, records=records, **settings
        )
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------------------
# Figure 5: gains, thresholds, head counts


def _settings_axis(ax: Axes, settings: list[tuple[float, float]], cols: Sequence[str]) -> None:
    ax.set_xticks(range(len(settings)))
    ax.set_xticklabels(
        [f"({_fmt(a)}, {_fmt(b)})" for a, b in settings],
        rotation=45 if len(settings) > 5 else 0,
        ha="right" if len(settings) > 5 else "center",
    )
    ax.set_xlabel(f"({SYMBOLS[cols[0]]}, {SYMBOLS[cols[1]]})")


def _setting_curves(
    summaries: pd.DataFrame,
    sweep: str,
    cols: tuple[str, str],
    dataset: str | None,
    metric: str,
    relative_to_vanilla: bool,
    ax: Axes | None,
    model: str | None,
    vanilla: bool,
    title: str,
    records: RecordSource | None = None,
    bootstrap: dict[str, Any] | None = None,
) -> Axes:
    df = normalize(summaries, need=(metric,))
    rows, model = sweep_rows(df, sweep, cols, dataset, model)
    check_metric(rows, metric)
    if records is not None:
        difference(None, metric)  # checks the metric before anything is computed
    settings = sorted({(float(a), float(b)) for a, b in zip(rows[cols[0]], rows[cols[1]], strict=True)})
    position = {s: i for i, s in enumerate(settings)}
    curves = []  # (dataset, x, y, vanilla level or None, inside noise): computed first, so that an error draws nothing
    for name in sorted(rows["dataset"].unique()):
        group = rows[rows["dataset"] == name]
        means = group.groupby(list(cols))[metric].mean().dropna()
        x = [position[(float(a), float(b))] for a, b in means.index]
        y = means.to_numpy()
        if relative_to_vanilla:
            y = y - _vanilla_value(df, model, name, group, metric)
        level = None
        if vanilla and not relative_to_vanilla:
            base = pick_cell(vanilla_rows(df, model, name, like=group), ("eval",), f"vanilla on {name!r}")
            if base is not None and base[metric].notna().any():
                level = float(base[metric].mean())
        noise = []
        if records is not None:
            inside = _inside_noise(df, group, cols, model, name, metric, records, bootstrap or {})
            noise = [inside.get((float(a), float(b)), False) for a, b in means.index]
        curves.append((name, x, y, level, noise))
    import seaborn as sns

    ax = current_axes(ax, style="whitegrid")
    for color, (name, x, y, level, noise) in zip(sns.color_palette("deep", len(curves)), curves, strict=True):
        if records is None:
            ax.plot(x, y, marker="o", color=color, label=name)
        else:
            _marked_curve(ax, x, y, noise, color, name)
        if level is not None:
            ax.axhline(level, color=color, linestyle=":", label=f"{name} vanilla")
    if records is not None:
        from matplotlib.lines import Line2D

        hollow = {"marker": "o", "linestyle": "", "markerfacecolor": "white", "markeredgecolor": "0.3"}
        ax.add_line(Line2D([], [], label=_noise_label(bootstrap or {}), **hollow))
    if relative_to_vanilla and vanilla:
        ax.axhline(0.0, color=PALETTE["vanilla"], linestyle=":", label="vanilla")
    _settings_axis(ax, settings, cols)
    ax.set_ylabel(f"{metric} - vanilla" if relative_to_vanilla else metric)
    fixed = _fixed_text(rows, cols)
    ax.set_title(f"{title} ({model})" + (f"\n{fixed}" if fixed else ""), fontsize="medium")
    ax.legend(**_UNDER_SETTINGS)
    return ax


def _marked_curve(ax: Axes, x: Sequence[int], y: Any, noise: Sequence[bool], color: Any, name: str) -> None:
    """A line with filled markers, hollow where the point is inside the noise."""
    ax.plot(x, y, color=color, label=name)
    y = np.asarray(y, dtype=float)
    for inside in (False, True):
        picked = [i for i, flag in enumerate(noise) if flag == inside]
        if picked:
            ax.scatter(
                [x[i] for i in picked],
                y[picked],
                s=36,
                zorder=3,
                edgecolors=[color],
                facecolors="white" if inside else [color],
            )


def gain_curves(
    summaries: pd.DataFrame,
    dataset: str | None = None,
    metric: str = "accuracy",
    ax: Axes | None = None,
    model: str | None = None,
    relative_to_vanilla: bool = False,
    vanilla: bool = True,
    *,
    records: RecordSource | None = None,
    **settings: Any,
) -> Axes:
    """Figure 5 left: ``metric`` vs the gain setting (g_reas, g_perc), one line per dataset.

    The x-axis lists the (g_reas, g_perc) settings of the ``gains`` sweep in sorted order (as the paper
    does; this reads for one-at-a-time sweeps and for full grids alike). ``vanilla`` adds each dataset's
    vanilla score as a dotted line of the same colour (or the zero line when ``relative_to_vanilla``).
    With ``records`` (``ResultStore.records``; metric accuracy or f1) a point whose difference to
    vanilla is inside the noise is hollow, with a legend entry; ``settings``: the bootstrap's
    ``n_resamples``, ``confidence``, ``seed``.
    """
    return _setting_curves(
        summaries,
        "gains",
        ("g_reas", "g_perc"),
        dataset,
        metric,
        relative_to_vanilla,
        ax,
        model,
        vanilla,
        "performance vs gains",
        records,
        settings,
    )


def threshold_curves(
    summaries: pd.DataFrame,
    dataset: str | None = None,
    metric: str = "accuracy",
    ax: Axes | None = None,
    model: str | None = None,
    relative_to_vanilla: bool = False,
    vanilla: bool = True,
    *,
    records: RecordSource | None = None,
    **settings: Any,
) -> Axes:
    """Figure 5 middle: ``metric`` vs the threshold setting (tau_reas, tau_perc), one line per dataset
    (x-axis, vanilla lines and the noise marks as in :func:`gain_curves`)."""
    return _setting_curves(
        summaries,
        "thresholds",
        ("tau_reas", "tau_perc"),
        dataset,
        metric,
        relative_to_vanilla,
        ax,
        model,
        vanilla,
        "performance vs thresholds",
        records,
        settings,
    )


def head_count_values(rows: pd.DataFrame, cls: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row mask, value, spread) of the heads of class ``cls`` (``"perception"``/``"reasoning"``)
    each run identified: a dynamic run's mean over its forward passes with the standard deviation
    (``heads_<cls>_mean`` / ``_std``, recorded per pass), a static run's one count (``n_<cls>``,
    spread 0). Dynamic runs stored without per-pass counts are left out (mask False)."""

    def column(name: str) -> np.ndarray:
        if name not in rows.columns:
            return np.full(len(rows), np.nan)
        return pd.to_numeric(rows[name], errors="coerce").to_numpy(float)

    dynamic = (rows["mode"] == "dynamic").to_numpy()
    value = np.where(dynamic, column(f"heads_{cls}_mean"), column(f"n_{cls}"))
    spread = np.where(dynamic, np.nan_to_num(column(f"heads_{cls}_std")), 0.0)
    return ~np.isnan(value), value, spread


def head_counts(
    summaries: pd.DataFrame,
    ax: Axes | None = None,
    dataset: str | None = None,
    model: str | None = None,
    jitter: float = 0.06,
) -> Axes:
    """Figure 5 right: heads identified vs (tau_reas, tau_perc), per class.

    A dynamic run identifies heads anew in every forward pass (prefill and each decoding step): its
    point is the mean number of heads per pass with a bar of +-1 standard deviation (the
    token-dependent variability; :func:`head_count_values`). A static run shows its one count, no
    bar. Points are shifted left (perception) or right (reasoning) of their setting with a small
    seeded horizontal jitter (+-``jitter``); a line joins each class's means per setting.
    """
    df = normalize(summaries)
    cols = ("tau_reas", "tau_perc")
    rows, model = sweep_rows(df, "thresholds", cols, dataset, model)
    values = {cls: head_count_values(rows, cls) for cls in ("perception", "reasoning")}
    if not any(mask.any() for mask, _, _ in values.values()):
        raise FacLensError(
            "the 'thresholds' runs record no head counts: dynamic runs record them per forward pass "
            "(heads_perception_mean, ...) since the records hold head_counts, static runs from the "
            f"calibration ratio map; re-run {how('thresholds', dataset)} into a new store"
        )
    settings = sorted({(float(a), float(b)) for a, b in zip(rows[cols[0]], rows[cols[1]], strict=True)})
    position = {s: i for i, s in enumerate(settings)}
    rng = np.random.default_rng(0)
    ax = current_axes(ax, style="whitegrid")
    style = {"perception": (-0.12, PALETTE["perception"]), "reasoning": (0.12, PALETTE["reasoning"])}
    for cls, (mask, value, spread) in values.items():
        if not mask.any():
            continue
        offset, color = style[cls]
        sub = rows[mask]
        keys = [(float(a), float(b)) for a, b in zip(sub[cols[0]], sub[cols[1]], strict=True)]
        base = np.array([position[key] for key in keys])
        x = base + offset + rng.uniform(-jitter, jitter, size=len(base))
        y, err = value[mask], spread[mask]
        ax.scatter(x, y, color=color, alpha=0.75, s=28, label=f"{cls} heads", zorder=3)
        bars = err > 0
        if bars.any():
            ax.vlines(
                x[bars], (y - err)[bars], (y + err)[bars], color=color, alpha=0.6, label=f"_{cls} +-1 std"
            )
        means = pd.Series(y).groupby(base).mean()  # per setting position
        ax.plot(means.index + offset, means.to_numpy(), color=color, linewidth=1.2, alpha=0.8)
    _settings_axis(ax, settings, cols)
    ax.set_ylabel("heads identified per pass (mean +-1 std)")
    ax.set_title(f"identified heads vs thresholds ({model})", fontsize="medium")
    ax.legend(**_UNDER_SETTINGS)
    return ax


def figure5(
    summaries: pd.DataFrame,
    metric: str = "accuracy",
    model: str | None = None,
    fig: Figure | None = None,
    *,
    records: RecordSource | None = None,
    **settings: Any,
) -> Figure:
    """Figure 5: :func:`gain_curves`, :func:`threshold_curves` and :func:`head_counts` side by side,
    on ``fig`` (an empty Figure; default: a new one); ``records`` and ``settings`` mark the noise in
    the first two as there.

    A panel whose sweep has no runs shows the reason (and the command that produces them) instead;
    a :class:`FacLensError` is raised only when no panel can be drawn (a new figure is closed then).
    """
    df = normalize(summaries, need=(metric,))
    owned = fig is None
    fig, axes = panel_axes(fig, 3, 5.8, 4.6)
    panels = (
        lambda ax: gain_curves(df, metric=metric, ax=ax, model=model, records=records, **settings),
        lambda ax: threshold_curves(df, metric=metric, ax=ax, model=model, records=records, **settings),
        lambda ax: head_counts(df, ax=ax, model=model),
    )
    errors = []
    for ax, draw in zip(axes, panels, strict=True):
        try:
            draw(ax)
        except FacLensError as err:
            errors.append(str(err))
            ax.text(
                0.5, 0.5, _wrap(str(err)), ha="center", va="center", fontsize="small", transform=ax.transAxes
            )
            ax.set_axis_off()
    if len(errors) == len(panels):
        if owned:
            import matplotlib.pyplot as plt

            plt.close(fig)
        raise FacLensError("figure5 has nothing to draw: " + " | ".join(errors))
    fig.tight_layout()
    return fig


def _wrap(text: str, width: int = 48) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width))


# ---------------------------------------------------------------------------------------------------------
# Section 2.2 and Appendix H: array figures


def ratio_trajectory(
    per_sample: Any,
    l_perc: int | None = None,
    l_reas: int | None = None,
    ax: Axes | None = None,
    query: str = "all",
) -> Axes:
    """Section 2.2: layer-wise visual ratio (head mean per layer; line = sample mean, band = +-1 std
    over samples) with the boundaries as vertical lines.

    Args:
        per_sample: float [n_samples, n_layers, n_heads] (stored kind ``ratios_per_sample``; a
            :class:`HeadRatios` also works).
        query: the query set the ratios were computed over (for the title; meta["query"]).
    """
    arr = as_array(per_sample, 3, "[n_samples, n_layers, n_heads]", "ratio_trajectory per_sample")
    n_layers = arr.shape[1]
    for name, value in (("l_perc", l_perc), ("l_reas", l_reas)):
        if value is not None and not 0 <= value <= n_layers - 1:
            raise FacLensError(
                f"{name}={value} is outside the map's layers: use a layer in [0, {n_layers - 1}]"
            )
    ratios = HeadRatios(torch.as_tensor(arr, dtype=torch.float32), query)
    return plot_layer_trajectory(ratios, l_perc=l_perc, l_reas=l_reas, ax=current_axes(ax, style="whitegrid"))


def head_class_map(visual: Any, perception: Any, reasoning: Any, ax: Axes | None = None) -> Axes:
    """Head map of S_v [n_layers, n_heads] with perception heads outlined orange, reasoning heads cyan
    (legend with the count of each class and of the other heads).

    Args:
        visual: float [n_layers, n_heads] S_v (stored kind ``ratios``; a :class:`HeadRatios` also works).
        perception, reasoning: bool masks of the same shape (``HeadSelection.perception`` / ``.reasoning``).
    """
    v = as_array(visual, 2, "[n_layers, n_heads]", "head_class_map visual")
    p = as_mask(perception, v.shape, "perception")
    r = as_mask(reasoning, v.shape, "reasoning")
    ax = plot_head_map(torch.as_tensor(v, dtype=torch.float32), ax=current_axes(ax, style="white"))
    outline_classes(ax, torch.as_tensor(p), torch.as_tensor(r), other=True)
    ax.set_title("functional head classes")
    return ax
