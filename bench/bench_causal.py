"""Causal head analysis costs on layers with 7B-like proportions.

* concentration: ``fl.attention_concentration`` over all layers and heads vs a plain SDPA forward
  (target, issue 15: at most 1.3x, the cost of ratio recording), about 1500 tokens;
* erasure: ``fl.erasure_effects`` for every head of a 2-layer model at about 1000 tokens, counting
  forwards (target: ``ceil((1 + n_layers * n_heads) / batch)``, one per head batch) and timing them.

    python -m bench.bench_causal [--part concentration|erasure|both]
"""

from __future__ import annotations

import argparse
import math
import time

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


def concentration(args) -> dict:
    model = seven_b_like(1)
    inputs = qwen_inputs(model, args.image_tokens, args.text_tokens)
    plain, lens = plain_and_lens(model)
    variants = {
        "plain_sdpa_forward": plain_forward(plain, inputs),
        "ratios_all": lambda: fl.attention_ratios(lens, inputs, query="all", progress=False),
        "concentration_all": lambda: fl.attention_concentration(lens, inputs, query="all", progress=False),
        "concentration_last": lambda: fl.attention_concentration(lens, inputs, query="last", progress=False),
    }
    timings, relative = time_against(variants, "plain_sdpa_forward", args.repeats)
    return {
        "setting": setting(args, inputs, layers=1),
        "timings": timings,
        "relative_to_plain": relative,
        "target": "concentration_all <= 1.3x",
        "met": relative["concentration_all"] <= 1.3,
    }


def erasure(args) -> dict:
    model = seven_b_like(2)
    inputs = qwen_inputs(model, args.erasure_image_tokens, args.erasure_text_tokens)
    lens = fl.load(model)
    calls = []
    core = lens.spec.multimodal_core(lens.hf)
    handle = core.register_forward_pre_hook(lambda *a: calls.append(1))
    n = inputs["input_ids"].shape[1]
    start = time.perf_counter()
    try:
        fl.erasure_effects(
            lens, inputs, [n - 3, n - 2], [n - 5, n - 4], batch_size=args.batch, progress=False
        )
    finally:
        handle.remove()
    seconds = time.perf_counter() - start
    expected = math.ceil((1 + lens.n_layers * lens.n_heads) / args.batch)
    return {
        "setting": setting(args, inputs, layers=2),
        "forwards": len(calls),
        "expected_forwards": expected,
        "seconds": seconds,
        "target": "forwards == ceil((1 + n_layers * n_heads) / batch)",
        "met": len(calls) == expected,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--part", choices=("concentration", "erasure", "both"), default="both")
    parser.add_argument("--image-tokens", type=int, default=1024)
    parser.add_argument("--text-tokens", type=int, default=474)
    parser.add_argument("--erasure-image-tokens", type=int, default=784)
    parser.add_argument("--erasure-text-tokens", type=int, default=230)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.part in ("concentration", "both"):
        record("causal_concentration", concentration(args))
    if args.part in ("erasure", "both"):
        record("causal_erasure", erasure(args))


if __name__ == "__main__":
    main()
