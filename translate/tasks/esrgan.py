"""esrgan: ESRGAN's perceptual/relativistic-GAN stage (Wang et al. 2018) on the superres task's
pairs, started from a fidelity run (`--init-from`); converts and evaluates like superres."""
from __future__ import annotations

from translate.tasks.superres import Superres


class Esrgan(Superres):
    name = "esrgan"
    description = "x4 super-resolution, ESRGAN's stage 2: RRDBNet + VGG19 conv5_4 + relativistic GAN (--init-from)"
