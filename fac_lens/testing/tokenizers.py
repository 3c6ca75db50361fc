"""Offline word-level tokenizers: a generic builder, and the tiny models' own (special ids match)."""

from __future__ import annotations

from .ids import BOS, EOS, LLAVA_IMAGE, PAD, QWEN_IMAGE, QWEN_VIDEO, QWEN_VISION_END, QWEN_VISION_START, VOCAB

WORDS = (
    "what color is the shape how many objects are there a an red green blue yellow gray purple "
    "cube sphere cylinder small large left right of to same as yes no answer think </think> <think> "
    "one two three four five zero ? . , : user assistant system"
).split()


def tiny_tokenizer(kind: str = "qwen2_5_vl"):
    """A word-level tokenizer over :data:`~.ids.VOCAB` ids whose special ids match the tiny configs.

    ``kind``: ``"qwen2_5_vl"`` (Qwen's image, video and vision start/end tokens) or anything else
    (LLaVA's ``<image>``). Pads on the left.
    """
    if kind == "qwen2_5_vl":
        image = {
            "<|image_pad|>": QWEN_IMAGE,
            "<|video_pad|>": QWEN_VIDEO,
            "<|vision_start|>": QWEN_VISION_START,
            "<|vision_end|>": QWEN_VISION_END,
        }
    else:
        image = {"<image>": LLAVA_IMAGE}
    vocab = {"<pad>": PAD, "<s>": BOS, "</s>": EOS, "<unk>": 3}
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
