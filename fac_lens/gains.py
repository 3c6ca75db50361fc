"""Per-head gains (paper eqs. 6-7) and the Appendix B strategies A-D."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .approx import AllClose
from .errors import FacLensError
from .selection import HeadSelection

STRATEGIES = {
    "A": "selective enhancement: identified heads x gain, all others 1 (the paper's method)",
    "B": "selective attenuation: in-band unidentified heads x beta, all others 1",
    "C": "bipolar: identified heads x gain, every other head x beta",
    "D": "mixed: identified x gain, in-band unidentified x beta, out-of-band heads 1",
}
TARGETS = ("both", "perception", "reasoning")
#: A gain: one number, or a tuple of one number per layer.
LayerGain = float | tuple[float, ...]


def check_gain(name: str, value: float) -> None:
    """Gains multiply head outputs: they must be finite and > 0."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if isinstance(value, (bool, str)) or not (number > 0.0 and number < float("inf")):
        raise FacLensError(f"{name}={value!r}: gains must be finite and > 0 (1 leaves a head unchanged)")


def check_layer_gain(name: str, value) -> float | tuple[float, ...]:
    """A scalar gain (returned as given) or a sequence of per-layer gains (returned as a tuple of
    floats), each finite and > 0."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or getattr(value, "ndim", 1) == 0:
        check_gain(name, value)
        return value
    values = tuple(value.tolist() if hasattr(value, "tolist") else value)
    if not values:
        raise FacLensError(f"{name}=[]: give a gain, or one gain per layer")
    for layer, item in enumerate(values):
        check_gain(f"{name}[{layer}]", item)
    return tuple(float(v) for v in values)


def format_gain(value) -> str:
    """A gain for labels: ``1.2``, or ``[1.1,1.2]`` for per-layer gains."""
    if isinstance(value, tuple):
        return "[" + ",".join(f"{v:g}" for v in value) + "]"
    return f"{value:g}"


def per_layer_column(name: str, value, n_layers: int) -> torch.Tensor | float:
    """A scalar gain, or per-layer gains as a float32 [n_layers, 1] column (checked length)."""
    if not isinstance(value, tuple):
        return value
    if len(value) != n_layers:
        raise FacLensError(
            f"{name} has {len(value)} per-layer values for {n_layers} layers: give one per layer"
        )
    return torch.tensor(value, dtype=torch.float32)[:, None]


def check_strategy(strategy: str, target: str) -> None:
    if not isinstance(strategy, str) or strategy not in STRATEGIES:
        raise FacLensError(f"unknown strategy {strategy!r}; use one of {sorted(STRATEGIES)}")
    if not isinstance(target, str) or target not in TARGETS:
        raise FacLensError(f"unknown target {target!r}; use one of {TARGETS}")


def strategy_gains(
    perception: torch.Tensor,
    reasoning: torch.Tensor,
    in_band: torch.Tensor,
    g_perc: float,
    g_reas: float,
    strategy: str = "A",
    beta: float = 0.8,
    target: str = "both",
) -> torch.Tensor:
    """Gain of every head from its class (eq. 6 and Appendix B), on tensors of any shape.

    Args:
        perception, reasoning: bool masks of identified heads.
        in_band: bool mask of heads inside either layer band (same shape or broadcastable).
        g_perc, g_reas: gains of enhanced perception / reasoning heads (numbers, or tensors
            broadcastable to the masks, e.g. a per-layer [n_layers, 1] column). A head in both
            classes (only possible when tau_reas >= tau_perc) gets ``g_perc * g_reas``.
        strategy: ``"A"``-``"D"`` (see :data:`STRATEGIES`).
        beta: attenuation factor of strategies B-D.
        target: which classes are enhanced (``"perception"`` / ``"reasoning"`` for the
            one-class ablations); heads of a class not enhanced keep 1.

    Returns:
        float32 gains shaped like ``perception``.
    """
    identified = perception | reasoning
    enhance_perc = perception if target in ("both", "perception") else torch.zeros_like(perception)
    enhance_reas = reasoning if target in ("both", "reasoning") else torch.zeros_like(reasoning)
    one = torch.ones(perception.shape, dtype=torch.float32, device=perception.device)
    if strategy == "C":
        base = torch.where(identified, one, one * beta)
    elif strategy in ("B", "D"):
        base = torch.where(in_band & ~identified, one * beta, one)
    else:
        base = one
    if strategy == "B":
        return base
    g_perc = torch.as_tensor(g_perc, dtype=torch.float32, device=one.device)
    g_reas = torch.as_tensor(g_reas, dtype=torch.float32, device=one.device)
    enhanced = torch.where(enhance_perc, one * g_perc, one) * torch.where(enhance_reas, one * g_reas, one)
    return base * enhanced


@dataclass(frozen=True, eq=False)
class Gains(AllClose):
    """Static per-head gains applied to ``hook_z`` (each head's output before ``o_proj``).

    Attributes:
        values: float32 [n_layers, n_heads]; 1 leaves a head unchanged.
    """

    values: torch.Tensor

    def __post_init__(self) -> None:
        try:
            values = torch.as_tensor(self.values, dtype=torch.float32).detach().cpu()
        except (TypeError, ValueError, RuntimeError) as error:
            raise FacLensError(
                f"Gains.values must be a float [n_layers, n_heads] tensor, got {type(self.values).__name__}"
            ) from error
        if values.dim() != 2:
            raise FacLensError(f"Gains.values must be [n_layers, n_heads], got {tuple(values.shape)}")
        if not bool(torch.isfinite(values).all()) or bool((values <= 0).any()):
            raise FacLensError("gains must be finite and > 0 (1 leaves a head unchanged)")
        object.__setattr__(self, "values", values)

    @classmethod
    def ones(cls, n_layers: int, n_heads: int) -> Gains:
        return cls(torch.ones(n_layers, n_heads))

    @classmethod
    def from_selection(
        cls,
        selection: HeadSelection,
        g_perc: LayerGain = 1.0,
        g_reas: LayerGain = 1.0,
        strategy: str = "A",
        beta: float = 0.8,
        target: str = "both",
    ) -> Gains:
        """Gains of eq. 6 (strategy A) or an Appendix B alternative, from identified heads.

        ``g_perc`` / ``g_reas``: one number, or one per layer."""
        if not isinstance(selection, HeadSelection):
            raise FacLensError(
                f"Gains.from_selection needs a HeadSelection (fl.identify_heads), got {type(selection).__name__}"
            )
        g_perc = per_layer_column("g_perc", check_layer_gain("g_perc", g_perc), selection.n_layers)
        g_reas = per_layer_column("g_reas", check_layer_gain("g_reas", g_reas), selection.n_layers)
        check_gain("beta", beta)
        check_strategy(strategy, target)
        return cls(
            strategy_gains(
                selection.perception,
                selection.reasoning,
                selection.in_band,
                g_perc,
                g_reas,
                strategy,
                beta,
                target,
            )
        )

    @property
    def n_layers(self) -> int:
        return self.values.shape[0]

    @property
    def n_heads(self) -> int:
        return self.values.shape[1]

    @property
    def is_identity(self) -> bool:
        return bool((self.values == 1).all())

    def check_model(self, n_layers: int, n_heads: int) -> None:
        if tuple(self.values.shape) != (n_layers, n_heads):
            raise FacLensError(
                f"gains are shaped {tuple(self.values.shape)} but the model has "
                f"[n_layers, n_heads] = [{n_layers}, {n_heads}]; build them from this model's ratios"
            )
