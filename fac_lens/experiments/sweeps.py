"""Sweeps: grids of FAC settings (boundaries, gains, thresholds, ablations) run into a results store.

The unit of work is one (setting, batch of samples) pair. Units are listed in a fixed order, so a
run split over processes (``rank``/``world``: each takes every ``world``-th unit) or restarted
after a crash computes exactly the same batches; a batch's records are written in one transaction
and skipped when already stored. What does not change between settings is computed once: the
ratio map (stored as an array), the vanilla run (one run id shared by every sweep), and the
outputs of static settings whose gains coincide (copied, not regenerated).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import product
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ..baselines import Baseline
from ..config import FacConfig
from ..data.datasets import split_text_only
from ..data.sample import Sample
from ..errors import FacLensError
from ..lens_model import LensModel
from ..ratios import HeadRatios, attention_ratios
from .calibration_split import CalibrationSplit
from .fingerprint import code_digest, samples_digest
from .harness import chunks, run_batch, summarize
from .methods import Method
from .store import ResultStore, code_version

GRIDS = ("boundary", "gains", "thresholds", "ablation")
DEFAULT_GAINS = ((1.0, 1.08, 1.16, 1.24, 1.32), (1.1, 1.3, 1.5))
DEFAULT_THRESHOLD_QUANTILES = ((0.5, 0.75, 0.9), (0.1, 0.25, 0.5))


@dataclass(frozen=True)
class Setting:
    """One point of a sweep: its label (``"boundary"``, ``"gains"``, ...) and its method."""

    sweep: str
    method: Method


def boundary_grid(
    base: FacConfig,
    n_layers: int,
    mode: str = "dynamic",
    l_percs: Sequence[int] | None = None,
    l_reass: Sequence[int] | None = None,
) -> list[Setting]:
    """Fig. 4: every (l_perc, l_reas) pair (all layers by default), other settings from ``base``."""
    l_percs = range(n_layers) if l_percs is None else l_percs
    l_reass = range(n_layers) if l_reass is None else l_reass
    return [
        Setting("boundary", Method(mode, base.replace(l_perc=int(p), l_reas=int(r))))
        for p, r in product(l_percs, l_reass)
    ]


def gain_grid(
    base: FacConfig,
    mode: str = "dynamic",
    g_percs: Sequence[float | Sequence[float]] = DEFAULT_GAINS[0],
    g_reass: Sequence[float | Sequence[float]] = DEFAULT_GAINS[1],
) -> list[Setting]:
    """Fig. 5 left: every (g_perc, g_reas) pair at ``base``'s boundaries and thresholds."""
    return [
        Setting("gains", Method(mode, base.replace(g_perc=_gain(p), g_reas=_gain(r))))
        for p, r in product(g_percs, g_reass)
    ]


def threshold_grid(
    base: FacConfig,
    mode: str = "dynamic",
    tau_percs: Sequence[float] | None = None,
    tau_reass: Sequence[float] | None = None,
    ratios: HeadRatios | None = None,
) -> list[Setting]:
    """Fig. 5 middle/right: every (tau_perc, tau_reas) pair. Without explicit values, quantiles of
    S_v in each band of ``ratios`` (:data:`DEFAULT_THRESHOLD_QUANTILES`), so the grid fits any model."""
    if tau_percs is None or tau_reass is None:
        if ratios is None:
            raise FacLensError("threshold_grid needs tau values or a ratio map to take quantiles from")
        visual = ratios.visual
        perc_band, reas_band = visual[: base.l_perc + 1], visual[base.l_reas :]
        tau_percs = tau_percs or [
            round(float(perc_band.quantile(q)), 3) for q in DEFAULT_THRESHOLD_QUANTILES[0]
        ]
        tau_reass = tau_reass or [
            round(float(reas_band.quantile(q)), 3) for q in DEFAULT_THRESHOLD_QUANTILES[1]
        ]
    return [
        Setting("thresholds", Method(mode, base.replace(tau_perc=float(p), tau_reas=float(r))))
        for p, r in product(dict.fromkeys(tau_percs), dict.fromkeys(tau_reass))
    ]


def ablation_grid(
    base: FacConfig, mode: str = "dynamic", baselines: Sequence[Baseline] = ()
) -> list[Setting]:
    """Table 2 and Appendix B: the full method, each class alone, and strategies B-D; then the
    ``baselines`` the paper compares with (Table 1, Table 4, Fig. 3)."""
    configs = [
        base,
        base.replace(target="perception"),
        base.replace(target="reasoning"),
        *(base.replace(strategy=s) for s in ("B", "C", "D")),
    ]
    settings = [Setting("ablation", Method(mode, c)) for c in configs]
    other = "static" if mode == "dynamic" else "dynamic"
    return [
        *settings,
        Setting("ablation", Method(other, base)),
        *(Setting("ablation", Method.of(b)) for b in baselines),
    ]


