"""``fl.fold_gains``: write static head gains into ``o_proj`` weights (zero run-time cost)."""

from __future__ import annotations

import torch

from .errors import FacLensError
from .gains import Gains
from .lens_model import LensModel


def fold_gains(model: LensModel, gains: Gains) -> LensModel:
    """Scale each head's input columns of ``o_proj`` by its gain, in place.

    ``o_proj(concat(g_h * z_h)) == (W * g_col) concat(z_h) + b``: the folded model computes what
    ``fl.rescale(model, gains)`` computes, with no hook. Save it with
    ``model.save_pretrained(path)``; it then loads with plain ``from_pretrained``.
    Folding ``Gains(1 / gains.values)`` afterwards undoes it (up to rounding).

    Returns:
        The same model, for chaining.
    """
    if not isinstance(gains, Gains):
        raise FacLensError(
            f"fold_gains needs static fl.Gains, got {type(gains).__name__}: a dynamic FacConfig "
            "chooses heads per pass and cannot be folded into weights"
        )
    gains.check_model(model.n_layers, model.n_heads)
    with torch.no_grad():
        for layer, o_proj in enumerate(model.output_projections()):
            row = gains.values[layer]
            if bool((row == 1).all()):
                continue
            columns = row.repeat_interleave(model.d_head).to(o_proj.weight.device, o_proj.weight.dtype)
            o_proj.weight.mul_(columns[None, :])  # weight [d_model, H * d_head]
    return model
