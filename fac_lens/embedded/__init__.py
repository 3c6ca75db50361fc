"""The embedded models: fac-tiny (the default, trained here on the synthetic benchmark) and
fac-smol (SmolLM2 + DINOv2 joined by a trained projector), with their training, model cards, the
demo and the fac-smol study.

Importing this package registers ``"fac-tiny"`` and ``"fac-smol"`` with ``fl.load`` and fac-smol's
folder kind (:mod:`fac_lens.model_sources`), and the synthetic test split as the default data of
the ``"synthetic"`` dataset (:mod:`fac_lens.data.datasets`); nothing else runs at import.
"""

from __future__ import annotations

from pathlib import Path

from ..data.datasets import register_default_root
from ..model_sources import FolderKind, register_folder_kind, register_named_model
from . import paths

SMOL_MARKER = "fac_smol.json"  # == smol.assemble.MARKER (not imported: it pulls in transformers)


def _load_fac_smol(folder: Path):
    from .smol.assemble import load_fac_smol

    return load_fac_smol(folder)


def _fac_smol_parts(folder: Path) -> list[Path]:
    """fac-smol's weights are also its converted parts in the user cache: their manifest and every
    file of the parts (weights, configs, tokenizer), in a fixed order."""
    from .smol.build import default_cache

    cache = default_cache()
    manifest = cache / "manifest.json"
    if not manifest.is_file():
        return []
    parts = sorted(p for p in cache.rglob("*") if p.is_file() and p.parent != cache)
    return [manifest, *parts]


register_named_model("fac-tiny", lambda: paths.existing(paths.fac_tiny(), "fac-tiny"))
register_named_model("fac-smol", lambda: paths.existing(paths.fac_smol(), "fac-smol"))
register_folder_kind(FolderKind(SMOL_MARKER, _load_fac_smol, _fac_smol_parts))
register_default_root("synthetic", lambda: paths.existing(paths.synthetic_test(), "the synthetic test split"))
