"""Where ``fl.load`` puts a model: one device, or spread by accelerate (``device_map``).

A dispatched model (``hf.hf_device_map``) may hold layers on several GPUs, or offloaded to CPU or
disk and streamed in by accelerate's hooks at each forward; it cannot be moved or cast as a whole.
fac_lens keeps such a placement and makes each layer's tensors on that layer's device
(:meth:`fac_lens.lens_model.LensModel.layer_devices`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .errors import FacLensError
from .lens_model import dispatch_map

AUTO_MAPS = ("auto", "balanced", "balanced_low_0", "sequential")


@dataclass(frozen=True)
class Placement:
    """``fl.load``'s placement arguments, checked."""

    device: torch.device | None
    device_map: str | dict[str, Any] | None = None
    offload_folder: str | os.PathLike | None = None

    def from_pretrained_kwargs(self) -> dict[str, Any]:
        if self.device_map is None:
            return {}
        out: dict[str, Any] = {"device_map": self.device_map}
        if self.offload_folder is not None:
            out["offload_folder"] = str(self.offload_folder)
        return out


def check_device_map(device_map: Any, offload_folder: Any = None) -> str | dict[str, Any] | None:
    """None, one of :data:`AUTO_MAPS`, or ``{module name: int | "cpu" | "cuda:1" | "disk"}``."""
    if device_map is None or (isinstance(device_map, str) and device_map in AUTO_MAPS):
        return device_map
    if not isinstance(device_map, dict) or not device_map:
        raise FacLensError(
            f"device_map={device_map!r}: use one of {AUTO_MAPS} or a non-empty dict "
            "{module name: device index | 'cpu' | 'disk'}, as accelerate takes it"
        )
    if "disk" in device_map.values() and offload_folder is None:
        raise FacLensError(
            "the device_map offloads modules to 'disk': pass offload_folder= (a directory for "
            "their weights), or map them to 'cpu'"
        )
    for name, value in device_map.items():
        if not isinstance(name, str):
            raise FacLensError(f"device_map keys are module names (str), got {name!r}")
        if value == "disk" or (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
            continue
        try:
            torch.device(value)
        except (TypeError, RuntimeError) as error:
            raise FacLensError(
                f"device_map[{name!r}]={value!r} is not a device: use an index, 'cpu', 'cuda:1' or 'disk'"
            ) from error
    return device_map


def place_module(hf: nn.Module, placement: Placement, dtype: torch.dtype | None) -> None:
    """Move, cast or dispatch a given model as ``fl.load`` was asked to (in place).

    Raises:
        FacLensError: a dispatched model asked to change dtype or to be dispatched again; disk
            offload without ``offload_folder``.
    """
    if dispatch_map(hf) is not None:
        if placement.device_map is not None:
            raise FacLensError(
                "this model is already dispatched by accelerate (it has hf_device_map); fl.load keeps "
                "that placement: drop device_map=, or load the model again undispatched"
            )
        if dtype is not None and dtype != next(hf.parameters()).dtype:
            raise FacLensError(
                f"a model dispatched by accelerate cannot be cast to {dtype}: load it with "
                f"dtype={dtype} before dispatching, or pass fl.load(path, dtype=..., device_map=...)"
            )
        return
    if placement.device_map is None:
        if placement.device is not None or dtype is not None:
            hf.to(device=placement.device, dtype=dtype)
        return
    if dtype is not None:
        hf.to(dtype=dtype)
    _dispatch(hf, placement)


def _dispatch(hf: nn.Module, placement: Placement) -> None:
    from accelerate import dispatch_model, infer_auto_device_map

    device_map = placement.device_map
    if isinstance(device_map, str):
        no_split = sorted(getattr(hf, "_no_split_modules", None) or [])
        device_map = infer_auto_device_map(hf, no_split_module_classes=no_split)
    if "disk" in device_map.values() and placement.offload_folder is None:
        raise FacLensError(
            "the device_map offloads modules to 'disk': pass offload_folder= (a directory for "
            "their weights), or map them to 'cpu'"
        )
    offload_dir = None if placement.offload_folder is None else str(placement.offload_folder)
    dispatch_model(hf, device_map=device_map, offload_dir=offload_dir)
    hf.hf_device_map = dict(device_map)
