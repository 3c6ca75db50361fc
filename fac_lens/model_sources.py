"""Where ``fl.load`` finds what is not a plain checkpoint: named models and special folders.

The core knows no particular model. Higher layers plug theirs in here: the embedded-model wing
(``fac_lens.embedded``) registers ``"fac-tiny"`` and ``"fac-smol"`` by name, and fac-smol's folder
kind (a trained projector plus parts converted into the user cache, marked by ``fac_smol.json``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn


@dataclass(frozen=True)
class FolderKind:
    """A checkpoint folder that is not a plain ``from_pretrained`` folder.

    Attributes:
        marker: the file whose presence marks a folder of this kind.
        load: ``load(folder) -> (hf_model, processor)``.
        extra_files: ``extra_files(folder) -> [Path]``: files outside the folder that also define
            its weights (result fingerprints hash them too).
    """

    marker: str
    load: Callable[[Path], tuple[nn.Module, Any]]
    extra_files: Callable[[Path], list[Path]]


NAMED_MODELS: dict[str, Callable[[], Path]] = {}
FOLDER_KINDS: dict[str, FolderKind] = {}


def register_named_model(name: str, folder: Callable[[], Path]) -> None:
    """``fl.load(name)`` loads ``folder()`` (called at load time, so it may check the files)."""
    NAMED_MODELS[name] = folder


def register_folder_kind(kind: FolderKind) -> None:
    FOLDER_KINDS[kind.marker] = kind


def resolve(source: str) -> str:
    """A registered model name becomes its folder; anything else is returned unchanged."""
    folder = NAMED_MODELS.get(source)
    return str(folder()) if folder is not None else source


def folder_kind(source: str | Path) -> FolderKind | None:
    """The registered kind of a local folder, or None (plain checkpoint, hub id)."""
    folder = Path(str(source))
    if not folder.is_dir():
        return None
    return next((kind for marker, kind in FOLDER_KINDS.items() if (folder / marker).is_file()), None)
