"""Train fac-tiny, the embedded default: a small Qwen2.5-VL learned from scratch on the synthetic
benchmark, on a CPU.

    python -m fac_lens.embedded.train_tiny --out data/models/fac-tiny      # make train-tiny

Every step draws a fresh batch from the generator's train split (samples are indexed, so a run is
reproducible from its seed). The loss covers the assistant's reply (reasoning trace and answer);
the loss curve is logged to ``<out>/training_log.csv``. At the end the model, tokenizer, image
processor and chat template are saved so that ``fl.load(out)`` and ``model.prepare(image,
question)`` work as for a real checkpoint.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..architectures.qwen_vl_processor import QwenVLProcessor
from ..data.synthetic import IMAGE_SIZE, make_sample, vocabulary
from . import paths

SPECIAL = [
    "<pad>",
    "<unk>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|> {{ m['role'] }} "
    "{% if m['content'] is string %}{{ m['content'] }} {% else %}"
    "{% for c in m['content'] %}{% if c['type'] == 'image' %}<|vision_start|> <|image_pad|> <|vision_end|> "
    "{% else %}{{ c['text'] }} {% endif %}{% endfor %}{% endif %}<|im_end|> {% endfor %}"
    "{% if add_generation_prompt %}<|im_start|> assistant {% endif %}"
)
MODEL_SIZE = dict(
    n_layers=6, n_heads=4, n_kv_heads=2, d_head=32, intermediate=512, vision_depth=3, vision_hidden=96
)


def build_processor() -> QwenVLProcessor:
    """Word-level tokenizer over the benchmark's vocabulary + the torchvision-free image processor."""
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    from ..testing import word_level_tokenizer

    vocab = {token: i for i, token in enumerate(SPECIAL + vocabulary())}
    tokenizer = word_level_tokenizer(vocab, SPECIAL[2:], eos_token="<|im_end|>")
    tokenizer.chat_template = CHAT_TEMPLATE
    pixels = IMAGE_SIZE * IMAGE_SIZE
    image_processor = Qwen2VLImageProcessorPil(min_pixels=pixels, max_pixels=pixels)
    return QwenVLProcessor(tokenizer, image_processor, CHAT_TEMPLATE)


def build_model(processor: QwenVLProcessor, seed: int):
    """A fresh fac-tiny (Qwen2.5-VL: windowed ViT, patch merger, mRoPE GQA decoder)."""
    from ..testing import tiny_qwen2_5_vl

    tok = processor.tokenizer
    ids = {
        "image_token_id": tok.convert_tokens_to_ids("<|image_pad|>"),
        "video_token_id": tok.convert_tokens_to_ids("<|video_pad|>"),
        "vision_start_token_id": tok.convert_tokens_to_ids("<|vision_start|>"),
        "vision_end_token_id": tok.convert_tokens_to_ids("<|vision_end|>"),
        "bos_token_id": tok.convert_tokens_to_ids("<|im_start|>"),
        "eos_token_id": tok.convert_tokens_to_ids("<|im_end|>"),
        "pad_token_id": tok.pad_token_id,
    }
    model = tiny_qwen2_5_vl(seed=seed, vocab=len(tok), init=0.02, token_ids=ids, **MODEL_SIZE)
    model.generation_config.eos_token_id = ids["eos_token_id"]
    model.generation_config.pad_token_id = ids["pad_token_id"]
    return model.train()


def prompt_text(processor: QwenVLProcessor, question: str) -> str:
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
    return processor.apply_chat_template(messages, add_generation_prompt=True)


def collate(processor: QwenVLProcessor, batch: list) -> dict[str, torch.Tensor]:
    """Model inputs with labels on the assistant's reply only (right padding)."""
    tok = processor.tokenizer
    tok.padding_side = "right"
    prompts = [prompt_text(processor, s.question) for s in batch]
    texts = [f"{p}{s.meta['target']} <|im_end|>" for p, s in zip(prompts, batch, strict=True)]
    inputs = processor(images=[s.image for s in batch], text=texts, return_tensors="pt", padding=True)
    n_image = int(inputs["image_grid_thw"][0].prod()) // processor.image_processor.merge_size**2
    labels = inputs["input_ids"].clone()
    for row, prompt in enumerate(prompts):
        prompt_length = len(prompt.split()) + n_image - 1  # the placeholder expands to n_image tokens
        labels[row, :prompt_length] = -100
    labels[inputs["attention_mask"] == 0] = -100
    image_token = tok.convert_tokens_to_ids("<|image_pad|>")
    return {
        **inputs,
        "mm_token_type_ids": (inputs["input_ids"] == image_token).int(),
        "labels": labels,
    }


