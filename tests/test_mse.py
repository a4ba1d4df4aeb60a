"""mse: the key is the mean (or sum) of squared errors and its gradient worked by hand; no classic slip (the 2, the 1/N,
the sign of ŷ − y, the square, the ½ convention) gives a right answer on any draw; follow-through and the named
mean-for-sum slip. Checked with plain Fractions, apart from the type's own predicates."""

from __future__ import annotations

from fractions import Fraction

import pytest

from generator.marking import mistakes
from generator.marking.marker import FOLLOW_THROUGH, RIGHT

from .test_marking import _key, _mark, _note, _perfect, _set, _text
from .test_slips import _problems


def _entries(m) -> list[Fraction]:
    return [Fraction(int(v.p), int(v.q)) for v in m]


def test_the_key_is_the_loss_worked_by_hand():
    for options, p in _problems("mse", 200):
        y_hat, y = _entries(p.given_value("y_hat")), _entries(p.given_value("y"))
        n = len(y)
        assert n == int(options["examples"]) * int(options["outputs"])
        e = [a - b for a, b in zip(y_hat, y)]
        scale = Fraction(1, n) if options["reduction"] == "mean" else Fraction(1)
        assert _entries(p.answer("e")) == e
        assert p.answer("L") == scale * sum(v * v for v in e)
        assert _entries(p.answer("dy_hat")) == [2 * scale * v for v in e]
        assert p.answer("L_half") == sum(v * v for v in e) / 2 and _entries(p.answer("dy_hat_half")) == e
        assert p.answer("k") == 2 * scale


def test_no_classic_slip_gives_a_right_answer():
    for options, p in _problems("mse"):
        e = _entries(p.answer("e"))
        n = len(e)
        mean = options["reduction"] == "mean"
        scale = Fraction(1, n) if mean else Fraction(1)
        grad = _entries(p.answer("dy_hat"))
        slips = [[scale * v for v in e],  # the 2 forgotten
                 [2 * v for v in e] if mean else [2 * v / n for v in e],  # the 1/N forgotten (or added)
                 [-g for g in grad],  # y − ŷ for ŷ − y
                 e]  # the ½ convention's gradient
        if mean and int(options["outputs"]) > 1:
            slips.append([2 * v / int(options["examples"]) for v in e])  # the mean over the examples only
        for slipped in slips:
            assert all(a != b for a, b in zip(slipped, grad)), (options, e)
        loss = Fraction(int(p.answer("L").p), int(p.answer("L").q))
        squares = sum(v * v for v in e)
        assert loss not in (scale * sum(abs(v) for v in e), scale * sum(e), squares / 2,
                            squares if mean else squares / n), (options, e)
        if int(options["outputs"]) > 1 and mean:  # the mean over the examples only
            assert loss != squares / int(options["examples"])
        assert len(set(e)) > 1


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_follow_through_from_the_students_own_errors(reduction):
    key = _key(f"mse:reduction={reduction},outputs=2,examples=3", 3)
    q = key.problems[0].quantities
    e = [list(row) for row in q["e"].values]
    e[0][0] += 1  # a slip in one error
    n = 6
    scale = Fraction(1, n) if reduction == "mean" else Fraction(1)
    squares = sum(v * v for row in e for v in row)
    answers = _perfect(key)
    _set(answers, q["e"], tuple(map(tuple, e)))
    answers[q["L"].blanks[(0, 0)].label] = _text(scale * squares)
    _set(answers, q["dy_hat"], tuple(tuple(2 * scale * v for v in row) for row in e))
    answers[q["L_half"].blanks[(0, 0)].label] = _text(squares / 2)
    _set(answers, q["dy_hat_half"], tuple(map(tuple, e)))
    marks, _ = _mark(key, answers)
    for name in ("L", "dy_hat", "L_half", "dy_hat_half"):
        statuses = {marks[b.label].status for b in q[name].blanks.values()}
        assert FOLLOW_THROUGH in statuses and statuses <= {FOLLOW_THROUGH, RIGHT}, name


@pytest.mark.parametrize("reduction, slip", [("mean", mistakes.SUM_NOT_MEAN), ("sum", mistakes.MEAN_NOT_SUM)])
def test_the_sum_for_the_mean_is_named(reduction, slip):
    key = _key(f"mse:reduction={reduction}", 4)
    q = key.problems[0].quantities
    squares = sum(v * v for row in q["e"].values for v in row)
    answers = _perfect(key)
    answers[q["L"].blanks[(0, 0)].label] = _text(squares if reduction == "mean" else squares / 4)
    assert _note(key, answers, "L") == slip
