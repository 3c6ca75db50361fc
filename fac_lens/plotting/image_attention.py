"""Where one head looks: on the image's patch grid, and over the prompt's tokens."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..image_attention import ImageAttention
from .canvas import current_axes

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def plot_image_attention(
    attention: ImageAttention,
    layer: int,
    head: int,
    image: Any = None,
    index: int = 0,
    ax: Axes | None = None,
) -> Axes:
    """One head's attention on image ``index``'s patch grid, overlaid on ``image`` when given
    (:meth:`ImageAttention.plot`). ``ax``: the Axes to draw on (default: the current Axes)."""
    return attention.plot(layer, head, image=image, ax=current_axes(ax), index=index)


def token_strip(attention: ImageAttention, layer: int, head: int) -> tuple[list[str], list[float]]:
    """(labels, weights): the head's attention over the keys in order, each image's tokens summed
    into one ``[image k]`` entry (the image's share, drawn on the image itself)."""
    row = attention.attention[layer, head].tolist()
    tokens = attention.tokens or tuple(f"#{i}" for i in range(len(row)))
    image_of = {}
    for k, (start, layout) in enumerate(zip(attention.image_starts, attention.layouts, strict=True)):
        image_of.update({p: k for p in range(start, start + layout.n_tokens)})
    labels, weights, bar_of_image = [], [], {}
    for position in range(attention.position + 1):
        k = image_of.get(position)
        if k is None:
            labels.append(tokens[position])
            weights.append(row[position])
            continue
        if k not in bar_of_image:
            bar_of_image[k] = len(labels)
            labels.append(f"[image {k}]")
            weights.append(0.0)
        weights[bar_of_image[k]] += row[position]
    return labels, weights


def plot_token_attention(
    attention: ImageAttention, layer: int, head: int, ax: Axes | None = None, top: int = 40
) -> Axes:
    """Bars of one head's attention over the prompt's tokens (each image as one bar, in orange),
    the ``top`` largest kept in sequence order. ``ax``: the Axes (default: the current Axes)."""
    from .style import PALETTE

    labels, weights = token_strip(attention, layer, head)
    keep = sorted(sorted(range(len(weights)), key=lambda i: -weights[i])[:top])
    ax = current_axes(ax)
    colours = [PALETTE["perception"] if labels[i].startswith("[image") else "0.35" for i in keep]
    ax.bar(range(len(keep)), [weights[i] for i in keep], color=colours)
    ax.set_xticks(range(len(keep)))
    ax.set_xticklabels([labels[i] for i in keep], rotation=90, fontsize=7)
    ax.set_ylabel("attention weight")
    ax.set_ylim(0, max(1e-6, max((weights[i] for i in keep), default=0)) * 1.1)
    ax.set_title(
        f"L{layer} H{head}: attention of token {attention.position} over the prompt "
        f"(image tokens summed, orange)",
        fontsize=9,
    )
    return ax
