"""Assemble fac-smol: a ``LlavaForConditionalGeneration`` of the cached DINOv2 ViT-S/14 tower and
SmolLM2-135M-Instruct, joined by a LLaVA projector (``Linear(384, 576) -> GELU -> Linear(576,
576)``), plus a LLaVA processor that needs no torchvision.

A fac-smol folder (``data/models/fac-smol``) holds only what is small: ``fac_smol.json`` (the
layout below), ``projector.safetensors`` and the model card. ``fl.load`` sees ``fac_smol.json``
and calls :func:`load_fac_smol`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ...errors import FacLensError
from .build import cached_parts
from .vision_onnx import IMAGE_MEAN, IMAGE_STD

MARKER = "fac_smol.json"
PROJECTOR_FILE = "projector.safetensors"
IMAGE_TOKEN = "<image>"
LAYOUT = {
    "format": 1,
    "image_size": 112,  # 8 x 8 patches of 14 px: 64 image tokens in the language model
    "vision_feature_layer": -2,  # LLaVA's choice: the second-to-last ViT layer, before the final norm
    "vision_feature_select_strategy": "default",  # drop the CLS token
}
SYSTEM_PROMPT = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
# SmolLM2's ChatML template, with image entries in list contents.
CHAT_TEMPLATE = (
    "{% for m in messages %}{% if loop.first and m['role'] != 'system' %}"
    "{{ '<|im_start|>system\\n" + SYSTEM_PROMPT + "<|im_end|>\\n' }}{% endif %}"
    "{{ '<|im_start|>' + m['role'] + '\\n' }}"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}{{ '" + IMAGE_TOKEN + "\\n' }}{% else %}{{ c['text'] }}{% endif %}"
    "{% endfor %}{% endif %}{{ '<|im_end|>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def build_processor(cache: Path, layout: dict = LAYOUT):
    """SmolLM2's tokenizer with an ``<image>`` token, a PIL DINOv2 image processor, one template."""
    from transformers import AutoTokenizer, LlavaProcessor
    from transformers.models.bit.image_processing_pil_bit import BitImageProcessorPil

    tokenizer = AutoTokenizer.from_pretrained(cache / "language")
    tokenizer.add_special_tokens({"additional_special_tokens": [IMAGE_TOKEN]})
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    size = layout["image_size"]
    image_processor = BitImageProcessorPil(
        do_resize=True,
        size={"height": size, "width": size},
        do_center_crop=False,
        do_rescale=True,
        do_normalize=True,
        image_mean=list(IMAGE_MEAN),
        image_std=list(IMAGE_STD),
        do_convert_rgb=True,
    )
    return LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=14,
        vision_feature_select_strategy=layout["vision_feature_select_strategy"],
        chat_template=CHAT_TEMPLATE,
        image_token=IMAGE_TOKEN,
        num_additional_image_tokens=1,  # DINOv2's CLS token
    )


def assemble(cache: str | Path | None = None, layout: dict = LAYOUT, projector: dict | None = None):
    """``(LlavaForConditionalGeneration float32 eval, processor)`` from the cached parts.

    Args:
        projector: ``multi_modal_projector`` weights (keys ``linear_1.weight`` ...); None leaves
            the projector at its random initialisation (seed 0), the start of training.
    """
    from transformers import Dinov2Model, LlamaForCausalLM, LlavaConfig, LlavaForConditionalGeneration

    parts = cached_parts(cache)
    processor = build_processor(parts, layout)
    language = LlamaForCausalLM.from_pretrained(parts / "language", dtype=torch.float32)
    vision = Dinov2Model.from_pretrained(parts / "vision", dtype=torch.float32)
    tokenizer = processor.tokenizer
    text_config = language.config
    config = LlavaConfig(
        vision_config=vision.config.to_dict(),
        text_config=text_config.to_dict(),
        image_token_id=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        projector_hidden_act="gelu",
        vision_feature_layer=layout["vision_feature_layer"],
        vision_feature_select_strategy=layout["vision_feature_select_strategy"],
        image_seq_length=(layout["image_size"] // 14) ** 2,
        tie_word_embeddings=text_config.tie_word_embeddings,
    )
    config.architectures = ["LlavaForConditionalGeneration"]
    state = torch.random.get_rng_state()
    torch.manual_seed(0)
    try:
        model = LlavaForConditionalGeneration(config)
    finally:
        torch.random.set_rng_state(state)
    model.model.vision_tower.load_state_dict(vision.state_dict())
    model.model.language_model.load_state_dict(language.model.state_dict())
    model.lm_head.load_state_dict(language.lm_head.state_dict())
    _add_image_token_row(model, len(tokenizer))
    if projector is not None:
        model.model.multi_modal_projector.load_state_dict(projector)
    for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
        setattr(model.generation_config, key, getattr(language.generation_config, key, None))
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model.eval(), processor


def _add_image_token_row(model, vocab: int) -> None:
    """Grow the (tied) embeddings by the ``<image>`` row, set to the mean of the others.

    Deterministic, unlike transformers' random mean-resizing. The row is never an input (image
    positions get projected features); as an output row its logit is the mean token's.
    """
    old = model.get_input_embeddings().weight.shape[0]
    model.resize_token_embeddings(vocab, mean_resizing=False)
    with torch.no_grad():
        weight = model.get_input_embeddings().weight
        weight[old:] = weight[:old].mean(0)


def load_fac_smol(folder: str | Path, cache: str | Path | None = None) -> tuple[Any, Any]:
    """The HF model and processor of a fac-smol folder (cached parts + its projector).

    Raises:
        FacLensError: the parts are not built (names ``make smol``), or the folder is incomplete.
    """
    from safetensors.torch import load_file

    folder = Path(folder)
    try:
        layout = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError) as e:
        raise FacLensError(f"{folder / MARKER} is missing or not JSON ({e})") from e
    if layout.get("format") != LAYOUT["format"]:
        raise FacLensError(
            f"{folder / MARKER} has format {layout.get('format')}; this fac_lens reads {LAYOUT['format']}"
        )
    weights = folder / PROJECTOR_FILE
    if not weights.is_file():
        raise FacLensError(
            f"{weights} is missing: train the projector first (`make train-smol`, about an hour)"
        )
    cached_parts(cache)  # names `make smol` before anything is read
    try:
        projector = load_file(str(weights))
    except Exception as e:  # safetensors raises its own error types
        raise FacLensError(
            f"{weights} is not a readable safetensors file ({e}); retrain it (`make train-smol`)"
        ) from e
    return assemble(cache, {**LAYOUT, **layout}, projector)