class LossLog:
    """The loss curve of a training run: ``step, loss, smoothed_loss, lr, seconds`` rows in a CSV
    file, every ``every`` steps and at the last one; the smoothed loss is an exponential average."""

    def __init__(self, path: Path, steps: int, every: int, decay: float) -> None:
        self.path, self.steps, self.every, self.decay = path, steps, every, decay
        self.smoothed: float | None = None
        self.start = time.perf_counter()

    def __enter__(self) -> LossLog:
        self._file = self.path.open("w", newline="")
        self._writer = csv.writer(self._file)
        self._writer.writerow(["step", "loss", "smoothed_loss", "lr", "seconds"])
        return self

    def __exit__(self, *exc) -> None:
        self._file.close()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.start

    def add(self, step: int, loss: float, lr: float) -> float:
        """Record one step's loss; returns the smoothed loss."""
        self.smoothed = loss if self.smoothed is None else self.decay * self.smoothed + (1 - self.decay) * loss
        if step % self.every == 0 or step == self.steps - 1:
            row = [step, f"{loss:.5f}", f"{self.smoothed:.5f}", f"{lr:.6f}", f"{self.seconds:.1f}"]
            self._writer.writerow(row)
            self._file.flush()
        return self.smoothed


def learning_rate(step: int, steps: int, peak: float, warmup: int) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def train(
    out: Path,
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
    save_every: int = 0,
    log_every: int = 25,
    init_from: Path | None = None,
    first_sample: int = 0,
    vision_lr_scale: float = 5.0,
):
    """Train and save fac-tiny to ``out``; returns the final smoothed loss.

    Args:
        init_from: continue from a saved fac-tiny instead of fresh weights (a second stage).
        first_sample: index of the first train-split sample drawn (a second stage draws new ones).
        vision_lr_scale: the vision tower's learning rate is this multiple of ``lr``. A larger one
            lets the model start using the image sooner (the loss otherwise plateaus while only
            the text template is learned).
    """
    torch.manual_seed(seed)
    processor = build_processor()
    model = build_model(processor, seed)
    if init_from is not None:
        model = type(model).from_pretrained(init_from, dtype=torch.float32).train()
    vision = [p for name, p in model.named_parameters() if name.startswith("model.visual.")]
    text = [p for name, p in model.named_parameters() if not name.startswith("model.visual.")]
    optimizer = torch.optim.AdamW(
        [{"params": vision, "scale": vision_lr_scale}, {"params": text, "scale": 1.0}],
        lr=lr,
        betas=(0.9, 0.98),
        weight_decay=0.01,
    )
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / "training_log.csv"
    smoothed = None
    start = time.perf_counter()
    with LossLog(log_path, steps, log_every, decay=0.98) as log:
        for step in tqdm(range(steps), desc="train fac-tiny"):
            batch = [make_sample("train", first_sample + step * batch_size + i) for i in range(batch_size)]
            inputs = collate(processor, batch)
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(step, steps, lr, warmup=min(200, steps // 10 + 1)) * group["scale"]
            loss = model(**inputs).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            smoothed = log.add(step, loss.item(), optimizer.param_groups[1]["lr"])
            if save_every and step and step % save_every == 0:
                save(model, processor, out)
    save(model, processor, out)
    (out / "training_args.json").write_text(
        json.dumps(
            {
                "steps": steps,
                "batch_size": batch_size,
                "lr": lr,
                "seed": seed,
                "init_from": str(init_from) if init_from else None,
                "first_sample": first_sample,
                "vision_lr_scale": vision_lr_scale,
                "seconds": round(time.perf_counter() - start, 1),
                "final_smoothed_loss": smoothed,
            },
            indent=2,
        )
    )
    return smoothed


def save(model, processor: QwenVLProcessor, out: Path) -> None:
    model.eval()
    model.save_pretrained(out, safe_serialization=True)
    processor.save_pretrained(out)
    model.train()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--out", type=Path, default=paths.fac_tiny(), help="where to save the model (default: the embedded one)"
    )
    parser.add_argument("--steps", type=int, default=7000, help="optimizer steps")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (warmup, cosine decay)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--save-every", type=int, default=500, help="save a checkpoint every N steps (0: only at the end)"
    )
    parser.add_argument(
        "--no-card", action="store_true", help="skip the test-split evaluation and model card"
    )
    parser.add_argument("--init-from", type=Path, help="continue from a saved model (a second stage)")
    parser.add_argument("--first-sample", type=int, default=0, help="index of the first train sample drawn")
    parser.add_argument(
        "--vision-lr-scale", type=float, default=5.0, help="vision tower learning rate / --lr (default 5)"
    )
    args = parser.parse_args(argv)
    train(
        args.out,
        args.steps,
        args.batch_size,
        args.lr,
        args.seed,
        args.save_every,
        init_from=args.init_from,
        first_sample=args.first_sample,
        vision_lr_scale=args.vision_lr_scale,
    )
    if not args.no_card:
        from .tiny_card import document

        document(args.out, command="python -m fac_lens.embedded.train_tiny " + " ".join(argv or []))


if __name__ == "__main__":
    main()
