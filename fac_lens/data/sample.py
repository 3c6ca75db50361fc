"""The one sample type every benchmark yields."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

OPTION_LETTERS = "ABCDEFGHIJ"


@dataclass(frozen=True)
class Sample:
    """One visual question.

    Attributes:
        id: unique within its benchmark.
        image: a PIL image (RGB), or None where a benchmark item has no image.
        question: the question text (without the choices).
        answer: the ground-truth answer: an option letter ("A") for multiple choice, "yes"/"no",
            a number as text, or free text.
        kind: the question kind (benchmark-specific, e.g. "attribute", "count", "exist",
            "two_step", or a benchmark's own category / skill).
        choices: the options of a multiple-choice question, in order (empty otherwise).
        source: the benchmark name (e.g. "synthetic", "MathVista-mini").
        meta: anything else the benchmark provides (scene, reasoning steps, difficulty, ...).
        prompt_text: the benchmark's own complete prompt (question, options and answer-format
            instructions), asked as is when given: MathVista's ``query``. Empty: built by
            :meth:`prompt`.
    """

    id: str
    image: Any
    question: str
    answer: str
    kind: str
    choices: tuple[str, ...] = ()
    source: str = ""
    meta: dict = field(default_factory=dict, compare=False)
    prompt_text: str = ""

    def prompt(self) -> str:
        """The question as the model is asked it: ``prompt_text`` when the benchmark gives one, else
        the question, then lettered options if any. Every caller that asks a model about a sample
        uses this (harness, explorer, case study)."""
        if self.prompt_text:
            return self.prompt_text
        if not self.choices:
            return self.question
        options = "\n".join(f"{OPTION_LETTERS[i]}. {c}" for i, c in enumerate(self.choices))
        return f"{self.question}\n{options}\nAnswer with the option's letter."
