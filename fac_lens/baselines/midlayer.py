"""The heads-guided middle-layer intervention of "Devils in Middle Layers of Large Vision-Language
Models" (Jiang et al., CVPR 2025).

Follows the official code, github.com/ZhangqiJiang07/middle_layers_indicating_hallucinations: the
edit is ``llama_new_forward`` in ``modify_attention.py`` (``aggregation == "mean"``), the defaults
those of the README's command and of ``chair_eval.py`` (``--guide-range 5,18 --alpha 0.5``; the
range's end is inclusive there). In those layers the PRE-softmax attention logits ``z`` of the last
query (the token being predicted from) are raised on the image keys by the mean over heads of their
absolute values::

    z'_h(j) = z_h(j) + alpha * mean_{g in G} |z_g(j)|      for image keys j, every head h

``G`` is every head (the official ``"mean"`` aggregation, the default). ``top_k`` is an extension
that is not in the official code: ``G`` is then the ``top_k`` heads with the largest image logit
mass ``sum_j |z_g(j)|`` over the image keys of that row.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from ..validation import as_int
from .attention_edit import Keys, NoWeightEdit, attention_edits
from .base import Baseline, check_range
from .layers import resolve_layers

#: the official ``--guide-range 5,18`` (inclusive) of the 32-layer LLaVA-1.5 (0-based, end
#: exclusive here), scaled to depth
PAPER_LAYERS = (5, 19)


class HeadsGuided(NoWeightEdit):
    """Adds ``alpha`` times the guide heads' mean absolute image logit to every head's pre-softmax
    logits (last query row, image keys)."""

    def __init__(self, alpha: float, top_k: int | None):
        self.alpha, self.top_k = alpha, top_k

    def scores(self, scores: torch.Tensor, keys: Keys) -> torch.Tensor:
        image = keys.image[:, None, :].to(scores.dtype)  # [B, 1, K]
        magnitude = scores[:, :, -1, :].abs() * image  # [B, H, K] |z| of the last query on image keys
        if self.top_k is None or self.top_k >= magnitude.shape[1]:
            guide = magnitude.mean(1, keepdim=True)
        else:
            top = magnitude.sum(-1).topk(self.top_k, dim=1).indices  # [B, k]
            chosen = magnitude.gather(1, top[..., None].expand(-1, -1, magnitude.shape[-1]))
            guide = chosen.mean(1, keepdim=True)
        scores = scores.clone()
        scores[:, :, -1, :] = scores[:, :, -1, :] + self.alpha * guide
        return scores


@dataclass(frozen=True)
class MidLayer(Baseline):
    """Heads-guided middle-layer attention. Defaults: the official ``alpha=0.5``, all heads as guide
    (``top_k`` is an extension, not in the official code); layers None: the official 5..18 of 32
    scaled to the model's depth."""

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
