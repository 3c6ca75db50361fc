"""The one registry of datasets fac_lens evaluates on, by name.

``"synthetic"`` (the synthetic benchmark: a split file or folder; by default the committed test
split, which the embedded-model wing registers), ``"synthetic-pope"`` (POPE-style yes/no probes
on the synthetic scenes), the paper's six benchmarks and POPE (``"pope"``, or one variant:
``"pope-adversarial"``), read by :mod:`fac_lens.data.benchmarks` from whatever released layout
the given path or hub id holds (hub cache, parquet, save_to_disk, original JSON, VLMEvalKit TSV).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from ..errors import FacLensError
from .benchmarks import BENCHMARKS, LoadReport, load_benchmark
from .sample import Sample

SYNTHETIC = ("synthetic", "synthetic-pope")
POPE_VARIANTS = tuple(f"pope-{v}" for v in BENCHMARKS["pope"].variants)  # POPE restricted to one variant
DATASETS: tuple[str, ...] = (*SYNTHETIC, *BENCHMARKS, *POPE_VARIANTS)
DEFAULT_ROOTS: dict[str, Callable[[], Path]] = {}


def register_default_root(dataset: str, root: Callable[[], Path]) -> None:
    """Where ``dataset`` is read from when no root is given (called when needed)."""
    DEFAULT_ROOTS[dataset] = root


def load_samples(dataset: str, root: str | Path | None = None, limit: int | None = None) -> list[Sample]:
    """Samples of one registered dataset.

    Args:
        dataset: a name in :data:`DATASETS` (case-insensitive).
        root: the dataset's file or folder; None for a registered default (the synthetic split).
        limit: at most this many samples (``"synthetic-pope"``: this many scenes, six probes each).
    """
    if limit is not None and limit < 1:
        raise FacLensError(f"--limit {limit}: give a positive number of samples (or leave it out for all)")
    key = dataset.lower()
    if key == "synthetic-pope":  # yes/no probes (random, popular, adversarial) on the test scenes
        from .pope import pope_samples

        return pope_samples(load_samples("synthetic", root, limit))
    if key == "synthetic":
        from .synthetic import load_split

        path = Path(root) if root else _default_root(key)
        if path.is_dir():
            path = path / "test.jsonl"
        samples = list(load_split(path))
        return samples[:limit] if limit else samples
    if key not in DATASETS:
        raise FacLensError(f"unknown dataset {dataset!r}; use one of {list(DATASETS)}")
    if root is None:
        raise FacLensError(
            f"dataset {dataset!r} is read from its release: pass --data with its folder, file or hub id "
            "(layouts: fac_lens.data.benchmarks)"
        )
    load = load_benchmark(key, root, limit, report=LoadReport())
    print(f"fac_lens: {load.benchmark} from {load.description}", file=sys.stderr)
    samples = list(load)
    if not samples:
        raise FacLensError(
            f"no samples found in {root} for {dataset!r} ({load.layout}): check the split and layout"
        )
    return samples


def split_text_only(samples: Sequence[Sample]) -> tuple[list[Sample], list[Sample]]:
    """(samples with an image, text-only samples): HallusionBench's ``visual_input`` "0" questions
    have no image. Evaluation leaves the text-only ones out and counts them (``n_skipped``): every
    model input is built with an image (``prepare``), and FAC's visual ratio needs image tokens."""
    with_image = [s for s in samples if s.image is not None]
    text_only = [s for s in samples if s.image is None]
    return with_image, text_only


def _default_root(dataset: str) -> Path:
    root = DEFAULT_ROOTS.get(dataset)
    if root is None:
        raise FacLensError(
            f"dataset {dataset!r} has no default location here: pass its file or folder "
            "(--data), or import fac_lens (which registers the committed test split)"
        )
    return root()
