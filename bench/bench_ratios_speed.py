"""Ratio recording over all layers and heads vs a plain SDPA forward of the unwrapped model.

Target (issue 2): at most 1.3x on a layer with 7B-like proportions (28 heads of dimension 128,
4 KV heads, MLP 18944) at about 1500 tokens.
"""

from __future__ import annotations

import argparse

import torch

import fac_lens as fl
from bench.common import interleaved, plain_and_lens, qwen_inputs, qwen_like, record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--image-tokens", type=int, default=1024)
    parser.add_argument("--text-tokens", type=int, default=474)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    model = qwen_like(args.layers, hidden=3584, n_heads=28, n_kv_heads=4, intermediate=18944)
    inputs = qwen_inputs(model, args.image_tokens, args.text_tokens)
    plain, lens = plain_and_lens(model)

    def plain_forward():
        plain.model.rope_deltas = None
        with torch.no_grad():
            plain(**inputs)

    variants = {
        "plain_sdpa_forward": plain_forward,
        "ratios_all_indicator": lambda: fl.attention_ratios(lens, inputs, query="all"),
        "ratios_last_indicator": lambda: fl.attention_ratios(lens, inputs, query="last"),
        "ratios_all_pattern_eager": lambda: fl.attention_ratios(lens, inputs, query="all", method="pattern"),
    }
    timings = interleaved(variants, args.repeats)
    base = timings["plain_sdpa_forward"]["median_s"]
    ratios = {name: t["median_s"] / base for name, t in timings.items()}
    record(
        "ratios_speed",
        {
            "setting": {
                "tokens": int(inputs["input_ids"].shape[1]),
                **vars(args),
                "hidden": 3584,
                "heads": 28,
                "kv_heads": 4,
                "d_head": 128,
                "mlp": 18944,
                "dtype": "float32",
            },
            "timings": timings,
            "relative_to_plain": ratios,
            "target": "ratios_all_indicator <= 1.3x",
            "met": ratios["ratios_all_indicator"] <= 1.3,
        },
    )


if __name__ == "__main__":
    main()
