"""Benchmarks: the common sample type, the synthetic benchmark, the released benchmarks
(:mod:`.benchmarks`, one module each), answers and metrics."""

from .answers import extract_answer, is_correct, normalize_answer
from .benchmarks import BENCHMARKS, LoadReport, load_benchmark
from .metrics import accuracy, binary_f1, per_kind, reported_f1, weighted_f1
from .sample import Sample
from .uncertainty import compare_to_baseline, mcnemar_exact

__all__ = [
    "BENCHMARKS",
    "LoadReport",
    "Sample",
    "accuracy",
    "binary_f1",
    "compare_to_baseline",
    "extract_answer",
    "is_correct",
    "load_benchmark",
    "mcnemar_exact",
    "normalize_answer",
    "per_kind",
    "reported_f1",
    "weighted_f1",
]
