"""Ratio recording over all layers and heads vs a plain SDPA forward of the unwrapped model.

Target (issue 2): at most 1.3x on a layer with 7B-like proportions (28 heads of dimension 128,
4 KV heads, MLP 18944) at about 1500 tokens.
"""

from __future__ import annotations

import argparse

import fac_lens as fl
from bench.common import (
    plain_and_lens,
    plain_forward,
    qwen_inputs,
    record,
    setting,
    seven_b_like,
    time_against,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--image-tokens", type=int, default=1024)
    parser.add_argument("--text-tokens", type=int, default=474)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    model = seven_b_like(args.layers)
    inputs = qwen_inputs(model, args.image_tokens, args.text_tokens)
    plain, lens = plain_and_lens(model)
    variants = {
        "plain_sdpa_forward": plain_forward(plain, inputs),
        "ratios_all_indicator": lambda: fl.attention_ratios(lens, inputs, query="all"),
        "ratios_last_indicator": lambda: fl.attention_ratios(lens, inputs, query="last"),
        "ratios_all_pattern_eager": lambda: fl.attention_ratios(lens, inputs, query="all", method="pattern"),
    }
    timings, relative = time_against(variants, "plain_sdpa_forward", args.repeats)
    record(
        "ratios_speed",
        {
            "setting": setting(args, inputs),
            "timings": timings,
            "relative_to_plain": relative,
            "target": "ratios_all_indicator <= 1.3x",
            "met": relative["ratios_all_indicator"] <= 1.3,
        },
    )


if __name__ == "__main__":
    main()
