"""What the explorer shows, as pure functions of the recorded ratios and the controls' values."""

from __future__ import annotations

import html
from dataclasses import dataclass

import torch

from ..config import FacConfig
from ..gains import Gains
from ..ratios import HeadRatios
from ..rescale import RescaleHandle
from ..selection import HeadSelection, identify_heads

STRATEGY_CHOICES = {
    "A: enhance identified heads (paper)": {"strategy": "A", "target": "both"},
    "B: attenuate in-band others": {"strategy": "B", "target": "both"},
    "C: bipolar": {"strategy": "C", "target": "both"},
    "D: mixed": {"strategy": "D", "target": "both"},
    "perception heads only": {"strategy": "A", "target": "perception"},
    "reasoning heads only": {"strategy": "A", "target": "reasoning"},
}
MEAN = "all samples (mean)"


def counts_html(selection: HeadSelection, n_heads_total: int) -> str:
    """Heads per class, as counts and fractions of all heads."""
    counts = selection.counts
    other = n_heads_total - int((selection.perception | selection.reasoning).sum())
    parts = [
        f"perception: {counts['perception']} heads ({counts['perception'] / n_heads_total:.1%})",
        f"reasoning: {counts['reasoning']} heads ({counts['reasoning'] / n_heads_total:.1%})",
        f"other: {other} heads ({other / n_heads_total:.1%})",
    ]
    return " &middot; ".join(parts)


def setting(config: FacConfig, mode: str, ratios: HeadRatios) -> FacConfig | Gains:
    """What a run uses: the config itself (dynamic: heads identified in every pass), or the static
    gains it gives on ``ratios``."""
    return config if mode == "dynamic" else config.gains(ratios)


@dataclass(frozen=True, eq=False)
class StepView:
    """The dynamic mode's choice in one forward pass of a generation.

    Attributes:
        step: 0 = the prefill (it predicts generated token 0), t = the pass that fed token t - 1.
        visual: float [n_layers, n_heads] S_v that pass measured.
        selection: the heads it identified (eq. 5 on ``visual``).
        gains: float [n_layers, n_heads] the gains it applied.
    """

    step: int
    visual: torch.Tensor
    selection: HeadSelection
    gains: torch.Tensor


def step_view(handle: RescaleHandle, config: FacConfig, step: int, sample: int = 0) -> StepView:
    """The heads a dynamic rescale identified at pass ``step`` and the gains they got."""
    visual = handle.pass_ratios[step][sample]
    selection = identify_heads(visual, config.l_perc, config.l_reas, config.tau_perc, config.tau_reas)
    return StepView(step, visual, selection, config.gains(selection).values)


def stale_html(reason: str) -> str:
    return (
        "<div class='fac-stale-note' style='background:#fff3cd;border:1px solid #e0b000;padding:3px 6px;"
        f"border-radius:3px;font-size:12px'>stale: {html.escape(reason)}; press run to update</div>"
    )


def describe_setting(value: FacConfig | Gains, mode: str) -> str:
    """One line naming a setting (shown with a run's results)."""
    if isinstance(value, Gains):
        changed = int((value.values != 1).sum())
        return f"static gains ({changed} heads != 1)"
    c = value
    return (
        f"{mode}: l_perc {c.l_perc}, l_reas {c.l_reas}, tau_perc {c.tau_perc:.3f}, tau_reas {c.tau_reas:.3f}, "
        f"g_perc {c.g_perc:.2f}, g_reas {c.g_reas:.2f}, strategy {c.strategy}/{c.target}, beta {c.beta:.2f}"
    )
