"""Find which released layout a path (or hub id) holds, and read its records.

Layouts, tried in this order (the first that fits is used and reported):

* ``hub-cache``: a hub id (``AI4Math/MathVista``) resolved in the local Hugging Face cache only
  (``huggingface_hub.snapshot_download(..., local_files_only=True)``: offline, never downloads);
  the snapshot folder is then read as one of the layouts below (parquet first).
* ``save_to_disk``: a folder written by ``datasets.Dataset(Dict).save_to_disk`` (``state.json`` /
  ``dataset_dict.json``), read with ``datasets.load_from_disk`` (memory-mapped Arrow).
* ``arrow-cache``: a folder of the ``datasets`` cache that ``load_dataset`` wrote
  (``dataset_info.json`` beside ``<builder>-<split>[-00000-of-00002].arrow``), read with
  ``datasets.Dataset.from_file`` (memory-mapped).
* ``parquet``: a ``.parquet`` file, or a folder of the hub's parquet shards, read with pyarrow in
  batches. Shards are matched to splits by name as the hub names them: ``data/testmini-00000-of-
  00001-<hash>.parquet`` (prefix before the first "-"), or a folder named after the split
  (``Full/adversarial/0000.parquet``, the hub's parquet converter). A folder with a single unnamed
  set of shards (MMStar's ``mmstar.parquet``) is that one split.
* ``original``: the benchmark's original annotation file(s) (JSON, JSON Lines) plus image files.
* ``vlmevalkit-tsv``: VLMEvalKit's TSV (``index``, ``image`` as base64, ``question``, ...), read with
  pandas as VLMEvalKit does. An ``image`` cell of at most 64 characters is, as in VLMEvalKit, the
  ``index`` of the row holding the image (VLMEvalKit stores each image once).

Images stored in parquet / Arrow are structs ``{"bytes", "path"}`` (``datasets.Image``); they are
read undecoded and opened lazily, one per sample, by :func:`._spec.emit`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import FacLensError
from ._spec import (
    ARROW_CACHE,
    HUB_CACHE,
    ORIGINAL,
    PARQUET,
    SAVE_TO_DISK,
    TSV,
    BenchmarkSpec,
    Context,
    OriginalFile,
)

Records = Iterator[tuple[dict, Context]]
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
_DISK_MARKERS = ("state.json", "dataset_dict.json")
_BATCH = 64
HEADER = "__file_header__"  # key under which a record carries its file's top-level fields


@dataclass(frozen=True)
class Found:
    """A recognised layout: its name, a one-line description, and its records (read lazily)."""

    layout: str
    description: str
    records: Callable[[], Records]


def find(
    spec: BenchmarkSpec,
    source: str | Path,
    splits: tuple[str, ...],
    cache_dir: str | None,
    variant: str | None = None,
) -> Found:
    """The layout ``source`` holds for ``spec`` (``variant``: the one POPE variant file to read).

    Raises:
        FacLensError: nothing recognised; the message lists every layout looked for.
    """
    path = Path(source).expanduser()
    if not path.exists() and isinstance(source, str) and _HUB_ID.fullmatch(source):
        snapshot = _snapshot(spec, source, cache_dir)
        found = _in_folder(spec, snapshot, splits, variant)
        if found is None:
            raise FacLensError(_nothing(spec, splits, f"the cached snapshot of {source}"))
        return Found(
            f"{HUB_CACHE}:{found.layout}",
            f"{source} from the local HF cache, {found.description}",
            found.records,
        )
    if not path.exists():
        raise FacLensError(
            f"{spec.display_name}: {path} does not exist and is not a hub id (org/name).\n"
            + _looked_for(spec, splits)
        )
    found = _file(spec, path, splits) if path.is_file() else _in_folder(spec, path, splits, variant)
    if found is None:
        raise FacLensError(_nothing(spec, splits, str(path)))
    return found


def _nothing(spec: BenchmarkSpec, splits: tuple[str, ...], what: str) -> str:
    return f"{spec.display_name}: no layout recognised in {what}.\n" + _looked_for(spec, splits)


def _looked_for(spec: BenchmarkSpec, splits: tuple[str, ...]) -> str:
    """Every layout looked for, with what it needs; fac_lens never downloads."""
    original = ", ".join(_original_names(spec, splits)) or "(none released)"
    tsv = ", ".join(spec.tsv) or "(none released)"
    hub = ", ".join(spec.hub_ids) or "(none)"
    return (
        f"Layouts looked for (split {'/'.join(splits)}):\n"
        f"  {HUB_CACHE}: a hub id in the local HF cache: {hub}\n"
        f"  {SAVE_TO_DISK}: a datasets.save_to_disk folder ({' or '.join(_DISK_MARKERS)})\n"
        f"  {ARROW_CACHE}: a load_dataset cache folder (dataset_info.json, <builder>-<split>.arrow)\n"
        f"  {PARQUET}: a .parquet file or a folder of the hub's parquet shards\n"
        f"  {ORIGINAL}: {original}\n"
        f"  {TSV}: {tsv}\n"
        "Download the benchmark yourself (fac_lens never downloads), e.g. "
        f"`hf download {spec.hub_ids[0] if spec.hub_ids else '<id>'} --repo-type dataset`."
    )


def _snapshot(spec: BenchmarkSpec, repo_id: str, cache_dir: str | None) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    try:
        return Path(
            snapshot_download(repo_id, repo_type="dataset", local_files_only=True, cache_dir=cache_dir)
        )
    except (LocalEntryNotFoundError, HFValidationError) as e:
        raise FacLensError(
            f"{spec.display_name}: {repo_id} is not in the local Hugging Face cache ({type(e).__name__}), "
            f"and no folder {repo_id} exists here; fac_lens reads hub datasets offline only. Download it "
            f"where there is network (`hf download {repo_id} --repo-type dataset`) or pass its folder."
        ) from e


def _file(spec: BenchmarkSpec, path: Path, splits: tuple[str, ...]) -> Found | None:
    if path.suffix == ".parquet":
        return Found(PARQUET, f"parquet file {path}", lambda: _parquet_records([path], path.parent))
    if path.suffix == ".tsv":
        return Found(TSV, f"VLMEvalKit TSV {path}", lambda: _tsv_records(path))
    if path.suffix in (".json", ".jsonl"):
        entry = _entry(spec, path)
        key = entry.key if entry else None
        root = path.parents[len(Path(entry.path).parts) - 1] if entry else path.parent  # the release's root
        if entry is not None and "{variant}" in entry.path:  # POPE: the variant is in the file name
            variant = next((v for v in spec.variants if v in path.name), "")
            return Found(
                ORIGINAL, f"original file {path}", lambda: _variant_records(spec, [(variant, path)], root)
            )
        return Found(
            ORIGINAL, f"annotation file {path}", lambda: _original_records(spec, path, key, root, splits[0])
        )
    return None


def _in_folder(spec: BenchmarkSpec, root: Path, splits: tuple[str, ...], variant: str | None) -> Found | None:
    for marker in _DISK_MARKERS:
        if (root / marker).is_file():
            return Found(SAVE_TO_DISK, f"save_to_disk folder {root}", lambda: _disk_records(root, splits))
    arrows = sorted(root.glob("*.arrow")) if (root / "dataset_info.json").is_file() else []
    if arrows:
        files = _arrow_split_files(spec, root, arrows, splits)
        names = ", ".join(f.name for f in files)
        return Found(ARROW_CACHE, f"datasets cache {root} ({names})", lambda: _arrow_records(files, root))
    shards = sorted({p for depth in ("", "*/", "*/*/") for p in root.glob(f"{depth}*.parquet")})
    if shards:
        files, label, tags = _split_shards(spec, root, shards, splits, variant)
        names = ", ".join(str(f.relative_to(root)) for f in files[:3]) + (" ..." if len(files) > 3 else "")
        return Found(
            PARQUET,
            f"parquet shards in {root} ({label}: {names})",
            lambda: _parquet_records(files, root, tags),
        )
    original = _original(spec, root, splits, variant)
    if original is not None:
        return original
    for name in spec.tsv:
        if (root / name).is_file():
            return Found(TSV, f"VLMEvalKit TSV {root / name}", lambda p=root / name: _tsv_records(p))
    return None


# ---------------------------------------------------------------------------------------------
# Parquet shards and save_to_disk folders (Arrow, images as {bytes, path} structs).
# ---------------------------------------------------------------------------------------------


def _shard_names(root: Path, shard: Path) -> set[str]:
    """The split names a shard's path carries: its file-name prefix and its folder names."""
    rel = shard.relative_to(root)
    return {rel.name.split("-")[0].split(".")[0], *rel.parts[:-1]}


