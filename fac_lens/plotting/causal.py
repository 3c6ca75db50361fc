"""Plots of the causal head analysis: ablation and erasure effects, concentration, patching,
per-layer gains, the config search and the S_v change point. Each takes ``ax=`` and returns it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from ..concentration import HeadConcentration
from ..config import FacConfig
from ..config_search import ChangePoint, ConfigSearch, change_point
from ..erasure import ErasureEffects
from ..patching import PatchingResult
from ..ratios import HeadRatios
from .canvas import current_axes
from .heads import plot_layer_trajectory
from .style import PALETTE

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def plot_head_values(
    values: torch.Tensor,
    ax: Axes | None = None,
    title: str = "",
    label: str = "",
    centered: bool = True,
    annotate: bool | None = None,
) -> Axes:
    """Layer x head heat map of any per-head value ([n_layers, n_heads]); ``centered``: a diverging
    map symmetric around 0 (signed effects), else a sequential one."""
    import seaborn as sns

    data = torch.as_tensor(values).detach().float().cpu().numpy()
    ax = current_axes(ax)
    annotate = data.size <= 64 if annotate is None else annotate
    finite = np.abs(data[np.isfinite(data)]) if np.isfinite(data).any() else np.zeros(1)
    bound = float(finite.max()) or 1.0
    sns.heatmap(
        data,
        ax=ax,
        cmap="vlag" if centered else "mako",
        center=0 if centered else None,
        vmin=-bound if centered else None,
        vmax=bound if centered else None,
        annot=annotate,
        fmt=".2g",
        cbar_kws={"label": label},
    )
    ax.set_xlabel("head")
    ax.set_ylabel("layer")
    ax.set_title(title)
    return ax


def plot_ablation_effect(
    before: torch.Tensor, after: torch.Tensor, ax: Axes | None = None, label: str = ""
) -> Axes:
    """Per-head change of a score ([n_layers, n_heads] each, e.g. a log-probability) when each head
    is ablated alone: ``after - before``."""
    return plot_head_values(
        torch.as_tensor(after) - torch.as_tensor(before),
        ax,
        "effect of ablating each head",
        label or "change",
    )


def plot_erasure(effects: ErasureEffects, ax: Axes | None = None, field: str = "effect_size") -> Axes:
    """Head map of the erasure effect size E_h (or ``sensitivity``, ``delta_hallucinated``, ...)."""
    names = {"effect_size": "$E_h$", "sensitivity": "$S_h$"}
    return plot_head_values(
        getattr(effects, field),
        ax,
        f"erasure ({effects.kind}, {effects.method}): {field}",
        names.get(field, field),
    )


def plot_concentration(
    concentration: HeadConcentration, ax: Axes | None = None, field: str = "entropy"
) -> Axes:
    """Head map of one concentration field averaged over samples (entropy: low = concentrated)."""
    return plot_head_values(
        concentration.mean(field),
        ax,
        f"attention {field.replace('_', ' ')} (query {concentration.query})",
        field,
        False,
    )


def plot_patching(result: PatchingResult, ax: Axes | None = None) -> Axes:
    """Head map of the fraction of the clean-vs-corrupted difference each patched head recovers."""
    return plot_head_values(result.recovered, ax, "activation patching: fraction recovered", "recovered")


def plot_layer_gains(config: FacConfig, n_layers: int, ax: Axes | None = None) -> Axes:
    """g_perc and g_reas per layer, each drawn only in its band (perception: ``<= l_perc``,
    reasoning: ``>= l_reas``)."""
    ax = current_axes(ax)
    layers = np.arange(n_layers)
    perc = np.array([config.layer_gains(layer)[0] for layer in layers], dtype=float)
    reas = np.array([config.layer_gains(layer)[1] for layer in layers], dtype=float)
    ax.bar(
        layers - 0.2,
        np.where(layers <= config.l_perc, perc, np.nan),
        0.4,
        color=PALETTE["perception"],
        label="$g_{perc}$",
    )
    ax.bar(
        layers + 0.2,
        np.where(layers >= config.l_reas, reas, np.nan),
        0.4,
        color=PALETTE["reasoning"],
        label="$g_{reas}$",
    )
    ax.axhline(1.0, color="grey", linewidth=1)
    ax.set_xlabel("layer")
    ax.set_ylabel("gain")
    ax.set_title("gains per layer")
    ax.legend(fontsize="small")
    return ax


def plot_config_search(search: ConfigSearch, ax: Axes | None = None) -> Axes:
    """Validation score of every evaluated setting in search order, the best so far, and the chosen
    setting's validation and test intervals."""
    ax = current_axes(ax)
    scores = np.array([value for _, value in search.history])
    steps = np.arange(1, len(scores) + 1)
    ax.plot(steps, scores, "o", alpha=0.5, label="evaluated")
    ax.plot(steps, np.maximum.accumulate(scores), "-", label="best so far")
    for name, interval, color in (("validation", search.validation, "C2"), ("test", search.test, "C3")):
        if interval is not None:
            ax.axhspan(interval.low, interval.high, color=color, alpha=0.15, label=f"{name} {interval}")
    ax.set_xlabel("evaluation")
    ax.set_ylabel("score")
    ax.set_title("config search")
    ax.legend(fontsize="small")
    return ax


def plot_change_point(ratios: HeadRatios, found: ChangePoint | None = None, ax: Axes | None = None) -> Axes:
    """The layer trajectory of S_v with the estimated change point and its interval shaded."""
    found = change_point(ratios) if found is None else found
    ax = plot_layer_trajectory(ratios, ax=ax)
    ax.axvspan(found.interval[0] - 0.5, found.interval[1] - 0.5, color="grey", alpha=0.15)
    ax.axvline(
        found.layer - 0.5,
        color="black",
        linestyle="-.",
        label=f"change point: layer {found.layer} [{found.interval[0]}, {found.interval[1]}]",
    )
    ax.legend(fontsize="small")
    return ax
