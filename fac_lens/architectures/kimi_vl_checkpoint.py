"""Load a ``kimi_vl`` checkpoint as downloaded, without its remote code, onto transformers' classes.

A Kimi-VL folder (``moonshotai/Kimi-VL-A3B-Thinking``, ``-Instruct``, ``-2506``) holds
``config.json`` (``model_type`` ``"kimi_vl"``, ``architectures`` ``["KimiVLForConditionalGeneration"]``,
``auto_map`` to ``configuration_kimi_vl.py`` / ``modeling_kimi_vl.py``), safetensors shards (with
``model.safetensors.index.json``), a tiktoken tokenizer and an image processor, the last two also
remote code. fac_lens never imports those files: it reads ``config.json`` as JSON, converts it to
transformers' ``Kimi_K25Config`` (:func:`native_config`), builds
:class:`~.kimi_vl.KimiVLForConditionalGeneration` (transformers' Kimi-K2.5 classes: MoonViT tower,
projector, ``DeepseekV3Model`` decoder) and copies each tensor in by the table below. Names, shapes
and the config are checked first (from the safetensors headers, before any weight is read); any
difference is refused with a :class:`~fac_lens.errors.FacLensError` naming it.

Parameter names (checkpoint -> native; ``{i}`` a layer, ``{e}`` an expert; sources: the published
``modeling_kimi_vl.py`` as mirrored in vLLM and NeMo, transformers' own Kimi-K2.5 conversion map):

============================================================  ==================================================  ===========================
``vision_tower.patch_embed.proj.{weight,bias}``               ``model.vision_tower.patch_embed.proj.*``           copy
``vision_tower.patch_embed.pos_emb.weight`` [H, W, D]         ``model.vision_tower.patch_embed.pos_emb``          copy
                                                              ``.position_embeddings``
``vision_tower.encoder.blocks.{i}.norm0.*``                   ``model.vision_tower.layers.{i}.norm1.*``           copy
``vision_tower.encoder.blocks.{i}.norm1.*``                   ``model.vision_tower.layers.{i}.norm2.*``           copy
``vision_tower.encoder.blocks.{i}.wqkv.*`` [3D, D]            ``...layers.{i}.attn.{q,k,v}_proj.*``               rows split in 3 (q, k, v);
                                                                                                                  q, k rows de-interleaved
``vision_tower.encoder.blocks.{i}.wo.*``                      ``model.vision_tower.layers.{i}.attn.proj.*``       copy
``vision_tower.encoder.blocks.{i}.mlp.fc0.*`` / ``fc1.*``     ``model.vision_tower.layers.{i}.mlp.fc1.*`` / fc2   copy
``vision_tower.encoder.final_layernorm.*``                    ``model.vision_tower.final_layernorm.*``            copy
``multi_modal_projector.pre_norm.*``                          ``model.mm_projector.pre_norm.*``                   copy
``multi_modal_projector.linear_1.*`` / ``linear_2.*``         ``model.mm_projector.in_proj.*`` / ``out_proj.*``   copy
``language_model.model.layers.{i}.mlp.experts.{e}``           ``model.language_model.layers.{i}.mlp.experts``     row ``e``, first / second
``.gate_proj.weight`` / ``.up_proj.weight`` [I, H]            ``.gate_up_proj`` [E, 2I, H]                        half
``language_model.model.layers.{i}.mlp.experts.{e}``           ``model.language_model.layers.{i}.mlp.experts``     row ``e``
``.down_proj.weight`` [H, I]                                  ``.down_proj`` [E, H, I]
``language_model.model.{rest}`` (embeddings, MLA projections  ``model.language_model.{rest}``                     copy
and norms, dense MLP, router, shared experts, final norm)
``language_model.lm_head.weight``                             ``lm_head.weight``                                  copy
============================================================  ==================================================  ===========================

The one change of numbers: MoonViT applies its 2-D rotary embedding to adjacent pairs of a head's
query/key channels (complex multiplication), transformers' tower to channel ``j`` and ``j + d/2``
(``rotate_half``) with the same angles, so each head's q and k rows are reordered
``[0, 2, 4, ..., 1, 3, 5, ...]``; attention scores are unchanged (the same permutation on both).

Config fields (``config.json`` -> ``Kimi_K25Config``): ``media_placeholder_token_id`` ->
``image_token_id``; ``vision_config``: ``init_pos_emb_height`` / ``init_pos_emb_width`` ->
``pos_emb_height`` / ``pos_emb_width`` (they must be equal: transformers resamples a square grid),
``patch_size``, ``hidden_size``, ``intermediate_size``, ``num_attention_heads``,
``num_hidden_layers``, ``merge_kernel_size`` kept, MoonViT's fixed GELU-tanh and RoPE base 10000
stated; ``projection_hidden_size`` = the tower's ``hidden_size`` (the projector's LayerNorm width),
``projection_layer_norm_eps`` 1e-5; ``tie_word_embeddings`` from ``text_config`` (False for Kimi-VL);
``text_config`` passes to ``DeepseekV3Config`` after checking the fields transformers' decoder
fixes rather than reads (:data:`FIXED_TEXT_FIELDS`: ``scoring_func`` sigmoid, ``topk_method``
noaux_tc, ``moe_layer_freq`` 1, ``hidden_act`` silu); ``video_token_id`` and the vision start/end
ids keep Kimi-K2.5's defaults (no Kimi-VL input uses them).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import FacLensError

MODEL_TYPE = "kimi_vl"
FIXED_TEXT_FIELDS = {
    "scoring_func": "sigmoid",
    "topk_method": "noaux_tc",
    "moe_layer_freq": 1,
    "hidden_act": "silu",
}
"""``text_config`` fields transformers' DeepSeek-V3 decoder does not read: it implements only these values."""
_REMOTE_ONLY_TEXT_FIELDS = (
    "scoring_func",
    "topk_method",
    "moe_layer_freq",
    "ep_size",
    "seq_aux",
    "aux_loss_alpha",
)

