"""Independent references: plain HF copies and hand-written formulas, no fac_lens code path.

Nothing here imports fac_lens. Each function takes an untouched HF model (``reference``).
"""

from __future__ import annotations

import contextlib
import inspect
import sys

import torch

MROPE_MODELS = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")


def with_mm_types(reference, inputs: dict) -> dict:
    """The extra kwargs the real processors return: Qwen-VL models need ``mm_token_type_ids`` for
    their real mRoPE positions, Gemma 3 ``token_type_ids`` for bidirectional image blocks."""
    out = dict(inputs)
    image = inputs["input_ids"] == reference.config.image_token_id
    if reference.config.model_type in MROPE_MODELS:
        out["mm_token_type_ids"] = image.int()
    elif reference.config.model_type == "gemma3":
        out["token_type_ids"] = image.long()
    return out


def decoder(reference):
    """The text decoder module (Idefics3/SmolVLM: ``model.text_model``)."""
    core = reference.model
    return core.language_model if hasattr(core, "language_model") else core.text_model


def text_layers(reference):
    return decoder(reference).layers


def shape_of(reference) -> tuple[int, int, int]:
    """(layers, heads, d_head) with d_head the per-head width of the o_proj input."""
    text = reference.config.text_config
    n_heads = text.num_attention_heads
    o_proj = text_layers(reference)[0].self_attn.o_proj
    return text.num_hidden_layers, n_heads, o_proj.in_features // n_heads


def reset(reference) -> None:
    """Qwen-VL models cache rope deltas between calls."""
    if hasattr(reference.model, "rope_deltas"):
        reference.model.rope_deltas = None


def reference_attentions(reference, inputs: dict) -> list[torch.Tensor]:
    """Eager attention of every text layer, [B, H, N, N] each, from output_attentions=True."""
    reset(reference)
    with torch.no_grad():
        out = reference(**with_mm_types(reference, inputs), output_attentions=True)
    reset(reference)
    return list(out.attentions)


def reference_query_mask(query, input_ids, attention_mask, image_token_id) -> torch.Tensor:
    valid = attention_mask.bool()
    if isinstance(query, torch.Tensor):
        return query & valid
    if query == "all":
        return valid
    if query == "text":
        return valid & (input_ids != image_token_id)
    # "last": left padding in these tests, so the last real token is the last column
    mask = torch.zeros_like(valid)
    for b in range(valid.shape[0]):
        mask[b, int(valid[b].nonzero().max())] = True
    return mask


def reference_ratios(reference, inputs: dict, query) -> torch.Tensor:
    """Paper eq. 4 by hand: [B, L, H] mean over the query set of the mass on image keys."""
    attentions = reference_attentions(reference, inputs)
    image = (inputs["input_ids"] == reference.config.image_token_id).double()
    qmask = reference_query_mask(
        query, inputs["input_ids"], inputs["attention_mask"], reference.config.image_token_id
    )
    batch, n_tokens = inputs["input_ids"].shape
    n_layers, n_heads, _ = shape_of(reference)
    out = torch.zeros(batch, n_layers, n_heads, dtype=torch.float64)
    for layer, attn in enumerate(attentions):
        for b in range(batch):
            rows = qmask[b].nonzero().flatten()
            for h in range(n_heads):
                total = 0.0
                for i in rows.tolist():
                    total += float((attn[b, h, i].double() * image[b]).sum())
                out[b, layer, h] = total / len(rows)
    return out


