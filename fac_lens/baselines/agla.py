"""AGLA, assembly of global and local attention (An et al., CVPR 2025).

Follows the official code, github.com/Lackel/AGLA: the view is built in ``eval/augmentation.py``
(``augmentation``), the logits are assembled in ``eval/sample.py``, the defaults are the ``argparse``
options of ``eval/run_llava.py`` (``--alpha 2.0 --beta 0.5``).

An image-prompt matching model (BLIP ITM with Grad-CAM in the paper) says which regions of the image
the prompt is about; masking the others gives an augmented, local view ``v^a``. Decoding assembles
the logits of the global view (the original image) and of the local view::

    l(y) = l(y | v, x) + alpha l(y | v^a, x)

restricted to the adaptive plausibility set of the original view (``beta``), as in VCD.
The pixels kept are the ``keep`` fraction with the highest relevance. ``keep=None`` (the default) is
the official adaptive fraction ``keep = min(1 - s_ITC / 2, 1 - 1e-5)``, with ``s_ITC`` the BLIP
image-text contrastive (cosine) score of the image and the prompt: the better the whole image matches
the prompt, the more of it is masked. It needs a scorer that also has ``match(image, text)``
(:class:`~fac_lens.baselines.scorers.ImageTextMatcher`); a float ``keep`` is a fixed fraction.
``contrast_inputs=`` gives the augmented view explicitly.

What differs from the official code: it samples (``do_sample=True``) where this decodes greedily,
and it masks the image resized to BLIP's 384 x 384 (Grad-CAM smoothed by LAVIS's ``getAttMap``)
before LLaVA's processor; here the relevance map is upsampled to the image's own size, and how it
is computed and smoothed is the scorer's business.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..errors import FacLensError
from ..generation import GenerationResult
from ..lens_model import LensModel
from .base import Baseline, check_range
from .paired import paired_generate, plausible
from .scorers import ImageTextMatcher, RelevanceScorer

#: the official cap on the adaptive kept fraction (``min(ratio, 1 - 10**-5)``)
MAX_KEEP = 1 - 1e-5


def mask_image(image: Any, relevance: torch.Tensor, keep: float) -> Any:
    """``image`` with its least relevant pixels set to 0: the ``keep`` fraction of pixels with the
    highest ``relevance`` (an [h, w] map, upsampled by nearest neighbour) is kept.

    ``image``: a PIL image, an [H, W, C] array, or a [C, H, W] tensor; returned in the same form.
    """
    is_tensor = isinstance(image, torch.Tensor)
    is_pil = hasattr(image, "convert") and not is_tensor
    array = (
        image.permute(1, 2, 0).numpy() if is_tensor else np.asarray(image.convert("RGB") if is_pil else image)
    )
    height, width = array.shape[:2]
    rel = torch.as_tensor(relevance, dtype=torch.float32)
    if rel.dim() != 2:
        raise FacLensError(f"a relevance map must be [h, w], got shape {tuple(rel.shape)}")
    full = torch.nn.functional.interpolate(rel[None, None], size=(height, width), mode="nearest")[0, 0]
    n_keep = max(1, round(keep * height * width))
    threshold = full.flatten().topk(n_keep).values.min()
    kept = (full >= threshold).numpy()
    masked = array * kept[..., None].astype(array.dtype) if array.ndim == 3 else array * kept
    if is_tensor:
        return torch.from_numpy(np.ascontiguousarray(masked)).permute(2, 0, 1).to(image.dtype)
    if is_pil:
        from PIL import Image

        return Image.fromarray(masked.astype(np.uint8))
    return masked


def adaptive_keep(match: float) -> float:
    """The official kept fraction ``min(1 - s / 2, 1 - 1e-5)`` from an image-text match score
    ``s`` in [-1, 1]."""
    score = check_range("AGLA's image-text match score", match, -1.0, 1.0)
    return min(1 - score / 2, MAX_KEEP)


def agla_scores(main: torch.Tensor, local: torch.Tensor, alpha: float, beta: float) -> torch.Tensor:
    """AGLA's next-token scores from [B, V] logits of the global and the local view."""
    return plausible(main + alpha * local, main, beta)


@dataclass(frozen=True)
class AGLA(Baseline):
    """Assembly of global and local attention. ``scorer``: a :class:`RelevanceScorer` (BLIP ITM
    with Grad-CAM in the paper; not bundled). Defaults: the official ``alpha=2``, ``beta=0.5``,
    ``keep=None`` (adaptive: ``1 - s_ITC / 2``, which needs the scorer's ``match``)."""

    scorer: RelevanceScorer | None = None
    alpha: float = 2.0
    beta: float = 0.5
    keep: float | None = None
    name = "agla"
    needs_images = True

    def __post_init__(self) -> None:
        check_range("AGLA alpha", self.alpha, 0.0)
        check_range("AGLA beta", self.beta, 0.0, 1.0)
        if self.keep is not None:
            check_range("AGLA keep", self.keep, 0.0, 1.0)
        if self.beta <= 0 or (self.keep is not None and self.keep <= 0):
            raise FacLensError("AGLA beta and keep must be > 0")
        if self.scorer is not None and not isinstance(self.scorer, RelevanceScorer):
            raise FacLensError("AGLA's scorer needs a relevance(image, text) -> [h, w] tensor method")
        if self.scorer is not None:
            self._check_matcher()

    def _check_matcher(self) -> None:
        if self.keep is None and not isinstance(self.scorer, ImageTextMatcher):
            raise FacLensError(
                "AGLA(keep=None) sets the kept fraction from an image-text match score (1 - s/2, BLIP "
                "ITC in the official code): give the scorer a match(image, text) -> float method with "
                "scores in [-1, 1], or pass a fixed fraction, e.g. AGLA(keep=0.5)"
            )

    def kept_fraction(self, image: Any, text: str) -> float:
        """``keep``, or the adaptive fraction from the scorer's match score when ``keep`` is None."""
        if self.keep is not None:
            return self.keep
        self._check_matcher()
        return adaptive_keep(self.scorer.match(image, text))

    def local_view(self, model: LensModel, images: Sequence[Any], prompts: Sequence[str]) -> dict[str, Any]:
        """The augmented inputs: each image masked by its prompt's relevance, through the processor."""
        masked = [
            mask_image(image, self.scorer.relevance(image, text), self.kept_fraction(image, text))
            for image, text in zip(images, prompts, strict=True)
        ]
        return model.prepare(masked, list(prompts))

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
        if contrast_inputs is None:
            if self.scorer is None or images is None or prompts is None:
                raise FacLensError(
                    "AGLA builds its local view from a relevance scorer, the raw images and the prompts: "
                    "give AGLA(scorer=...) and fl.generate(..., images=..., prompts=...), or pass "
                    "contrast_inputs= (the masked image's inputs)"
                )
            contrast = self.local_view(model, images, prompts)
        else:
            contrast = model.normalize(contrast_inputs)
        return paired_generate(
            model,
            inputs,
            contrast,
            lambda main, local: agla_scores(main, local, self.alpha, self.beta),
            max_new_tokens,
            **generate_kwargs,
        )
