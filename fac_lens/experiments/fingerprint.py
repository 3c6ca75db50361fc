"""What a result came from: the content of the model's files and of the evaluated samples.

Runs are keyed by model and dataset name, so a model retrained in the same folder, or another copy
of a dataset whose sample ids coincide, would otherwise reuse stored results. Both hashes go into
every run id and stored array name:

* :func:`model_fingerprint`: sha256 of every file of a checkpoint folder, full bytes (each file's
  hash cached by path, size and mtime, :func:`file_sha256`); a hub id: its snapshot revision in the
  local HF cache.
* :func:`samples_digest`: sha256 of the samples' text fields, metadata and image pixels.
* :func:`code_digest`: sha256 of fac_lens's own source that computes results, so results of older
  code are not served after a change to it (the readable ``code_version`` is recorded beside).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from ..data.sample import Sample
from ..model_sources import folder_kind

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".onnx")
#: Files besides the weights that change what a checkpoint generates.
MODEL_FILES = (
    "config.json",
    "generation_config.json",
    "preprocessor_config.json",
    "processor_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
    "chat_template.jinja",
    "chat_template.json",
    "fac_smol.json",
)
CACHE_FILE = "file_sha256.json"
RACY_NS = 2_000_000_000  # a file changed this recently may change again within one mtime tick
_CHUNK = 1 << 22


def hash_cache_path() -> Path:
    """The JSON cache of file hashes: ``$FAC_LENS_CACHE``, else ``$XDG_CACHE_HOME/fac_lens``, else
    ``~/.cache/fac_lens``, then :data:`CACHE_FILE`."""
    root = os.environ.get("FAC_LENS_CACHE")
    if root:
        return Path(root).expanduser() / CACHE_FILE
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "fac_lens" / CACHE_FILE


def _read_cache(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_cache(path: Path, cache: dict) -> None:
    """Replace the cache file atomically; a cache that cannot be written is skipped (hashes are
    recomputed next time)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".file_sha256.")
        with os.fdopen(fd, "w") as f:
            json.dump(cache, f)
        os.replace(tmp, path)
    except OSError:
        return


def _full_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: str | Path) -> str:
    """sha256 hex of a file's full bytes, computed once per (path, size, mtime_ns) and kept in the
    cache file (:func:`hash_cache_path`), so a large checkpoint is not reread each time (a file
    changed in the last :data:`RACY_NS` is hashed, not cached)."""
    path = Path(path).resolve()
    stat = path.stat()
    key = f"{path}|{stat.st_size}|{stat.st_mtime_ns}"
    cache_file = hash_cache_path()
    cache = _read_cache(cache_file)
    if isinstance(cache.get(key), str):
        return cache[key]
    value = _full_sha256(path)
    if time.time_ns() - stat.st_mtime_ns < RACY_NS:  # not cached: a rewrite may keep size and mtime
        return value
    stale = [k for k in cache if k.rsplit("|", 2)[0] == str(path)]
    for k in stale:
        del cache[k]
    _write_cache(cache_file, {**cache, key: value})
    return value


def _model_files(folder: Path) -> list[Path]:
    """The files of a checkpoint folder that decide its outputs (:data:`WEIGHT_SUFFIXES`,
    :data:`MODEL_FILES`, remote code), sorted; notes, logs and study results beside them are not."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and (p.suffix in WEIGHT_SUFFIXES or p.suffix == ".py" or p.name in MODEL_FILES)
    )


def hub_cache_dir() -> Path:
    """The local HF hub cache, as huggingface_hub finds it (read at call time): ``$HF_HUB_CACHE``,
    else ``$HF_HOME/hub``, else ``$XDG_CACHE_HOME/huggingface/hub``, else ``~/.cache/huggingface/hub``."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "huggingface" / "hub"


def hub_revision(repo_id: str, cache_dir: str | Path | None = None) -> str | None:
    """The commit of the snapshot ``fl.load`` reads for a hub id from the local HF cache (its
    ``refs/main``, else its only snapshot folder); None when the cache holds no snapshot of it."""
    repo = Path(cache_dir).expanduser() if cache_dir else hub_cache_dir()
    repo = repo / ("models--" + repo_id.replace("/", "--"))
    ref = repo / "refs" / "main"
    if ref.is_file():
        revision = ref.read_text().strip()
        if revision:
            return revision
    snapshots = sorted(p.name for p in (repo / "snapshots").glob("*") if p.is_dir())
    return snapshots[0] if len(snapshots) == 1 else None


def model_fingerprint(source: str | Path, cache_dir: str | Path | None = None) -> str | None:
    """Which weights a result came from.

    A local folder: sha256 hex[:16] of its weights, config, tokenizer and processor files (name and
    full-content sha256, :func:`file_sha256`) and, for folders of a registered kind, of the files outside it that
    its weights come from (fac-smol: the manifest of its converted parts). A hub id: its snapshot
    revision in the local HF cache (``cache_dir`` or the default one). None when neither is found.
    """
    folder = Path(str(source))
    if not folder.is_dir():
        return hub_revision(str(source), cache_dir)
    files = _model_files(folder)
    if not files:
        return None
    kind = folder_kind(folder)
    named = [(p.name, p) for p in files]
    extra = kind.extra_files(folder) if kind is not None else []
    named += [(f"extra:{p.parent.name}/{p.name}", p) for p in extra]
    digest = hashlib.sha256()
    for name, path in named:
        digest.update(f"{name}\0{file_sha256(path)}\n".encode())
    return digest.hexdigest()[:16]


#: Parts of the package that only draw or present stored results (paths relative to ``fac_lens/``):
#: a change to them does not make earlier results stale.
PRESENTATION = (
    "plotting/",
    "explorer.py",
    "compare.py",
    "case_study.py",
    "experiments/figures.py",
    "experiments/tables.py",
)


def code_digest(package: str | Path | None = None) -> str:
    """sha256 hex[:16] of the fac_lens source that computes results: every ``.py`` file of the
    package (relative path and bytes, sorted) except :data:`PRESENTATION`. Part of every run id and
    stored array name; any edit to the method, the data readers or the harness gives new runs."""
    root = Path(package) if package is not None else Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root).as_posix()
        if relative.startswith(PRESENTATION):
            continue
        content = path.read_bytes()
        digest.update(f"{relative}\0{len(content)}\0".encode() + content)
    return digest.hexdigest()[:16]


def _sample_text(sample: Sample) -> bytes:
    fields = {
        "id": sample.id,
        "question": sample.question,
        "answer": sample.answer,
        "kind": sample.kind,
        "choices": list(sample.choices),
        "source": sample.source,
        "meta": sample.meta,
        "prompt_text": sample.prompt_text,
    }
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str).encode("utf-8")


def samples_digest(samples: Sequence[Sample]) -> str:
    """sha256 hex of the samples in order: each one's text fields and metadata (canonical JSON)
    and its image (mode, size and pixel bytes; ``none`` without one)."""
    digest = hashlib.sha256()
    for sample in samples:
        text = _sample_text(sample)
        digest.update(len(text).to_bytes(8, "little") + text)
        image = sample.image
        if image is None:
            digest.update(b"none")
            continue
        if not hasattr(image, "tobytes"):  # not a PIL image (a stand-in)
            digest.update(b"other:" + repr(image).encode())
            continue
        pixels = image.tobytes()
        digest.update(f"{image.mode}:{image.size[0]}x{image.size[1]}:{len(pixels)}:".encode())
        digest.update(pixels)
    return digest.hexdigest()
