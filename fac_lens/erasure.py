"""Hallucination-sensitive effect sizes of erasing each head (seed 004, Appendix A.1).

For a teacher-forced sequence, ``Delta P_h(y_t) = P_M(y_t | y_<t) - P_{M without h}(y_t | y_<t)``
(the probability of the token at position ``t``, read from the logits at ``t - 1``). Over the
hallucinated set H and the faithful set N::

    S_h = mean_{t in H} Delta P_h(y_t) - mean_{t in N} Delta P_h(y_t)
    E_h = S_h / sqrt(var_H + var_N)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from tqdm.auto import tqdm

from .ablation import KINDS, ablate, check_means
from .approx import AllClose
from .contribution import contribution_map
from .errors import FacLensError
from .inputs import model_errors
from .lens_model import LensModel
from .validation import as_int, as_ints

METHODS = ("exact", "gradient")


@dataclass(frozen=True, eq=False)
class ErasureEffects(AllClose):
    """Effect of erasing each head on the tokens of two sets.

    Attributes:
        delta_hallucinated, delta_faithful: float32 [n_layers, n_heads] mean ``Delta P`` over each set.
        sensitivity: float32 [n_layers, n_heads] ``S_h``.
        effect_size: float32 [n_layers, n_heads] ``E_h = S_h / sqrt(var_H + var_N)`` (sample
            variances; a set of one token has variance 0).
        hallucinated_deltas, faithful_deltas: float32 [n_tokens, n_layers, n_heads] per token.
        method: ``"exact"`` (one forward per batch of heads) or ``"gradient"`` (first order).
        kind: ``"zero"`` or ``"mean"``.
    """

    delta_hallucinated: torch.Tensor
    delta_faithful: torch.Tensor
    sensitivity: torch.Tensor
    effect_size: torch.Tensor
    hallucinated_deltas: torch.Tensor
    faithful_deltas: torch.Tensor
    method: str = "exact"
    kind: str = "zero"

    def ranking(self, top: int | None = None) -> list[tuple[int, int, float]]:
        """Heads by effect size, largest first: ``[(layer, head, E_h), ...]``."""
        flat = torch.nan_to_num(self.effect_size, nan=-math.inf).flatten()
        order = torch.argsort(flat, descending=True, stable=True)[:top]
        n_heads = self.effect_size.shape[1]
        return [(int(i) // n_heads, int(i) % n_heads, float(self.effect_size.flatten()[i])) for i in order]


def effect_sizes(hallucinated: torch.Tensor, faithful: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """(mean_H, mean_N, S_h, E_h) from per-token deltas [n_H, L, H] and [n_N, L, H]."""

    def var(x: torch.Tensor) -> torch.Tensor:
        return x.var(0) if x.shape[0] > 1 else torch.zeros_like(x[0])

    mean_h, mean_n = hallucinated.mean(0), faithful.mean(0)
    sensitivity = mean_h - mean_n
    return mean_h, mean_n, sensitivity, sensitivity / (var(hallucinated) + var(faithful)).sqrt()


def repeat_sample(inputs: Mapping[str, Any], copies: int) -> dict[str, Any]:
    """A batch of ``copies`` identical rows from one sample: every tensor is repeated along dim 0
    (image tensors of one sample, such as Qwen's patches or LLaVA-NeXT's tiles, concatenate)."""
    return {k: torch.cat([v] * copies) if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}


def append_tokens(inputs: Mapping[str, Any], tokens: torch.Tensor) -> dict[str, Any]:
    """A teacher-forced sequence: ``tokens`` ([T] or [1, T], e.g. a generated answer) appended to a
    one-sample prompt. ``attention_mask`` grows by ones; any other tensor shaped like
    ``input_ids`` (token types such as ``mm_token_type_ids``) by zeros (text)."""
    ids = inputs["input_ids"]
    tokens = torch.as_tensor(tokens).reshape(1, -1).to(ids)
    if ids.dim() != 2 or ids.shape[0] != 1:
        raise FacLensError("append_tokens extends one sample: give inputs of batch size 1")
    out = dict(inputs)
    for key, value in inputs.items():
        if isinstance(value, torch.Tensor) and value.shape == ids.shape:
            fill = (
                tokens
                if key == "input_ids"
                else (torch.ones_like if key == "attention_mask" else torch.zeros_like)(tokens)
            )
            out[key] = torch.cat([value, fill.to(value)], dim=1)
    return out


def erasure_effects(
    model: LensModel,
    inputs: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    hallucinated: Sequence[int] | Sequence[Sequence[int]],
    faithful: Sequence[int] | Sequence[Sequence[int]],
    kind: str = "zero",
    means: torch.Tensor | None = None,
    method: str = "exact",
    batch_size: int = 8,
    progress: bool = True,
) -> ErasureEffects:
    """Seed 004's hallucination-sensitive effect size of erasing every head.

    Args:
        model: a loaded :class:`LensModel`.
        inputs: one teacher-forced sample (HF kwargs, batch size 1), or a list of them.
        hallucinated, faithful: positions ``t`` of the tokens of each set (their probability is
            read from the logits at ``t - 1``); one list per sample when ``inputs`` is a list
            (a sample may hold tokens of one set only). Tokens of all samples are pooled.
        kind: erasure by ``"zero"`` or ``"mean"`` ablation (:func:`fac_lens.ablate`).
        means: :func:`fac_lens.head_means` output, for ``kind="mean"``.
        method: ``"exact"``: ``1 + n_layers * n_heads`` ablated copies of each sample, run
            ``batch_size`` at a time (``ceil((1 + L*H) / batch_size)`` forwards per sample);
            ``"gradient"``: the first-order estimate ``Delta P ~ dP/dg = -P dL/dg`` from the
            contribution-map gates (one forward and backward per sample; zero ablation only).
        batch_size: ablated copies per forward (``"exact"``).
    """
    if kind not in KINDS:
        raise FacLensError(f"unknown ablation kind {kind!r}; use one of {KINDS}")
    if method not in METHODS:
        raise FacLensError(f"unknown method {method!r}; use one of {METHODS}")
    if method == "gradient" and kind != "zero":
        raise FacLensError("method='gradient' estimates zero ablation (a gate at 0); use kind='zero'")
    if kind == "mean":
        means = check_means(model, means)
    batch_size = as_int("batch_size", batch_size, minimum=1)
    samples, sets = _samples(model, inputs, hallucinated, faithful)
    per_set: list[list[torch.Tensor]] = [[], []]
    for sample, (hall, faith) in tqdm(
        list(zip(samples, sets, strict=True)),
        desc="erasure samples",
        disable=not progress or len(samples) < 2,
    ):
        positions = hall + faith
        if not positions:
            continue
        if method == "exact":
            deltas = _exact(model, sample, positions, kind, means, batch_size, progress)
        else:
            deltas = _gradient(model, sample, positions)
        per_set[0].append(deltas[: len(hall)])
        per_set[1].append(deltas[len(hall) :])
    hall_deltas, faith_deltas = torch.cat(per_set[0]), torch.cat(per_set[1])
    mean_h, mean_n, sensitivity, effect = effect_sizes(hall_deltas, faith_deltas)
    return ErasureEffects(mean_h, mean_n, sensitivity, effect, hall_deltas, faith_deltas, method, kind)


def _samples(model, inputs, hallucinated, faithful):
    """Normalised samples and their (hallucinated, faithful) position lists, checked."""
    if isinstance(inputs, Mapping):
        inputs, hallucinated, faithful = [inputs], [hallucinated], [faithful]
    elif not isinstance(inputs, Sequence) or not inputs:
        raise FacLensError("erasure_effects needs one sample (a dict of HF kwargs) or a list of them")
    if len(hallucinated) != len(inputs) or len(faithful) != len(inputs):
        raise FacLensError(
            f"{len(inputs)} samples but {len(hallucinated)} hallucinated and {len(faithful)} faithful "
            "position lists: give one list of positions per sample"
        )
    samples, sets = [], []
    for sample, hall, faith in zip(inputs, hallucinated, faithful, strict=True):
        sample = model.normalize(sample, require_image=False)
        n_tokens = sample["input_ids"].shape[1]
        if sample["input_ids"].shape[0] != 1:
            raise FacLensError(
                "erasure effects are per sample: pass samples of batch size 1 (a list of them)"
            )
        lists = []
        for name, positions in (("hallucinated", hall), ("faithful", faith)):
            positions = [p % n_tokens if p < 0 else p for p in as_ints(name, positions)]
            if not all(1 <= p < n_tokens for p in positions):
                raise FacLensError(
                    f"{name} positions {positions} must lie in [1, {n_tokens - 1}]: the token at "
                    "position t is scored from the logits at t - 1"
                )
            lists.append(positions)
        samples.append(sample)
        sets.append(tuple(lists))
    for index, name in enumerate(("hallucinated", "faithful")):
        if not any(s[index] for s in sets):
            raise FacLensError(f"no {name} positions in any sample: both sets need at least one token")
    return samples, sets


def _token_probs(model: LensModel, inputs: Mapping[str, Any], positions: list[int]) -> torch.Tensor:
    """[B, T] float32 probability of the token at each position (read from the logits at t - 1)."""
    ids = inputs["input_ids"]
    index = torch.tensor([p - 1 for p in positions], device=ids.device)
    model.reset_state()
    try:
        with torch.no_grad(), model_errors(), model.fast_path():
            logits = model.hf(**inputs, use_cache=False, logits_to_keep=index).logits  # [B, T, V]
    finally:
        model.reset_state()
    probs = torch.softmax(logits.float(), dim=-1)
    targets = ids[:, positions].to(probs.device)  # [B, T]
    return probs.gather(-1, targets[..., None])[..., 0].cpu()


def _exact(model, sample, positions, kind, means, batch_size, progress) -> torch.Tensor:
    """[T, L, H] Delta P of every head: row 0 of the first batch is the unablated model."""
    n_heads_total = model.n_layers * model.n_heads
    masks = torch.zeros(1 + n_heads_total, n_heads_total, dtype=torch.bool)
    masks[1:] = torch.eye(n_heads_total, dtype=torch.bool)
    masks = masks.view(-1, model.n_layers, model.n_heads)
    probs = []
    for start in tqdm(
        range(0, len(masks), batch_size),
        desc="erasure",
        disable=not progress,
        total=-(-len(masks) // batch_size),
    ):
        chunk = masks[start : start + batch_size]
        with ablate(model, chunk, kind, means if kind == "mean" else None):
            probs.append(_token_probs(model, repeat_sample(sample, len(chunk)), positions))
    probs = torch.cat(probs)  # [1 + L*H, T]
    deltas = probs[:1] - probs[1:]  # [L*H, T]
    return deltas.T.reshape(len(positions), model.n_layers, model.n_heads)


def _gradient(model, sample, positions) -> torch.Tensor:
    """[T, L, H] first-order Delta P: P(1) - P(0) ~ dP/dg = -P dL/dg with L = -log P."""
    cm = contribution_map(model, sample, target=None, position=[p - 1 for p in positions], progress=False)
    prob = torch.exp(-cm.loss)  # [T]
    return -prob[:, None, None] * cm.per_token
