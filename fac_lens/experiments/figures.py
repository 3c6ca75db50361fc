"""The paper's figures from stored results: the run summaries (``ResultStore.summaries()``) and the
stored arrays (ratio maps, per-sample ratio maps, contribution maps).

Single-panel functions take ``ax=`` and return the Axes they drew on (a new figure when None);
multi-panel functions return the Figure. Nothing is drawn at import.

Sweep figures take the runs labelled with the sweep (``sweep == "boundary"``, ``"gains"``,
``"thresholds"``) and, because a run shared by two sweeps carries only one label, also every other run
of the same model and dataset whose fixed hyperparameters equal theirs (the default configuration is
usually one cell of each sweep and of the evaluation).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from ..errors import FacLensError
from ..plotting import _outline, plot_contribution, plot_head_map, plot_layer_trajectory
from ..ratios import HeadRatios
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

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

PERCEPTION_COLOR = "#ff8c00"
REASONING_COLOR = "#00a5c8"
SYMBOLS = {
    "l_perc": r"$\ell_{perc}$",
    "l_reas": r"$\ell_{reas}$",
    "tau_perc": r"$\tau_{perc}$",
    "tau_reas": r"$\tau_{reas}$",
    "g_perc": r"$g_{perc}$",
    "g_reas": r"$g_{reas}$",
}


# ---------------------------------------------------------------------------------------------------------
# helpers


def _new_ax(ax: Axes | None, figsize: tuple[float, float] = (5.5, 4.2), style: str = "whitegrid") -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt
    import seaborn as sns

    with sns.axes_style(style):
        return plt.figure(figsize=figsize).add_subplot()


def _subplots(n: int, width: float, height: float, style: str = "whitegrid") -> tuple[Figure, list[Axes]]:
    import matplotlib.pyplot as plt
    import seaborn as sns

    with sns.axes_style(style):
        fig, axes = plt.subplots(1, n, figsize=(width * n, height), squeeze=False)
    return fig, list(axes[0])


def _array(value: Any, ndim: int, shape: str, what: str) -> np.ndarray:
    """``value`` (numpy array, torch tensor or nested lists) as a float ndarray of rank ``ndim``."""
    if isinstance(value, HeadRatios):
        value = value.per_sample if ndim == 3 else value.visual
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().float().numpy()
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as err:
        raise FacLensError(f"{what} must be a numeric array shaped {shape}: {err}") from err
    if arr.ndim != ndim or arr.size == 0:
        raise FacLensError(
            f"{what} must be a non-empty array shaped {shape}, got shape {arr.shape}: pass the stored array "
            "(ResultStore arrays of the matching kind) or index/stack it to that shape"
        )
    return arr


def _mask(value: Any, shape: tuple[int, ...], what: str) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    arr = np.asarray(value)
    if arr.shape != shape:
        raise FacLensError(
            f"{what} must be a bool mask shaped like visual {shape} [n_layers, n_heads], got shape "
            f"{arr.shape}: pass HeadSelection.{what} for the same ratio map"
        )
    return arr.astype(bool)


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


def _fixed_text(rows: pd.DataFrame, varying: Sequence[str]) -> str:
    parts = []
    for col in ("g_reas", "tau_reas", "g_perc", "tau_perc", "l_reas", "l_perc"):
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
) -> Axes:
    """Figure 3: one point per method, x = (accuracy / seconds_per_batch)^2, y = accuracy.

    Args:
        summaries: ``ResultStore.summaries()``.
        dataset, model: which runs (may be None when the frame holds only one).
        methods: method labels (``name`` or ``strategy-A`` ..); default: the methods of runs labelled
            'eval'/'ablation' plus vanilla. Runs labelled 'eval' are preferred; seeds are averaged.
    """
    df = normalize(summaries, need=("accuracy", "seconds_per_batch"))
    dataset = resolve(df, "dataset", dataset, "summaries")
    scope = df[df["dataset"] == dataset]
    model = resolve(scope, "model", model, f"dataset {dataset!r}")
    scope = scope[scope["model"] == model]
    methods = default_methods(scope) if methods is None else list(methods)
    import seaborn as sns

    ax = _new_ax(ax)
    colors = sns.color_palette("deep", max(len(methods), 1))
    drawn = 0
    for i, label in enumerate(methods):
        cell = pick_cell(
            scope[scope["method"] == label], ("eval",), f"method {label!r} on {dataset!r} ({model})"
        )
        if cell is None:
            raise FacLensError(
                f"no runs of method {label!r} on dataset {dataset!r} ({model}): run {how('eval', dataset)}, "
                "or leave it out of methods="
            )
        accuracy, seconds = float(cell["accuracy"].mean()), float(cell["seconds_per_batch"].mean())
        if not seconds > 0 or math.isnan(accuracy):
            raise FacLensError(
                f"method {label!r} on {dataset!r} has accuracy={accuracy} and seconds_per_batch={seconds}: "
                "re-run it so that both are recorded (seconds_per_batch must be > 0)"
            )
        x = (accuracy / seconds) ** 2
        text = _display_label(cell, label)
        ax.scatter([x], [accuracy], s=70, color=colors[i], label=text, zorder=3)
        ax.annotate(text, (x, accuracy), textcoords="offset points", xytext=(5, 5), fontsize="small")
        drawn += 1
    ax.set_xlabel(r"$(\mathrm{Acc}/\mathrm{AvgBatchTime})^2$  [s$^{-2}$]")
    ax.set_ylabel("accuracy")
    ax.set_title(f"efficiency on {dataset} ({model})")
    ax.margins(x=0.15, y=0.15)
    if drawn:
        ax.legend(fontsize="small")
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
) -> Axes:
    """Figure 4: ``metric`` over the boundary grid, rows l_perc (increasing upwards), columns l_reas.

    Every (l_perc, l_reas) pair of the grid's values is a cell; pairs without a run are blank (NaN).
    With ``relative_to_vanilla`` a cell is metric - vanilla metric (same model, dataset, generation).
    """
    df = normalize(summaries, need=(metric,))
    varying = ("l_perc", "l_reas")
    rows, model = sweep_rows(df, "boundary", varying, dataset, model)
    check_metric(rows, metric)
    grid = rows.groupby(list(varying))[metric].mean().unstack("l_reas")
    grid = grid.reindex(index=sorted(rows["l_perc"].unique()), columns=sorted(rows["l_reas"].unique()))
    if relative_to_vanilla:
        grid = grid - _vanilla_value(df, model, dataset, rows, metric)
    grid.index = [int(v) for v in grid.index]
    grid.columns = [int(v) for v in grid.columns]
    import seaborn as sns

    ax = _new_ax(
        ax, figsize=(max(5.5, 0.45 * grid.shape[1] + 2), max(4.2, 0.4 * grid.shape[0] + 1.5)), style="white"
    )
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
    ax.invert_yaxis()
    ax.set_xlabel(r"reasoning boundary $\ell_{reas}$ (first reasoning layer)")
    ax.set_ylabel(r"perception boundary $\ell_{perc}$ (last perception layer)")
    fixed = _fixed_text(rows, varying)
    ax.set_title(f"{dataset} ({model}): {label}" + (f"\n{fixed}" if fixed else ""), fontsize="medium")
    return ax


def boundary_heatmaps(
    summaries: pd.DataFrame, metric: str = "accuracy", relative_to_vanilla: bool = False
) -> Figure:
    """Figure 4: one :func:`boundary_heatmap` panel per (model, dataset) with boundary runs."""
    df = normalize(summaries, need=(metric,))
    labelled = df[(df["sweep"] == "boundary") & (df["name"] != "vanilla")]
    if labelled.empty:
        raise FacLensError(f"no rows with sweep == 'boundary': run {how('boundary')}")
    panels = sorted({(m, d) for m, d in zip(labelled["model"], labelled["dataset"], strict=True)})
    fig, axes = _subplots(len(panels), 6.0, 5.0, style="white")
    for ax, (model, dataset) in zip(axes, panels, strict=True):
        boundary_heatmap(df, dataset, metric, relative_to_vanilla, ax=ax, model=model)
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
) -> Axes:
    df = normalize(summaries, need=(metric,))
    rows, model = sweep_rows(df, sweep, cols, dataset, model)
    check_metric(rows, metric)
    settings = sorted({(float(a), float(b)) for a, b in zip(rows[cols[0]], rows[cols[1]], strict=True)})
    position = {s: i for i, s in enumerate(settings)}
    import seaborn as sns

    ax = _new_ax(ax)
    datasets = sorted(rows["dataset"].unique())
    colors = sns.color_palette("deep", len(datasets))
    for color, name in zip(colors, datasets, strict=True):
        group = rows[rows["dataset"] == name]
        means = group.groupby(list(cols))[metric].mean().dropna()
        x = [position[(float(a), float(b))] for a, b in means.index]
        y = means.to_numpy()
        if relative_to_vanilla:
            y = y - _vanilla_value(df, model, name, group, metric)
        ax.plot(x, y, marker="o", color=color, label=name)
        if vanilla and not relative_to_vanilla:
            base = pick_cell(vanilla_rows(df, model, name, like=group), ("eval",), f"vanilla on {name!r}")
            if base is not None and base[metric].notna().any():
                ax.axhline(float(base[metric].mean()), color=color, linestyle=":", label=f"{name} vanilla")
    if relative_to_vanilla and vanilla:
        ax.axhline(0.0, color="0.4", linestyle=":", label="vanilla")
    _settings_axis(ax, settings, cols)
    ax.set_ylabel(f"{metric} - vanilla" if relative_to_vanilla else metric)
    fixed = _fixed_text(rows, cols)
    ax.set_title(f"{title} ({model})" + (f"\n{fixed}" if fixed else ""), fontsize="medium")
    ax.legend(fontsize="small")
    return ax


def gain_curves(
    summaries: pd.DataFrame,
    dataset: str | None = None,
    metric: str = "accuracy",
    ax: Axes | None = None,
    model: str | None = None,
    relative_to_vanilla: bool = False,
    vanilla: bool = True,
) -> Axes:
    """Figure 5 left: ``metric`` vs the gain setting (g_reas, g_perc), one line per dataset.

    The x-axis lists the (g_reas, g_perc) settings of the ``gains`` sweep in sorted order (as the paper
    does; this reads for one-at-a-time sweeps and for full grids alike). ``vanilla`` adds each dataset's
    vanilla score as a dotted line of the same colour (or the zero line when ``relative_to_vanilla``).
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
    )


