"""Spreading a sweep over processes with torch.distributed (``torchrun``), not a home-made engine.

    torchrun --standalone --nproc_per_node 2 -m fac_lens.cli sweep --grid boundary ...

Each rank takes a disjoint shard of the sweep's (setting, batch) units and writes to the shared
results store; ranks meet at a barrier before rank 0 writes the summaries. Backend: NCCL when
every rank has a GPU, else gloo (CPU). On several GPUs the same command runs unchanged, each rank
on ``cuda:LOCAL_RANK``. Outside torchrun (no ``WORLD_SIZE``), everything runs in one process.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class Shard:
    """This process's place in the job: rank ``rank`` of ``world`` processes."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def device(self, requested: str) -> str:
        """``cuda`` becomes ``cuda:LOCAL_RANK`` so that each rank uses its own GPU."""
        return f"cuda:{self.local_rank}" if requested == "cuda" and self.distributed else requested

    def barrier(self) -> None:
        if self.distributed:
            import torch.distributed as dist

            dist.barrier()


def shard_from_env() -> Shard:
    """Rank and world size as torchrun (and ``accelerate launch``) set them; one process otherwise."""
    return Shard(
        int(os.environ.get("RANK", 0)),
        int(os.environ.get("WORLD_SIZE", 1)),
        int(os.environ.get("LOCAL_RANK", 0)),
    )


@contextmanager
def process_group(shard: Shard, device: str = "cpu") -> Iterator[Shard]:
    """Initialise the process group for a torchrun job (nothing for one process); destroyed in finally."""
    if not shard.distributed:
        yield shard
        return
    import torch.distributed as dist

    backend = "nccl" if device.startswith("cuda") else "gloo"
    dist.init_process_group(backend=backend)
    try:
        yield shard
    finally:
        dist.destroy_process_group()
