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
        "case": {k: v for k, v in case.items() if k not in ("before", "after")},
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
        **case.to_dict(),
        "before": case.before,
        "after": case.after,
    }


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
    print(f"case study {case['id']}: {case['question']}  (truth: {case['answer']})")
    print(f"  vanilla: {case['vanilla_trace']}")
    print(f"  FAC    : {case['fac_trace']}")
    print(f"  top heads for the answer token {case['answer_token']!r}: vanilla {case['top_heads_vanilla']}")
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
    """Head map, trajectory and the story (top); contribution maps vanilla, FAC, difference (bottom)."""
    from ..plotting import plot_contribution, plot_head_map, plot_layer_trajectory

    plot_head_map(ratios, selection, ax=axes[0, 0])
    plot_layer_trajectory(ratios, config.l_perc, config.l_reas, ax=axes[0, 1])
    axes[0, 2].axis("off")
    story = [
        case["question"],
        f"truth: {case['answer']}",
        f"vanilla: {case['vanilla_trace']}",
        f"FAC: {case['fac_trace']}",
    ]
    axes[0, 2].text(0, 0.5, "\n\n".join(textwrap.fill(line, 55) for line in story), fontsize=9, va="center")
    plot_contribution(
        case["before"], ax=axes[1, 0], title=f"contribution to {case['answer_token']!r}, vanilla"
    )
    plot_contribution(case["after"], ax=axes[1, 1], title="same token, FAC (dynamic)")
    plot_contribution(
        case["after"].normalized("layer") - case["before"].normalized("layer"),
        ax=axes[1, 2],
        title="FAC - vanilla",
        label="change of layer-normalised importance",
    )


if __name__ == "__main__":
    main()
