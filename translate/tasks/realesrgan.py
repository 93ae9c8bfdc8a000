"""realesrgan: Real-ESRGAN's GAN stage (Wang et al. 2021) on pairs made with its second-order
degradations, started from a fidelity (Real-ESRNet) run (`--init-from`); converts like superres."""
from __future__ import annotations

from translate.tasks.superres import Superres


class Realesrgan(Superres):
    name = "realesrgan"
    description = "x4 blind super-resolution, Real-ESRGAN's stage 2: RRDBNet + 5-layer VGG19 + U-Net GAN (--init-from)"
