"""Keep HF's own attention module inside a transformer-lens adapter."""

from __future__ import annotations

from transformer_lens.model_bridge.generalized_components import AttentionBridge, LinearBridge


def keep_native_attention(adapter, extra: tuple[str, ...] = ("q_norm", "k_norm")) -> None:
    """Swap the adapter's text attention bridge for one that runs HF's attention module as is.

    Some transformer-lens adapters re-implement the attention in eager form. fac_lens keeps HF's
    own attention (as transformer-lens does for Qwen2.5-VL) so the attention function can be chosen
    per call: SDPA where no pattern is read, the O(N) visual-mass probe for ratios, eager for
    ``hook_pattern``. ``hook_z`` (the per-head output before ``o_proj``) fires either way.

    Args:
        adapter: an ``ArchitectureAdapter`` whose ``component_mapping["blocks"]`` has an ``attn``.
        extra: optional attention submodules (QK-norms) carried over when the adapter maps them.
    """
    blocks = adapter.component_mapping["blocks"]
    old = blocks.submodules["attn"].submodules
    kept = {key: old[key] for key in extra if key in old}
    blocks.submodules["attn"] = AttentionBridge(
        name="self_attn",
        config=adapter.cfg,
        submodules={
            "q": LinearBridge(name="q_proj"),
            "k": LinearBridge(name="k_proj"),
            "v": LinearBridge(name="v_proj"),
            "o": LinearBridge(name="o_proj"),
            **kept,
        },
        maintain_native_attention=True,
        requires_attention_mask=True,
    )
