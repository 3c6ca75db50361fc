"""SEED-Bench (v1, Li et al., 2024): multiple-choice questions, four options; image questions only.

Releases read (facts from the dataset cards and the official repositories):

* Original (``AILab-CVC/SEED-Bench``): ``SEED-Bench.json`` = ``{"question_type": {name: id},
  "questions": [...]}`` with records ``question_id``, ``question``, ``choice_a``..``choice_d``,
  ``answer`` (a letter), ``question_type_id``, ``data_type`` ("image" | "video") and ``data_id``
  (the image file, "1454426_2591111986.jpg"); images from ``SEED-Bench-image.zip`` unpacked into
  ``SEED-Bench-image/`` (``images/`` is accepted too).
* Hugging Face ``lmms-lab/SEED-Bench`` (parquet ``data/test-*.parquet``, split ``test``): the same
  string columns plus ``segment`` and ``image`` (a list of Image; one for image questions).
* VLMEvalKit ``SEEDBench_IMG.tsv``: ``index``, ``image`` (base64), ``question``, ``A``-``D``,
  ``answer``, ``category`` (the question type's name).

``kind`` is the question type's name: from the file's ``question_type`` mapping, else the table
in SEED-Bench's README (ids 1-9 image dimensions, 10-12 video).

Sources: huggingface.co/datasets/AILab-CVC/SEED-Bench (``SEED-Bench.py`` features, file list),
github.com/AILab-CVC/SEED-Bench (README: the JSON and its ``question_type`` table),
huggingface.co/datasets/lmms-lab/SEED-Bench (file list; its image column is read as a list, as
lmms-lab's SEED-Bench-2 card declares, or a single image), VLMEvalKit ``image_mcq.py``.

Video questions (``data_type`` not "image") are left out and counted in ``report.excluded``.
Prompt: the question, then the lettered options. Answer type: an option letter. Metric: weighted
F1 over letters (multi-class scheme) and accuracy, per question type.
"""

from __future__ import annotations

from ._layouts import HEADER
from ._spec import (
    ORIGINAL,
    TSV,
    BenchmarkSpec,
    Context,
    ImageRef,
    OriginalFile,
    Pending,
    get,
    image_ref,
    letter,
    missing,
    option_columns,
    require,
    text,
)

_CHOICES = ("choice_a", "choice_b", "choice_c", "choice_d")
# The question types of SEED-Bench v1 as its README lists SEED-Bench.json's "question_type": used
# where a release carries only the id (the hub parquet); the file's own mapping wins when present.
QUESTION_TYPES = {
    "1": "Scene Understanding",
    "2": "Instance Identity",
    "3": "Instance Location",
    "4": "Instance Attributes",
    "5": "Instances Counting",
    "6": "Spatial Relation",
    "7": "Instance Interaction",
    "8": "Visual Reasoning",
    "9": "Text Understanding",
    "10": "Action Recognition",
    "11": "Action Prediction",
    "12": "Procedure Understanding",
}


def _data_file(data_id: str, ctx: Context) -> ImageRef | None:
    """The image file of ``data_id`` under the image folders, as named or with .jpg/.png added."""
    for folder in (*ctx.image_dirs, ctx.root):
        for suffix in ("", ".jpg", ".png", ".jpeg"):
            if (folder / f"{data_id}{suffix}").is_file():
                return ImageRef(path=folder / f"{data_id}{suffix}")
    return image_ref(data_id, ctx)  # missing: reported when opened


def convert(record: dict, ctx: Context) -> Pending:
    if ctx.layout == TSV:
        index, question, answer = require(record, ("index", "question", "answer"), ctx.where)
        choices = option_columns(record)
        kind, meta = text(get(record, "category", default="unknown")), {}
        image = image_ref(record.get("image"), ctx)
        return Pending(
            text(index), image, text(question), letter(answer, len(choices), ctx.where), kind, choices, meta
        )
    fields = ("question_id", "question", *_CHOICES, "answer", "question_type_id", "data_id")
    question_id, question, *rest = require(record, fields, ctx.where)
    choices = tuple(text(c) for c in rest[:4])
    answer, type_id, data_id = rest[4:]
    names = {
        **QUESTION_TYPES,
        **{text(v): str(k) for k, v in (record.get(HEADER, {}).get("question_type") or {}).items()},
    }
    embedded = ctx.layout != ORIGINAL and not missing(record.get("image"))
    image = image_ref(record["image"], ctx) if embedded else _data_file(text(data_id), ctx)
    meta = {
        "question_type_id": type_id,
        "data_id": text(data_id),
        "image_path": str(image.path) if image is not None and image.path else None,
    }
    kind = names.get(text(type_id), text(type_id))
    return Pending(
        text(question_id), image, text(question), letter(answer, 4, ctx.where), kind, choices, meta
    )


def is_video(record: dict) -> bool:
    return text(get(record, "data_type", default="image")) != "image"


SPEC = BenchmarkSpec(
    name="seed-bench",
    display_name="SEED-Bench",
    hub_ids=("lmms-lab/SEED-Bench", "AILab-CVC/SEED-Bench"),
    splits=("test",),
    original=(OriginalFile("SEED-Bench.json", key="questions"),),
    tsv=("SEEDBench_IMG.tsv",),
    convert=convert,
    image_dirs=("SEED-Bench-image", "images"),
    excluded=is_video,
    answer_type="option letter (four options)",
    metric="weighted F1 (multi-class scheme), accuracy",
    prompt="question, then lettered options",
)
