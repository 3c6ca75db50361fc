"""VAF, the visual amplification fusion of ClearSight (Yin et al., CVPR 2025).

Follows the official code, github.com/ustc-hyin/ClearSight: the edit is ``AttnAdapter.forward`` in
``visaug/inference/AttnAdapter.py``, the layers and defaults come from ``visaug/inference/
infer_pope.py`` (adapters on layers ``i > 8 and i < 15``) and ``infer_pope.sh`` (``--enh-para 1.15
--sup-para 0.95``). In those layers the pre-softmax attention scores ``z`` are scaled, with no
absolute value: by ``1 + alpha`` on image keys and by ``1 - beta`` on system-prompt keys::

    z' = z * (1 + alpha M_image - beta M_system)

(official ``enh_para = 1 + alpha = 1.15``, ``sup_para = 1 - beta = 0.95``). As in the official code,
the rows edited are the queries after the image: in the prompt's pass the tokens that follow its
last image token, and every generated token (the official prefill edits the rows after its fixed
``SYS_LEN + IMG_LEN`` positions, each decoding step its one row).

The official code hard-codes LLaVA-1.5's system span (``SYS_LEN = 35``: the ``llava_v1``
conversation's system prompt and ``USER:``). Here the system-prompt span is derived from the
processor's chat template (:func:`template_prefix`: what the template puts before any user text),
not hard-coded; ``system_mask=`` gives it explicitly. HF llava-1.5's chat template has no system
prompt (it starts at ``USER:``), so there the template-derived span is only those few tokens, much
shorter than the official 35: pass ``system_mask=`` to reproduce the official span with a prompt
that carries the system text.
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

#: the official layers ``8 < i < 15`` of the 32-layer LLaVA-1.5 (0-based, end exclusive), scaled
#: to depth
PAPER_LAYERS = (9, 15)


def after_last_image(image: torch.Tensor, n_query: int) -> torch.Tensor:
    """[B, Q] True for the query rows (the last ``n_query`` of the ``K`` keys) that come after the
    row's last image key; every row when it has no image key."""
    n_keys = image.shape[1]
    positions = torch.arange(n_keys, device=image.device)
    last = torch.where(image > 0, positions, -1).max(dim=1).values  # [B], -1 without an image
    rows = torch.arange(n_keys - n_query, n_keys, device=image.device)
    return rows[None, :] > last[:, None]


class Amplify(NoWeightEdit):
    """``z * (1 + alpha)`` on image keys, ``z * (1 - beta)`` on system keys, in the query rows
    after the image."""

    def __init__(self, alpha: float, beta: float):
        self.alpha, self.beta = alpha, beta

    def scores(self, scores: torch.Tensor, keys: Keys) -> torch.Tensor:
        image = keys.image[:, None, None, :].to(scores.dtype)
        system = keys.system[:, None, None, :].to(scores.dtype)
        factor = 1 + self.alpha * image - self.beta * system  # [B, 1, 1, K]
        rows = after_last_image(keys.image, scores.shape[-2])[:, None, :, None]  # [B, 1, Q, 1]
        return torch.where(rows, scores * factor, scores)


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
    """ClearSight's visual amplification fusion. Defaults: the official ``alpha=0.15`` (``enh_para
    1.15``), ``beta=0.05`` (``sup_para 0.95``); layers None: the official 9..14 of 32 scaled to the
    model's depth."""

    alpha: float = 0.15
    beta: float = 0.05
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
