"""Checks shared by the entry points: int-like values, dtypes and devices, each refused with a
:class:`~fac_lens.errors.FacLensError` that names the value and the fix."""

from __future__ import annotations

import numbers
from typing import Any

import torch

from .errors import FacLensError


def is_int_like(value: Any) -> bool:
    """A Python int, a numpy integer or a 0-d integer tensor (never a bool)."""
    if isinstance(value, torch.Tensor):
        return (
            value.dim() == 0
            and not value.is_floating_point()
            and not value.is_complex()
            and value.dtype != torch.bool
        )
    return (
        isinstance(value, numbers.Integral)
        and not isinstance(value, bool)
        and type(value).__name__ != "bool_"
    )


def as_int(name: str, value: Any, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as a Python int, checked against ``[minimum, maximum]``."""
    if not is_int_like(value):
        raise FacLensError(f"{name}={value!r} is not an integer: give an int{_range(minimum, maximum)}")
    number = int(value)
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        raise FacLensError(f"{name}={number} is out of range: give an int{_range(minimum, maximum)}")
    return number


def as_ints(name: str, value: Any) -> list[int]:
    """One int-like value, or a sequence / 1-d array or tensor of them, as a list of ints."""
    if is_int_like(value):
        return [int(value)]
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__") or getattr(value, "ndim", 1) != 1:
        raise FacLensError(
            f"{name}={value!r} is not an integer or a 1-d sequence of integers: give an int or a list of ints"
        )
    items = list(value)
    bad = [v for v in items if not is_int_like(v)]
    if bad:
        raise FacLensError(f"{name} holds non-integers {bad[:3]!r}: give ints")
    return [int(v) for v in items]


def _range(minimum: int | None, maximum: int | None) -> str:
    if minimum is not None and maximum is not None:
        return f" in [{minimum}, {maximum}]"
    if minimum is not None:
        return f" >= {minimum}"
    return "" if maximum is None else f" <= {maximum}"


def check_dtype(dtype: Any) -> torch.dtype | None:
    """None, a floating ``torch.dtype``, or its name (``"bfloat16"``, ``"torch.float16"``)."""
    if dtype is None:
        return None
    found = getattr(torch, dtype.removeprefix("torch."), None) if isinstance(dtype, str) else dtype
    if not isinstance(found, torch.dtype) or not found.is_floating_point:
        raise FacLensError(
            f"dtype={dtype!r} is not a floating torch dtype: use torch.float32, torch.bfloat16, "
            'torch.float16, their names ("bfloat16"), or None for the checkpoint\'s dtype'
        )
    return found


def check_device(device: Any) -> torch.device | None:
    """None or a device this torch can use (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``)."""
    if device is None:
        return None
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as error:
        raise FacLensError(
            f"device={device!r} is not a torch device: use 'cpu', 'cuda', 'cuda:1', ..."
        ) from error
    if parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (parsed.index is not None and parsed.index >= count):
            raise FacLensError(
                f"device={device!r}: this machine has {count} CUDA device(s) usable by torch; "
                "use 'cpu' or an index below the count"
            )
    elif parsed.type == "mps" and not torch.backends.mps.is_available():
        raise FacLensError(f"device={device!r}: MPS is not available here; use 'cpu'")
    return parsed