_BLOCK = r"vision_tower\.encoder\.blocks\.(\d+)\."
_TOWER = "model.vision_tower."
_EXPERT = r"language_model\.model\.layers\.(\d+)\.mlp\.experts\.(\d+)\.(gate_proj|up_proj|down_proj)\.weight"
RENAMES: list[tuple[str, str]] = [
    (r"vision_tower\.patch_embed\.proj\.(weight|bias)", _TOWER + r"patch_embed.proj.\1"),
    (r"vision_tower\.patch_embed\.pos_emb\.weight", _TOWER + "patch_embed.pos_emb.position_embeddings"),
    (_BLOCK + r"norm0\.(weight|bias)", _TOWER + r"layers.\1.norm1.\2"),
    (_BLOCK + r"norm1\.(weight|bias)", _TOWER + r"layers.\1.norm2.\2"),
    (_BLOCK + r"wo\.(weight|bias)", _TOWER + r"layers.\1.attn.proj.\2"),
    (_BLOCK + r"mlp\.fc0\.(weight|bias)", _TOWER + r"layers.\1.mlp.fc1.\2"),
    (_BLOCK + r"mlp\.fc1\.(weight|bias)", _TOWER + r"layers.\1.mlp.fc2.\2"),
    (r"vision_tower\.encoder\.final_layernorm\.(weight|bias)", _TOWER + r"final_layernorm.\1"),
    (r"multi_modal_projector\.pre_norm\.(weight|bias)", r"model.mm_projector.pre_norm.\1"),
    (r"multi_modal_projector\.linear_1\.(weight|bias)", r"model.mm_projector.in_proj.\1"),
    (r"multi_modal_projector\.linear_2\.(weight|bias)", r"model.mm_projector.out_proj.\1"),
    (r"language_model\.lm_head\.weight", "lm_head.weight"),
]
"""Checkpoint name (regex, whole name) -> native name, for tensors copied as they are. The fused
``wqkv`` and the per-expert weights are the two rules of :func:`_pieces`; then ``language_model.model.``."""


@dataclass(frozen=True)
class Piece:
    """Where one checkpoint tensor (or a row range of it) goes.

    Attributes:
        target: the native parameter or buffer name.
        index: the part of the target it fills (``()``: all of it; ``(e,)``: expert ``e``;
            ``(e, slice)``: half of expert ``e``'s fused gate/up rows).
        rows: the checkpoint tensor's rows that go there (``wqkv``'s thirds), or None for all.
        rope_heads: > 0: reorder the rows of each of this many heads from interleaved pairs to halves.
    """

    target: str
    index: tuple = ()
    rows: slice | None = None
    rope_heads: int = 0


# ------------------------------------------------------------------------------------------ config
def read_config(folder: Path) -> dict:
    """``config.json`` as a dict (never through ``AutoConfig``, which would want the remote code)."""
    path = Path(folder) / "config.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise FacLensError(
            f"{path} is not a readable JSON config ({error}); copy the checkpoint again"
        ) from error


