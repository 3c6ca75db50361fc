"""Kimi-VL at test size, in the layout of a real download (``model_type`` ``"kimi_vl"``).

:func:`kimi_vl_config` is a ``config.json`` with Kimi-VL-A3B's field names (MoonViT
``vision_config``, DeepSeek-V3 ``text_config`` with ``q_lora_rank`` null, sigmoid ``noaux_tc``
routing, one expert group), tiny sizes. :func:`kimi_vl_tensors` writes a native model's weights
under the checkpoint's names (fused MoonViT ``wqkv`` with interleaved rotary channels, one tensor per
expert), written here independently of the loader's table. :func:`save_tiny_kimi_vl` lays out a
folder as downloaded, remote-code files included (they raise if imported).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from ..architectures.kimi_vl_checkpoint import DictSource, build, native_config
from .configs import build as seeded
from .ids import BOI, BOS, EOI, EOS, LLAVA_IMAGE, PAD, VOCAB

REMOTE_FILES = (
    "configuration_kimi_vl.py",
    "modeling_kimi_vl.py",
    "image_processing_kimi_vl.py",
    "processing_kimi_vl.py",
)
"""Stand-ins for the checkpoint's code: importing any of them raises (and leaves a marker file)."""


def kimi_vl_config(n_layers: int = 3, n_heads: int = 4, d_head: int = 12) -> dict:
    """A Kimi-VL ``config.json`` (real field names, tiny sizes; value heads of ``d_head``)."""
    hidden = n_heads * 16
    return {
        "architectures": ["KimiVLForConditionalGeneration"],
        "auto_map": {
            "AutoConfig": "configuration_kimi_vl.KimiVLConfig",
            "AutoModel": "modeling_kimi_vl.KimiVLForConditionalGeneration",
            "AutoModelForCausalLM": "modeling_kimi_vl.KimiVLForConditionalGeneration",
        },
        "model_type": "kimi_vl",
        "ignore_index": -100,
        "media_placeholder_token_id": LLAVA_IMAGE,
        "pad_token_id": PAD,
        "torch_dtype": "float32",
        "transformers_version": "4.50.3",
        "vision_config": {
            "model_type": "moonvit",
            "patch_size": 14,
            "init_pos_emb_height": 8,
            "init_pos_emb_width": 8,
            "num_attention_heads": 2,
            "num_hidden_layers": 2,
            "hidden_size": 32,
            "intermediate_size": 64,
            "merge_kernel_size": [2, 2],
            "torch_dtype": "float32",
        },
        "text_config": {
            "model_type": "deepseek_v3",
            "vocab_size": VOCAB,
            "hidden_size": hidden,
            "intermediate_size": 2 * hidden,
            "moe_intermediate_size": 32,
            "num_hidden_layers": n_layers,
            "num_attention_heads": n_heads,
            "num_key_value_heads": n_heads,
            "n_shared_experts": 1,
            "n_routed_experts": 4,
            "ep_size": 1,
            "routed_scaling_factor": 2.446,
            "kv_lora_rank": 32,
            "q_lora_rank": None,
            "qk_rope_head_dim": 8,
            "qk_nope_head_dim": 16,
            "v_head_dim": d_head,
            "topk_method": "noaux_tc",
            "n_group": 1,
            "topk_group": 1,
            "num_experts_per_tok": 2,
            "moe_layer_freq": 1,
            "first_k_dense_replace": 1,
            "norm_topk_prob": True,
            "scoring_func": "sigmoid",
            "aux_loss_alpha": 0.001,
            "seq_aux": True,
            "hidden_act": "silu",
            "max_position_embeddings": 32768,
            "initializer_range": 0.15,
            "rms_norm_eps": 1e-05,
            "rope_theta": 800000.0,
            "rope_scaling": None,
            "attention_bias": False,
            "attention_dropout": 0.0,
            "bos_token_id": BOS,
            "eos_token_id": EOS,
            "pad_token_id": PAD,
            "tie_word_embeddings": False,
            "use_cache": True,
            "torch_dtype": "float32",
        },
    }


