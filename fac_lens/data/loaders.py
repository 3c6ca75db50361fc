"""Loaders for the six evaluation benchmarks, read from local files only.

Nothing here downloads anything: every loader reads annotation files and images that the user
already has under a root folder, and yields :class:`~fac_lens.data.sample.Sample` objects. The
benchmarks are those of the FAC paper: MathVista-mini, MathVision-mini, HallusionBench, CLEVR,
MMStar and SEED-Bench. Use :func:`load_benchmark` with a name, or one loader per benchmark.

Expected layouts (assumptions, close to how the official releases are distributed as files; the
real files could not be checked where this module was written)::

    mathvista-mini/              MathVista testmini (the official testmini.json is a dict keyed
        testmini.json | .jsonl   by pid; a list of records or JSON Lines are accepted too)
        images/1.jpg ...
    mathvision-mini/             MathVision testmini
        testmini.jsonl | .json
        images/1.jpg ...
    hallusionbench/              HallusionBench
        HallusionBench.json      a list of records
        hallusion_bench/VD/illusion/0_0.png ...
    clevr/                       CLEVR v1.0 (the CLEVR_v1.0 folder), validation split
        questions/CLEVR_val_questions.json   {"questions": [...]}
        images/val/CLEVR_val_000000.png ...
    mmstar/                      MMStar, exported to files
        mmstar.jsonl | mmstar.json
        images/0.jpg ...
    seed-bench/                  SEED-Bench (image questions)
        SEED-Bench.json          {"question_type": {name: id}, "questions": [...]}
        images/1454426_2591111986.jpg ...

Each loader's docstring shows its tree and one example record. Conventions for every loader:

* Multiple choice: ``Sample.choices`` holds the option texts in order and ``Sample.answer`` the
  option letter ("A", "B", ...). Yes/no questions: answer "yes" or "no".
* Images are opened lazily, one per sample as it is yielded, and converted to RGB.
* A missing annotation file raises :class:`~fac_lens.errors.FacLensError` naming the path and the
  expected layout, when the loader is called. A malformed record (bad JSON, a missing required
  field, an answer that does not fit) raises FacLensError naming the file and the line number
  (JSON Lines) or the record (JSON), when iteration reaches it.
* An image that cannot be opened or decoded is reported with a warning naming the file
  (:class:`ImageSkippedWarning`) and its sample is skipped; when iteration finishes, a summary
  warning says how many samples were skipped. Pass a :class:`LoadReport` to get the counts.
* ``limit`` caps the number of samples yielded (skipped samples do not count).
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from ..errors import FacLensError
from .sample import Sample

__all__ = [
    "BENCHMARKS",
    "BenchmarkInfo",
    "ImageSkippedWarning",
    "LoadReport",
    "benchmark_info",
    "load_benchmark",
    "load_clevr",
    "load_hallusionbench",
    "load_mathvision_mini",
    "load_mathvista_mini",
    "load_mmstar",
    "load_seed_bench",
    "split_options",
]

_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_IMAGE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError)

_LAYOUT_MATHVISTA = """\
<root>/
    testmini.json        (or testmini.jsonl): records with pid, question, choices, answer,
                         question_type ("multi_choice" | "free_form"), answer_type, image, metadata
    images/1.jpg ...     image paths in the records are relative to <root>"""
_LAYOUT_MATHVISION = """\
<root>/
    testmini.jsonl       (or testmini.json): records with id, question, options, answer, image,
                         subject, level
    images/1.jpg ...     image paths in the records are relative to <root>"""
_LAYOUT_HALLUSION = """\
<root>/
    HallusionBench.json  a list of records with category, subcategory, visual_input, set_id,
                         figure_id, question_id, question, gt_answer ("1" | "0"), filename
    hallusion_bench/VD/illusion/0_0.png ...   filenames in the records are relative to <root>"""
_LAYOUT_CLEVR = """\
<root>/                  (the CLEVR_v1.0 folder)
    questions/CLEVR_val_questions.json   {"questions": [{image_filename, question, answer,
                                          question_family_index, program, ...}]}
    images/val/CLEVR_val_000000.png ..."""
_LAYOUT_MMSTAR = """\
<root>/
    mmstar.jsonl         (or mmstar.json): records with index, question (options in the text as
                         "Options: A: ..., B: ..."), answer (letter), category, l2_category, image
    images/0.jpg ...     image paths in the records are relative to <root>"""
_LAYOUT_SEED = """\
<root>/
    SEED-Bench.json      {"question_type": {name: id}, "questions": [{question_id, question,
                         choice_a, choice_b, choice_c, choice_d, answer, question_type_id, data_id}]}
    images/<data_id> ...  (data_id with or without its .jpg/.png extension)"""


class ImageSkippedWarning(UserWarning):
    """A benchmark image could not be opened or decoded, so its sample was skipped."""


@dataclass
class LoadReport:
    """Counts of one loading run; pass one to a loader to read them programmatically.

    Attributes:
        yielded: samples yielded so far.
        skipped: samples skipped because their image could not be opened or decoded.
        skipped_files: the image paths of the skipped samples, in order.
        excluded: records left out by design (e.g. SEED-Bench video questions), not errors.
    """

    yielded: int = 0
    skipped: int = 0
    skipped_files: list[str] = field(default_factory=list)
    excluded: int = 0


@dataclass(frozen=True)
class _Pending:
    """A parsed record whose image has not been opened yet."""

    id: str
    image_path: Path | None
    question: str
    answer: str
    kind: str
    choices: tuple[str, ...] = ()
    meta: dict = field(default_factory=dict)
    prompt_text: str = ""


# ---------------------------------------------------------------------------------------------
# Shared helpers: files, records, fields, images.
# ---------------------------------------------------------------------------------------------


def _find_file(root: str | Path, candidates: list[str], display: str, layout: str) -> Path:
    """The first existing file among ``root / candidate``.

    Raises:
        FacLensError: none exists; the message names the path(s) and the expected layout.
    """
    root = Path(root)
    paths = [root / c for c in candidates]
    for path in paths:
        if path.is_file():
            return path
    tried = "" if len(paths) == 1 else f" (also tried {', '.join(str(p) for p in paths[1:])})"
    raise FacLensError(
        f"{display}: annotation file not found: {paths[0]}{tried}. "
        f"Expected layout (download the benchmark yourself; fac_lens never downloads):\n{layout}"
    )


def _jsonl_records(path: Path) -> Iterator[tuple[str, int, dict]]:
    """Yield (locator, position, record) for each non-blank line of a JSON Lines file."""
    position = 0
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"line {lineno}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise FacLensError(f"{path}: {where}: invalid JSON ({e.msg})") from e
            if not isinstance(record, dict):
                raise FacLensError(f"{path}: {where}: expected a JSON object, got {type(record).__name__}")
            yield where, position, record
            position += 1


def _load_json(path: Path) -> Any:
    """Parse a whole JSON file; a syntax error names the file and the line."""
    try:
        with path.open(encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise FacLensError(f"{path}: line {e.lineno}: invalid JSON ({e.msg})") from e


def _json_records(path: Path, data: Any) -> Iterator[tuple[str, int, dict]]:
    """Yield (locator, position, record) from a JSON list, or a dict of records keyed by id."""
    if isinstance(data, dict):
        items = [(f"record {key!r}", value) for key, value in data.items()]
    elif isinstance(data, list):
        items = [(f"record {i}", value) for i, value in enumerate(data)]
    else:
        raise FacLensError(
            f"{path}: expected a list of records or a dict of records, got {type(data).__name__}"
        )
    for position, (where, record) in enumerate(items):
        if not isinstance(record, dict):
            raise FacLensError(f"{path}: {where}: expected a JSON object, got {type(record).__name__}")
        yield where, position, record


def _records(path: Path, key: str | None = None) -> Iterator[tuple[str, int, dict]]:
    """Records of a .jsonl file (streamed) or a .json file (``data[key]`` when key is given)."""
    if path.suffix == ".jsonl":
        yield from _jsonl_records(path)
        return
    data = _load_json(path)
    if key is not None:
        if not isinstance(data, dict) or key not in data:
            raise FacLensError(f"{path}: expected a JSON object with a {key!r} list of records")
        data = data[key]
    yield from _json_records(path, data)


def _require(record: dict, names: tuple[str, ...], where: str) -> list[Any]:
    """The values of required fields; a missing (or null) one raises FacLensError naming ``where``."""
    missing = [name for name in names if record.get(name) is None]
    if missing:
        raise FacLensError(f"{where}: missing required field(s) {', '.join(map(repr, missing))}")
    return [record[name] for name in names]


def _letter(answer: Any, n_choices: int, where: str) -> str:
    """Validate a multiple-choice answer letter ("a", " B") and return it upper-case."""
    letter = str(answer).strip().strip("()").upper()
    if len(letter) != 1 or letter not in _LETTERS[:n_choices]:
        raise FacLensError(
            f"{where}: answer {answer!r} is not an option letter among {_LETTERS[:n_choices]!r}"
        )
    return letter


def _relative(root: Path, name: str) -> Path:
    """``root / name`` for a path stored in an annotation file ("./a/b.png" or "a/b.png")."""
    name = str(name).replace("\\", "/")
    while name.startswith("./"):
        name = name[2:]
    return root / name


def _open_image(path: Path) -> Image.Image:
    """Open, fully decode and convert one image to RGB."""
    with Image.open(path) as image:
        image.load()
        return image.convert("RGB")


def _check_limit(limit: int | None) -> None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise FacLensError(f"limit must be a non-negative int or None, got {limit!r}")


def _emit(
    pending: Iterator[_Pending], source: str, limit: int | None, report: LoadReport | None
) -> Iterator[Sample]:
    """Open each pending record's image and yield Samples; warn about and skip bad images."""
    report = report if report is not None else LoadReport()
    for item in pending:
        if limit is not None and report.yielded >= limit:
            break
        image = None
        if item.image_path is not None:
            try:
                image = _open_image(item.image_path)
            except _IMAGE_ERRORS as e:
                report.skipped += 1
                report.skipped_files.append(str(item.image_path))
                warnings.warn(
                    f"{source}: skipping sample {item.id!r}: image {item.image_path} could not be "
                    f"opened or decoded ({type(e).__name__}: {e})",
                    ImageSkippedWarning,
                    stacklevel=2,
                )
                continue
        report.yielded += 1
        yield Sample(
            id=item.id,
            image=image,
            question=item.question,
            answer=item.answer,
            kind=item.kind,
            choices=item.choices,
            source=source,
            meta=item.meta,
            prompt_text=item.prompt_text,
        )
    if report.skipped:
        total = report.yielded + report.skipped
        warnings.warn(
            f"{source}: skipped {report.skipped} of {total} samples: images could not be decoded "
            f"(or opened): {', '.join(report.skipped_files[:5])}"
            + (" ..." if len(report.skipped_files) > 5 else ""),
            ImageSkippedWarning,
            stacklevel=2,
        )


