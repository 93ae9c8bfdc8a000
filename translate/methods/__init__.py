"""Training methods: one module each (its settings, defaults, CLI name, nets, losses, datasets),
registered once here. The config schema, `train`'s method choices, help and named flags all come
from this registry; adding a method is one module and one entry below."""
from __future__ import annotations

from translate.methods.cut import CUT_ENTRY, FASTCUT
from translate.methods.cyclegan import CYCLEGAN
from translate.methods.entry import Flag, MethodEntry
from translate.methods.pix2pix import PIX2PIX

__all__ = ["METHODS", "Flag", "MethodEntry"]

# FastCUT is CUT with other defaults: the same class and settings under its own name.
METHODS: dict[str, MethodEntry] = {"pix2pix": PIX2PIX, "cyclegan": CYCLEGAN, "cut": CUT_ENTRY, "fastcut": FASTCUT}
