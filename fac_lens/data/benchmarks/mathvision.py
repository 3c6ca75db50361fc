"""MathVision testmini (MATH-V, Wang et al., 2024): 304 competition math problems with figures.

Releases read (facts from the dataset card and the official repositories):

* Hugging Face ``MathLLMs/MathVision`` (parquet ``data/testmini-*.parquet``; splits ``testmini``
  304 / ``test`` 3,040). Columns: ``id`` str, ``question`` str (with an "<image1>" placeholder),
  ``options`` list[str] (empty for free form; often just ["A", ..., "E"], the options drawn in
  the figure), ``image`` str ("images/1.jpg"), ``decoded_image`` Image, ``answer`` str (a letter
  when options exist, else the value), ``solution`` str, ``level`` int64 (1-5), ``subject`` str.
* Original files (GitHub mathllm/MATH-V): ``data/testmini.jsonl`` (also ``testmini.jsonl`` /
  ``.json`` at the root) with the same fields, images in ``images/``.
* VLMEvalKit ``MathVision_MINI.tsv``: ``index``, ``image`` (base64), ``question``, ``answer``,
  ``choices`` (a Python list literal), ``category`` (the subject), ``level``.

Sources: huggingface.co/datasets/MathLLMs/MathVision (README ``dataset_info``, ``data/`` files),
github.com/mathllm/MATH-V, VLMEvalKit ``vlmeval/dataset/utils/mathv.py`` (``choices`` through
``eval``, ``category``).

Prompt: the question as released, then the lettered options (``Sample.prompt``). Answer type: an
option letter, or free form. Metric: accuracy (per subject).
"""

from __future__ import annotations

from ...errors import FacLensError
from ._spec import TSV, BenchmarkSpec, Context, OriginalFile, Pending, get, image_ref, letter, require, text
from .mathvista import literal_list


def convert(record: dict, ctx: Context) -> Pending:
    tsv = ctx.layout == TSV
    id_, question, answer = require(record, ("index" if tsv else "id", "question", "answer"), ctx.where)
    choices = literal_list(get(record, "options", "choices"), ctx.where)
    answer = letter(answer, len(choices), ctx.where) if choices else text(answer)
    image = image_ref(get(record, "decoded_image", "image"), ctx)
    if image is None:
        raise FacLensError(f"{ctx.where}: missing required field(s) 'image'")
    subject = get(record, "subject", "category")
    meta = {
        "subject": subject,
        "level": get(record, "level"),
        "solution": get(record, "solution"),
        "image_path": str(image.path) if image.path else None,
    }
    return Pending(text(id_), image, text(question), answer, str(subject or "unknown"), choices, meta)


SPEC = BenchmarkSpec(
    name="mathvision-mini",
    display_name="MathVision-mini",
    hub_ids=("MathLLMs/MathVision",),
    splits=("testmini",),
    original=(
        OriginalFile("data/{split}.jsonl"),
        OriginalFile("{split}.jsonl"),
        OriginalFile("{split}.json"),
    ),
    tsv=("MathVision_MINI.tsv",),
    convert=convert,
    answer_type="option letter or free form",
    metric="accuracy",
    prompt="question as released (with <image1>), then lettered options",
)
