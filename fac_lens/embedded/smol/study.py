"""The paper's experiment on fac-smol: accuracy per kind, POPE-style existence probes, the
layer-wise visual ratio, identified heads, and vanilla vs FAC (static and dynamic).

    python -m fac_lens.embedded.smol.study --test 96 --pope-scenes 32      # make study-smol

Everything runs through the experiments code (:class:`fac_lens.experiments.runner.Experiment`),
so records and summaries land in the results store and a rerun reuses them. The numbers are
written to ``<model>/study.json`` and the model card ``<model>/README.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from ...data.metrics import binary_f1
from ...data.pope import VARIANTS, pope_samples
from ...data.uncertainty import compare_to_baseline
from ...experiments.methods import Method
from ...experiments.runner import Experiment
from ...selection import identify_heads
from .. import paths


def pope_breakdown(records: list[dict]) -> dict[str, dict[str, float]]:
    """Accuracy, binary F1 (yes positive) and the share of "yes" answers per POPE variant."""
    by_variant: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        variant = record["sample_id"].split("-pope-")[1].split("-")[0]
        by_variant[variant].append(record)
    out = {}
    for variant in VARIANTS:
        rows = by_variant.get(variant, [])
        if not rows:
            continue
        predicted = [r["predicted"] for r in rows]
        out[variant] = {
            "n": len(rows),
            "accuracy": sum(bool(r["correct"]) for r in rows) / len(rows),
            "f1": binary_f1(predicted, [r["answer"] for r in rows]),
            "yes_ratio": sum(p == "yes" for p in predicted) / len(rows),
        }
    return out


def run_study(
    model: str | Path | None = None,
    n_test: int = 96,
    n_pope_scenes: int = 32,
    store: str | Path = "results/fac_smol.sqlite",
    batch_size: int = 8,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the study (resuming from the store) and write ``<model>/study.json`` (default model:
    the embedded fac-smol folder)."""
    model = model if model is not None else paths.fac_smol()
    exp = Experiment.open(
        model, "synthetic", store, limit=n_test, batch_size=batch_size, max_new_tokens=48, progress=progress
    )
    ratios = exp.ratios(n=32)
    mean, std = ratios.layer_trajectory()
    base = exp.base_config()
    selection = identify_heads(ratios, base.l_perc, base.l_reas, base.tau_perc, base.tau_reas)
    methods = {
        "vanilla": Method.vanilla(),
        "static": Method("static", base),
        "dynamic": Method("dynamic", base),
    }
    pope = dataclasses.replace(
        exp,
        samples=pope_samples(exp.samples[:n_pope_scenes]),
        dataset_name=f"synthetic-pope[:{n_pope_scenes}]",
    )
    result: dict[str, Any] = {
        "model": str(model),
        "n_test": len(exp.samples),
        "n_pope": len(pope.samples),
        "trajectory": {"mean": mean.tolist(), "std": std.tolist(), "n_samples": ratios.n_samples},
        "config": dataclasses.asdict(base),
        "heads": {"perception": int(selection.perception.sum()), "reasoning": int(selection.reasoning.sum())},
        "synthetic": {},
        "pope": {},
    }
    vanilla_records: dict[str, list[dict]] = {}
    for name, method in methods.items():
        summary = exp.evaluate(method)
        records = exp.store.records(summary["run_id"])
        result["synthetic"][name] = {
            k: summary[k] for k in ("accuracy", "f1", "binary_f1", "per_kind", "errors")
        } | _versus_vanilla(records, vanilla_records.setdefault("synthetic", records))
        summary = pope.evaluate(method)
        records = pope.store.records(summary["run_id"])
        result["pope"][name] = {
            "accuracy": summary["accuracy"],
            "f1": summary["binary_f1"],  # POPE's F1 is the F1 of "yes", as in pope_breakdown
            "variants": pope_breakdown(records),
        } | _versus_vanilla(records, vanilla_records.setdefault("pope", records))
    Path(model, "study.json").write_text(json.dumps(result, indent=2))
    Path(model, "README.md").write_text(card(model, result))
    return result


