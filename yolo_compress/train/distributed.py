"""torch.distributed for the finetune: one process per device, started by `torchrun`.

Only the process group's life, the rank and the device live here; the loop itself is the same code
with world size 1 (a DistributedSampler over one replica needs no process group).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: rank among world_size processes, its device, and whether it started the
    process group (and so must end it)."""

    rank: int
    world_size: int
    device: torch.device
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def sync_from_main(self, module: torch.nn.Module) -> None:
        """Copy rank 0's whole state (parameters and buffers) to every rank. DDP keeps parameters equal, but
        each rank's last forward updates BN running statistics from its own share of the batch."""
        if self.distributed:
            for tensor in module.state_dict().values():
                dist.broadcast(tensor, src=0)

    def close(self) -> None:
        if self.owns_group:
            dist.destroy_process_group()


def resolve_device(name: str) -> torch.device:
    """'auto' -> cuda when available, else cpu; anything else as torch spells it ('cpu', 'cuda:1')."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available")
    return device


def is_main_process() -> bool:
    """Rank 0, or not under torchrun; readable before the process group exists (torchrun sets RANK)."""
    return int(os.environ.get("RANK", "0")) == 0


def init_distributed(device_name: str) -> DistContext:
    """The context of this process: under torchrun (WORLD_SIZE > 1) join the process group (NCCL on CUDA,
    gloo on CPU) with one GPU per local rank; otherwise a world of one."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    device = resolve_device(device_name)
    if world_size <= 1:
        return DistContext(0, 1, device)
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistContext(dist.get_rank(), dist.get_world_size(), device, owns)