# ---------------------------------------------------------------------------------------------
# MathVista-mini.
# ---------------------------------------------------------------------------------------------


def _mathvista_record(root: Path, where: str, record: dict) -> _Pending:
    pid, question, answer, question_type, image = _require(
        record, ("pid", "question", "answer", "question_type", "image"), where
    )
    choices = tuple(str(c) for c in (record.get("choices") or ()))
    answer = str(answer)
    if question_type == "multi_choice":
        if not choices:
            raise FacLensError(f"{where}: question_type is 'multi_choice' but 'choices' is empty")
        answer = (
            _LETTERS[choices.index(answer)] if answer in choices else _letter(answer, len(choices), where)
        )
    metadata = record.get("metadata") or {}
    meta = {
        "answer_type": record.get("answer_type"),
        "unit": record.get("unit"),
        "precision": record.get("precision"),
        "query": record.get("query"),
        "task": metadata.get("task"),
        "category": metadata.get("category"),
        "skills": list(metadata.get("skills") or []),
        "context": metadata.get("context"),
        "grade": metadata.get("grade"),
        "dataset": metadata.get("source"),
        "image_path": str(_relative(root, image)),
    }
    query = str(record.get("query") or "")  # the question with its hint: precision, unit, options
    return _Pending(
        str(pid), _relative(root, image), str(question), answer, str(question_type), choices, meta, query
    )