def threshold_curves(
    summaries: pd.DataFrame,
    dataset: str | None = None,
    metric: str = "accuracy",
    ax: Axes | None = None,
    model: str | None = None,
    relative_to_vanilla: bool = False,
    vanilla: bool = True,
) -> Axes:
    """Figure 5 middle: ``metric`` vs the threshold setting (tau_reas, tau_perc), one line per dataset
    (x-axis and vanilla lines as in :func:`gain_curves`)."""
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
    )


def head_counts(
    summaries: pd.DataFrame,
    ax: Axes | None = None,
    dataset: str | None = None,
    model: str | None = None,
    jitter: float = 0.06,
) -> Axes:
    """Figure 5 right: identified heads (n_perception, n_reasoning) vs (tau_reas, tau_perc).

    One point per ``thresholds`` run and class, shifted left (perception) or right (reasoning) of its
    setting with a small seeded horizontal jitter (+-``jitter``); a line joins each class's means.
    """
    df = normalize(summaries)
    cols = ("tau_reas", "tau_perc")
    rows, model = sweep_rows(df, "thresholds", cols, dataset, model)
    counts = [c for c in ("n_perception", "n_reasoning") if c in rows.columns and rows[c].notna().any()]
    if not counts:
        raise FacLensError(
            "the 'thresholds' runs record no head counts (n_perception / n_reasoning are None): they are "
            f"recorded for a selection made from a stored ratio map; run {how('thresholds', dataset)} "
            "with a ratio map stored for the model and dataset"
        )
    settings = sorted({(float(a), float(b)) for a, b in zip(rows[cols[0]], rows[cols[1]], strict=True)})
    position = {s: i for i, s in enumerate(settings)}
    rng = np.random.default_rng(0)
    ax = _new_ax(ax)
    style = {
        "n_perception": (-0.12, PERCEPTION_COLOR, "perception"),
        "n_reasoning": (0.12, REASONING_COLOR, "reasoning"),
    }
    for col in counts:
        offset, color, name = style[col]
        sub = rows[rows[col].notna()]
        base = np.array(
            [position[(float(a), float(b))] for a, b in zip(sub[cols[0]], sub[cols[1]], strict=True)]
        )
        x = base + offset + rng.uniform(-jitter, jitter, size=len(base))
        ax.scatter(x, sub[col].to_numpy(), color=color, alpha=0.75, s=28, label=f"{name} heads", zorder=3)
        means = sub.groupby(list(cols))[col].mean()
        ax.plot(
            [position[(float(a), float(b))] + offset for a, b in means.index],
            means.to_numpy(),
            color=color,
            linewidth=1.2,
            alpha=0.8,
        )
    _settings_axis(ax, settings, cols)
    ax.set_ylabel("identified heads")
    ax.set_title(f"identified heads vs thresholds ({model})", fontsize="medium")
    ax.legend(fontsize="small")
    return ax


