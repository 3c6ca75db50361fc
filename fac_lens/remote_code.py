"""A checkpoint's own Python (``auto_map``): refused unless the user asks for it, stated when run.

transformers imports the classes a checkpoint names in ``auto_map`` (or asks ``[y/N]`` on stdin
when ``trust_remote_code`` is left unset). fac_lens always passes the flag explicitly, and checks
the folder first so that the refusal says which file wants which class to run.
"""

from __future__ import annotations

import json
import warnings
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
    """``"file: AutoClass -> module.Class"`` for every class the folder's ``auto_map`` entries name."""
    found = []
    for name in CODE_FILES:
        auto_map = _read_json(folder / name).get("auto_map") or {}
        for auto_class, targets in auto_map.items():
            for target in targets if isinstance(targets, list) else [targets]:
                if target:
                    found.append(f"{name}: {auto_class} -> {target}")
    return found


def check_remote_code(folder: Path, trust_remote_code: bool) -> None:
    """Refuse a folder that wants its own code run unless trusted; warn which code runs if it is.

    Raises:
        FacLensError: code named in ``auto_map`` without ``trust_remote_code=True``, or a
            ``model_type`` transformers does not know and no code for it.
    """
    code = checkpoint_code(folder)
    if code and not trust_remote_code:
        raise FacLensError(
            f"the checkpoint in {folder} asks to run its own Python ({'; '.join(code)}); fac_lens "
            "runs no checkpoint code unless told: read those files, then pass "
            "fl.load(..., trust_remote_code=True) to run them, or delete the auto_map entries to "
            "use transformers' own classes"
        )
    if code:
        warnings.warn(
            f"trust_remote_code=True: transformers imports and runs Python from {folder}: " + "; ".join(code),
            stacklevel=5,  # the caller of fl.load
        )
    _check_model_type(folder, has_code=bool(code))


def _check_model_type(folder: Path, has_code: bool) -> None:
    import transformers
    from transformers import CONFIG_MAPPING

    model_type = _read_json(folder / "config.json").get("model_type")
    if model_type is None or model_type in CONFIG_MAPPING or has_code:
        return
    raise FacLensError(
        f"transformers {transformers.__version__} does not know model_type {model_type!r} "
        f"({folder / 'config.json'}) and the checkpoint names no code for it: upgrade transformers, "
        "or convert the checkpoint to a supported architecture"
    )


def _read_json(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise FacLensError(f"{path} is not valid JSON ({error}); fix or restore the file") from error
    return data if isinstance(data, dict) else {}
