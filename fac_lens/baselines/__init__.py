"""Hallucination-mitigation baselines, each usable wherever a FAC method is.

    out = fl.generate(model, inputs, max_new_tokens=32, method=fl.baselines.VCD())

See the README's table of methods for what each one edits and where.
"""

from .base import Baseline
from .midlayer import MidLayer
from .pai import PAI
from .vaf import VAF
from .vcd import VCD

__all__ = ["PAI", "VAF", "VCD", "Baseline", "MidLayer"]
