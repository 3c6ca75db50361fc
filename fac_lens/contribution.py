"""Gradient gate contribution maps (Appendix H.1)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from tqdm.auto import tqdm

from .approx import AllClose
from .errors import FacLensError
from .head_hooks import head_scaling
from .inputs import model_errors
from .lens_model import LensModel
from .teacher_forcing import teacher_forcing
from .validation import as_int, as_ints, is_int_like

NORMALIZATIONS = ("layer", "global")


@dataclass(frozen=True, eq=False)
class ContributionMap(AllClose):
    """Per-head sensitivity of ``L = -log p(target | prefix)`` to a gate on the head's output.

    For a span of targets the maps are per-token maps averaged: ``signed`` is the mean of the
    signed maps, ``importance`` the mean of their absolute values (so ``importance == |signed|``
    holds exactly for a single target).

    Attributes:
        signed: float32 [n_layers, n_heads] ``dL/dg`` at g = 1 (negative: the head supports the
            target).
        importance: float32 [n_layers, n_heads] ``|dL/dg|``.
        targets: the target token ids.
        positions: the positions whose next-token distributions were scored.
        per_token: float32 [T, n_layers, n_heads] signed map of each target.
        loss: float32 [T] the losses at g = 1.
    """

    signed: torch.Tensor
    importance: torch.Tensor
    targets: tuple[int, ...]
    positions: tuple[int, ...]
    per_token: torch.Tensor
    loss: torch.Tensor

    def normalized(self, kind: str = "layer") -> torch.Tensor:
        """Importance normalised per layer (eq. 47) or over all heads (eq. 48)."""
        if kind == "layer":
            total = self.importance.sum(-1, keepdim=True)
        elif kind == "global":
            total = self.importance.sum()
        else:
            raise FacLensError(f"unknown normalization {kind!r}; use one of {NORMALIZATIONS}")
        return self.importance / torch.where(total > 0, total, torch.ones_like(total))

    def ranking(self, kind: str = "global", top: int | None = None) -> list[tuple[int, int, float]]:
        """Heads sorted by normalised importance, most important first (eq. 49).

        Returns:
            ``[(layer, head, score), ...]``.
        """
        scores = self.normalized(kind)
        order = torch.argsort(scores.flatten(), descending=True, stable=True)
        if top is not None:
            order = order[:top]
        n_heads = scores.shape[1]
        return [(int(i) // n_heads, int(i) % n_heads, float(scores.flatten()[i])) for i in order]


def contribution_map(
    model: LensModel,
    inputs: Mapping[str, Any],
    target: int | Sequence[int] | None = None,
    position: int | Sequence[int] | slice = -1,
    progress: bool = True,
    prompt_length: int | None = None,
    chunk_size: int = 1,
) -> ContributionMap:
    """Gates ``g = 1`` on every head's output (the ``o_proj`` input, ``hook_z``); read ``dL/dg``.

    Works inside a ``fl.rescale`` block, so before/after maps come from the same code. Maps are
    causal: the map at a position never depends on tokens after it. Under dynamic rescaling the
    positions before ``prompt_length`` share one identification over the prompt (the prefill's)
    and every later position is identified from its own attention row (its decoding step's), so
    a generated trace is scored with the gains generation used (:func:`teacher_forcing`).

    Args:
        model: a loaded :class:`LensModel`.
        inputs: HF kwargs for one sample (batch size 1).
        target: the token id(s) whose probability is scored. None: the tokens that follow
            ``position`` in ``input_ids`` (teacher forcing, e.g. a generated answer).
        position: the position(s) whose logits predict the target(s); negative values count from
            the end; a slice selects a span.
        progress: show a bar when scoring several targets.
        prompt_length: where the generated trace begins (``GenerationResult.prompt_length``);
            default: just after the first scored position. At most that, so that no scored
            position depends on later tokens. Used by dynamic rescaling only.
        chunk_size: how many targets share one backward pass (a vmapped backward over one-hot
            output gradients, ``is_grads_batched``). The memory bound: each backward holds
            ``chunk_size`` copies of the activation gradients.

    Cost model (T targets on an N-token input; measured in ``bench/bench_span_contribution.py``):
    one forward with a graph kept for all backwards, then ``ceil(T / chunk_size)`` backwards.
    Time ~ ``F(N) + ceil(T / c) * B_c(N)``, with ``B_1`` about two forwards and ``B_c`` growing
    sub-linearly in ``c`` where the hardware has parallelism to spare (a GPU). Peak memory ~
    weights + the forward graph ``A(N)`` (linear in N with SDPA, ``n_layers`` x a few
    ``N x d_model`` tensors) + ``c`` x one backward's activation gradients (about ``A(N)`` again).
    """
    inputs = model.normalize(inputs, require_image=False)
    ids = inputs["input_ids"]
    if ids.shape[0] != 1:
        raise FacLensError(
            f"contribution maps are per sample: got a batch of {ids.shape[0]}; pass one sample"
        )
    n_tokens = ids.shape[1]
    positions = _positions(position, n_tokens)
    targets = _targets(target, positions, ids[0], n_tokens, int(model.spec.text_config(model.hf).vocab_size))
    trace_from = _trace_start(prompt_length, positions)
    chunk_size = as_int("chunk_size", chunk_size, minimum=1)
    gate_dtype = torch.promote_types(model.dtype, torch.float32)
    # one leaf per layer, on the device that layer computes on (dispatched models span several)
    gates = [
        torch.ones(model.n_heads, dtype=gate_dtype, device=device, requires_grad=True)
        for device in model.layer_devices()
    ]
    index = torch.tensor(positions, device=model.device)
    model.reset_state()
    try:
        with (
            torch.enable_grad(),
            _frozen_parameters(model.hf),
            model.fast_path(),
            head_scaling(model, gates.__getitem__),
            teacher_forcing(trace_from),
            model_errors(),
        ):
            # only the scored positions go through lm_head (a 152k vocabulary costs a layer's worth)
            scored = model.hf(**inputs, use_cache=False, logits_to_keep=index).logits[0]  # [T, V]
            log_probs = torch.log_softmax(scored.to(torch.promote_types(scored.dtype, torch.float32)), dim=-1)
            losses = -log_probs[torch.arange(len(targets)), torch.tensor(targets, device=scored.device)]
            starts = range(0, len(targets), chunk_size)
            per_token = [
                _backward(losses[start : start + chunk_size], gates, last=start + chunk_size >= len(targets))
                for start in tqdm(starts, desc="contribution", disable=not progress or len(starts) < 2)
            ]
    finally:
        model.reset_state()
    stacked = torch.cat(per_token)  # [T, L, H]
    if not bool(torch.isfinite(stacked).all()):
        raise FacLensError(
            f"the contribution map's gradients overflowed (NaN or inf) in {model.dtype}: float16 "
            "keeps a narrow range (Gemma 3 overflows in its backward even in plain HF); load the "
            "model with dtype=torch.bfloat16 or torch.float32"
        )
    return ContributionMap(
        signed=stacked.mean(0),
        importance=stacked.abs().mean(0),
        targets=tuple(targets),
        positions=tuple(positions),
        per_token=stacked,
        loss=losses.detach().float().cpu(),
    )


def _backward(losses: torch.Tensor, gates: list[torch.Tensor], last: bool) -> torch.Tensor:
    """d loss_t / d gates for a chunk of losses ([c]), in one (batched) backward. [c, L, H] float32."""
    if len(losses) == 1:
        grads = [g[None] for g in torch.autograd.grad(losses[0], gates, retain_graph=not last)]
    else:
        one_hot = torch.eye(len(losses), dtype=losses.dtype, device=losses.device)
        grads = torch.autograd.grad(
            losses, gates, grad_outputs=one_hot, is_grads_batched=True, retain_graph=not last
        )  # one [c, H] per layer
    return torch.stack([g.detach().float().cpu() for g in grads], dim=1)


@contextmanager
def _frozen_parameters(module: torch.nn.Module) -> Iterator[None]:
    """No parameter gradients are needed: freezing them saves activation memory. Restored after."""
    trainable = [p for p in module.parameters() if p.requires_grad]
    for parameter in trainable:
        parameter.requires_grad_(False)
    try:
        yield
    finally:
        for parameter in trainable:
            parameter.requires_grad_(True)


def _positions(position: int | Sequence[int] | slice, n_tokens: int) -> list[int]:
    if isinstance(position, slice):
        try:
            chosen = list(range(n_tokens))[position]
        except (TypeError, ValueError) as error:
            raise FacLensError(f"position={position!r} is not a slice of ints with a step != 0") from error
    else:
        chosen = as_ints("position", position)
    out = []
    for p in chosen:
        if not -n_tokens <= p < n_tokens:
            raise FacLensError(f"position {p} is outside the sequence of {n_tokens} tokens")
        out.append(p % n_tokens)
    if not out:
        raise FacLensError("the position selection is empty")
    return out


def _trace_start(prompt_length: int | None, positions: list[int]) -> int:
    """Where the trace begins: ``prompt_length``, checked to keep every scored position causal."""
    earliest = min(positions) + 1
    if prompt_length is None:
        return earliest
    if not is_int_like(prompt_length) or not 1 <= int(prompt_length) <= earliest:
        raise FacLensError(
            f"prompt_length={prompt_length!r} must be an int in [1, {earliest}]: the first scored "
            f"position is {earliest - 1}, and a longer prompt would let its map depend on the tokens "
            "after it. Score positions inside the trace, or pass the generation's prompt_length"
        )
    return int(prompt_length)


def _targets(target, positions: list[int], ids: torch.Tensor, n_tokens: int, vocab_size: int) -> list[int]:
    if target is None:
        if max(positions) >= n_tokens - 1:
            raise FacLensError(
                "target=None scores the token after each position, but the last position has no "
                "next token; give target ids, or positions before the last"
            )
        return [int(ids[p + 1]) for p in positions]
    targets = as_ints("target", target)
    bad = [t for t in targets if not 0 <= t < vocab_size]
    if bad:
        raise FacLensError(f"target id(s) {bad} are outside the vocabulary [0, {vocab_size})")
    if len(targets) != len(positions):
        raise FacLensError(
            f"{len(targets)} targets for {len(positions)} positions; give one target per position"
        )
    return targets
