"""Answers in the form asked (issue 14): one blank per form, and every exact loss one simplified logarithm."""

from __future__ import annotations

import re
from fractions import Fraction

import pytest
import sympy
from sympy import ImmutableMatrix

from generator.core.forward import one_log, one_log_value
from generator.core.registry import make_problem, problem_types
from generator.documents.sheet import part_letter, problem_seed

from .conftest import key_json
from .draws import by_type, draws

SEEDS = 100  # per type, every option set taking its turn
MORE_SEEDS = {"cross_entropy": 600}  # a mean over 2 or 3 positions gives ln(36)/2 = ln 6 in about 1 draw in 16
LOSS_TYPES = ("cross_entropy", "tiny_transformer", "training_step", "example2", "example3", "example4")
ONE_BLANK_TWO_FORMS = re.compile(r"exactly,? and to 4 (decimal )?places")


def _problems(type_name: str, seeds: int):
    """The contract's first draws of the type (every option set taking its turn), shared with its other tests."""
    return draws(type_name, seeds)


def _entries(value) -> list:
    return list(value) if isinstance(value, ImmutableMatrix) else [value]


def unsimplified(value: sympy.Expr) -> str:
    """Why an exact value with a logarithm is not one simplified logarithm ln(r)/k, or '' when it is: a sum of
    logarithms (ln(5/2)/2 + ln(10)/2), a multiple (2 ln 6), a minus (−ln(2/5)), or a root left in (ln(25)/2)."""
    if value.is_Add:
        return "a sum of logarithms"
    coefficient, log = value.as_independent(sympy.log, as_Add=False)
    if log.func != sympy.log or not log.args[0].is_Rational or not coefficient.is_Rational:
        return "not a rational multiple of one logarithm of a fraction"
    if coefficient.p != 1:
        return f"a logarithm times {coefficient.p}"
    ratio, divisor = sympy.Rational(log.args[0]), int(coefficient.q)
    root, smaller = one_log(Fraction(int(ratio.p), int(ratio.q)), divisor)
    if smaller != divisor:
        return f"ln({ratio})/{divisor} is ln({root})/{smaller}"
    return ""


def test_the_check_knows_the_unsimplified_forms():
    half, log = sympy.Rational(1, 2), sympy.log
    assert unsimplified(log(sympy.Rational(5, 2)) * half + log(10) * half) == "a sum of logarithms"
    assert unsimplified(2 * log(6)) == "a logarithm times 2"
    assert unsimplified(-log(sympy.Rational(2, 5))) == "a logarithm times -1"
    assert unsimplified(log(25) / 2) == "ln(25)/2 is ln(5)/1"
    for simple in (log(20) / 3, log(5), log(sympy.Rational(5, 2)), log(sympy.Rational(121, 21)) / 3, log(8) / 2):
        assert unsimplified(simple) == "", simple
    assert one_log_value(Fraction(25), 2) == log(5) and one_log_value(Fraction(16), 4) == log(2)
    assert one_log_value(Fraction(36), 4) == log(6) / 2 and one_log_value(Fraction(9, 4), 2) == log(sympy.Rational(3, 2))


@pytest.mark.parametrize("type_name", by_type(LOSS_TYPES))
def test_every_exact_loss_is_one_simplified_logarithm(type_name):
    """ln(20)/3, not ln(4/3)/3 + ln 3/3 + ln 5/3; ln 5, not ln(5/2)/2 + ln(10)/2 nor ln(25)/2; ln(5/2), not −ln(2/5)."""
    logs = 0
    for options, problem in _problems(type_name, MORE_SEEDS.get(type_name, SEEDS)):
        for i, part in enumerate(problem.parts):
            for answer in part.answers:
                for value in _entries(answer.value):
                    if isinstance(value, sympy.Basic) and value.has(sympy.log):
                        logs += 1
                        why = unsimplified(value)
                        assert not why, (type_name, options, problem.seed, part_letter(i), answer.name, value, why)
    assert logs >= SEEDS  # every draw has its losses


@pytest.mark.parametrize("type_name", sorted(problem_types()))
def test_every_part_asks_one_form(type_name):
    """A 4-place part asks for nothing exactly, an exact part for no decimal places: one blank per form asked."""
    for options in problem_types()[type_name].option_sets():
        problem = make_problem(type_name, options, problem_seed(1, 1, type_name))
        for i, part in enumerate(problem.parts):
            prompt, where = str(part.prompt), (type_name, options, part_letter(i))
            assert not ONE_BLANK_TWO_FORMS.search(prompt), where + (prompt,)
            if part.decimals:
                assert "exact" not in prompt, where + (prompt,)
            else:
                assert not re.search(r"\b4 (decimal )?places\b", prompt), where + (prompt,)


@pytest.mark.parametrize("spec", ["tiny_transformer", "tiny_transformer:reduction=sum", "training_step",
                                  "training_step:reduction=sum,forward=compute", "cross_entropy:positions=3",
                                  "example2", "example4"])
def test_the_key_has_an_exact_loss_blank_and_a_4_place_one(spec):
    """The JSON key: L exactly (no table value) and L to 4 places (the table's value and the accepted interval), the
    same exact value in both."""
    for seed in range(3):
        blanks = key_json([spec], seed)["problems"][0]["blanks"]
        losses = [b for b in blanks if b["name"] in ("L", "L_exact", "L0", "L0_exact")]
        exact = [b for b in losses if "table_value" not in b]
        places = [b for b in losses if "table_value" in b]
        assert len(exact) == len(places) == 1, (spec, seed, losses)
        assert exact[0]["value"] == places[0]["value"] and exact[0]["part"] < places[0]["part"], (spec, seed, losses)
        assert not unsimplified(sympy.sympify(exact[0]["value"], rational=True)), (spec, seed, exact[0])
