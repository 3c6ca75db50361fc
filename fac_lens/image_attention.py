"""Where each head looks: one query position's attention over every key, laid out on each image's grid.

    att = fl.image_attention(model, inputs, position=-1)    # one prompt (batch of 1)
    att.maps[0]                     # float32 [n_layers, n_heads, rows, cols]: the first image's grid
    att.plot(layer=5, head=3, image=pil_image)              # overlaid on the image; Axes out

Only the wanted query rows are computed (their scores against every key: O(N) memory per layer,
never the N x N pattern), inside fac_lens's own attention function, so it composes with
``fl.rescale`` (the attention of the rescaled model) and sees exactly the model's queries, keys and
masks (mRoPE, sliding windows, bidirectional image blocks, multi-head latent attention). For a
generated token, pass the prompt with the trace appended and that token's position.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .architectures.image_grids import ImageLayout
from .errors import FacLensError
from .lens_model import LensModel
from .probed_forward import probed_forward
from .validation import as_ints, is_int_like


@dataclass(frozen=True, eq=False)
class ImageAttention:
    """One query position's attention, per head, over the keys and on each image's patch grid.

    Attributes:
        attention: float32 [n_layers, n_heads, N]: the softmax row of ``position`` over all N keys.
        position: the query position (non-negative index into ``input_ids``).
        key_is_image: bool [N]: image-token keys.
        layouts: one :class:`ImageLayout` per image, in prompt order.
        image_starts: each image's first token position.
        tokens: the N tokens as strings when a tokenizer was at hand, else None.
    """

    attention: torch.Tensor
    position: int
    key_is_image: torch.Tensor
    layouts: tuple[ImageLayout, ...]
    image_starts: tuple[int, ...]
    tokens: tuple[str, ...] | None = None

    @property
    def n_layers(self) -> int:
        return self.attention.shape[0]

    @property
    def n_heads(self) -> int:
        return self.attention.shape[1]

    @property
    def maps(self) -> list[torch.Tensor]:
        """One float32 [n_layers, n_heads, rows, cols] per image: attention on each patch token."""
        return [self.view(i) for i in range(len(self.layouts))]

    def view(self, image: int = 0, name: str | None = None) -> torch.Tensor:
        """[n_layers, n_heads, rows, cols] on one view of an image (default its main grid; anyres
        images also have ``"base"``)."""
        if not 0 <= image < len(self.layouts):
            raise FacLensError(f"image {image} does not exist: the prompt has {len(self.layouts)} image(s)")
        layout = self.layouts[image]
        offsets = layout.grid if name is None else layout.views.get(name)
        if offsets is None:
            raise FacLensError(f"image {image} has no view {name!r}; it has {sorted(layout.views)}")
        return self.attention[:, :, self.image_starts[image] + offsets]

    @property
    def visual(self) -> torch.Tensor:
        """[n_layers, n_heads]: mass on image keys (S_v of this single query position)."""
        return self.attention[:, :, self.key_is_image].sum(-1)

    def text(self, layer: int, head: int) -> torch.Tensor:
        """[N] one head's attention with image keys set to 0 (what it pays the text tokens)."""
        row = self.attention[layer, head].clone()
        row[self.key_is_image] = 0.0
        return row

    def plot(self, layer: int, head: int, image: Any = None, ax: Any = None, index: int = 0, alpha=0.6):
        """One head's attention over image ``index``'s patch grid, overlaid on ``image`` (PIL or
        array) when given; the colour scale is that head's own (0 to its largest cell).

        Args:
            ax: matplotlib Axes to draw on (default: the current Axes). Returns it.
        """
        import matplotlib.pyplot as plt
        import numpy as np

        _check_head(layer, head, self.n_layers, self.n_heads)
        ax = ax if ax is not None else plt.gca()
        grid = self.view(index)[layer, head].float().numpy()
        rows, cols = grid.shape
        extent = (0, cols, rows, 0)
        if image is not None:
            pixels = np.asarray(image)
            ax.imshow(pixels, extent=extent, interpolation="bilinear")
        shown = ax.imshow(
            grid, extent=extent, cmap="magma", alpha=alpha if image is not None else 1.0, vmin=0.0,
            vmax=max(float(grid.max()), 1e-12), interpolation="nearest",
        )  # fmt: skip
        bar = ax.figure.colorbar(shown, ax=ax, fraction=0.046, pad=0.02)
        bar.set_label("attention weight on the patch")
        ax.set_title(
            f"L{layer} H{head}: attention of token {self.position} on image {index}\n"
            f"(image mass S_v = {float(self.visual[layer, head]):.3f}, grid {rows} x {cols})",
            fontsize=9,
        )
        ax.set_xticks([])
        ax.set_yticks([])
        return ax


def _check_head(layer: Any, head: Any, n_layers: int, n_heads: int) -> None:
    if not (is_int_like(layer) and 0 <= int(layer) < n_layers):
        raise FacLensError(f"layer {layer!r} is outside [0, {n_layers - 1}]")
    if not (is_int_like(head) and 0 <= int(head) < n_heads):
        raise FacLensError(f"head {head!r} is outside [0, {n_heads - 1}]")


