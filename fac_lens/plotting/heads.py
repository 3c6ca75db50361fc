"""Head maps (S_v per layer and head, classes outlined) and the layer-wise visual ratio."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ..ratios import HeadRatios
from ..selection import HeadSelection
from .canvas import current_axes
from .style import PALETTE

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def _outline(ax: Axes, mask: torch.Tensor, color: str, label: str) -> None:
    """A rectangle around every head of ``mask`` (bool [n_layers, n_heads]); the first one labelled."""
    from matplotlib.patches import Rectangle

    first = True
    for layer, head in mask.nonzero().tolist():
        ax.add_patch(
            Rectangle(
                (head, layer), 1, 1, fill=False, edgecolor=color, linewidth=2, label=label if first else None
            )
        )
        first = False


def outline_classes(ax: Axes, perception: torch.Tensor, reasoning: torch.Tensor, other: bool = False) -> Axes:
    """Outline perception and reasoning heads (bool [n_layers, n_heads]) on a head map in the palette
    colours, with a legend of the counts; ``other`` adds the heads of neither class to the legend
    (and shows it even when both classes are empty)."""
    from matplotlib.patches import Patch

    n_p, n_r = int(perception.sum()), int(reasoning.sum())
    _outline(ax, perception, PALETTE["perception"], f"perception ({n_p})")
    _outline(ax, reasoning, PALETTE["reasoning"], f"reasoning ({n_r})")
    legend = {"loc": "upper right", "fontsize": "small", "framealpha": 0.8}
    if other:
        n_other = int((~(perception | reasoning)).sum())
        handles = [
            Patch(fill=False, edgecolor=PALETTE["perception"], linewidth=2, label=f"perception ({n_p})"),
            Patch(fill=False, edgecolor=PALETTE["reasoning"], linewidth=2, label=f"reasoning ({n_r})"),
            Patch(fill=False, edgecolor="none", label=f"other ({n_other})"),
        ]
        ax.legend(handles=handles, **legend)
    elif n_p or n_r:
        ax.legend(**legend)
    return ax


def plot_head_map(
    ratios: HeadRatios | torch.Tensor,
    selection: HeadSelection | None = None,
    ax: Axes | None = None,
    annotate: bool | None = None,
    cmap: str = "mako",
) -> Axes:
    """Layer x head heat map of S_v; identified heads outlined (see :data:`PALETTE`).

    Args:
        ratios: :class:`HeadRatios` (sample mean) or a [n_layers, n_heads] tensor.
        selection: optional :class:`HeadSelection` to outline.
        ax: Axes to draw on (default: the current Axes).
        annotate: write the values in the cells (default: when the map is small).
    """
    import seaborn as sns

    visual = ratios.visual if isinstance(ratios, HeadRatios) else torch.as_tensor(ratios)
    ax = current_axes(ax)
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
        outline_classes(ax, selection.perception, selection.reasoning)
    ax.set_xlabel("head")
    ax.set_ylabel("layer")
    ax.set_title("visual attention ratio per head")
    return ax


def plot_layer_trajectory(
    ratios: HeadRatios, l_perc: int | None = None, l_reas: int | None = None, ax: Axes | None = None
) -> Axes:
    """Layer-wise visual ratio (head mean) with its spread over samples and the two boundaries."""
    mean, std = ratios.layer_trajectory()  # [n_layers] each
    ax = current_axes(ax)
    layers = torch.arange(len(mean)).numpy()
    ax.plot(layers, mean.numpy(), marker="o", label="mean over heads")
    ax.fill_between(
        layers, (mean - std).numpy(), (mean + std).numpy(), alpha=0.25, label="spread over samples"
    )
    if l_perc is not None:
        ax.axvline(l_perc, color=PALETTE["perception"], linestyle="--", label=f"$l_{{perc}}$ = {l_perc}")
    if l_reas is not None:
        ax.axvline(l_reas, color=PALETTE["reasoning"], linestyle=":", label=f"$l_{{reas}}$ = {l_reas}")
    ax.set_xlabel("layer")
    ax.set_ylabel("visual ratio $S_v$")
    ax.set_title(f"layer-wise visual ratio ({ratios.n_samples} sample(s), query {ratios.query})")
    ax.legend(fontsize="small")
    return ax
