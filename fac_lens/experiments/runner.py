"""One experiment context (model + dataset + store) and the jobs the command line runs on it:
evaluation, sweeps, the ratio map, and regenerating every figure and table from the store.

    exp = Experiment.open("fac-tiny", "synthetic", store="results/fac_lens.sqlite", limit=32)
    exp.evaluate(Method("dynamic", exp.base_config()))
    exp.figures("figures/")
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..calibration import calibrated_config
from ..config import FacConfig
from ..data.datasets import SYNTHETIC, load_samples, split_text_only
from ..data.sample import Sample
from ..errors import FacLensError
from ..lens_model import LensModel
from ..ratios import HeadRatios
from ..validation import as_int
from .calibration_split import (
    DEFAULT_SIZE,
    CalibrationSplit,
    hold_out,
    load_calibration,
    synthetic_validation,
)
from .distributed import Shard
from .fingerprint import model_fingerprint
from .methods import Method
from .store import ResultStore
from .sweeps import GRIDS, Setting, ablation_grid, grid, reference_ratios, run_sweep
from .timing import TimingResult, benchmark

DEFAULT_MODEL = "fac-tiny"


def model_label(source: str | Path) -> str:
    """A short model name for the store: the folder name of a local path, else the hub id."""
    path = Path(str(source))
    return path.name if path.exists() else str(source)


# the least value of each count option of Experiment.open (None: the option may be left out)
MINIMA = {
    "limit": 1,
    "calibration_n": 1,
    "batch_size": 1,
    "max_new_tokens": 1,
    "timing_repeats": 0,
    "timing_batches": 1,
}


def _check_counts(**options: Any) -> None:
    """Counts are ints (numpy and 0-d tensors too) at or above their minimum: checked before the
    model, the data or the store is opened, so a refused call leaves nothing behind."""
    for name, minimum in MINIMA.items():
        if options.get(name) is not None:
            as_int(name, options[name], minimum=minimum)


@dataclass
class Experiment:
    """A loaded model, a dataset subset and a results store; caches the reference ratio map, which
    is recorded on ``calibration``, a split disjoint from ``samples`` (:mod:`.calibration_split`)."""

    model: LensModel
    model_name: str
    samples: list[Sample]
    dataset_name: str
    store: ResultStore
    batch_size: int = 16
    max_new_tokens: int = 64
    seed: int = 0
    shard: Shard = field(default_factory=Shard)
    progress: bool = True
    preset: str | None = None
    weights: str | None = None  # the model's files' fingerprint, or a hub id's revision (.fingerprint)
    n_skipped: int = 0  # text-only samples left out (no image): see split_text_only
    calibration: CalibrationSplit | None = None
    timing_repeats: int = 7  # interleaved repeats of the timing behind Table 4 and Fig. 3 (0: none)
    timing_batches: int = 2  # batches of the evaluation samples each repeat times
    baselines: tuple = ()  # fac_lens.baselines methods the ablation grid and the timing include
    _ratios: HeadRatios | None = None

    @classmethod
    def open(
        cls,
        model: str | Path = DEFAULT_MODEL,
        dataset: str = "synthetic",
        store: str | Path = "results/fac_lens.sqlite",
        data_root: str | Path | None = None,
        limit: int | None = None,
        device: str = "cpu",
        shard: Shard | None = None,
        calibration: str | Path | None = None,
        calibration_n: int = DEFAULT_SIZE,
        **options: Any,
    ) -> Experiment:
        """Load the model, the samples and the calibration split, and open the store (in that order
        of checks: a bad dataset or model path fails before the store is touched). Text-only samples
        (no image) are left out of both and counted in ``n_skipped``.

        Args:
            calibration: a file or folder of a separate split of ``dataset`` to record the reference
                ratio map on (its first ``calibration_n`` samples). Default: the synthetic
                validation split for the synthetic datasets; for the other benchmarks the
                ``calibration_n`` samples after the evaluated ones are held out (without ``limit``
                every sample but the last ``calibration_n`` is evaluated).
        """
        from ..loading import load
        from ..model_sources import resolve

        _check_counts(limit=limit, calibration_n=calibration_n, **options)
        shard = shard or Shard()
        key = dataset.lower()
        suffix = f"[:{limit}]" if limit else ""
        if calibration is not None:
            samples = load_samples(dataset, data_root, limit)
            split = load_calibration(dataset, calibration, calibration_n)
        elif key in SYNTHETIC:
            samples = load_samples(dataset, data_root, limit)
            split = synthetic_validation(key, calibration_n)
        else:
            wanted = None if limit is None else limit + calibration_n
            samples, split = hold_out(load_samples(dataset, data_root, wanted), limit, calibration_n, key)
            suffix = f"[:{len(samples)}]"
        samples, text_only = split_text_only(samples)
        if not samples:
            raise FacLensError(
                f"all {len(text_only)} samples of {dataset!r} are text-only (no image): FAC needs an "
                "image per sample; use a dataset (or --limit) that includes image questions"
            )
        split = CalibrationSplit(split.name, tuple(split_text_only(split.samples)[0]))
        split.check_disjoint(samples)
        model = resolve(str(model))  # an embedded model's name -> its folder
        lens = load(model, device=shard.device(device))
        weights = model_fingerprint(model)
        if weights is None:
            raise FacLensError(
                f"cannot tell which weights {str(model)!r} holds (no files in the folder, or no "
                "snapshot of this hub id in the local HF cache), so its results could not be told "
                "apart from another model's: pass the checkpoint folder (e.g. the snapshot folder)"
            )
        return cls(
            lens,
            model_label(model),
            samples,
            f"{dataset.lower()}{suffix}",
            ResultStore(store),
            shard=shard,
            weights=weights,
            n_skipped=len(text_only),
            calibration=split,
            **options,
        )

    def ratios(self, n: int | None = None) -> HeadRatios:
        """The reference ratio map, recorded once on the calibration split (its first ``n`` samples
        when given; the runs then record that part) and kept in the store."""
        if self._ratios is None:
            if self.calibration is None:
                raise FacLensError(
                    "this Experiment has no calibration split to record the reference ratio map on: "
                    "open it with Experiment.open(...), or pass calibration=CalibrationSplit(...) "
                    "with samples disjoint from the evaluated ones"
                )
            if n is not None:
                self.calibration = self.calibration.first(n)
            self.calibration.check_disjoint(self.samples)
            self._ratios = reference_ratios(
                self.model,
                list(self.calibration.samples),
                self.store,
                self.model_name,
                self.dataset_name,
                n=len(self.calibration.samples),
                progress=self.progress,
                weights=self.weights,
            )
        return self._ratios

    def base_config(self, **overrides: Any) -> FacConfig:
        """The FAC setting grids vary around: the paper's preset when one is named, else one
        calibrated on this model's ratio map (:func:`calibrated_config`); ``overrides`` win."""
        overrides = {k: v for k, v in overrides.items() if v is not None}
        if self.preset:
            return FacConfig.preset(self.preset, **overrides)
        if set(FacConfig.field_names(required=True)) <= set(overrides):
            return FacConfig(**{"g_perc": 1.16, "g_reas": 1.30, **overrides})
        boundaries = {k: overrides.pop(k) for k in ("l_perc", "l_reas") if k in overrides}
        config = calibrated_config(self.ratios(), **boundaries)
        return config.replace(**overrides) if overrides else config

    def sweep(self, settings: Sequence[Setting], include_vanilla: bool = True) -> list[str]:
        """Run settings (and vanilla) into the store; resumes where a previous run stopped."""
        settings = list(settings)
        if include_vanilla:
            settings = [Setting("vanilla", Method.vanilla()), *settings]
        ratios = self.ratios()  # static gains and the head counts of every setting
        return run_sweep(
            self.model,
            self.samples,
            settings,
            self.store,
            self.model_name,
            self.dataset_name,
            ratios=ratios,
            batch_size=self.batch_size,
            max_new_tokens=self.max_new_tokens,
            seed=self.seed,
            rank=self.shard.rank,
            world=self.shard.world,
            progress=self.progress,
            barrier=self.shard.barrier,
            weights=self.weights,
            n_skipped=self.n_skipped,
            calibration=self.calibration,
        )

    def grid(self, name: str, base: FacConfig, mode: str = "dynamic", **values: Any) -> list[Setting]:
        ratios = self.ratios() if name == "thresholds" and not values.get("tau_percs") else None
        return grid(name, base, self.model.n_layers, mode, ratios, tuple(self.baselines), **values)

    def evaluate(self, method: Method) -> dict[str, Any]:
        """Evaluate one method (and nothing else); returns its summary row as a dict."""
        (run_id,) = self.sweep([Setting("eval", method)], include_vanilla=False)
        return self.summary(run_id)

    def summary(self, run_id: str) -> dict[str, Any]:
        row = self.store.summaries()
        row = row[row["run_id"] == run_id]
        if row.empty:
            raise FacLensError(f"run {run_id} has no summary yet: it is missing samples (rerun to resume)")
        return json.loads(row.iloc[0].to_json())

    def summaries(self):
        """This model and dataset's summary rows (a pandas DataFrame)."""
        return self.store.summaries(model=self.model_name, dataset=self.dataset_name)

    def timing(
        self, base: FacConfig | None = None, mode: str = "dynamic", repeats: int | None = None
    ) -> TimingResult:
        """Time the methods of the ablation grid at ``base`` (vanilla, the full method, each class
        alone, strategies B-D, the other mode) with :func:`.timing.benchmark`: warm-up, then
        ``repeats`` interleaved rounds over the first ``timing_batches`` batches, vanilla twice."""
        from .tables import method_label

        base = base or self.base_config()
        methods = {"vanilla": Method.vanilla()}
        for setting in ablation_grid(base, mode, tuple(self.baselines)):
            method = setting.method
            strategy = method.config.strategy if method.config is not None else None
            methods[method_label(method.name, strategy)] = method
        return benchmark(
            self.model,
            self.samples,
            methods,
            self.ratios(),
            batch_size=self.batch_size,
            n_batches=self.timing_batches,
            max_new_tokens=self.max_new_tokens,
            repeats=self.timing_repeats if repeats is None else repeats,
            seed=self.seed,
            progress=self.progress,
        )

    def figures(
        self,
        out: str | Path = "figures",
        grids: Sequence[str] = GRIDS,
        mode: str = "dynamic",
        base: FacConfig | None = None,
        axes: dict[str, Any] | None = None,
    ) -> list[Path]:
        """Run whatever the figures need that the store lacks, time the methods (:meth:`timing`, for
        Table 4 and Fig. 3; skipped when ``timing_repeats`` is 0), then write every figure and table."""
        from .figure_suite import write_all

        base = base or self.base_config()
        members = {name: self.sweep(self.grid(name, base, mode, **(axes or {}))) for name in grids}
        self.shard.barrier()
        if self.shard.rank != 0:
            return []
        timing = self.timing(base, mode) if "ablation" in grids and self.timing_repeats > 0 else None
        return write_all(self, base, Path(out), members, timing)
