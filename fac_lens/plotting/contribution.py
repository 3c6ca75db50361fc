"""Contribution maps: one map, and the before/after comparison of Appendix H."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..contribution import ContributionMap
from ..errors import FacLensError
from .arrays import as_array
from .canvas import current_axes, panel_axes
from .heads import outline_classes
from .style import IMPORTANCE_CMAP, IMPORTANCE_LABEL, SIGNED_CMAP, SIGNED_LABEL

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def plot_contribution(
    contribution: ContributionMap | torch.Tensor,
    normalization: str = "layer",
    ax: Axes | None = None,
    title: str | None = None,
    signed: bool = False,
    label: str | None = None,
) -> Axes:
    """Heat map of a contribution map (normalised importance, or the signed gradients), or of
    any [n_layers, n_heads] tensor such as a before/after difference (diverging colours).

    ``ax``: the Axes to draw on (default: the current Axes).
    """
    import seaborn as sns

    if isinstance(contribution, ContributionMap):
        values = contribution.signed if signed else contribution.normalized(normalization)
    else:
        values = torch.as_tensor(contribution)
    ax = current_axes(ax)
    if signed or bool((values < 0).any()):
        bound = float(values.abs().max()) or 1.0
        sns.heatmap(
            values.numpy(), ax=ax, cmap=SIGNED_CMAP, vmin=-bound, vmax=bound,
            cbar_kws={"label": label or SIGNED_LABEL},
        )  # fmt: skip
    else:
        sns.heatmap(
            values.numpy(),
            ax=ax,
            cmap=IMPORTANCE_CMAP,
            vmin=0,
            cbar_kws={"label": f"importance ({normalization})"},
        )
    ax.set_xlabel("head")
    ax.set_ylabel("layer")
    ax.set_title(title or "contribution map")
    return ax


def contribution_before_after(
    before: Any,
    after: Any,
    title: str | None = None,
    absolute: bool = False,
    fig: Figure | None = None,
    after_own: Any = None,
    own_title: str = "after, on its own trace",
    selection: Any = None,
) -> Figure:
    """Appendix H: contribution maps before and after FAC (one colour scale for both) and their
    difference after - before (diverging scale), as three panels; a fourth when ``after_own`` is
    given (the rescaled model's map on its own trace, same colour scale).

    Args:
        before, after: float [n_layers, n_heads] signed dL/dg (stored kind ``contribution``; negative =
            amplifying the head lowers the loss of the target token).
        absolute: show |dL/dg| (the paper's non-negative importance) instead of the signed values.
        fig: an empty Figure to draw into (default: a new one sized for the panels).
        after_own: optional float [n_layers, n_heads], drawn last under ``own_title``.
        selection: optional :class:`~fac_lens.selection.HeadSelection` whose classes are outlined
            on every panel (palette colours, as on the head maps).

    Returns:
        The Figure.
    """
    import seaborn as sns

    b = as_array(before, 2, "[n_layers, n_heads]", "contribution_before_after before")
    a = as_array(after, 2, "[n_layers, n_heads]", "contribution_before_after after")
    maps = [b, a]
    if after_own is not None:
        maps.append(as_array(after_own, 2, "[n_layers, n_heads]", "contribution_before_after after_own"))
    if any(m.shape != b.shape for m in maps):
        raise FacLensError(
            f"the maps' shapes {[m.shape for m in maps]} differ: pass contribution maps of the same "
            "model, each [n_layers, n_heads]"
        )
    if absolute:
        maps = [np.abs(m) for m in maps]
    label = IMPORTANCE_LABEL if absolute else SIGNED_LABEL
    fig, axes = panel_axes(fig, len(maps) + 1, 5.2, 4.4, style="white")
    if any((m < 0).any() for m in maps):
        bound = float(max(np.abs(m).max() for m in maps)) or 1.0
        scale: dict[str, Any] = {"cmap": SIGNED_CMAP, "vmin": -bound, "vmax": bound}
    else:
        scale = {"cmap": IMPORTANCE_CMAP, "vmin": 0.0, "vmax": float(max(m.max() for m in maps)) or 1.0}
    panels = [(axes[0], maps[0], "before"), (axes[1], maps[1], "after")]
    if after_own is not None:
        panels.append((axes[3], maps[2], own_title))
    for ax, values, name in panels:
        sns.heatmap(values, ax=ax, cbar_kws={"label": label}, **scale)
        ax.set_xlabel("head")
        ax.set_ylabel("layer")
        ax.set_title(f"{name} ({'|dL/dg|' if absolute else 'dL/dg'})")
    plot_contribution(
        torch.as_tensor(maps[1] - maps[0], dtype=torch.float32),
        ax=axes[2],
        title="after - before",
        signed=True,
        label="change of " + ("|dL/dg|" if absolute else "dL/dg") + " (after - before)",
    )
    if selection is not None:
        for ax, *_ in panels:
            outline_classes(ax, selection.perception, selection.reasoning)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
