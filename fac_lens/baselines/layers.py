"""Layer ranges given for a 32-layer model in a paper, scaled to any depth."""

from __future__ import annotations

from .base import check_layers


def resolve_layers(
    method: str, start: int | None, end: int | None, paper: tuple[int, int], n_layers: int
) -> range:
    """``start <= l < end``; a bound left None is the paper's (for its 32-layer LLaVA-1.5) scaled
    to ``n_layers``, keeping at least one layer."""
    lo = min(round(paper[0] * n_layers / 32), n_layers - 1) if start is None else start
    hi = min(max(lo + 1, round(paper[1] * n_layers / 32)), n_layers) if end is None else end
    check_layers(method, lo, hi, n_layers)
    return range(lo, hi)
