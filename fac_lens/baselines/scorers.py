"""The small interfaces CGD and AGLA need from an external vision-language model (not bundled).

CGD scores candidate sentences against the image with CLIP; AGLA finds the image regions a prompt
is about with BLIP image-text matching and Grad-CAM, and (with ``keep=None``, its official adaptive
setting) how much of the image to keep from BLIP's image-text contrastive score. fac_lens ships
neither model: wrap the one you use in an object with the methods below (README: "Baselines").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import torch


@runtime_checkable
class ImageTextScorer(Protocol):
    """Image-text similarity, e.g. CLIP's cosine similarity of image and text embeddings."""

    def score(self, image: Any, texts: Sequence[str]) -> torch.Tensor:
        """[len(texts)] float similarity of ``image`` with each text (higher: better grounded)."""
        ...


@runtime_checkable
class RelevanceScorer(Protocol):
    """Where in the image a text is grounded, e.g. BLIP ITM with Grad-CAM on its cross-attention."""

    def relevance(self, image: Any, text: str) -> torch.Tensor:
        """[h, w] float >= 0 relevance of each image region (any grid; upsampled to the image)."""
        ...


@runtime_checkable
class ImageTextMatcher(Protocol):
    """How well a text matches an image as a whole, e.g. BLIP's ITC head (cosine similarity of the
    image and text embeddings). AGLA with ``keep=None`` needs it besides :class:`RelevanceScorer`."""

    def match(self, image: Any, text: str) -> float:
        """Image-text match score in [-1, 1] (a cosine similarity)."""
        ...