def is_kimi_vl(folder: Path) -> bool:
    """Whether a local folder holds a ``kimi_vl`` checkpoint."""
    path = Path(folder) / "config.json"
    if not path.is_file():
        return False
    try:
        return json.loads(path.read_text()).get("model_type") == MODEL_TYPE
    except (OSError, ValueError, AttributeError):
        return False


def native_config(raw: dict) -> Any:
    """``Kimi_K25Config`` equivalent to a Kimi-VL ``config.json`` (see the module docstring).

    Raises:
        FacLensError: a field transformers' classes do not implement, naming it and its value.
    """
    from transformers import Kimi_K25Config

    if raw.get("model_type") != MODEL_TYPE:
        raise FacLensError(
            f"not a Kimi-VL config: model_type is {raw.get('model_type')!r}, expected 'kimi_vl'"
        )
    vision, text = dict(raw.get("vision_config") or {}), dict(raw.get("text_config") or {})
    if not vision or not text:
        raise FacLensError(
            "the Kimi-VL config.json lacks vision_config or text_config; copy the checkpoint again"
        )
    problems = [
        f"text_config.{key} is {text[key]!r} (transformers' DeepSeek-V3 decoder implements {value!r})"
        for key, value in FIXED_TEXT_FIELDS.items()
        if key in text and text[key] != value
    ]
    if text.get("model_type", "deepseek_v3") not in ("deepseek_v3", "kimi_k2"):
        problems.append(f"text_config.model_type is {text['model_type']!r} (expected 'deepseek_v3')")
    height, width = vision.get("init_pos_emb_height", 64), vision.get("init_pos_emb_width", 64)
    if height != width:
        problems.append(
            f"vision_config.init_pos_emb_height {height} != init_pos_emb_width {width} (square grid only)"
        )
    heads, hidden = vision.get("num_attention_heads", 16), vision.get("hidden_size", 1152)
    if hidden % heads or (hidden // heads) % 4:
        problems.append(f"vision head size {hidden}/{heads} is not a multiple of 4 (2-D rotary embedding)")
    if problems:
        raise FacLensError(
            "this Kimi-VL checkpoint differs from what fac_lens maps onto transformers' classes: "
            + "; ".join(problems)
            + ". Load it with its own code yourself (trust_remote_code=True in transformers) and pass "
            "the model object to fl.load only for hook_z-based analyses, or convert it by hand"
        )
    for key in _REMOTE_ONLY_TEXT_FIELDS:
        text.pop(key, None)
    text["model_type"] = "deepseek_v3"
    tie = bool(text.get("tie_word_embeddings", raw.get("tie_word_embeddings", False)))
    config = Kimi_K25Config(
        text_config=text,
        vision_config=dict(
            patch_size=vision.get("patch_size", 14),
            pos_emb_height=height,
            pos_emb_width=width,
            num_attention_heads=heads,
            num_hidden_layers=vision.get("num_hidden_layers", 27),
            hidden_size=hidden,
            intermediate_size=vision.get("intermediate_size", 4304),
            merge_kernel_size=list(vision.get("merge_kernel_size", (2, 2))),
            hidden_act="gelu_pytorch_tanh",  # MoonViT's, fixed in its code
            rope_parameters={"rope_type": "axial", "rope_theta": 10000.0},  # MoonViT's Rope2DPosEmb base
        ),
        projection_hidden_size=hidden,
        projection_layer_norm_eps=1e-5,
        image_token_id=int(raw.get("media_placeholder_token_id", 163605)),
        tie_word_embeddings=tie,
        pad_token_id=raw.get("pad_token_id"),
    )
    config.architectures = [
        "KimiVLForConditionalGeneration"
    ]  # as save_pretrained writes it; fl.load knows it
    return config


# ----------------------------------------------------------------------------------------- mapping
def _pieces(name: str, config: Any) -> list[Piece] | None:
    """Where checkpoint tensor ``name`` goes, or None for a name the table does not know."""
    match = re.fullmatch(_BLOCK + r"wqkv\.(weight|bias)", name)
    if match:
        layer, kind = match.groups()
        width = config.vision_config.hidden_size
        heads = config.vision_config.num_attention_heads
        target = f"{_TOWER}layers.{layer}.attn.{{}}_proj.{kind}"
        return [
            Piece(
                target.format(part),
                rows=slice(i * width, (i + 1) * width),
                rope_heads=heads if part != "v" else 0,
            )
            for i, part in enumerate("qkv")
        ]
    match = re.fullmatch(_EXPERT, name)
    if match:
        layer, expert, kind = match.groups()
        base = f"model.language_model.layers.{layer}.mlp.experts."
        size = config.text_config.moe_intermediate_size
        if kind == "down_proj":
            return [Piece(base + "down_proj", (int(expert),))]
        half = slice(0, size) if kind == "gate_proj" else slice(size, 2 * size)
        return [Piece(base + "gate_up_proj", (int(expert), half))]
    for pattern, replacement in RENAMES:
        if re.fullmatch(pattern, name):
            return [Piece(re.sub(pattern, replacement, name))]
    if name.startswith("language_model.model."):
        return [Piece("model.language_model." + name.removeprefix("language_model.model."))]
    return None


def _deinterleave(rows: torch.Tensor, heads: int) -> torch.Tensor:
    """Per head, channels ``[0, 2, 4, ..., 1, 3, 5, ...]`` (pairs -> halves), along dim 0."""
    shape = rows.shape
    per_head = rows.reshape(heads, shape[0] // heads // 2, 2, *shape[1:])
    return per_head.transpose(1, 2).reshape(shape)


def plan(
    shapes: dict[str, tuple[int, ...]], config: Any, targets: dict[str, torch.Size]
) -> dict[str, list[Piece]]:
    """Checkpoint name -> pieces, checked against the native model's tensors before any weight is read.

    Args:
        shapes: the checkpoint's tensor names and shapes (safetensors headers).
        config: the native config (:func:`native_config`).
        targets: the native model's parameter and persistent-buffer names and shapes.

    Raises:
        FacLensError: names the table does not know, native tensors nothing fills (or fills twice),
            shapes that differ; each listed (the first few) with the fix.
    """
    unknown, mismatched, covered, result = [], [], {}, {}
    for name, shape in shapes.items():
        pieces = _pieces(name, config)
        if pieces is None or any(p.target not in targets for p in pieces):
            unknown.append(name)
            continue
        result[name] = pieces
        for piece in pieces:
            rows = shape[0] if piece.rows is None else len(range(*piece.rows.indices(shape[0])))
            got = (rows, *shape[1:])
            want = tuple(torch.empty(targets[piece.target], device="meta")[piece.index].shape)
            if got != want:
                mismatched.append(
                    f"{name} {tuple(shape)} -> {piece.target}{_index(piece.index)}: expected {want}"
                )
            covered.setdefault(piece.target, []).append(piece.index)
    missing = sorted(t for t in targets if not _complete(covered.get(t, []), targets[t], t, config))
    if unknown or mismatched or missing:
        parts = []
        if unknown:
            parts.append(
                f"{len(unknown)} tensor(s) with names the Kimi-VL table does not know: {_few(unknown)}"
            )
        if mismatched:
            parts.append(f"{len(mismatched)} shape(s) that differ from config.json: {_few(mismatched)}")
        if missing:
            parts.append(f"{len(missing)} native tensor(s) nothing in the checkpoint fills: {_few(missing)}")
        raise FacLensError(
            "this Kimi-VL checkpoint does not match the layout fac_lens maps (see "
            "fac_lens/architectures/kimi_vl_checkpoint.py): "
            + "; ".join(parts)
            + ". Check that every safetensors shard is present and config.json belongs to these weights"
        )
    return result


def _complete(indices: list[tuple], shape: torch.Size, target: str, config: Any) -> bool:
    """Whether the pieces cover the target exactly once (whole, or every expert's rows)."""
    if indices == [()]:
        return True
    if not indices or () in indices:
        return False
    experts = shape[0]
    if target.endswith("down_proj"):
        return sorted(i[0] for i in indices) == list(range(experts))
    halves = sorted((i[0], i[1].start) for i in indices)
    size = config.text_config.moe_intermediate_size
    return halves == [(e, start) for e in range(experts) for start in (0, size)]


def _index(index: tuple) -> str:
    return (
        ""
        if not index
        else "[" + ", ".join(f"{i.start}:{i.stop}" if isinstance(i, slice) else str(i) for i in index) + "]"
    )


def _few(items: list[str], n: int = 5) -> str:
    return ", ".join(items[:n]) + (f" (and {len(items) - n} more)" if len(items) > n else "")


# ------------------------------------------------------------------------------------------ tensors
class TensorSource:
    """Tensors by name: ``shapes`` (without reading data) and ``get(name)``."""

    shapes: dict[str, tuple[int, ...]]
    get: Callable[[str], torch.Tensor]
    first_dtype: torch.dtype | None = None


class DictSource(TensorSource):
    """Tensors already in memory (tests, the tiny builder)."""

    def __init__(self, tensors: dict[str, torch.Tensor]) -> None:
        self.shapes = {k: tuple(v.shape) for k, v in tensors.items()}
        self.get = tensors.__getitem__
        self.first_dtype = next((v.dtype for v in tensors.values() if v.is_floating_point()), None)


class SafetensorsSource(TensorSource):
    """The safetensors shards of a folder, read lazily (headers first, one tensor at a time)."""

    def __init__(self, folder: Path) -> None:
        from safetensors import safe_open

        files = sorted(Path(folder).glob("*.safetensors"))
        if not files:
            raise FacLensError(f"no *.safetensors weights in {folder}; copy or download the checkpoint again")
        index = Path(folder) / "model.safetensors.index.json"
        if index.is_file():
            named = set(json.loads(index.read_text()).get("weight_map", {}).values())
            absent = sorted(n for n in named if not (Path(folder) / n).is_file())
            if absent:
                raise FacLensError(
                    f"shards listed in {index} are missing: {_few(absent)}; download them again"
                )
        self._handles, self._where, self.shapes = [], {}, {}
        for path in files:
            try:
                handle = safe_open(str(path), framework="pt")
            except Exception as error:  # noqa: BLE001 - SafetensorError is not importable by name
                raise FacLensError(f"{path} could not be read ({error}); copy it again") from error
            self._handles.append(handle)
            for name in handle.keys():
                self._where[name] = handle
                self.shapes[name] = tuple(handle.get_slice(name).get_shape())
        self.get = lambda name: self._where[name].get_tensor(name)


# ------------------------------------------------------------------------------------------- build
@contextmanager
def _default_dtype(dtype: torch.dtype) -> Iterator[None]:
    saved = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(saved)


def _checkpoint_dtype(raw: dict, source: TensorSource) -> torch.dtype:
    name = raw.get("torch_dtype") or raw.get("dtype") or (raw.get("text_config") or {}).get("torch_dtype")
    if isinstance(name, str) and isinstance(getattr(torch, name, None), torch.dtype):
        return getattr(torch, name)
    return source.first_dtype or torch.float32


def build(raw: dict, source: TensorSource, device: Any = None, dtype: torch.dtype | None = None):
    """The native model holding a Kimi-VL checkpoint's weights.

    Args:
        raw: the checkpoint's ``config.json`` as a dict.
        source: its tensors (:class:`SafetensorsSource`, :class:`DictSource`).
        device: where to build it (default CPU).
        dtype: its floating dtype (default: the checkpoint's, ``torch_dtype`` in config.json).

    Returns:
        A :class:`~.kimi_vl.KimiVLForConditionalGeneration` in eval mode.
    """
    from transformers.initialization import no_init_weights

    from .kimi_vl import KimiVLForConditionalGeneration

    config = native_config(raw)
    dtype = dtype or _checkpoint_dtype(raw, source)
    for part in (config, config.text_config, config.vision_config):
        part.dtype = dtype  # sub-models are built in their config's dtype (config.json says bfloat16)
    with no_init_weights(), torch.device("meta"):
        skeleton = KimiVLForConditionalGeneration(config)
    targets = {name: t.shape for name, t in skeleton.state_dict().items()}
    if config.tie_word_embeddings:
        targets.pop("lm_head.weight", None)  # the embedding, filled once
    pieces = plan(source.shapes, config, targets)  # refuses before any weight is read
    del skeleton
    with no_init_weights(), _default_dtype(dtype), torch.device(device or "cpu"):
        model = KimiVLForConditionalGeneration(config)
    state = model.state_dict(keep_vars=True)
    with torch.no_grad():
        for name, name_pieces in pieces.items():
            tensor = source.get(name)
            for piece in name_pieces:
                part = tensor if piece.rows is None else tensor[piece.rows]
                if piece.rope_heads:
                    part = _deinterleave(part, piece.rope_heads)
                state[piece.target][piece.index].copy_(part)
    return model.eval()


def load(folder: Path, device: Any = None, dtype: torch.dtype | None = None):
    """:func:`build` from a checkpoint folder (``config.json`` + safetensors); no remote code runs."""
    folder = Path(folder)
    return build(read_config(folder), SafetensorsSource(folder), device, dtype)
