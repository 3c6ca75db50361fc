"""The paper's six benchmarks and POPE, read from the layouts they are really released in.

One module per benchmark (like :mod:`fac_lens.architectures`) declares its releases, field
mapping, prompt, answer type and metric as a :class:`~._spec.BenchmarkSpec`; this driver finds
which layout a path or hub id holds (:mod:`._layouts`), says which it used, and yields
:class:`~fac_lens.data.sample.Sample` objects. Nothing is downloaded.

=================  ==========================================  =========================
benchmark          layouts read                                metric
=================  ==========================================  =========================
MathVista-mini     hub/parquet/save_to_disk, annot JSON, TSV   accuracy
MathVision-mini    hub/parquet/save_to_disk, JSONL, TSV        accuracy
HallusionBench     hub/parquet/save_to_disk, JSON, TSV         weighted F1 (binary)
CLEVR              parquet/save_to_disk (community), JSON      accuracy
MMStar             hub/parquet/save_to_disk, TSV               weighted F1 (multi-class)
SEED-Bench         hub/parquet/save_to_disk, JSON, TSV         weighted F1 (multi-class)
POPE               hub/parquet/save_to_disk, JSONL, TSV        acc, P, R, F1, yes-ratio
=================  ==========================================  =========================

"hub" stands for every Hugging Face form: a hub id in the local cache, parquet shards, a
``save_to_disk`` folder and a ``load_dataset`` Arrow cache folder (:mod:`._layouts`). Each
module's docstring records its released schemas and where they come from.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

from ...errors import FacLensError
from ..sample import Sample
from . import clevr, hallusionbench, mathvision, mathvista, mmstar, pope, seed_bench
from ._layouts import Records, find
from ._spec import BenchmarkSpec, ImageSkippedWarning, LoadReport, Pending, emit

__all__ = [
    "BENCHMARKS",
    "BenchmarkLoad",
    "BenchmarkSpec",
    "ImageSkippedWarning",
    "LoadReport",
    "benchmark_info",
    "load_benchmark",
]

log = logging.getLogger("fac_lens.data")

BENCHMARKS: dict[str, BenchmarkSpec] = {
    module.SPEC.name: module.SPEC
    for module in (mathvista, mathvision, hallusionbench, clevr, mmstar, seed_bench, pope)
}

_ALIASES = {
    "mathvista": "mathvista-mini",
    "mathvista-testmini": "mathvista-mini",
    "mathvision": "mathvision-mini",
    "mathvision-testmini": "mathvision-mini",
    "hallusion-bench": "hallusionbench",
    "seedbench": "seed-bench",
    "seed": "seed-bench",
    "seedbench-img": "seed-bench",
}


def _key(name: str) -> str:
    key = re.sub(r"[\s_]+", "-", str(name).strip().lower())
    return _ALIASES.get(key, key)


def benchmark_info(name: str) -> BenchmarkSpec:
    """The :class:`BenchmarkSpec` for a benchmark name, case-insensitive ("MathVista-mini",
    "mathvista", "seed_bench", "SEED Bench"; "pope-adversarial" names POPE and a variant).

    Raises:
        FacLensError: an unknown name; the message lists the known ones.
    """
    return _resolve(name)[0]


def _resolve(name: str) -> tuple[BenchmarkSpec, str | None]:
    key = _key(name)
    if key in BENCHMARKS:
        return BENCHMARKS[key], None
    base, _, variant = key.rpartition("-")
    if base in BENCHMARKS and variant in BENCHMARKS[base].variants:
        return BENCHMARKS[base], variant
    known = ", ".join(spec.display_name for spec in BENCHMARKS.values())
    raise FacLensError(
        f"unknown benchmark {name!r}; known: {known} (POPE also as pope-<random|popular|adversarial>)"
    )


class BenchmarkLoad(Iterator[Sample]):
    """The samples of one benchmark, read lazily (images opened one at a time), and what was read.

    Attributes:
        benchmark: the display name ("MathVista-mini").
        layout: the layout recognised: "parquet", "save_to_disk", "arrow-cache", "original",
            "vlmevalkit-tsv", or "hub-cache:<one of those>" for a hub id.
        description: what was read, in words (paths, split, hub id).
        split: the split (or POPE variant) asked for; None for the benchmark's default.
        report: counts of yielded, skipped (bad image) and excluded records.
    """

    def __init__(
        self,
        spec: BenchmarkSpec,
        source: str | Path,
        split: str | None,
        limit: int | None,
        report: LoadReport,
        cache_dir: str | None,
    ):
        variant = split if split in spec.variants else None
        splits = spec.splits if split is None or variant else (split,)
        found = find(spec, source, splits, cache_dir, variant)
        self.benchmark, self.layout, self.description = spec.display_name, found.layout, found.description
        self.split, self.report = split, report
        report.layout = found.layout
        log.info("%s: reading %s", spec.display_name, found.description)
        self._samples = emit(self._pending(spec, found.records(), variant), spec.display_name, limit, report)

    def _pending(self, spec: BenchmarkSpec, records: Records, variant: str | None) -> Iterator[Pending]:
        """Converted records, leaving out (and counting) other variants and excluded records."""
        for record, ctx in records:
            if variant is not None and str(record.get(spec.variant_field, "")).lower() != variant:
                self.report.excluded += 1
                continue
            if spec.excluded is not None and spec.excluded(record):
                self.report.excluded += 1
                continue
            yield spec.convert(record, ctx)

    def __iter__(self) -> BenchmarkLoad:
        return self

    def __next__(self) -> Sample:
        return next(self._samples)

    def __repr__(self) -> str:
        return f"BenchmarkLoad({self.benchmark}, layout={self.layout!r}: {self.description})"


def load_benchmark(
    name: str,
    source: str | Path,
    limit: int | None = None,
    *,
    split: str | None = None,
    report: LoadReport | None = None,
    cache_dir: str | None = None,
) -> BenchmarkLoad:
    """Load one benchmark from whatever released layout ``source`` holds.

    Args:
        name: "mathvista-mini", "mathvision-mini", "hallusionbench", "clevr", "mmstar",
            "seed-bench" or "pope" (case-insensitive; display names and aliases accepted).
        source: a folder or file (parquet shards, a ``save_to_disk`` folder, the original JSON and
            images, a VLMEvalKit TSV) or a hub id ("AI4Math/MathVista") in the local HF cache.
        limit: yield at most this many samples (None: all).
        split: the split to read (default: the benchmark's, e.g. "testmini"); for POPE a variant
            ("random", "popular", "adversarial"; default all three).
        report: filled with the counts of yielded, skipped and excluded samples and the layout.
        cache_dir: the Hugging Face hub cache to resolve a hub id in (default: HF_HUB_CACHE).

    Returns:
        A :class:`BenchmarkLoad`: an iterator of Samples with ``.layout`` and ``.description``.

    Raises:
        FacLensError: an unknown name, a bad limit, or nothing recognised at ``source`` (the
            message lists every layout looked for), now; a malformed record when reached.
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise FacLensError(f"limit must be a non-negative int or None, got {limit!r}")
    spec, variant = _resolve(name)
    if split is not None and not isinstance(split, str):
        raise FacLensError(f"split must be a split name (str) or None, got {split!r}")
    return BenchmarkLoad(
        spec, source, split or variant, limit, report if report is not None else LoadReport(), cache_dir
    )
