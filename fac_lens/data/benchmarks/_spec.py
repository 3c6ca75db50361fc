"""What every benchmark module declares, and the record -> Sample plumbing they share.

A benchmark module (``mathvista.py``, ``pope.py``, ...) defines one :class:`BenchmarkSpec`: where
its releases live (hub ids, original file names, VLMEvalKit TSV names), its default split, and a
``convert`` function that turns one released record (a dict with the release's own column names)
into a :class:`Pending` sample. The driver (:mod:`._layouts`) finds the layout and yields records;
:func:`emit` opens images lazily and yields :class:`~fac_lens.data.sample.Sample` objects.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from ...errors import FacLensError
from ..sample import Sample

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_IMAGE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError)

# Layout names, as reported in ``BenchmarkLoad.layout`` and in error messages.
HUB_CACHE = "hub-cache"
PARQUET = "parquet"
SAVE_TO_DISK = "save_to_disk"
ARROW_CACHE = "arrow-cache"
ORIGINAL = "original"
TSV = "vlmevalkit-tsv"


class ImageSkippedWarning(UserWarning):
    """A benchmark image could not be opened or decoded, so its sample was skipped."""


@dataclass
class LoadReport:
    """Counts of one loading run; pass one to a loader to read them programmatically.

    Attributes:
        yielded: samples yielded so far.
        skipped: samples skipped because their image could not be opened or decoded.
        skipped_files: the image paths (or "<record> image") of the skipped samples, in order.
        excluded: records left out by design (SEED-Bench video questions, another POPE variant).
        layout: the layout the records were read from (e.g. "parquet", "vlmevalkit-tsv").
    """

    yielded: int = 0
    skipped: int = 0
    skipped_files: list[str] = field(default_factory=list)
    excluded: int = 0
    layout: str = ""


@dataclass(frozen=True)
class ImageRef:
    """Where one image is: encoded bytes (parquet struct, base64 TSV cell) or a file."""

    path: Path | None = None
    data: bytes | None = None
    label: str = ""

    def open(self) -> Image.Image:
        """Open, fully decode and convert to RGB."""
        source = io.BytesIO(self.data) if self.data is not None else self.path
        with Image.open(source) as image:
            image.load()
            return image.convert("RGB")

    def __str__(self) -> str:
        return str(self.path) if self.path is not None else self.label


@dataclass(frozen=True)
class Context:
    """What a ``convert`` function knows besides the record: the layout, the folder image paths
    are relative to, and the locator used in error messages ("<file>: record 3")."""

    layout: str
    root: Path
    where: str
    image_dirs: tuple[Path, ...] = ()


@dataclass(frozen=True)
class Pending:
    """A converted record whose image has not been opened yet."""

    id: str
    image: ImageRef | None
    question: str
    answer: str
    kind: str
    choices: tuple[str, ...] = ()
    meta: dict = field(default_factory=dict)
    prompt_text: str = ""


@dataclass(frozen=True)
class OriginalFile:
    """One annotation file of an original release: ``path`` under the root (``{split}`` filled in),
    ``key`` the top-level key holding the records (None: the file is the list/dict of records)."""

    path: str
    key: str | None = None


@dataclass(frozen=True)
class BenchmarkSpec:
    """One benchmark: its releases, field mapping (``convert``), prompt, answer type and metric.

    Attributes:
        name: canonical name ("mathvista-mini").
        display_name: name in tables and ``Sample.source`` ("MathVista-mini").
        hub_ids: Hugging Face dataset ids of its releases, official first.
        splits: the split(s) read by default, in order (e.g. ("testmini",)).
        original: annotation files of the original release, tried in order.
        image_dirs: folders (under the root) the original release's image names are looked up in.
        tsv: VLMEvalKit TSV file names.
        convert: (record, context) -> Pending; raises FacLensError on a malformed record.
        answer_type, metric, prompt: one line each, for the README table and docs.
        variants: values of ``variant_field`` a ``split=`` may select (POPE's three sets).
        variant_field: the record field holding the variant (None: no variants).
        variant_files: original-release file per variant (``{variant}`` filled in).
        excluded: (record) -> True for records left out by design (counted, not errors).
    """

    name: str
    display_name: str
    hub_ids: tuple[str, ...]
    splits: tuple[str, ...]
    original: tuple[OriginalFile, ...]
    tsv: tuple[str, ...]
    convert: Callable[[dict, Context], Pending]
    answer_type: str
    metric: str
    prompt: str
    image_dirs: tuple[str, ...] = ("",)
    variants: tuple[str, ...] = ()
    variant_field: str | None = None
    excluded: Callable[[dict], bool] | None = None

    @property
    def layouts(self) -> tuple[str, ...]:
        """The layouts this benchmark is read from: the Hugging Face forms always (community copies
        too), the original release and VLMEvalKit's TSV where they exist."""
        original = (ORIGINAL,) if self.original else ()
        return (HUB_CACHE, SAVE_TO_DISK, ARROW_CACHE, PARQUET, *original, *((TSV,) if self.tsv else ()))


# ---------------------------------------------------------------------------------------------
# Field helpers used by the convert functions.
# ---------------------------------------------------------------------------------------------


def missing(value: Any) -> bool:
    """None, NaN (pandas' empty cell) or an empty string."""
    return value is None or (isinstance(value, float) and math.isnan(value)) or value == ""


def get(record: dict, *names: str, default: Any = None) -> Any:
    """The first present, non-missing field among ``names``."""
    for name in names:
        value = record.get(name)
        if not missing(value):
            return value
    return default


def require(record: dict, names: tuple[str, ...], where: str) -> list[Any]:
    """The values of required fields; a missing one raises FacLensError naming ``where``."""
    absent = [name for name in names if missing(record.get(name))]
    if absent:
        raise FacLensError(f"{where}: missing required field(s) {', '.join(map(repr, absent))}")
    return [record[name] for name in names]


def text(value: Any) -> str:
    """A field as text; integral floats (pandas reads "3" as 3.0 in mixed columns) lose ".0"."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def letter(answer: Any, n_choices: int, where: str) -> str:
    """Validate a multiple-choice answer letter ("a", " B", "(C)") and return it upper-case."""
    value = str(answer).strip().strip("()").upper()
    if len(value) != 1 or value not in LETTERS[:n_choices]:
        raise FacLensError(
            f"{where}: answer {answer!r} is not an option letter among {LETTERS[:n_choices]!r}"
        )
    return value


def option_columns(record: dict) -> tuple[str, ...]:
    """VLMEvalKit's option columns "A", "B", ... in order, up to the first missing one."""
    options = []
    for name in LETTERS:
        value = record.get(name)
        if missing(value):
            break
        options.append(text(value))
    return tuple(options)


def relative(root: Path, name: str) -> Path:
    """``root / name`` for a path stored in an annotation file ("./a/b.png" or "a/b.png")."""
    name = str(name).replace("\\", "/")
    while name.startswith("./"):
        name = name[2:]
    return root / name


def image_ref(value: Any, ctx: Context) -> ImageRef | None:
    """Where a record's image is, whatever the layout stores.

    Parquet / save_to_disk: a struct ``{"bytes": ..., "path": ...}`` (or a list of them: the first).
    VLMEvalKit TSV: a base64 string. Original releases: a file name, looked up under the root and
    the benchmark's image folders (the first that has it; the root when none does).
    """
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    if missing(value):
        return None
    label = f"{ctx.where}: image"
    if isinstance(value, dict):
        if value.get("bytes"):
            return ImageRef(data=value["bytes"], label=label)
        return image_ref(value.get("path"), ctx) if value.get("path") else None
    if isinstance(value, bytes):
        return ImageRef(data=value, label=label)
    if ctx.layout == TSV:
        try:
            return ImageRef(data=base64.b64decode(str(value), validate=False), label=label)
        except (binascii.Error, ValueError):
            return ImageRef(data=b"", label=label)  # reported as undecodable when opened
    for folder in (*ctx.image_dirs, ctx.root):
        path = relative(folder, str(value))
        if path.exists():
            return ImageRef(path=path)
    return ImageRef(path=relative(ctx.image_dirs[0] if ctx.image_dirs else ctx.root, str(value)))


# ---------------------------------------------------------------------------------------------
# Emission: Pending -> Sample, images opened one at a time.
# ---------------------------------------------------------------------------------------------


def emit(pending: Iterator[Pending], source: str, limit: int | None, report: LoadReport) -> Iterator[Sample]:
    """Open each pending record's image and yield Samples; warn about and skip bad images."""
    for item in pending:
        if limit is not None and report.yielded >= limit:
            break
        image = None
        if item.image is not None:
            try:
                image = item.image.open()
            except _IMAGE_ERRORS as e:
                report.skipped += 1
                report.skipped_files.append(str(item.image))
                warnings.warn(
                    f"{source}: skipping sample {item.id!r}: image {item.image} could not be "
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
