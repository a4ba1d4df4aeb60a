"""Clean numbers by construction: every type keeps its declared bounds and never draws a degenerate problem."""

from __future__ import annotations

import pytest
from sympy import Basic, Float, ImmutableMatrix, Rational, oo

from generator.core.problem import Bounds
from generator.core.registry import make_problem, problem_types

from .draws import SEEDS_PER_TYPE, by_type, draws
from .printed_tables import unprinted_lookups


@pytest.mark.slow  # 1,000 draws of every option set of a type: up to a minute for the chains
@pytest.mark.parametrize("type_name", by_type(sorted(problem_types())))
def test_contract_holds_over_1000_seeds(type_name):
    kind = problem_types()[type_name]
    # Every option set gets its share of the seeds; the oracles and slip tests check the same draws (tests/draws.py).
    for seed, (options, problem) in enumerate(draws(type_name, SEEDS_PER_TYPE)):
        assert not kind.contract.violations(problem), (seed, options, kind.contract.violations(problem))
        assert not kind.contract.degeneracies(problem), (seed, options, kind.contract.degeneracies(problem))
        # No blank a student cannot compute from the sheet: each table value the key used is a printed entry.
        assert not unprinted_lookups(problem), (seed, options, unprinted_lookups(problem))
        for part in problem.parts:
            if part.decimals:  # every 4-place answer says how the sheet's method works it
                missing = [a.name for a in part.answers if a.reading is None and _irrational(a.value)]
                assert not missing, (seed, options, missing)
        # Exact first: every value is an exact sympy number, never a float; irrational only where
        # the contract allows it (e^k, ln k), and −∞ only as a mask.
        for which in ("given", "intermediate", "answer"):
            for value in problem.values(which):
                assert not value.has(Float), (seed, which, value)
                if value == -oo:
                    assert problem.options.get("mask") == "causal" or kind.contract.always_masked, (seed, which)
                    continue
                assert value.is_number and value.is_finite, (seed, which, value)
                assert value.is_Rational or not kind.contract.rational_only, (seed, which, value)


def _irrational(value) -> bool:
    """An exact value with an entry that is no fraction (and no masked −∞): its 4 places come from tables."""
    if not isinstance(value, Basic):
        return False  # a choice
    entries = value if isinstance(value, ImmutableMatrix) else [value]
    return any(not x.is_Rational and x != -oo for x in entries)


@pytest.mark.parametrize("type_name", sorted(problem_types()))
def test_every_type_declares_forbidden_draws(type_name):
    assert problem_types()[type_name].contract.forbidden


def test_bounds_report_a_value_out_of_range():
    bounds = Bounds(numerator=5, denominator=2, magnitude=Rational(5))
    assert bounds.violations([Rational(1, 2), Rational(-5)]) == []
    assert len(bounds.violations([Rational(7, 3)])) == 2  # numerator and denominator both too big


def test_inverse_never_singular_and_shows_both_mistakes():
    """Independent of the module's own predicates: checked with plain arithmetic."""
    for seed in range(300):
        problem = make_problem("inverse", {}, f"inv/{seed}")
        (a, b), (c, d) = problem.given_value("A").tolist()
        assert a * d - b * c != 0
        assert a != d and b != c and 0 not in (a, b, c, d)


def test_gradient_transpose_mistakes_are_visible():
    for seed in range(300):
        problem = make_problem("matmul_gradient", {}, f"grad/{seed}")
        a, b, dc = (problem.given_value(n) for n in ("A", "B", "dC"))
        assert dc * b != dc * b.T and a * dc != a.T * dc
        assert problem.parts[0].answers[0].value != ImmutableMatrix.zeros(2, 2)


def test_a_pencil_only_problem_never_needs_an_irrational_the_sheet_does_not_print():
    """Issue 3's calculator rule: a decimal of ln k or e^k is asked for only when its table is printed."""
    from sympy import Integer, exp, expand_log, log, primefactors

    from generator.core.forward import EXP_TABLE_KS, LN_TABLE_KS

    for name, kind in problem_types().items():
        for n, options in enumerate(kind.option_sets()):
            for seed in range(5):
                problem = make_problem(name, options, f"pencil/{seed}/{n}")
                if problem.needs_calculator:
                    continue
                for value in problem.values("answer"):
                    if value.is_Rational or value == -oo:
                        continue
                    expanded = expand_log(value, force=True)
                    for atom in expanded.atoms(log):
                        # ln 20 = 2 ln 2 + ln 5: a logarithm is worked from the table through its primes.
                        argument = atom.args[0]
                        assert "ln_table" in problem.facts and argument.is_Rational, (name, value)
                        primes = primefactors(argument.p) + primefactors(argument.q)
                        assert all(p in LN_TABLE_KS for p in primes), (name, value)
                    for atom in expanded.atoms(exp):
                        assert "e_table" in problem.facts and atom.args[0] in map(Integer, EXP_TABLE_KS), (name, value)
                    assert not expanded.atoms(log, exp) == set() or expanded.is_Rational, (name, options, value)
