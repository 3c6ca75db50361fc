"""Kimi-K2.5 / Kimi-VL family: MoonViT tower + projector + DeepSeek-V3 decoder (multi-head latent
attention, mixture of experts).

transformer-lens 4.3 has no adapter for ``Kimi_K25ForConditionalGeneration``; this module is one.
fac_lens registers it with transformer-lens's own extension point
(``ArchitectureAdapterFactory.register_adapter``) only while ``fl.load`` builds the bridge
(:func:`fac_lens._tl_guard.adapter_registered`), so other users of transformer-lens in the process
see the stock registry.

Multi-head latent attention (MLA): queries go through a compressed (LoRA-style) projection, keys
and values are expanded from one shared latent per token, and part of each query/key head carries
a decoupled rotary embedding. What fac_lens needs is unchanged by that:

- the per-head output before ``o_proj`` (``blocks.{l}.attn.hook_z``): ``o_proj``'s input is the
  concatenation of ``n_heads`` value heads of ``v_head_dim`` (which differs from the query/key head
  size ``qk_nope_head_dim + qk_rope_head_dim``); fac_lens reads ``d_head`` from ``o_proj`` itself,
  so gains and gates act on value heads of the right width;
- attention patterns: HF's ``DeepseekV3Attention`` calls the configured attention function with
  per-head queries and keys ``[B, H, N, qk_head_dim]`` (keys already expanded from the latent
  cache), so the SDPA function, the O(N) visual-mass probe and eager ``hook_pattern`` all see real
  per-head attention. The adapter keeps HF's attention module native (transformer-lens's own
  ``MLAAttentionBridge`` re-implements it and would bypass the attention function), wrapping its
  projections (``q_a_proj``, ``q_b_proj``, ``kv_a_proj_with_mqa``, ``kv_b_proj``, ``o``) for hooks.
- the routed experts and the vision tower run as HF modules (no per-expert hooks).

With a real checkpoint. Kimi-K2.5 / K2.6 (``model_type`` ``kimi_k25``) is implemented natively by
transformers 5.23 (its config turns a remote ``kimi_k2`` text config into ``deepseek_v3``), so no
remote code runs: ``fl.load("/models/Kimi-K2.6", dtype="bfloat16", device="cuda")`` loads it (a
directory with ``config.json`` naming ``Kimi_K25ForConditionalGeneration``), or build the model
yourself (``AutoModelForImageTextToText.from_pretrained(path)``, device maps, quantisation) and pass
the object: ``fl.load(model, processor=AutoProcessor.from_pretrained(path))``. The Kimi image
processor needs torchvision; where it cannot be imported ``fl.load`` leaves ``processor=None`` and the
analysis calls take the processor's output (``input_ids`` with the image placeholder tokens,
``pixel_values``, ``image_grid_thw``) built elsewhere.

The original Kimi-VL (``kimi_vl`` checkpoints, ``KimiVLForConditionalGeneration`` in remote code:
MoonViT + a DeepSeek-V3 MoE decoder) is built from the same parts: ``fl.load`` converts such a folder onto these
classes without running its code (:mod:`.kimi_vl_checkpoint`, :mod:`.kimi_vl`). Other checkpoints that
only ship remote code usually call their own attention kernels rather than transformers'
attention-function registry, so fac_lens's ratio probe and dynamic mode would not see them (``hook_z``
gains and gates would still work): convert them to native classes the same way.
``fl.load`` runs no checkpoint code unless given ``trust_remote_code=True``.
"""

from __future__ import annotations

from transformer_lens.model_bridge.generalized_components import (
    AttentionBridge,
    EmbeddingBridge,
    LinearBridge,
    MLABlockBridge,
    RMSNormalizationBridge,
    RotaryEmbeddingBridge,
    UnembeddingBridge,
    VisionProjectionBridge,
)
from transformer_lens.model_bridge.generalized_components.base import GeneralizedComponent
from transformer_lens.model_bridge.supported_architectures.deepseek_v3 import DeepSeekV3ArchitectureAdapter

