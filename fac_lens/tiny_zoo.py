"""Tiny random-weight models of the other supported architectures, and image inputs for them.

Companion of :mod:`fac_lens.tiny` (Qwen2.5-VL and LLaVA live there): Qwen2-VL, Qwen3-VL, Gemma3,
Idefics3, SmolVLM, LLaVA-NeXT, LLaVA-OneVision and Kimi-K2.5, each with the structure of a real
checkpoint (vision tower, projector, the real decoder's attention: mRoPE, QK-norm, sliding windows,
bidirectional image blocks, multi-head latent attention, mixture of experts) at a size that runs in
milliseconds on a CPU. Nothing is downloaded. :func:`zoo_inputs` builds valid raw HF kwargs for
each (image grids, anyres patches, pixel masks, ...).
"""

from __future__ import annotations

import torch

from .tiny import (
    LLAVA_IMAGE,
    QWEN_IMAGE,
    QWEN_VIDEO,
    QWEN_VISION_END,
    QWEN_VISION_START,
    VOCAB,
    _build,
    _decoder,
)

BOI, EOI = 311, 312  # Gemma3 begin/end of image
QWEN_IDS = dict(
    image_token_id=QWEN_IMAGE,
    video_token_id=QWEN_VIDEO,
    vision_start_token_id=QWEN_VISION_START,
    vision_end_token_id=QWEN_VISION_END,
)


def _siglip(image_size: int, patch_size: int = 7) -> dict:
    """A two-layer SigLIP tower config without the pooling head (as in the real checkpoints)."""
    return dict(
        model_type="siglip_vision_model",
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        vision_use_head=False,
        image_size=image_size,
        patch_size=patch_size,
    )


