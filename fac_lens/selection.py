"""Functional head identification (paper eq. 5)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .approx import AllClose
from .errors import FacLensError
from .ratios import HeadRatios
from .validation import as_int, is_int_like


def check_boundaries(
    n_layers: int, l_perc: int, l_reas: int, tau_perc: float, tau_reas: float, upper: float = 1.0
) -> None:
    """Raise a :class:`FacLensError` naming the bad value and the allowed range (layers may be
    numpy integers or 0-d integer tensors)."""
    for name, value in (("l_perc", l_perc), ("l_reas", l_reas)):
        if not is_int_like(value) or not 0 <= int(value) <= n_layers - 1:
            raise FacLensError(
                f"{name}={value!r} is outside the model's layers: use an int layer_idx in "
                f"[0, {n_layers - 1}] (0-based, as HF layer_idx and TransformerLens blocks.l)"
            )
    for name, value in (("tau_perc", tau_perc), ("tau_reas", tau_reas)):
        check_ratio(name, value, upper)


def check_ratio(name: str, value: float, upper: float = 1.0) -> None:
    """A threshold: a real number in [0, upper] (NaN and non-numbers refused; ``upper`` is inf
    for ratios normalised by the image share)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if isinstance(value, (bool, str)) or not 0.0 <= number <= upper or number == float("inf"):
        allowed = "[0, 1]" if upper == 1.0 else f"[0, {upper:g}]"
        raise FacLensError(f"{name}={value!r} is not a ratio: use a number in {allowed}")


def classify(
    visual: torch.Tensor,
    layer: torch.Tensor | int,
    l_perc: int,
    l_reas: int,
    tau_perc: float,
    tau_reas: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 5 on any tensor of S_v values.

    Args:
        visual: S_v values, any shape.
        layer: layer index of each value (broadcastable to ``visual``).

    Returns:
        (perception, reasoning) bool masks shaped like ``visual``.
    """
    layer = torch.as_tensor(layer, device=visual.device)
    perception = (layer <= l_perc) & (visual >= tau_perc)
    reasoning = (layer >= l_reas) & (visual <= tau_reas)
    return perception, reasoning


@dataclass(frozen=True, eq=False)
class HeadSelection(AllClose):
    """Perception- and reasoning-oriented heads.

    Attributes:
        perception: bool [n_layers, n_heads]: ``l <= l_perc and S_v >= tau_perc``.
        reasoning: bool [n_layers, n_heads]: ``l >= l_reas and S_v <= tau_reas``.
        visual: [n_layers, n_heads] the S_v values the selection was made from.
        l_perc, l_reas, tau_perc, tau_reas: the boundaries and thresholds used.
    """

    perception: torch.Tensor
    reasoning: torch.Tensor
    visual: torch.Tensor
    l_perc: int
    l_reas: int
    tau_perc: float
    tau_reas: float

    @property
    def n_layers(self) -> int:
        return self.perception.shape[0]

    @property
    def n_heads(self) -> int:
        return self.perception.shape[1]

    @property
    def layer_index(self) -> torch.Tensor:
        """[n_layers, 1] layer ids, broadcastable over heads."""
        return torch.arange(self.n_layers)[:, None]

    @property
    def in_band(self) -> torch.Tensor:
        """bool [n_layers, n_heads]: heads in the perception or reasoning layer band."""
        layer = self.layer_index.expand(self.n_layers, self.n_heads)
        return (layer <= self.l_perc) | (layer >= self.l_reas)

    @property
    def unlabeled(self) -> torch.Tensor:
        """bool [n_layers, n_heads]: heads in neither class."""
        return ~(self.perception | self.reasoning)

    @property
    def counts(self) -> dict[str, int]:
        """Number of heads per class (``both`` is possible only when tau_reas >= tau_perc)."""
        return {
            "perception": int(self.perception.sum()),
            "reasoning": int(self.reasoning.sum()),
            "both": int((self.perception & self.reasoning).sum()),
            "unlabeled": int(self.unlabeled.sum()),
            "total": self.n_layers * self.n_heads,
        }

    @property
    def fractions(self) -> dict[str, float]:
        """Fraction of all heads per class."""
        total = self.n_layers * self.n_heads
        return {k: v / total for k, v in self.counts.items() if k != "total"}

    def per_layer(self) -> dict[str, torch.Tensor]:
        """Per-layer counts: {"perception": [n_layers], "reasoning": [n_layers]}."""
        return {"perception": self.perception.sum(1), "reasoning": self.reasoning.sum(1)}

    def summary(self) -> str:
        """One line with the settings and the counts."""
        c, f = self.counts, self.fractions
        return (
            f"l_perc={self.l_perc} tau_perc={self.tau_perc:g} -> {c['perception']} perception heads "
            f"({f['perception']:.1%}); l_reas={self.l_reas} tau_reas={self.tau_reas:g} -> "
            f"{c['reasoning']} reasoning heads ({f['reasoning']:.1%}); of {c['total']}"
        )


def identify_heads(
    ratios: HeadRatios | torch.Tensor,
    l_perc: int,
    l_reas: int,
    tau_perc: float,
    tau_reas: float,
) -> HeadSelection:
    """Identify perception and reasoning heads (eq. 5).

    The two layer bands may overlap (``l_reas <= l_perc``) or leave a gap.

    Args:
        ratios: :class:`HeadRatios` (its sample mean is used) or a [n_layers, n_heads] S_v tensor.
            Ratios normalised by the image share (``normalize="image_share"``) take thresholds
            >= 0 on that scale (1: attention in proportion to the image's token count).
        l_perc: last perception layer (0-based layer_idx).
        l_reas: first reasoning layer (0-based layer_idx).
        tau_perc: perception heads have S_v >= tau_perc.
        tau_reas: reasoning heads have S_v <= tau_reas.
    """
    try:
        visual = ratios.visual if isinstance(ratios, HeadRatios) else torch.as_tensor(ratios)
    except (TypeError, ValueError, RuntimeError) as error:
        raise FacLensError(
            f"identify_heads needs HeadRatios or a [n_layers, n_heads] S_v tensor, got {type(ratios).__name__}"
        ) from error
    if visual.dim() != 2:
        raise FacLensError(f"identify_heads needs S_v shaped [n_layers, n_heads], got {tuple(visual.shape)}")
    normalized = isinstance(ratios, HeadRatios) and ratios.normalize is not None
    upper = float("inf") if normalized else 1.0
    check_boundaries(visual.shape[0], l_perc, l_reas, tau_perc, tau_reas, upper)
    l_perc, l_reas = as_int("l_perc", l_perc), as_int("l_reas", l_reas)
    layer = torch.arange(visual.shape[0], device=visual.device)[:, None]
    perception, reasoning = classify(visual, layer, l_perc, l_reas, tau_perc, tau_reas)
    return HeadSelection(
        perception=perception.cpu(),
        reasoning=reasoning.cpu(),
        visual=visual.detach().cpu(),
        l_perc=l_perc,
        l_reas=l_reas,
        tau_perc=float(tau_perc),
        tau_reas=float(tau_reas),
    )
