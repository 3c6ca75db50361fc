"""Benchmarks: the common sample type, the synthetic benchmark, loaders, answers and metrics."""

from .sample import Sample

__all__ = ["Sample"]
