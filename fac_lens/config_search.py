"""Choosing boundaries, thresholds (and gains) from data, and the perception-to-reasoning change point.

:func:`select_config` runs a coarse-to-fine pattern search over a grid: from the grid's centre it
tries a step up and down each axis, moves to any better point, and halves the steps when nothing
improves; it stops at step 1 without improvement, or at ``budget`` evaluations. Each evaluation
scores a :class:`FacConfig` on the validation samples with a function you give (higher is better:
accuracy, or a log-probability); the chosen setting is reported with its validation bootstrap
interval and, separately, its score on a test split that the search never saw.

:func:`change_point` fits a two-segment piecewise-constant model to the layer trajectory of S_v
(least squares): the first layer of the second segment is where perception gives way to reasoning.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from .config import FacConfig
from .errors import FacLensError
from .lens_model import LensModel
from .ratios import HeadRatios
from .validation import as_int

AXES = ("l_perc", "l_reas", "tau_perc", "tau_reas", "g_perc", "g_reas")
Score = Callable[[FacConfig, Any], Sequence[float]]


@dataclass(frozen=True)
class Interval:
    """A mean with its percentile-bootstrap interval over samples."""

    mean: float
    low: float
    high: float
    n: int

    def __str__(self) -> str:
        return f"{self.mean:.4g} [{self.low:.4g}, {self.high:.4g}] (n={self.n})"


@dataclass(frozen=True, eq=False)
class ConfigSearch:
    """What :func:`select_config` chose.

    Attributes:
        config: the chosen setting.
        validation: its score on the validation samples (the search's own, so optimistic).
        test: its score on the test samples (None without them): the number to report.
        history: every evaluated ``(config, validation mean)``, in order.
        grid: the axis values searched.
    """

    config: FacConfig
    validation: Interval
    test: Interval | None
    history: list[tuple[FacConfig, float]] = field(repr=False)
    grid: dict[str, list[Any]] = field(repr=False)

    @property
    def n_evaluations(self) -> int:
        return len(self.history)


def bootstrap_interval(
    values: Sequence[float], confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> Interval:
    """Mean of ``values`` and its percentile bootstrap interval (samples resampled with replacement)."""
    data = np.asarray(values, dtype=np.float64)
    if data.ndim != 1 or len(data) == 0 or not np.isfinite(data).all():
        raise FacLensError("scores must be a non-empty list of finite numbers, one per sample")
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, len(data), (n_resamples, len(data)))].mean(1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return Interval(float(data.mean()), float(low), float(high), len(data))


def default_grid(n_layers: int, ratios: HeadRatios | None, gains: bool) -> dict[str, list[Any]]:
    """Every layer for the boundaries; S_v quantiles for the thresholds; optionally gains."""
    if ratios is None:
        raise FacLensError("the default grid takes its thresholds from ratios=fl.attention_ratios(...)")
    visual = ratios.visual.flatten().double()
    grid: dict[str, list[Any]] = {
        "l_perc": list(range(n_layers)),
        "l_reas": list(range(n_layers)),
        "tau_perc": sorted({round(float(visual.quantile(q)), 4) for q in (0.5, 0.6, 0.7, 0.8, 0.9)}),
        "tau_reas": sorted({round(float(visual.quantile(q)), 4) for q in (0.1, 0.2, 0.3, 0.4, 0.5)}),
    }
    if gains:
        grid["g_perc"] = [1.0, 1.1, 1.2, 1.3, 1.4]
        grid["g_reas"] = [1.0, 1.1, 1.2, 1.3, 1.4]
    return grid


def select_config(
    model: LensModel,
    samples: Any,
    score: Score,
    test: Any = None,
    ratios: HeadRatios | None = None,
    grid: Mapping[str, Sequence[Any]] | None = None,
    base: FacConfig | None = None,
    gains: bool = False,
    budget: int = 60,
    confidence: float = 0.95,
    seed: int = 0,
    progress: bool = True,
) -> ConfigSearch:
    """Choose l_perc, l_reas, tau_perc, tau_reas (and gains) by a coarse-to-fine search.

    Args:
        model: the model (its depth bounds the boundary axes).
        samples: the validation samples, passed to ``score`` as they are.
        score: ``score(config, samples) -> per-sample scores`` (higher is better), e.g. 1/0
            correctness of answers generated under ``fl.rescale(model, config)``.
        test: held-out samples scored once with the chosen setting (never used to choose).
        ratios: recorded ratios: the default threshold axes are quantiles of their S_v.
        grid: axis name -> sorted values, overriding the defaults (any of :data:`AXES`).
        base: the fields not searched (gains, strategy, query); default g_perc=1.16, g_reas=1.30.
        gains: also search g_perc and g_reas (default grid 1.0-1.4).
        budget: the most settings evaluated (the search stops earlier when it converges).
    """
    budget = as_int("budget", budget, minimum=1)
    if not callable(score):
        raise FacLensError("score must be a function score(config, samples) -> one number per sample")
    axes = {**default_grid(model.n_layers, ratios, gains)} if grid is None or ratios is not None else {}
    for name, values in (grid or {}).items():
        if name not in AXES:
            raise FacLensError(f"unknown grid axis {name!r}; use some of {AXES}")
        values = list(values)
        if not values:
            raise FacLensError(f"grid axis {name!r} is empty")
        axes[name] = values
    missing = [a for a in AXES[:4] if a not in axes]
    if missing:
        raise FacLensError(f"the grid lacks {missing}: give them, or ratios= for the default grid")
    if base is None:
        base = FacConfig(l_perc=0, l_reas=0, tau_perc=0.0, tau_reas=0.0, g_perc=1.16, g_reas=1.30)
    index = {name: len(values) // 2 for name, values in axes.items()}
    step = {name: max(1, len(values) // 4) for name, values in axes.items()}
    cache: dict[tuple[int, ...], float] = {}
    history: list[tuple[FacConfig, float]] = []
    bar = tqdm(total=budget, desc="config search", disable=not progress)

    def config_at(point: dict[str, int]) -> FacConfig:
        config = base.replace(**{name: axes[name][i] for name, i in point.items()})
        config.check_model(model.n_layers)
        return config

    def evaluate(point: dict[str, int]) -> float | None:
        key = tuple(point[name] for name in axes)
        if key not in cache:
            if len(history) >= budget:
                return None
            config = config_at(point)
            cache[key] = float(np.mean(np.asarray(score(config, samples), dtype=np.float64)))
            history.append((config, cache[key]))
            bar.update(1)
        return cache[key]

    best = evaluate(index)
    while len(history) < budget:
        improved = False
        for name in axes:
            for direction in (-1, 1):
                moved = index[name] + direction * step[name]
                if not 0 <= moved < len(axes[name]):
                    continue
                value = evaluate({**index, name: moved})
                if value is not None and value > best:
                    best, index, improved = value, {**index, name: moved}, True
                    break
        if not improved:
            if all(s == 1 for s in step.values()):
                break
            step = {name: max(1, s // 2) for name, s in step.items()}
    bar.close()
    chosen = config_at(index)
    validation = bootstrap_interval(score(chosen, samples), confidence, seed=seed)
    tested = None if test is None else bootstrap_interval(score(chosen, test), confidence, seed=seed)
    return ConfigSearch(chosen, validation, tested, history, {k: list(v) for k, v in axes.items()})


@dataclass(frozen=True)
class ChangePoint:
    """The layer where the S_v trajectory changes level (first layer of the second segment).

    Attributes:
        layer: the change point; suggests ``l_perc = layer - 1``, ``l_reas = layer``.
        interval: (low, high) percentile-bootstrap interval of the layer over samples.
        before, after: mean trajectory level of the two segments.
    """

    layer: int
    interval: tuple[int, int]
    before: float
    after: float


def best_split(trajectory: np.ndarray) -> int:
    """The k in [1, L-1] minimising the squared error of the two-segment mean fit of ``trajectory``."""
    values = np.asarray(trajectory, dtype=np.float64)
    costs = [
        ((values[:k] - values[:k].mean()) ** 2).sum() + ((values[k:] - values[k:].mean()) ** 2).sum()
        for k in range(1, len(values))
    ]
    return 1 + int(np.argmin(costs))


def change_point(
    ratios: HeadRatios, confidence: float = 0.95, n_resamples: int = 1000, seed: int = 0
) -> ChangePoint:
    """Perception-to-reasoning transition from the layer trajectory of S_v (head mean per layer).

    The interval resamples samples with replacement and refits.
    """
    if not isinstance(ratios, HeadRatios):
        raise FacLensError(
            f"change_point needs HeadRatios (fl.attention_ratios), got {type(ratios).__name__}"
        )
    if ratios.n_layers < 2:
        raise FacLensError("a change point needs at least two layers")
    per_sample = ratios.per_sample.mean(-1).double().numpy()  # [S, L]
    layer = best_split(per_sample.mean(0))
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(per_sample), (n_resamples, len(per_sample)))
    layers = np.array([best_split(per_sample[d].mean(0)) for d in draws])
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(layers, [tail, 100 - tail], method="nearest")
    mean = per_sample.mean(0)
    return ChangePoint(layer, (int(low), int(high)), float(mean[:layer].mean()), float(mean[layer:].mean()))
