"""Multi-process training under torchrun: process group, replica wrapping and agreement checks.

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK; without them everything here is a no-op, so
single-process code paths never touch torch.distributed.
"""
from __future__ import annotations

import gc
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from translate.errors import DistributedError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def context_from_env(environ: dict[str, str] | None = None) -> DistContext:
    env = os.environ if environ is None else environ
    return DistContext(rank=int(env.get("RANK", 0)), world_size=int(env.get("WORLD_SIZE", 1)),
                       local_rank=int(env.get("LOCAL_RANK", 0)))


def init(ctx: DistContext, device: torch.device) -> None:
    """Join torchrun's process group: NCCL on CUDA, gloo on CPU (idempotent)."""
    if not ctx.enabled or dist.is_initialized():
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend, device_id=device if device.type == "cuda" else None)
    log.info("rank %d/%d joined the %s process group", ctx.rank, ctx.world_size, backend)


def shutdown(*, wait_for_all: bool = True) -> None:
    """Leave the process group; after an error, without waiting for ranks that may never come."""
    if dist.is_initialized():
        if wait_for_all:
            dist.barrier()
        # The finished trainer's DDP replicas sit in reference cycles; left to the collector at
        # interpreter exit, their reducers are torn down after the group and a rank could abort
        # ("terminate called without an active exception"). Free them while the group is alive.
        gc.collect()
        dist.destroy_process_group()


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def rank_device(name: str, ctx: DistContext) -> str:
    """Under torchrun, `auto`/`cuda` means this rank's own GPU (cuda:LOCAL_RANK)."""
    if ctx.enabled and torch.cuda.is_available() and name in ("auto", "cuda"):
        return f"cuda:{ctx.local_rank}"
    return name


def fingerprint(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def check_agreement(what: str, payload: Any) -> None:
    """Every rank must hold the same `payload` (config, dataset listing): else a clear error on all ranks."""
    if not dist.is_initialized():
        return
    mine = fingerprint(payload)
    everyone: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(everyone, mine)
    differing = [r for r, fp in enumerate(everyone) if fp != everyone[0]]
    if differing:
        raise DistributedError(f"ranks disagree on the {what}: rank(s) {differing} differ from rank 0 "
                               f"(same --data, files and flags are needed on every node)")


def wrap(net: nn.Module, device: torch.device) -> nn.Module:
    """DistributedDataParallel replica: gradients are averaged across ranks during backward."""
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(net, device_ids=ids)


def gather_from_ranks(value: Any) -> list[Any]:
    """Under torchrun, every rank's `value` (on every rank, over a short-lived gloo group); else [value].
    For jobs such as conversion that need no process group except to report once at the end."""
    ctx = context_from_env()
    if not ctx.enabled or "MASTER_ADDR" not in os.environ:  # RANK/WORLD_SIZE alone: no group to join
        return [value]
    owned = not dist.is_initialized()
    if owned:
        dist.init_process_group(backend="gloo")
    try:
        everyone: list[Any] = [None] * ctx.world_size
        dist.all_gather_object(everyone, value)
    finally:
        if owned:
            dist.destroy_process_group()
    return everyone


def parameter_checksums(nets: dict[str, nn.Module]) -> list[float]:
    """Each rank's sum of all parameters, gathered on every rank: equal when replicas are in sync."""
    total = sum(float(p.detach().double().sum()) for net in nets.values() for p in net.parameters())
    if not dist.is_initialized():
        return [total]
    everyone: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(everyone, total)
    return everyone
