"""What every baseline is: a named, serialisable decoding method usable wherever FAC is.

A :class:`Baseline` has a ``name`` (the CLI's ``--method``, the tables' row), ``settings()`` (the
JSON the results store keys its runs by) and ``generate()``, which :func:`fac_lens.generate` calls
when given ``method=``. Methods that edit attention do it in a context manager (:meth:`applied`)
around HF ``generate``; decoding methods (VCD, AGLA, CGD) run their own decoding.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ..errors import FacLensError

if TYPE_CHECKING:
    from ..generation import GenerationResult
    from ..lens_model import LensModel


class Baseline:
    """Base class of the baselines (frozen dataclasses with their paper's hyper-parameters).

    Subclasses set ``name`` and implement :meth:`generate` (or :meth:`applied` for a method that
    only changes the forward pass).
    """

    name: str = ""
    #: whether generate() needs the raw images and prompts (a scorer looks at them)
    needs_images: bool = False

    def settings(self) -> dict[str, Any]:
        """Every hyper-parameter, JSON-serialisable (objects such as scorers by class name)."""
        out: dict[str, Any] = {"name": self.name}
        for field in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, field.name)
            if value is None or isinstance(value, (bool, int, float, str)):
                out[field.name] = value
            elif isinstance(value, (tuple, list)):
                out[field.name] = list(value)
            elif hasattr(value, "shape"):
                continue  # explicit tensors (contrast inputs) are data, not settings
            else:
                out[field.name] = type(value).__name__
        return out

    def check_model(self, n_layers: int) -> None:
        """Raise before any work if a layer setting lies outside the model."""

    @contextmanager
    def applied(self, model: LensModel, inputs: Mapping[str, Any]) -> Iterator[None]:
        """Context in which every forward of ``model`` runs this method (attention edits only)."""
        raise FacLensError(f"{self.name} is a decoding method; run it through fl.generate(..., method=...)")
        yield  # pragma: no cover

    def generate(
        self,
        model: LensModel,
        inputs: Mapping[str, Any],
        max_new_tokens: int,
        images: Sequence[Any] | None = None,
        prompts: Sequence[str] | None = None,
        **generate_kwargs,
    ) -> GenerationResult:
        """Greedy generation under this method (default: HF generate inside :meth:`applied`)."""
        from ..generation import hf_generate

        self.check_model(model.n_layers)
        normalized = model.normalize(inputs, require_image=True)
        return hf_generate(
            model, normalized, max_new_tokens, lambda: self.applied(model, normalized), **generate_kwargs
        )


def check_range(name: str, value: float, low: float, high: float | None = None) -> float:
    """A float in [low, high] (high None: no upper bound), else a FacLensError naming the fix."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise FacLensError(f"{name} must be a number, got {value!r}") from None
    if not (number >= low and (high is None or number <= high)):
        bound = f"[{low}, {high}]" if high is not None else f">= {low}"
        raise FacLensError(f"{name}={value!r} is out of range: use a value in {bound}")
    return number


def check_layers(method: str, start: int, end: int | None, n_layers: int) -> None:
    """``0 <= start < end <= n_layers``, else a FacLensError."""
    stop = n_layers if end is None else end
    if not (0 <= start < stop <= n_layers):
        raise FacLensError(
            f"{method}: layers start={start}, end={end} do not fit a model of {n_layers} layers; "
            f"use 0 <= start < end <= {n_layers}"
        )
