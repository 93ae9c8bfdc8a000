"""Checkpoints written by translate 0.2 still load and convert to the same pixels."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from translate import Translator
from translate.data.images import read_image

FIXTURES = Path(__file__).parent / "fixtures" / "legacy"


@pytest.mark.parametrize("run, direction", [("pix2pix", None), ("cyclegan", "a_to_b"), ("cyclegan", "b_to_a"),
                                            ("esrgan", None)])
def test_legacy_checkpoint_converts_to_the_same_pixels(run: str, direction: str | None) -> None:
    translator = Translator.load(FIXTURES / f"{run}.pt", device="cpu", precision="fp32", direction=direction)
    expected = read_image(FIXTURES / f"{run}{'_' + direction if direction else ''}.expected.png")
    result = translator(read_image(FIXTURES / "input.png"))
    assert result.shape == expected.shape
    assert np.array_equal(result, expected)
