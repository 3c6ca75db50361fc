"""FacConfig: boundaries, thresholds, gains and strategy in one object, with the paper's presets."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass

from .errors import FacLensError
from .gains import Gains, LayerGain, check_gain, check_layer_gain, check_strategy, format_gain
from .queries import QUERY_SETS
from .ratios import HeadRatios
from .selection import HeadSelection, check_boundaries, check_ratio, identify_heads
from .validation import as_int

DYNAMIC_QUERIES = (*QUERY_SETS, "token")

# Table 5 of the paper; boundaries read as 0-based layer_idx (DESIGN.md section 4).
PRESETS: dict[str, dict[str, float]] = {
    "Kimi-VL-A3B-Thinking": dict(l_reas=5, tau_reas=0.01, g_reas=1.40, l_perc=10, tau_perc=0.27, g_perc=1.20),
    "Ocean-R1-7B-Instruct": dict(l_reas=3, tau_reas=0.01, g_reas=1.30, l_perc=7, tau_perc=0.22, g_perc=1.16),
    "R1-Onevision": dict(l_reas=3, tau_reas=0.01, g_reas=1.30, l_perc=7, tau_perc=0.30, g_perc=1.20),
}


def _key(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


@dataclass(frozen=True)
class FacConfig:
    """Settings of functional attention control.

    Attributes:
        l_perc: last perception layer (0-based).
        l_reas: first reasoning layer (0-based).
        tau_perc: perception heads have S_v >= tau_perc.
        tau_reas: reasoning heads have S_v <= tau_reas.
        g_perc: gain of perception heads: one number, or one per layer (a sequence of
            n_layers numbers, stored as a tuple; a scalar keeps the config's old store key).
        g_reas: gain of reasoning heads (scalar or one per layer, as ``g_perc``).
        strategy: Appendix B strategy ``"A"`` (paper), ``"B"``, ``"C"``, ``"D"``.
        beta: attenuation factor for strategies B-D (the paper gives no value).
        target: ``"both"``, or ``"perception"`` / ``"reasoning"`` for one-class ablations.
        query: query set of the dynamic mode's per-pass identification: ``"all"`` (default: the
            paper's eq. 4, "unless otherwise noted, the entire sequence"), ``"last"`` (the single
            query i* of the paper's later version), ``"text"``, or ``"token"`` (every position
            decides its own gains from its own attention row). In a decoding step the pass holds
            one new token, so every set is that token's row.
    """

    l_perc: int
    l_reas: int
    tau_perc: float
    tau_reas: float
    g_perc: LayerGain = 1.0
    g_reas: LayerGain = 1.0
    strategy: str = "A"
    beta: float = 0.8
    target: str = "both"
    query: str = "all"

    def __post_init__(self) -> None:
        for name in ("l_perc", "l_reas"):  # numpy / 0-d tensor layers become ints
            object.__setattr__(self, name, as_int(name, getattr(self, name), minimum=0))
        for name in ("g_perc", "g_reas"):
            object.__setattr__(self, name, check_layer_gain(name, getattr(self, name)))
        check_gain("beta", self.beta)
        check_strategy(self.strategy, self.target)
        if self.query not in DYNAMIC_QUERIES:
            raise FacLensError(f"unknown query {self.query!r}; use one of {DYNAMIC_QUERIES}")
        for name in ("tau_perc", "tau_reas"):
            check_ratio(name, getattr(self, name))

    @classmethod
    def field_names(cls, required: bool = False, numeric: bool = False) -> tuple[str, ...]:
        """The field names in declaration order: the one list of FAC settings that the CLI, the
        methods, the store and the tables derive theirs from.

        Args:
            required: only the fields without a default (l_perc, l_reas, tau_perc, tau_reas).
            numeric: only the int and float fields (boundaries, thresholds, gains, beta).
        """
        types = typing.get_type_hints(cls)
        return tuple(
            f.name
            for f in dataclasses.fields(cls)
            if not (required and f.default is not dataclasses.MISSING)
            and not (numeric and types[f.name] not in (int, float, LayerGain))
        )

    def check_model(self, n_layers: int) -> None:
        """Raise if a boundary lies outside ``[0, n_layers - 1]`` or per-layer gains do not have
        one value per layer."""
        check_boundaries(n_layers, self.l_perc, self.l_reas, self.tau_perc, self.tau_reas)
        for name in ("g_perc", "g_reas"):
            value = getattr(self, name)
            if isinstance(value, tuple) and len(value) != n_layers:
                raise FacLensError(
                    f"{name} has {len(value)} per-layer values but the model has {n_layers} layers: "
                    "give one gain per layer, or a single number"
                )

    def layer_gains(self, layer: int) -> tuple[float, float]:
        """(g_perc, g_reas) of one layer (the scalar, or that layer's entry)."""
        return tuple(g[layer] if isinstance(g, tuple) else g for g in (self.g_perc, self.g_reas))

    def gain_label(self) -> str:
        """``g_perc/g_reas`` for labels (per-layer gains as ``[a,b,...]``)."""
        return f"{format_gain(self.g_perc)}/{format_gain(self.g_reas)}"

    def replace(self, **changes) -> FacConfig:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def select(self, ratios: HeadRatios) -> HeadSelection:
        """Identify heads from recorded ratios with this config's boundaries and thresholds."""
        return identify_heads(ratios, self.l_perc, self.l_reas, self.tau_perc, self.tau_reas)

    def gains(self, ratios_or_selection: HeadRatios | HeadSelection) -> Gains:
        """Static gains from recorded ratios (or an existing selection)."""
        selection = (
            ratios_or_selection
            if isinstance(ratios_or_selection, HeadSelection)
            else self.select(ratios_or_selection)
        )
        return Gains.from_selection(
            selection, self.g_perc, self.g_reas, self.strategy, self.beta, self.target
        )

    @classmethod
    def preset(cls, name: str, **overrides) -> FacConfig:
        """The paper's Table 5 settings for a model (case and punctuation ignored).

        Names: ``"Kimi-VL-A3B-Thinking"``, ``"Ocean-R1-7B-Instruct"``, ``"R1-Onevision"``; short
        forms ``"kimi-vl"``, ``"ocean-r1"`` also work. Keyword overrides replace fields.
        """
        wanted = _key(name)
        matches = [p for p in PRESETS if _key(p) == wanted or _key(p).startswith(wanted)]
        if len(matches) != 1:
            raise FacLensError(f"no single preset matches {name!r}; presets: {list(PRESETS)}")
        return cls(**{**PRESETS[matches[0]], **overrides})

    @staticmethod
    def presets() -> list[str]:
        return list(PRESETS)
