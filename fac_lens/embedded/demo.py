"""The main job on the embedded default, fac-tiny: ratios, identification, rescaling, traces, maps.

    python -m fac_lens.embedded.demo [--out figures/demo_embedded_default.png] [--samples 64]

fac-tiny (``fl.load("fac-tiny")``, the folder ``data/models/fac-tiny``) is a small Qwen2.5-VL trained on fac_lens's synthetic
benchmark; it loads exactly like a real checkpoint. The demo records head ratios on validation samples,
identifies perception and reasoning heads, compares vanilla and FAC (dynamic) accuracy per question
kind on a subset of the test split (calibrated on 32 validation samples; the difference with its
paired bootstrap interval and McNemar p), and studies one failing two-step question: its vanilla and
rescaled traces and the contribution maps of its answer token.
"""

from __future__ import annotations

import argparse
import json
import textwrap
from pathlib import Path

import fac_lens as fl

from ..calibration import calibrated_config
from ..case_study import case_study
from ..data.synthetic import load_split
from ..data.synthetic import samples as synthetic_samples
from ..data.uncertainty import compare_to_baseline
from ..experiments.methods import Method
from ..experiments.significance import describe
from . import paths
from .tiny_card import card_summary, evaluate


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default="figures/demo_embedded_default.png", help="figure to write")
    parser.add_argument(
        "--model", default="fac-tiny", help="model directory or embedded name (default: fac-tiny)"
    )
    parser.add_argument("--samples", type=int, default=64, help="test samples to evaluate")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args(argv)

    model = fl.load(args.model)
    test = list(load_split(paths.synthetic_test()))[: args.samples]
    calibration = list(synthetic_samples("validation", 32))  # never the evaluated samples
    ratios = fl.attention_ratios(
        model, [model.prepare(s.image, s.prompt()) for s in calibration], progress=False
    )
    config = calibrated_config(ratios)  # middle boundaries, quartile thresholds, the paper's gains
    selection = config.select(ratios)
    vanilla_records = evaluate(model, test, progress=False)
    fac_records = evaluate(model, test, Method("dynamic", config), progress=False)
    vanilla, fac = card_summary(vanilla_records), card_summary(fac_records)
    difference = compare_to_baseline(fac_records, vanilla_records)  # paired bootstrap, McNemar

    failing = next(
        (s for s, r in zip(test, vanilla_records, strict=True) if not r["correct"] and s.kind == "two_step"),
        next(s for s, r in zip(test, vanilla_records, strict=True) if not r["correct"]),
    )
    case = _case_study(model, failing, config)
    summary = {
        "model": repr(model),
        "layer_visual_ratio": [round(v, 3) for v in ratios.layer_trajectory()[0].tolist()],
        "config": config.__dict__,
        "heads": selection.counts,
        "vanilla": {
            "accuracy": vanilla["accuracy"],
            "per_kind": {k: v["accuracy"] for k, v in vanilla["per_kind"].items()},
        },
        "fac": {
            "accuracy": fac["accuracy"],
            "per_kind": {k: v["accuracy"] for k, v in fac["per_kind"].items()},
            "vs_vanilla": difference.to_dict(),
        },
        "case": {k: v for k, v in case.items() if k not in ("before", "after", "image")},
        "figure": args.out,
    }
    _figure(ratios, selection, config, case, Path(args.out))
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        _print(summary, selection, vanilla, fac, describe(difference))
    return summary


def _case_study(model, sample, config) -> dict:
    """Vanilla vs rescaled trace of one failing sample, and contribution maps of its answer token."""
    case = case_study(model, sample.image, sample.prompt(), config)
    return {
        "id": sample.id,
        "answer": sample.answer,
        "kind": sample.kind,
        **case.to_dict(),
        "before": case.before,
        "after": case.after,
        "image": sample.image,
    }


def named_heads(ranking: list[tuple[int, int, float]]) -> str:
    """``[(layer, head, importance), ...]`` as "layer 3 head 1 (importance 0.21), ..."."""
    return ", ".join(f"layer {layer} head {head} (importance {score:.2f})" for layer, head, score in ranking)


