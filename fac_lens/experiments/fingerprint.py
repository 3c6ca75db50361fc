"""Which weights a result came from: a short fingerprint of a local checkpoint folder.

Runs are keyed by model name, so a model retrained in the same folder would otherwise reuse the
old model's stored results. The fingerprint goes into every run id and stored array name.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from ..model_sources import folder_kind

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")
CONFIG_FILES = ("config.json", "fac_smol.json")
EDGE_BYTES = 1 << 20  # bytes hashed at each end of a weights file (fast on a 15 GB checkpoint)


def _update_with_file(digest, path: Path) -> None:
    size = path.stat().st_size
    digest.update(f"{path.name}:{size}:".encode())
    with open(path, "rb") as f:
        digest.update(f.read(EDGE_BYTES))
        if size > 2 * EDGE_BYTES:
            f.seek(size - EDGE_BYTES)
            digest.update(f.read(EDGE_BYTES))


def model_fingerprint(source: str | Path) -> str | None:
    """sha256 hex[:12] of a checkpoint folder's config and weights files (their names, sizes and
    first and last MiB); None for anything that is not a local folder (a hub id). Folders of a
    registered kind also cover the files outside them that their weights come from (fac-smol: the
    manifest of its converted parts)."""
    folder = Path(str(source))
    if not folder.is_dir():
        return None
    digest = hashlib.sha256()
    files = sorted(
        p for p in folder.iterdir() if p.is_file() and (p.suffix in WEIGHT_SUFFIXES or p.name in CONFIG_FILES)
    )
    for path in files:
        _update_with_file(digest, path)
    kind = folder_kind(folder)
    for path in kind.extra_files(folder) if kind is not None else []:
        _update_with_file(digest, path)
    return digest.hexdigest()[:12] if files else None
