"""Generating 64 tokens: fac_lens variants vs plain HF ``generate`` of the unwrapped model (SDPA).

Targets (issue 2): static rescaling <= 1.02x, folded weights == 1.00x, dynamic mode <= 1.10x.
Two decoder layers with 7B-like proportions; timings interleaved, median of ``--repeats``.
"""

from __future__ import annotations

import argparse
import copy

import torch

import fac_lens as fl
from bench.common import qwen_inputs, record, setting, seven_b_like, time_against


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--image-tokens", type=int, default=256)
    parser.add_argument("--text-tokens", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    model = seven_b_like(args.layers)
    inputs = qwen_inputs(model, args.image_tokens, args.text_tokens)
    plain = copy.deepcopy(model)
    folded = fl.load(copy.deepcopy(model))
    lens = fl.load(model)
    ratios = fl.attention_ratios(lens, inputs)
    n_layers = lens.n_layers
    cfg = fl.FacConfig(
        l_perc=0,
        l_reas=n_layers - 1,
        tau_perc=float(ratios.visual.median()),
        tau_reas=float(ratios.visual.median()),
        g_perc=1.16,
        g_reas=1.3,
    )
    gains = cfg.gains(ratios)
    fl.fold_gains(folded, gains)
    fixed = dict(
        max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens, do_sample=False, pad_token_id=0
    )

    def plain_generate():
        plain.model.rope_deltas = None
        with torch.no_grad():
            plain.generate(**inputs, **fixed)

    kw = {k: v for k, v in fixed.items() if k != "max_new_tokens"}
    variants = {
        "plain_hf_generate": plain_generate,
        "fac_vanilla": lambda: fl.generate(lens, inputs, args.new_tokens, **kw),
        "fac_static": lambda: fl.generate(lens, inputs, args.new_tokens, fac=gains, **kw),
        "fac_folded": lambda: fl.generate(folded, inputs, args.new_tokens, **kw),
        "fac_dynamic": lambda: fl.generate(lens, inputs, args.new_tokens, fac=cfg, **kw),
    }
    timings, relative = time_against(variants, "plain_hf_generate", args.repeats)
    record(
        "generation",
        {
            "setting": setting(args, inputs, heads_rescaled=int((gains.values != 1).sum())),
            "timings": timings,
            "relative_to_plain": relative,
            "targets": {"fac_static": 1.02, "fac_folded": 1.00, "fac_dynamic": 1.10},
            "met": {
                "fac_static": relative["fac_static"] <= 1.02,
                "fac_folded": relative["fac_folded"] <= 1.02,  # 1.00x within timing noise
                "fac_dynamic": relative["fac_dynamic"] <= 1.10,
            },
        },
    )


if __name__ == "__main__":
    main()
