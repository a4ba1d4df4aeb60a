"""optimizer_race: the source's reference race, the sheet's 4-place method for Adam, and follow-through along a race."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from generator.marking.marker import FOLLOW_THROUGH, WRONG, Cell, mark_student
from generator.marking.markkey import key_from_data
from generator.problems.optimizer_race import SOURCE_GRADIENTS, _run

from .conftest import key_json


def test_the_source_race_ends_where_the_source_says():
    """θ₀ = 0.5 and the source's gradients: SGD 0.5050, momentum 0.5129083, Adam about 0.5497 after 5 steps."""
    run = _run(Fraction(1, 2), SOURCE_GRADIENTS)
    assert run["sgd"][-1] == Fraction(505, 1000)
    assert run["mom"][-1] == Fraction(5129083, 10**7)
    assert run["readings"][-1].rounded().route == Fraction(5497, 10000)
    full = Fraction(1, 2) - sum(run["step"], Fraction(0))
    assert abs(full - Fraction(5496854, 10**7)) < Fraction(1, 10**7)


def _marks(spec: str, seed: int, change) -> dict:
    key = key_from_data(key_json([spec], seed))
    answers = {b.label: b.text for b in key.blanks}
    change(key, answers)
    marked = mark_student(key, {label: Cell(text) for label, text in answers.items()}, "s1")
    return {m.blank.label: m.status for m in marked.marks}


def test_adam_from_the_rounded_or_the_full_value_is_right():
    """The sheet's route (each θ from the 4-place θ written before) and full precision are both accepted."""
    for seed in range(5):
        key = key_json(["optimizer_race"], seed)["problems"][0]
        for blank in key["blanks"]:
            if blank["name"].startswith("adam"):
                low, high = (Decimal(x) for x in blank["accepted"])
                assert low <= Decimal(blank["table_value"]) <= high
                assert low <= Decimal(blank["decimal"]) <= high


def test_follow_through_along_the_sgd_race():
    """A slip in θ^SGD₂: θ^SGD₃ worked from the student's own θ^SGD₂ earns follow-through."""
    def slip(key, answers):
        quantities = key.problems[0].quantities
        g3 = quantities["g3"].values[0]
        wrong2 = tuple(x + Fraction(1, 10) for x in quantities["sgd2"].values[0])
        for (i, j), blank in quantities["sgd2"].blanks.items():
            answers[blank.label] = str(wrong2[j])
        for (i, j), blank in quantities["sgd3"].blanks.items():
            answers[blank.label] = str(wrong2[j] - g3[j] / 100)

    statuses = _marks("optimizer_race", 3, slip)
    assert {s for label, s in statuses.items() if " sgd2[" in label} == {WRONG}
    assert {s for label, s in statuses.items() if " sgd3[" in label} == {FOLLOW_THROUGH}


EXACT_DECIMALS = ("sgd", "b", "mom", "m", "v")  # the statement: exact decimals, to be written in full


def _exact_decimal_blanks(key: dict) -> list[dict]:
    return [b for b in key["problems"][0]["blanks"] if b["name"].rstrip("0123456789") in EXACT_DECIMALS]


def test_the_key_boxes_the_exact_decimals_in_full():
    """The statement asks for m_t, v_t and the SGD and momentum values as exact decimals in full: the key's boxes print
    those decimals (v₅ = [0.00005090399355361 …]), never fractions, each the JSON key's exact value and its 'decimal'."""
    from sympy import Rational

    from generator.documents.render import terminating_decimal
    from generator.documents.sheet import render_key

    from .conftest import sheet_for
    for seed in (1,):
        sheet = sheet_for(["optimizer_race"], seed, calculator="basic")
        tex = render_key(sheet)
        boxes = [line for line in tex.splitlines() if line.startswith(r"$\boxed{")]
        decimal_boxes = [b for b in boxes if r"\hat" not in b and "Adam" not in b]
        assert len(decimal_boxes) == 5 * len(EXACT_DECIMALS)
        assert not any(r"\frac" in b for b in decimal_boxes)
        blanks = _exact_decimal_blanks(key_json(["optimizer_race"], seed))
        assert len(blanks) == 2 * 5 * len(EXACT_DECIMALS)
        for blank in blanks:
            exact = Fraction(blank["value"])  # the JSON key keeps exact strings
            assert Fraction(Decimal(blank["decimal"])) == exact
            printed = terminating_decimal(Rational(exact.numerator, exact.denominator))
            assert Fraction(Decimal(printed)) == exact and "e" not in printed
            assert f" {printed} " in tex


def test_the_first_source_values_print_as_the_audit_read_them():
    from generator.documents.render import terminating_decimal
    from sympy import Rational
    assert terminating_decimal(Rational(5090399355361, 10**17)) == "0.00005090399355361"
    assert terminating_decimal(Rational(-29549, 10**6)) == "-0.029549"
    assert terminating_decimal(Rational(-3)) == "-3" and terminating_decimal(Rational(0)) == "0"
    assert terminating_decimal(Rational(1, 8)) == "0.125" and terminating_decimal(Rational(12345, 100)) == "123.45"


def test_grading_sheet_and_a_given_part_print_the_decimals_too():
    """The grading sheet's answer for an exact-decimal blank, and a part the teacher prints as given, show decimals."""
    from sympy import Rational

    from generator.classes.classset import grading_table
    from generator.documents.render import terminating_decimal
    from generator.documents.sheet import render_worksheet

    from .conftest import sheet_for
    sheet = sheet_for(["optimizer_race"], 1, calculator="basic")
    rows = " ".join(str(row) for problem in grading_table(sheet, (10,)) for row in problem.rows)
    for blank in _exact_decimal_blanks(key_json(["optimizer_race"], 1)):
        exact = Fraction(blank["value"])
        assert f"{{\\boldmath${terminating_decimal(Rational(exact.numerator, exact.denominator))}$}}" in rows
    given = sheet_for(["optimizer_race:given=c"], 1, calculator="basic")
    text = render_worksheet(given)
    assert "m_{5} = \\begin{bmatrix} " in text and "v_{5} = \\begin{bmatrix} 0.0000" in text


def test_exact_decimal_is_refused_for_a_value_whose_decimal_does_not_end():
    import pytest
    from sympy import ImmutableMatrix, Rational

    from generator.core.problem import Quantity, Tex
    Quantity("x", Tex("x"), ImmutableMatrix([[Rational(1, 40), Rational(-3)]]), exact_decimal=True)
    with pytest.raises(ValueError, match="decimals end"):
        Quantity("x", Tex("x"), Rational(1, 3), exact_decimal=True)
