"""Tiny random-weight models of the supported architectures, built from configs in code.

Same structure as real checkpoints (Qwen2.5-VL: windowed ViT, patch merger, mRoPE GQA decoder;
LLaVA: CLIP tower, projector, Llama GQA decoder) at a size that runs in milliseconds on a CPU.
Used by the tests, the benchmarks and the demo; nothing is downloaded.
"""

from __future__ import annotations

import torch

VOCAB = 320
QWEN_IMAGE, QWEN_VIDEO, QWEN_VISION_START, QWEN_VISION_END = 300, 301, 302, 303
LLAVA_IMAGE = 310


def _decoder(n_layers, n_heads, n_kv_heads, d_head, intermediate, vocab, init) -> dict:
    """Text-decoder config fields shared by both architectures."""
    hidden = n_heads * d_head
    return dict(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=intermediate or 2 * hidden,
        num_hidden_layers=n_layers,
        num_attention_heads=n_heads,
        num_key_value_heads=n_kv_heads,
        max_position_embeddings=32768,
        initializer_range=init,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )


def _build(model_class, config, seed: int, dtype: torch.dtype):
    """Instantiate with a fixed seed, leaving the global RNG as it was."""
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = model_class(config)
    finally:
        torch.random.set_rng_state(state)
    return model.to(dtype).eval()


