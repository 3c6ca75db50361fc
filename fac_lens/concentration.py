"""Attention concentration per head: entropy and variance of attention rows (seed 004, B.2).

For a query row ``a_i`` over the ``T_i`` keys it may attend to, the entropy is
``H = -sum_j a_ij log a_ij`` and the variance ``sigma^2 = (1/T_i) sum_j (a_ij - 1/T_i)^2``.
The image versions use the row renormalised over the visible image keys (``a_ij / sum_{image} a``,
``T_i`` = visible image keys); rows that see no image key do not count. Rows are averaged over the
query set. Scores are formed for a block of query rows at a time, so memory grows linearly with
the sequence (O(block x N), never N x N).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from tqdm.auto import tqdm

from .ablation import as_batches
from .approx import AllClose
from .attention_probe import ATTENTION_NAME, attached_probes
from .inputs import model_errors
from .lens_model import LensModel
from .queries import Query, query_label, query_mask

FIELDS = ("entropy", "variance", "image_entropy", "image_variance")
BLOCK_ELEMENTS = 1 << 24  # scores held at once (64 MiB in float32)


@dataclass(frozen=True, eq=False)
class HeadConcentration(AllClose):
    """Concentration of every head's attention, per sample (each float32 [S, n_layers, n_heads]).

    Attributes:
        entropy, variance: over all keys a row attends to.
        image_entropy, image_variance: over the image keys, the row renormalised to sum to 1.
        query: the query set averaged over.
    """

    entropy: torch.Tensor
    variance: torch.Tensor
    image_entropy: torch.Tensor
    image_variance: torch.Tensor
    query: str = "all"

    def mean(self, name: str) -> torch.Tensor:
        """[n_layers, n_heads]: one field averaged over samples (NaN samples skipped)."""
        return getattr(self, name).nanmean(0)

    @property
    def n_samples(self) -> int:
        return self.entropy.shape[0]


def attention_concentration(
    model: LensModel,
    inputs: Mapping[str, Any] | Iterable[Mapping[str, Any]],
    query: Query = "all",
    progress: bool = True,
) -> HeadConcentration:
    """Entropy and variance of every text-decoder head's attention rows.

    Args:
        model: a loaded :class:`LensModel`.
        inputs: HF kwargs for one batch, or an iterable of them (one forward each).
        query: the query set (as in :func:`fac_lens.attention_ratios`).

    Returns:
        :class:`HeadConcentration` with one row per sample.
    """
    batches = as_batches(inputs, "attention_concentration")
    rows = [
        _record(model, batch, query)
        for batch in tqdm(batches, desc="attention concentration", disable=not progress or len(batches) < 2)
    ]
    stacked = {name: torch.cat([r[name] for r in rows]) for name in FIELDS}
    return HeadConcentration(**stacked, query=query_label(query))


def row_statistics(
    query: torch.Tensor,
    key: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None,
    key_is_image: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """Per-row entropy and variance for a block of query rows.

    Args:
        query: [B, H, R, D]; key: [B, KV, K, D]; attention_mask: bool [B, 1, R, K] (True: attend),
            additive float [B, 1, R, K], or None (causal, the last R of K positions).
        key_is_image: [B, K] 1.0 on image keys.

    Returns:
        each of :data:`FIELDS`: float32 [B, R, H] (image fields NaN where a row sees no image key).
    """
    batch, n_heads, n_rows, dim = query.shape
    n_key = key.shape[2]
    k = key.float().repeat_interleave(n_heads // key.shape[1], dim=1)
    scores = (query.float() @ k.transpose(-1, -2)) * (dim**-0.5 if scaling is None else scaling)
    if attention_mask is None:
        positions = torch.arange(n_rows, device=query.device) + (n_key - n_rows)
        visible = (torch.arange(n_key, device=query.device)[None, :] <= positions[:, None])[None, None]
    elif attention_mask.dtype == torch.bool:
        visible = attention_mask
    else:
        visible = attention_mask > torch.finfo(attention_mask.dtype).min / 2
        scores = scores + attention_mask.float()
    visible = visible.expand(batch, n_heads, n_rows, n_key)
    scores = scores.masked_fill(~visible, float("-inf"))
    probs = torch.nan_to_num(torch.softmax(scores, dim=-1))  # [B, H, R, K]
    image = visible & key_is_image.bool()[:, None, None, :]
    out = {}
    for prefix, keys, weights in (("", visible, probs), ("image_", image, probs * image)):
        mass = weights.sum(-1, keepdim=True)
        p = weights / mass.clamp_min(torch.finfo(torch.float32).tiny)
        count = keys.sum(-1, keepdim=True).float()
        entropy = -torch.where(p > 0, p * p.clamp_min(1e-45).log(), 0.0).sum(-1)
        variance = (
            torch.where(keys, (p - 1 / count.clamp_min(1)) ** 2, 0.0).sum(-1) / count.clamp_min(1)[..., 0]
        )
        empty = (count[..., 0] == 0) | (mass[..., 0] <= 0)
        out[prefix + "entropy"] = entropy.masked_fill(empty, float("nan")).transpose(1, 2)
        out[prefix + "variance"] = variance.masked_fill(empty, float("nan")).transpose(1, 2)
    return out


def _record(model: LensModel, inputs: Mapping[str, Any], query: Query) -> dict[str, torch.Tensor]:
    """One forward; each field [B, n_layers, n_heads] float32, averaged over the query rows."""
    inputs = model.normalize(inputs)
    ids = inputs["input_ids"]
    qmask = query_mask(query, ids, inputs.get("attention_mask"), model.image_token_id)  # [B, N]
    key_is_image = (ids == model.image_token_id).float()
    rows = qmask.any(0).nonzero().flatten()
    result = {
        name: torch.full((ids.shape[0], model.n_layers, model.n_heads), float("nan")) for name in FIELDS
    }

    def make_probe(layer: int):
        def probe(module, q, k, attention_mask, scaling):
            if q.shape[2] != ids.shape[1]:
                return  # a pass with other queries (not this recording)
            step = max(1, BLOCK_ELEMENTS // (q.shape[0] * q.shape[1] * k.shape[2]))
            sums = {name: torch.zeros(q.shape[0], q.shape[1], device=q.device) for name in FIELDS}
            weights = {name: torch.zeros(q.shape[0], q.shape[1], device=q.device) for name in FIELDS}
            for start in range(0, len(rows), step):
                chosen = rows[start : start + step].to(q.device)
                mask = attention_mask
                if mask is not None and mask.shape[2] == q.shape[2]:
                    mask = mask[:, :, chosen]
                elif mask is None and len(chosen) != q.shape[2]:  # causal: build it for these rows
                    positions = chosen + (k.shape[2] - q.shape[2])
                    mask = (torch.arange(k.shape[2], device=q.device)[None, :] <= positions[:, None])[
                        None, None
                    ]
                stats = row_statistics(q[:, :, chosen], k, mask, scaling, key_is_image.to(q.device))
                selected = qmask[:, chosen.cpu()].to(q.device)[..., None]  # [B, R, 1]
                for name, value in stats.items():
                    use = selected & ~value.isnan()
                    sums[name] += torch.where(use, value, 0.0).sum(1)
                    weights[name] += use.float().sum(1)
            for name in FIELDS:
                result[name][:, layer] = (sums[name] / weights[name]).cpu()

        return probe

    model.reset_state()
    try:
        with (
            torch.no_grad(),
            model_errors(),
            model.attention_implementation(ATTENTION_NAME),
            model.fast_path(),
            attached_probes(model.attention_modules, make_probe),
        ):
            model.spec.multimodal_core(model.hf)(**inputs)
    finally:
        model.reset_state()
    if torch.isnan(result["entropy"]).any():
        raise RuntimeError(
            "some layers were not recorded: the text decoder's attention did not run through "
            "fac_lens (was its attention implementation changed by hand?)"
        )
    return result