def load_mathvista_mini(
    root: str | Path, limit: int | None = None, *, report: LoadReport | None = None
) -> Iterator[Sample]:
    """Load MathVista testmini (1,000 questions) from local files.

    Expected layout (the testmini split of the official release)::

        <root>/
            testmini.json      a dict {pid: record} (as released), a list of records, or
                               testmini.jsonl with one record per line
            images/1.jpg ...   ``image`` in each record is relative to <root>

    Example record::

        {"pid": "1", "question": "What is the value of x?", "image": "images/1.jpg",
         "choices": ["1", "2", "3", "4"], "answer": "2", "question_type": "multi_choice",
         "answer_type": "text", "unit": null, "precision": null, "query": "Hint: ...",
         "metadata": {"task": "geometry problem solving", "category": "math-targeted-vqa",
                      "skills": ["algebraic reasoning"], "source": "Geometry3K", ...}}

    Required fields: pid, question, answer, question_type, image. For "multi_choice" questions
    the answer (an option text, as released) becomes its letter; an answer that is already a
    valid letter is kept. ``kind`` is the question_type ("multi_choice" | "free_form"); the task,
    skills, answer_type, unit and precision are in ``meta``. The model is asked ``query`` (the
    question with MathVista's hint on the answer format, precision and unit, and the choices) when
    the record has one: it becomes ``Sample.prompt_text``.

    Args:
        root: the folder holding testmini.json(l) and images/.
        limit: yield at most this many samples (None: all).
        report: filled with the counts of yielded and skipped samples.

    Returns:
        An iterator of Samples with source "MathVista-mini".

    Raises:
        FacLensError: the annotation file is missing (now) or a record is malformed (when reached).
    """
    _check_limit(limit)
    path = _find_file(root, ["testmini.json", "testmini.jsonl"], "MathVista-mini", _LAYOUT_MATHVISTA)
    root = Path(root)
    pending = (_mathvista_record(root, f"{path}: {where}", rec) for where, _, rec in _records(path))
    return _emit(pending, "MathVista-mini", limit, report)


