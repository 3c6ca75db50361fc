"""``fl.ablate``: remove heads (zero or mean ablation of their ``hook_z`` slice), and ``fl.head_means``."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch
from tqdm.auto import tqdm

from .errors import FacLensError
from .head_hooks import head_recording, head_replacing
from .inputs import model_errors
from .lens_model import LensModel

KINDS = ("zero", "mean")


def as_batches(inputs: Mapping[str, Any] | Iterable[Mapping[str, Any]], what: str) -> list[Mapping[str, Any]]:
    """One dict of HF kwargs, or an iterable of them, as a non-empty list."""
    if isinstance(inputs, Mapping):
        return [inputs]
    try:
        batches = list(inputs)
    except TypeError as error:
        raise FacLensError(
            f"{what} needs a dict of HF model kwargs or a list of them, got {type(inputs).__name__}; "
            "build one with model.prepare(image, text)"
        ) from error
    if not batches or not all(isinstance(b, Mapping) for b in batches):
        raise FacLensError(f"{what} needs a non-empty list of dicts of HF model kwargs")
    return batches


def head_means(
    model: LensModel, samples: Mapping[str, Any] | Iterable[Mapping[str, Any]], progress: bool = True
) -> torch.Tensor:
    """Each head's mean output (its ``hook_z`` slice) over samples and non-padding positions.

    Args:
        model: a loaded :class:`LensModel`.
        samples: HF kwargs for one batch, or an iterable of them (one forward each).

    Returns:
        float32 [n_layers, n_heads, d_head]; only running sums are kept (O(n_layers x n_heads x d_head)).
    """
    batches = as_batches(samples, "head_means")
    total = torch.zeros(model.n_layers, model.n_heads, model.d_head, dtype=torch.float64)
    count = torch.zeros((), dtype=torch.float64)
    valid: list[torch.Tensor] = []

    def record(layer: int, z: torch.Tensor) -> None:  # z [B, N, H, D]
        weights = valid[0].to(z.device, torch.float64)  # [B, N]
        total[layer] += torch.einsum("bn,bnhd->hd", weights, z.double()).cpu()

    for batch in tqdm(batches, desc="head means", disable=not progress or len(batches) < 2):
        inputs = model.normalize(batch, require_image=False)
        ids = inputs["input_ids"]
        mask = inputs.get("attention_mask")
        valid[:] = [torch.ones_like(ids) if mask is None else mask]
        count += float(valid[0].sum())
        model.reset_state()
        try:
            with torch.no_grad(), model_errors(), model.fast_path(), head_recording(model, record):
                model.spec.multimodal_core(model.hf)(**inputs)
        finally:
            model.reset_state()
    return (total / count).float()


def check_heads(model: LensModel, heads: Any, what: str = "heads") -> torch.Tensor:
    """A bool head mask [n_layers, n_heads] or [B, n_layers, n_heads] (one per batch row)."""
    mask = torch.as_tensor(heads) if not isinstance(heads, torch.Tensor) else heads
    shape = (model.n_layers, model.n_heads)
    if mask.dtype != torch.bool or mask.dim() not in (2, 3) or tuple(mask.shape[-2:]) != shape:
        raise FacLensError(
            f"{what} must be a bool tensor [n_layers, n_heads] = [{shape[0]}, {shape[1]}] (or "
            f"[batch, n_layers, n_heads]), got {mask.dtype} {tuple(mask.shape)}; e.g. "
            "torch.zeros(model.n_layers, model.n_heads, dtype=torch.bool) with the heads set to True"
        )
    return mask.detach().cpu()


def check_means(model: LensModel, means: Any) -> torch.Tensor:
    shape = (model.n_layers, model.n_heads, model.d_head)
    if not isinstance(means, torch.Tensor) or tuple(means.shape) != shape or not means.is_floating_point():
        raise FacLensError(
            f"mean ablation needs means=fl.head_means(model, samples), a float tensor {list(shape)}; "
            f"got {type(means).__name__} {tuple(getattr(means, 'shape', ()))}"
        )
    if not bool(torch.isfinite(means).all()):
        raise FacLensError("means hold NaN or inf: record them again with fl.head_means")
    return means.detach()


@contextmanager
def ablate(
    model: LensModel, heads: Any, kind: str = "zero", means: torch.Tensor | None = None
) -> Iterator[None]:
    """Remove heads inside the block: any forward of the model runs with them ablated.

    ``"zero"`` replaces a head's slice of the ``o_proj`` input (``hook_z``) by zeros: the same as
    zeroing that head's input columns of ``o_proj``. ``"mean"`` replaces it by the head's mean
    output ``means[l, h]`` from :func:`head_means`. On exit (also by an exception) no hook is left
    and the model computes exactly what it computed before.

    Args:
        model: a loaded :class:`LensModel`.
        heads: bool [n_layers, n_heads] (True: ablate), or [B, n_layers, n_heads] for a different
            set of heads in each batch row.
        kind: ``"zero"`` or ``"mean"``.
        means: float [n_layers, n_heads, d_head] from :func:`head_means` (``kind="mean"`` only).
    """
    if kind not in KINDS:
        raise FacLensError(f"unknown ablation kind {kind!r}; use one of {KINDS}")
    mask = check_heads(model, heads)
    if kind == "mean":
        values = check_means(model, means).to(model.device, model.dtype)
    elif means is not None:
        raise FacLensError("means are for kind='mean'; zero ablation takes none")
    else:
        values = torch.zeros((), device=model.device, dtype=model.dtype)
    masks = [mask[..., layer, :].to(model.device) for layer in range(model.n_layers)]  # [H] or [B, H]

    def edit(layer: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        if not bool(masks[layer].any()):
            return None
        return masks[layer], values[layer] if kind == "mean" else values

    with head_replacing(model, edit):
        yield
