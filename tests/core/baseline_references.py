"""Hand-written references of the baselines' equations on plain HF copies (no fac_lens code path).

Decoding references recompute every view from scratch at each step (no KV cache, no batching of
views), so they share nothing with fac_lens's batched, cached implementation.
"""

from __future__ import annotations

import contextlib
import sys

import torch

from tests.references import reset, text_layers, with_mm_types


def extended(inputs: dict, tokens: torch.Tensor) -> dict:
    """``inputs`` (batch 1, no padding) followed by generated ``tokens`` [1, t]."""
    out = dict(inputs)
    out["input_ids"] = torch.cat([inputs["input_ids"], tokens], dim=1)
    out["attention_mask"] = torch.ones_like(out["input_ids"])
    return out


def last_logits(reference, inputs: dict, tokens: torch.Tensor) -> torch.Tensor:
    """[1, V] float32 next-token logits of the prompt and ``tokens``, one full forward."""
    reset(reference)
    with torch.no_grad():
        logits = reference(**with_mm_types(reference, extended(inputs, tokens))).logits[:, -1].float()
    reset(reference)
    return logits


def contrastive_greedy(reference, views: list, steps: int, combine) -> tuple[torch.Tensor, float]:
    """Greedy decoding of ``argmax combine(*[logits of each view])`` ([1, steps] tokens) and the
    smallest gap between the best and second-best combined score seen (robustness of the check).

    A view is an inputs dict (plain forward) or ``f(tokens) -> [1, V]`` logits.
    """
    tokens = torch.zeros(1, 0, dtype=torch.long)
    gap = float("inf")
    for _ in range(steps):
        logits = [view(tokens) if callable(view) else last_logits(reference, view, tokens) for view in views]
        scores = combine(*logits)
        top = scores.topk(2, dim=-1).values[0]
        gap = min(gap, float(top[0] - top[1]))
        tokens = torch.cat([tokens, scores.argmax(-1, keepdim=True)], dim=1)
    return tokens, gap


@contextlib.contextmanager
def eager_edit(reference, edit):
    """Every text layer's eager attention of ``reference`` with ``edit`` applied by hand.

    ``edit(layer, stage, tensor, image_keys)``: stage "scores" gets [B, H, Q, K] pre-softmax scores
    (before the mask), "weights" the softmax output; ``image_keys`` [B, K] (the prompt's image
    tokens, the last K positions of the sequence so far). The replacement recomputes eager attention
    from its definition: softmax(q k^T * scaling + mask) v.
    """
    text = {id(layer.self_attn): i for i, layer in enumerate(text_layers(reference))}
    modules = {sys.modules[type(layer.self_attn).__module__] for layer in text_layers(reference)}
    originals = {mod: mod.eager_attention_forward for mod in modules}
    state = {"image": None}

    def patched(module, query, key, value, attention_mask, scaling=None, dropout=0.0, softcap=None, **kw):
        if id(module) not in text:
            return originals[sys.modules[type(module).__module__]](
                module, query, key, value, attention_mask, scaling=scaling, dropout=dropout, **kw
            )
        layer = text[id(module)]
        groups = query.shape[1] // key.shape[1]
        k = torch.repeat_interleave(key, groups, dim=1)
        v = torch.repeat_interleave(value, groups, dim=1)
        scores = query @ k.transpose(-1, -2) * scaling
        if softcap is not None:
            scores = torch.tanh(scores / softcap) * softcap
        image = state["image"][:, -scores.shape[-1] :]
        scores = edit(layer, "scores", scores, image)
        if attention_mask is not None:
            if attention_mask.dtype == torch.bool:
                scores = scores.masked_fill(~attention_mask, float("-inf"))
            else:
                scores = scores + attention_mask[..., : scores.shape[-1]]
        weights = torch.softmax(scores.float(), dim=-1).to(query.dtype)
        weights = edit(layer, "weights", weights, image)
        return (weights @ v).transpose(1, 2).contiguous(), weights

    for mod in modules:
        mod.eager_attention_forward = patched
    try:
        yield state
    finally:
        for mod, original in originals.items():
            mod.eager_attention_forward = original


def edited_view(reference, inputs: dict, edit):
    """A view for :func:`contrastive_greedy`: logits under ``eager_edit`` (full recomputation)."""

    def view(tokens: torch.Tensor) -> torch.Tensor:
        with eager_edit(reference, edit) as state:
            ids = torch.cat([inputs["input_ids"], tokens], dim=1)
            state["image"] = (ids == reference.config.image_token_id).float()
            state["image"][:, inputs["input_ids"].shape[1] :] = 0
            return last_logits(reference, inputs, tokens)

    return view


def vaf_edit(alpha, beta, layers, system):
    """ClearSight's AttnAdapter: in ``layers``, the pre-softmax scores of the query rows after the
    image are multiplied by 1 + alpha on image keys and by 1 - beta on system keys (full
    recomputation: every row after the last image token, generated ones included)."""

    def edit(layer, stage, z, image):
        if stage != "scores" or layer not in layers:
            return z
        n_keys = z.shape[-1]
        sys_keys = torch.zeros(image.shape)
        sys_keys[:, : system.shape[1]] = system
        sys_keys = sys_keys[:, -n_keys:]
        out = z.clone()
        for b in range(z.shape[0]):
            factor = [
                1 + alpha if image[b, j] > 0 else 1 - beta if sys_keys[b, j] > 0 else 1.0
                for j in range(n_keys)
            ]
            factor = torch.tensor(factor, dtype=z.dtype)
            last_image = max(j for j in range(n_keys) if image[b, j] > 0)
            for row in range(z.shape[2]):
                if (
                    row + n_keys - z.shape[2] > last_image
                ):  # the official prefill edits the rows after the image
                    out[b, :, row, :] = z[b, :, row, :] * factor
        return out

    return edit


def midlayer_edit(alpha, top_k, layers, n_prompt):
    """modify_attention.py's "mean" aggregation: rows from the last prompt token on (each one the
    last query of its pass under a KV cache), pre-softmax z_h += alpha * mean over guide heads of
    |z_g|, on image keys (top_k: the guide is the top_k heads by sum of |z| over image keys)."""

    def edit(layer, stage, z, image):
        if stage != "scores" or layer not in layers:
            return z
        out = z.clone()
        for row in range(n_prompt - 1, z.shape[2]):
            for b in range(z.shape[0]):
                img = z[b, :, row, :].abs() * image[b][None, :]  # [H, K]
                heads = list(range(z.shape[1]))
                if top_k is not None:
                    heads = sorted(heads, key=lambda h: -float(img[h].sum()))[:top_k]
                guide = sum(img[h] for h in heads) / len(heads)
                out[b, :, row, :] = z[b, :, row, :] + alpha * guide
        return out

    return edit