# ---------------------------------------------------------------------------------------------
# MathVision-mini.
# ---------------------------------------------------------------------------------------------


def _mathvision_record(root: Path, where: str, record: dict) -> _Pending:
    id_, question, answer, image = _require(record, ("id", "question", "answer", "image"), where)
    choices = tuple(str(c) for c in (record.get("options") or ()))
    answer = _letter(answer, len(choices), where) if choices else str(answer)
    meta = {
        "subject": record.get("subject"),
        "level": record.get("level"),
        "solution": record.get("solution"),
        "image_path": str(_relative(root, image)),
    }
    kind = str(record.get("subject") or "unknown")
    return _Pending(str(id_), _relative(root, image), str(question), answer, kind, choices, meta)


def load_mathvision_mini(
    root: str | Path, limit: int | None = None, *, report: LoadReport | None = None
) -> Iterator[Sample]:
    """Load MathVision testmini (304 questions) from local files.

    Expected layout::

        <root>/
            testmini.jsonl     one record per line (testmini.json, a list, is accepted too)
            images/1.jpg ...   ``image`` in each record is relative to <root>

    Example record::

        {"id": "1", "question": "Which number is missing?\\n<image1>", "options": [],
         "answer": "4", "image": "images/1.jpg", "subject": "arithmetic", "level": 1,
         "solution": null}

    Required fields: id, question, answer, image. When ``options`` is non-empty the question is
    multiple choice and the answer must be a letter among them. The question text is kept as
    released (with its "<image1>" placeholder). ``kind`` is the subject ("unknown" when absent);
    level and solution are in ``meta``.

    Args:
        root: the folder holding testmini.jsonl and images/.
        limit: yield at most this many samples (None: all).
        report: filled with the counts of yielded and skipped samples.

    Returns:
        An iterator of Samples with source "MathVision-mini".

    Raises:
        FacLensError: the annotation file is missing (now) or a record is malformed (when reached).
    """
    _check_limit(limit)
    path = _find_file(root, ["testmini.jsonl", "testmini.json"], "MathVision-mini", _LAYOUT_MATHVISION)
    root = Path(root)
    pending = (_mathvision_record(root, f"{path}: {where}", rec) for where, _, rec in _records(path))
    return _emit(pending, "MathVision-mini", limit, report)


# ---------------------------------------------------------------------------------------------
# HallusionBench.
# ---------------------------------------------------------------------------------------------

_YES_NO = {"1": "yes", "0": "no", "yes": "yes", "no": "no"}


def _hallusion_record(root: Path, where: str, record: dict) -> _Pending:
    fields = ("category", "subcategory", "set_id", "figure_id", "question_id", "question", "gt_answer")
    category, subcategory, set_id, figure_id, question_id, question, gt = _require(record, fields, where)
    answer = _YES_NO.get(str(gt).strip().lower())
    if answer is None:
        raise FacLensError(f"{where}: gt_answer {gt!r} is not '1'/'0' (yes/no)")
    has_image = str(record.get("visual_input", "1")) != "0"
    image_path = None
    if has_image:
        (filename,) = _require(record, ("filename",), where)
        image_path = _relative(root, filename)
    meta = {
        "subcategory": subcategory,
        "set_id": str(set_id),
        "figure_id": str(figure_id),
        "question_id": str(question_id),
        "visual_input": str(record.get("visual_input", "1")),
        "sample_note": record.get("sample_note"),
        "gt_answer_details": record.get("gt_answer_details"),
        "image_path": str(image_path) if image_path else None,
    }
    id_ = f"{category}_{subcategory}_{set_id}_{figure_id}_{question_id}"
    return _Pending(id_, image_path, str(question), answer, str(category), (), meta)


