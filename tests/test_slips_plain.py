"""hidden_product_slips on plain Fractions gives what sympy's matrix arithmetic gives, name for name."""

from __future__ import annotations

import random

import pytest
import sympy
from sympy import ImmutableMatrix, Rational

from generator.core import slips

SHAPES = [(1, 1), (1, 2), (2, 1), (2, 2), (2, 3), (3, 2), (3, 3), (1, 3), (3, 1)]


def _sympy_hidden(a, b, answer=None):
    """The sympy path of hidden_product_slips (the plain path turned off)."""
    original = slips._plain_hidden
    slips._plain_hidden = lambda *args: None
    try:
        return slips.hidden_product_slips(a, b, answer)
    finally:
        slips._plain_hidden = original


def _matrix(rng: random.Random, rows: int, cols: int, values) -> ImmutableMatrix:
    return ImmutableMatrix(rows, cols, [rng.choice(values) for _ in range(rows * cols)])


@pytest.mark.parametrize("seed", range(6))
def test_plain_hidden_slips_match_sympy(seed):
    rng = random.Random(seed)
    # Few values, so that slips that give the right answer (symmetric factors, equal entries) are common.
    values = [0, 1, -1, 2, Rational(1, 2), Rational(-3, 4)]
    found = set()
    for _ in range(400):
        a_shape = rng.choice(SHAPES)
        b_shape = (a_shape[1], rng.choice([1, 2, 3]))
        a = _matrix(rng, *a_shape, values[:rng.choice([2, 3, 6])])
        b = _matrix(rng, *b_shape, values[:rng.choice([2, 3, 6])])
        if a_shape[0] == a_shape[1] and rng.random() < 0.2:
            b = a  # commutes: B·A is hidden
        answer = None
        if rng.random() < 0.5:
            extra = _matrix(rng, a.rows, b.cols, values[:rng.choice([1, 3])])
            answer = a * b + extra
        want = _sympy_hidden(a, b, answer)
        assert slips._plain_hidden(a, b, answer) == want
        assert slips.hidden_product_slips(a, b, answer) == want
        found.update(want)
    assert found == {"A·Bᵀ", "Aᵀ·B", "B·A", "(A·B)ᵀ"}  # every slip was hidden somewhere: the cases were met


def test_entries_that_are_no_rationals_are_left_to_sympy():
    a = ImmutableMatrix([[1, -sympy.oo], [0, 1]])
    b = ImmutableMatrix([[sympy.E, 0], [0, 1]])
    assert slips._plain_hidden(a, b, None) is None and slips._plain_hidden(b, b, None) is None
    assert slips.hidden_product_slips(b, ImmutableMatrix([[1, 0], [0, 1]])) == \
        _sympy_hidden(b, ImmutableMatrix([[1, 0], [0, 1]]))
