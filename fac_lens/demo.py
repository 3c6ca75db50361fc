"""The main job on the embedded default: ratios, identification, rescaling, traces and maps.

    python -m fac_lens.demo [--out figures/demo.png]

Until the trained embedded model exists (issue 3), the embedded default is a tiny random-weight
Qwen2.5-VL checkpoint built in code and saved to a temporary directory, so that the whole path a
real checkpoint takes is exercised: ``fl.load(dir)``, ``model.prepare(image, text)``, ratios,
identification, static and dynamic rescaling, generation and contribution maps. Random weights
show no functional structure: the numbers demonstrate the machinery, not a finding.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch

import fac_lens as fl
from fac_lens.tiny import save_tiny_checkpoint


def scene():
    """A small CLEVR-like picture: a red square and a blue disc on gray."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (112, 112), (128, 128, 128))
    draw = ImageDraw.Draw(image)
    draw.rectangle((14, 30, 50, 66), fill=(200, 30, 30))
    draw.ellipse((64, 50, 100, 86), fill=(30, 60, 200))
    return image


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default="figures/demo_embedded_default.png", help="figure to write")
    parser.add_argument("--new-tokens", type=int, default=12, help="length of the generated traces")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as checkpoint:
        save_tiny_checkpoint(checkpoint, "qwen2_5_vl")
        model = fl.load(checkpoint)
    inputs = model.prepare(scene(), "what color is the cube ?")
    ratios = fl.attention_ratios(model, inputs, query="all")
    last = fl.attention_ratios(model, inputs, query="last")
    visual = ratios.visual
    config = fl.FacConfig(
        l_perc=1,
        l_reas=2,
        tau_perc=round(float(visual.quantile(0.75)), 3),
        tau_reas=round(float(visual.quantile(0.25)), 3),
        g_perc=1.16,
        g_reas=1.30,
    )
    selection = config.select(ratios)
    gains = config.gains(selection)
    vanilla = fl.generate(model, inputs, max_new_tokens=args.new_tokens)
    static = fl.generate(model, inputs, max_new_tokens=args.new_tokens, fac=gains)
    dynamic = fl.generate(model, inputs, max_new_tokens=args.new_tokens, fac=config)
    target = int(vanilla.new_tokens[0, 0])
    before = fl.contribution_map(model, inputs, target=target, position=-1)
    with fl.rescale(model, gains):
        after = fl.contribution_map(model, inputs, target=target, position=-1)
    summary = {
        "model": repr(model),
        "tokens": int(inputs["input_ids"].shape[1]),
        "image_tokens": int((inputs["input_ids"] == model.image_token_id).sum()),
        "layer_visual_ratio": [round(v, 4) for v in ratios.layer_trajectory()[0].tolist()],
        "config": config.__dict__,
        "heads": selection.counts,
        "vanilla_trace": vanilla.text[0],
        "static_trace": static.text[0],
        "dynamic_trace": dynamic.text[0],
        "dynamic_heads_per_step": [
            dynamic.rescale.selection(i).counts["perception"]
            + dynamic.rescale.selection(i).counts["reasoning"]
            for i in range(len(dynamic.rescale.pass_ratios))
        ],
        "top_heads_before": before.ranking(top=3),
        "top_heads_after": after.ranking(top=3),
        "figure": args.out,
    }
    _figure(ratios, last, selection, config, before, after, Path(args.out))
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{summary['model']}\n{summary['tokens']} tokens, {summary['image_tokens']} image tokens")
        print(f"layer-wise visual ratio: {summary['layer_visual_ratio']}")
        print(selection.summary())
        print(f"vanilla trace : {vanilla.text[0]!r}")
        print(f"static  trace : {static.text[0]!r}")
        print(
            f"dynamic trace : {dynamic.text[0]!r}  (heads rescaled per step: {summary['dynamic_heads_per_step']})"
        )
        print(f"top heads for token {target}: before {before.ranking(top=3)}, after {after.ranking(top=3)}")
        print(f"figure written to {args.out}")
    return summary


def _figure(ratios, last, selection, config, before, after, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    from .plotting import plot_contribution, plot_head_map, plot_layer_trajectory

    sns.set_theme(style="white")
    fig, axes = plt.subplots(2, 3, figsize=(16, 9))
    plot_head_map(ratios, selection, ax=axes[0, 0])
    axes[0, 0].set_title("S_v, query = all positions")
    plot_head_map(last, ax=axes[0, 1])
    axes[0, 1].set_title("S_v, query = last position (i*)")
    plot_layer_trajectory(ratios, config.l_perc, config.l_reas, ax=axes[0, 2])
    plot_contribution(before, ax=axes[1, 0], title="contribution, vanilla")
    plot_contribution(after, ax=axes[1, 1], title="contribution, rescaled")
    plot_contribution(
        after.normalized("layer") - before.normalized("layer"), ax=axes[1, 2], title="rescaled - vanilla"
    )
    fig.suptitle("fac_lens on the embedded default (tiny random Qwen2.5-VL: machinery, not findings)")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