def load_hallusionbench(
    root: str | Path, limit: int | None = None, *, report: LoadReport | None = None
) -> Iterator[Sample]:
    """Load HallusionBench (yes/no questions) from local files.

    Expected layout (HallusionBench.json and the unzipped hallusion_bench.zip)::

        <root>/
            HallusionBench.json
            hallusion_bench/VD/illusion/0_0.png ...   ``filename`` is relative to <root>

    Example record::

        {"category": "VD", "subcategory": "illusion", "visual_input": "1", "set_id": "0",
         "figure_id": "0", "sample_note": "circle", "question_id": "0",
         "question": "Is the right orange circle the same size as the left orange circle?",
         "gt_answer_details": "...", "gt_answer": "1",
         "filename": "./hallusion_bench/VD/illusion/0_0.png"}

    Required fields: category, subcategory, set_id, figure_id, question_id, question, gt_answer,
    and filename when visual_input is not "0". gt_answer "1"/"0" becomes "yes"/"no". Questions
    with visual_input "0" have no image: they are yielded with ``image=None`` (evaluation leaves
    them out and counts them: :func:`fac_lens.data.datasets.split_text_only`). ``kind`` is the
    category ("VD" visual dependent, "VS" visual supplement); ``id`` is
    "category_subcategory_setid_figureid_questionid".

    Args:
        root: the folder holding HallusionBench.json and hallusion_bench/.
        limit: yield at most this many samples (None: all).
        report: filled with the counts of yielded and skipped samples.

    Returns:
        An iterator of Samples with source "HallusionBench".

    Raises:
        FacLensError: the annotation file is missing (now) or a record is malformed (when reached).
    """
    _check_limit(limit)
    path = _find_file(root, ["HallusionBench.json"], "HallusionBench", _LAYOUT_HALLUSION)
    root = Path(root)
    pending = (_hallusion_record(root, f"{path}: {where}", rec) for where, _, rec in _records(path))
    return _emit(pending, "HallusionBench", limit, report)


# ---------------------------------------------------------------------------------------------
# CLEVR.
# ---------------------------------------------------------------------------------------------

_CLEVR_COMPARE_INTEGER = {"equal_integer", "less_than", "greater_than"}
_CLEVR_NUMBER_WORDS = re.compile(r"\b(number|more|fewer|less than|greater than|as many)\b", re.I)


def _clevr_kind_from_program(program: Any) -> str | None:
    """The CLEVR question family of a functional program, from its last function."""
    if not isinstance(program, list) or not program or not isinstance(program[-1], dict):
        return None
    last = str(program[-1].get("function") or program[-1].get("type") or "")
    if last in ("count", "exist"):
        return last
    if last in _CLEVR_COMPARE_INTEGER:
        return "compare_integer"
    if last.startswith("equal_"):
        return "compare_attribute"
    if last.startswith("query_"):
        return "query_attribute"
    return None


def _clevr_kind(record: dict) -> str:
    """count | exist | compare_integer | compare_attribute | query_attribute.

    From the program when the record has one, else a heuristic on the answer and question.
    """
    kind = _clevr_kind_from_program(record.get("program"))
    if kind is not None:
        return kind
    answer = str(record["answer"]).strip().lower()
    question = str(record["question"]).strip().lower()
    if answer.isdigit():
        return "count"
    if answer not in ("yes", "no"):
        return "query_attribute"
    if _CLEVR_NUMBER_WORDS.search(question):
        return "compare_integer"
    if question.startswith(("is there", "are there")) or " same " not in f" {question} ":
        return "exist"
    return "compare_attribute"


def _clevr_record(image_dir: Path, where: str, position: int, record: dict) -> _Pending:
    image_filename, question, answer = _require(record, ("image_filename", "question", "answer"), where)
    meta = {
        "question_family_index": record.get("question_family_index"),
        "image_index": record.get("image_index"),
        "program": record.get("program"),
        "image_path": str(image_dir / image_filename),
    }
    id_ = str(record.get("question_index", position))
    kind = _clevr_kind(record)
    return _Pending(id_, image_dir / image_filename, str(question), str(answer), kind, (), meta)


