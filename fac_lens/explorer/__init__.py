"""The head explorer: an ipywidgets panel (``panel.py``) over pure functions (the other modules).

ipywidgets is imported when a panel is built, not with fac_lens (``pip install fac-lens[notebook]``).
"""

from .answers import AnswerProbabilities, answer_probabilities, candidate_ids
from .batch import BatchCheck, batch_check
from .grid import head_grid_svg
from .panel import Explorer, ExplorerItem, display_figure, explorer
from .state import MEAN, STRATEGY_CHOICES, StepView, counts_html, setting, step_view
from .trajectory import trajectory_svg

__all__ = [
    "MEAN",
    "STRATEGY_CHOICES",
    "AnswerProbabilities",
    "BatchCheck",
    "Explorer",
    "ExplorerItem",
    "StepView",
    "answer_probabilities",
    "batch_check",
    "candidate_ids",
    "counts_html",
    "display_figure",
    "explorer",
    "head_grid_svg",
    "setting",
    "step_view",
    "trajectory_svg",
]
