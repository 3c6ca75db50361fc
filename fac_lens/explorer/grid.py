"""The clickable head grid: one SVG cell per (layer, head), hover text, class outlines.

A pure function of tensors, drawn as SVG inside an ipywidgets ``HTML`` (no matplotlib, so a redraw
costs milliseconds at 64 x 64 heads). Cells scale to the panel's width; layer and head labels thin
out so they never overlap. A click writes ``"layer,head"`` into the page's ``.fac-pick`` text box
(a hidden ipywidgets ``Text``), which tells the kernel which head to show.
"""

from __future__ import annotations

import html

import torch

from ..plotting.style import PALETTE

WIDTH = 560  # px the grid takes at most (cells shrink for wide models, never below MIN_CELL)
MIN_CELL, MAX_CELL = 6, 26

# Written into the .fac-pick input of the same explorer (the nearest .fac-panel), then an input
# event tells ipywidgets' Text view to sync the value to the kernel.
PICK_JS = (
    "var p=this.closest('.fac-panel');var i=p&&p.querySelector('.fac-pick input');"
    "if(i){{i.value='{layer},{head}';i.dispatchEvent(new Event('input',{{bubbles:true}}));"
    "i.dispatchEvent(new Event('change',{{bubbles:true}}));}}"
)


def colours(values: torch.Tensor, low: float = 0.0, high: float = 1.0, cmap: str = "mako") -> list[list[str]]:
    """Hex colours of a [R, C] tensor on ``cmap`` between ``low`` and ``high`` (clipped), in one call."""
    import matplotlib

    span = (high - low) or 1.0
    scaled = ((values.double() - low) / span).clamp(0, 1).numpy()
    rgba = (matplotlib.colormaps[_cmap(cmap)](scaled)[..., :3] * 255).round().astype(int)
    return [["#{:02x}{:02x}{:02x}".format(*tuple(cell)) for cell in row] for row in rgba.tolist()]


def colour(value: float, low: float = 0.0, high: float = 1.0, cmap: str = "mako") -> str:
    """Hex colour of one value (see :func:`colours`)."""
    return colours(torch.tensor([[float(value)]]), low, high, cmap)[0][0]


def _cmap(name: str) -> str:
    import matplotlib

    if name in matplotlib.colormaps:
        return name
    import seaborn  # noqa: F401 - registers mako, rocket, vlag, icefire

    return name


def cell_size(n_layers: int, n_heads: int, width: int = WIDTH) -> int:
    """Pixels per cell: as large as fits ``width`` (and a panel's height for deep models)."""
    return int(max(MIN_CELL, min(MAX_CELL, width // max(n_heads, 1), 2 * width // max(n_layers, 1))))


def label_every(n: int, cell: int) -> int:
    """Label every k-th row/column so labels (about 12 px tall) never overlap."""
    k = 1
    while k * cell < 12:
        k += 1
    return k if n > 1 else 1


def head_grid_svg(
    values: torch.Tensor,
    perception: torch.Tensor | None = None,
    reasoning: torch.Tensor | None = None,
    gains: torch.Tensor | None = None,
    picked: tuple[int, int] | None = None,
    value_name: str = "S_v",
    low: float = 0.0,
    high: float = 1.0,
    cmap: str = "mako",
    clickable: bool = True,
) -> str:
    """SVG of a [n_layers, n_heads] map: layers down, heads across, one ``<rect>`` per head.

    Args:
        values: float [n_layers, n_heads] (S_v, a gain, ...), coloured on ``cmap`` from ``low`` to
            ``high``.
        perception, reasoning: bool [n_layers, n_heads], outlined in the palette's class colours.
        gains: optional float [n_layers, n_heads] shown in each cell's hover text.
        picked: (layer, head) drawn with a thick black frame.
        clickable: cells write their (layer, head) into the panel's ``.fac-pick`` box on click.

    Hover text of a cell: ``layer, head, <value_name>, class, gain``.
    """
    n_layers, n_heads = values.shape
    cell = cell_size(n_layers, n_heads)
    left, top = 34, 18
    width, height = left + n_heads * cell + 4, top + n_layers * cell + 4
    stroke = max(1.0, cell / 8)
    parts = [
        f'<svg class="fac-grid" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" style="max-width:100%;height:auto;font:10px sans-serif">'
    ]
    every_layer, every_head = label_every(n_layers, cell), label_every(n_heads, cell)
    for layer in range(0, n_layers, every_layer):
        y = top + layer * cell + cell / 2 + 3
        parts.append(f'<text x="{left - 3}" y="{y:.1f}" text-anchor="end">{layer}</text>')
    for head in range(0, n_heads, every_head):
        x = left + head * cell + cell / 2
        parts.append(f'<text x="{x:.1f}" y="{top - 5}" text-anchor="middle">{head}</text>')
    values_list = values.tolist()
    fills = colours(values, low, high, cmap)
    perc = perception.tolist() if perception is not None else None
    reas = reasoning.tolist() if reasoning is not None else None
    gain_list = gains.tolist() if gains is not None else None
    for layer in range(n_layers):
        for head in range(n_heads):
            value = values_list[layer][head]
            cls = (
                "perception"
                if perc and perc[layer][head]
                else "reasoning"
                if reas and reas[layer][head]
                else "other"
            )
            tip = f"layer {layer}, head {head}: {value_name} = {value:.3f}, class {cls}"
            if gain_list is not None:
                tip += f", gain {gain_list[layer][head]:.3f}"
            x, y = left + head * cell, top + layer * cell
            outline = ""
            if cls != "other":
                outline = f' stroke="{PALETTE[cls]}" stroke-width="{stroke:.1f}"'
            click = ""
            if clickable:
                click = (
                    f' onclick="{html.escape(PICK_JS.format(layer=layer, head=head))}" style="cursor:pointer"'
                )
            parts.append(
                f'<rect class="fac-cell fac-{cls}" data-layer="{layer}" data-head="{head}" x="{x}" '
                f'y="{y}" width="{cell}" height="{cell}" fill="{fills[layer][head]}"'
                f"{outline}{click}><title>{html.escape(tip)}</title></rect>"
            )
    if picked is not None:
        layer, head = picked
        parts.append(
            f'<rect class="fac-picked" x="{left + head * cell}" y="{top + layer * cell}" width="{cell}" '
            f'height="{cell}" fill="none" stroke="black" stroke-width="{max(2.0, cell / 5):.1f}" '
            'pointer-events="none"/>'
        )
    parts.append("</svg>")
    return "".join(parts)


def legend_html(value_name: str, low: float, high: float, cmap: str) -> str:
    """A one-line colour key of the grid and the class outlines."""
    stops = ",".join(colours(torch.linspace(low, high, 9)[None], low, high, cmap)[0])
    return (
        f"<div style='font-size:11px'>{html.escape(value_name)}: {low:g} "
        f"<span style='display:inline-block;width:90px;height:9px;background:linear-gradient(90deg,{stops})'>"
        f"</span> {high:g} &nbsp; outline: <b style='color:{PALETTE['perception']}'>perception</b> / "
        f"<b style='color:{PALETTE['reasoning']}'>reasoning</b> &nbsp; hover a head for its numbers, "
        "click it to see where it looks</div>"
    )