def load_clevr(
    root: str | Path, limit: int | None = None, *, split: str = "val", report: LoadReport | None = None
) -> Iterator[Sample]:
    """Load CLEVR v1.0 questions (the validation split by default) from local files.

    Expected layout (the unzipped CLEVR_v1.0 folder)::

        <root>/
            questions/CLEVR_val_questions.json    {"info": {...}, "questions": [record, ...]}
            images/val/CLEVR_val_000000.png ...

    Example record::

        {"image_index": 0, "image_filename": "CLEVR_val_000000.png", "question_index": 0,
         "question_family_index": 39, "split": "val", "answer": "no",
         "question": "Are there any other things that are the same shape as the big metal cube?",
         "program": [{"function": "scene", "inputs": [], "value_inputs": []}, ...,
                     {"function": "exist", "inputs": [5], "value_inputs": []}]}

    Required fields: image_filename, question, answer. ``kind`` is the CLEVR question family:
    "count", "exist", "compare_integer", "compare_attribute" or "query_attribute", from the last
    function of ``program`` ("function" or "type" key). Without a program it is a heuristic: a
    digit answer is "count", a non yes/no answer "query_attribute", a yes/no question about a
    number/more/fewer "compare_integer", one starting "is there"/"are there" (or without "same")
    "exist", else "compare_attribute". ``id`` is question_index (the record position if absent).

    Args:
        root: the CLEVR_v1.0 folder.
        limit: yield at most this many samples (None: all).
        split: "val" (default) or "train"; the test split has no answers.
        report: filled with the counts of yielded and skipped samples.

    Returns:
        An iterator of Samples with source "CLEVR".

    Raises:
        FacLensError: the annotation file is missing (now) or a record is malformed (when reached).
    """
    _check_limit(limit)
    layout = _LAYOUT_CLEVR.replace("val", split)
    path = _find_file(root, [f"questions/CLEVR_{split}_questions.json"], "CLEVR", layout)
    image_dir = Path(root) / "images" / split
    pending = (
        _clevr_record(image_dir, f"{path}: {where}", position, rec)
        for where, position, rec in _records(path, key="questions")
    )
    return _emit(pending, "CLEVR", limit, report)


# ---------------------------------------------------------------------------------------------
# MMStar.
# ---------------------------------------------------------------------------------------------

_OPTIONS_MARKER = re.compile(r"\boptions?\s*:\s*", re.I)


def _option_start(text: str, letter: str, start: int) -> re.Match | None:
    """The first "X:" option marker for ``letter`` at or after ``start``, at a word boundary."""
    return re.compile(rf"(?:^|(?<=[\s,;(]))\(?{letter}\)?\s*:\s*").search(text, start)


def split_options(text: str) -> tuple[str, tuple[str, ...]] | None:
    """Split an MMStar question into its stem and its option texts.

    The options are written in the text as ``"Options: A: first, B: second, C: third"`` (the
    "Options:" marker is optional). Option texts keep their inner commas; a trailing comma or
    semicolon before the next letter is removed.

    Args:
        text: the question text with its options.

    Returns:
        (stem, options), or None when no "A: ... B: ..." sequence is found.
    """
    markers = list(_OPTIONS_MARKER.finditer(text))
    marker = markers[-1] if markers else None
    search_from = marker.end() if marker else 0
    starts = []
    for letter in _LETTERS:
        match = _option_start(text, letter, starts[-1].end() if starts else search_from)
        if match is None:
            break
        starts.append(match)
    if len(starts) < 2:
        return None
    ends = [m.start() for m in starts[1:]] + [len(text)]
    options = tuple(
        text[m.end() : end].strip().rstrip(",;").strip() for m, end in zip(starts, ends, strict=True)
    )
    stem_end = marker.start() if marker else starts[0].start()
    return text[:stem_end].strip(), options


def _mmstar_image(record: dict) -> Any:
    meta_info = record.get("meta_info") if isinstance(record.get("meta_info"), dict) else {}
    return record.get("image") or record.get("image_path") or meta_info.get("image_path")


def _mmstar_record(root: Path, where: str, record: dict) -> _Pending:
    index, text, answer, category = _require(record, ("index", "question", "answer", "category"), where)
    image = _mmstar_image(record)
    if image is None:
        raise FacLensError(f"{where}: missing required field 'image' (or 'image_path')")
    parsed = split_options(str(text))
    if parsed is None:
        raise FacLensError(f"{where}: no options 'A: ..., B: ...' found in the question text")
    question, choices = parsed
    meta_info = record.get("meta_info") if isinstance(record.get("meta_info"), dict) else {}
    meta = {
        "l2_category": record.get("l2_category"),
        "dataset": meta_info.get("source"),
        "question_with_options": str(text),
        "image_path": str(_relative(root, image)),
    }
    letter = _letter(answer, len(choices), where)
    return _Pending(str(index), _relative(root, image), question, letter, str(category), choices, meta)


