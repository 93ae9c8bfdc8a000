"""translate: image-to-image translation with GANs (pix2pix, CycleGAN, CUT, SRGAN/ESRGAN/Real-ESRGAN) and its tasks."""
from __future__ import annotations

__version__ = "0.3.0"

__all__ = ["Translator", "__version__"]


def __getattr__(name: str):
    # Lazy so `import translate` stays cheap for the CLI's --help and for plugins.
    if name == "Translator":
        from translate.inference.translator import Translator

        return Translator
    raise AttributeError(f"module 'translate' has no attribute {name!r}")