def native_kimi_vl(seed: int = 0, dtype: torch.dtype = torch.float32, **sizes):
    """A random native model shaped by :func:`kimi_vl_config` (the loader's target classes)."""
    from ..architectures.kimi_vl import KimiVLForConditionalGeneration

    return seeded(KimiVLForConditionalGeneration, native_config(kimi_vl_config(**sizes)), seed, dtype)


def _interleave(rows: torch.Tensor, heads: int) -> torch.Tensor:
    """Per head, halves back to adjacent pairs: channel ``j`` -> ``2j``, ``j + d/2`` -> ``2j + 1``."""
    shape = rows.shape
    halves = rows.reshape(heads, 2, shape[0] // heads // 2, *shape[1:])
    return torch.stack([halves[:, 0], halves[:, 1]], dim=2).reshape(shape)


def kimi_vl_tensors(hf) -> dict[str, torch.Tensor]:
    """``hf``'s weights under a Kimi-VL checkpoint's names (see ``modeling_kimi_vl.py``)."""
    out = {}
    heads = hf.config.vision_config.num_attention_heads
    for name, tensor in hf.state_dict().items():
        tensor = tensor.detach().clone()
        if name.startswith("model.vision_tower."):
            out.update(_tower(name.removeprefix("model.vision_tower."), tensor))
        elif name.startswith("model.mm_projector."):
            rest = name.removeprefix("model.mm_projector.")
            rest = rest.replace("in_proj.", "linear_1.").replace("out_proj.", "linear_2.")
            out["multi_modal_projector." + rest] = tensor
        elif name.endswith("mlp.experts.gate_up_proj"):
            prefix = "language_model.model." + name.removeprefix("model.language_model.").removesuffix(
                "gate_up_proj"
            )
            gate, up = tensor.chunk(2, dim=1)
            for e in range(tensor.shape[0]):
                out[f"{prefix}{e}.gate_proj.weight"] = gate[e].clone()
                out[f"{prefix}{e}.up_proj.weight"] = up[e].clone()
        elif name.endswith("mlp.experts.down_proj"):
            prefix = "language_model.model." + name.removeprefix("model.language_model.").removesuffix(
                "down_proj"
            )
            for e in range(tensor.shape[0]):
                out[f"{prefix}{e}.down_proj.weight"] = tensor[e].clone()
        elif name.startswith("model.language_model."):
            out["language_model.model." + name.removeprefix("model.language_model.")] = tensor
        elif name == "lm_head.weight":
            out["language_model.lm_head.weight"] = tensor
        else:
            raise ValueError(f"no Kimi-VL name for {name}")
    # q, k, v back into one fused projection per block
    for key in [k for k in out if ".attn.q_proj." in k]:
        block, kind = key.split(".attn.q_proj.")
        q, k, v = (out.pop(f"{block}.attn.{p}_proj.{kind}") for p in "qkv")
        out[f"{block}.wqkv.{kind}"] = torch.cat([_interleave(q, heads), _interleave(k, heads), v])
    return out


def _tower(rest: str, tensor: torch.Tensor) -> dict[str, torch.Tensor]:
    if rest.startswith("patch_embed."):
        rest = rest.replace("pos_emb.position_embeddings", "pos_emb.weight")
        return {"vision_tower." + rest: tensor}
    if rest.startswith("final_layernorm."):
        return {"vision_tower.encoder." + rest: tensor}
    _, layer, rest = rest.split(".", 2)  # layers.{i}.rest
    for native, original in (("norm1.", "norm0."), ("norm2.", "norm1."), ("mlp.fc1.", "mlp.fc0."),
                             ("mlp.fc2.", "mlp.fc1."), ("attn.proj.", "wo.")):  # fmt: skip
        if rest.startswith(native):
            rest = original + rest.removeprefix(native)
            break
    return {f"vision_tower.encoder.blocks.{layer}.{rest}": tensor}


def tiny_kimi_vl(seed: int = 0, dtype: torch.dtype = torch.float32, **sizes):
    """A random Kimi-VL as fac_lens loads it: written in the checkpoint's layout, then converted
    by :func:`fac_lens.architectures.kimi_vl_checkpoint.build` (no files involved)."""
    raw = kimi_vl_config(**sizes)
    tensors = kimi_vl_tensors(native_kimi_vl(seed, torch.float32, **sizes))
    return build(raw, DictSource(tensors), dtype=torch.float32).to(dtype)  # all of it, as the other builders


def kimi_vl_image(hf, row: int, padded: bool, generator: torch.Generator):
    """A 4 x 4 (or 4 x (4 + 2 row)) patch grid between two text tokens: ``pixel_values``
    [n_patches, 3, 14, 14] as Kimi-VL's processor writes them, ``image_grid_thw`` [1, 3] (its
    ``image_grid_hws`` [1, 2] with one frame; the model takes either)."""
    vision = hf.config.vision_config
    grid = (1, 4, 4 + 2 * row) if padded else (1, 4, 4)
    n_patches = math.prod(grid)
    pixels = torch.randn(n_patches, 3, vision.patch_size, vision.patch_size, generator=generator)
    tokens = [BOI, *[hf.config.image_token_id] * (n_patches // math.prod(vision.merge_kernel_size)), EOI]
    return tokens, {"pixel_values": pixels, "image_grid_thw": torch.tensor([grid])}


def save_tiny_kimi_vl(path, hf=None, seed: int = 0, shards: int = 2, **sizes) -> dict[str, torch.Tensor]:
    """Write a Kimi-VL folder as downloaded: config.json, sharded safetensors with an index,
    preprocessor and tokenizer configs naming their remote classes, and the remote ``*.py`` files.

    Args:
        hf: the native model whose weights to write (default :func:`native_kimi_vl` of ``seed``).

    Returns:
        The tensors written, by checkpoint name.
    """
    from safetensors.torch import save_file

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    hf = hf if hf is not None else native_kimi_vl(seed, **sizes)
    tensors = {k: v.contiguous() for k, v in kimi_vl_tensors(hf).items()}
    names = sorted(tensors)
    weight_map = {}
    for i in range(shards):
        file = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        part = {n: tensors[n] for n in names[i::shards]}
        save_file(part, str(path / file), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(part, file))
    index = {"metadata": {"total_size": sum(t.numel() * t.element_size() for t in tensors.values())}}
    _json(path / "model.safetensors.index.json", {**index, "weight_map": weight_map})
    _json(path / "config.json", kimi_vl_config(**sizes))
    _json(path / "preprocessor_config.json", {
        "auto_map": {"AutoImageProcessor": "image_processing_kimi_vl.KimiVLImageProcessor",
                     "AutoProcessor": "processing_kimi_vl.KimiVLProcessor"},
        "image_processor_type": "KimiVLImageProcessor", "processor_class": "KimiVLProcessor",
        "in_token_limit": 16384, "patch_size": 14, "merge_kernel_size": [2, 2], "pad_input": True,
        "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5],
    })  # fmt: skip
    _json(path / "tokenizer_config.json", {
        "auto_map": {"AutoTokenizer": ["tokenization_moonshot.TikTokenTokenizer", None],
                     "AutoProcessor": "processing_kimi_vl.KimiVLProcessor"},
        "tokenizer_class": "TikTokenTokenizer", "processor_class": "KimiVLProcessor",
        "model_max_length": 1048576,
    })  # fmt: skip
    for name in (*REMOTE_FILES, "tokenization_moonshot.py"):
        marker = path / f"{name}.was_imported"
        (path / name).write_text(
            f"from pathlib import Path\nPath({str(marker)!r}).write_text('imported')\n"
            f"raise RuntimeError('remote code {name} was executed')\n"
        )
    return tensors


def _json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")