def figure5(summaries: pd.DataFrame, metric: str = "accuracy", model: str | None = None) -> Figure:
    """Figure 5: :func:`gain_curves`, :func:`threshold_curves` and :func:`head_counts` side by side.

    A panel whose sweep has no runs shows the reason (and the command that produces them) instead;
    a :class:`FacLensError` is raised only when no panel can be drawn.
    """
    df = normalize(summaries, need=(metric,))
    fig, axes = _subplots(3, 5.8, 4.6)
    panels = (
        lambda ax: gain_curves(df, metric=metric, ax=ax, model=model),
        lambda ax: threshold_curves(df, metric=metric, ax=ax, model=model),
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
    arr = _array(per_sample, 3, "[n_samples, n_layers, n_heads]", "ratio_trajectory per_sample")
    n_layers = arr.shape[1]
    for name, value in (("l_perc", l_perc), ("l_reas", l_reas)):
        if value is not None and not 0 <= value <= n_layers - 1:
            raise FacLensError(
                f"{name}={value} is outside the map's layers: use a layer in [0, {n_layers - 1}]"
            )
    ratios = HeadRatios(torch.as_tensor(arr, dtype=torch.float32), query)
    return plot_layer_trajectory(ratios, l_perc=l_perc, l_reas=l_reas, ax=_new_ax(ax))


def head_class_map(visual: Any, perception: Any, reasoning: Any, ax: Axes | None = None) -> Axes:
    """Head map of S_v [n_layers, n_heads] with perception heads outlined orange, reasoning heads cyan
    (legend with the count of each class and of the other heads).

    Args:
        visual: float [n_layers, n_heads] S_v (stored kind ``ratios``; a :class:`HeadRatios` also works).
        perception, reasoning: bool masks of the same shape (``HeadSelection.perception`` / ``.reasoning``).
    """
    from matplotlib.patches import Patch

    v = _array(visual, 2, "[n_layers, n_heads]", "head_class_map visual")
    p = _mask(perception, v.shape, "perception")
    r = _mask(reasoning, v.shape, "reasoning")
    ax = plot_head_map(torch.as_tensor(v, dtype=torch.float32), ax=_new_ax(ax, style="white"))
    n_p, n_r, n_other = int(p.sum()), int(r.sum()), int((~(p | r)).sum())
    _outline(ax, torch.as_tensor(p), PERCEPTION_COLOR, f"perception ({n_p})")
    _outline(ax, torch.as_tensor(r), REASONING_COLOR, f"reasoning ({n_r})")
    handles = [
        Patch(fill=False, edgecolor=PERCEPTION_COLOR, linewidth=2, label=f"perception ({n_p})"),
        Patch(fill=False, edgecolor=REASONING_COLOR, linewidth=2, label=f"reasoning ({n_r})"),
        Patch(fill=False, edgecolor="none", label=f"other ({n_other})"),
    ]
    ax.legend(handles=handles, loc="upper right", fontsize="small", framealpha=0.8)
    ax.set_title("functional head classes")
    return ax


def contribution_before_after(
    before: Any, after: Any, title: str | None = None, absolute: bool = False
) -> Figure:
    """Appendix H: contribution maps before and after FAC (one colour scale for both) and their
    difference after - before (diverging scale).

    Args:
        before, after: float [n_layers, n_heads] signed dL/dg (stored kind ``contribution``; negative =
            amplifying the head lowers the loss of the target token).
        absolute: show |dL/dg| (the paper's non-negative importance) instead of the signed values.
    """
    import seaborn as sns

    b = _array(before, 2, "[n_layers, n_heads]", "contribution_before_after before")
    a = _array(after, 2, "[n_layers, n_heads]", "contribution_before_after after")
    if a.shape != b.shape:
        raise FacLensError(
            f"before {b.shape} and after {a.shape} must have the same [n_layers, n_heads] shape: "
            "pass the two contribution maps of the same model and sample"
        )
    if absolute:
        a, b = np.abs(a), np.abs(b)
    label = "|dL/dg|" if absolute else "dL/dg"
    fig, axes = _subplots(3, 5.2, 4.4, style="white")
    if (a < 0).any() or (b < 0).any():
        bound = float(max(np.abs(a).max(), np.abs(b).max())) or 1.0
        scale: dict[str, Any] = {"cmap": "vlag", "vmin": -bound, "vmax": bound}
    else:
        scale = {"cmap": "rocket_r", "vmin": 0.0, "vmax": float(max(a.max(), b.max())) or 1.0}
    for ax, values, name in ((axes[0], b, "before"), (axes[1], a, "after")):
        sns.heatmap(values, ax=ax, cbar_kws={"label": label}, **scale)
        ax.set_xlabel("head")
        ax.set_ylabel("layer")
        ax.set_title(f"{name} ({label})")
    plot_contribution(
        torch.as_tensor(a - b, dtype=torch.float32),
        ax=axes[2],
        title="after - before",
        signed=True,
        label=f"{label} after - before",
    )
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
