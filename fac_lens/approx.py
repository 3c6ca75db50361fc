"""Value comparison for the result dataclasses: ``==`` compares identity (tensors have no truth value)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch


def values_close(a: Any, b: Any, atol: float, rtol: float) -> bool:
    """Tensors: same shape and ``torch.allclose`` (bool tensors: equal); floats: ``math.isclose``
    with the same tolerances; anything else: ``==``."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        a, b = torch.as_tensor(a), torch.as_tensor(b)
        if a.shape != b.shape:
            return False
        if a.dtype == torch.bool or b.dtype == torch.bool:
            return torch.equal(a, b)
        return torch.allclose(a.double(), b.double(), atol=atol, rtol=rtol)
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(a, b, abs_tol=atol, rel_tol=rtol)
    return bool(a == b)


class AllClose:
    """Mixin of the result dataclasses, which are ``eq=False`` (``==`` compares identity)."""

    __slots__ = ()

    def allclose(self, other: Any, atol: float = 1e-8, rtol: float = 1e-5) -> bool:
        """Whether ``other`` is of the same type and every field is close (:func:`values_close`:
        tensors within ``torch.allclose`` tolerances)."""
        return type(other) is type(self) and all(
            values_close(getattr(self, f.name), getattr(other, f.name), atol, rtol)
            for f in dataclasses.fields(self)
        )
