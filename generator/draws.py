"""Drawing small exact numbers for givens, by difficulty."""

from __future__ import annotations

from sympy import ImmutableMatrix, Rational

from .registry import Option
from .rng import Rng

DIFFICULTY = Option(
    "difficulty",
    ("easy", "medium", "hard"),
    "medium",
    "easy: integers from -3 to 3; medium: integers from -5 to 5; hard: halves from -5/2 to 5/2",
)

# Largest |numerator| and denominator a drawn entry can have, over every difficulty.
ENTRY_NUMERATOR = 5
ENTRY_DENOMINATOR = 2


def entry(rng: Rng, difficulty: str, nonzero: bool = False) -> Rational:
    """One given number at this difficulty (never 0 when `nonzero`)."""
    while True:
        if difficulty == "easy":
            value = Rational(rng.integer(-3, 3))
        elif difficulty == "medium":
            value = Rational(rng.integer(-5, 5))
        else:
            value = Rational(rng.integer(-5, 5), 2)
        if value != 0 or not nonzero:
            return value


def matrix_of(rng: Rng, difficulty: str, rows: int, cols: int, nonzero: bool = False) -> ImmutableMatrix:
    """A rows×cols matrix of given numbers."""
    return ImmutableMatrix(rows, cols, [entry(rng, difficulty, nonzero) for _ in range(rows * cols)])
