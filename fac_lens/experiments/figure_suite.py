"""Write every figure and table of the paper that the store holds results for, into one folder.

Each figure is drawn by a pure function of stored results (:mod:`.figures`, :mod:`.tables`); this
module only reads the store, adds the one case study the contribution-map figure needs, and saves.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config import FacConfig
from ..errors import FacLensError
from ..selection import identify_heads
from .fingerprint import code_digest, samples_digest

if TYPE_CHECKING:
    from .runner import Experiment
    from .timing import TimingResult


def _save(fig: Any, path: Path, written: list[Path]) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")  # legends outside the Axes included
    plt.close(fig)
    written.append(path)


def _single(draw, path: Path, written: list[Path], size=(6, 4.5)) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=size)
    draw(ax)
    _save(fig, path, written)


def case_arrays(
    exp: Experiment, config: FacConfig, run_ids: set[str] | None = None
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Contribution maps before/after of the first sample vanilla got wrong (stored and reused);
    ``run_ids`` restricts the vanilla run looked up to this sweep's runs."""
    from ..case_study import case_study
    from .methods import Method

    digest = hashlib.sha256(json.dumps(asdict(config), sort_keys=True).encode()).hexdigest()[:12]
    data = samples_digest(exp.samples)[:16]
    name = f"contribution:{exp.model_name}:{exp.dataset_name}:{digest}:{data}:{code_digest()}"
    if exp.weights:
        name += f":{exp.weights}"
    known = {a["name"] for a in exp.store.arrays(kind="contribution")}
    if f"{name}:before" in known and f"{name}:after" in known:
        before, meta = exp.store.get_array(f"{name}:before")
        after, _ = exp.store.get_array(f"{name}:after")
        return before, after, meta
    vanilla = exp.store.summaries(model=exp.model_name, dataset=exp.dataset_name)
    vanilla = vanilla[vanilla["name"] == "vanilla"]
    if run_ids is not None:
        vanilla = vanilla[vanilla["run_id"].isin(run_ids)]
    if vanilla.empty:
        raise FacLensError("no vanilla run stored for this model and dataset: run `fac-lens sweep` first")
    records = exp.store.records(vanilla.iloc[0]["run_id"])
    failing = [r["sample_id"] for r in records if not r["correct"]] or [records[0]["sample_id"]]
    sample = next(s for s in exp.samples if s.id == failing[0])
    case = case_study(exp.model, sample.image, sample.prompt(), config)
    meta = {
        "sample_id": sample.id,
        "target": case.answer_token,
        "method": Method("dynamic", config).to_dict(),
    }
    meta.update(case.to_dict())
    for label, cmap in (("before", case.before), ("after", case.after)):
        exp.store.put_array(
            f"{name}:{label}",
            cmap.signed.numpy(),
            kind="contribution",
            model=exp.model_name,
            dataset=exp.dataset_name,
            meta={**meta, "label": label},
        )
    return case.before.signed.numpy(), case.after.signed.numpy(), meta


def by_sweep(summaries: Any, members: dict[str, list[str]]) -> Any:
    """Summary rows relabelled by the grid they were run for. A run shared by several grids (the
    base setting, vanilla) is stored once with the label of the first; here it appears in each."""
    import pandas as pd

    parts = [summaries[summaries["run_id"].isin(ids)].assign(sweep=name) for name, ids in members.items()]
    return pd.concat(parts, ignore_index=True) if parts else summaries.iloc[:0]


def write_all(
    exp: Experiment,
    base: FacConfig,
    out: Path,
    members: dict[str, list[str]],
    timing: TimingResult | None = None,
) -> list[Path]:
    """Write the figures (PNG) and tables (Markdown and LaTeX) for ``exp``'s model and dataset.

    Drawn in seaborn's whitegrid theme inside ``plt.rc_context``: the caller's backend (a notebook's
    inline backend, say) and rcParams are left as they were.

    Args:
        members: run ids of each grid that was run (from :meth:`Experiment.sweep`).
        timing: the methods' timing (:meth:`Experiment.timing`): Table 4 and the times of Fig. 3,
            its raw measurements saved as ``timing_<tag>.csv``. Without it there is no Table 4 and
            Fig. 3 uses the sweep's per-run times.
    """
    import matplotlib.pyplot as plt

    from ..plotting import theme

    with plt.rc_context(theme("whitegrid")):
        return _write_all(exp, base, out, members, timing)


