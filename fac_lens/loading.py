"""``fl.load``: wrap a multimodal HF model in a transformer-lens bridge, offline."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ._tl_guard import adapter_registered, no_runtime_installs
from .architectures import kimi_vl_checkpoint, model_class, spec_for
from .attention_probe import ATTENTION_NAME, ensure_registered
from .dispatch import Placement, check_device_map, place_module
from .errors import FacLensError
from .lens_model import LensModel, dispatch_map
from .model_sources import folder_kind, resolve
from .offline import hub_offline, local_folder
from .remote_code import check_remote_code, needs_code, no_prompts, refusal
from .validation import check_device, check_dtype


def load(
    source: str | os.PathLike | nn.Module,
    device: str | torch.device | None = "cpu",
    dtype: torch.dtype | str | None = None,
    processor: Any = None,
    cache_dir: str | None = None,
    trust_remote_code: bool = False,
    device_map: str | dict[str, Any] | None = None,
    offload_folder: str | os.PathLike | None = None,
) -> LensModel:
    """Wrap a multimodal model in a ``TransformerBridge``.

    Never installs packages, never touches the network (the hub is in offline mode for the call,
    whatever the environment says: a hub id works only when its files are in the local HF cache)
    and runs no code from the checkpoint unless ``trust_remote_code=True``.

    Args:
        source: a local checkpoint directory, a hub id already in the local cache, an embedded
            model's name (``"fac-tiny"``, ``"fac-smol"``: :mod:`fac_lens.model_sources`), or a
            ``PreTrainedModel`` (wrapped in place; no tokenizer or processor needed). A Kimi-VL
            download (``model_type`` ``"kimi_vl"``, e.g. Kimi-VL-A3B-Thinking) loads onto
            transformers' Kimi-K2.5 classes by renaming its weights, without its remote code
            (:mod:`fac_lens.architectures.kimi_vl_checkpoint`); its processor is remote code, so
            it comes only with ``trust_remote_code=True`` (else pass ``processor=`` or raw inputs).
        device: where the model runs; None leaves a given model where it is.
        dtype: e.g. ``torch.bfloat16`` or ``"bfloat16"``; None keeps the checkpoint's dtype.
        processor: a processor to use instead of loading one from ``source``.
        cache_dir: the HF cache to look in for hub ids (default: the standard HF cache).
        trust_remote_code: run the Python files the checkpoint names in ``auto_map`` (its config,
            tokenizer or processor classes; a warning lists them). With False (the default)
            transformers' own classes are used where it has them, and a checkpoint that cannot
            load without its code is refused with an error naming the file and the class; there
            is never a ``[y/N]`` prompt. The model itself is always transformers' own class.
        device_map: spread the model over devices with accelerate instead of moving it to
            ``device`` (which is then ignored): ``"auto"`` (fill the GPUs, then CPU, then disk) or a
            dict ``{module name: device index | "cpu" | "disk"}``. A given model that accelerate
            already dispatched (it has ``hf_device_map``) keeps its placement without it.
        offload_folder: where weights offloaded to ``"disk"`` are written (needed for disk).

    Returns:
        A :class:`LensModel`. Its text attention runs SDPA by default; fac_lens switches to other
        attention functions only inside its own calls.

    Raises:
        FacLensError: unsupported architecture (lists the supported ones), missing files, a hub id
            not in the local cache, checkpoint code without ``trust_remote_code=True``.
    """
    if not isinstance(trust_remote_code, bool):
        raise FacLensError(f"trust_remote_code must be True or False, got {trust_remote_code!r}")
    dtype, device = check_dtype(dtype), check_device(device)
    placement = Placement(device, check_device_map(device_map, offload_folder), offload_folder)
    with hub_offline(), no_prompts():
        return _load(source, placement, dtype, processor, cache_dir, trust_remote_code)


def _load(
    source: Any,
    placement: Placement,
    dtype: Any,
    processor: Any,
    cache_dir: str | None,
    trust_remote_code: bool,
) -> LensModel:
    if isinstance(source, nn.Module):
        hf = source
        if getattr(hf, "config", None) is None:
            raise FacLensError("fl.load got a module without .config; pass a transformers PreTrainedModel")
        place_module(hf, placement, dtype)
    else:
        hf, loaded_processor = _from_files(
            resolve(str(source)), placement, dtype, cache_dir, trust_remote_code, processor is None
        )
        processor = processor if processor is not None else loaded_processor
    return _wrap(hf, processor)


def _architecture_of(config: Any) -> str:
    names = getattr(config, "architectures", None) or []
    if names:
        return names[0]
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    name = MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES.get(config.model_type)
    if name is None:
        raise FacLensError(
            f"cannot tell the architecture of model_type {config.model_type!r}: the config has no "
            "'architectures' field; add it (e.g. ['Qwen2_5_VLForConditionalGeneration'])"
        )
    return name


def _from_files(
    source: str,
    placement: Placement,
    dtype: torch.dtype | None,
    cache_dir: str | None,
    trust_remote_code: bool,
    want_processor: bool,
) -> tuple[nn.Module, Any]:
    kind = folder_kind(source)
    if kind is not None:  # e.g. fac-smol: cached parts + a trained projector
        hf, processor = kind.load(Path(source))
        place_module(hf, placement, dtype)
        return hf, processor
    folder = local_folder(source, cache_dir)
    if kimi_vl_checkpoint.is_kimi_vl(folder):  # remote-code model class: converted, its code never run
        return _kimi_vl(folder, placement, dtype, trust_remote_code and want_processor)
    check_remote_code(folder, trust_remote_code)
    files = {"local_files_only": True, "cache_dir": cache_dir, "trust_remote_code": trust_remote_code}
    config = _load_config(source, folder, files)
    spec = spec_for(_architecture_of(config))
    with _weight_errors(source):
        hf = model_class(spec.hf_architecture).from_pretrained(  # never the checkpoint's own class
            source,
            config=config,
            dtype=dtype if dtype is not None else "auto",
            **placement.from_pretrained_kwargs(),
            **files,
        )
    if placement.device_map is None and placement.device is not None and dispatch_map(hf) is None:
        hf.to(placement.device)
    return hf, _load_processor(source, spec, folder, files) if want_processor else None


def _kimi_vl(
    folder: Path, placement: Placement, dtype: torch.dtype | None, load_processor: bool
) -> tuple[nn.Module, Any]:
    """A ``kimi_vl`` checkpoint on transformers' classes (:mod:`.architectures.kimi_vl_checkpoint`).

    Its processor and tokenizer exist only as remote code: loaded (with the warning naming the
    files) only when ``trust_remote_code=True``, else None.
    """
    from transformers import AutoProcessor

    device = placement.device if placement.device_map is None else None
    hf = kimi_vl_checkpoint.load(folder, device=device, dtype=dtype)
    if placement.device_map is not None:  # built on the CPU in its dtype, then dispatched
        place_module(hf, placement, None)
    if not load_processor:
        return hf, None
    check_remote_code(folder, True)
    with no_runtime_installs():
        return hf, AutoProcessor.from_pretrained(str(folder), trust_remote_code=True, local_files_only=True)


def _load_config(source: str, folder: Path, files: dict[str, Any]) -> Any:
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(source, **files)
    except (OSError, ValueError) as error:
        if needs_code(error):
            raise refusal(folder) from error
        config_file = folder / "config.json"
        if config_file.is_file():  # a config that does not parse: the fix differs from a missing one
            raise FacLensError(
                f"{config_file} is not a valid model config ({error}): repair the JSON or copy the "
                "checkpoint's config.json again"
            ) from error
        raise FacLensError(
            f"no usable model config for {source!r} in {folder} ({error}): pass a checkpoint "
            "directory with a config.json, or a hub id whose files are complete in the local HF "
            "cache (fac_lens never downloads)"
        ) from error


@contextmanager
def _weight_errors(source: str) -> Iterator[None]:
    """Missing or truncated weight files, reported with the folder and the fix."""
    try:
        yield
    except Exception as error:
        if not (isinstance(error, OSError) or type(error).__name__ == "SafetensorError"):
            raise
        raise FacLensError(
            f"the weights of {source!r} could not be read ({type(error).__name__}: {error}): the "
            "weight files are missing or incomplete; copy or download the checkpoint again"
        ) from error


def _load_processor(source: str, spec, folder: Path, files: dict[str, Any]) -> Any:
    """The checkpoint's processor, or a torchvision-free equivalent, or None.

    Raises:
        FacLensError: the processor (or its tokenizer) needs the checkpoint's code, not trusted.
    """
    from transformers import AutoProcessor

    loaders = [AutoProcessor.from_pretrained, spec.fallback_processor]
    with no_runtime_installs():
        for loader in filter(None, loaders):
            try:
                return loader(source, **files)
            except Exception as error:
                if needs_code(error) and not files["trust_remote_code"]:
                    raise refusal(folder, ", or pass fl.load(..., processor=...) yourself") from error
    return None


def _wrap(hf: nn.Module, processor: Any) -> LensModel:
    from transformer_lens.model_bridge.sources import build_bridge_from_module

    architecture = type(hf).__name__
    spec = spec_for(architecture)
    if not getattr(hf.config, "architectures", None):
        hf.config.architectures = [architecture]
    if getattr(hf, "_fac_lens_bridged", False):
        raise FacLensError(
            "this model object is already wrapped by fl.load (the bridge edits it in place); "
            "reuse that LensModel, or load a fresh copy"
        )
    ensure_registered()
    vision_config = spec.vision_config(hf)
    vision_attention = getattr(vision_config, "_attn_implementation", None)
    param_names = dict(hf.state_dict(keep_vars=True))
    module_names = {id(module): name for name, module in hf.named_modules()}
    o_proj_names = [module_names.get(id(spec.output_projection(m)), "") for m in spec.text_attention(hf)]
    hf.eval()
    with no_runtime_installs(), adapter_registered(spec.hf_architecture, spec.adapter_class):
        bridge = build_bridge_from_module(hf, spec.hf_architecture, hf_config=hf.config)
    # The bridge forces eager everywhere; only pattern reads need it (DESIGN.md section 6).
    spec.text_config(hf)._attn_implementation = ATTENTION_NAME
    if vision_config is not None and vision_attention is not None:
        vision_config._attn_implementation = vision_attention
    text = spec.text_config(hf)
    n_heads = int(text.num_attention_heads)
    model = LensModel(
        bridge=bridge,
        hf=hf,
        processor=processor,
        spec=spec,
        n_layers=int(text.num_hidden_layers),
        n_heads=n_heads,
        # The o_proj input is [.., n_heads * d_head]; d_head is the value head size (MLA: v_head_dim).
        d_head=int(spec.output_projection(spec.text_attention(hf)[0]).in_features) // n_heads,
        n_kv_heads=int(getattr(text, "num_key_value_heads", None) or n_heads),
        image_token_id=spec.image_token_id(hf),
        _param_names=param_names,
        _o_proj_names=o_proj_names,
    )
    hf.__dict__["_fac_lens_bridged"] = True
    return model
