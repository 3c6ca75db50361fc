"""A Qwen2.5-VL processor that needs no torchvision.

transformers' ``Qwen2_5_VLProcessor`` insists on a video processor, which needs torchvision; on
machines where torchvision cannot import, :class:`QwenVLProcessor` produces the same
``input_ids`` / ``pixel_values`` / ``image_grid_thw`` layout from the checkpoint's own tokenizer
and (PIL) image processor.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from transformers import BatchFeature


class QwenVLProcessor:
    """Tokenizer + image processor; expands each image placeholder to its merged-patch count.

    Args:
        tokenizer: the checkpoint's tokenizer.
        image_processor: a Qwen2-VL image processor (the PIL one needs no torchvision).
        chat_template: optional Jinja chat template (used by ``apply_chat_template``).
    """

    image_token = "<|image_pad|>"
    vision_start = "<|vision_start|>"
    vision_end = "<|vision_end|>"

    def __init__(self, tokenizer: Any, image_processor: Any, chat_template: str | None = None):
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.chat_template = chat_template or getattr(tokenizer, "chat_template", None)

    @classmethod
    def from_pretrained(cls, path: str, **kwargs) -> QwenVLProcessor:
        """Load tokenizer and image processor from a local checkpoint directory (no network)."""
        from transformers import AutoImageProcessor, AutoTokenizer

        kwargs.setdefault("local_files_only", True)
        tokenizer = AutoTokenizer.from_pretrained(path, **kwargs)
        image_processor = AutoImageProcessor.from_pretrained(path, **kwargs)
        return cls(tokenizer, image_processor)

    def save_pretrained(self, path: str) -> None:
        """Write tokenizer and image processor files to ``path``."""
        self.tokenizer.save_pretrained(path)
        self.image_processor.save_pretrained(path)

    def apply_chat_template(self, messages: list[dict], **kwargs) -> str:
        """Render ``messages`` with the tokenizer's chat template (images as placeholders)."""
        return self.tokenizer.apply_chat_template(
            messages, chat_template=self.chat_template, tokenize=False, **kwargs
        )

    def __call__(
        self,
        images: Any = None,
        text: str | Sequence[str] = "",
        return_tensors: str = "pt",
        padding: bool = True,
        **kwargs,
    ) -> BatchFeature:
        """Build model inputs; each ``<|image_pad|>`` becomes ``t*h*w / merge**2`` copies."""
        texts = [text] if isinstance(text, str) else list(text)
        data: dict[str, Any] = {}
        if images is not None:
            image_inputs = self.image_processor(images=images, return_tensors="pt")
            data.update(image_inputs)
            merge = self.image_processor.merge_size**2
            counts = iter((image_inputs["image_grid_thw"].prod(-1) // merge).tolist())
            expanded = []
            for item in texts:
                pieces = item.split(self.image_token)
                out = pieces[0]
                for piece in pieces[1:]:
                    out += "<|placeholder|>" * next(counts) + piece
                expanded.append(out.replace("<|placeholder|>", self.image_token))
            texts = expanded
        encoded = self.tokenizer(texts, return_tensors=return_tensors, padding=padding, **kwargs)
        data.update(encoded)
        return BatchFeature(data=data, tensor_type=return_tensors)

    def batch_decode(self, ids: torch.Tensor, **kwargs) -> list[str]:
        return self.tokenizer.batch_decode(ids, **kwargs)

    def decode(self, ids: torch.Tensor, **kwargs) -> str:
        return self.tokenizer.decode(ids, **kwargs)
