"""What one generate call did per sample: how many tokens it generated (up to its first EOS) and,
in dynamic mode, how many heads each forward pass identified.

Forward pass ``p`` (0: prefill, then each decoding step) produces generated token ``p``; a sample
that generated ``n`` tokens (its EOS included) was shaped by passes ``0 .. n-1``; the passes after
its EOS only produce padding while the rest of the batch finishes, and are left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

from ..config import FacConfig
from ..lens_model import LensModel
from ..selection import classify


def eos_token_ids(model: LensModel) -> tuple[int, ...]:
    """The ids that end a generation: the generation config's ``eos_token_id`` (int or list), else
    the tokenizer's; empty when neither has one."""
    ids = getattr(getattr(model.hf, "generation_config", None), "eos_token_id", None)
    if ids is None and model.tokenizer is not None:
        ids = model.tokenizer.eos_token_id
    if ids is None:
        return ()
    return tuple(int(i) for i in (ids if isinstance(ids, Iterable) else [ids]))


def generated_lengths(new_tokens: torch.Tensor, eos_ids: Sequence[int]) -> list[int]:
    """Tokens generated per sample: up to and including the first EOS (the padding after it is not
    generated), all ``T`` when there is none.

    Args:
        new_tokens: [B, T] generated ids (``GenerationResult.new_tokens``).
        eos_ids: the end-of-sequence ids (:func:`eos_token_ids`).
    """
    is_eos = torch.isin(new_tokens, torch.tensor(list(eos_ids), dtype=new_tokens.dtype))  # [B, T]
    first = is_eos.int().argmax(1) + 1  # [B] position after the first EOS (1 when there is none)
    return [int(n) for n in torch.where(is_eos.any(1), first, new_tokens.shape[1])]


def pass_head_counts(
    pass_ratios: Sequence[torch.Tensor], config: FacConfig, lengths: Sequence[int]
) -> list[dict[str, list[int]]]:
    """Per sample: the number of perception and reasoning heads identified (eq. 5 with ``config``'s
    boundaries and thresholds) in each forward pass that produced one of its tokens.

    Args:
        pass_ratios: one float [B, n_layers, n_heads] S_v tensor per pass (``RescaleHandle.pass_ratios``;
            a ``"token"`` query records the mean over the pass's positions, so its counts are those
            of the position mean).
        lengths: generated tokens per sample (:func:`generated_lengths`): sample ``b`` gets passes
            ``0 .. lengths[b]-1``.

    Returns:
        ``[{"perception": [n_passes_b], "reasoning": [n_passes_b]}]``, one dict per sample.
    """
    if not pass_ratios:
        return [{"perception": [], "reasoning": []} for _ in lengths]
    visual = torch.stack(list(pass_ratios))  # [P, B, n_layers, n_heads]
    layer = torch.arange(visual.shape[2])[:, None]
    c = config
    perception, reasoning = classify(visual, layer, c.l_perc, c.l_reas, c.tau_perc, c.tau_reas)
    n_perc, n_reas = perception.sum((2, 3)), reasoning.sum((2, 3))  # [P, B]
    return [
        {"perception": n_perc[:n, b].tolist(), "reasoning": n_reas[:n, b].tolist()}
        for b, n in enumerate(lengths)
    ]
