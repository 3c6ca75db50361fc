"""The dynamic mode's per-step cost on two shapes, side by side in one run (issue 18 item 5).

- ``small``: 4 layers, 8 heads of dimension 16, 64 image tokens, 64 generated tokens: a cheap step,
  where the probe's fixed per-layer cost (kernel calls, Python) shows, as it does for a 7B model
  decoding on a GPU (tens of milliseconds per step over 28 layers). Target <= 1.10x.
- ``7b_layers``: two decoder layers with Qwen2.5-VL-7B proportions (heavy matrix products).

Each shape times plain HF ``generate`` of an unwrapped copy (SDPA), fac_lens static and dynamic
(recording S_v in every layer, the default, and with ``record="bands"``: only the layers whose
gains depend on it), interleaved, median of ``--repeats``. ``met`` judges the default.
"""

from __future__ import annotations

import argparse
import copy

import torch

import fac_lens as fl
from bench.common import SEVEN_B_LAYER, qwen_inputs, qwen_like, record, time_against

SHAPES = {
    "small": dict(
        layers=4, hidden=128, n_heads=8, n_kv_heads=4, intermediate=512, image_tokens=64, text_tokens=16
    ),
    "7b_layers": dict(layers=2, **SEVEN_B_LAYER, image_tokens=256, text_tokens=64),
}


def run_shape(shape: dict, new_tokens: int, repeats: int) -> dict:
    sizes = {k: shape[k] for k in ("hidden", "n_heads", "n_kv_heads", "intermediate")}
    model = qwen_like(shape["layers"], **sizes)
    inputs = qwen_inputs(model, shape["image_tokens"], shape["text_tokens"])
    plain = copy.deepcopy(model)
    lens = fl.load(model)
    ratios = fl.attention_ratios(lens, inputs, progress=False)
    median = float(ratios.visual.median())
    last = lens.n_layers - 1
    cfg = fl.FacConfig(l_perc=0, l_reas=last, tau_perc=median, tau_reas=median, g_perc=1.16, g_reas=1.3)
    gains = cfg.gains(ratios)
    fixed = dict(min_new_tokens=new_tokens, do_sample=False, pad_token_id=0)

    def plain_generate():
        plain.model.rope_deltas = None
        with torch.no_grad():
            plain.generate(**inputs, max_new_tokens=new_tokens, **fixed)

    variants = {
        "plain_hf_generate": plain_generate,
        "fac_static": lambda: fl.generate(lens, inputs, new_tokens, fac=gains, **fixed),
        "fac_dynamic": lambda: fl.generate(lens, inputs, new_tokens, fac=cfg, **fixed),
        "fac_dynamic_bands": lambda: fl.generate(lens, inputs, new_tokens, fac=cfg, record="bands", **fixed),
    }
    timings, relative = time_against(variants, "plain_hf_generate", repeats)
    step = timings["plain_hf_generate"]["median_s"] / new_tokens
    return {"shape": shape, "timings": timings, "relative_to_plain": relative, "plain_seconds_per_step": step}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--shapes", nargs="*", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: steadier on a shared CPU)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = {name: run_shape(SHAPES[name], args.new_tokens, args.repeats) for name in args.shapes}
    targets = {"small": 1.10, "7b_layers": 1.05}
    met = {name: r["relative_to_plain"]["fac_dynamic"] <= targets[name] for name, r in results.items()}
    record("dynamic_cost", {"setting": vars(args), "results": results, "targets": targets, "met": met})


if __name__ == "__main__":
    main()
