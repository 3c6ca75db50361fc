"""Hallucination-mitigation baselines, each usable wherever a FAC method is.

    out = fl.generate(model, inputs, max_new_tokens=32, method=fl.baselines.VCD())

See the README's table of methods for what each one edits and where.
"""

from ..errors import FacLensError
from .agla import AGLA
from .base import Baseline
from .cgd import CGD
from .midlayer import MidLayer
from .pai import PAI
from .scorers import ImageTextMatcher, ImageTextScorer, RelevanceScorer
from .vaf import VAF
from .vcd import VCD

#: name -> class, in the order of the tables' rows
BASELINES: dict[str, type[Baseline]] = {cls.name: cls for cls in (VCD, PAI, VAF, MidLayer, CGD, AGLA)}
BASELINE_NAMES = tuple(BASELINES)
#: the baselines that need an external scorer (not bundled)
SCORED = ("cgd", "agla")


def make_baseline(name: str, scorer: object = None) -> Baseline:
    """The baseline ``name`` with the defaults of its official code (``scorer`` for CGD and AGLA)."""
    if name not in BASELINES:
        raise FacLensError(f"unknown baseline {name!r}: use one of {', '.join(BASELINE_NAMES)}")
    return BASELINES[name](scorer=scorer) if name in SCORED else BASELINES[name]()


def baseline_from_settings(settings: dict) -> Baseline:
    """Inverse of :meth:`Baseline.settings` (a scorer, stored by class name only, becomes None)."""
    cls = BASELINES.get(settings.get("name"))
    if cls is None:
        raise FacLensError(f"unknown baseline settings {settings!r}")
    kwargs = {k: v for k, v in settings.items() if k != "name" and k != "scorer"}
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()})


__all__ = [
    "BASELINES",
    "BASELINE_NAMES",
    "baseline_from_settings",
    "make_baseline",
    "AGLA",
    "CGD",
    "PAI",
    "VAF",
    "VCD",
    "Baseline",
    "ImageTextMatcher",
    "ImageTextScorer",
    "MidLayer",
    "RelevanceScorer",
]
