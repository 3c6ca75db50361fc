"""Where the embedded models and the synthetic test split live: the ``data/`` folder beside the
``fac_lens`` package (a source checkout, installed with ``pip install -e .``), whatever the working
directory. ``FAC_LENS_DATA`` points elsewhere (a copy of that folder)."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import FacLensError


def data_dir() -> Path:
    """The ``data/`` folder: ``$FAC_LENS_DATA`` or the one next to the ``fac_lens`` package."""
    override = os.environ.get("FAC_LENS_DATA")
    return Path(override) if override else Path(__file__).resolve().parents[2] / "data"


def fac_tiny() -> Path:
    return data_dir() / "models" / "fac-tiny"


def fac_smol() -> Path:
    return data_dir() / "models" / "fac-smol"


def synthetic_test() -> Path:
    """The committed synthetic test split (``test.jsonl`` and its images)."""
    return data_dir() / "synthetic" / "test" / "test.jsonl"


def existing(path: Path, what: str) -> Path:
    """``path`` if it exists, else an error that says where fac_lens looked and how to fix it."""
    if not path.exists():
        raise FacLensError(
            f"{what} is not at {path}. fac_lens finds its embedded models and data in the data/ "
            "folder of its source checkout: install fac_lens from a checkout (pip install -e .) "
            "or set FAC_LENS_DATA to a copy of that folder."
        )
    return path