@contextlib.contextmanager
def gated(reference, gates: torch.Tensor):
    """Multiply each head's output by ``gates[l, h]`` right before o_proj (pre-hooks by hand)."""
    n_layers, n_heads, d_head = shape_of(reference)
    handles = []
    for layer, block in enumerate(text_layers(reference)):

        def pre_hook(module, args, layer=layer):
            (x,) = args
            shape = x.shape
            heads = x.view(*shape[:-1], n_heads, d_head)
            return ((heads * gates[layer].to(x.dtype)[:, None]).view(shape),)

        handles.append(block.self_attn.o_proj.register_forward_pre_hook(pre_hook))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def fold_by_hand(reference, gains: torch.Tensor) -> None:
    """Scale o_proj weight columns of head h in layer l by gains[l, h] (in place)."""
    _, _, d_head = shape_of(reference)
    with torch.no_grad():
        for layer, block in enumerate(text_layers(reference)):
            weight = block.self_attn.o_proj.weight  # [d_model, H * d_head]
            for h in range(gains.shape[1]):
                weight[:, h * d_head : (h + 1) * d_head] *= float(gains[layer, h])


def reference_logits(reference, inputs: dict) -> torch.Tensor:
    reset(reference)
    with torch.no_grad():
        logits = reference(**with_mm_types(reference, inputs)).logits
    reset(reference)
    return logits


@contextlib.contextmanager
def dynamic_reference(reference, prompt_ids: torch.Tensor, cfg: dict, query: str):
    """The paper's implementation by hand: inside eager attention, measure S_v of this pass and
    scale each identified head's output (strategy A), for every forward of ``reference``.

    Args:
        prompt_ids: [B, N0] prompt; generated keys (beyond N0) are text.
        cfg: l_perc, l_reas, tau_perc, tau_reas, g_perc, g_reas.
        query: "last", "all" or "token" (no padding in these tests).

    Yields a list that collects the smallest |S_v - tau| seen (to check decisions are robust).
    """
    image = (prompt_ids == reference.config.image_token_id).float()
    margins: list[float] = []
    text_attention = {id(layer.self_attn) for layer in text_layers(reference)}
    first_layer = text_layers(reference)[0].self_attn
    seen = [0]  # tokens in the sequence so far, counted at the first layer of each pass
    # each HF modeling module looks its eager_attention_forward up in its own globals
    modules = {sys.modules[type(layer.self_attn).__module__] for layer in text_layers(reference)}
    originals = {mod: mod.eager_attention_forward for mod in modules}

    def make(original):
        def patched(
            module, query_states, key_states, value_states, attention_mask, scaling, dropout=0.0, **kw
        ):
            out, weights = original(
                module,
                query_states,
                key_states,
                value_states,
                attention_mask,
                scaling=scaling,
                dropout=dropout,
                **kw,
            )  # out [B, Q, H, D], weights [B, H, Q, K]
            if id(module) not in text_attention:  # the vision tower
                return out, weights
            n_query, n_keys = weights.shape[-2:]
            if module is first_layer:
                seen[0] = n_query if n_query > 1 else seen[0] + n_query  # a prefill, or one decoding step
            # keys are the last n_keys positions (all of them, except in sliding-window layers)
            positions = torch.zeros(image.shape[0], max(seen[0], image.shape[1]))
            positions[:, : image.shape[1]] = image
            keys = positions[:, seen[0] - n_keys : seen[0]]
            mass = (weights.float() * keys[:, None, None, :]).sum(-1)  # [B, H, Q]
            if query == "last":
                sv = mass[..., -1:]
            elif query == "all":
                sv = mass.mean(-1, keepdim=True)
            else:
                sv = mass
            layer = module.layer_idx
            perception = (layer <= cfg["l_perc"]) & (sv >= cfg["tau_perc"])
            reasoning = (layer >= cfg["l_reas"]) & (sv <= cfg["tau_reas"])
            margins.append(
                float(torch.minimum((sv - cfg["tau_perc"]).abs(), (sv - cfg["tau_reas"]).abs()).min())
            )
            g_perc, g_reas = (
                cfg[g][layer] if isinstance(cfg[g], (list, tuple)) else cfg[g] for g in ("g_perc", "g_reas")
            )  # one gain, or one per layer
            gain = 1.0 + (g_perc - 1.0) * perception.float() + (g_reas - 1.0) * reasoning.float()
            return out * gain.permute(0, 2, 1)[..., None].to(out.dtype), weights

        return patched

    for mod, original in originals.items():
        mod.eager_attention_forward = make(original)
    try:
        yield margins
    finally:
        for mod, original in originals.items():
            mod.eager_attention_forward = original


