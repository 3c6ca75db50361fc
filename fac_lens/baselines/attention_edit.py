"""Edit attention scores (before softmax) or weights (after it) per layer, inside a block.

PAI, VAF/ClearSight and the middle-layer method change the text decoder's attention itself, which
SDPA does not expose. Inside :func:`attention_edits` the text decoder runs an eager attention
function registered with transformers' ``AttentionInterface`` under :data:`EDIT_NAME`: for a layer
with an edit it computes ``scores = q k^T * scaling`` (softcapped where the model softcaps), lets the
edit change them, masks, applies the softmax in float32, lets the edit change the weights, and
multiplies by the values. Layers without an edit run plain SDPA.

Which keys are image tokens (and, for ClearSight, system-prompt tokens) is tracked across the
passes of a generation by :class:`KeyLabels` (the prompt is the first pass; generated keys are text).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

from ..errors import FacLensError
from ..lens_model import LensModel

EDIT_NAME = "fac_lens_edit"
EDIT_ATTR = "_fac_lens_edit"


@dataclass
class Keys:
    """What one attention call sees: key labels aligned to its keys.

    Attributes:
        image: [B, K] 1.0 on image keys.
        system: [B, K] 1.0 on system-prompt keys (all zero unless the block was given a span).
    """

    image: torch.Tensor
    system: torch.Tensor


class Edit(Protocol):
    """One layer's edit. ``scores`` [B, H, Q, K] before the mask and softmax; ``weights``
    [B, H, Q, K] after it. Each returns the edited tensor (or the one it got)."""

    def scores(self, scores: torch.Tensor, keys: Keys) -> torch.Tensor: ...

    def weights(self, weights: torch.Tensor, keys: Keys) -> torch.Tensor: ...


class KeyLabels:
    """Image and system-prompt labels of every token fed in a block, aligned to each layer's keys.

    A pass whose first attention call receives no cached key starts a new sequence; any other pass
    continues it (generated tokens are text). Rows without an image are allowed (the text-only
    branch of PAI's guidance).
    """

    def __init__(self, image_token_id: int, system: torch.Tensor | None = None):
        self.image_token_id = image_token_id
        self.system_prompt = system  # [B, N0] over the prompt, or None
        self.image: torch.Tensor | None = None  # [B, T] every token so far
        self.system: torch.Tensor | None = None
        self._new: torch.Tensor | None = None
        self._has_pixels = False
        self._aligned = False

    def start_pass(self, module, args, kwargs) -> None:
        """Forward pre-hook on the multimodal core: this pass's ``input_ids``."""
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is None:
            raise FacLensError(
                "attention edits read image positions from input_ids; this forward passed inputs_embeds only"
            )
        self._new = ids
        self._has_pixels = kwargs.get("pixel_values") is not None
        self._aligned = False

    def _align(self, n_keys: int, n_query: int) -> None:
        ids = self._new
        image = (ids == self.image_token_id).float()
        system = torch.zeros_like(image)
        if n_keys == n_query or self.image is None:  # a fresh sequence: the prompt
            if self.system_prompt is not None:
                n0 = min(self.system_prompt.shape[1], ids.shape[1])
                system[:, :n0] = self.system_prompt[:, :n0].to(system)
            self.image, self.system = image, system
        else:
            if not self._has_pixels:
                image = torch.zeros_like(image)  # a generated token equal to the image id is text
            self.image = torch.cat([self.image, image], dim=1)
            self.system = torch.cat([self.system, system], dim=1)
        self._aligned = True

    def keys(self, layer: int, module: nn.Module, n_keys: int, n_query: int) -> Keys:
        if self._new is None:
            raise FacLensError("an attention call ran without a forward of the multimodal core around it")
        if not self._aligned:
            self._align(n_keys, n_query)
        if n_keys > self.image.shape[1]:
            raise FacLensError(
                f"layer {layer}'s attention received {n_keys} keys but the block saw "
                f"{self.image.shape[1]} tokens: run the whole generation inside the block"
            )
        return Keys(self.image[:, -n_keys:], self.system[:, -n_keys:])


def edited_attention(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    softcap: float | None = None,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Eager attention with the module's edit; SDPA where the module has none.

    Shapes: query [B, H, Q, D], key [B, KV, K, D], value [B, KV, K, Dv]; returns [B, Q, H, Dv].
    """
    edit = getattr(module, EDIT_ATTR, None)
    if edit is None:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling, **kwargs)
    layer, labels, layer_edit = edit
    groups = query.shape[1] // key.shape[1]
    if groups > 1:
        key = key.repeat_interleave(groups, dim=1)
        value = value.repeat_interleave(groups, dim=1)
    scale = scaling if scaling is not None else query.shape[-1] ** -0.5
    scores = torch.matmul(query, key.transpose(2, 3)) * scale  # [B, H, Q, K]
    if softcap is not None:
        scores = torch.tanh(scores / softcap) * softcap
    n_query, n_keys = scores.shape[-2:]
    keys = labels.keys(layer, module, n_keys, n_query)
    scores = layer_edit.scores(scores, keys)
    if attention_mask is None:  # as SDPA: causal when Q > 1, nothing masked for one query
        positions = torch.arange(n_query, device=scores.device) + (n_keys - n_query)
        attention_mask = (torch.arange(n_keys, device=scores.device)[None, :] <= positions[:, None])[
            None, None
        ]
    if attention_mask.dtype == torch.bool:
        # the dtype's minimum, as HF's eager masks: a fully masked (padding) row stays finite
        scores = scores.masked_fill(~attention_mask, torch.finfo(scores.dtype).min)
    else:
        scores = scores + attention_mask[..., :n_keys]
    weights = torch.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    weights = layer_edit.weights(weights, keys)
    out = torch.matmul(weights, value).transpose(1, 2).contiguous()
    return out, weights


def _register() -> None:
    """Register the attention and mask functions (idempotent; on first use, never on import)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(EDIT_NAME, edited_attention)
    AttentionMaskInterface.register(EDIT_NAME, sdpa_mask)


@contextmanager
def attention_edits(
    model: LensModel,
    edit_for_layer: Callable[[int], Edit | None],
    system: torch.Tensor | None = None,
) -> Iterator[KeyLabels]:
    """Within the block, every forward of ``model`` runs each layer's edit (None: no edit).

    Args:
        edit_for_layer: ``f(layer) -> Edit | None``, called once per layer on entry.
        system: optional [B, N0] 1.0 on the prompt's system-prompt tokens.

    On exit (normally or by an exception) the attention function, every edit and the pre-hook are
    removed: the model computes exactly what it computed before.
    """
    _register()
    labels = KeyLabels(model.image_token_id, system)
    core = model.spec.multimodal_core(model.hf)
    modules = model.attention_modules
    with ExitStack() as stack:
        stack.enter_context(model.attention_implementation(EDIT_NAME))
        handle = core.register_forward_pre_hook(labels.start_pass, with_kwargs=True)
        stack.callback(handle.remove)
        for layer, module in enumerate(modules):
            edit = edit_for_layer(layer)
            if edit is not None:
                stack.callback(_detach, module)
                setattr(module, EDIT_ATTR, (layer, labels, edit))
        yield labels


def _detach(module: nn.Module) -> None:
    if EDIT_ATTR in module.__dict__:
        delattr(module, EDIT_ATTR)


class NoWeightEdit:
    """Mixin: an edit that leaves the softmax weights alone."""

    def weights(self, weights: torch.Tensor, keys: Keys) -> torch.Tensor:
        return weights


class NoScoreEdit:
    """Mixin: an edit that leaves the scores alone."""

    def scores(self, scores: torch.Tensor, keys: Keys) -> torch.Tensor:
        return scores
