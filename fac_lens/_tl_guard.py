"""Keep transformer-lens from installing packages, and scope adapter overrides to one build."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


def _refuse_install() -> bool:
    """Stands in for transformer-lens's ``_ensure_torchvision``: never pip-installs anything."""
    return False


@contextmanager
def no_runtime_installs() -> Iterator[None]:
    """Within the block, transformer-lens's run-time ``pip install torchvision`` is disabled."""
    from transformer_lens.model_bridge.sources.transformers import helpers

    original = helpers._ensure_torchvision
    helpers._ensure_torchvision = _refuse_install
    try:
        yield
    finally:
        helpers._ensure_torchvision = original


@contextmanager
def adapter_registered(architecture: str, adapter_class: type) -> Iterator[None]:
    """Register ``adapter_class`` for ``architecture`` with transformer-lens for this block only.

    Uses transformer-lens's own extension point (``ArchitectureAdapterFactory.register_adapter``)
    and puts back whatever was registered before, so other users of transformer-lens in the same
    process keep the stock adapter.
    """
    from transformer_lens.factories.architecture_adapter_factory import (
        ArchitectureAdapterFactory,
    )

    ArchitectureAdapterFactory.discover_entry_points()
    previous = ArchitectureAdapterFactory._adapters.get(architecture)
    ArchitectureAdapterFactory.register_adapter(architecture, adapter_class)
    try:
        yield
    finally:
        if previous is None:
            ArchitectureAdapterFactory._adapters.pop(architecture, None)
        else:
            ArchitectureAdapterFactory._adapters[architecture] = previous