def kv_cache(output):
    """The KV cache an HF output carries (``past_key_values`` before transformers 5.24, ``cache`` since)."""
    from transformers.cache_utils import Cache

    (cache,) = [value for value in output.values() if isinstance(value, Cache)]
    return cache


def cache_keyword(reference) -> str:
    """The forward keyword that takes the KV cache: ``cache`` since transformers 5.24."""
    return "cache" if "cache" in inspect.signature(reference.forward).parameters else "past_key_values"


def _decode(reference, inputs: dict, steps: int, choose) -> tuple[torch.Tensor, torch.Tensor]:
    """Step-by-step decoding with the KV cache, positions written by hand; ``choose(t, logits)``
    gives the [B, 1] token fed after step t. ([B, steps] tokens, [B, steps, V] float32 logits)."""
    inputs = with_mm_types(reference, inputs)
    is_qwen = reference.config.model_type in MROPE_MODELS
    reset(reference)
    tokens, logits = [], []
    with torch.no_grad():
        out = reference(**inputs, use_cache=True)
        length = inputs["input_ids"].shape[1]
        deltas = reference.model.rope_deltas if is_qwen else None
        for t in range(steps):
            logits.append(out.logits[:, -1].float())
            token = choose(t, out.logits[:, -1])  # [B, 1]
            tokens.append(token)
            if t == steps - 1:
                break
            kwargs = dict(
                input_ids=token,
                **{cache_keyword(reference): kv_cache(out)},
                use_cache=True,
                attention_mask=torch.ones(token.shape[0], length + 1, dtype=torch.long),
            )
            if is_qwen:  # text positions continue from the mRoPE offset of the prompt
                kwargs["position_ids"] = (torch.full((3, token.shape[0], 1), length) + deltas[None]).long()
            else:
                kwargs["position_ids"] = torch.full((token.shape[0], 1), length)
            out = reference(**kwargs)
            length += 1
    reset(reference)
    return torch.cat(tokens, dim=1), torch.stack(logits, dim=1)


def greedy_decode(reference, inputs: dict, steps: int) -> torch.Tensor:
    """Greedy step-by-step decoding with the KV cache. [1, steps] tokens."""
    tokens, _ = _decode(reference, inputs, steps, lambda t, logits: logits.argmax(-1, keepdim=True))
    return tokens


def forced_decode_logits(reference, inputs: dict, trace: torch.Tensor) -> torch.Tensor:
    """Step-by-step decoding that feeds the given ``trace`` [1, T] instead of its own choices;
    [T, V] float32 logits, row t predicting ``trace[0, t]``."""
    _, logits = _decode(reference, inputs, trace.shape[1], lambda t, _: trace[:, t : t + 1])
    return logits[0]


def robust_dynamic_config(reference, inputs: dict, query: str, steps: int) -> tuple[dict, torch.Tensor]:
    """Thresholds and gains that no S_v of the hand-rolled dynamic generation sits within 1e-4 of,
    and its greedy trace [1, steps] (decisions that float noise cannot flip)."""
    for tau_perc, tau_reas, g in ((0.3, 0.2, 3.0), (0.25, 0.15, 3.0), (0.35, 0.25, 2.5), (0.2, 0.1, 3.0)):
        cfg = dict(l_perc=1, l_reas=1, tau_perc=tau_perc, tau_reas=tau_reas, g_perc=g, g_reas=1 / g)
        with dynamic_reference(reference, inputs["input_ids"], cfg, query) as margins:
            tokens = greedy_decode(reference, inputs, steps)
        if min(margins) > 1e-4:
            return cfg, tokens
    raise AssertionError("no robust thresholds found")