def load_mmstar(
    root: str | Path, limit: int | None = None, *, report: LoadReport | None = None
) -> Iterator[Sample]:
    """Load MMStar (1,500 multiple-choice questions) from local files.

    MMStar is released as a parquet/TSV with embedded images; this loader expects it exported to
    a JSON Lines (or JSON list) file with image files beside it::

        <root>/
            mmstar.jsonl       one record per line (mmstar.json, a list, is accepted too)
            images/0.jpg ...   ``image`` (or ``image_path``, or ``meta_info.image_path``) in each
                               record is relative to <root>

    Example record::

        {"index": 0, "question": "Which option describe the object relationship in the image
         correctly?\\nOptions: A: The suitcase is on the book., B: The suitcase is beneath the
         cat., C: The suitcase is beneath the bed., D: The suitcase is beneath the book.",
         "answer": "A", "category": "coarse perception", "l2_category": "image scene and topic",
         "meta_info": {"source": "MMBench", "split": "val"}, "image": "images/0.jpg"}

    Required fields: index, question, answer, category and an image path. The options are parsed
    from the question text (see :func:`split_options`); ``question`` is the text before them and
    ``choices`` the option texts. ``kind`` is the category; l2_category is in ``meta``.

    Args:
        root: the folder holding mmstar.jsonl and images/.
        limit: yield at most this many samples (None: all).
        report: filled with the counts of yielded and skipped samples.

    Returns:
        An iterator of Samples with source "MMStar".

    Raises:
        FacLensError: the annotation file is missing (now) or a record is malformed (when reached).
    """
    _check_limit(limit)
    path = _find_file(root, ["mmstar.jsonl", "mmstar.json"], "MMStar", _LAYOUT_MMSTAR)
    root = Path(root)
    pending = (_mmstar_record(root, f"{path}: {where}", rec) for where, _, rec in _records(path))
    return _emit(pending, "MMStar", limit, report)


# ---------------------------------------------------------------------------------------------
# SEED-Bench.
# ---------------------------------------------------------------------------------------------

_SEED_CHOICES = ("choice_a", "choice_b", "choice_c", "choice_d")


def _seed_image(image_dir: Path, data_id: str) -> Path:
    """``images/<data_id>``, or with a .jpg/.png extension added when only that file exists."""
    path = image_dir / data_id
    if path.exists():
        return path
    for suffix in (".jpg", ".png", ".jpeg"):
        if (image_dir / f"{data_id}{suffix}").exists():
            return image_dir / f"{data_id}{suffix}"
    return path


def _seed_record(image_dir: Path, type_names: dict, where: str, record: dict) -> _Pending:
    fields = ("question_id", "question", *_SEED_CHOICES, "answer", "question_type_id", "data_id")
    question_id, question, *rest = _require(record, fields, where)
    choices = tuple(str(c) for c in rest[:4])
    answer, type_id, data_id = rest[4:]
    image_path = _seed_image(image_dir, str(data_id))
    meta = {
        "question_type_id": type_id,
        "data_id": str(data_id),
        "image_path": str(image_path),
    }
    kind = type_names.get(str(type_id), str(type_id))
    return _Pending(
        str(question_id), image_path, str(question), _letter(answer, 4, where), kind, choices, meta
    )


def _seed_pending(path: Path, image_dir: Path, report: LoadReport) -> Iterator[_Pending]:
    data = _load_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("questions"), list):
        raise FacLensError(f"{path}: expected a JSON object with a 'questions' list")
    mapping = data.get("question_type") or {}
    type_names = {str(type_id): str(name) for name, type_id in mapping.items()}
    for where, _, record in _json_records(path, data["questions"]):
        if str(record.get("data_type", "image")) != "image":
            report.excluded += 1
            continue
        yield _seed_record(image_dir, type_names, f"{path}: {where}", record)