def tiny_qwen2_5_vl(
    seed: int = 0,
    n_layers: int = 4,
    n_heads: int = 4,
    n_kv_heads: int = 2,
    d_head: int = 16,
    dtype: torch.dtype = torch.float32,
    intermediate: int | None = None,
    vocab: int = VOCAB,
    init: float = 0.15,
    vision_depth: int = 2,
    vision_hidden: int = 32,
    token_ids: dict[str, int] | None = None,
):
    """A random ``Qwen2_5_VLForConditionalGeneration`` (eval mode).

    ``token_ids`` may override ``image_token_id``, ``video_token_id``, ``vision_start_token_id``,
    ``vision_end_token_id``, ``bos_token_id``, ``eos_token_id``, ``pad_token_id``.

    The default ``init`` (weight std 0.15) gives peaked attention, so heads differ as in trained
    models; the benchmarks pass 0.02 (HF's default) with 7B-like sizes.
    """
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    half = d_head // 2
    section = [half - 2 * (half // 3), half // 3, half // 3]  # mRoPE: temporal, height, width
    text = _decoder(n_layers, n_heads, n_kv_heads, d_head, intermediate, vocab, init)
    text["rope_scaling"] = {"type": "mrope", "mrope_section": section}
    ids = dict(
        image_token_id=QWEN_IMAGE,
        video_token_id=QWEN_VIDEO,
        vision_start_token_id=QWEN_VISION_START,
        vision_end_token_id=QWEN_VISION_END,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )
    ids.update(token_ids or {})
    for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
        text[key] = ids[key]
    config = Qwen2_5_VLConfig(
        vision_config=dict(
            depth=vision_depth,
            hidden_size=vision_hidden,
            intermediate_size=2 * vision_hidden,
            num_heads=2 if vision_hidden <= 32 else 4,
            out_hidden_size=n_heads * d_head,
            patch_size=14,
            spatial_merge_size=2,
            temporal_patch_size=2,
            window_size=56,
            fullatt_block_indexes=[vision_depth - 1],
        ),
        text_config=text,
        **ids,
    )
    config.architectures = ["Qwen2_5_VLForConditionalGeneration"]
    return _build(Qwen2_5_VLForConditionalGeneration, config, seed, dtype)


def tiny_llava(
    seed: int = 0,
    n_layers: int = 3,
    n_heads: int = 4,
    n_kv_heads: int = 2,
    d_head: int = 16,
    dtype: torch.dtype = torch.float32,
    intermediate: int | None = None,
    vocab: int = VOCAB,
    init: float = 0.15,
):
    """A random ``LlavaForConditionalGeneration`` (CLIP tower, Llama decoder; eval mode)."""
    from transformers import LlavaConfig, LlavaForConditionalGeneration

    config = LlavaConfig(
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
            **_decoder(n_layers, n_heads, n_kv_heads, d_head, intermediate, vocab, init),
        },
        image_token_id=LLAVA_IMAGE,
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
        projector_hidden_act="gelu",
        pad_token_id=0,
    )
    config.architectures = ["LlavaForConditionalGeneration"]
    return _build(LlavaForConditionalGeneration, config, seed, dtype)


def tiny_inputs(hf, batch: int = 1, seed: int = 0, padded: bool = False) -> dict[str, torch.Tensor]:
    """Raw HF kwargs for a tiny model: text, an image span, more text.

    Qwen2.5-VL rows get real image grids (row ``b`` has a 4 x (4 + 2b) patch grid, so rows differ
    in image size); LLaVA rows get one 28 x 28 image (16 tokens). ``padded=True`` left-pads
    rows to different lengths. Other architectures: :func:`fac_lens.tiny_zoo.zoo_inputs`.
    """
    if hf.config.model_type not in ("qwen2_5_vl", "llava"):
        from .tiny_zoo import zoo_inputs

        return zoo_inputs(hf, batch, seed, padded)
    generator = torch.Generator().manual_seed(seed)
    rows, extra = [], {}
    is_qwen = hf.config.model_type == "qwen2_5_vl"
    grids, pixels = [], []
    for b in range(batch):
        prefix = torch.randint(3, 250, (3 + (2 * b if padded else 0),), generator=generator).tolist()
        suffix = torch.randint(3, 250, (6,), generator=generator).tolist()
        if is_qwen:
            grid = (1, 4, 4 + 2 * b) if padded else (1, 4, 4)
            n_patches = grid[0] * grid[1] * grid[2]
            grids.append(grid)
            pixels.append(torch.randn(n_patches, 3 * 2 * 14 * 14, generator=generator))
            image = [QWEN_VISION_START] + [QWEN_IMAGE] * (n_patches // 4) + [QWEN_VISION_END]
        else:
            pixels.append(torch.randn(1, 3, 28, 28, generator=generator))
            image = [LLAVA_IMAGE] * 16
        rows.append(prefix + image + suffix)
    length = max(len(r) for r in rows)
    input_ids = torch.zeros(batch, length, dtype=torch.long)
    attention_mask = torch.zeros(batch, length, dtype=torch.long)
    for b, row in enumerate(rows):
        input_ids[b, length - len(row) :] = torch.tensor(row)
        attention_mask[b, length - len(row) :] = 1
    if is_qwen:
        extra = {"pixel_values": torch.cat(pixels), "image_grid_thw": torch.tensor(grids)}
    else:
        extra = {"pixel_values": torch.cat(pixels)}
    return {"input_ids": input_ids, "attention_mask": attention_mask, **extra}


WORDS = (
    "what color is the shape how many objects are there a an red green blue yellow gray purple "
    "cube sphere cylinder small large left right of to same as yes no answer think </think> <think> "
    "one two three four five zero ? . , : user assistant system"
).split()


def tiny_tokenizer(kind: str = "qwen2_5_vl"):
    """A word-level tokenizer over :data:`VOCAB` ids whose special ids match the tiny configs."""
    specials = {"<pad>": 0, "<s>": 1, "</s>": 2}
    if kind == "qwen2_5_vl":
        image = {
            "<|image_pad|>": QWEN_IMAGE,
            "<|video_pad|>": QWEN_VIDEO,
            "<|vision_start|>": QWEN_VISION_START,
            "<|vision_end|>": QWEN_VISION_END,
        }
    else:
        image = {"<image>": LLAVA_IMAGE}
    vocab = dict(specials)
    vocab["<unk>"] = 3
    for i, word in enumerate(WORDS):
        vocab[word] = 4 + i
    for i in range(4 + len(WORDS), VOCAB):
        vocab.setdefault(f"t{i}", i)
    for token, index in image.items():
        vocab = {k: v for k, v in vocab.items() if v != index}
        vocab[token] = index
    tokenizer = word_level_tokenizer(vocab, list(image), bos_token="<s>", eos_token="</s>")
    tokenizer.padding_side = "left"
    return tokenizer


def word_level_tokenizer(vocab: dict[str, int], special: list[str], **special_tokens):
    """A ``PreTrainedTokenizerFast`` on a whitespace-split ``tokenizers`` WordLevel model, built offline.

    Args:
        vocab: token -> id; must contain ``<unk>`` and ``<pad>``.
        special: extra special tokens (never split, skipped when decoding with skip_special_tokens).
        **special_tokens: e.g. ``bos_token="<s>"``, ``eos_token="</s>"``.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    model = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    model.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=model,
        unk_token="<unk>",
        pad_token="<pad>",
        additional_special_tokens=special,
        **special_tokens,
    )


def save_tiny_checkpoint(path, kind: str = "qwen2_5_vl", seed: int = 0) -> None:
    """Write a tiny random checkpoint (weights, tokenizer, image processor) to a directory.

    It loads like a real download: ``fl.load(path)`` then ``model.prepare(image, text)``.
    """
    tokenizer = tiny_tokenizer(kind)
    if kind == "qwen2_5_vl":
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

        model = tiny_qwen2_5_vl(seed=seed)
        image_processor = Qwen2VLImageProcessorPil(min_pixels=56 * 56, max_pixels=112 * 112)
        model.save_pretrained(path)
        tokenizer.save_pretrained(path)
        image_processor.save_pretrained(path)
    elif kind == "llava":
        from transformers import CLIPImageProcessor, LlavaProcessor

        model = tiny_llava(seed=seed)
        image_processor = CLIPImageProcessor(
            size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28}
        )
        processor = LlavaProcessor(
            image_processor=image_processor,
            tokenizer=tokenizer,
            patch_size=7,
            vision_feature_select_strategy="default",
            image_token="<image>",
            num_additional_image_tokens=1,
        )
        model.save_pretrained(path)
        processor.save_pretrained(path)
    else:
        raise ValueError(f"unknown kind {kind!r}; use 'qwen2_5_vl' or 'llava'")
