"""Which training items each rank sees in each epoch, reproducibly and resumable mid-epoch."""
from __future__ import annotations

import math
from typing import Iterator

import torch
from torch.utils.data import Sampler


def batches_per_epoch(n: int, *, batch_size: int, world_size: int = 1) -> int:
    """Optimisation steps per epoch of `n` items on each of `world_size` ranks (last batch may be short)."""
    return math.ceil(math.ceil(n / world_size) / batch_size)


class EpochSampler(Sampler[int]):
    """A seeded permutation per epoch, split across ranks, that can start mid-epoch, so a resumed
    run sees exactly the samples the interrupted one had not seen yet."""

    def __init__(self, n: int, *, seed: int, epoch: int, start: int = 0, rank: int = 0,
                 world_size: int = 1, shuffle: bool = True, length: int = 0) -> None:
        self.n, self.seed, self.epoch, self.start = n, seed, epoch, start
        self.length = length or n  # items per epoch: several permutations back to back when > n
        self.rank, self.world_size, self.shuffle = rank, world_size, shuffle

    def indices(self) -> list[int]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order: list[int] = []
        while len(order) < self.length:
            # The k-th pass over the data uses indices k*n + i: datasets read item i % n and seed
            # its augmentation with the full index, so each pass gets fresh crops.
            base = len(order) // self.n * self.n
            perm = torch.randperm(self.n, generator=g).tolist() if self.shuffle else list(range(self.n))
            order += [base + i for i in perm]
        order = order[: self.length]
        per_rank = math.ceil(self.length / self.world_size)
        order += order[: per_rank * self.world_size - self.length]  # pad so every rank steps equally
        return order[self.rank::self.world_size][self.start:]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices())

    def __len__(self) -> int:
        return len(self.indices())
