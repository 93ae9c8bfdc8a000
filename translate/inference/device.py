"""Devices, precision and memory: one place for training and inference to choose and probe them."""
from __future__ import annotations

import contextlib
import os
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils import _pytree as pytree
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from translate.errors import ConfigError
from translate.inference.contract import ModelContract
from translate.inference.tiling import round_up
from translate.inference.spandrel_bridge import ForeignSpec

PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16", "fp16")
# CPU activation budget cap (1.5 GiB): larger tiles run no faster on CPU (compute-bound), it
# keeps a 4096x4096 conversion under 3 GB peak RSS with its image buffers, and lets 1024x1024
# run whole with resnet_9blocks (tiling costs a statistics pass plus overlaps).
_CPU_BUDGET_CAP = 3 << 29
# Peak activation memory of a forward pass over the largest activation it makes: measured peak
# RSS over (largest leaf-module output in fp32 bytes) was 2.1 (unet_256) to 3.4 (resnet_9blocks,
# contiguous fp32) on CPU; 3.5 keeps the estimate on the safe side.
_PEAK_OVER_LARGEST = 3.5
# Measured tensor peak -> process memory: resnet_9blocks' live tensors peak at 524 B/px (256 px,
# `peak_activation_bytes`), half its RSS-calibrated estimate above (1072 B/px), hence 2.
_MEASURED_PEAK_MARGIN = 2.0


def resolve_device(device: str | torch.device, *, field: str = "device") -> torch.device:
    """"auto" is the first CUDA device when there is one, else the CPU. `field` names the setting
    in errors ("device" for the --device flag, "runtime.device" in a training config)."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as e:
        raise ConfigError(f"{field}: {device!r} is not a device name (auto, cpu, cuda, cuda:1)") from e
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{field}: {device!r} requested but CUDA is not available; use --device cpu")
    return resolved


def cpu_has_native_bf16() -> bool:
    """True when the CPU computes bf16 natively (AVX512-BF16 or AMX); emulated bf16 is slower than fp32."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def resolve_precision(precision: str, device: torch.device, *, supported: tuple[str, ...] | None = None,
                      model: str = "model") -> str:
    """"auto": fp16 on CUDA, bf16 on CPUs with native bf16, else fp32. Checks explicit choices.
    `supported` limits the choice to what the model runs in ("auto" falls back to fp32; an explicit
    other choice is an error naming `model`).

    bf16 autocast roughly doubles CPU throughput. Its cost, measured by scripts/bench_convert.py
    on a real photo (8-bit output, same weights, bf16 vs fp32): unet_256 56.7 dB PSNR (at most 1
    level apart), resnet_9blocks 45.5-46.6 dB (a few pixels up to 8-15 levels apart). 16-bit
    images therefore run in fp32 under "auto" (`Translator.wants_exact`).
    """
    chosen = _device_precision(precision, device)
    if supported is None or chosen in supported:
        return chosen
    if precision == "auto":  # fp16 unsupported on a GPU: bf16 where both can, else fp32
        bf16_ok = device.type == "cuda" and torch.cuda.is_bf16_supported()
        return "bf16" if "bf16" in supported and bf16_ok else "fp32"
    raise ConfigError(f"precision {precision}: this {model} does not run in it; use {' or '.join(supported)}")


