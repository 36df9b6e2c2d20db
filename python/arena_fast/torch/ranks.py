"""`Ranks`: the process group a training run works in (one process, or the
ranks `torchrun` / `accelerate launch` started), what `af.train` and its
distributed tests share."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

__all__ = ["Ranks"]


class Ranks:
    """The process group a run trains in: one process (`world == 1`), or the
    ranks `torchrun` / `accelerate launch` started (WORLD_SIZE > 1 in the
    environment), on gloo for the CPU and nccl for CUDA."""

    def __init__(self) -> None:
        self.world, self.rank, self.local_rank, self.owned = 1, 0, 0, False
        if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
            return
        if not dist.is_initialized():
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
            self.owned = True  # ours to destroy at the end
        self.world, self.rank = dist.get_world_size(), dist.get_rank()
        self.local_rank = int(os.environ.get("LOCAL_RANK", self.rank))

    @property
    def main(self) -> bool:
        return self.rank == 0

    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sum over the ranks (the values themselves with one)."""
        if self.world == 1:
            return values
        t = torch.tensor(values, dtype=torch.float64)
        if dist.get_backend() == "nccl":
            t = t.cuda()
        dist.all_reduce(t)
        return t.cpu().tolist()

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def close(self) -> None:
        if self.owned:
            dist.destroy_process_group()
