"""Answer extraction from generated reasoning traces, answer normalization, and correctness.

The paper's models write ``<think> ... </think> answer``. :func:`extract_answer` finds the final
answer in such a trace in three steps:

1. The answer segment: the text after the last ``</think>`` (the thought itself when nothing
   follows it), or the content of the last ``<answer>...</answer>`` tag.
2. The answer span within it: the content of the last ``\\boxed{...}`` (nested braces allowed);
   else the text after the last answer marker ("Answer:", "The answer is", "final answer is",
   "the correct option is", ...), up to the end of its sentence; else the whole segment.
3. The answer of the requested kind in that span: an option letter ("(B)", "B.", "B)",
   "option B", a bare "B", or an option's text matched to its letter), "yes"/"no", a number
   (integers, decimals, negatives, 1,000, simple fractions 3/4 and \\frac{3}{4}, number words
   "two" -> "2"), or free text.

:func:`normalize_answer` is the form answers are compared in, and :func:`is_correct` compares an
extracted (or raw) prediction with a :class:`~fac_lens.data.sample.Sample`'s answer.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from fractions import Fraction

from ..errors import FacLensError
from .sample import Sample

__all__ = [
    "CLEVR_ATTRIBUTES",
    "KINDS",
    "answer_format",
    "answer_segment",
    "clevr_attribute",
    "extract_answer",
    "is_correct",
    "normalize_answer",
]

KINDS = ("auto", "choice", "yesno", "number", "text")
_KIND_ALIASES = {
    "multi_choice": "choice",
    "multiple_choice": "choice",
    "mc": "choice",
    "yes_no": "yesno",
    "yes/no": "yesno",
    "free_form": "auto",
}
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

_NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14,
    "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20,
    "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
    "hundred": 100,
}  # fmt: skip
_ARTICLES = {"a", "an", "the"}

_DECIMAL = r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|[-+]?\.\d+"
_DECIMAL_RE = re.compile(rf"(?:{_DECIMAL})")
_FRACTION_RE = re.compile(r"([-+]?\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)")
_NUMBER_TOKEN_RE = re.compile(
    rf"(?<![\w.])(?:[-+]?\d+(?:\.\d+)?\s*/\s*\d+(?:\.\d+)?|{_DECIMAL})(?![\d/])"
    rf"|\b(?:{'|'.join(_NUMBER_WORDS)})\b",
    re.I,
)
_MARKER_RE = re.compile(
    r"\b(?:answer|option|choice)\s*(?:is|would\s+be|should\s+be|will\s+be|[:=])\s*:?[ \t]*",
    re.I,
)
_SENTENCE_END_RE = re.compile(r"\.(?=\s|$)|[;\n]|,?\s+(?:because|since|as|which|so)\b", re.I)
_YES_NO_RE = re.compile(r"\b(yes|no)\b", re.I)
_THINK_END_RE = re.compile(r"</think>", re.I)
_ANSWER_TAG_RE = re.compile(r"<answer>(.*?)(?:</answer>|$)", re.I | re.S)
_TAG_RE = re.compile(r"</?(?:think|answer)>", re.I)
_STRIP_CHARS = " \t\n,;:!?\"'`*"


def _strip(text: str) -> str:
    """Text without surrounding spaces, quotes, markdown and punctuation (a leading "." is kept: ".5")."""
    previous = None
    while previous != text:
        previous = text
        text = text.strip(_STRIP_CHARS).rstrip(".")
    return text


# ---------------------------------------------------------------------------------------------
# Step 1 and 2: the answer segment and the answer span.
# ---------------------------------------------------------------------------------------------


def answer_segment(text: str) -> str:
    """The part of a generated trace that holds the final answer.

    Args:
        text: the generated text, e.g. ``"<think> ... </think> cube"``.

    Returns:
        The last ``<answer>`` tag's content if any; else the text after the last ``</think>``
        (or the thought itself when nothing follows it); with think/answer tags removed.
    """
    parts = _THINK_END_RE.split(text)
    segment = parts[-1] if parts[-1].strip() or len(parts) == 1 else parts[-2]
    tagged = [t for t in _ANSWER_TAG_RE.findall(segment) if t.strip()]
    if tagged:
        segment = tagged[-1]
    return _TAG_RE.sub(" ", segment).strip()


def _braced(text: str, open_at: int) -> str | None:
    """The content of the brace group opening at ``text[open_at] == "{"``, None if unclosed."""
    depth = 0
    for i in range(open_at, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[open_at + 1 : i]
    return None


def last_boxed(text: str) -> str | None:
    """The content of the last complete ``\\boxed{...}`` (or ``\\fbox{...}``), nested braces allowed."""
    starts = [m.end() for m in re.finditer(r"\\(?:boxed|fbox)\s*", text)]
    for start in reversed(starts):
        if start < len(text) and text[start] == "{":
            content = _braced(text, start)
            if content is not None:
                return content
        elif start < len(text):
            return text[start:].split()[0].strip("$")  # "\boxed 5"
    return None


def _cut_sentence(span: str) -> str:
    """The span up to its first sentence end (". ", ";", a newline, ", because ...")."""
    span = span.lstrip()
    match = _SENTENCE_END_RE.search(span)
    return span[: match.start()] if match else span


def _answer_span(segment: str) -> tuple[str, bool]:
    """(span, marked): the boxed content or the text after the last answer marker, else the segment."""
    boxed = last_boxed(segment)
    if boxed is not None:
        return boxed, True
    markers = list(_MARKER_RE.finditer(segment))
    for marker in reversed(markers):
        span = _cut_sentence(segment[marker.end() :])
        if _strip(span):
            return span, True
    return segment, False


# ---------------------------------------------------------------------------------------------
# LaTeX and number helpers.
# ---------------------------------------------------------------------------------------------


def _clean_latex(text: str) -> str:
    """Plain text from the LaTeX a model may write around an answer ("$\\frac{1}{2}$" -> "1/2")."""
    text = text.replace("\u2212", "-").replace("**", "")
    text = re.sub(r"\\[dt]frac", r"\\frac", text)
    previous = None
    while previous != text:
        previous = text
        text = re.sub(r"\\(?:text|textbf|mathrm|mathbf|mbox|operatorname)\s*\{([^{}]*)\}", r"\1", text)
        text = re.sub(r"\\frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}", r"\1/\2", text)
    text = re.sub(r"\\frac\s*(\d)\s*(\d)", r"\1/\2", text)
    text = re.sub(r"\^\s*\{?\\circ\}?|°|\\%|%|\\left|\\right|\\[,;!: ]|\$", "", text)
    return text.strip()


def _parse_number(text: str) -> Fraction | None:
    """The value of a text that is exactly one number ("1,000", "-2.50", "3/4", "two", "50%")."""
    s = _strip(text).replace("%", "").strip().lower()
    if s in _NUMBER_WORDS:
        return Fraction(_NUMBER_WORDS[s])
    if _DECIMAL_RE.fullmatch(s):
        return Fraction(s.replace(",", ""))
    match = _FRACTION_RE.fullmatch(s)
    if match and Fraction(match.group(2)) != 0:
        return Fraction(match.group(1)) / Fraction(match.group(2))
    return None


def _format_number(value: Fraction) -> str:
    """A canonical text for a number: "1", "-3", "0.75", "0.3333333333"."""
    if value.denominator == 1:
        return str(value.numerator)
    return format(float(value), ".10g")


def _number_text(token: str) -> str:
    """An extracted number token as answer text: commas and spaces removed, words as digits."""
    token = token.strip()
    if token.lower() in _NUMBER_WORDS:
        return str(_NUMBER_WORDS[token.lower()])
    return token.replace(",", "").replace(" ", "").lstrip("+")


# ---------------------------------------------------------------------------------------------
# Step 3: one answer of a kind.
# ---------------------------------------------------------------------------------------------


def _find_number(span: str, first: bool) -> str | None:
    """The first (or last) number in a span, as text."""
    tokens = _NUMBER_TOKEN_RE.findall(span)
    if not tokens:
        return None
    return _number_text(tokens[0] if first else tokens[-1])


def _find_yes_no(span: str, first: bool) -> str | None:
    """ "yes"/"no": a leading one, else the first (or last) one in the span."""
    hits = _YES_NO_RE.findall(span)
    if not hits:
        return None
    leading = _YES_NO_RE.match(_strip(span).lstrip("("))
    if leading:
        return leading.group(1).lower()
    return (hits[0] if first else hits[-1]).lower()


def _find_letter(span: str, n_choices: int, marked: bool) -> str | None:
    """An option letter written as "B", "(B)", "B.", "B)", "B:", "[B]", "option B"."""
    letters = _LETTERS[:n_choices] if n_choices else _LETTERS
    s = span.strip(" \t\n*")
    whole = re.fullmatch(r"[(\[]?([A-Za-z])[)\]]?[.:)]?", s)
    if whole and (whole.group(1).isupper() or n_choices) and whole.group(1).upper() in letters:
        return whole.group(1).upper()
    leading = r"[(\[]?([A-Z])(?:[)\]]|[.:](?=\s|$))" + (r"|([A-Z])(?=[\s,;!]|$)" if marked else "")
    match = re.match(leading, s)
    if match and (match.group(1) or match.group(2)) in letters:
        return match.group(1) or match.group(2)
    hits = [a or b for a, b in re.findall(r"\(([A-Z])\)|\b(?i:option|choice)\s*\(?([A-Z])\b", s)]
    hits = [h for h in hits if h in letters]
    if hits:
        return hits[0] if marked else hits[-1]
    return None


def _match_choice_text(span: str, choices: Sequence[str]) -> str | None:
    """The letter of the option whose text the span is, or uniquely contains (whole words)."""
    normalized = [normalize_answer(c) for c in choices]
    target = normalize_answer(span)
    if not target:
        return None
    exact = [i for i, c in enumerate(normalized) if c and c == target]
    if len(exact) == 1:
        return _LETTERS[exact[0]]
    inside = [i for i, c in enumerate(normalized) if c and f" {c} " in f" {target} "]
    inside = [i for i in inside if not any(normalized[i] in normalized[j] for j in inside if j != i)]
    return _LETTERS[inside[0]] if len(inside) == 1 else None


def _extract_choice(span: str, choices: Sequence[str], marked: bool) -> str | None:
    if choices:
        exact = [i for i, c in enumerate(choices) if normalize_answer(c) == normalize_answer(span)]
        if len(exact) == 1 and normalize_answer(span):
            return _LETTERS[exact[0]]
    letter = _find_letter(span, len(choices), marked)
    if letter is not None or not choices:
        return letter
    return _match_choice_text(span, choices)


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if _strip(line)]
    return lines[-1] if lines else ""


def _extract_text(span: str, marked: bool) -> str | None:
    text = _strip(span if marked else _last_line(span))
    return text or None


def _extract_auto(span: str, choices: Sequence[str], marked: bool) -> str | None:
    """Choice when choices are given; else a leading yes/no, a letter, a leading number, or text."""
    if choices:
        return _extract_choice(span, choices, marked)
    text = _extract_text(span, marked)
    if text is None:
        return None
    leading_yes_no = _YES_NO_RE.match(text)
    if leading_yes_no:
        return leading_yes_no.group(1).lower()
    letter = re.fullmatch(r"[(\[]?([A-Z])[)\]]?|(?i:option|choice)\s*\(?([A-Z])\)?", text)
    if letter:
        return letter.group(1) or letter.group(2)
    number = _NUMBER_TOKEN_RE.match(text)
    if number and (number.group(0)[-1].isdigit() or len(text.split()) <= 2):
        return _number_text(number.group(0))
    return text


def _check_kind(kind: str) -> str:
    resolved = _KIND_ALIASES.get(str(kind).lower(), str(kind).lower())
    if resolved not in KINDS:
        raise FacLensError(f"unknown answer kind {kind!r}; use one of {', '.join(KINDS)}")
    return resolved


def extract_answer(text: str, kind: str = "auto", choices: Sequence[str] = ()) -> str | None:
    """The final answer in a model's generated text.

    Args:
        text: the generated text (a ``<think> ... </think> answer`` trace, or any text).
        kind: the answer format wanted:

            * "choice": an option letter ("A", "B", ...). Letters are looked for as "(B)", "B.",
              "B)", "B:", "option B", or a bare "B"; when ``choices`` are given, an option's text
              (exactly, or as the only option named in the span) gives its letter, and letters
              beyond the options are ignored.
            * "yesno": "yes" or "no" ("Yes, ..." and "no." included).
            * "number": a number as text: "-3.5", "1000" (from "1,000"), "3/4" (also from
              ``\\frac{3}{4}``), "2" (from "two"). The first number in a boxed/marked span, else the
              last number in the segment.
            * "text": the span as cleaned text (LaTeX ``\\text{}``, surrounding punctuation removed).
            * "auto" (default): "choice" when ``choices`` are given; else a leading yes/no, a lone
              option letter, a leading number, or the text.

            "multi_choice"/"multiple_choice" and "yes_no" are accepted as aliases.
        choices: the option texts of a multiple-choice question, in order.

    Returns:
        The answer as text, or None when none of the wanted kind is found.

    Raises:
        FacLensError: an unknown ``kind``.

    Examples:
        >>> extract_answer("<think> the large red thing is a cube . </think> cube")
        'cube'
        >>> extract_answer("so the area is \\\\boxed{\\\\frac{1}{2}}")
        '1/2'
        >>> extract_answer("Answer: (C)", kind="choice")
        'C'
    """
    kind = _check_kind(kind)
    span, marked = _answer_span(answer_segment(str(text)))
    span = _clean_latex(span)
    if kind == "choice":
        return _extract_choice(span, choices, marked)
    if kind == "yesno":
        return _find_yes_no(span, first=marked)
    if kind == "number":
        return _find_number(span, first=marked)
    if kind == "text":
        return _extract_text(span, marked)
    return _extract_auto(span, choices, marked)


# ---------------------------------------------------------------------------------------------
# Normalization and correctness.
# ---------------------------------------------------------------------------------------------


def _normalize_token(token: str) -> str:
    value = _parse_number(token)
    return _format_number(value) if value is not None else token


def normalize_answer(answer: str) -> str:
    """The form answers are compared in.

    Lowercase; LaTeX wrappers removed; a whole-number answer in canonical form ("1.0" -> "1",
    "1,000" -> "1000", "3/4" -> "0.75", "two" -> "2", "50%" -> "50"); otherwise punctuation
    removed, number words and numbers made canonical word by word, articles ("a", "an", "the")
    dropped unless nothing else is left, and whitespace collapsed.

    Args:
        answer: an answer text.

    Returns:
        The normalized text ("" for an empty answer).
    """
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", _clean_latex(str(answer)).lower().strip())
    value = _parse_number(text)
    if value is not None:
        return _format_number(value)
    tokens = [_normalize_token(t) for t in re.findall(r"-?\d+(?:\.\d+)?|[^\W_]+", text)]
    kept = [t for t in tokens if t not in _ARTICLES]
    return " ".join(kept or tokens)


def answer_format(sample: Sample) -> str:
    """The answer kind of a sample: "choice", "yesno", "number" or "text".

    "choice" when the sample has choices; "yesno" when its answer is yes/no; "number" when its
    answer is one number; else "text".
    """
    if sample.choices:
        return "choice"
    normalized = normalize_answer(sample.answer)
    if normalized in ("yes", "no"):
        return "yesno"
    if _parse_number(sample.answer) is not None or _parse_number(_clean_latex(sample.answer)) is not None:
        return "number"
    return "text"


def _numbers_equal(prediction: str, reference: str, precision: object) -> bool:
    pred, ref = _parse_number(_clean_latex(prediction)), _parse_number(_clean_latex(reference))
    if pred is None or ref is None:
        return False
    if isinstance(precision, (int, float)) and not isinstance(precision, bool):
        digits = int(precision)
        return round(float(pred), digits) == round(float(ref), digits)
    return math.isclose(float(pred), float(ref), rel_tol=1e-6, abs_tol=1e-9)


#: CLEVR's attribute values by category, with the synonyms its question templates use (and plurals):
#: {category: {word: value}}.
CLEVR_ATTRIBUTES: dict[str, dict[str, str]] = {
    "color": {
        **{c: c for c in ("gray", "red", "blue", "green", "brown", "purple", "cyan", "yellow")},
        "grey": "gray",
    },
    "shape": {
        **{w: "cube" for w in ("cube", "cubes", "block", "blocks")},
        **{w: "sphere" for w in ("sphere", "spheres", "ball", "balls")},
        **{w: "cylinder" for w in ("cylinder", "cylinders")},
    },
    "material": {
        "rubber": "rubber",
        "matte": "rubber",
        "metal": "metal",
        "metallic": "metal",
        "shiny": "metal",
    },
    "size": {"large": "large", "big": "large", "small": "small", "tiny": "small"},
}
_NEGATIONS = {"not", "no", "never", "neither", "nor"}


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z]+(?:n't)?", text.lower().replace("\u2019", "'"))


def _negated(words: Sequence[str], i: int) -> bool:
    """Whether one of the three words before ``words[i]`` negates it ("not a cube", "isn't red")."""
    return any(w in _NEGATIONS or w.endswith("n't") for w in words[max(0, i - 3) : i])


def clevr_attribute(text: str, reference: str, question: str = "") -> str | None:
    """The attribute value a sentence answers with, in the category of ``reference`` (CLEVR).

    "The shape is a red cube." answers a shape question with "cube". The value is the one
    value of the reference's category (color, shape, material, size; synonyms mapped, e.g. "ball"
    -> "sphere") named and not negated in the text; when several are named, those the question
    names are dropped (they describe the object asked about). No value, or several: None.

    Args:
        text: the model's answer.
        reference: the ground-truth answer, which fixes the category asked about.
        question: the question text.

    Returns:
        The canonical value ("cube", "large", ...), or None.
    """
    category = next(
        (c for c, values in CLEVR_ATTRIBUTES.items() if reference.strip().lower() in values), None
    )
    if category is None:
        return None
    values = CLEVR_ATTRIBUTES[category]
    words = _words(text)
    named = {values[w] for i, w in enumerate(words) if w in values and not _negated(words, i)}
    if len(named) > 1:
        named -= {values[w] for w in _words(question) if w in values}
    return named.pop() if len(named) == 1 else None


def is_correct(prediction: str | None, sample: Sample) -> bool:
    """Whether a prediction answers a sample correctly.

    The prediction may be an extracted answer or the raw generated text: the answer of the
    sample's format (:func:`answer_format`) is extracted from it first (idempotent on clean
    answers). Letters are compared for multiple choice; numbers by value (rounded to
    ``sample.meta["precision"]`` decimals when the sample has one, as MathVista does, else with a
    relative tolerance of 1e-6); other answers by :func:`normalize_answer`; a CLEVR attribute
    answered in a sentence ("The shape is a red cube.") by the value it names
    (:func:`clevr_attribute`).

    Args:
        prediction: the model's answer or generated text; None (no answer) is never correct.
        sample: the sample with the ground truth.

    Returns:
        True when the prediction matches the sample's answer.
    """
    if prediction is None:
        return False
    fmt = answer_format(sample)
    extracted = extract_answer(prediction, kind=fmt, choices=sample.choices)
    if extracted is None:
        return False
    if fmt == "choice":
        return extracted.upper() == sample.answer.strip().upper()
    if fmt == "number":
        return _numbers_equal(extracted, sample.answer, (sample.meta or {}).get("precision"))
    if normalize_answer(extracted) == normalize_answer(sample.answer):
        return True
    if sample.source == "CLEVR":
        value = clevr_attribute(extracted, sample.answer, sample.question)
        return value is not None and value == clevr_attribute(sample.answer, sample.answer)
    return False