from .base import conditional_generation_spec
from .image_grids import merged_patch_grids


class NativeMLAAttentionBridge(AttentionBridge):
    """HF's MLA attention module run as is: ``hook_z`` (``o.hook_in``) and, under eager attention,
    ``hook_pattern`` fire; there are no per-head q/k/v projections to alias."""

    hook_aliases = {"hook_z": "o.hook_in"}
    property_aliases = {"W_O": "o.weight", "b_O": "o.bias"}
    supports_split_qkv_fork = False

    def _setup_qkv_hook_reshaping(self) -> None:
        """``hook_z`` as [B, pos, n_heads, v_head_dim]: the generic setup splits ``o_proj``'s input
        by the config's ``d_head``, which for DeepSeek configs is the rotary head size."""
        super()._setup_qkv_hook_reshaping()
        attention = self.original_component
        conversion = getattr(getattr(self, "o", None), "hook_in", None)
        conversion = getattr(conversion, "hook_conversion", None)
        if attention is None or conversion is None or not getattr(attention, "v_head_dim", None):
            return
        self.o.hook_in.hook_conversion = type(conversion)(attention.num_heads, attention.v_head_dim)


class KimiK25ArchitectureAdapter(DeepSeekV3ArchitectureAdapter):
    """transformer-lens adapter for ``Kimi_K25ForConditionalGeneration``.

    The DeepSeek-V3 family mapping moved under ``model.language_model``, its attention kept native
    (see the module docstring), plus the MoonViT tower and its projector as opaque components.
    """

    def __init__(self, cfg) -> None:
        super().__init__(cfg)
        self.cfg.is_multimodal = True
        self._extract_vision_dims(cfg)

    def _build_component_mapping(self) -> dict:
        text = "model.language_model"
        return {
            "vision_encoder": GeneralizedComponent(name="model.vision_tower"),
            "vision_projector": VisionProjectionBridge(name="model.mm_projector"),
            "embed": EmbeddingBridge(name=f"{text}.embed_tokens"),
            "rotary_emb": RotaryEmbeddingBridge(name=f"{text}.rotary_emb", config=self.cfg),
            "blocks": MLABlockBridge(
                name=f"{text}.layers",
                submodules={
                    "ln1": RMSNormalizationBridge(name="input_layernorm", config=self.cfg),
                    "ln2": RMSNormalizationBridge(name="post_attention_layernorm", config=self.cfg),
                    "attn": NativeMLAAttentionBridge(
                        name="self_attn",
                        config=self.cfg,
                        submodules={
                            "q_a_proj": LinearBridge(name="q_a_proj", optional=True),
                            "q_b_proj": LinearBridge(name="q_b_proj", optional=True),
                            "q_proj": LinearBridge(name="q_proj", optional=True),
                            "kv_a_proj_with_mqa": LinearBridge(name="kv_a_proj_with_mqa"),
                            "kv_b_proj": LinearBridge(name="kv_b_proj"),
                            "o": LinearBridge(name="o_proj"),
                        },
                        maintain_native_attention=True,
                        requires_attention_mask=True,
                    ),
                    "mlp": self._build_mlp_bridge(),
                },
            ),
            "ln_final": RMSNormalizationBridge(name=f"{text}.norm", config=self.cfg),
            "unembed": UnembeddingBridge(name="lm_head"),
        }


SPEC = conditional_generation_spec(
    "Kimi_K25ForConditionalGeneration",
    KimiK25ArchitectureAdapter,
    known_limits="MLA: a head is a value head (`d_head` = `v_head_dim`, not the query/key size); "
    "transformer-lens's MLA-internal hooks (`hook_q_latent`, `hook_kv_latent`, `hook_rot_q`) are absent "
    "(attention kept native); experts and MoonViT have no per-module hooks",
    image_layout=merged_patch_grids,
)