def _versus_vanilla(records: list[dict], vanilla: list[dict]) -> dict[str, Any]:
    """The accuracy difference to vanilla on the same samples: paired bootstrap interval, McNemar p
    (nothing for vanilla itself)."""
    if records is vanilla:
        return {}
    comparison = compare_to_baseline(records, vanilla)
    diff = comparison.accuracy
    return {"vs_vanilla": {"accuracy": [diff.value, diff.low, diff.high], "mcnemar_p": comparison.p_value}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=None, help="the fac-smol folder (default: the embedded one)")
    parser.add_argument("--test", type=int, default=96, help="test-split samples (kinds cycle)")
    parser.add_argument(
        "--pope-scenes", type=int, default=32, help="test scenes for the POPE probes (6 each)"
    )
    parser.add_argument("--store", default="results/fac_smol.sqlite")
    args = parser.parse_args(argv)
    print(json.dumps(run_study(args.model, args.test, args.pope_scenes, args.store), indent=2))


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _difference(row: dict[str, Any]) -> str:
    """``+1.0 [-2.1, +4.2] pt, p=0.5`` (percentage points), or ``-`` for vanilla."""
    if "vs_vanilla" not in row:
        return "-"
    value, low, high = (100 * v for v in row["vs_vanilla"]["accuracy"])
    return f"{value:+.1f} [{low:+.1f}, {high:+.1f}] pt, p={row['vs_vanilla']['mcnemar_p']:.2g}"


def card(folder: str | Path, study: dict[str, Any]) -> str:
    """The model card of a fac-smol folder: parts, projector training, and the study's numbers."""
    from . import sources

    folder = Path(folder)
    layout = json.loads((folder / "fac_smol.json").read_text())
    training = layout.get("training", {})
    kinds = sorted(study["synthetic"]["vanilla"]["per_kind"])
    lines = [
        "# fac-smol",
        "",
        "A `LlavaForConditionalGeneration` of two pretrained parts shipped in PyPI packages, joined by a",
        "projector trained on fac_lens's synthetic benchmark. Only the projector is in this folder;",
        "`make smol` converts the parts into the user cache and `fl.load` assembles them.",
        "",
        "## Parts",
        "",
        f"- language model: {sources.LANGUAGE.what}; `{sources.LANGUAGE.requirement}` ({sources.LANGUAGE.license}),",
        "  de-quantized to float32 (frozen)",
        f"- vision tower: {sources.VISION.what}; `{sources.VISION.requirement}` ({sources.VISION.license}),",
        f"  {layout['image_size']} px input ({(layout['image_size'] // 14) ** 2} image tokens), features of layer "
        f"{layout['vision_feature_layer']}, CLS dropped (frozen)",
        "- projector: Linear(384, 576) -> GELU -> Linear(576, 576), trained",
        "",
        "## Projector training",
        "",
        f"- {training.get('steps')} steps of batch {training.get('batch_size')} fresh train-split samples, AdamW peak lr "
        f"{training.get('lr')} (warmup, cosine to 10%), seed {training.get('seed')}, target: the "
        f"{training.get('target')} (`<think> ... </think> answer`); {training.get('seconds')} s on 2 CPU cores; "
        f"final smoothed loss {training.get('final_smoothed_loss') or 0:.3f}",
        "- command: `make train-smol`; loss curve: `training_log.csv`",
        "",
        f"## Study (`make study-smol`; {study['n_test']} test samples, {study['n_pope']} POPE probes; greedy, 48 new tokens)",
        "",
        "Layer-wise visual ratio (mean over heads, "
        + str(study["trajectory"]["n_samples"])
        + " samples): "
        + ", ".join(f"{v:.3f}" for v in study["trajectory"]["mean"]),
        "",
        f"FAC setting (calibrated on the ratio map): {study['config']}; identified heads: "
        f"{study['heads']['perception']} perception, {study['heads']['reasoning']} reasoning of 270.",
        "",
        "| method | accuracy | vs vanilla [95% CI], McNemar p | "
        + " | ".join(kinds)
        + " | POPE acc | vs vanilla | POPE F1 | "
        + " | ".join(f"{v} acc / F1 / yes" for v in VARIANTS)
        + " |",
        "|---|---|---|" + "---|" * len(kinds) + "---|---|---|" + "---|" * len(VARIANTS),
    ]
    for name, synthetic in study["synthetic"].items():
        pope = study["pope"][name]
        variants = [pope["variants"].get(v) for v in VARIANTS]
        lines.append(
            f"| {name} | {_pct(synthetic['accuracy'])} | {_difference(synthetic)} | "
            + " | ".join(_pct(synthetic["per_kind"][k]) for k in kinds)
            + f" | {_pct(pope['accuracy'])} | {_difference(pope)} | {pope['f1']:.2f} | "
            + " | ".join(
                f"{_pct(v['accuracy'])} / {v['f1']:.2f} / {_pct(v['yes_ratio'])}" if v else "-"
                for v in variants
            )
            + " |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
