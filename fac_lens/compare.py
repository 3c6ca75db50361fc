"""Side-by-side before/after views without the widget: ``fl.compare``.

cmp = fl.compare(model, sample, fac=config)   # or fl.compare(model, image, question, fac=config)
cmp                                            # in a notebook: the two traces, differences marked
cmp.figure()                                   # maps: vanilla | rescaled | difference | rescaled own trace
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

from .case_study import CaseStudy, case_study
from .config import FacConfig
from .errors import FacLensError
from .gains import Gains
from .lens_model import LensModel

_STYLE = (
    "<style>.fac-trace{font-family:monospace;white-space:pre-wrap;padding:6px;border:1px solid #ddd;"
    "border-radius:4px;vertical-align:top;width:50%}.fac-diff{background:#ffd54f;font-weight:bold}"
    ".fac-after{color:#888}</style>"
)


def traces_html(vanilla: tuple[str, ...], rescaled: tuple[str, ...], first_difference: int | None) -> str:
    """Two token sequences side by side; the first differing token highlighted, later ones greyed."""

    def render(tokens: tuple[str, ...]) -> str:
        parts = []
        for index, token in enumerate(tokens):
            text = html.escape(token)
            if first_difference is not None and index == first_difference:
                parts.append(f'<span class="fac-diff" title="first difference (token {index})">{text}</span>')
            elif first_difference is not None and index > first_difference:
                parts.append(f'<span class="fac-after">{text}</span>')
            else:
                parts.append(text)
        return " ".join(parts) if all(" " not in t for t in tokens) else "".join(parts)

    note = (
        "identical traces"
        if first_difference is None
        else f"first difference at generated token {first_difference} (highlighted)"
    )
    return (
        f"{_STYLE}<table style='width:100%;table-layout:fixed'><tr><th>vanilla</th><th>rescaled</th></tr>"
        f"<tr><td class='fac-trace'>{render(vanilla)}</td><td class='fac-trace'>{render(rescaled)}</td></tr>"
        f"</table><div><small>{note}</small></div>"
    )


@dataclass(frozen=True, eq=False)
class Comparison:
    """A sample generated with and without rescaling (see :class:`~fac_lens.case_study.CaseStudy`)."""

    case: CaseStudy
    answer: str | None = None

    @property
    def first_difference(self) -> int | None:
        return self.case.first_difference

    def html(self) -> str:
        """The two traces side by side, the first differing token highlighted."""
        head = f"<div><b>{html.escape(self.case.question)}</b>"
        if self.answer is not None:
            head += f" <small>(truth: {html.escape(str(self.answer))})</small>"
        return (
            head
            + "</div>"
            + traces_html(self.case.vanilla_tokens, self.case.fac_tokens, self.first_difference)
        )

    def _repr_html_(self) -> str:
        return self.html()

    def figure(self, absolute: bool = False, fig: Any = None, selection: Any = None) -> Any:
        """Contribution maps of the answer token on the vanilla trace (vanilla, rescaled, their
        difference) and the rescaled model's map of its own answer on its own trace (on ``fig``,
        an empty Figure, else a new one); ``selection`` (a HeadSelection) outlines its classes on
        every panel. Returns the Figure."""
        from .plotting import contribution_before_after

        case = self.case
        own = None if case.after_own is None else case.after_own.signed.numpy()
        return contribution_before_after(
            case.before.signed.numpy(),
            case.after.signed.numpy(),
            title=f"contribution to {case.answer_token!r} (vanilla trace)",
            absolute=absolute,
            fig=fig,
            after_own=own,
            own_title=f"rescaled, own trace: {case.fac_answer_token!r}",
            selection=selection,
        )


def compare(
    model: LensModel,
    sample_or_image: Any,
    question: str | None = None,
    fac: Gains | FacConfig | None = None,
    max_new_tokens: int = 48,
) -> Comparison:
    """Generate with and without ``fac`` and compare traces and contribution maps.

    Args:
        sample_or_image: a :class:`~fac_lens.data.Sample` (its image and question are used), or an image.
        question: the question, when an image is given.
        fac: static :class:`Gains` or a dynamic :class:`FacConfig` (required).
    """
    if fac is None:
        raise FacLensError("compare needs fac=: a FacConfig (dynamic) or Gains (static) to compare against")
    answer = None
    if hasattr(sample_or_image, "question") and hasattr(sample_or_image, "image"):
        image, question, answer = sample_or_image.image, sample_or_image.prompt(), sample_or_image.answer
    else:
        image = sample_or_image
    if image is None:
        raise FacLensError(
            "this sample has no image: FAC compares image vs text attention, pick one with an image"
        )
    if not question:
        raise FacLensError("compare(model, image, question, fac=...) needs the question text")
    return Comparison(case_study(model, image, question, fac, max_new_tokens), answer)
