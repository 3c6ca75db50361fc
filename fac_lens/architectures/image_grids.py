"""Where each image's tokens sit on that image's own patch grid, per architecture family.

An architecture's ``image_layout(hf, inputs)`` returns one :class:`ImageLayout` per image of a
prompt, in the order their tokens appear: how many image tokens the image has, and for each view of
it (the image itself; anyres: also the low-resolution base view) a [rows, cols] tensor of token
offsets into that image's run of image tokens, in raster order. Tokens no view holds (LLaVA-NeXT's
row-newline features, a CLS feature) are the image's but sit on no grid cell.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..errors import FacLensError


@dataclass(frozen=True)
class ImageLayout:
    """One image's token run and its grids.

    Attributes:
        n_tokens: image tokens of this image in ``input_ids`` (newline features included).
        views: name -> long [rows, cols] offsets into those tokens; the first view is the image.
    """

    n_tokens: int
    views: dict[str, torch.Tensor]

    @property
    def grid(self) -> torch.Tensor:
        """The main view's offsets [rows, cols]."""
        return next(iter(self.views.values()))


def raster(rows: int, cols: int, start: int = 0) -> torch.Tensor:
    """Offsets ``start .. start + rows * cols - 1`` laid out [rows, cols] row by row."""
    return torch.arange(start, start + rows * cols).view(rows, cols)


def _batch_of_one(inputs: dict[str, Any], key: str) -> torch.Tensor:
    if key not in inputs:
        raise FacLensError(f"the inputs lack {key!r}, which places the image's tokens on its patch grid")
    return inputs[key]


def merged_patch_grids(hf: nn.Module, inputs: dict[str, Any]) -> list[ImageLayout]:
    """Qwen2-VL, Qwen2.5-VL, Qwen3-VL, Kimi-K2.5: ``image_grid_thw`` [n_images, 3] counts patches
    (t, h, w); each image token merges ``m_h x m_w`` neighbouring patches, in raster order, so the
    token grid is ``(t * h / m_h) x (w / m_w)``."""
    vision = hf.config.vision_config
    kernel = getattr(vision, "merge_kernel_size", None)
    if kernel is not None:
        merge_h, merge_w = int(kernel[0]), int(kernel[1])
    else:
        merge_h = merge_w = int(vision.spatial_merge_size)
    layouts = []
    for t, h, w in _batch_of_one(inputs, "image_grid_thw").tolist():
        rows, cols = int(t) * int(h) // merge_h, int(w) // merge_w
        layouts.append(ImageLayout(rows * cols, {"image": raster(rows, cols)}))
    return layouts


def square_patch_grids(hf: nn.Module, inputs: dict[str, Any]) -> list[ImageLayout]:
    """LLaVA: one token per ``patch_size`` patch of the pixels the tower gets (``pixel_values``
    [n_images, 3, H, W]: ``(H / patch) x (W / patch)``), in raster order; a leading CLS feature too
    under ``vision_feature_select_strategy="full"``, on no grid cell."""
    patch = int(hf.config.vision_config.patch_size)
    pixels = _batch_of_one(inputs, "pixel_values")
    rows, cols = int(pixels.shape[-2]) // patch, int(pixels.shape[-1]) // patch
    cls = 1 if getattr(hf.config, "vision_feature_select_strategy", "default") == "full" else 0
    return [
        ImageLayout(rows * cols + cls, {"image": raster(rows, cols, cls)}) for _ in range(pixels.shape[0])
    ]


def pooled_grids(hf: nn.Module, inputs: dict[str, Any]) -> list[ImageLayout]:
    """Gemma 3: ``mm_tokens_per_image`` pooled tokens per image (a square grid, raster order)."""
    n = int(hf.config.mm_tokens_per_image)
    side = math.isqrt(n)
    n_images = int(_batch_of_one(inputs, "pixel_values").shape[0])
    return [ImageLayout(n, {"image": raster(side, side)}) for _ in range(n_images)]


def crop_grids(hf: nn.Module, inputs: dict[str, Any]) -> list[ImageLayout]:
    """Idefics3 / SmolVLM: each real crop (an all-zero crop is padding) of ``S x S`` pixels gives
    ``(S / patch / scale)^2`` tokens after the pixel shuffle, raster order. With image splitting a
    picture is several crops (tiles, then the global view): each crop is one entry."""
    pixels = _batch_of_one(inputs, "pixel_values")
    side = int(pixels.shape[-1]) // int(hf.config.vision_config.patch_size) // int(hf.config.scale_factor)
    crops = pixels.reshape(-1, *pixels.shape[-3:])
    real = int((crops != 0).flatten(1).any(1).sum())
    return [ImageLayout(side * side, {"image": raster(side, side)}) for _ in range(real)]


def anyres_grids(hf: nn.Module, inputs: dict[str, Any]) -> list[ImageLayout]:
    """LLaVA-NeXT / LLaVA-OneVision: a base view (one crop, ``side x side``) then the tiles stitched
    into the unpadded high-resolution grid, each of its rows ended by a newline feature (OneVision
    shrinks a grid above ``anyres_max_N`` crops first, as the model does). The main view is the
    high-resolution grid; ``"base"`` is the low-resolution view."""
    from transformers.models.llava_next.modeling_llava_next import (
        get_anyres_image_grid_shape,
        image_size_to_num_patches,
        unpad_image,
    )

    config, vision = hf.config, hf.config.vision_config
    side = int(vision.image_size) // int(vision.patch_size)
    sizes = _batch_of_one(inputs, "image_sizes")
    onevision = config.model_type == "llava_onevision"
    layouts = []
    for size in sizes.tolist():
        n_crops = image_size_to_num_patches(size, config.image_grid_pinpoints, vision.image_size)
        if n_crops <= 1:
            layouts.append(ImageLayout(side * side + 1, {"image": raster(side, side)}))
            continue
        tiles_h, tiles_w = get_anyres_image_grid_shape(size, config.image_grid_pinpoints, vision.image_size)
        rows, cols = unpad_image(torch.empty(1, tiles_h * side, tiles_w * side), torch.tensor(size)).shape[1:]
        if onevision:
            max_crops = int(
                str(getattr(config, "vision_aspect_ratio", "anyres_max_9")).removeprefix("anyres_max_")
            )
            ratio = math.sqrt(rows * cols / (max_crops * side**2))
            if ratio > 1.1:
                rows, cols = int(rows // ratio), int(cols // ratio)
        start = side * side
        image = torch.arange(start, start + rows * (cols + 1)).view(rows, cols + 1)[:, :cols]
        layouts.append(ImageLayout(start + rows * (cols + 1), {"image": image, "base": raster(side, side)}))
    return layouts
