"""Per-benchmark loader functions: thin shortcuts over :func:`fac_lens.data.benchmarks.load_benchmark`.

The layouts each benchmark is read from (hub cache, parquet shards, ``save_to_disk`` folders, the
original JSON + images, VLMEvalKit TSV), their schemas and sources are documented in the modules
of :mod:`fac_lens.data.benchmarks`. ``load_mathvista_mini(root)`` is
``load_benchmark("mathvista-mini", root)``, and so on.
"""

from __future__ import annotations

from pathlib import Path

from .benchmarks import (
    BENCHMARKS,
    BenchmarkLoad,
    ImageSkippedWarning,
    LoadReport,
    benchmark_info,
    load_benchmark,
)
from .benchmarks.mmstar import split_options

__all__ = [
    "BENCHMARKS",
    "BenchmarkLoad",
    "ImageSkippedWarning",
    "LoadReport",
    "benchmark_info",
    "load_benchmark",
    "load_clevr",
    "load_hallusionbench",
    "load_mathvision_mini",
    "load_mathvista_mini",
    "load_mmstar",
    "load_pope",
    "load_seed_bench",
    "split_options",
]


def _loader(name: str):
    def load(
        source: str | Path,
        limit: int | None = None,
        *,
        split: str | None = None,
        report: LoadReport | None = None,
    ) -> BenchmarkLoad:
        return load_benchmark(name, source, limit, split=split, report=report)

    load.__name__ = f"load_{name.replace('-', '_')}"
    load.__doc__ = (
        f"``load_benchmark({name!r}, source, limit, split=, report=)``: see :func:`load_benchmark`."
    )
    return load


load_mathvista_mini = _loader("mathvista-mini")
load_mathvision_mini = _loader("mathvision-mini")
load_hallusionbench = _loader("hallusionbench")
load_clevr = _loader("clevr")
load_mmstar = _loader("mmstar")
load_seed_bench = _loader("seed-bench")
load_pope = _loader("pope")
