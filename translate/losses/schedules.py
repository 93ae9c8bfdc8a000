"""Step schedules of loss terms: a weight ramped in (colorization's GAN term) and a strength annealed
away (instance noise). Pure functions of the optimisation step, so a resumed run continues them exactly."""
from __future__ import annotations


def ramp_in(step: int, steps: int) -> float:
    """0 at step 0, rising linearly to 1 at `steps` and 1 after it; `steps` 0 means 1 from the start."""
    if steps <= 0:
        return 1.0
    return min(1.0, max(0, step) / steps)


def anneal(step: int, steps: int) -> float:
    """1 at step 0, falling linearly to 0 at `steps` and 0 after it (`steps` 0: 0 throughout)."""
    return 1.0 - ramp_in(step, steps) if steps > 0 else 0.0