def _device_precision(precision: str, device: torch.device) -> str:
    if precision not in PRECISIONS:
        raise ConfigError(f"precision: {precision!r} must be one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        if device.type == "cuda":
            return "fp16"
        return "bf16" if device.type == "cpu" and cpu_has_native_bf16() else "fp32"
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError("precision fp16 needs a CUDA device; on CPU use bf16 or fp32")
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError("precision bf16: this GPU has no bf16 support; use fp16 or fp32")
    return precision


def available_memory_bytes(device: torch.device) -> int:
    """Free memory for activations: free GPU memory, or MemAvailable within any cgroup limit."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    available = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
    except OSError:
        pass
    if available is None:
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            available = 4 << 30  # unknown platform: assume a modest machine
    try:  # containers: the cgroup v2 limit minus what is already used
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            used = int(Path("/sys/fs/cgroup/memory.current").read_text())
            available = min(available, int(limit) - used)
    except (OSError, ValueError):
        pass
    return max(int(available), 0)


def auto_memory_budget(device: torch.device) -> int:
    """Bytes of activations one forward call may use: 60% of free GPU memory; on CPU a quarter of
    the available memory, capped at 1.5 GiB (see `_CPU_BUDGET_CAP`)."""
    available = available_memory_bytes(device)
    if device.type == "cuda":
        return int(0.6 * available)
    return int(min(0.25 * available, _CPU_BUDGET_CAP))


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """Mixed precision for `precision` in "bf16" / "fp16"; "fp32" and "off" run as they are."""
    if precision in ("off", "fp32"):
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


class _LiveTensorBytes(TorchDispatchMode):
    """Counts the bytes of tensor storages made inside it and still alive; keeps the peak.

    Every tensor an op returns holds a reference on its storage (views share one); a storage
    counts from its first tensor until its last is garbage: the activation memory of a forward.
    """

    def __init__(self) -> None:
        super().__init__()
        self.sizes: dict[int, int] = {}
        self.refs: dict[int, int] = {}
        self.current = 0
        self.peak = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for tensor in pytree.tree_leaves(out):
            if isinstance(tensor, torch.Tensor) and (key := tensor.untyped_storage().data_ptr()):
                if key not in self.refs:
                    self.refs[key], self.sizes[key] = 0, tensor.untyped_storage().nbytes()
                    self.current += self.sizes[key]
                    self.peak = max(self.peak, self.current)
                self.refs[key] += 1
                weakref.finalize(tensor, self._release, key)
        return out

    def _release(self, key: int) -> None:
        self.refs[key] -= 1
        if not self.refs[key]:
            del self.refs[key]
            self.current -= self.sizes.pop(key)


def peak_activation_bytes(forward: Callable[[torch.Tensor], Any], x: torch.Tensor) -> int:
    """Peak bytes of the tensors `forward(x)` makes (its activations and output; not `x` or weights)."""
    tracker = _LiveTensorBytes()
    with torch.inference_mode(), tracker:
        forward(x)
    return tracker.peak


def activation_bytes_per_px(net: nn.Module, contract: ModelContract) -> float:
    """Estimated peak activation bytes per input pixel of one forward pass of `net` (built for `contract`).

    The largest leaf-module output per input pixel of one small CPU pass, in fp32, times
    `_PEAK_OVER_LARGEST`. A real pass rather than one on the meta device: meta kernels of
    reflection padding and instance norm are Python decompositions that import torch._dynamo
    and sympy, a second of start-up for every conversion.

    Foreign (spandrel) nets are measured instead: their peak may sit in tensors no leaf module
    returns (attention maps, window partitions), so every tensor their forward makes is counted.
    """
    side = round_up(max(64, contract.min_side), contract.size_multiple)
    if isinstance(contract.spec, ForeignSpec):
        probe = torch.zeros(1, contract.in_channels, side, side)
        return _MEASURED_PEAK_MARGIN * peak_activation_bytes(net, probe) / (side * side)
    largest = 0

    def hook(module: nn.Module, inputs: Any, output: Any) -> None:
        nonlocal largest
        if isinstance(output, torch.Tensor):
            largest = max(largest, output.numel())

    hooks = [module.register_forward_hook(hook) for module in net.modules()
             if not any(True for _ in module.children())]
    try:
        with torch.inference_mode():
            net(torch.zeros(1, contract.in_channels, side, side))
    finally:
        for handle in hooks:
            handle.remove()
    return _PEAK_OVER_LARGEST * 4.0 * largest / (side * side)
