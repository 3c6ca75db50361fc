"""A tiny random checkpoint on disk (weights, tokenizer, image processor) that loads like a download."""

from __future__ import annotations

from .llava import tiny_llava
from .qwen import tiny_qwen2_5_vl
from .tokenizers import tiny_tokenizer


def save_tiny_checkpoint(path, kind: str = "qwen2_5_vl", seed: int = 0) -> None:
    """Write a tiny random ``kind`` (``"qwen2_5_vl"`` or ``"llava"``) checkpoint to a directory.

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
