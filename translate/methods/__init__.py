"""Training methods: each owns its nets and loss weights and returns named losses."""
from __future__ import annotations

from translate.methods.cyclegan import CycleGAN
from translate.methods.pix2pix import Pix2Pix

METHODS = {"pix2pix": Pix2Pix, "cyclegan": CycleGAN}