def _split_shards(
    spec: BenchmarkSpec, root: Path, shards: list[Path], splits: tuple[str, ...], variant: str | None
) -> tuple[list[Path], str, dict[Path, dict]]:
    """(shards to read, a label, fields to add per shard): the shards of ``splits``; else, for a
    benchmark with variants, the shards in folders named after them (lmms-lab/POPE's ``Full``
    config: ``Full/adversarial/0000.parquet``), each tagged with its variant; else a single
    unnamed set of shards."""
    chosen = [s for split in splits for s in shards if split in _shard_names(root, s)]
    if chosen:
        return chosen, f"split {'/'.join(splits)}", {}
    wanted = [variant] if variant else list(spec.variants)
    by_variant = [(v, s) for v in wanted for s in shards if v in _shard_names(root, s)]
    if by_variant:
        tags = {s: {spec.variant_field: v} for v, s in by_variant}
        return [s for _, s in by_variant], f"variant folders {'/'.join(wanted)}", tags
    groups = {(s.relative_to(root).parent, s.name.split("-")[0]) for s in shards}
    if len(groups) == 1:  # a single unnamed set of shards (e.g. mmstar.parquet): the one split
        return shards, "its only split", {}
    found = sorted({n for s in shards for n in _shard_names(root, s) if not n.isdigit()})
    raise FacLensError(
        f"{spec.display_name}: no parquet shard of split {'/'.join(splits)} in {root}; the shards there are "
        f"named {found}: pass split= to load_benchmark with one of them (or point --data at that split's file)"
    )


