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
from .lens_model import LensModel
from .probed_forward import probed_forward
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
    """Per-row entropy and variance for a block of query rows, from a few sums over each row.

    With ``s`` a row's scores shifted by their maximum, ``p = softmax(s)`` over the ``T`` visible
    keys, ``L = log sum exp(s)`` and, over the image keys ``I``, ``m = sum_I p``::

        H = L - sum p s                  H_I = L + log m - (sum_I p s) / m
        var = (sum p^2 - 1/T) / T        var_I = (sum_I p^2 / m^2 - 1/T_I) / T_I

    so each row costs one softmax and three products with the ``[K, 2]`` (all, image) indicator.

    Args:
        query: [B, H, R, D]; key: [B, KV, K, D]; attention_mask: bool [B, 1, R, K] (True: attend),
            additive float [B, 1, R, K], or None (causal, the last R of K positions).
        key_is_image: [B, K] 1.0 on image keys.

    Returns:
        each of :data:`FIELDS`: float32 [B, R, H] (image fields NaN where a row sees no image key).
    """
    batch, n_heads, n_rows, dim = query.shape
    n_kv, n_key = key.shape[1], key.shape[2]
    grouped = query.float().reshape(batch, n_kv, n_heads // n_kv * n_rows, dim)  # head h = kv * G + g
    scores = torch.matmul(grouped, key.float().transpose(-1, -2)).reshape(batch, n_heads, n_rows, n_key)
    scores.mul_(dim**-0.5 if scaling is None else scaling)
    if attention_mask is None:
        positions = torch.arange(n_rows, device=query.device) + (n_key - n_rows)
        visible = (torch.arange(n_key, device=query.device)[None, :] <= positions[:, None])[None, None]
    elif attention_mask.dtype == torch.bool:
        visible = attention_mask
    else:
        visible = attention_mask > torch.finfo(attention_mask.dtype).min / 2
        scores.add_(attention_mask.float())
    # a finite fill: exp underflows to exactly 0, and p * s stays 0 (never 0 * -inf)
    scores.masked_fill_(~visible, -1e30)
    scores.sub_(scores.amax(-1, keepdim=True))  # s, shifted
    probs = scores.exp()
    total = probs.sum(-1, keepdim=True)
    probs.div_(total)  # p [B, H, R, K]
    lse = total[..., 0].log()  # [B, H, R]
    image = key_is_image.to(query.device, torch.float32)
    columns = torch.stack([torch.ones_like(image), image], dim=-1)[:, None]  # [B, 1, K, 2]
    p_s = torch.matmul(probs * scores, columns)  # [B, H, R, 2]: sum p s over all, image keys
    p_sq = torch.matmul(probs * probs, columns)  # sum p^2
    mass = torch.matmul(probs, image[:, None, :, None])[..., 0]  # [B, H, R]: m
    counts = torch.matmul(visible.to(torch.float32), columns)  # [B or 1, 1, R, 2]: T, T_I
    count, image_count = counts[..., 0].clamp_min(1), counts[..., 1].clamp_min(1)
    safe = mass.clamp_min(torch.finfo(torch.float32).tiny)
    fields = {
        "entropy": lse - p_s[..., 0],
        "variance": (p_sq[..., 0] - 1 / count) / count,
        "image_entropy": lse + safe.log() - p_s[..., 1] / safe,
        "image_variance": (p_sq[..., 1] / safe**2 - 1 / image_count) / image_count,
    }
    empty = {"": counts[..., 0] == 0, "image_": (counts[..., 1] == 0) | (mass <= 0)}
    return {
        name: value.masked_fill(empty["image_" if name.startswith("image_") else ""], float("nan"))
        .expand(batch, n_heads, n_rows)
        .transpose(1, 2)
        for name, value in fields.items()
    }


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

    probed_forward(model, inputs, make_probe)
    if torch.isnan(result["entropy"]).any():
        raise RuntimeError(
            "some layers were not recorded: the text decoder's attention did not run through "
            "fac_lens (was its attention implementation changed by hand?)"
        )
    return result
