"""Checked plot inputs: stored arrays, tensors or :class:`HeadRatios` as numpy arrays."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..errors import FacLensError
from ..ratios import HeadRatios


def as_array(value: Any, ndim: int, shape: str, what: str) -> np.ndarray:
    """``value`` (numpy array, torch tensor, nested lists or :class:`HeadRatios`) as a float ndarray of
    rank ``ndim`` (a HeadRatios gives ``per_sample`` for rank 3, else ``visual``)."""
    if isinstance(value, HeadRatios):
        value = value.per_sample if ndim == 3 else value.visual
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().float().numpy()
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as err:
        raise FacLensError(f"{what} must be a numeric array shaped {shape}: {err}") from err
    if arr.ndim != ndim or arr.size == 0:
        raise FacLensError(
            f"{what} must be a non-empty array shaped {shape}, got shape {arr.shape}: pass the stored array "
            "(ResultStore arrays of the matching kind) or index/stack it to that shape"
        )
    return arr


def as_mask(value: Any, shape: tuple[int, ...], what: str) -> np.ndarray:
    """``value`` as a bool mask shaped ``shape`` [n_layers, n_heads] (``what``: the class name)."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    arr = np.asarray(value)
    if arr.shape != shape:
        raise FacLensError(
            f"{what} must be a bool mask shaped like visual {shape} [n_layers, n_heads], got shape "
            f"{arr.shape}: pass HeadSelection.{what} for the same ratio map"
        )
    return arr.astype(bool)
