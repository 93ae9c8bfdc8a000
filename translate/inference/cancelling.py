"""Cancellation inside a net pass: a whole-image pass (the instance-norm statistics pass, or a big
image run whole) is one call that can take many seconds, so checks between passes and tiles are
not enough. Every layer checks the cancel token of the thread running it before it starts, so an
abandoned request stops within one layer's time.

The token is per thread (`watching`), so one shared net serves several requests at once and each
stops only for its own client.
"""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from torch import nn

from translate.errors import Cancelled

_current = threading.local()
_INSTALLED = "_translate_cancel_hooks"


def _check(module: nn.Module, inputs: object) -> None:
    cancel = getattr(_current, "cancel", None)
    if cancel is not None and cancel.is_set():
        raise Cancelled("translation cancelled inside a net pass")


def install_cancel_checks(net: nn.Module) -> nn.Module:
    """Give every layer of `net` a check of the running thread's cancel token (once per net)."""
    if not getattr(net, _INSTALLED, False):
        for module in net.modules():
            module.register_forward_pre_hook(_check)
        setattr(net, _INSTALLED, True)
    return net


@contextlib.contextmanager
def watching(cancel: threading.Event | None) -> Iterator[None]:
    """Layers run on this thread inside the block stop once `cancel` is set (None: never)."""
    previous = getattr(_current, "cancel", None)
    _current.cancel = cancel if cancel is not None else previous
    try:
        yield
    finally:
        _current.cancel = previous
