"""What an experiment runs: vanilla decoding or one FAC setting, as a serialisable ``Method``.

A method is a mode (``"none"``, ``"static"``, ``"dynamic"``) and, except for vanilla, a
:class:`~fac_lens.FacConfig`. Its ``name`` follows from both: ``vanilla``; ``perception_only`` /
``reasoning_only`` (the Table 2 ablations, ``target`` of the config); ``strategy`` (Appendix B
strategies B-D); else the mode (``static``: heads identified once from a recorded ratio map;
``dynamic``: the paper's per-pass identification).

A method *label* (:data:`LABELS`: the CLI's ``--method``, the tables' rows) names one method without
ambiguity: the name, or ``strategy-A`` .. ``strategy-D`` for the Appendix B strategies.

Mode ``"baseline"`` runs one of the hallucination-mitigation baselines of :mod:`fac_lens.baselines`
(``vcd``, ``pai``, ``vaf``, ``midlayer``, ``cgd``, ``agla``); its settings are part of the run id
(the ``baseline`` key of :meth:`Method.to_dict`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ..baselines import BASELINE_NAMES, Baseline, baseline_from_settings, make_baseline
from ..config import FacConfig
from ..errors import FacLensError
from ..gains import STRATEGIES, Gains
from ..ratios import HeadRatios
from ..selection import HeadSelection
from .store import METHOD_KEYS

MODES = ("none", "static", "dynamic", "baseline")
NAMES = ("vanilla", "static", "dynamic", "strategy", "perception_only", "reasoning_only", *BASELINE_NAMES)
STRATEGY_LABELS = tuple(f"strategy-{s}" for s in STRATEGIES)
#: Method labels in the paper's order (vanilla, static, dynamic, strategies, ablations).
LABELS = (
    "vanilla",
    "static",
    "dynamic",
    *STRATEGY_LABELS,
    "perception_only",
    "reasoning_only",
    *BASELINE_NAMES,
)


@dataclass(frozen=True)
class Method:
    """Vanilla (``config is None``), a FAC setting applied statically or dynamically, or a baseline
    (mode ``"baseline"``)."""

    mode: str = "none"
    config: FacConfig | None = None
    baseline: Baseline | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise FacLensError(f"unknown mode {self.mode!r}; use one of {MODES}")
        if (self.mode == "baseline") != (self.baseline is not None):
            raise FacLensError("mode 'baseline' needs a fac_lens.baselines method, and only it takes one")
        if (self.mode in ("none", "baseline")) != (self.config is None):
            raise FacLensError(
                "modes 'none' (vanilla) and 'baseline' take no FacConfig; 'static'/'dynamic' need one"
            )

    @classmethod
    def vanilla(cls) -> Method:
        return cls()

    @classmethod
    def of(cls, baseline: Baseline) -> Method:
        """The method that runs ``baseline``."""
        return cls("baseline", baseline=baseline)

    @property
    def name(self) -> str:
        if self.baseline is not None:
            return self.baseline.name
        if self.config is None:
            return "vanilla"
        if self.config.target != "both":
            return f"{self.config.target}_only"
        if self.config.strategy != "A":
            return "strategy"
        return self.mode

    def check_model(self, n_layers: int) -> None:
        """Raise before any work if a boundary lies outside the model."""
        if self.config is not None:
            self.config.check_model(n_layers)
        if self.baseline is not None:
            self.baseline.check_model(n_layers)

    def selection(self, ratios: HeadRatios | None) -> HeadSelection | None:
        """Heads this setting identifies on a recorded ratio map (None for vanilla)."""
        if self.config is None or ratios is None:
            return None
        return self.config.select(ratios)

    def intervention(self, ratios: HeadRatios | None) -> Gains | FacConfig | Baseline | None:
        """What :func:`fac_lens.generate` takes as ``method``: None, static Gains, the config or the
        baseline."""
        if self.baseline is not None:
            return self.baseline
        if self.config is None:
            return None
        if self.mode == "dynamic":
            return self.config
        if ratios is None:
            raise FacLensError(
                "a static method needs a recorded ratio map: pass ratios=attention_ratios(...)"
            )
        return self.config.gains(ratios)

    def to_dict(self, ratios: HeadRatios | None = None) -> dict[str, Any]:
        """Every key of :data:`METHOD_KEYS` (None where it does not apply); the head counts come
        from the static selection on ``ratios`` when given."""
        out: dict[str, Any] = dict.fromkeys(METHOD_KEYS)
        out.update(name=self.name, mode=self.mode)
        if self.baseline is not None:
            out["baseline"] = self.baseline.settings()
        if self.config is not None:
            out.update(asdict(self.config))  # every FacConfig field
        selection = self.selection(ratios)
        if selection is not None:
            out["n_perception"] = selection.counts["perception"]
            out["n_reasoning"] = selection.counts["reasoning"]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Method:
        """Inverse of :meth:`to_dict` (head counts are ignored)."""
        if data.get("mode", "none") == "none":
            return cls()
        if data["mode"] == "baseline":
            return cls.of(baseline_from_settings(data["baseline"]))
        kwargs = {k: data[k] for k in FacConfig.field_names() if data.get(k) is not None}
        kwargs["strategy"] = data.get("strategy") or "A"
        return cls(data["mode"], FacConfig(**kwargs))

    def label(self) -> str:
        """A short human-readable label, e.g. ``dynamic l_perc=2 l_reas=3 g=1.16/1.30``."""
        if self.baseline is not None:
            settings = {k: v for k, v in self.baseline.settings().items() if k != "name"}
            return f"{self.name} " + " ".join(
                f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in settings.items()
            )
        if self.config is None:
            return "vanilla"
        c = self.config
        extra = f" strategy {c.strategy}" if c.strategy != "A" else ""
        return (
            f"{self.name} l_perc={c.l_perc} l_reas={c.l_reas} tau={c.tau_perc:g}/{c.tau_reas:g} "
            f"g={c.gain_label()}{extra}"
        )


def method_for(label: str, config: FacConfig | None, mode: str = "dynamic", scorer: Any = None) -> Method:
    """The method a label of :data:`LABELS` names, on ``config`` (ignored for vanilla and the
    baselines, which run with the defaults of their official code; ``scorer`` for CGD and AGLA).

    ``static`` is static; the other labels run in ``mode``. ``perception_only`` / ``reasoning_only``
    set the config's target, ``strategy-X`` its strategy.
    """
    if label == "vanilla":
        return Method.vanilla()
    if label in BASELINE_NAMES:
        return Method.of(make_baseline(label, scorer))
    if label not in LABELS:
        hint = " (a bare 'strategy' names none of the four)" if label == "strategy" else ""
        raise FacLensError(f"unknown method {label!r}{hint}: use one of {', '.join(LABELS)}")
    if config is None:
        raise FacLensError(f"method {label!r} needs a FacConfig")
    if label in ("perception_only", "reasoning_only"):
        config = config.replace(target=label.removesuffix("_only"))
    elif label in STRATEGY_LABELS:
        config = config.replace(strategy=label.removeprefix("strategy-"))
    return Method("static" if label == "static" else mode, config)
