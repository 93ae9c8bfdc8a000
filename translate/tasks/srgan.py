"""srgan: SRGAN's perceptual/adversarial stage (Ledig et al. 2017) on the superres task's pairs,
started from a fidelity run (`--init-from`); converts and evaluates like superres."""
from __future__ import annotations

from translate.tasks.superres import Superres


class Srgan(Superres):
    name = "srgan"
    description = "x4 super-resolution, SRGAN's stage 2: SRResNet + VGG54 content loss + GAN (--init-from a fidelity run)"
