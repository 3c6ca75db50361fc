"""HallusionBench (Guan et al., 2024): 1,129 yes/no questions on 346 figures, some without image.

Releases read (facts from the dataset card and the official repositories):

* Original (GitHub tianyi-lab/HallusionBench): ``HallusionBench.json``, a list of records with
  ``category`` ("VD" visual dependent | "VS" visual supplement), ``subcategory``, ``visual_input``
  ("0" no image, "1" the original figure, "2" an edited one), ``set_id``, ``figure_id``,
  ``sample_note``, ``question_id``, ``question``, ``gt_answer_details``, ``gt_answer`` ("1" yes |
  "0" no) and ``filename`` ("./hallusion_bench/VD/illusion/0_0.png"; null without image), beside
  the unzipped ``hallusion_bench/`` folder.
* Hugging Face ``lmms-lab/HallusionBench`` (parquet ``data/image-*.parquet`` and
  ``data/non_image-*.parquet``; splits ``image`` 951 and ``non_image`` 178, both read by default):
  the same string columns plus ``image`` (Image; null in ``non_image``).
* VLMEvalKit ``HallusionBench.tsv``: ``index`` (ends with ``_<set>_<figure>_<question>``; VLMEvalKit
  reads those three ids from it), ``image`` (base64), ``question``, ``answer`` ("Yes" | "No"),
  ``category``, ``l2-category``; image questions only.

Sources: github.com/tianyi-lab/HallusionBench (README, HallusionBench.json),
huggingface.co/datasets/lmms-lab/HallusionBench (README ``dataset_info``), VLMEvalKit
``vlmeval/dataset/image_yorn.py`` and ``utils/yorn.py`` (``Hallusion_rating`` groups by
``l2-category`` and reads the three ids from ``index.split("_")[3:6]``).

Prompt: the question as released. Answer type: "yes" / "no". Metric: weighted F1 over yes/no
(the FAC paper's binary scheme) and accuracy. Questions without an image are yielded with
``image=None``; evaluation leaves them out and counts them.
"""

from __future__ import annotations

from ...errors import FacLensError
from ._spec import ORIGINAL, TSV, BenchmarkSpec, Context, OriginalFile, Pending, get, image_ref, require, text

YES_NO = {"1": "yes", "0": "no", "yes": "yes", "no": "no"}


def _ids(record: dict) -> tuple[str, str, str] | None:
    """(set_id, figure_id, question_id): the fields, or the last three parts of a TSV index."""
    fields = [get(record, name) for name in ("set_id", "figure_id", "question_id")]
    if all(f is not None for f in fields):
        return tuple(text(f) for f in fields)
    parts = str(record.get("index", "")).split("_")
    return tuple(parts[-3:]) if len(parts) >= 4 else None


def convert(record: dict, ctx: Context) -> Pending:
    tsv = ctx.layout == TSV
    answer_field = "answer" if tsv else "gt_answer"
    category, question, gt = require(record, ("category", "question", answer_field), ctx.where)
    subcategory = get(record, "subcategory", "l2-category", "l2_category", default="")
    answer = YES_NO.get(text(gt).strip().lower())
    if answer is None:
        raise FacLensError(f"{ctx.where}: {answer_field} {gt!r} is not '1'/'0' (yes/no)")
    ids = _ids(record)
    if ids is None:
        if not tsv:
            require(record, ("set_id", "figure_id", "question_id"), ctx.where)
        ids = (text(record["index"]), "", "")
    visual_input = text(get(record, "visual_input", default="1"))
    image = None
    if visual_input != "0":
        image = image_ref(get(record, "image") if ctx.layout != ORIGINAL else get(record, "filename"), ctx)
        if image is None:
            raise FacLensError(
                f"{ctx.where}: missing required field(s) 'filename' (visual_input is {visual_input!r})"
            )
    meta = {
        "subcategory": subcategory,
        "set_id": ids[0],
        "figure_id": ids[1],
        "question_id": ids[2],
        "visual_input": visual_input,
        "sample_note": get(record, "sample_note"),
        "gt_answer_details": get(record, "gt_answer_details"),
        "image_path": str(image.path) if image is not None and image.path else None,
    }
    id_ = text(record["index"]) if tsv else f"{category}_{subcategory}_{ids[0]}_{ids[1]}_{ids[2]}"
    return Pending(id_, image, text(question), answer, text(category), (), meta)


SPEC = BenchmarkSpec(
    name="hallusionbench",
    display_name="HallusionBench",
    hub_ids=("lmms-lab/HallusionBench",),
    splits=("image", "non_image"),
    original=(OriginalFile("HallusionBench.json"),),
    tsv=("HallusionBench.tsv",),
    convert=convert,
    answer_type='yes/no ("1"/"0" as released)',
    metric="weighted F1 (binary scheme), accuracy",
    prompt="question as released",
)
