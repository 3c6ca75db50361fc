"""Plots of head maps, layer trajectories and contribution maps. Each takes ``ax=`` and returns it.

matplotlib and seaborn are imported on first use, not with fac_lens.
"""

from __future__ import annotations

from typing import Any

import torch

from .contribution import ContributionMap
from .ratios import HeadRatios
from .selection import HeadSelection


def _axes(ax: Any):
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.figure(figsize=(5, 4)).add_subplot()


def _outline(ax: Any, mask: torch.Tensor, color: str, label: str) -> None:
    from matplotlib.patches import Rectangle

    first = True
    for layer, head in mask.nonzero().tolist():
        ax.add_patch(
            Rectangle(
                (head, layer), 1, 1, fill=False, edgecolor=color, linewidth=2, label=label if first else None
            )
        )
        first = False


def plot_head_map(
    ratios: HeadRatios | torch.Tensor,
    selection: HeadSelection | None = None,
    ax: Any = None,
    annotate: bool | None = None,
    cmap: str = "mako",
) -> Any:
    """Layer x head heat map of S_v; identified heads outlined (perception orange, reasoning cyan).

    Args:
        ratios: :class:`HeadRatios` (sample mean) or a [n_layers, n_heads] tensor.
        selection: optional :class:`HeadSelection` to outline.
        ax: Axes to draw on (a new figure when None).
        annotate: write the values in the cells (default: when the map is small).
    """
    import seaborn as sns

    visual = ratios.visual if isinstance(ratios, HeadRatios) else torch.as_tensor(ratios)
    ax = _axes(ax)
    annotate = visual.numel() <= 64 if annotate is None else annotate
    sns.heatmap(
        visual.numpy(),
        ax=ax,
        cmap=cmap,
        vmin=0,
        vmax=1,
        annot=annotate,
        fmt=".2f",
        cbar_kws={"label": "visual ratio $S_v$"},
    )
    if selection is not None:
        _outline(ax, selection.perception, "#ff8c00", f"perception ({selection.counts['perception']})")
        _outline(ax, selection.reasoning, "#00d5ff", f"reasoning ({selection.counts['reasoning']})")
        if selection.counts["perception"] or selection.counts["reasoning"]:
            ax.legend(loc="upper right", fontsize="small", framealpha=0.8)
    ax.set_xlabel("head")
    ax.set_ylabel("layer")
    ax.set_title("visual attention ratio per head")
    return ax


def plot_layer_trajectory(
    ratios: HeadRatios, l_perc: int | None = None, l_reas: int | None = None, ax: Any = None
) -> Any:
    """Layer-wise visual ratio (head mean) with its spread over samples and the two boundaries."""
    mean, std = ratios.layer_trajectory()
    ax = _axes(ax)
    layers = torch.arange(len(mean)).numpy()
    ax.plot(layers, mean.numpy(), marker="o", label="mean over heads")
    ax.fill_between(
        layers, (mean - std).numpy(), (mean + std).numpy(), alpha=0.25, label="spread over samples"
    )
    if l_perc is not None:
        ax.axvline(l_perc, color="#ff8c00", linestyle="--", label=f"$l_{{perc}}$ = {l_perc}")
    if l_reas is not None:
        ax.axvline(l_reas, color="#00a5c8", linestyle=":", label=f"$l_{{reas}}$ = {l_reas}")
    ax.set_xlabel("layer")
    ax.set_ylabel("visual ratio $S_v$")
    ax.set_title(f"layer-wise visual ratio ({ratios.n_samples} sample(s), query {ratios.query})")
    ax.legend(fontsize="small")
    return ax


def plot_contribution(
    contribution: ContributionMap | torch.Tensor,
    normalization: str = "layer",
    ax: Any = None,
    title: str | None = None,
    signed: bool = False,
    label: str | None = None,
) -> Any:
    """Heat map of a contribution map (normalised importance, or the signed gradients), or of
    any [n_layers, n_heads] tensor such as a before/after difference (diverging colours)."""
    import seaborn as sns

    if isinstance(contribution, ContributionMap):
        values = contribution.signed if signed else contribution.normalized(normalization)
    else:
        values = torch.as_tensor(contribution)
    ax = _axes(ax)
    if signed or bool((values < 0).any()):
        bound = float(values.abs().max()) or 1.0
        sns.heatmap(
            values.numpy(), ax=ax, cmap="vlag", vmin=-bound, vmax=bound, cbar_kws={"label": label or "dL/dg"}
        )
    else:
        sns.heatmap(
            values.numpy(),
            ax=ax,
            cmap="rocket_r",
            vmin=0,
            cbar_kws={"label": f"importance ({normalization})"},
        )
    ax.set_xlabel("head")
    ax.set_ylabel("layer")
    ax.set_title(title or "contribution map")
    return ax