def _write_all(
    exp: Experiment,
    base: FacConfig,
    out: Path,
    members: dict[str, list[str]],
    timing: TimingResult | None = None,
) -> list[Path]:
    from ..plotting import contribution_before_after
    from . import figures, tables

    out.mkdir(parents=True, exist_ok=True)
    tag = f"{exp.model_name}_{exp.dataset_name}".replace("/", "-").replace("[:", "-").replace("]", "")
    summaries = by_sweep(exp.summaries(), members)
    written: list[Path] = []
    sweeps = set(summaries["sweep"])
    # Fig. 3 and the tables compare methods at the base setting: the ablation grid (with vanilla)
    methods = summaries[summaries["sweep"] == "ablation"]
    if "ablation" in sweeps:
        _single(
            lambda ax: figures.efficiency_scatter(methods, ax=ax, timing=timing),
            out / f"fig3_efficiency_{tag}.png",
            written,
            size=(10, 4.5),
        )
    if "boundary" in sweeps:
        fig4 = figures.boundary_heatmaps(summaries, records=exp.store.records)
        _save(fig4, out / f"fig4_boundary_{tag}.png", written)
    if {"gains", "thresholds"} <= sweeps:
        fig5 = figures.figure5(summaries, records=exp.store.records)
        _save(fig5, out / f"fig5_gains_thresholds_{tag}.png", written)
    ratios = exp.ratios()
    per_sample = ratios.per_sample.numpy()
    _single(
        lambda ax: figures.ratio_trajectory(per_sample, base.l_perc, base.l_reas, ax=ax),
        out / f"ratio_trajectory_{tag}.png",
        written,
    )
    selection = identify_heads(ratios, base.l_perc, base.l_reas, base.tau_perc, base.tau_reas)
    _single(
        lambda ax: figures.head_class_map(
            per_sample.mean(0), selection.perception.numpy(), selection.reasoning.numpy(), ax=ax
        ),
        out / f"head_classes_{tag}.png",
        written,
    )
    before, after, meta = case_arrays(exp, base, {i for ids in members.values() for i in ids})
    title = f"{meta['sample_id']}: contribution to {meta['target']!r}"
    _save(
        contribution_before_after(before, after, title=title),
        out / f"contribution_{tag}.png",
        written,
    )
    if timing is not None:
        path = out / f"timing_{tag}.csv"
        timing.measurements.to_csv(path, index=False)
        written.append(path)
    records = exp.store.records  # tables 1-2 show the difference to vanilla with its uncertainty
    for name, make in (
        ("table1", lambda df: tables.table_text(tables.table1(df, _table1_methods(df), records=records))),
        ("table2", lambda df: tables.table_text(tables.table2(df, records=records))),
        ("table4", lambda _: tables.table4(timing)),
    ):
        try:
            table = make(methods)
        except FacLensError:
            continue  # the sweep (or timing) behind this table was not run
        notes = tables.baseline_notes(methods) if name in ("table1", "table4") else []
        for suffix, render in ((".md", tables.to_markdown), (".tex", tables.to_latex)):
            path = out / f"{name}_{tag}{suffix}"
            text = render(table) + "\n"
            if notes and suffix == ".md":
                text += "\nBaseline settings (their official code's defaults unless changed):\n\n"
                text += "".join(f"- {line}\n" for line in notes)
            path.write_text(text)
            written.append(path)
    return written


def _table1_methods(summaries: Any) -> list[str]:
    """Table 1's rows: vanilla, the full method, then the baselines that were run."""
    from ..baselines import BASELINE_NAMES

    names = set(summaries["name"]) if "name" in summaries else set()
    return ["vanilla", "dynamic", *(b for b in BASELINE_NAMES if b in names)]
