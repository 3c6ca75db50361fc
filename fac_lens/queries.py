"""Query sets T_q (paper eq. 4): which query positions a modality ratio averages over."""

from __future__ import annotations

import torch

from .errors import FacLensError

QUERY_SETS = ("all", "last", "text")
Query = str | torch.Tensor


def query_mask(
    query: Query,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None,
    image_token_id: int,
) -> torch.Tensor:
    """Boolean [B, N] mask of the query positions in the set.

    Args:
        query: ``"all"`` (every non-padding position, paper eq. 4), ``"last"`` (the last
            non-padding position: the single query i* of the paper's later version), ``"text"``
            (non-image, non-padding positions), or a boolean [B, N] tensor.
        input_ids: [B, N].
        attention_mask: [B, N] with 1 on real tokens, or None.
        image_token_id: id of image tokens.
    """
    valid = (
        attention_mask.bool() if attention_mask is not None else torch.ones_like(input_ids, dtype=torch.bool)
    )
    if isinstance(query, torch.Tensor):
        if query.dtype != torch.bool or query.shape != input_ids.shape:
            raise FacLensError(
                f"a query mask must be a bool tensor shaped like input_ids {tuple(input_ids.shape)}, "
                f"got {query.dtype} {tuple(query.shape)}"
            )
        mask = query.to(input_ids.device) & valid
    elif query == "all":
        mask = valid
    elif query == "text":
        mask = valid & (input_ids != image_token_id)
    elif query == "last":
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        last = torch.where(valid, positions, -1).max(dim=1).values
        mask = positions[None, :] == last[:, None]
    else:
        raise FacLensError(
            f"unknown query set {query!r}; use one of {QUERY_SETS} or a bool [batch, seq] mask"
        )
    empty = (~mask.any(dim=1)).nonzero().flatten().tolist()
    if empty:
        raise FacLensError(f"the query set selects no position in batch row(s) {empty}")
    return mask


def query_label(query: Query) -> str:
    """A short name for the query set (``"mask"`` for a custom mask)."""
    return query if isinstance(query, str) else "mask"
