"""One palette for every figure, and seaborn's theme as rcParams for ``plt.rc_context`` (nothing global)."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

#: Colours of the head classes (outlines, boundaries, head counts) and of the vanilla reference.
PALETTE = MappingProxyType(
    {
        "perception": "#ff8c00",  # orange: perception heads, l_perc
        "reasoning": "#00a5c8",  # cyan: reasoning heads, l_reas
        "vanilla": "0.4",  # grey: the vanilla reference line
    }
)


#: How a signed contribution map is labelled and coloured everywhere (explorer, demo, notebooks):
#: S = dL/dg with L = -log p(target); diverging "vlag" centred on 0 (blue < 0: amplifying the head
#: raises p(target); red > 0: amplifying it lowers p(target)); importance |S| on "rocket_r" from 0.
SIGNED_LABEL = "dL/dg, L = -log p(target)\n< 0 (blue): amplifying raises p"
SIGNED_CMAP = "vlag"
IMPORTANCE_LABEL = "|dL/dg| (importance)"
IMPORTANCE_CMAP = "rocket_r"


def theme(style: str = "whitegrid") -> dict[str, Any]:
    """The rcParams ``sns.set_theme(style=style)`` would set, for ``with plt.rc_context(theme()):``.

    Notebook context, ``style``, the "deep" colour cycle and a sans-serif font; unlike ``set_theme``
    it changes nothing outside the ``with`` block.
    """
    import seaborn as sns
    from cycler import cycler

    return {
        **sns.plotting_context("notebook"),
        **sns.axes_style(style),
        "axes.prop_cycle": cycler(color=sns.color_palette("deep")),
        "font.family": ["sans-serif"],
    }
