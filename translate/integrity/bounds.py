"""Bounded loading: a weights file may only describe what its bytes hold, and a net only what the
parameter budget allows, both checked before any net or tensor is materialised.

A tensor in a PyTorch file is a view (offset, shape, strides) of a storage whose bytes the file
holds. Stride 0 or overlapping views let 12 KB declare a net of billions of parameters, which
`load_state_dict` then copies into real memory. `check_extents` refuses such files; nets built
from a spec (a translate checkpoint) are counted on the meta device first (`check_net_fits`).
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

from translate.errors import CheckpointError

# Above every published architecture translate loads (HAT-L, the largest spandrel SR net in common
# use, has ~41M; ESRGAN's RRDBNet 16.7M; a CycleGAN ResNet 11.4M) with room for bigger own runs.
DEFAULT_MAX_PARAMETERS = 200_000_000
_limit = {"max_parameters": DEFAULT_MAX_PARAMETERS}


def set_max_parameters(count: int) -> None:
    """Raise (or lower) the parameter budget for this process (`--max-parameters`)."""
    if count <= 0:
        raise CheckpointError(f"--max-parameters: {count} must be a positive number of parameters")
    _limit["max_parameters"] = int(count)


def max_parameters() -> int:
    return _limit["max_parameters"]


def _tensors(obj: Any, prefix: str = "") -> Iterator[tuple[str, torch.Tensor]]:
    """(dotted name, tensor) for every tensor nested in dicts, lists and tuples of `obj`."""
    if isinstance(obj, torch.Tensor):
        yield prefix or "tensor", obj
    elif isinstance(obj, Mapping):
        for key, value in obj.items():
            yield from _tensors(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            yield from _tensors(value, f"{prefix}.{i}" if prefix else str(i))


def _view_bytes(t: torch.Tensor) -> tuple[int, int]:
    """(bytes the view's elements take, bytes of its storage it spans from the storage's start)."""
    if t.numel() == 0:
        return 0, 0
    last = t.storage_offset() + sum((size - 1) * stride for size, stride in zip(t.shape, t.stride()))
    return t.numel() * t.element_size(), (last + 1) * t.element_size()


def check_extents(obj: Any, path: str | Path) -> Any:
    """`obj` (what torch.load read from `path`) unchanged, or CheckpointError when a tensor's
    declared extent exceeds the bytes its storage really holds: stride-0 or overlapping views of
    a small storage, or views past its end. Tensors that share one view (tied weights) count once."""
    per_storage: dict[int, tuple[int, set]] = {}
    for name, t in _tensors(obj):
        if t.is_sparse or t.device.type == "meta":
            raise CheckpointError(f"{path}: tensor {name} is {'sparse' if t.is_sparse else 'meta'}; "
                                  "weights files hold dense tensors")
        storage_bytes = t.untyped_storage().nbytes()
        needed, spanned = _view_bytes(t)
        if needed > storage_bytes or spanned > storage_bytes:
            raise CheckpointError(
                f"{path}: tensor {name} declares shape {list(t.shape)} ({needed:,} bytes) over a storage of "
                f"{storage_bytes:,} bytes (strides {list(t.stride())}); refused: the file does not hold it")
        key = t.untyped_storage().data_ptr() if storage_bytes else id(t)
        total, views = per_storage.get(key, (0, set()))
        view = (t.storage_offset(), tuple(t.shape), tuple(t.stride()), t.dtype)
        if view not in views:
            views.add(view)
            total += needed
            if total > storage_bytes:
                raise CheckpointError(
                    f"{path}: tensors up to {name} declare {total:,} bytes as views of one storage of "
                    f"{storage_bytes:,} bytes; refused: overlapping views of a small storage")
        per_storage[key] = (total, views)
    return obj


def check_budget(count: int, path: str | Path, what: str) -> None:
    """CheckpointError unless `count` parameters fit the budget (`--max-parameters`)."""
    if count > max_parameters():
        raise CheckpointError(f"{path}: {what} has {count:,} parameters, over the limit of {max_parameters():,}; "
                              "pass --max-parameters N to allow a bigger net")


def meta_state_shapes(build: Any, spec: Any) -> dict[str, tuple[int, ...]]:
    """Names and shapes of the state dict of `build(spec)`, built on the meta device (no memory)."""
    with torch.device("meta"):
        return {k: tuple(v.shape) for k, v in build(spec).state_dict().items()}


def shape_mismatch(expected: Mapping[str, tuple[int, ...]], state: Mapping[str, Any]) -> str:
    """'' when `state` has the names and shapes of `expected`, else a short account of the difference:
    counts and the first name of each kind (never the whole list)."""
    missing = [k for k in expected if k not in state and not k.endswith(".num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    reshaped = [f"{k} {list(state[k].shape)} there, {list(expected[k])} here" for k in expected
                if k in state and hasattr(state[k], "shape") and tuple(state[k].shape) != expected[k]]
    found = {"missing": missing, "unexpected": unexpected, "of another shape": reshaped}
    return "; ".join(f"{len(keys)} tensor{'s' if len(keys) > 1 else ''} {what} (first: {keys[0]})"
                     for what, keys in found.items() if keys)


def check_net_fits(build: Any, spec: Any, state: Mapping[str, Any], path: str | Path, name: str) -> None:
    """Before `build(spec)` allocates anything: its parameter count is under the budget and `state`
    holds exactly its names and shapes (a spec edited to describe a bigger net is refused here)."""
    shapes = meta_state_shapes(build, spec)
    count = sum(int(torch.Size(s).numel()) for s in shapes.values())
    check_budget(count, path, f"the {name} net its spec describes")
    mismatch = shape_mismatch(shapes, state)
    if mismatch:
        raise CheckpointError(f"{path}: the {name} weights do not fit the net its spec describes: {mismatch}")
