"""Train fac-smol's projector on the synthetic benchmark; everything else stays frozen.

    python -m fac_lens.embedded.smol.train_projector --out data/models/fac-smol      # make train-smol

Needs the converted parts (``make smol``). Only ``multi_modal_projector`` (0.55 M parameters)
learns, so SmolLM2's language prior is kept: that prior is what the hallucination study looks at.
The loss covers the assistant's reply: the benchmark's templated trace and answer
(``--target trace``) or the answer alone (``--target answer``). Every step draws fresh, indexed
train-split samples, so a run is reproducible from its seed; the loss curve goes to
``<out>/training_log.csv`` and the projector to ``<out>/projector.safetensors`` beside
``fac_smol.json``, the folder ``fl.load`` reads.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ...data.synthetic import make_sample
from .. import paths
from ..train_tiny import LossLog, learning_rate
from .assemble import LAYOUT, MARKER, PROJECTOR_FILE, assemble

TARGETS = ("trace", "answer")


def prompt_messages(question: str) -> list[dict]:
    return [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]


def reply(sample, target: str) -> str:
    return sample.meta["target"] if target == "trace" else sample.answer


def collate(processor, batch: list, target: str) -> dict[str, torch.Tensor]:
    """Inputs with labels on the assistant's reply and its end token only (right padding)."""
    tokenizer = processor.tokenizer
    tokenizer.padding_side = "right"
    prompts = [
        processor.apply_chat_template(prompt_messages(s.question), add_generation_prompt=True) for s in batch
    ]
    texts = [f"{p}{reply(s, target)}<|im_end|>" for p, s in zip(prompts, batch, strict=True)]
    images = [s.image for s in batch]
    inputs = processor(images=images, text=texts, return_tensors="pt", padding=True)
    prompt_lengths = processor(images=images, text=prompts, return_tensors="pt", padding=True)[
        "attention_mask"
    ].sum(1)
    labels = inputs["input_ids"].clone()
    for row, length in enumerate(prompt_lengths.tolist()):
        labels[row, :length] = -100
    labels[inputs["attention_mask"] == 0] = -100
    return {**inputs, "labels": labels}


def train(
    out: Path,
    steps: int,
    batch_size: int = 8,
    lr: float = 1e-3,
    seed: int = 0,
    target: str = "trace",
    cache: Path | None = None,
    log_every: int = 10,
) -> float:
    """Train the projector and save the fac-smol folder ``out``; returns the final smoothed loss."""
    torch.manual_seed(seed)
    model, processor = assemble(cache, LAYOUT)
    for param in model.parameters():
        param.requires_grad_(False)
    projector = model.model.multi_modal_projector
    for param in projector.parameters():
        param.requires_grad_(True)
    model.train()
    optimizer = torch.optim.AdamW(projector.parameters(), lr=lr, betas=(0.9, 0.98), weight_decay=0.0)
    out.mkdir(parents=True, exist_ok=True)
    smoothed, start = None, time.perf_counter()
    with LossLog(out / "training_log.csv", steps, log_every, decay=0.95) as log:
        for step in tqdm(range(steps), desc="train fac-smol projector"):
            batch = [make_sample("train", step * batch_size + i) for i in range(batch_size)]
            inputs = collate(processor, batch, target)
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(step, steps, lr, warmup=min(50, steps // 10 + 1))
            loss = model(**inputs).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(projector.parameters(), 1.0)
            optimizer.step()
            smoothed = log.add(step, loss.item(), group["lr"])
    save(
        model,
        out,
        {
            "steps": steps,
            "batch_size": batch_size,
            "lr": lr,
            "seed": seed,
            "target": target,
            "seconds": round(time.perf_counter() - start, 1),
            "final_smoothed_loss": smoothed,
        },
    )
    return smoothed


def save(model, out: Path, training: dict) -> None:
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous() for k, v in model.model.multi_modal_projector.state_dict().items()}
    save_file(state, str(out / PROJECTOR_FILE))
    (out / MARKER).write_text(json.dumps({**LAYOUT, "training": training}, indent=2))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--out", type=Path, default=paths.fac_smol(), help="the fac-smol folder to write (default: the embedded one)"
    )
    parser.add_argument("--steps", type=int, default=600, help="optimizer steps")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (warmup, cosine decay)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--target", choices=TARGETS, default="trace", help="what the reply is trained on")
    parser.add_argument("--cache", type=Path, help="the converted parts (default: the user cache)")
    args = parser.parse_args(argv)
    train(args.out, args.steps, args.batch_size, args.lr, args.seed, args.target, args.cache)


if __name__ == "__main__":
    main()
