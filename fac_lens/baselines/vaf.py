"""VAF, the visual amplification fusion of ClearSight (Yin et al., CVPR 2025).

In middle layers the pre-softmax attention scores ``z`` of every query are raised on image keys
and lowered on system-prompt keys::

    z' = z + alpha |z| M_image - beta |z| M_system

The system-prompt span is derived from the processor's chat template (:func:`template_prefix`:
what the template puts before any user text), not hard-coded; ``system_mask=`` gives it explicitly.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import FacLensError
from ..generation import GenerationResult, hf_generate
from ..lens_model import LensModel
from .attention_edit import Keys, NoWeightEdit, attention_edits
from .base import Baseline, check_range
from .layers import resolve_layers

#: the paper's middle layers of the 32-layer LLaVA-1.5 (0-based, end exclusive), scaled to depth
PAPER_LAYERS = (8, 15)


class Amplify(NoWeightEdit):
    """``z + alpha |z|`` on image keys, ``z - beta |z|`` on system keys, every query row."""

    def __init__(self, alpha: float, beta: float):
        self.alpha, self.beta = alpha, beta

    def scores(self, scores: torch.Tensor, keys: Keys) -> torch.Tensor:
        image = keys.image[:, None, None, :].to(scores.dtype)
        system = keys.system[:, None, None, :].to(scores.dtype)
        return scores + scores.abs() * (self.alpha * image - self.beta * system)


def template_prefix(processor: Any) -> list[int]:
    """Token ids the processor's chat template puts before any user text (its system prompt and
    the user header): the common prefix of two rendered one-message conversations."""
    tokenizer = getattr(processor, "tokenizer", processor)
    if (
        processor is None
        or not getattr(processor, "chat_template", None)
        and not getattr(tokenizer, "chat_template", None)
    ):
        raise FacLensError(
            "VAF derives the system-prompt span from the processor's chat template, and this model has "
            "none: pass system_mask= ([B, N] 1 on system tokens) to fl.generate, or use VAF(beta=0)"
        )

    def ids(text: str) -> list[int]:
        messages = [{"role": "user", "content": [{"type": "text", "text": text}]}]
        rendered = processor.apply_chat_template(messages, add_generation_prompt=True)
        return list(tokenizer(rendered, add_special_tokens=False)["input_ids"])

    first, second = ids("yes"), ids("no")
    n = 0
    while n < min(len(first), len(second)) and first[n] == second[n]:
        n += 1
    return first[:n]


def system_mask_from_prefix(
    input_ids: torch.Tensor, attention_mask: torch.Tensor | None, prefix: list[int]
) -> torch.Tensor:
    """[B, N] 1.0 where each row's first real tokens equal ``prefix`` (0 elsewhere)."""
    mask = torch.zeros(input_ids.shape, dtype=torch.float32, device=input_ids.device)
    if not prefix:
        return mask
    target = torch.tensor(prefix, device=input_ids.device)
    for b in range(input_ids.shape[0]):
        start = 0 if attention_mask is None else int(attention_mask[b].long().argmax())
        window = input_ids[b, start : start + len(prefix)]
        if len(window) == len(prefix) and bool((window == target).all()):
            mask[b, start : start + len(prefix)] = 1.0
    return mask


@dataclass(frozen=True)
class VAF(Baseline):
    """ClearSight's visual amplification fusion. Defaults ``alpha=0.15``, ``beta=0.1``; layers
    None: the paper's 8..14 of 32 scaled to the model's depth."""

    alpha: float = 0.15
    beta: float = 0.1
    start: int | None = None
    end: int | None = None
    name = "vaf"

    def __post_init__(self) -> None:
        check_range("VAF alpha", self.alpha, 0.0)
        check_range("VAF beta", self.beta, 0.0, 1.0)

    def check_model(self, n_layers: int) -> None:
        resolve_layers("VAF", self.start, self.end, PAPER_LAYERS, n_layers)

    def system_mask(self, model: LensModel, inputs: Mapping[str, Any]) -> torch.Tensor:
        """[B, N] the prompt's system-prompt tokens, from the processor's template."""
        if self.beta == 0:
            return torch.zeros(inputs["input_ids"].shape)
        prefix = template_prefix(model.processor)
        return system_mask_from_prefix(inputs["input_ids"], inputs.get("attention_mask"), prefix)

    def _system(self, model: LensModel, inputs: Mapping[str, Any], system_mask: Any) -> torch.Tensor:
        system = self.system_mask(model, inputs) if system_mask is None else torch.as_tensor(system_mask)
        if tuple(system.shape) != tuple(inputs["input_ids"].shape):
            raise FacLensError(
                f"system_mask has shape {tuple(system.shape)}, the prompt {tuple(inputs['input_ids'].shape)}: "
                "give one 0/1 entry per prompt token"
            )
        return system.float().to(inputs["input_ids"].device)

    @contextmanager
    def applied(
        self, model: LensModel, inputs: Mapping[str, Any], system_mask: torch.Tensor | None = None
    ) -> Iterator[None]:
        """Every forward inside the block runs the edit; ``inputs`` fix the prompt's system span."""
        layers = set(resolve_layers("VAF", self.start, self.end, PAPER_LAYERS, model.n_layers))
        system = self._system(model, inputs, system_mask)
        edit = Amplify(self.alpha, self.beta)
        with attention_edits(model, lambda layer: edit if layer in layers else None, system):
            yield

    def generate(
        self,
        model: LensModel,
        inputs: Mapping[str, Any],
        max_new_tokens: int,
        images: Sequence[Any] | None = None,
        prompts: Sequence[str] | None = None,
        system_mask: torch.Tensor | None = None,
        **generate_kwargs,
    ) -> GenerationResult:
        self.check_model(model.n_layers)
        inputs = model.normalize(inputs, require_image=True)
        system = self._system(model, inputs, system_mask)  # checked before any work
        context = lambda: self.applied(model, inputs, system)  # noqa: E731
        return hf_generate(model, inputs, max_new_tokens, context, **generate_kwargs)