def grid(
    name: str,
    base: FacConfig,
    n_layers: int,
    mode: str = "dynamic",
    ratios: HeadRatios | None = None,
    baselines: Sequence[Baseline] = (),
    **values: Any,
) -> list[Setting]:
    """The settings of one named grid (:data:`GRIDS`); ``values`` override its default axes
    (None keeps the default; an empty list is an error, not an empty sweep); ``baselines`` join
    the ablation grid."""
    if name not in GRIDS:
        raise FacLensError(f"unknown grid {name!r}; use one of {GRIDS}")
    for axis, value in values.items():
        if value is not None and len(value) == 0:
            raise FacLensError(
                f"the {axis} axis of the {name} grid is empty: give at least one value or leave it out"
            )
    if name == "boundary":
        return boundary_grid(base, n_layers, mode, values.get("l_percs"), values.get("l_reass"))
    if name == "gains":
        g_percs, g_reass = values.get("g_percs"), values.get("g_reass")
        return gain_grid(base, mode, g_percs or DEFAULT_GAINS[0], g_reass or DEFAULT_GAINS[1])
    if name == "thresholds":
        return threshold_grid(base, mode, values.get("tau_percs"), values.get("tau_reass"), ratios)
    return ablation_grid(base, mode, baselines)


def reference_ratios(
    model: LensModel,
    samples: Sequence[Sample],
    store: ResultStore | None = None,
    model_name: str = "",
    dataset_name: str = "",
    n: int = 32,
    query: str = "all",
    progress: bool = True,
    weights: str | None = None,
) -> HeadRatios:
    """The ratio map static methods and threshold grids are calibrated on: S_v of the first ``n``
    of ``samples`` (pass a calibration split, :mod:`.calibration_split`, never the evaluated
    samples). Stored as an array (kind ``"ratios_per_sample"``, named with the sha256 of those
    samples' content and of the code, :func:`.fingerprint.code_digest`) and reused when already
    there (``weights``: the model's fingerprint, so a retrained model records its own)."""
    if not samples:
        raise FacLensError("no samples to record a ratio map on: check the dataset and --limit")
    calibration = samples[:n]
    digest = samples_digest(calibration)[:16]
    name = f"ratios:{model_name}:{dataset_name}:{query}:{len(calibration)}:{digest}:{code_digest()}"
    if weights:
        name += f":{weights}"
    if store is not None and any(a["name"] == name for a in store.arrays(kind="ratios_per_sample")):
        value, meta = store.get_array(name)
        return HeadRatios(torch.from_numpy(np.asarray(value)), meta.get("query", query))
    ratios = attention_ratios(
        model, [model.prepare(s.image, s.prompt()) for s in calibration], query=query, progress=progress
    )
    if store is not None:
        store.put_array(
            name,
            ratios.per_sample.numpy(),
            kind="ratios_per_sample",
            model=model_name,
            dataset=dataset_name,
            meta={
                "query": ratios.query,
                "n_samples": ratios.n_samples,
                "sample_ids": [s.id for s in calibration],
            },
        )
    return ratios


def _reuse_key(method: Method, ratios: HeadRatios | None) -> bytes | None:
    """Settings with equal keys produce equal outputs: vanilla and static settings whose gains
    coincide (identity gains are vanilla). Dynamic settings are never shared."""
    if method.mode == "none":
        return b"identity"
    if method.mode == "static" and ratios is not None:
        gains = method.intervention(ratios)
        return b"identity" if gains.is_identity else gains.values.numpy().tobytes()
    return None


