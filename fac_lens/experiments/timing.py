"""Timing of methods as a benchmark (Table 4, Fig. 3): the per-run times of a sweep measure trace
length, run order and warm-up, not what a method costs.

:func:`benchmark` warms every method up, then times each method on the same batches, interleaved:
per repeat and batch every method runs once, in an order rotated by one per repeat (A, B, C; B, C, A;
C, A, B; ...). Each call is seeded (``torch.manual_seed``) and timed with ``time.perf_counter``;
the generated tokens are counted up to each sample's first EOS (padding is not generated). Vanilla is
timed a second time as its own method (:data:`NOISE_FLOOR`): its "overhead" over vanilla is what
noise looks like, shown next to the others.

    result = benchmark(model, samples, {"vanilla": Method.vanilla(), "dynamic": Method("dynamic", c)})
    result.summary()          # per method: seconds per batch and per token, overhead %, median + IQR
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ..data.sample import Sample
from ..errors import FacLensError
from ..generation import generate
from ..lens_model import LensModel
from ..ratios import HeadRatios
from .harness import chunks
from .methods import Method
from .passes import eos_token_ids, generated_lengths

#: Label of vanilla timed a second time: its overhead over vanilla is the noise floor.
NOISE_FLOOR = "vanilla (again)"
BASELINE = "vanilla"
#: The columns of :meth:`TimingResult.summary` besides ``method``: each a median over repeats, with
#: its interquartile range as ``<name>_q25`` / ``<name>_q75``.
STATISTICS = ("seconds_per_batch", "seconds_per_token", "overhead_batch_pct", "overhead_token_pct")


def schedule(labels: Sequence[str], repeats: int, n_batches: int) -> list[tuple[int, int, str]]:
    """The run order: ``(repeat, batch, label)`` for every repeat, batch and method, the methods of
    repeat ``r`` in the order ``labels`` rotated left by ``r``."""
    k = len(labels)
    return [(r, b, labels[(r + i) % k]) for r in range(repeats) for b in range(n_batches) for i in range(k)]


def _quartiles(values: np.ndarray) -> tuple[float, float, float]:
    """(median, 25th, 75th percentile), linear interpolation (numpy's default)."""
    q25, median, q75 = np.percentile(values, [25, 50, 75])
    return float(median), float(q25), float(q75)


@dataclass(frozen=True, eq=False)
class TimingResult:
    """The measurements of :func:`benchmark`, in run order.

    Attributes:
        measurements: one row per timed call: ``repeat``, ``batch``, ``method``, ``seconds`` (of
            the generate call), ``tokens`` (generated in the batch, up to each sample's first EOS).
        labels: the methods in their first repeat's order (vanilla and the noise floor included).
        settings: what was timed (model, batch size, max_new_tokens, repeats, warm-up, ...).
    """

    measurements: pd.DataFrame
    labels: tuple[str, ...]
    settings: dict[str, Any] = field(default_factory=dict)

    def per_repeat(self) -> pd.DataFrame:
        """One row per (method, repeat): ``seconds_per_batch`` (mean over the batches),
        ``seconds_per_token`` (their seconds over their tokens) and the overheads in percent over
        vanilla in the same repeat (``100 * (t / t_vanilla - 1)``, per batch and per token)."""
        if BASELINE not in self.labels:
            raise FacLensError(f"the timing has no {BASELINE!r} method to compare with: time it too")
        grouped = self.measurements.groupby(["method", "repeat"], sort=False)
        rows = grouped.agg(seconds=("seconds", "sum"), tokens=("tokens", "sum"), n=("seconds", "size"))
        rows = rows.reset_index()
        rows["seconds_per_batch"] = rows["seconds"] / rows["n"]
        rows["seconds_per_token"] = rows["seconds"] / rows["tokens"].where(rows["tokens"] > 0)
        base = rows[rows["method"] == BASELINE].set_index("repeat")
        for unit in ("batch", "token"):
            reference = rows["repeat"].map(base[f"seconds_per_{unit}"])
            rows[f"overhead_{unit}_pct"] = 100.0 * (rows[f"seconds_per_{unit}"] / reference - 1.0)
        return rows[["method", "repeat", *STATISTICS]]

    def summary(self) -> pd.DataFrame:
        """Per method (in :attr:`labels` order): the median over repeats of each of
        :data:`STATISTICS` with its quartiles (``_q25``, ``_q75``)."""
        per_repeat = self.per_repeat()
        out = []
        for label in self.labels:
            rows = per_repeat[per_repeat["method"] == label]
            entry: dict[str, Any] = {"method": label}
            for name in STATISTICS:
                median, q25, q75 = _quartiles(rows[name].to_numpy(float))
                entry.update({name: median, f"{name}_q25": q25, f"{name}_q75": q75})
            out.append(entry)
        return pd.DataFrame(out)

    def noise_floor(self) -> float | None:
        """The median per-token overhead of vanilla over itself (None when not timed)."""
        if NOISE_FLOOR not in self.labels:
            return None
        summary = self.summary().set_index("method")
        return float(summary.loc[NOISE_FLOOR, "overhead_token_pct"])


def benchmark(
    model: LensModel,
    samples: Sequence[Sample],
    methods: Mapping[str, Method],
    ratios: HeadRatios | None = None,
    batch_size: int = 8,
    n_batches: int = 2,
    max_new_tokens: int = 64,
    repeats: int = 3,
    warmup: int = 1,
    seed: int = 0,
    noise_floor: bool = True,
    progress: bool = True,
    clock: Callable[[], float] = time.perf_counter,
    generate_fn: Callable[..., Any] = generate,
    eos_ids: Sequence[int] | None = None,
) -> TimingResult:
    """Time ``methods`` on the same batches, interleaved and repeated (see the module docstring).

    Args:
        methods: label -> method, in the order of the first repeat; must hold ``"vanilla"``.
        ratios: the calibration ratio map static methods identify their heads on.
        n_batches: the first ``n_batches`` batches of ``samples`` are timed.
        repeats: timed rounds over every batch and method (the spread is over these).
        warmup: untimed calls of every method on the first batch before the first timed one.
        noise_floor: also time vanilla as :data:`NOISE_FLOOR`.
        clock, generate_fn, eos_ids: the timer, ``fac_lens.generate`` and the EOS ids
            (default: the model's), replaceable for tests.
    """
    labels = list(methods)
    if BASELINE not in methods or methods[BASELINE].mode != "none":
        raise FacLensError(f"benchmark compares with vanilla: include {BASELINE!r}: Method.vanilla()")
    if repeats < 1 or warmup < 0 or n_batches < 1:
        raise FacLensError(
            f"repeats={repeats}, warmup={warmup}, n_batches={n_batches}: use repeats >= 1, warmup >= 0, "
            "n_batches >= 1"
        )
    methods = dict(methods)
    if noise_floor:
        methods[NOISE_FLOOR] = Method.vanilla()
        labels.append(NOISE_FLOOR)
    for method in methods.values():
        method.check_model(model.n_layers)
    interventions = {label: m.intervention(ratios) for label, m in methods.items()}
    batches = chunks(samples, batch_size)[:n_batches]
    if not batches:
        raise FacLensError("no samples to time: check the dataset and --limit")
    raw = [([s.image for s in b], [s.prompt() for s in b]) for b in batches]
    inputs = [model.prepare(images, prompts) for images, prompts in raw]
    eos = eos_token_ids(model) if eos_ids is None else tuple(eos_ids)

    def call(label: str, batch: int) -> tuple[float, int]:
        torch.manual_seed(seed)
        start = clock()
        method = interventions[label]
        scored = getattr(method, "needs_images", False)  # CGD, AGLA: their scorer sees the images
        extra = dict(zip(("images", "prompts"), raw[batch], strict=True)) if scored else {}
        out = generate_fn(model, inputs[batch], max_new_tokens=max_new_tokens, fac=method, **extra)
        seconds = clock() - start
        return seconds, sum(generated_lengths(out.new_tokens, eos))

    for _ in range(warmup):
        for label in labels:
            call(label, 0)
    rows = []
    order = schedule(labels, repeats, len(batches))
    for repeat, batch, label in tqdm(order, desc="timing", disable=not progress):
        seconds, tokens = call(label, batch)
        rows.append({"repeat": repeat, "batch": batch, "method": label, "seconds": seconds, "tokens": tokens})
    settings = {
        "batch_size": batch_size,
        "n_batches": len(batches),
        "max_new_tokens": max_new_tokens,
        "repeats": repeats,
        "warmup": warmup,
        "seed": seed,
        "sample_ids": [s.id for b in batches for s in b],
    }
    return TimingResult(pd.DataFrame(rows), tuple(labels), settings)
