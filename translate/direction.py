"""Which way a model translates: "a_to_b" (generator g_ab) or "b_to_a" (generator g_ba)."""
from __future__ import annotations

from typing import Literal

Direction = Literal["a_to_b", "b_to_a"]
DIRECTIONS: tuple[Direction, ...] = ("a_to_b", "b_to_a")
_GENERATORS: dict[str, str] = {"a_to_b": "g_ab", "b_to_a": "g_ba"}


def generator_name(direction: str) -> str:
    """"a_to_b" -> "g_ab", "b_to_a" -> "g_ba"."""
    return _GENERATORS[direction]


def direction_of(generator: str) -> Direction | None:
    """"g_ab" -> "a_to_b", "g_ba" -> "b_to_a"; None for anything else (a reference net "G")."""
    for direction, name in _GENERATORS.items():
        if name == generator:
            return direction  # type: ignore[return-value]
    return None


def reverse(direction: str) -> Direction:
    return "b_to_a" if direction == "a_to_b" else "a_to_b"
