"""Benchmarks: the common sample type, the synthetic benchmark, loaders, answers and metrics."""

from .answers import extract_answer, is_correct, normalize_answer
from .loaders import BENCHMARKS, LoadReport, load_benchmark
from .metrics import accuracy, binary_f1, per_kind, weighted_f1
from .sample import Sample

__all__ = [
    "BENCHMARKS",
    "LoadReport",
    "Sample",
    "accuracy",
    "binary_f1",
    "extract_answer",
    "is_correct",
    "load_benchmark",
    "normalize_answer",
    "per_kind",
    "weighted_f1",
]
