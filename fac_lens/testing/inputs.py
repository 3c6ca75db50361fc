"""Raw HF kwargs for any registered tiny model: random text, an image span, more random text."""

from __future__ import annotations

import torch

from .registry import CLASS_KEYS, MODELS


def tiny_inputs(hf, batch: int = 1, seed: int = 0, padded: bool = False) -> dict[str, torch.Tensor]:
    """``input_ids``, ``attention_mask`` [batch, T] and the image kwargs of ``hf``'s architecture.

    Each row is 3 text tokens, one image (see the registry's image makers), 6 text tokens.
    ``padded=True`` left-pads rows to different lengths (row ``b`` has ``2 b`` more text tokens)
    and, where the architecture allows, gives rows different image sizes (Qwen grids, anyres
    tilings).
    """
    model_type = CLASS_KEYS.get(type(hf).__name__, hf.config.model_type)
    if model_type not in MODELS:
        raise ValueError(f"no tiny inputs for model_type {model_type!r}")
    model = MODELS[model_type]
    generator = torch.Generator().manual_seed(seed)
    rows, images = [], []
    for b in range(batch):
        prefix = torch.randint(3, 250, (3 + (2 * b if padded else 0),), generator=generator).tolist()
        suffix = torch.randint(3, 250, (6,), generator=generator).tolist()
        tokens, image = model.image(hf, b, padded, generator)
        rows.append(prefix + tokens + suffix)
        images.append(image)
    length = max(len(r) for r in rows)
    input_ids = torch.zeros(batch, length, dtype=torch.long)
    attention_mask = torch.zeros(batch, length, dtype=torch.long)
    for b, row in enumerate(rows):
        input_ids[b, length - len(row) :] = torch.tensor(row)
        attention_mask[b, length - len(row) :] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask, **_batch(images, model.pad_tiles)}


def _batch(images: list[dict[str, torch.Tensor]], pad_tiles: bool) -> dict[str, torch.Tensor]:
    """Concatenate the rows' image kwargs along dim 0; ``pad_tiles``: first zero-pad ``pixel_values``
    [1, n_tiles, 3, S, S] to the most tiles."""
    out = {}
    for key in images[0]:
        values = [image[key] for image in images]
        if pad_tiles and key == "pixel_values":
            most = max(v.shape[1] for v in values)
            values = [torch.nn.functional.pad(v, (0, 0, 0, 0, 0, 0, 0, most - v.shape[1])) for v in values]
        out[key] = torch.cat(values)
    return out
