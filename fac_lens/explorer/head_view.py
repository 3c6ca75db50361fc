"""What a clicked head looks at, as HTML: its attention on the image's patch grid (SVG cells over the
image) and over the prompt's tokens (each token shaded by its weight, each image summed into one).
No matplotlib, so a click costs milliseconds."""

from __future__ import annotations

import base64
import html

from ..image_attention import ImageAttention
from ..plotting.image_attention import token_strip
from ..plotting.style import PALETTE
from .grid import colours

SIZE = 240  # px of the image's longer side


def image_overlay_svg(
    attention: ImageAttention, layer: int, head: int, png: bytes | None, index: int = 0, aspect: float = 1.0
) -> str:
    """The head's weights on image ``index``'s grid (magma, 0 to the head's largest cell, 60% opaque)
    over the image (``png`` bytes; ``aspect`` = width / height), one ``<rect class="fac-patch">``
    per cell with its weight in the hover text."""
    grid = attention.view(index)[layer, head]
    rows, cols = grid.shape
    width, height = (SIZE, round(SIZE / aspect)) if aspect >= 1 else (round(SIZE * aspect), SIZE)
    fills = colours(grid, 0.0, max(float(grid.max()), 1e-12), "magma")
    parts = [
        f'<svg class="fac-overlay" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">'
    ]
    if png is not None:
        data = base64.b64encode(png).decode()
        parts.append(
            f'<image href="data:image/png;base64,{data}" x="0" y="0" width="{width}" height="{height}" '
            'preserveAspectRatio="none"/>'
        )
    cw, ch = width / cols, height / rows
    opacity = 0.6 if png is not None else 1.0
    values = grid.tolist()
    for r in range(rows):
        for c in range(cols):
            parts.append(
                f'<rect class="fac-patch" x="{c * cw:.2f}" y="{r * ch:.2f}" width="{cw:.2f}" height="{ch:.2f}" '
                f'fill="{fills[r][c]}" fill-opacity="{opacity}"><title>row {r}, col {c}: {values[r][c]:.6f}'
                "</title></rect>"
            )
    parts.append("</svg>")
    return "".join(parts)


def token_strip_html(attention: ImageAttention, layer: int, head: int) -> str:
    """The prompt's tokens up to the query, each shaded by the head's weight on it (images summed)."""
    labels, weights = token_strip(attention, layer, head)
    top = max(weights, default=0.0) or 1.0
    spans = []
    for label, weight in zip(labels, weights, strict=True):
        colour = "255,140,0" if label.startswith("[image") else "0,120,200"
        spans.append(
            f"<span class='fac-token' title='{weight:.6f}' style='background:rgba({colour},{weight / top:.3f});"
            f"padding:0 2px;margin:1px;border-radius:2px;display:inline-block'>{html.escape(label)}</span>"
        )
    return "<div class='fac-token-strip' style='line-height:1.6'>" + "".join(spans) + "</div>"


def head_view_html(
    attention: ImageAttention, layer: int, head: int, png: bytes | None, aspect: float, where: str
) -> str:
    """Both views of one head side by side, with a caption that says what the numbers are."""
    mass = float(attention.visual[layer, head])
    return (
        "<div class='fac-head-view-box' style='display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start'>"
        f"<div>{image_overlay_svg(attention, layer, head, png, 0, aspect)}<div style='font-size:11px'>"
        f"L{layer} H{head} on the image's {tuple(attention.view(0).shape[-2:])} token grid "
        f"(colour: 0 .. its largest weight)</div></div>"
        f"<div style='flex:1 1 320px;min-width:240px'><div style='font-size:12px'><b>L{layer} H{head}</b>, "
        f"{html.escape(where)}, query token {attention.position}: attention weight on each token (shade: 0 .. "
        f"the largest); <span style='color:{PALETTE['perception']}'>image</span> mass {mass:.3f}</div>"
        f"{token_strip_html(attention, layer, head)}</div></div>"
    )
