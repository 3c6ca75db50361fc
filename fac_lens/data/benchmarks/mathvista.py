"""MathVista testmini (Lu et al., 2023): 1,000 math questions on figures, multiple choice or free form.

Releases read (facts from the dataset card and the official repositories):

* Hugging Face ``AI4Math/MathVista`` (parquet ``data/testmini-*.parquet``, splits ``testmini``
  1,000 / ``test`` 5,141 without public answers). Columns: ``pid`` str, ``question`` str,
  ``image`` str (the file name, "images/1.jpg"), ``decoded_image`` Image (struct bytes/path),
  ``choices`` list[str] (None for free form), ``unit`` str, ``precision`` float64, ``answer`` str
  (for multiple choice the option *text*), ``question_type`` "multi_choice" | "free_form",
  ``answer_type`` "text" | "integer" | "float" | "list", ``metadata`` struct (category, context,
  grade, img_height, img_width, language, skills list, source, split, task), ``query`` str (the
  official prompt: a hint on the answer format, precision and unit, the question and the choices).
* Original files: the same records as ``annot_testmini.json`` (a dict keyed by pid; the hub repo
  ships it beside ``images.zip``) with ``images/<pid>.jpg``; also ``testmini.json`` / ``.jsonl``.
* VLMEvalKit ``MathVista_MINI.tsv``: ``index``, ``image`` (base64), ``question`` (the query,
  asked as is), ``answer``, ``question_type``, ``answer_type``, ``choices`` (a Python list literal),
  ``precision``, ``unit``, ``task``, ``skills`` (a list literal).

Sources: the card's ``dataset_info`` (huggingface.co/datasets/AI4Math/MathVista, README.md) and
its file list; VLMEvalKit ``vlmeval/dataset/utils/mathvista.py`` (``post_check`` reads
``question_type``, ``answer_type``, ``choices`` through ``eval``, ``precision``).

Prompt: ``query`` (TSV: ``question``). Answer type: an option letter (the released option text is
mapped to its letter) or free form (number with ``precision``, text, unit in ``meta``).
Metric: accuracy (per task in ``meta``).
"""

from __future__ import annotations

import ast

from ...errors import FacLensError
from ._spec import (
    LETTERS,
    TSV,
    BenchmarkSpec,
    Context,
    OriginalFile,
    Pending,
    get,
    image_ref,
    letter,
    require,
    text,
)


def literal_list(value, where: str) -> tuple[str, ...]:
    """A list field: a real list, or VLMEvalKit's Python literal of one ("['a', 'b']", "[]", "None")."""
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value) if value.strip() else None
        except (ValueError, SyntaxError) as e:
            raise FacLensError(f"{where}: choices {value!r} is not a list literal") from e
    return tuple(text(v) for v in (value or ()))


def _number(value) -> float | None:
    try:
        return None if value is None else float(value)
    except ValueError:
        return None


def convert(record: dict, ctx: Context) -> Pending:
    tsv = ctx.layout == TSV
    id_field = "index" if tsv else "pid"
    pid, question, answer, question_type = require(
        record, (id_field, "question", "answer", "question_type"), ctx.where
    )
    choices = literal_list(record.get("choices"), ctx.where)
    answer = text(answer)
    if question_type == "multi_choice":
        if not choices:
            raise FacLensError(f"{ctx.where}: question_type is 'multi_choice' but 'choices' is empty")
        answer = (
            LETTERS[choices.index(answer)] if answer in choices else letter(answer, len(choices), ctx.where)
        )
    metadata = record.get("metadata") or {}
    skills = metadata.get("skills") if metadata else record.get("skills")
    meta = {
        "answer_type": get(record, "answer_type"),
        "unit": get(record, "unit"),
        "precision": _number(get(record, "precision")),  # decimals; a TSV holds it as text
        "query": get(record, "query"),
        "task": metadata.get("task") or get(record, "task"),
        "category": metadata.get("category") or get(record, "category"),
        "skills": list(literal_list(skills, ctx.where)) if skills is not None else [],
        "context": metadata.get("context"),
        "grade": metadata.get("grade"),
        "dataset": metadata.get("source") or get(record, "source"),
    }
    image = image_ref(get(record, "decoded_image", "image"), ctx)
    if image is None:
        raise FacLensError(f"{ctx.where}: missing required field(s) 'image'")
    meta["image_path"] = str(image.path) if image.path else None
    prompt = text(question) if tsv else text(get(record, "query", default=""))
    stem = text(question)
    return Pending(text(pid), image, stem, answer, str(question_type), choices, meta, prompt)


SPEC = BenchmarkSpec(
    name="mathvista-mini",
    display_name="MathVista-mini",
    hub_ids=("AI4Math/MathVista",),
    splits=("testmini",),
    original=(
        OriginalFile("annot_{split}.json"),
        OriginalFile("{split}.json"),
        OriginalFile("{split}.jsonl"),
    ),
    tsv=("MathVista_MINI.tsv",),
    convert=convert,
    answer_type="option letter or free form (integer/float with precision, text, list)",
    metric="accuracy",
    prompt="the record's `query` (hint on format, precision, unit; question; choices)",
)