def image_attention(
    model: LensModel, inputs: Mapping[str, Any], position: int | Sequence[int] = -1
) -> ImageAttention | list[ImageAttention]:
    """Each head's attention from ``position`` over the image patches (and every other key).

    Args:
        model: a loaded :class:`LensModel`.
        inputs: HF kwargs of one prompt (batch of 1) with its image(s); for a generated token, the
            prompt followed by the trace.
        position: the query position (negative counts from the end; -1: the last token, whose
            output predicts the next token), or a sequence of them (one forward for all).

    Returns:
        :class:`ImageAttention` (a list of them, in order, for a sequence of positions).
    """
    if model.spec.image_layout is None:
        raise FacLensError(
            f"fac_lens does not know how {model.spec.hf_architecture} lays image tokens on a grid: "
            "add an image_layout to its ArchitectureSpec (fac_lens/architectures/image_grids.py)"
        )
    inputs = model.normalize(inputs)
    ids = inputs["input_ids"]
    if ids.shape[0] != 1:
        raise FacLensError(
            f"image_attention takes one prompt (batch of 1), got {ids.shape[0]} rows: pass "
            "{k: v[i:i+1]} for row i, or call it per sample"
        )
    single = is_int_like(position)
    positions = _positions(position, ids.shape[1])
    mask = inputs.get("attention_mask")
    if mask is not None and not bool(mask[0, positions].all()):
        raise FacLensError(f"position(s) {positions} include padding: choose a real token")
    key_is_image = ids[0] == model.image_token_id
    layouts = list(model.spec.image_layout(model.hf, inputs))
    starts = _image_starts(key_is_image, layouts)
    rows = _record_rows(model, inputs, positions)  # [P, L, H, N]
    tokens = None
    if model.tokenizer is not None:
        tokens = tuple(model.tokenizer.convert_ids_to_tokens(ids[0].tolist()))
    results = [
        ImageAttention(rows[i], p, key_is_image.cpu(), tuple(layouts), starts, tokens)
        for i, p in enumerate(positions)
    ]
    return results[0] if single else results


def _positions(position: Any, n_tokens: int) -> list[int]:
    chosen = as_ints("position", position)
    if not chosen:
        raise FacLensError("position selects nothing: give an int or a non-empty list of ints")
    out = []
    for p in chosen:
        if not -n_tokens <= p < n_tokens:
            raise FacLensError(f"position {p} is outside the sequence of {n_tokens} tokens")
        out.append(p % n_tokens)
    return out


def _image_starts(key_is_image: torch.Tensor, layouts: list[ImageLayout]) -> tuple[int, ...]:
    """First token position of each image: images take the image tokens in order of appearance."""
    where = key_is_image.nonzero().flatten().tolist()
    expected = sum(layout.n_tokens for layout in layouts)
    if len(where) != expected:
        raise FacLensError(
            f"the prompt has {len(where)} image tokens but its images' grids account for {expected}: "
            "the inputs do not come from this model's processor (image sizes or grids differ)"
        )
    starts, used = [], 0
    for layout in layouts:
        start = where[used]
        if where[used + layout.n_tokens - 1] != start + layout.n_tokens - 1:
            raise FacLensError("an image's tokens are not contiguous in input_ids")
        starts.append(start)
        used += layout.n_tokens
    return tuple(starts)


def _record_rows(model: LensModel, inputs: dict[str, torch.Tensor], positions: list[int]) -> torch.Tensor:
    """One forward through fac_lens's attention function; each layer's probe keeps its query rows.

    Returns:
        float32 [P, n_layers, n_heads, N].
    """
    n_tokens = inputs["input_ids"].shape[1]
    result = torch.full((len(positions), model.n_layers, model.n_heads, n_tokens), float("nan"))
    rows = torch.tensor(positions)

    def make_probe(layer: int):
        def probe(module, query, key, attention_mask, scaling):
            if query.shape[2] != n_tokens:
                return  # another pass (not this prompt's full forward)
            weights = attention_rows(module, query, key, attention_mask, scaling, rows.to(query.device))
            result[:, layer] = weights[0].cpu()  # [P, H, N]

        return probe

    probed_forward(model, inputs, make_probe)
    if torch.isnan(result).any():
        raise RuntimeError(
            "some layers were not recorded: the text decoder's attention did not run through fac_lens"
        )
    return result


def attention_rows(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None,
    rows: torch.Tensor,
) -> torch.Tensor:
    """Softmax attention of the chosen query rows only.

    Args:
        query: [B, H, Q, D] rotated queries; key: [B, KV, K, D] rotated keys.
        attention_mask: None (causal), bool [B, 1, Q, K] (True = attend) or additive float.
        rows: [R] query indices.

    Returns:
        float32 [B, R, H, K]: each row sums to 1 over the keys it may see.
    """
    n_query, n_key, dim = query.shape[2], key.shape[2], query.shape[3]
    q = query[:, :, rows].float()
    k = key.float()
    groups = q.shape[1] // k.shape[1]
    if groups > 1:
        k = k.repeat_interleave(groups, dim=1)
    scale = scaling if scaling is not None else dim**-0.5
    scores = q @ k.transpose(-1, -2) * scale  # [B, H, R, K]
    if attention_mask is None:
        allowed = torch.arange(n_key, device=q.device)[None, :] <= (rows + n_key - n_query)[:, None]
        scores = scores.masked_fill(~allowed[None, None], float("-inf"))
    else:
        mask = attention_mask[:, :, rows] if attention_mask.shape[2] == n_query else attention_mask
        mask = mask[..., :n_key]
        if mask.dtype == torch.bool:
            scores = scores.masked_fill(~mask, float("-inf"))
        else:
            scores = scores + mask.float()
    return scores.softmax(-1).transpose(1, 2)  # [B, R, H, K]
