"""VCD, visual contrastive decoding (Leng et al., CVPR 2024).

Each step contrasts the logits of the image ``v`` with those of a distorted view ``v'``::

    p_vcd(y) = softmax[(1 + alpha) l(y | v, x) - alpha l(y | v', x)]

restricted to the adaptive plausibility set ``{y : p(y | v, x) >= beta max_w p(w | v, x)}``.
``v'`` is ``v`` after ``noise_step`` steps of the forward diffusion ``q(x_t | x_0) = N(sqrt(abar_t)
x_0, (1 - abar_t) I)`` over 1000 steps, applied to the processed image (``pixel_values``) as the
official code does, with its schedule ``beta_t = sigmoid(linspace(-6, 6, 1000)) (5e-3 - 1e-5) + 1e-5``.
The noise comes from ``seed``; ``contrast_inputs=`` gives ``v'`` explicitly instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import FacLensError
from ..generation import GenerationResult
from ..lens_model import LensModel
from ..validation import as_int
from .base import Baseline, check_range
from .paired import paired_generate, plausible

DIFFUSION_STEPS = 1000
PIXEL_KEYS = ("pixel_values", "pixel_values_videos")


def noise_schedule(steps: int = DIFFUSION_STEPS) -> torch.Tensor:
    """[steps] float64 ``abar_t = prod_{s <= t} (1 - beta_s)`` of VCD's schedule."""
    betas = torch.sigmoid(torch.linspace(-6, 6, steps, dtype=torch.float64)) * (0.5e-2 - 1e-5) + 1e-5
    return torch.cumprod(1 - betas, dim=0)


def diffusion_noise(pixels: torch.Tensor, noise_step: int, seed: int) -> torch.Tensor:
    """``sqrt(abar_t) x + sqrt(1 - abar_t) eps``, ``eps ~ N(0, I)`` from ``seed``; same shape and dtype.

    Images that are entirely zero (the padding of batched tiles) stay zero.
    """
    abar = noise_schedule()[noise_step]
    generator = torch.Generator().manual_seed(seed)
    eps = torch.randn(pixels.shape, generator=generator, dtype=torch.float32).to(pixels.device)
    noised = abar.sqrt().item() * pixels.float() + (1 - abar).sqrt().item() * eps
    if pixels.dim() >= 4:  # [..., C, H, W]: keep padding images at zero
        padding = (pixels == 0).flatten(-3).all(-1)
        noised = noised.masked_fill(padding[..., None, None, None], 0.0)
    return noised.to(pixels.dtype)


def noised_inputs(inputs: Mapping[str, Any], noise_step: int, seed: int) -> dict[str, Any]:
    """``inputs`` with every pixel tensor noised (VCD's distorted view)."""
    out = dict(inputs)
    found = False
    for key in PIXEL_KEYS:
        if isinstance(out.get(key), torch.Tensor):
            out[key] = diffusion_noise(out[key], noise_step, seed)
            found = True
    if not found:
        raise FacLensError("VCD needs pixel_values in the inputs (an image to distort)")
    return out


def vcd_scores(main: torch.Tensor, contrast: torch.Tensor, alpha: float, beta: float) -> torch.Tensor:
    """VCD's next-token scores from [B, V] logits of the image and of the distorted image."""
    return plausible((1 + alpha) * main - alpha * contrast, main, beta)


@dataclass(frozen=True)
class VCD(Baseline):
    """Visual contrastive decoding. Defaults: the official code's ``alpha=1, beta=0.1``, noise step 500."""

    alpha: float = 1.0
    beta: float = 0.1
    noise_step: int = 500
    seed: int = 0
    name = "vcd"

    def __post_init__(self) -> None:
        check_range("VCD alpha", self.alpha, 0.0)
        check_range("VCD beta", self.beta, 0.0, 1.0)
        if self.beta <= 0:
            raise FacLensError("VCD beta must be > 0 (the plausibility cut-off is log beta)")
        as_int("VCD noise_step", self.noise_step, minimum=0, maximum=DIFFUSION_STEPS - 1)
        as_int("VCD seed", self.seed)

    def contrast(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """The distorted view of normalised ``inputs``."""
        return noised_inputs(inputs, self.noise_step, self.seed)

    def generate(
        self,
        model: LensModel,
        inputs: Mapping[str, Any],
        max_new_tokens: int,
        images: Sequence[Any] | None = None,
        prompts: Sequence[str] | None = None,
        contrast_inputs: Mapping[str, Any] | None = None,
        **generate_kwargs,
    ) -> GenerationResult:
        inputs = model.normalize(inputs, require_image=True)
        contrast = self.contrast(inputs) if contrast_inputs is None else model.normalize(contrast_inputs)
        return paired_generate(
            model,
            inputs,
            contrast,
            lambda main, other: vcd_scores(main, other, self.alpha, self.beta),
            max_new_tokens,
            **generate_kwargs,
        )
