"""Activation patching of heads: copy a head's output from a clean run into a corrupted run.

The metric at ``position`` is ``logit[target] - logit[foil]`` (or ``log p(target)`` without a
foil). The fraction recovered by patching head h is
``(m_patched_h - m_corrupted) / (m_clean - m_corrupted)``: 1 when the head alone restores the
clean behaviour, 0 when it changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from tqdm.auto import tqdm

from .approx import AllClose
from .erasure import repeat_sample
from .errors import FacLensError
from .head_hooks import head_recording, head_replacing
from .inputs import model_errors
from .lens_model import LensModel
from .validation import as_int

CORRUPTIONS = ("noise", "blank", "replace")


@dataclass(frozen=True, eq=False)
class PatchingResult(AllClose):
    """Per-head activation patching.

    Attributes:
        recovered: float32 [n_layers, n_heads] fraction of the clean-vs-corrupted metric difference
            recovered by patching each head alone.
        patched: float32 [n_layers, n_heads] the metric with each head patched.
        clean, corrupted: the metric on the clean and the corrupted input.
        target, foil, position: what the metric reads.
    """

    recovered: torch.Tensor
    patched: torch.Tensor
    clean: float
    corrupted: float
    target: int
    foil: int | None
    position: int


def corrupt_image(
    inputs: Mapping[str, Any],
    kind: str = "noise",
    noise_step: int = 500,
    replacement: Mapping[str, Any] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """A corrupted copy of ``inputs``: same tokens, other ``pixel_values``.

    Args:
        inputs: HF kwargs with ``pixel_values`` (as the processor normalised them).
        kind: ``"noise"``: the forward diffusion of Visual Contrastive Decoding (VCD), 1000 steps
            with ``beta = sigmoid(linspace(-6, 6)) * (5e-3 - 1e-5) + 1e-5``, taken to
            ``noise_step``: ``sqrt(abar) x + sqrt(1 - abar) eps``; ``"blank"``: zeros (the
            normalisation mean, a uniform grey); ``"replace"``: the ``pixel_values`` of
            ``replacement`` (another image of the same size).
        seed: the noise seed.
    """
    if kind not in CORRUPTIONS:
        raise FacLensError(f"unknown corruption {kind!r}; use one of {CORRUPTIONS}")
    pixels = inputs.get("pixel_values") if isinstance(inputs, Mapping) else None
    if not isinstance(pixels, torch.Tensor):
        raise FacLensError("corrupt_image needs inputs with pixel_values (model.prepare(image, text))")
    out = dict(inputs)
    if kind == "blank":
        out["pixel_values"] = torch.full_like(pixels, float(pixels.double().mean()))
    elif kind == "replace":
        other = replacement.get("pixel_values") if isinstance(replacement, Mapping) else None
        if not isinstance(other, torch.Tensor) or other.shape != pixels.shape:
            raise FacLensError(
                "kind='replace' needs replacement=inputs of another image with pixel_values shaped "
                f"{tuple(pixels.shape)} (prepare it at the same size)"
            )
        out["pixel_values"] = other.to(pixels)
    else:
        step = as_int("noise_step", noise_step, minimum=0, maximum=999)
        betas = torch.sigmoid(torch.linspace(-6, 6, 1000, dtype=torch.float64)) * (5e-3 - 1e-5) + 1e-5
        alpha_bar = torch.cumprod(1 - betas, 0)[step]
        generator = torch.Generator().manual_seed(seed)
        noise = torch.randn(pixels.shape, generator=generator, dtype=torch.float64)
        noisy = alpha_bar.sqrt() * pixels.double().cpu() + (1 - alpha_bar).sqrt() * noise
        out["pixel_values"] = noisy.to(pixels)
    return out


def patch_heads(
    model: LensModel,
    clean_inputs: Mapping[str, Any],
    corrupted_inputs: Mapping[str, Any],
    target: int,
    foil: int | None = None,
    position: int = -1,
    batch_size: int = 8,
    progress: bool = True,
) -> PatchingResult:
    """Patch every head's clean output (its ``hook_z`` slice, all positions) into the corrupted run.

    Args:
        model: a loaded :class:`LensModel`.
        clean_inputs, corrupted_inputs: one sample each (batch size 1) of the same length
            (build the corrupted one with :func:`corrupt_image`, or swap tokens one for one).
        target: the token id whose logit the metric reads; ``foil``: a contrast token (metric
            ``logit[target] - logit[foil]``), else the metric is ``log p(target)``.
        position: the position whose logits are read.
        batch_size: patched copies per forward (``ceil(n_layers * n_heads / batch_size)`` forwards,
            plus one clean and one corrupted).
    """
    clean = model.normalize(clean_inputs, require_image=False)
    corrupted = model.normalize(corrupted_inputs, require_image=False)
    ids = clean["input_ids"]
    if ids.shape[0] != 1 or corrupted["input_ids"].shape[0] != 1:
        raise FacLensError("patch_heads compares one sample: pass clean and corrupted inputs of batch size 1")
    if ids.shape != corrupted["input_ids"].shape:
        raise FacLensError(
            f"clean and corrupted inputs have {ids.shape[1]} and {corrupted['input_ids'].shape[1]} tokens: "
            "patching copies outputs position by position, so they need the same length; corrupt "
            "the image (fl.corrupt_image) or swap tokens one for one"
        )
    vocab = int(model.spec.text_config(model.hf).vocab_size)
    target = as_int("target", target, minimum=0, maximum=vocab - 1)
    foil = None if foil is None else as_int("foil", foil, minimum=0, maximum=vocab - 1)
    n_tokens = ids.shape[1]
    position = as_int("position", position, minimum=-n_tokens, maximum=n_tokens - 1) % n_tokens
    batch_size = as_int("batch_size", batch_size, minimum=1)

    recorded: dict[int, torch.Tensor] = {}
    with head_recording(model, lambda layer, z: recorded.__setitem__(layer, z.clone())):
        clean_metric = float(_metric(model, clean, target, foil, position)[0])
    corrupted_metric = float(_metric(model, corrupted, target, foil, position)[0])

    n_total = model.n_layers * model.n_heads
    masks = torch.eye(n_total, dtype=torch.bool).view(n_total, model.n_layers, model.n_heads)
    patched = []
    for start in tqdm(
        range(0, n_total, batch_size), desc="patching", disable=not progress, total=-(-n_total // batch_size)
    ):
        chunk = masks[start : start + batch_size].to(model.device)

        def edit(layer: int, chunk=chunk):
            rows = chunk[:, layer]  # [k, H]
            return (rows, recorded[layer]) if bool(rows.any()) else None

        with head_replacing(model, edit):
            patched.append(_metric(model, repeat_sample(corrupted, len(chunk)), target, foil, position))
    patched_metric = torch.cat(patched).view(model.n_layers, model.n_heads)
    gap = clean_metric - corrupted_metric
    recovered = (patched_metric - corrupted_metric) / gap if gap != 0 else patched_metric * float("nan")
    return PatchingResult(
        recovered=recovered.float(),
        patched=patched_metric.float(),
        clean=float(clean_metric),
        corrupted=float(corrupted_metric),
        target=target,
        foil=foil,
        position=position,
    )


def _metric(model: LensModel, inputs: Mapping[str, Any], target: int, foil: int | None, position: int):
    """[B] float64 metric at ``position``."""
    model.reset_state()
    try:
        with torch.no_grad(), model_errors(), model.fast_path():
            index = torch.tensor([position], device=model.device)
            logits = model.hf(**inputs, use_cache=False, logits_to_keep=index).logits[:, -1].double()
    finally:
        model.reset_state()
    if foil is None:
        value = torch.log_softmax(logits, -1)[:, target]
    else:
        value = logits[:, target] - logits[:, foil]
    return value.cpu()
