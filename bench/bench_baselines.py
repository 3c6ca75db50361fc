"""The cost of each hallucination-mitigation baseline vs vanilla, side by side in one run.

The paper (Table 4) reports VCD +36..146%, CGD +258..624%, AGLA +5..67% and FAC +1.4..5.1% per
batch over vanilla. Here: one prompt (by default 64 image + 32 text tokens, 16 new tokens: sized
for a shared 2-core CPU) on a decoder layer with 7B proportions, timings interleaved, median of
``--repeats``. VAF runs without its system-prompt term (the benchmark model has no chat template).

CGD and AGLA run with stand-in scorers that cost nothing (the CLIP / BLIP-ITM forward passes are
not bundled and not timed), so their overheads here are lower bounds; CGD's sentences end at ids
divisible by 16 (about 16 tokens each on this random model). AGLA's masked view is given as
``contrast_inputs`` (masking cost excluded).
"""

from __future__ import annotations

import argparse
import copy

import torch

import fac_lens as fl
from bench.common import qwen_inputs, record, setting, seven_b_like, time_against
from fac_lens.baselines import AGLA, CGD, PAI, VAF, VCD, MidLayer


class FreeScorer:
    """Constant-time stand-in for CLIP: prefers shorter texts."""

    def score(self, image, texts):
        return torch.tensor([-len(t) / 1000 for t in texts])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--image-tokens", type=int, default=64)
    parser.add_argument("--text-tokens", type=int, default=32)
    parser.add_argument("--new-tokens", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    model = seven_b_like(args.layers)
    inputs = qwen_inputs(model, args.image_tokens, args.text_tokens)
    plain = copy.deepcopy(model)
    lens = fl.load(model)
    ratios = fl.attention_ratios(lens, inputs)
    median = float(ratios.visual.median())
    cfg = fl.FacConfig(
        l_perc=0, l_reas=lens.n_layers - 1, tau_perc=median, tau_reas=median, g_perc=1.16, g_reas=1.3
    )
    n = args.new_tokens
    fixed = dict(min_new_tokens=n, pad_token_id=0)
    half = torch.Generator().manual_seed(1)
    local = dict(
        inputs,
        pixel_values=inputs["pixel_values"]
        * (torch.rand(inputs["pixel_values"].shape, generator=half) > 0.5),
    )
    ends = set(range(0, 4096, 16))

    def plain_generate():
        plain.model.rope_deltas = None
        with torch.no_grad():
            plain.generate(**inputs, max_new_tokens=n, do_sample=False, **fixed)

    def run(method, **kw):
        return lambda: fl.generate(lens, inputs, n, method=method, **fixed, **kw)

    variants = {
        "plain_hf_generate": plain_generate,
        "vanilla": run(None),
        "fac_dynamic": run(cfg),
        "vcd": run(VCD()),
        "pai": run(PAI()),
        "vaf": run(VAF(beta=0.0)),
        "midlayer": run(MidLayer()),
        "cgd": lambda: fl.generate(
            lens, inputs, n, method=CGD(scorer=FreeScorer()), images=[None], sentence_end=ends, decode=str
        ),
        "agla": run(AGLA(), contrast_inputs=local),
    }
    timings, relative = time_against(variants, "vanilla", args.repeats)
    record(
        "baselines",
        {
            "setting": setting(args, inputs),
            "timings": timings,
            "relative_to_vanilla": relative,
            "overhead_pct": {k: round(100 * (v - 1), 1) for k, v in relative.items()},
            "paper_overhead_pct": {"vcd": "36..146", "cgd": "258..624", "agla": "5..67", "fac": "1.4..5.1"},
        },
    )


if __name__ == "__main__":
    main()
