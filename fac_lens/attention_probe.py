"""An HF attention function that runs SDPA and, on request, measures visual attention mass.

Registered with transformers' ``AttentionInterface`` (and its mask function with
``AttentionMaskInterface``, without which masks silently differ) under :data:`ATTENTION_NAME`.
With no probe attached to a module it is exactly ``sdpa_attention_forward``.

The visual mass of query ``i`` is ``sum_{j in image} a_ij``. It is computed without the N x N
attention matrix: SDPA with a value tensor that holds the image indicator (1 on image keys) returns
exactly that sum for every query, in O(N) memory (DESIGN.md section 6). A single query row (a
decoding step, or the "last" query set) takes its softmax over its own score vector instead: the
same sum in fewer kernel calls, with GQA groups sharing their key head without a copy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch
from torch import nn

ATTENTION_NAME = "fac_lens_sdpa"
PROBE_ATTR = "_fac_lens_probe"


class Probe(Protocol):
    """Called by the attention function of a module it is attached to.

    Returns None, or a per-head scale ([B, H] or [B, Q, H]) that multiplies this call's head
    outputs: the ``o_proj`` input, what ``hook_z`` carries (the dynamic mode's gains).
    """

    def __call__(
        self,
        module: nn.Module,
        query: torch.Tensor,
        key: torch.Tensor,
        attention_mask: torch.Tensor | None,
        scaling: float | None,
    ) -> torch.Tensor | None: ...


def fac_lens_attention(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """SDPA attention; then each probe attached to the module sees query, key and mask, and may
    scale the heads' outputs ([B, Q, H, D], before ``o_proj``)."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    out, _ = sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    for probe in getattr(module, PROBE_ATTR, ()):
        scale = probe(module, query, key, attention_mask, kwargs.get("scaling"))
        if scale is not None:
            out = scale_head_outputs(out, scale)
    return out, None


def scale_head_outputs(out: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``out`` [B, Q, H, D] with head ``h`` multiplied by ``scale[..., h]`` ([B, H] or [B, Q, H]).

    The same products as :func:`fac_lens.head_hooks.scale_heads` on the flattened ``o_proj``
    input: in float32 at least, rounded once to ``out``'s dtype.
    """
    if scale.dim() == 2:
        scale = scale[:, None]
    compute = torch.promote_types(out.dtype, torch.float32)
    if out.dtype == compute:
        return out * scale.to(out.device, compute)[..., None]
    return (out.to(compute) * scale.to(out.device, compute)[..., None]).to(out.dtype)


def ensure_registered() -> None:
    """Register the attention and mask functions (idempotent; called on load, not on import)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(ATTENTION_NAME, fac_lens_attention)
    AttentionMaskInterface.register(ATTENTION_NAME, sdpa_mask)


def visual_mass(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None,
    key_is_image: torch.Tensor,
    rows: torch.Tensor | None = None,
) -> torch.Tensor:
    """Attention mass on image keys for each query row, without materialising attention.

    Args:
        module: the HF attention module (for ``num_key_value_groups``).
        query: [B, H, Q, D] rotated queries.
        key: [B, KV, K, D] rotated keys (cache included).
        attention_mask: what the model's mask function produced: None (plain causal), bool
            [B, 1, Q, K] (True = attend) or additive float [B, 1, Q, K].
        scaling: softmax scale, or None for 1/sqrt(D).
        key_is_image: [B, K] 1.0 on image keys.
        rows: optional [R] indices of the query rows wanted; all rows when None.

    Returns:
        [B, R, H] float32: ``sum_{j in image} a_ij`` for each wanted query row ``i``.
    """
    batch, _, n_query, dim = query.shape
    n_kv_heads, n_key = key.shape[1], key.shape[2]
    # Half precision would round the mass to ~3 digits: compute the indicator pass in fp32.
    q = query.float()
    k = key.float()
    image = key_is_image.to(q.device, torch.float32)  # [B, K]
    if n_query == 1 and rows is None:  # a decoding step: no causal mask to build
        return single_query_mass(q, k, attention_mask, scaling, image)
    if attention_mask is None:
        # Mirror sdpa_attention_forward: a missing mask means causal when Q > 1, none when Q == 1.
        positions = torch.arange(n_query, device=q.device) + (n_key - n_query)
        mask = (torch.arange(n_key, device=q.device)[None, :] <= positions[:, None])[None, None]
    else:
        mask = attention_mask
    if rows is not None:
        rows = rows.to(q.device)
        q = q[:, :, rows]
        mask = mask[:, :, rows] if mask.shape[2] == n_query else mask
    if mask.dtype != torch.bool:
        mask = mask.float()
    if q.shape[2] == 1:  # one query row ("last"): its scores cost less than an SDPA call
        return single_query_mass(q, k, mask, scaling, image)
    indicator = image[:, None, :, None].expand(batch, n_kv_heads, n_key, dim)
    groups = q.shape[1] // n_kv_heads
    if groups > 1:
        k = k.repeat_interleave(groups, dim=1)
        indicator = indicator.repeat_interleave(groups, dim=1)
    out = torch.nn.functional.scaled_dot_product_attention(
        q, k, indicator, attn_mask=mask, scale=scaling
    )  # [B, H, R, D]; every column equals the mass
    return out[..., 0].transpose(1, 2)  # [B, R, H]


def single_query_mass(
    q: torch.Tensor,
    k: torch.Tensor,
    mask: torch.Tensor | None,
    scaling: float | None,
    image: torch.Tensor,
) -> torch.Tensor:
    """:func:`visual_mass` of one query row from its scores: ``softmax(q k^T s + mask) . image``.

    For one row the scores are a vector per head, cheaper than SDPA's value pass over a
    ``D``-wide indicator; GQA groups share their key head without copying it.

    Args:
        q: [B, H, 1, D] float32; k: [B, KV, K, D] float32; mask: None (every key), bool or additive
            [B, 1, 1, K]; image: [B, K] float32 indicator.

    Returns:
        [B, 1, H] float32.
    """
    batch, n_heads, _, dim = q.shape
    n_kv_heads, n_key = k.shape[1], k.shape[2]
    grouped = q.reshape(batch, n_kv_heads, n_heads // n_kv_heads, dim)  # head h = kv * G + g
    scores = torch.matmul(grouped, k.transpose(-1, -2))  # [B, KV, G, K]
    scores.mul_(dim**-0.5 if scaling is None else scaling)
    if mask is not None:
        row = mask.reshape(mask.shape[0], 1, 1, n_key)  # [B or 1, 1, 1, K]
        scores = scores.masked_fill_(~row, float("-inf")) if row.dtype == torch.bool else scores.add_(row)
    probs = torch.softmax(scores, dim=-1).reshape(batch, n_heads, n_key)
    return torch.bmm(probs, image[:, :, None]).reshape(batch, 1, n_heads)  # [B, 1, H]


def mean_visual_mass(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None,
    key_is_image: torch.Tensor,
    weights: torch.Tensor,
) -> torch.Tensor:
    """Weighted mean of :func:`visual_mass` over query rows (paper eq. 4 for one layer).

    Args:
        weights: [B, Q] query weights, each row summing to 1 (0 outside the query set). Only rows
            some sample uses are computed (one row for the "last" query set).

    Returns:
        [B, H] float32.
    """
    rows = (weights > 0).any(0).nonzero().flatten()
    rows = None if len(rows) == weights.shape[1] else rows
    mass = visual_mass(module, query, key, attention_mask, scaling, key_is_image, rows)
    mass = torch.nan_to_num(mass)  # fully masked (padding) rows carry no weight
    chosen = weights if rows is None else weights[:, rows]
    return (mass * chosen[..., None].to(mass)).sum(1)


def normalized_visual_mass(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None,
    key_is_image: torch.Tensor,
    weights: torch.Tensor,
) -> torch.Tensor:
    """Weighted mean over query rows of ``mass_i / share_i``: the visual mass divided by the share
    of image keys among the keys row ``i`` sees (1: attention to the image in proportion to its
    token count). Rows that see no image key do not count (their weights are renormalised away).

    The share is itself an SDPA with the image indicator as value and a zero query (uniform
    attention over the visible keys), so this stays O(N) in memory.

    Returns:
        [B, H] float32 (NaN for a sample none of whose query rows sees an image key).
    """
    rows = (weights > 0).any(0).nonzero().flatten()
    rows = None if len(rows) == weights.shape[1] else rows
    mass = torch.nan_to_num(visual_mass(module, query, key, attention_mask, scaling, key_is_image, rows))
    share = visual_mass(module, torch.zeros_like(query), key, attention_mask, scaling, key_is_image, rows)
    share = torch.nan_to_num(share[..., :1])  # [B, R, 1]: the same for every head
    chosen = (weights if rows is None else weights[:, rows])[..., None].to(mass) * (share > 0)
    ratio = torch.where(share > 0, mass / share.clamp_min(torch.finfo(torch.float32).tiny), 0.0)
    return (ratio * chosen).sum(1) / chosen.sum(1)


class attached_probes:
    """Context manager: attach one probe per text attention module; always detached on exit.

    Several contexts may be active at once (ratios recorded inside a dynamic rescale); each
    removes only its own probes.

    Args:
        modules: the text decoder's attention modules, in layer order.
        make_probe: ``make_probe(layer_index) -> Probe``.
    """

    def __init__(self, modules: list[nn.Module], make_probe: Callable[[int], Probe]):
        self.modules = modules
        self.make_probe = make_probe
        self._attached: list[tuple[nn.Module, Probe]] = []

    def __enter__(self):
        try:
            for layer, module in enumerate(self.modules):
                probe = self.make_probe(layer)
                setattr(module, PROBE_ATTR, (*getattr(module, PROBE_ATTR, ()), probe))
                self._attached.append((module, probe))
        except BaseException:
            self._detach()
            raise
        return self

    def _detach(self) -> None:
        for module, probe in self._attached:
            remaining = tuple(p for p in getattr(module, PROBE_ATTR, ()) if p is not probe)
            if remaining:
                setattr(module, PROBE_ATTR, remaining)
            elif PROBE_ATTR in module.__dict__:
                delattr(module, PROBE_ATTR)
        self._attached.clear()

    def __exit__(self, *exc) -> None:
        self._detach()
