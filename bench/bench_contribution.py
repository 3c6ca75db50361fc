"""One contribution map (forward + gate gradients) vs one plain forward of the unwrapped model.

Target (issue 2): at most 3x. One decoder layer with 7B-like proportions at about 1000 tokens.
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
    parser.add_argument("--image-tokens", type=int, default=768)
    parser.add_argument("--text-tokens", type=int, default=256)
    parser.add_argument("--vocab", type=int, default=32000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    model = seven_b_like(args.layers, vocab=args.vocab)
    inputs = qwen_inputs(model, args.image_tokens, args.text_tokens)
    plain, lens = plain_and_lens(model)
    variants = {
        "plain_sdpa_forward": plain_forward(plain, inputs),
        "contribution_map": lambda: fl.contribution_map(lens, inputs, target=5, position=-1),
    }
    timings, relative = time_against(variants, "plain_sdpa_forward", args.repeats)
    record(
        "contribution",
        {
            "setting": setting(args, inputs),
            "timings": timings,
            "relative_to_plain": relative["contribution_map"],
            "target": "contribution_map <= 3x plain forward",
            "met": relative["contribution_map"] <= 3.0,
        },
    )


if __name__ == "__main__":
    main()