def _parquet_records(files: list[Path], root: Path, tags: dict[Path, dict] | None = None) -> Records:
    import pyarrow.parquet as pq

    for file in files:
        rel = file.relative_to(root) if file.is_relative_to(root) else file
        tag = (tags or {}).get(file, {})
        row = 0
        for batch in pq.ParquetFile(file).iter_batches(batch_size=_BATCH):
            for record in batch.to_pylist():
                yield (
                    {**tag, **{k: v for k, v in record.items() if v is not None}} if tag else record,
                    Context(PARQUET, root, f"{rel}: row {row}"),
                )
                row += 1


_ARROW_NAME = re.compile(r"-(?P<split>[^-]+?)(?:-\d{5}-of-\d{5})?\.arrow$")


def _arrow_split_files(
    spec: BenchmarkSpec, root: Path, files: list[Path], splits: tuple[str, ...]
) -> list[Path]:
    """The cache files of ``splits``, named ``<builder>-<split>[-<i>-of-<n>].arrow``."""
    named = [(m.group("split") if (m := _ARROW_NAME.search(f.name)) else "", f) for f in files]
    chosen = [f for split in splits for name, f in named if name == split]
    if chosen:
        return chosen
    found = sorted({name for name, _ in named})
    if len(found) == 1:
        return files
    raise FacLensError(
        f"{spec.display_name}: no cache file of split {'/'.join(splits)} in {root}; the splits there "
        f"are {found}: pass split= to load_benchmark with one of them"
    )


def _arrow_records(files: list[Path], root: Path) -> Records:
    from datasets import Dataset

    for file in files:
        table = Dataset.from_file(str(file)).with_format("arrow")  # undecoded image structs
        row = 0
        for batch in table.iter(batch_size=_BATCH):
            for record in batch.to_pylist():
                yield record, Context(PARQUET, root, f"{file.name}: row {row}")
                row += 1


def _disk_records(root: Path, splits: tuple[str, ...]) -> Records:
    from datasets import Dataset, load_from_disk

    data = load_from_disk(str(root))
    if isinstance(data, Dataset):
        parts = [("", data)]
    else:
        absent = [s for s in splits if s not in data]
        if absent and len(data) != 1:
            raise FacLensError(
                f"{root}: no split {'/'.join(absent)} in this save_to_disk folder; it has {list(data)}: "
                "pass split= to load_benchmark with one of them"
            )
        parts = [(s, data[s]) for s in splits if s in data] or list(data.items())
    for split, table in parts:
        row = 0
        for batch in table.with_format("arrow").iter(batch_size=_BATCH):  # undecoded image structs
            for record in batch.to_pylist():
                where = f"{root}{f' [{split}]' if split else ''}: row {row}"
                yield record, Context(SAVE_TO_DISK, root, where)
                row += 1


# ---------------------------------------------------------------------------------------------
# VLMEvalKit TSV.
# ---------------------------------------------------------------------------------------------


def _tsv_records(path: Path) -> Records:
    import pandas as pd

    try:
        frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    except (ValueError, pd.errors.ParserError) as e:
        raise FacLensError(f"{path}: not a readable TSV ({e})") from e
    if "index" not in frame.columns or "question" not in frame.columns:
        raise FacLensError(
            f"{path}: a VLMEvalKit TSV has 'index' and 'question' columns; found {list(frame.columns)}"
        )
    records = frame.to_dict("records")
    images = {r["index"]: r.get("image") for r in records}
    for row, record in enumerate(records):
        image = record.get("image")
        if isinstance(image, str) and 0 < len(image) <= 64 and image in images:
            record["image"] = images[image]  # VLMEvalKit: a short cell names the row with the image
        yield record, Context(TSV, path.parent, f"{path}: row {row} (index {record['index']})")


