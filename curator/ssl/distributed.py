"""torchrun / DistributedDataParallel helpers (docs/ssl.md, docs/scale.md): no runtime of our own.

`dist_info()` reads the environment torchrun sets (RANK, WORLD_SIZE, LOCAL_RANK) and initialises
the process group (NCCL on CUDA, gloo on the CPU) once. Data is sharded DistributedSampler-style:
every rank draws the same permutation from (seed, epoch) and takes its own equal slice. Rank 0
alone writes checkpoints and outputs; `gather_rows` reassembles per-rank embedding shards.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def dist_info(device: torch.device | None = None) -> DistInfo:
    """Initialise torch.distributed from torchrun's environment if it is set; else single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    if not dist.is_initialized():
        backend = "nccl" if (device is not None and device.type == "cuda") else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(local)
        dist.init_process_group(backend=backend)
        LOG.info("distributed: rank %d of %d (%s)", rank, world, backend)
    return DistInfo(rank, world, local)


def shard(perm: np.ndarray, info: DistInfo) -> np.ndarray:
    """This rank's equal slice of a permutation shared by all ranks (the remainder is dropped)."""
    per_rank = len(perm) // info.world
    return perm[info.rank * per_rank:(info.rank + 1) * per_rank]


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def gather_rows(local: torch.Tensor, n_total: int, info: DistInfo) -> torch.Tensor:
    """Concatenate each rank's contiguous block of rows (rank order) into (n_total, ...).

    Ranks may hold blocks of different length (see `contiguous_block`); blocks are padded to the
    longest for `all_gather` and trimmed afterwards.
    """
    if not info.enabled:
        return local
    sizes = [len(contiguous_block(n_total, r, info.world)) for r in range(info.world)]
    longest = max(sizes)
    pad = torch.zeros((longest - local.shape[0], *local.shape[1:]), dtype=local.dtype, device=local.device)
    buf = [torch.empty((longest, *local.shape[1:]), dtype=local.dtype, device=local.device) for _ in sizes]
    dist.all_gather(buf, torch.cat([local, pad]))
    return torch.cat([b[:s] for b, s in zip(buf, sizes)])


def contiguous_block(n: int, rank: int, world: int) -> np.ndarray:
    """Row positions rank `rank` embeds: a contiguous block, sizes differing by at most one."""
    bounds = np.linspace(0, n, world + 1).astype(np.int64)
    return np.arange(bounds[rank], bounds[rank + 1])


def all_reduce_mean(x: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if info.enabled:
        x = x.clone()
        dist.all_reduce(x)
        x /= info.world
    return x
