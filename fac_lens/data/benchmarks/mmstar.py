"""MMStar (Chen et al., 2024): 1,500 vision-indispensable multiple-choice questions.

Releases read (facts from the dataset card and VLMEvalKit):

* Hugging Face ``Lin-Chen/MMStar``: one file ``mmstar.parquet`` at the repo root (config and
  split ``val``). Columns: ``index`` int64, ``question`` str with the options written in the text
  ("...?\\nOptions: A: x, B: y, C: z, D: w"), ``image`` Image, ``answer`` str (a letter),
  ``category``, ``l2_category``, ``meta_info`` struct (``source``, ``split``, ``image_path``).
* VLMEvalKit ``MMStar.tsv`` (also in the hub repo): ``index``, ``question``, ``answer``,
  ``category``, ``l2-category``, ``image`` (base64) and, where present, option columns ``A``-``D``.
* No original JSON release exists.

Sources: huggingface.co/datasets/Lin-Chen/MMStar (file list: ``mmstar.parquet``, ``MMStar.tsv``;
features as on its card and its copies), VLMEvalKit ``vlmeval/dataset/image_mcq.py`` (MCQ TSVs:
options in columns ``A``, ``B``, ...). The TSV's exact columns were not checked: options come from
``A``-``D`` when present, else from the question text.

Prompt: the question stem, then the lettered options (``Sample.prompt``). Answer type: an option
letter. Metric: weighted F1 over option letters (the FAC paper's multi-class scheme) and accuracy.
"""

from __future__ import annotations

import re

from ...errors import FacLensError
from ._spec import (
    LETTERS,
    BenchmarkSpec,
    Context,
    Pending,
    get,
    image_ref,
    letter,
    option_columns,
    require,
    text,
)

_OPTIONS_MARKER = re.compile(r"\boptions?\s*:\s*", re.I)


def _option_start(text_: str, letter_: str, start: int) -> re.Match | None:
    """The first "X:" option marker for ``letter_`` at or after ``start``, at a word boundary."""
    return re.compile(rf"(?:^|(?<=[\s,;(]))\(?{letter_}\)?\s*:\s*").search(text_, start)


def split_options(question: str) -> tuple[str, tuple[str, ...]] | None:
    """Split an MMStar question into its stem and option texts.

    The options are written as ``"Options: A: first, B: second, C: third"`` (the "Options:"
    marker is optional). Option texts keep inner commas; a trailing comma or semicolon before the
    next letter is removed. Returns (stem, options), or None when no "A: ... B: ..." is found.
    """
    markers = list(_OPTIONS_MARKER.finditer(question))
    marker = markers[-1] if markers else None
    search_from = marker.end() if marker else 0
    starts: list[re.Match] = []
    for option in LETTERS:
        match = _option_start(question, option, starts[-1].end() if starts else search_from)
        if match is None:
            break
        starts.append(match)
    if len(starts) < 2:
        return None
    ends = [m.start() for m in starts[1:]] + [len(question)]
    options = tuple(
        question[m.end() : end].strip().rstrip(",;").strip() for m, end in zip(starts, ends, strict=True)
    )
    stem_end = marker.start() if marker else starts[0].start()
    return question[:stem_end].strip(), options


def convert(record: dict, ctx: Context) -> Pending:
    index, question, answer, category = require(
        record, ("index", "question", "answer", "category"), ctx.where
    )
    question = text(question)
    choices = option_columns(record)
    parsed = split_options(question)
    if choices:
        stem = parsed[0] if parsed else question
    elif parsed is None:
        raise FacLensError(f"{ctx.where}: no options 'A: ..., B: ...' found in the question text")
    else:
        stem, choices = parsed
    meta_info = record.get("meta_info") if isinstance(record.get("meta_info"), dict) else {}
    image = image_ref(get(record, "image", "image_path") or meta_info.get("image_path"), ctx)
    if image is None:
        raise FacLensError(f"{ctx.where}: missing required field(s) 'image'")
    meta = {
        "l2_category": get(record, "l2_category", "l2-category"),
        "dataset": meta_info.get("source") or get(record, "bench"),
        "question_with_options": question,
        "image_path": str(image.path) if image.path else None,
    }
    return Pending(
        text(index), image, stem, letter(answer, len(choices), ctx.where), text(category), choices, meta
    )


SPEC = BenchmarkSpec(
    name="mmstar",
    display_name="MMStar",
    hub_ids=("Lin-Chen/MMStar",),
    splits=("val",),
    original=(),
    tsv=("MMStar.tsv",),
    convert=convert,
    answer_type="option letter (options inside the question text)",
    metric="weighted F1 (multi-class scheme), accuracy",
    prompt="question stem, then lettered options",
)
