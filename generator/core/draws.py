"""Drawing small exact numbers for givens, by difficulty."""

from __future__ import annotations

from functools import lru_cache

from sympy import ImmutableMatrix, Rational

from generator.core.problem import matrix_rows
from generator.core.registry import Option
from generator.core.rng import Rng

DIFFICULTY = Option(
    "difficulty",
    ("easy", "medium", "hard"),
    "medium",
    "easy: integers from -3 to 3; medium: integers from -5 to 5; hard: halves from -5/2 to 5/2",
)

# Largest |entry| per difficulty, as the option's help text promises.
ENTRY_LIMIT = {"easy": Rational(3), "medium": Rational(5), "hard": Rational(5, 2)}
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


@lru_cache(maxsize=8192)
def drawn_matrix(rows: int, cols: int, entries: tuple) -> ImmutableMatrix:
    """ImmutableMatrix(rows, cols, entries), one object for the same entries: a class set draws the same small
    matrices again and again, and sympy takes about 50 µs to build one (8192 of them hold about 13 MB)."""
    return ImmutableMatrix(rows, cols, entries)


def matrix_of(rng: Rng, difficulty: str, rows: int, cols: int, nonzero: bool = False) -> ImmutableMatrix:
    """A rows×cols matrix of given numbers."""
    return drawn_matrix(rows, cols, tuple(entry(rng, difficulty, nonzero) for _ in range(rows * cols)))


# Transformer sheets multiply longer rows, so their entries stay smaller than the 2×2 core's.
SMALL_DIFFICULTY = Option(
    "difficulty",
    ("easy", "medium", "hard"),
    "medium",
    "easy: integers from 0 to 2; medium: integers from -2 to 2; hard: halves from -2 to 2",
)
SMALL_NUMERATOR = 4
SMALL_DENOMINATOR = 2


def small_entry(rng: Rng, difficulty: str, nonzero: bool = False) -> Rational:
    """One given number for a transformer sheet (never 0 when `nonzero`)."""
    while True:
        if difficulty == "easy":
            value = Rational(rng.integer(0, 2))
        elif difficulty == "medium":
            value = Rational(rng.integer(-2, 2))
        else:
            value = Rational(rng.integer(-4, 4), 2)
        if value != 0 or not nonzero:
            return value


def small_matrix(rng: Rng, difficulty: str, rows: int, cols: int, nonzero: bool = False) -> ImmutableMatrix:
    """A rows×cols matrix of small given numbers."""
    return drawn_matrix(rows, cols, tuple(small_entry(rng, difficulty, nonzero) for _ in range(rows * cols)))


def int_matrix(rng: Rng, rows: int, cols: int, low: int, high: int) -> ImmutableMatrix:
    """A rows×cols matrix of whole numbers in [low, high], drawn row by row."""
    return drawn_matrix(rows, cols, tuple(Rational(rng.integer(low, high)) for _ in range(rows * cols)))


def all_zero(value) -> bool:
    """Is every entry 0? (a gradient that would make its step trivial)"""
    return all(v == 0 for v in value)


def has_zero_row(value: ImmutableMatrix) -> bool:
    """True when some row is all zeros (it would make a step trivial)."""
    return any(all(x == 0 for x in row) for row in matrix_rows(value))  # rows read once per matrix, not row() each
