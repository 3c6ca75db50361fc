"""One contribution map (forward + gate gradients) vs one plain forward of the unwrapped model.

Target (issue 2): at most 3x. One decoder layer with 7B-like proportions at about 1000 tokens.
"""

from __future__ import annotations

import argparse

import torch

import fac_lens as fl
from bench.common import interleaved, plain_and_lens, qwen_inputs, qwen_like, record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--image-tokens", type=int, default=768)
    parser.add_argument("--text-tokens", type=int, default=256)
    parser.add_argument("--vocab", type=int, default=32000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    model = qwen_like(
        args.layers, hidden=3584, n_heads=28, n_kv_heads=4, intermediate=18944, vocab=args.vocab
    )
    inputs = qwen_inputs(model, args.image_tokens, args.text_tokens)
    plain, lens = plain_and_lens(model)

    def plain_forward():
        plain.model.rope_deltas = None
        with torch.no_grad():
            plain(**inputs)

    variants = {
        "plain_sdpa_forward": plain_forward,
        "contribution_map": lambda: fl.contribution_map(lens, inputs, target=5, position=-1),
    }
    timings = interleaved(variants, args.repeats)
    relative = timings["contribution_map"]["median_s"] / timings["plain_sdpa_forward"]["median_s"]
    record(
        "contribution",
        {
            "setting": {
                **vars(args),
                "tokens": int(inputs["input_ids"].shape[1]),
                "hidden": 3584,
                "heads": 28,
                "kv_heads": 4,
                "d_head": 128,
                "mlp": 18944,
                "dtype": "float32",
            },
            "timings": timings,
            "relative_to_plain": relative,
            "target": "contribution_map <= 3x plain forward",
            "met": relative <= 3.0,
        },
    )


if __name__ == "__main__":
    main()
