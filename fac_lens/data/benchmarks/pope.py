"""POPE (Li et al., 2023): yes/no object-existence probes on COCO val2014, three negative samplings.

The probe set for object hallucination: "Is there a <object> in the image?" about present objects
(yes) and absent ones (no), with absent objects drawn at random, among the most frequent objects
(popular) or among objects that co-occur with present ones (adversarial); 3,000 questions each.

Releases read (facts from the official repository, the dataset card and VLMEvalKit):

* Original (GitHub RUCAIBox/POPE): ``output/coco/coco_pope_<variant>.json`` (also at the root or
  under ``coco/``), JSON Lines despite the .json name: ``question_id`` int, ``image``
  ("COCO_val2014_000000310196.jpg"), ``text`` (the question), ``label`` ("yes" | "no"). Images
  are COCO val2014, looked up in ``val2014/``, ``images/`` or the root.
* Hugging Face ``lmms-lab/POPE`` (default config: parquet ``data/test-0000x-of-00003.parquet``,
  split ``test``, 9,000 rows): ``id``, ``question_id``, ``question``, ``answer`` ("yes" | "no"),
  ``image_source`` (the COCO image id), ``image`` (Image), ``category`` (the variant).
* VLMEvalKit ``POPE.tsv``: ``index``, ``image`` (base64, or the index of the row holding it),
  ``question``, ``answer`` ("Yes" | "No"), ``category`` (the variant).

Sources: github.com/RUCAIBox/POPE (``output/coco``), huggingface.co/datasets/lmms-lab/POPE (file
list: ``data/``, ``Full/<variant>/``; features as on its card's copies), VLMEvalKit
``vlmeval/dataset/image_yorn.py`` (``POPE.tsv``; scores grouped by ``category``).

``split=`` selects a variant ("random", "popular", "adversarial"); default: all three. Prompt: the
question as released. Answer type: yes/no. Metrics (:func:`pope_scores`): accuracy, precision,
recall and F1 with "yes" the positive class, and the yes-ratio, per variant.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ...errors import FacLensError
from ..answers import normalize_answer
from ._spec import ORIGINAL, TSV, BenchmarkSpec, Context, OriginalFile, Pending, get, image_ref, require, text

VARIANTS = ("random", "popular", "adversarial")


def convert(record: dict, ctx: Context) -> Pending:
    original = ctx.layout == ORIGINAL
    names = ("question_id", "text", "label", "image") if original else ("question", "answer", "category")
    values = require(record, names, ctx.where)
    question, answer = (values[1], values[2]) if original else (values[0], values[1])
    variant = text(get(record, "category", default="")).lower()
    answer = text(answer).strip().lower()
    if answer not in ("yes", "no"):
        raise FacLensError(f"{ctx.where}: answer {answer!r} is not yes/no")
    qid = text(get(record, "index" if ctx.layout == TSV else "question_id", "id", default=ctx.where))
    image = image_ref(record.get("image"), ctx)
    if image is None:
        raise FacLensError(f"{ctx.where}: missing required field(s) 'image'")
    meta = {
        "pope": variant,
        "image_source": get(record, "image_source") or (text(record["image"]) if original else None),
        "image_path": str(image.path) if image.path else None,
    }
    id_ = qid if ctx.layout == TSV else f"{variant}-{qid}"  # question ids restart in each variant
    return Pending(id_, image, text(question), answer, variant, (), meta)


def pope_scores(predictions: Iterable[str | None], references: Iterable[str]) -> dict[str, float]:
    """POPE's metrics, "yes" the positive class.

    Args:
        predictions: answers as extracted ("yes", "no", or None when none could be read; a None
            or any other text is not a "yes" and never correct).
        references: "yes" / "no", one per prediction.

    Returns:
        {"accuracy", "precision", "recall", "f1", "yes_ratio", "n"}: precision = TP / predicted
        yes, recall = TP / reference yes, F1 their harmonic mean (0 when undefined), yes_ratio =
        predicted yes / n.
    """
    predictions = [None if p is None else normalize_answer(p) for p in predictions]
    references = [normalize_answer(r) for r in references]
    if len(predictions) != len(references) or not references:
        raise FacLensError(
            f"POPE scores need one prediction per reference (got {len(predictions)} and {len(references)})"
        )
    if set(references) - {"yes", "no"}:
        raise FacLensError(f"POPE references must be yes/no; found {sorted(set(references) - {'yes', 'no'})}")
    tp = sum(p == "yes" and r == "yes" for p, r in zip(predictions, references, strict=True))
    said_yes = sum(p == "yes" for p in predictions)
    is_yes = sum(r == "yes" for r in references)
    correct = sum(p == r for p, r in zip(predictions, references, strict=True))
    precision = tp / said_yes if said_yes else 0.0
    recall = tp / is_yes if is_yes else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    n = len(references)
    return {
        "accuracy": correct / n,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "yes_ratio": said_yes / n,
        "n": n,
    }


def pope_report(
    variants: Sequence[str], predictions: Sequence[str | None], references: Sequence[str]
) -> dict[str, dict[str, float]]:
    """:func:`pope_scores` per variant (``Sample.kind`` of each probe), plus "all"."""
    report = {}
    for variant in [v for v in VARIANTS if v in variants] + ["all"]:
        keep = [i for i, v in enumerate(variants) if variant in ("all", v)]
        report[variant] = pope_scores([predictions[i] for i in keep], [references[i] for i in keep])
    return report


SPEC = BenchmarkSpec(
    name="pope",
    display_name="POPE",
    hub_ids=("lmms-lab/POPE",),
    splits=("test",),
    original=(
        OriginalFile("output/coco/coco_pope_{variant}.json"),
        OriginalFile("coco/coco_pope_{variant}.json"),
        OriginalFile("coco_pope_{variant}.json"),
    ),
    tsv=("POPE.tsv",),
    convert=convert,
    image_dirs=("val2014", "images"),
    variants=VARIANTS,
    variant_field="category",
    answer_type="yes/no",
    metric="accuracy, precision, recall, F1 (yes positive), yes-ratio; per variant",
    prompt="question as released",
)


def pope_from_records(records: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """:func:`pope_report` from evaluation records (the results store's ``records``: ``kind`` the
    variant, ``predicted`` the extracted answer or None, ``answer`` the reference)."""
    records = list(records)
    return pope_report(
        [r["kind"] for r in records], [r["predicted"] for r in records], [r["answer"] for r in records]
    )
