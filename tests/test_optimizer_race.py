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
