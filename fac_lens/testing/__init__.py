"""Tiny random-weight models of every supported architecture, built from configs in code.

Each has the structure of a real checkpoint (vision tower, projector, the real decoder's attention:
mRoPE, QK-norm, sliding windows, bidirectional image blocks, multi-head latent attention, mixture
of experts) at a size that runs in milliseconds on a CPU; nothing is downloaded. Used by the tests,
the benchmarks and to build fac-tiny. A low layer: it builds plain HF models and imports nothing
else from fac_lens.

    hf = BUILDERS["gemma3"](seed=0, dtype=torch.float32)   # or tiny_gemma3(...)
    inputs = tiny_inputs(hf, batch=2, padded=True)          # raw HF kwargs, rows of different sizes

:data:`MODELS` maps each HF ``model_type`` to its :class:`TinyModel` (builder and image maker);
adding an architecture is one builder and one image maker, registered there.
"""

from .checkpoint import save_tiny_checkpoint
from .gemma3 import tiny_gemma3
from .idefics import tiny_idefics3, tiny_smolvlm
from .ids import (
    BOI,
    EOI,
    LLAVA_IMAGE,
    QWEN_IMAGE,
    QWEN_VIDEO,
    QWEN_VISION_END,
    QWEN_VISION_START,
    VOCAB,
)
from .inputs import tiny_inputs
from .kimi import tiny_kimi_k25
from .kimi_vl import save_tiny_kimi_vl, tiny_kimi_vl
from .llava import tiny_llava, tiny_llava_next, tiny_llava_onevision
from .qwen import tiny_qwen2_5_vl, tiny_qwen2_vl, tiny_qwen3_vl
from .registry import BUILDERS, MODELS, TinyModel
from .tokenizers import tiny_tokenizer, word_level_tokenizer

__all__ = [
    "BOI",
    "BUILDERS",
    "EOI",
    "LLAVA_IMAGE",
    "MODELS",
    "QWEN_IMAGE",
    "QWEN_VIDEO",
    "QWEN_VISION_END",
    "QWEN_VISION_START",
    "VOCAB",
    "TinyModel",
    "save_tiny_checkpoint",
    "save_tiny_kimi_vl",
    "tiny_gemma3",
    "tiny_idefics3",
    "tiny_inputs",
    "tiny_kimi_k25",
    "tiny_kimi_vl",
    "tiny_llava",
    "tiny_llava_next",
    "tiny_llava_onevision",
    "tiny_qwen2_5_vl",
    "tiny_qwen2_vl",
    "tiny_qwen3_vl",
    "tiny_smolvlm",
    "tiny_tokenizer",
    "word_level_tokenizer",
]