def load_seed_bench(
    root: str | Path, limit: int | None = None, *, report: LoadReport | None = None
) -> Iterator[Sample]:
    """Load SEED-Bench image questions (multiple choice, four options) from local files.

    Expected layout (SEED-Bench.json and the image archive unpacked into images/)::

        <root>/
            SEED-Bench.json    {"question_type": {"Scene Understanding": 1, ...},
                                "questions": [record, ...]}
            images/1454426_2591111986.jpg ...   found as images/<data_id>, or with .jpg/.png added

    Example record::

        {"question_id": "101669", "question": "How many towels are in the image?",
         "choice_a": "One", "choice_b": "Two", "choice_c": "Three", "choice_d": "Four",
         "answer": "A", "question_type_id": 5, "data_type": "image",
         "data_id": "1454426_2591111986.jpg"}

    Required fields: question_id, question, choice_a..choice_d, answer, question_type_id,
    data_id. Records whose ``data_type`` is not "image" (the video questions) are left out and
    counted in ``report.excluded``. ``kind`` is the question type name from the top-level
    ``question_type`` mapping (the id as text when the mapping lacks it).

    Args:
        root: the folder holding SEED-Bench.json and images/.
        limit: yield at most this many samples (None: all).
        report: filled with the counts of yielded, skipped and excluded samples.

    Returns:
        An iterator of Samples with source "SEED-Bench".

    Raises:
        FacLensError: the annotation file is missing (now) or a record is malformed (when reached).
    """
    _check_limit(limit)
    path = _find_file(root, ["SEED-Bench.json"], "SEED-Bench", _LAYOUT_SEED)
    report = report if report is not None else LoadReport()
    pending = _seed_pending(path, Path(root) / "images", report)
    return _emit(pending, "SEED-Bench", limit, report)


# ---------------------------------------------------------------------------------------------
# Dispatcher.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchmarkInfo:
    """One benchmark: its canonical name, display name, loader and expected file layout."""

    name: str
    display_name: str
    loader: Callable[..., Iterator[Sample]]
    layout: str


BENCHMARKS: dict[str, BenchmarkInfo] = {
    info.name: info
    for info in (
        BenchmarkInfo("mathvista-mini", "MathVista-mini", load_mathvista_mini, _LAYOUT_MATHVISTA),
        BenchmarkInfo("mathvision-mini", "MathVision-mini", load_mathvision_mini, _LAYOUT_MATHVISION),
        BenchmarkInfo("hallusionbench", "HallusionBench", load_hallusionbench, _LAYOUT_HALLUSION),
        BenchmarkInfo("clevr", "CLEVR", load_clevr, _LAYOUT_CLEVR),
        BenchmarkInfo("mmstar", "MMStar", load_mmstar, _LAYOUT_MMSTAR),
        BenchmarkInfo("seed-bench", "SEED-Bench", load_seed_bench, _LAYOUT_SEED),
    )
}

_ALIASES = {
    "mathvista": "mathvista-mini",
    "mathvista-testmini": "mathvista-mini",
    "mathvision": "mathvision-mini",
    "mathvision-testmini": "mathvision-mini",
    "hallusion-bench": "hallusionbench",
    "seedbench": "seed-bench",
    "seed": "seed-bench",
}


def benchmark_info(name: str) -> BenchmarkInfo:
    """The :class:`BenchmarkInfo` for a benchmark name, case-insensitive.

    Accepts the canonical names ("mathvista-mini"), the display names ("MathVista-mini"), and
    spellings with "_" or spaces for "-" ("seed_bench", "SEED Bench").

    Raises:
        FacLensError: an unknown name; the message lists the known ones.
    """
    key = re.sub(r"[\s_]+", "-", str(name).strip().lower())
    key = _ALIASES.get(key, key)
    if key not in BENCHMARKS:
        known = ", ".join(info.display_name for info in BENCHMARKS.values())
        raise FacLensError(f"unknown benchmark {name!r}; known: {known}")
    return BENCHMARKS[key]


def load_benchmark(
    name: str, root: str | Path, limit: int | None = None, *, report: LoadReport | None = None
) -> Iterator[Sample]:
    """Load one of the six benchmarks from local files by name.

    Args:
        name: "mathvista-mini", "mathvision-mini", "hallusionbench", "clevr", "mmstar" or
            "seed-bench"; case-insensitive, display names ("MathVista-mini") accepted.
        root: the benchmark's folder, laid out as ``BENCHMARKS[name].layout`` describes.
        limit: yield at most this many samples (None: all).
        report: filled with the counts of yielded, skipped and excluded samples.

    Returns:
        An iterator of Samples; images are opened one at a time as samples are yielded.

    Raises:
        FacLensError: an unknown name, a missing annotation file (now), or a malformed record
            (when iteration reaches it).
    """
    return benchmark_info(name).loader(root, limit, report=report)
