"""One forward of the multimodal core with a probe on every text attention layer.

The shared step of the analyses that read each layer's queries and keys once (concentration,
attention on the image): fac_lens's attention function, no gradients, the model's per-call state
cleared before and after, model errors translated.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from .attention_probe import ATTENTION_NAME, Probe, attached_probes
from .inputs import model_errors
from .lens_model import LensModel


def probed_forward(model: LensModel, inputs: Mapping[str, Any], make_probe: Callable[[int], Probe]) -> None:
    """Run the multimodal core on normalised ``inputs`` with ``make_probe(layer)`` attached to
    each text attention module (the probes record what they need; nothing is returned)."""
    model.reset_state()
    try:
        with (
            torch.no_grad(),
            model_errors(),
            model.attention_implementation(ATTENTION_NAME),
            model.fast_path(),
            attached_probes(model.attention_modules, make_probe),
        ):
            model.spec.multimodal_core(model.hf)(**inputs)
    finally:
        model.reset_state()