def _print(summary: dict, selection, vanilla: dict, fac: dict, difference: str) -> None:
    print(summary["model"])
    print(
        f"layer-wise visual ratio (32 validation samples, which calibrate FAC): {summary['layer_visual_ratio']}"
    )
    print(selection.summary())
    print(
        f"accuracy on {vanilla['n']} test samples: vanilla {vanilla['accuracy']:.1%}, FAC {fac['accuracy']:.1%}"
    )
    print(f"  FAC {difference}")
    for kind in vanilla["per_kind"]:
        print(
            f"  {kind:10s} vanilla {vanilla['per_kind'][kind]['accuracy']:.1%}  FAC {fac['per_kind'][kind]['accuracy']:.1%}"
        )
    case = summary["case"]
    print(f"case study {case['id']} ({case['kind']}): {case['question']}  (truth: {case['answer']})")
    print(f"  vanilla: {case['vanilla_trace']}")
    print(f"  FAC    : {case['fac_trace']}")
    print(
        f"  heads that matter most for the answer token {case['answer_token']!r} (importance |dL/dg|, "
        "globally normalised):"
    )
    print(f"    vanilla: {named_heads(case['top_heads_vanilla'])}")
    print(f"    FAC    : {named_heads(case['top_heads_fac'])}")
    print(f"figure written to {summary['figure']}")
    print(
        "next: `make lab` opens notebooks/01_explore_heads.ipynb, whose last cell is the explorer "
        "(fl.explorer: move boundaries, thresholds and gains live); `make figures` regenerates the paper's figures"
    )


def _figure(ratios, selection, config, case, out: Path) -> None:
    """The demo's six panels, written to ``out`` (a plain Figure: no backend, no pyplot state)."""
    import matplotlib
    from matplotlib.figure import Figure

    from ..plotting import theme

    with matplotlib.rc_context(theme("white")):
        fig = Figure(figsize=(16, 9))
        _panels(fig.subplots(2, 3), ratios, selection, config, case)
        fig.suptitle("fac_lens on the embedded default fac-tiny (synthetic CLEVR-like benchmark)")
        fig.tight_layout()
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=100)


def _panels(axes, ratios, selection, config, case) -> None:
    """Head map, trajectory and the case (its image, question and traces) on top; the signed
    contribution maps vanilla, FAC and their difference below, in the explorer's conventions
    (dL/dg of L = -log p(answer), one diverging scale centred on 0, classes outlined)."""
    import numpy as np

    from ..plotting import outline_classes, plot_contribution, plot_head_map, plot_layer_trajectory

    plot_head_map(ratios, selection, ax=axes[0, 0])
    plot_layer_trajectory(ratios, config.l_perc, config.l_reas, ax=axes[0, 1])
    story = axes[0, 2]
    story.axis("off")
    if case.get("image") is not None:
        picture = story.inset_axes([0.0, 0.55, 0.42, 0.45])
        picture.imshow(np.asarray(case["image"]))
        picture.set_xticks([])
        picture.set_yticks([])
        picture.set_title(f"case {case['id']} ({case['kind']})", fontsize=9)
    lines = [
        case["question"],
        f"truth: {case['answer']}",
        f"vanilla: {case['vanilla_trace']}",
        f"FAC: {case['fac_trace']}",
    ]
    story.text(0, 0.5, "\n\n".join(textwrap.fill(line, 60) for line in lines), fontsize=8, va="top")
    before, after = case["before"].signed, case["after"].signed
    bound = float(max(before.abs().max(), after.abs().max())) or 1.0
    for ax, values, title in (
        (axes[1, 0], before, f"contribution to {case['answer_token']!r}, vanilla"),
        (axes[1, 1], after, "same token, FAC (dynamic)"),
    ):
        plot_contribution(values, ax=ax, title=title, signed=True)
        ax.collections[0].set_clim(-bound, bound)  # one scale for both
        outline_classes(ax, selection.perception, selection.reasoning)
    plot_contribution(
        after - before,
        ax=axes[1, 2],
        title="FAC - vanilla",
        signed=True,
        label="change of dL/dg (FAC - vanilla)",
    )


if __name__ == "__main__":
    main()
