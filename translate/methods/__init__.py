"""Training methods: each owns its nets and loss weights and returns named losses."""
from __future__ import annotations

from translate.methods.cut import CUT
from translate.methods.cyclegan import CycleGAN
from translate.methods.pix2pix import Pix2Pix

# FastCUT is CUT with other defaults (config.default_config), so both names build the same class.
METHODS = {"pix2pix": Pix2Pix, "cyclegan": CycleGAN, "cut": CUT, "fastcut": CUT}
