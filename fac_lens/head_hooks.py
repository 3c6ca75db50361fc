"""Per-head scaling of each layer's ``o_proj`` input: the tensor transformer-lens calls ``hook_z``.

Gains (``fl.rescale``) and gates (``fl.contribution_map``) are applied by a forward pre-hook on the
HF ``o_proj`` module itself. transformer-lens's ``blocks.{l}.attn.hook_z`` is that module's input
(``o.hook_in``), so the scaling happens at exactly the place ``hook_z`` exposes, and it fires the
same whether the forward runs through the bridge or through the unwrapped HF modules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch

from .lens_model import LensModel

HeadScale = Callable[[int], "torch.Tensor | None"]


def scale_heads(x: torch.Tensor, scale: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Multiply each head's slice of ``x`` by its scale.

    Args:
        x: [B, pos, n_heads * d_head] the ``o_proj`` input (concatenated head outputs).
        scale: [n_heads], [B, n_heads] or [B, pos, n_heads].

    Returns:
        x with head h scaled by ``scale[..., h]`` (in float32 at least), same shape, dtype and device.
    """
    heads = x.unflatten(-1, (n_heads, -1))  # [B, pos, H, D]
    if scale.dim() == 2:  # [B, H]
        scale = scale[:, None]
    # bfloat16 would round a gain of 1.16 to 1.15625: multiply in float32, round the product once
    compute = torch.promote_types(x.dtype, torch.float32)
    return (heads.to(compute) * scale.to(x.device, compute)[..., None]).to(x.dtype).flatten(-2)


@contextmanager
def head_scaling(model: LensModel, scale_for_layer: HeadScale) -> Iterator[None]:
    """Within the block, every layer's ``o_proj`` input is scaled per head.

    Args:
        model: the model.
        scale_for_layer: called at each forward with the layer index; returns the scale
            ([H], [B, H] or [B, pos, H]) or None to leave that layer alone.
    """
    handles = []
    try:
        for layer, o_proj in enumerate(model.output_projections()):

            def pre_hook(module, args, layer=layer):
                scale = scale_for_layer(layer)
                if scale is None:
                    return None
                return (scale_heads(args[0], scale, model.n_heads), *args[1:])

            handles.append(o_proj.register_forward_pre_hook(pre_hook))
        yield
    finally:
        for handle in handles:
            handle.remove()


# (mask, values) for one layer: mask bool [H] or [B, H] (heads to replace), values broadcastable to
# the head-split o_proj input [B, pos, H, D]; None leaves the layer alone.
HeadReplacement = Callable[[int], "tuple[torch.Tensor, torch.Tensor] | None"]


def replace_heads(x: torch.Tensor, mask: torch.Tensor, values: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Replace the slices of the heads in ``mask`` by ``values``.

    Args:
        x: [B, pos, n_heads * d_head] the ``o_proj`` input.
        mask: bool [H] (every row) or [B, H] (one choice per batch row).
        values: broadcastable to [B, pos, H, D] (e.g. [H, D] means, [B, pos, H, D] recorded outputs).

    Returns:
        x with the masked head slices replaced, same shape and dtype.
    """
    heads = x.unflatten(-1, (n_heads, -1))  # [B, pos, H, D]
    chosen = mask[None, None, :, None] if mask.dim() == 1 else mask[:, None, :, None]
    return torch.where(chosen.to(x.device), values.to(x.device, x.dtype), heads).flatten(-2)


@contextmanager
def head_replacing(model: LensModel, replacement_for_layer: HeadReplacement) -> Iterator[None]:
    """Within the block, some heads' slices of each layer's ``o_proj`` input are overwritten.

    Args:
        model: the model.
        replacement_for_layer: called at each forward with the layer index; returns
            ``(mask, values)`` (see :func:`replace_heads`) or None to leave that layer alone.
    """
    handles = []
    try:
        for layer, o_proj in enumerate(model.output_projections()):

            def pre_hook(module, args, layer=layer):
                edit = replacement_for_layer(layer)
                if edit is None:
                    return None
                return (replace_heads(args[0], *edit, model.n_heads), *args[1:])

            handles.append(o_proj.register_forward_pre_hook(pre_hook))
        yield
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def head_recording(model: LensModel, record: Callable[[int, torch.Tensor], None]) -> Iterator[None]:
    """Within the block, ``record(layer, z)`` sees every layer's head-split ``o_proj`` input
    ``z`` [B, pos, H, D] (what ``hook_z`` shows), after any edit registered before this block."""
    handles = []
    try:
        for layer, o_proj in enumerate(model.output_projections()):

            def pre_hook(module, args, layer=layer):
                record(layer, args[0].detach().unflatten(-1, (model.n_heads, -1)))

            handles.append(o_proj.register_forward_pre_hook(pre_hook))
        yield
    finally:
        for handle in handles:
            handle.remove()
