"""The heads-guided middle-layer intervention of "Devils in Middle Layers of Large Vision-Language
Models" (Jiang et al., CVPR 2025).

In middle layers, the last query's attention weights on image keys are raised by the image
attention of a guide: the mean over all heads, or over the ``top_k`` heads with the most image
attention in that row::

    a'_h(j) = a_h(j) + alpha * mean_{g in G} a_g(j)      for image keys j, every head h
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from ..validation import as_int
from .attention_edit import Keys, NoScoreEdit, attention_edits
from .base import Baseline, check_range
from .layers import resolve_layers

#: the paper's middle layers of the 32-layer LLaVA-1.5 (0-based, end exclusive), scaled to depth
PAPER_LAYERS = (5, 18)


class HeadsGuided(NoScoreEdit):
    """Adds ``alpha`` times the guide heads' mean image attention to every head (last query row)."""

    def __init__(self, alpha: float, top_k: int | None):
        self.alpha, self.top_k = alpha, top_k

    def weights(self, weights: torch.Tensor, keys: Keys) -> torch.Tensor:
        image = keys.image[:, None, :].to(weights.dtype)  # [B, 1, K]
        last = weights[:, :, -1, :] * image  # [B, H, K] image attention of the last query
        if self.top_k is None or self.top_k >= last.shape[1]:
            guide = last.mean(1, keepdim=True)
        else:
            top = last.sum(-1).topk(self.top_k, dim=1).indices  # [B, k]
            guide = last.gather(1, top[..., None].expand(-1, -1, last.shape[-1])).mean(1, keepdim=True)
        weights = weights.clone()
        weights[:, :, -1, :] = weights[:, :, -1, :] + self.alpha * guide
        return weights


@dataclass(frozen=True)
class MidLayer(Baseline):
    """Heads-guided middle-layer attention. Defaults ``alpha=0.5``, all heads as guide; layers
    None: the paper's 5..17 of 32 scaled to the model's depth."""

    alpha: float = 0.5
    top_k: int | None = None
    start: int | None = None
    end: int | None = None
    name = "midlayer"

    def __post_init__(self) -> None:
        check_range("MidLayer alpha", self.alpha, 0.0)
        if self.top_k is not None:
            as_int("MidLayer top_k", self.top_k, minimum=1)

    def check_model(self, n_layers: int) -> None:
        resolve_layers("MidLayer", self.start, self.end, PAPER_LAYERS, n_layers)

    @contextmanager
    def applied(self, model, inputs: Mapping[str, Any] | None = None) -> Iterator[None]:
        layers = set(resolve_layers("MidLayer", self.start, self.end, PAPER_LAYERS, model.n_layers))
        edit = HeadsGuided(self.alpha, self.top_k)
        with attention_edits(model, lambda layer: edit if layer in layers else None):
            yield