def _mrope_section(d_head: int) -> list[int]:
    half = d_head // 2
    return [half - 2 * (half // 3), half // 3, half // 3]  # temporal, height, width


def tiny_qwen2_vl(seed=0, n_layers=3, n_heads=4, n_kv_heads=2, d_head=16, dtype=torch.float32, init=0.15):
    """A random ``Qwen2VLForConditionalGeneration`` (full-attention ViT, fc1/fc2 MLP, mRoPE decoder)."""
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration

    text = _decoder(n_layers, n_heads, n_kv_heads, d_head, None, VOCAB, init)
    text["rope_scaling"] = {"type": "mrope", "mrope_section": _mrope_section(d_head)}
    config = Qwen2VLConfig(
        vision_config=dict(
            depth=2,
            embed_dim=32,
            hidden_size=n_heads * d_head,
            num_heads=2,
            mlp_ratio=2,
            patch_size=14,
            spatial_merge_size=2,
            temporal_patch_size=2,
        ),
        text_config=text,
        **QWEN_IDS,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )
    config.architectures = ["Qwen2VLForConditionalGeneration"]
    return _build(Qwen2VLForConditionalGeneration, config, seed, dtype)


def tiny_qwen3_vl(seed=0, n_layers=3, n_heads=4, n_kv_heads=2, d_head=16, dtype=torch.float32, init=0.15):
    """A random ``Qwen3VLForConditionalGeneration`` (DeepStack ViT, QK-norm, interleaved mRoPE)."""
    from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration

    text = _decoder(n_layers, n_heads, n_kv_heads, d_head, None, VOCAB, init)
    text["head_dim"] = d_head
    text["rope_parameters"] = {
        "rope_type": "default",
        "rope_theta": 10000.0,
        "mrope_section": _mrope_section(d_head),
        "mrope_interleaved": True,
    }
    config = Qwen3VLConfig(
        vision_config=dict(
            depth=2,
            hidden_size=32,
            intermediate_size=64,
            num_heads=2,
            out_hidden_size=n_heads * d_head,
            patch_size=16,
            spatial_merge_size=2,
            temporal_patch_size=2,
            num_position_embeddings=16,
            deepstack_visual_indexes=[0],
        ),
        text_config=text,
        **QWEN_IDS,
        tie_word_embeddings=False,
    )
    config.architectures = ["Qwen3VLForConditionalGeneration"]
    return _build(Qwen3VLForConditionalGeneration, config, seed, dtype)


def tiny_gemma3(seed=0, n_layers=3, n_heads=4, n_kv_heads=2, d_head=16, dtype=torch.float32, init=0.15):
    """A random ``Gemma3ForConditionalGeneration``: SigLIP tower, pooled projector, a decoder with
    QK-norm, sandwich norms, alternating sliding-window (12 tokens) and global layers, and
    bidirectional attention inside each image block (``token_type_ids``)."""
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration

    text = _decoder(n_layers, n_heads, n_kv_heads, d_head, None, VOCAB, init)
    text.update(
        model_type="gemma3_text",
        head_dim=d_head,
        query_pre_attn_scalar=d_head,
        sliding_window=12,
        layer_types=["sliding_attention" if i % 2 == 0 else "full_attention" for i in range(n_layers)],
        tie_word_embeddings=False,  # tied, a random Gemma greedily repeats one token
    )
    config = Gemma3Config(
        vision_config=_siglip(image_size=56),
        text_config=text,
        mm_tokens_per_image=16,
        image_token_index=LLAVA_IMAGE,
        boi_token_index=BOI,
        eoi_token_index=EOI,
        pad_token_id=0,
        tie_word_embeddings=False,
    )
    config.architectures = ["Gemma3ForConditionalGeneration"]
    return _build(Gemma3ForConditionalGeneration, config, seed, dtype)


def _idefics_like(config_class, model_class, name, seed, n_layers, n_heads, n_kv_heads, d_head, dtype, init):
    text = {"model_type": "llama", **_decoder(n_layers, n_heads, n_kv_heads, d_head, None, VOCAB, init)}
    config = config_class(
        vision_config=dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=56,
            patch_size=7,
        ),
        text_config=text,
        image_token_id=LLAVA_IMAGE,
        scale_factor=2,
        pad_token_id=0,
    )
    config.architectures = [name]
    return _build(model_class, config, seed, dtype)


def tiny_idefics3(seed=0, n_layers=3, n_heads=4, n_kv_heads=2, d_head=16, dtype=torch.float32, init=0.15):
    """A random ``Idefics3ForConditionalGeneration`` (SigLIP-style tower, pixel-shuffle connector,
    Llama decoder): 16 image tokens per 56 x 56 image."""
    from transformers import Idefics3Config, Idefics3ForConditionalGeneration

    return _idefics_like(
        Idefics3Config, Idefics3ForConditionalGeneration, "Idefics3ForConditionalGeneration",
        seed, n_layers, n_heads, n_kv_heads, d_head, dtype, init,
    )  # fmt: skip


def tiny_smolvlm(seed=0, n_layers=3, n_heads=4, n_kv_heads=2, d_head=16, dtype=torch.float32, init=0.15):
    """A random ``SmolVLMForConditionalGeneration`` (the Idefics3 layout under its own class)."""
    from transformers import SmolVLMConfig, SmolVLMForConditionalGeneration

    return _idefics_like(
        SmolVLMConfig, SmolVLMForConditionalGeneration, "SmolVLMForConditionalGeneration",
        seed, n_layers, n_heads, n_kv_heads, d_head, dtype, init,
    )  # fmt: skip


PINPOINTS = [[28, 56], [56, 28], [56, 56]]


def tiny_llava_next(seed=0, n_layers=3, n_heads=4, n_kv_heads=2, d_head=16, dtype=torch.float32, init=0.15):
    """A random ``LlavaNextForConditionalGeneration`` (CLIP tower, anyres tiling, Llama decoder)."""
    from transformers import LlavaNextConfig, LlavaNextForConditionalGeneration

    config = LlavaNextConfig(
        vision_config=dict(
            model_type="clip_vision_model",
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=28,
            patch_size=7,
            projection_dim=32,
        ),
        text_config={
            "model_type": "llama",
            **_decoder(n_layers, n_heads, n_kv_heads, d_head, None, VOCAB, init),
        },
        image_token_index=LLAVA_IMAGE,
        image_grid_pinpoints=PINPOINTS,
        vision_feature_layer=-1,
        pad_token_id=0,
    )
    config.architectures = ["LlavaNextForConditionalGeneration"]
    return _build(LlavaNextForConditionalGeneration, config, seed, dtype)


def tiny_llava_onevision(
    seed=0, n_layers=3, n_heads=4, n_kv_heads=2, d_head=16, dtype=torch.float32, init=0.15
):
    """A random ``LlavaOnevisionForConditionalGeneration`` (SigLIP tower, anyres-max tiling, Qwen2
    decoder with q/k/v biases)."""
    from transformers import LlavaOnevisionConfig, LlavaOnevisionForConditionalGeneration

    config = LlavaOnevisionConfig(
        vision_config=_siglip(image_size=28),
        text_config={
            "model_type": "qwen2",
            **_decoder(n_layers, n_heads, n_kv_heads, d_head, None, VOCAB, init),
        },
        image_token_index=LLAVA_IMAGE,
        video_token_index=QWEN_VIDEO,
        image_grid_pinpoints=PINPOINTS,
        vision_feature_layer=-1,
        pad_token_id=0,
    )
    config.architectures = ["LlavaOnevisionForConditionalGeneration"]
    return _build(LlavaOnevisionForConditionalGeneration, config, seed, dtype)


def tiny_kimi_k25(seed=0, n_layers=3, n_heads=4, d_head=12, dtype=torch.float32, init=0.15):
    """A random ``Kimi_K25ForConditionalGeneration``: MoonViT tower (2-D RoPE, 2 x 2 patch merge),
    projector, and a DeepSeek-V3 decoder with multi-head latent attention (compressed Q and KV,
    decoupled interleaved RoPE; value heads of ``d_head`` = 12 against query/key heads of 24) and a
    routed mixture of experts (4 experts, 2 per token, one shared) after one dense layer."""
    from transformers import Kimi_K25Config, Kimi_K25ForConditionalGeneration

    text = _decoder(n_layers, n_heads, n_heads, 16, None, VOCAB, init)  # hidden 64, MLA: KV heads = heads
    text.update(
        model_type="deepseek_v3",
        moe_intermediate_size=32,
        n_shared_experts=1,
        n_routed_experts=4,
        num_experts_per_tok=2,
        n_group=2,
        topk_group=1,
        first_k_dense_replace=1,
        kv_lora_rank=32,
        q_lora_rank=48,
        qk_rope_head_dim=8,
        qk_nope_head_dim=16,
        v_head_dim=d_head,
        rope_interleave=True,
        tie_word_embeddings=False,
    )
    config = Kimi_K25Config(
        vision_config=dict(
            patch_size=14,
            pos_emb_height=8,
            pos_emb_width=8,
            pos_emb_time=4,
            num_attention_heads=2,
            num_hidden_layers=2,
            hidden_size=32,
            intermediate_size=64,
            merge_kernel_size=[2, 2],
        ),
        text_config=text,
        projection_hidden_size=32,
        **QWEN_IDS,
        tie_word_embeddings=False,
    )
    config.architectures = ["Kimi_K25ForConditionalGeneration"]
    return _build(Kimi_K25ForConditionalGeneration, config, seed, dtype)


BUILDERS = {
    "qwen2_vl": tiny_qwen2_vl,
    "qwen3_vl": tiny_qwen3_vl,
    "gemma3": tiny_gemma3,
    "idefics3": tiny_idefics3,
    "smolvlm": tiny_smolvlm,
    "llava_next": tiny_llava_next,
    "llava_onevision": tiny_llava_onevision,
    "kimi_k25": tiny_kimi_k25,
}


# ------------------------------------------------------------------------------------------ inputs
def _qwen_image(hf, b, padded, generator):
    patch = hf.config.vision_config.patch_size
    grid = (1, 4, 4 + 2 * b) if padded else (1, 4, 4)
    n_patches = grid[0] * grid[1] * grid[2]
    pixels = torch.randn(n_patches, 3 * 2 * patch * patch, generator=generator)
    tokens = [QWEN_VISION_START] + [QWEN_IMAGE] * (n_patches // 4) + [QWEN_VISION_END]
    return tokens, {"pixel_values": pixels, "image_grid_thw": torch.tensor([grid])}


def _kimi_image(hf, b, padded, generator):
    patch = hf.config.vision_config.patch_size
    grid = (1, 4, 4 + 2 * b) if padded else (1, 4, 4)
    n_patches = grid[0] * grid[1] * grid[2]
    pixels = torch.randn(n_patches, 3, patch, patch, generator=generator)
    tokens = [QWEN_VISION_START] + [QWEN_IMAGE] * (n_patches // 4) + [QWEN_VISION_END]
    return tokens, {"pixel_values": pixels, "image_grid_thw": torch.tensor([grid])}


def _square_image(hf, b, padded, generator):
    size = hf.config.vision_config.image_size
    return torch.randn(1, 3, size, size, generator=generator)


def _gemma3_image(hf, b, padded, generator):
    n = int(hf.config.mm_tokens_per_image)
    tokens = [BOI] + [hf.config.image_token_id] * n + [EOI]
    return tokens, {"pixel_values": _square_image(hf, b, padded, generator)}


def _idefics_image(hf, b, padded, generator):
    vision = hf.config.vision_config
    size = vision.image_size
    n = (size // vision.patch_size) ** 2 // hf.config.scale_factor**2
    pixels = torch.randn(1, 1, 3, size, size, generator=generator)
    mask = torch.ones(1, 1, size, size, dtype=torch.bool)
    return [hf.config.image_token_id] * n, {"pixel_values": pixels, "pixel_attention_mask": mask}


def _anyres_image(hf, b, padded, generator):
    from transformers.models.llava_next.modeling_llava_next import image_size_to_num_patches

    size = hf.config.vision_config.image_size
    image_size = [56, 56] if padded and b % 2 else [28, 56]
    n_patches = image_size_to_num_patches(image_size, hf.config.image_grid_pinpoints, size)
    pixels = torch.randn(1, n_patches, 3, size, size, generator=generator)
    sizes = torch.tensor([image_size])
    # the token count (base crop, unpadded tiles, row newlines) is the one the model computes
    with torch.no_grad():
        features = hf.model.get_image_features(pixel_values=pixels.to(hf.dtype), image_sizes=sizes)
    pooled = getattr(features, "pooler_output", features)
    n = sum(f.shape[0] for f in pooled)
    return [hf.config.image_token_id] * n, {"pixel_values": pixels, "image_sizes": sizes}


IMAGE_MAKERS = {
    "qwen2_vl": _qwen_image,
    "qwen3_vl": _qwen_image,
    "gemma3": _gemma3_image,
    "idefics3": _idefics_image,
    "smolvlm": _idefics_image,
    "llava_next": _anyres_image,
    "llava_onevision": _anyres_image,
    "kimi_k25": _kimi_image,
}


def _join(parts: list[dict[str, torch.Tensor]], model_type: str) -> dict[str, torch.Tensor]:
    """Batch the per-row image kwargs the way each architecture's processor does."""
    out = {}
    for key in parts[0]:
        values = [p[key] for p in parts]
        if model_type == "llava_next" or model_type == "llava_onevision":
            if key == "pixel_values":  # [B, max_patches, 3, S, S], zero padded like the processor
                most = max(v.shape[1] for v in values)
                values = [
                    torch.nn.functional.pad(v, (0, 0, 0, 0, 0, 0, 0, most - v.shape[1])) for v in values
                ]
        out[key] = torch.cat(values)
    return out


def zoo_inputs(hf, batch: int = 1, seed: int = 0, padded: bool = False) -> dict[str, torch.Tensor]:
    """Raw HF kwargs for a tiny model of this module: text, an image span, more text, per row.

    ``padded=True`` left-pads rows to different lengths and, where the architecture allows, gives
    rows different image sizes (Qwen grids, anyres tilings).
    """
    model_type = hf.config.model_type
    if model_type not in IMAGE_MAKERS:
        raise ValueError(f"no tiny inputs for model_type {model_type!r}")
    generator = torch.Generator().manual_seed(seed)
    rows, parts = [], []
    for b in range(batch):
        prefix = torch.randint(3, 250, (3 + (2 * b if padded else 0),), generator=generator).tolist()
        suffix = torch.randint(3, 250, (6,), generator=generator).tolist()
        tokens, image = IMAGE_MAKERS[model_type](hf, b, padded, generator)
        rows.append(prefix + tokens + suffix)
        parts.append(image)
    length = max(len(r) for r in rows)
    input_ids = torch.zeros(batch, length, dtype=torch.long)
    attention_mask = torch.zeros(batch, length, dtype=torch.long)
    for b, row in enumerate(rows):
        input_ids[b, length - len(row) :] = torch.tensor(row)
        attention_mask[b, length - len(row) :] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask, **_join(parts, model_type)}