def run_sweep(
    model: LensModel,
    samples: Sequence[Sample],
    settings: Sequence[Setting],
    store: ResultStore,
    model_name: str,
    dataset_name: str,
    ratios: HeadRatios | None = None,
    batch_size: int = 16,
    max_new_tokens: int = 64,
    seed: int = 0,
    rank: int = 0,
    world: int = 1,
    progress: bool = True,
    barrier: Any = None,
    weights: str | None = None,
    n_skipped: int = 0,
    calibration: CalibrationSplit | None = None,
) -> list[str]:
    """Run ``settings`` on ``samples`` into ``store``, skipping what is stored; returns run ids.

    Args:
        calibration: the split ``ratios`` was recorded on: checked disjoint from ``samples`` and
            recorded in every FAC run's generation settings (``"calibration"``: name, size, sha256
            of the ids), so it is part of the run id. Vanilla runs use no calibration.
        rank, world: this process takes units ``rank, rank + world, ...`` (data parallelism).
        barrier: called after this rank's units, before summaries are written (distributed runs).
        weights: the model's fingerprint (:func:`.fingerprint.model_fingerprint`); part of every
            run id, so results of other weights under the same model name are never reused. The
            samples' content (:func:`.fingerprint.samples_digest`, ``"data_sha256"``) is too, so
            another copy of a dataset whose sample ids coincide is another run.
        n_skipped: samples the caller left out already (text-only ones); text-only samples in
            ``samples`` are left out here too, and every summary records how many in all.
    """
    samples, text_only = split_text_only(samples)
    n_skipped += len(text_only)
    if not settings:
        raise FacLensError("the sweep has no settings: give at least one value on every grid axis")
    if not samples:
        raise FacLensError(
            f"the sweep has no samples ({len(text_only)} text-only ones left out): "
            "check the dataset path and --limit"
        )
    for setting in settings:  # every error before anything is written
        setting.method.check_model(model.n_layers)
        if setting.method.mode == "static" and ratios is None:
            raise FacLensError("static settings need a ratio map: pass ratios=reference_ratios(...)")
    if calibration is not None:
        calibration.check_disjoint(samples)
    generation = {
        "max_new_tokens": max_new_tokens,
        "batch_size": batch_size,
        "seed": seed,
        "data_sha256": samples_digest(samples),
        "code_sha256": code_digest(),
    }
    if weights:
        generation["model_weights"] = weights
    calibrated = (
        {**generation, "calibration": calibration.record()} if calibration is not None else generation
    )
    version = code_version()
    run_ids = [
        store.ensure_run(
            model=model_name,
            dataset=dataset_name,
            sweep=s.sweep,
            method=s.method.to_dict(ratios),
            generation=generation if s.method.config is None else calibrated,
            code_version=version,
        )
        for s in settings
    ]
    batches = chunks(samples, batch_size)
    units = [(i, j) for i in _unique_runs(run_ids) for j in range(len(batches))]
    first_with_key: dict[bytes, int] = {}
    keys = [_reuse_key(s.method, ratios) for s in settings]
    for i, key in enumerate(keys):
        if key is not None:
            first_with_key.setdefault(key, i)
    done: dict[str, set[str]] = {}
    warm = False
    for i, j in tqdm(units[rank::world], desc=f"sweep (rank {rank}/{world})", disable=not progress):
        run_id = run_ids[i]
        if run_id not in done:
            done[run_id] = store.done_sample_ids(run_id)
        if all(s.id in done[run_id] for s in batches[j]):
            continue
        records = _reused(store, run_ids, first_with_key, keys[i], i, batches[j])
        if records is None:
            if not warm:  # one untimed batch first, so that the first timed one pays no start-up cost
                run_batch(model, batches[j][:1], Method.vanilla(), None, 2, seed)
                warm = True
            records = run_batch(model, batches[j], settings[i].method, ratios, max_new_tokens, seed)
        store.add_records([{**r, "run_id": run_id, "code_version": version} for r in records])
        done[run_id].update(s.id for s in batches[j])
    if barrier is not None:
        barrier()
    if rank == 0:
        write_summaries(store, dict.fromkeys(run_ids), [s.id for s in samples], n_skipped)
    return run_ids


def _unique_runs(run_ids: Sequence[str]) -> list[int]:
    """Index of the first setting of each distinct run id (two settings may be the same run)."""
    first: dict[str, int] = {}
    for i, run_id in enumerate(run_ids):
        first.setdefault(run_id, i)
    return list(first.values())


def _reused(
    store: ResultStore,
    run_ids: Sequence[str],
    first_with_key: dict[bytes, int],
    key: bytes | None,
    index: int,
    batch: Sequence[Sample],
) -> list[dict[str, Any]] | None:
    """The stored records of an equivalent earlier setting for this batch, if all are there."""
    if key is None or first_with_key[key] == index:
        return None
    source = run_ids[first_with_key[key]]
    wanted = {s.id for s in batch}
    stored = [r for r in store.records(source) if r["sample_id"] in wanted]
    if len(stored) != len(wanted):
        return None
    return [{k: v for k, v in r.items() if k not in ("run_id", "code_version")} for r in stored]


def write_summaries(
    store: ResultStore, run_ids: Sequence[str], sample_ids: Sequence[str], n_skipped: int = 0
) -> int:
    """Summarise every run that has all ``sample_ids`` (``n_skipped``: samples left out before);
    returns how many were written."""
    wanted = set(sample_ids)
    written = 0
    for run_id in run_ids:
        records = [r for r in store.records(run_id) if r["sample_id"] in wanted]
        if len(records) == len(wanted):
            store.set_summary(run_id, summarize(records, n_skipped))
            written += 1
    return written


def _gain(value: Any) -> float | tuple[float, ...]:
    """A grid value: one gain (as a float) or one gain per layer (a sequence, kept)."""
    return tuple(float(v) for v in value) if isinstance(value, (list, tuple)) else float(value)
