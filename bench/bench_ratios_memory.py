"""Peak memory of ratio recording vs transformer-lens ``run_with_cache`` of ``hook_pattern``.

Target (issue 2): at least 3x lower peak memory on an attention-heavy config at about 3000 tokens.
Each variant runs in its own process; the number is the peak resident set size during the call
minus the resident size just before it (model loaded, one warm-up forward done at 64 tokens).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys

import torch

VARIANTS = ("plain_sdpa_forward", "tl_run_with_cache_pattern", "fac_ratios_pattern", "fac_ratios_indicator")


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def run_variant(name: str, layers: int, image_tokens: int, text_tokens: int) -> dict:
    import fac_lens as fl
    from bench.common import plain_and_lens, qwen_inputs, qwen_like

    model = qwen_like(layers, hidden=1792, n_heads=28, n_kv_heads=4, intermediate=4864)
    inputs = qwen_inputs(model, image_tokens, text_tokens)
    plain, lens = plain_and_lens(model)
    del plain
    warm = qwen_inputs(model, 16, 8)
    fl.attention_ratios(lens, warm)
    torch.set_grad_enabled(False)
    before = rss_bytes()
    if name == "plain_sdpa_forward":
        lens.reset_state()
        lens.hf(**inputs)
    elif name == "tl_run_with_cache_pattern":
        with lens.attention_implementation("eager"):
            lens.reset_state()
            ids = inputs["input_ids"]
            extra = {k: v for k, v in inputs.items() if k not in ("input_ids",)}
            _, cache = lens.bridge.run_with_cache(
                ids, **extra, output_attentions=False, names_filter=lambda n: n.endswith("hook_pattern")
            )
            visual = [
                (cache[f"blocks.{layer}.attn.hook_pattern"][..., ids[0] == lens.image_token_id])
                .sum(-1)
                .mean(-1)
                for layer in range(lens.n_layers)
            ]
            del cache, visual
    elif name == "fac_ratios_pattern":
        fl.attention_ratios(lens, inputs, method="pattern")
    else:
        fl.attention_ratios(lens, inputs, method="indicator")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "variant": name,
        "extra_peak_bytes": max(peak - before, 0),
        "tokens": int(inputs["input_ids"].shape[1]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--image-tokens", type=int, default=2500)
    parser.add_argument("--text-tokens", type=int, default=500)
    parser.add_argument("--variant", choices=VARIANTS)
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args.variant, args.layers, args.image_tokens, args.text_tokens)))
        return
    from bench.common import record

    results = {}
    for name in VARIANTS:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.bench_ratios_memory",
                "--variant",
                name,
                "--layers",
                str(args.layers),
                "--image-tokens",
                str(args.image_tokens),
                "--text-tokens",
                str(args.text_tokens),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        results[name] = json.loads(out.stdout.strip().splitlines()[-1])
    tl = results["tl_run_with_cache_pattern"]["extra_peak_bytes"]
    ours = results["fac_ratios_indicator"]["extra_peak_bytes"]
    record(
        "ratios_memory",
        {
            "setting": {
                **vars(args),
                "hidden": 1792,
                "heads": 28,
                "kv_heads": 4,
                "d_head": 64,
                "mlp": 4864,
                "dtype": "float32",
                "tokens": results[VARIANTS[0]]["tokens"],
            },
            "extra_peak_MiB": {k: v["extra_peak_bytes"] / 2**20 for k, v in results.items()},
            "tl_over_indicator": tl / max(ours, 1),
            "target": "tl_run_with_cache_pattern / fac_ratios_indicator >= 3",
            "met": tl / max(ours, 1) >= 3,
        },
    )


if __name__ == "__main__":
    main()
