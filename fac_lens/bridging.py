"""Running a bridged HF model with or without the transformer-lens wrappers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from torch import nn


def bridge_has_hooks(bridge: Any) -> bool:
    """Whether any transformer-lens hook is attached to one of the bridge's hook points."""
    return any(
        len(point._forward_hooks) or len(point._backward_hooks) or getattr(point, "fwd_hooks", None)
        for point in bridge.hook_dict.values()
    )


@contextmanager
def unbridged(hf: nn.Module) -> Iterator[None]:
    """Inside the block ``hf`` runs through its original HF modules; the bridge's wrappers (which
    fire transformer-lens hook points) are put back on exit, also on an exception.

    fac_lens uses it for its own forwards when no transformer-lens hook is attached: the wrappers
    cost Python time on every module call (about 2% of a 7B-sized CPU decoding step; more on a
    GPU), while fac_lens's gains, gates and probes sit on the HF modules and fire either way.
    """
    swaps: list[tuple[nn.Module, str, nn.Module]] = []
    try:
        _swap_in_originals(hf, swaps)
        yield
    finally:
        for parent, name, wrapper in reversed(swaps):
            parent._modules[name] = wrapper


def _is_bridge_component(module: nn.Module) -> bool:
    return module._modules.get("_original_component") is not None


def _swap_in_originals(module: nn.Module, swaps: list[tuple[nn.Module, str, nn.Module]]) -> None:
    """Replace every bridge wrapper below ``module`` by the HF module it wraps (recorded in swaps)."""
    for name, child in list(module._modules.items()):
        if child is None:
            continue
        if _is_bridge_component(child):
            original = child
            while _is_bridge_component(original):
                original = original._modules["_original_component"]
            module._modules[name] = original
            swaps.append((module, name, child))
            child = original
        _swap_in_originals(child, swaps)
