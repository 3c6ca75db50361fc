"""A checkpoint's own Python (``auto_map``): never run unless the user asks, stated when it is.

transformers imports the classes a checkpoint names in ``auto_map`` when ``trust_remote_code`` is
True, and asks ``[y/N]`` on stdin when it is left unset and no class of its own fits. fac_lens
always passes the flag explicitly; with False transformers uses its own classes where it has them
and raises otherwise, which :func:`refusal` turns into an error naming the file and the class.
Some nested loads in transformers 5 drop the flag (``AutoProcessor`` loading its image processor
through ``PROCESSOR_MAPPING``), so :func:`no_prompts` also turns the prompt itself into that error.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import FacLensError

CODE_FILES = (
    "config.json",
    "tokenizer_config.json",
    "processor_config.json",
    "preprocessor_config.json",
    "video_preprocessor_config.json",
)


def checkpoint_code(folder: Path) -> list[str]:
    """``"file: AutoClass -> module.Class"`` for each class the folder's ``auto_map`` names that
    fl.load could import (not ``AutoModel*``: the model is always built from transformers' class)."""
    found = []
    for name in CODE_FILES:
        auto_map = _read_json(folder / name).get("auto_map") or {}
        for auto_class, targets in auto_map.items():
            if auto_class.startswith("AutoModel"):
                continue
            for target in targets if isinstance(targets, list) else [targets]:
                if target:
                    found.append(f"{name}: {auto_class} -> {target}")
    return found


def check_remote_code(folder: Path, trust_remote_code: bool) -> None:
    """Before loading: state which code runs when trusted; refuse a config that cannot load without.

    Raises:
        FacLensError: a ``model_type`` transformers does not know, with code for it but no
            ``trust_remote_code=True``, or with no code for it.
    """
    code = checkpoint_code(folder)
    if code and trust_remote_code:
        warnings.warn(
            f"trust_remote_code=True: transformers imports and runs Python from {folder}: " + "; ".join(code),
            stacklevel=5,  # the caller of fl.load
        )
    import transformers
    from transformers import CONFIG_MAPPING

    model_type = _read_json(folder / "config.json").get("model_type")
    if model_type is None or model_type in CONFIG_MAPPING:
        return
    if any(entry.startswith("config.json: AutoConfig") for entry in code):
        if not trust_remote_code:
            raise refusal(folder)
        return
    raise FacLensError(
        f"transformers {transformers.__version__} does not know model_type {model_type!r} "
        f"({folder / 'config.json'}) and the checkpoint names no code for it: upgrade transformers, "
        "or convert the checkpoint to a supported architecture"
    )


@contextmanager
def no_prompts() -> Iterator[None]:
    """transformers raises instead of asking ``[y/N]`` on stdin (its own switch for CI: a timeout of 0)."""
    from transformers import dynamic_module_utils

    saved = dynamic_module_utils.TIME_OUT_REMOTE_CODE
    dynamic_module_utils.TIME_OUT_REMOTE_CODE = 0
    try:
        yield
    finally:
        dynamic_module_utils.TIME_OUT_REMOTE_CODE = saved


def needs_code(error: BaseException) -> bool:
    """Whether transformers refused to load something because it needs the checkpoint's code."""
    return isinstance(error, ValueError) and "`trust_remote_code=True`" in str(error)


def refusal(folder: Path, alternative: str = "") -> FacLensError:
    """The error for a checkpoint that cannot load without running its own code."""
    code = "; ".join(checkpoint_code(folder)) or "see its auto_map entries"
    return FacLensError(
        f"the checkpoint in {folder} needs its own Python to load ({code}); fac_lens runs no "
        "checkpoint code unless told: read those files, then pass fl.load(..., "
        f"trust_remote_code=True) to run them{alternative}"
    )


def _read_json(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise FacLensError(f"{path} is not valid JSON ({error}); fix or restore the file") from error
    return data if isinstance(data, dict) else {}
