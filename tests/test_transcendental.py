"""The exact verdicts on e^k forms and logarithms agree with sympy's assumptions wherever they give one."""

from __future__ import annotations

import sympy
from sympy import E, Rational, exp, log

from generator.core.problem import matrix_rows
from generator.core.transcendental import irrational_and_finite
from generator.documents.presets import PRESETS, preset_problems
from generator.documents.sheet import SheetSpec, build


def _irrational_answers():
    """Every answer of the presets' keys (seeds 1-6) that is not a fraction: the forms the JSON key decides."""
    found = set()
    for name in PRESETS:
        title, calculator, problems = preset_problems(name)
        for seed in range(1, 7):
            for problem in build(SheetSpec(title=title, seed=seed, problems=problems, calculator=calculator)).problems:
                for part in problem.parts:
                    for answer in part.answers:
                        value = answer.value
                        items = ([x for row in matrix_rows(value) for x in row] if isinstance(value, sympy.ImmutableMatrix)
                                 else [value])
                        found.update(x for x in items if isinstance(x, sympy.Expr) and not isinstance(x, sympy.Rational))
    return found


def test_every_verdict_on_the_keys_values_agrees_with_sympy():
    """Where sympy decides, the same verdict; where it cannot (is_rational None, which the key wrote as not
    rational), the proof here says irrational: the key's flags are unchanged."""
    values = _irrational_answers()
    decided = sympy_undecided = 0
    for value in values:
        verdict = irrational_and_finite(value)
        if verdict is not None:
            decided += 1
            assert value.is_rational is not True and bool(value.is_rational) == (not verdict[0]), value
            assert bool(value.is_finite) == verdict[1], value
            sympy_undecided += value.is_rational is None
    undecided = [value for value in values if irrational_and_finite(value) is None]
    assert decided > 50 and not any(value.has(sympy.E, sympy.exp, sympy.log) for value in undecided), undecided
    assert decided > sympy_undecided  # and sympy decides most of them too: the comparison can fail


def test_forms_it_cannot_prove_are_left_to_sympy():
    t = sympy.Symbol("t")
    constant = (E**2 - 1) / (E - 1) - E  # = 1, a rational function that is constant: no verdict
    assert irrational_and_finite(constant) is None
    assert irrational_and_finite(log(Rational(1, 1), evaluate=False)) is None  # ln 1 = 0
    assert irrational_and_finite(exp(Rational(1, 2))) is None  # √e: not a rational function of e
    assert irrational_and_finite(sympy.sqrt(2)) is None
    assert irrational_and_finite(t + E) is None
    assert irrational_and_finite(1 / (E - Rational(11, 4)) + E) is None  # a pole at a point it works at


def test_what_it_proves():
    assert irrational_and_finite(exp(2) / (E + exp(2))) == (True, True)
    assert irrational_and_finite(log(4)) == (True, True)
    assert irrational_and_finite(log(Rational(3, 7))) == (True, True)
    assert irrational_and_finite(Rational(1, 2) * log(12)) == (True, True)
    assert irrational_and_finite(1 / (exp(-1) + 2)) == (True, True)
