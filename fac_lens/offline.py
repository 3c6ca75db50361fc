"""The HF hub in offline mode for the duration of a fac_lens call, whatever the environment says.

huggingface_hub reads ``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE`` once, at import, into
``huggingface_hub.constants.HF_HUB_OFFLINE``; ``is_offline_mode()``, which every hub request and
transformers consult, returns that flag. :func:`hub_offline` sets it (and the variables, for code
that reads them later) and restores all of them afterwards, also when the call raises. Image URLs,
which transformers fetches without asking the hub, are refused (:func:`refuse_urls`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import FacLensError

OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


@contextmanager
def hub_offline() -> Iterator[None]:
    """No hub requests inside the block; the environment and huggingface_hub as they were after it.

    Also a decorator (``@hub_offline()``).
    """
    from huggingface_hub import constants

    saved_variables = {name: os.environ.get(name) for name in OFFLINE_VARIABLES}
    saved_flag = constants.HF_HUB_OFFLINE
    os.environ.update(dict.fromkeys(OFFLINE_VARIABLES, "1"))
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = saved_flag
        for name, value in saved_variables.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def local_folder(source: str, cache_dir: str | None = None) -> Path:
    """The folder holding ``source``'s files: ``source`` itself, or a hub id's local snapshot.

    Raises:
        FacLensError: neither a folder nor a hub id in the local HF cache (says how to get it).
    """
    if Path(source).is_dir():
        return Path(source)
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    try:
        with hub_offline():
            return Path(snapshot_download(source, cache_dir=cache_dir, local_files_only=True))
    except HFValidationError as error:
        raise FacLensError(
            f"no checkpoint folder at {source!r}, and it is not a hub id (namespace/name): pass an "
            "existing checkpoint directory, a hub id already in the local HF cache, or an embedded "
            "model's name (fac-tiny, fac-smol)"
        ) from error
    except LocalEntryNotFoundError as error:
        looked = cache_dir or constants.HF_HUB_CACHE
        raise FacLensError(
            f"{source!r} is not a folder and not in the local HF cache (looked in {looked}); "
            "fac_lens never downloads: download it yourself, e.g. `hf download "
            f"{source}` or huggingface_hub.snapshot_download({source!r}) (with cache_dir= if you pass "
            "one to fl.load), then fl.load the id again or the folder it prints"
        ) from error


def refuse_urls(images: Any) -> None:
    """Image URLs are refused: transformers would fetch them (offline mode does not stop that).

    Raises:
        FacLensError: an ``http(s)://`` string among ``images``.
    """
    for image in images if isinstance(images, (list, tuple)) else [images]:
        if isinstance(image, str) and image.lower().startswith(("http://", "https://")):
            raise FacLensError(
                f"image {image!r} is a URL and fac_lens never downloads: fetch it yourself and pass "
                "a PIL image (PIL.Image.open) or a local file path"
            )
