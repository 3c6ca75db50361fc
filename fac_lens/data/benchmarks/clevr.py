"""CLEVR v1.0 (Johnson et al., 2017): synthetic scenes, programmatic questions; validation split.

Releases read (facts from the official release):

* Original (``CLEVR_v1.0.zip``): ``questions/CLEVR_<split>_questions.json`` = ``{"info": {...},
  "questions": [...]}`` with records ``image_index``, ``image_filename`` ("CLEVR_val_000000.png"),
  ``question_index``, ``question_family_index``, ``split``, ``question``, ``answer`` (a word or a
  count) and ``program`` (list of {function | type, inputs, value_inputs}); images in
  ``images/<split>/``. The test split has no answers.
* Hugging Face: there is no official hub release; community parquet / save_to_disk copies are
  read when their rows keep the original fields (``question``, ``answer``, optional
  ``image_filename``, ``question_index``, ``question_family_index``, ``program``) and an ``image``
  column (Image struct). VLMEvalKit has no CLEVR TSV.

Sources: the CLEVR v1.0 release (cs.stanford.edu/people/jcjohns/clevr, CLEVR_v1.0.zip) and the
paper's description of question families and programs.

Prompt: the question as released. Answer type: a count, yes/no or an attribute word (CLEVR's
synonyms are accepted, see :mod:`fac_lens.data.answers`). Metric: accuracy (per question family).
"""

from __future__ import annotations

import re
from typing import Any

from ...errors import FacLensError
from ._spec import BenchmarkSpec, Context, OriginalFile, Pending, get, image_ref, require, text

_COMPARE_INTEGER = {"equal_integer", "less_than", "greater_than"}
_NUMBER_WORDS = re.compile(r"\b(number|more|fewer|less than|greater than|as many)\b", re.I)


def _kind_from_program(program: Any) -> str | None:
    """The CLEVR question family of a functional program, from its last function."""
    if not isinstance(program, list) or not program or not isinstance(program[-1], dict):
        return None
    last = str(program[-1].get("function") or program[-1].get("type") or "")
    if last in ("count", "exist"):
        return last
    if last in _COMPARE_INTEGER:
        return "compare_integer"
    if last.startswith("equal_"):
        return "compare_attribute"
    if last.startswith("query_"):
        return "query_attribute"
    return None


def question_kind(record: dict) -> str:
    """count | exist | compare_integer | compare_attribute | query_attribute: from the program when
    the record has one, else a heuristic on the answer and question."""
    kind = _kind_from_program(record.get("program"))
    if kind is not None:
        return kind
    answer = str(record["answer"]).strip().lower()
    question = str(record["question"]).strip().lower()
    if answer.isdigit():
        return "count"
    if answer not in ("yes", "no"):
        return "query_attribute"
    if _NUMBER_WORDS.search(question):
        return "compare_integer"
    if question.startswith(("is there", "are there")) or " same " not in f" {question} ":
        return "exist"
    return "compare_attribute"


def convert(record: dict, ctx: Context) -> Pending:
    question, answer = require(record, ("question", "answer"), ctx.where)
    image = image_ref(get(record, "image", "image_filename"), ctx)
    if image is None:
        raise FacLensError(f"{ctx.where}: missing required field(s) 'image_filename'")
    meta = {
        "question_family_index": get(record, "question_family_index"),
        "image_index": get(record, "image_index"),
        "program": get(record, "program"),
        "image_path": str(image.path) if image.path else None,
    }
    position = ctx.where.rsplit(" ", 1)[-1]
    id_ = text(get(record, "question_index", default=position))
    record = {**record, "answer": text(answer), "question": text(question)}
    return Pending(id_, image, text(question), text(answer), question_kind(record), (), meta)


SPEC = BenchmarkSpec(
    name="clevr",
    display_name="CLEVR",
    hub_ids=(),
    splits=("val",),
    original=(OriginalFile("questions/CLEVR_{split}_questions.json", key="questions"),),
    tsv=(),
    convert=convert,
    image_dirs=("images/{split}",),
    answer_type="count, yes/no or attribute word",
    metric="accuracy",
    prompt="question as released",
)
