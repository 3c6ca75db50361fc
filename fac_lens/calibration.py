"""A FAC setting for a model without a published preset, calibrated on its recorded ratio map."""

from __future__ import annotations

from typing import Any

import torch

from .config import FacConfig
from .errors import FacLensError
from .ratios import HeadRatios
from .selection import check_ratio
from .validation import as_int


def calibrated_config(
    ratios: HeadRatios,
    l_perc: int | None = None,
    l_reas: int | None = None,
    g_perc: float = 1.16,
    g_reas: float = 1.30,
    quantile: float = 0.25,
    **overrides: Any,
) -> FacConfig:
    """A FAC setting for a model without a published preset, from its recorded ratio map.

    Boundaries default to the middle of the network (``l_perc = n_layers // 2 - 1``, ``l_reas =
    l_perc + 1``); ``tau_perc`` is the ``1 - quantile`` quantile of S_v in the perception band and
    ``tau_reas`` the ``quantile`` quantile in the reasoning band, so about a quarter of each band's
    heads are identified. Gains default to the paper's Ocean-R1 values.
    """
    if not isinstance(ratios, HeadRatios):
        raise FacLensError(
            f"calibrated_config needs HeadRatios (fl.attention_ratios), got {type(ratios).__name__}"
        )
    check_ratio("quantile", quantile)
    visual: torch.Tensor = ratios.visual
    n_layers = visual.shape[0]
    l_perc = n_layers // 2 - 1 if l_perc is None else as_int("l_perc", l_perc)
    l_reas = l_perc + 1 if l_reas is None else as_int("l_reas", l_reas)
    if not 0 <= l_perc < n_layers - 1 or not 0 < l_reas < n_layers:
        raise FacLensError(
            f"l_perc={l_perc}, l_reas={l_reas} do not leave two non-empty bands in a {n_layers}-layer model"
        )
    return FacConfig(
        l_perc=l_perc,
        l_reas=l_reas,
        tau_perc=round(float(visual[: l_perc + 1].quantile(1 - quantile)), 3),
        tau_reas=round(float(visual[l_reas:].quantile(quantile)), 3),
        g_perc=g_perc,
        g_reas=g_reas,
        **overrides,
    )
