"""Where a plot draws: the given Axes or the current one; panels on the given or a new Figure."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def current_axes(ax: Axes | None, style: str | None = None) -> Axes:
    """``ax``, else the current Axes (``plt.gca()``; made in seaborn style ``style`` if there is none)."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    if style is None:
        return plt.gca()
    import seaborn as sns

    with sns.axes_style(style):
        return plt.gca()


def panel_axes(
    fig: Figure | None, n: int, width: float, height: float, style: str = "whitegrid"
) -> tuple[Figure, list[Axes]]:
    """``n`` side-by-side Axes on ``fig`` (an empty Figure), else on a new ``n * width x height`` figure."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    with sns.axes_style(style):
        fig = plt.figure(figsize=(width * n, height)) if fig is None else fig
        axes = fig.subplots(1, n, squeeze=False)
    return fig, list(axes[0])