# ---------------------------------------------------------------------------------------------
# Original releases (JSON / JSON Lines + image files).
# ---------------------------------------------------------------------------------------------


def _original_names(spec: BenchmarkSpec, splits: tuple[str, ...]) -> list[str]:
    names = []
    for entry in spec.original:
        if "{variant}" in entry.path:
            names.append(entry.path.replace("{variant}", "{" + "|".join(spec.variants) + "}"))
        else:
            names.extend(dict.fromkeys(entry.path.format(split=s) for s in splits))
    return names


def _original(spec: BenchmarkSpec, root: Path, splits: tuple[str, ...], variant: str | None) -> Found | None:
    for entry in spec.original:
        if "{variant}" in entry.path:  # one file per variant (POPE)
            wanted = [variant] if variant else list(spec.variants)
            files = [(v, root / entry.path.format(variant=v)) for v in wanted]
            present = [(v, f) for v, f in files if f.is_file()]
            if present:
                desc = ", ".join(str(f) for _, f in present)
                return Found(
                    ORIGINAL, f"original files {desc}", lambda p=present: _variant_records(spec, p, root)
                )
            continue
        for split in splits:
            file = root / entry.path.format(split=split)
            if file.is_file():
                return Found(
                    ORIGINAL,
                    f"original file {file}",
                    lambda f=file, k=entry.key, s=split: _original_records(spec, f, k, root, s),
                )
    return None


def _variant_records(spec: BenchmarkSpec, files: list[tuple[str, Path]], root: Path) -> Records:
    for variant, file in files:
        for record, ctx in _original_records(spec, file, None, root, variant):
            yield {**record, spec.variant_field: variant}, ctx


def _entry(spec: BenchmarkSpec, path: Path) -> OriginalFile | None:
    """The original file entry ``path`` is an instance of (for a file passed directly)."""
    for entry in spec.original:
        pattern = re.escape(Path(entry.path).name).replace(r"\{split\}", ".+").replace(r"\{variant\}", ".+")
        if (
            re.fullmatch(pattern, path.name)
            and path.parts[-len(Path(entry.path).parts) :][:-1] == Path(entry.path).parts[:-1]
        ):
            return entry
    return None


def _original_records(spec: BenchmarkSpec, path: Path, key: str | None, root: Path, split: str) -> Records:
    dirs = tuple(root / d.format(split=split) for d in spec.image_dirs)
    for where, record in _json_file_records(path, key):
        yield record, Context(ORIGINAL, root, f"{path}: {where}", dirs)


def _json_file_records(path: Path, key: str | None) -> Iterator[tuple[str, dict]]:
    """Records of a JSON file (a list, a dict keyed by id, or ``data[key]``) or a JSON Lines file
    (also under a .json name, as POPE's files are)."""
    if path.suffix == ".jsonl":
        yield from _jsonl_records(path)
        return
    try:
        with path.open(encoding="utf-8") as f:
            data: Any = json.load(f)
    except json.JSONDecodeError as e:
        if e.msg == "Extra data":  # one object per line
            yield from _jsonl_records(path)
            return
        raise FacLensError(f"{path}: line {e.lineno}: invalid JSON ({e.msg})") from e
    header: dict = {}
    if key is not None:
        if not isinstance(data, dict) or not isinstance(data.get(key), list):
            raise FacLensError(f"{path}: expected a JSON object with a {key!r} list of records")
        header = {k: v for k, v in data.items() if k != key}  # e.g. SEED-Bench's question_type names
        data = data[key]
    if isinstance(data, dict) and not all(isinstance(v, dict) for v in data.values()):
        items = [("line 1", data)]  # JSON Lines holding a single record
    elif isinstance(data, dict):
        items = [(f"record {k!r}", v) for k, v in data.items()]
    elif isinstance(data, list):
        items = [(f"record {i}", v) for i, v in enumerate(data)]
    else:
        raise FacLensError(
            f"{path}: expected a list of records or a dict of records, got {type(data).__name__}"
        )
    for where, record in items:
        if not isinstance(record, dict):
            raise FacLensError(f"{path}: {where}: expected a JSON object, got {type(record).__name__}")
        yield where, ({**record, HEADER: header} if header else record)


def _jsonl_records(path: Path) -> Iterator[tuple[str, dict]]:
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
            yield where, record
