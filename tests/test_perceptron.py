"""perceptron: the rule replayed in plain fractions; an update always happens and no classic slip gives the key."""

from __future__ import annotations

from fractions import Fraction

from .test_slips import _problems

SEEDS = 1000


def _f(v) -> Fraction:
    return Fraction(int(v.p), int(v.q))


def _replay(w, b, points, labels, eta, sign=1, bias=True):
    rows = []
    for x, y in zip(points, labels):
        z = w[0] * x[0] + w[1] * x[1] + (b if bias else 0)
        yhat = int(z > 0)
        step = sign * eta * (y - yhat)
        w = [w[0] + step * x[0], w[1] + step * x[1]]
        b = b + step if bias else b
        rows.append((z, yhat, w, b))
    return rows


def test_the_rule_replayed_and_its_slips_show():
    for options, p in _problems("perceptron", SEEDS):
        eta = Fraction(options["eta"])
        w, b = [_f(v) for v in p.given_value("w")], _f(p.given_value("b"))
        if options["steps"] == "1":
            points, labels = [[_f(v) for v in p.given_value("x")]], [_f(p.given_value("y"))]
            key = [(_f(p.answer("z")), _f(p.answer("yhat")), [_f(v) for v in p.answer("w_new")], _f(p.answer("b_new")))]
        else:
            points = [[_f(v) for v in row] for row in p.given_value("X").tolist()]
            labels = [_f(v) for v in p.given_value("y")]
            key = [(_f(r[0]), _f(r[1]), [_f(r[2]), _f(r[3])], _f(r[4])) for r in p.answer("table").tolist()]
        rows = _replay(w, b, points, labels, eta)
        assert rows == key, options
        assert all(z != 0 for z, *_ in rows), options  # the convention at 0 is stated, never needed
        updates = sum(yhat != y for (_, yhat, _, _), y in zip(rows, labels))
        assert updates >= 1 and (options["steps"] == "1" or updates in (2, 3)), options
        slipped = _replay(w, b, points, labels, eta, sign=-1)
        assert slipped[-1][2] != rows[-1][2] and slipped[-1][3] != rows[-1][3], options
        if options["steps"] == "1":
            assert all(v != 0 for v in points[0]) and b != 0
            x = points[0]
            assert _f(p.answer("z_new")) == rows[0][2][0] * x[0] + rows[0][2][1] * x[1] + rows[0][3]
        else:
            unbiased = [r[1] for r in _replay(w, b, points, labels, eta, bias=False)]
            assert unbiased != [r[1] for r in rows], options


def test_the_prediction_does_not_follow_from_the_sign_of_b():
    """b is never drawn to flip the prediction every time: then ŷ would be 1 exactly when b > 0."""
    cases = set()
    for options, p in _problems("perceptron", SEEDS):
        if options["steps"] == "1":
            cases.add((_f(p.given_value("b")) > 0, int(p.answer("yhat"))))
    assert cases == {(True, 0), (True, 1), (False, 0), (False, 1)}


def test_the_update_follows_from_the_students_own_prediction():
    """A score with the wrong sign gives ŷ = y: no update, so w' = w and b' = b from the student's own ŷ earn
    follow-through; the update with the key's ŷ but the sign slipped (w − η(y − ŷ)x) earns none, and is named. (The
    variant has ŷ = 0 in the key, so the student's ŷ is 1: a prediction of 0 carried forward gets no credit, as any
    value 0.)"""
    from generator.marking.marker import FOLLOW_THROUGH, RIGHT, WRONG
    from generator.marking.mistakes import WRONG_RULE_SIGN

    from .test_marking import _key, _mark, _perfect, _set, _text

    for spec in ("perceptron", "perceptron:eta=1/2"):
        key = _key(spec, 2)
        q = key.problems[0].quantities
        (w,), ((b,),), (x,), ((y,),), ((z,),), ((yhat,),) = (q[n].values for n in ("w", "b", "x", "y", "z", "yhat"))
        eta = q["eta"].values[0][0]
        assert yhat == 0 and y == 1 and w[0] != w[1]  # the variant this test is about
        answers = _perfect(key)
        answers[q["z"].blanks[(0, 0)].label] = _text(-z)
        answers[q["yhat"].blanks[(0, 0)].label] = _text(y)  # what the wrong score gives: the example looks right
        _set(answers, q["w_new"], (tuple(w),))
        answers[q["b_new"].blanks[(0, 0)].label] = _text(b)
        marks, _ = _mark(key, answers)
        assert marks[q["yhat"].blanks[(0, 0)].label].status == FOLLOW_THROUGH, spec
        for name in ("w_new", "b_new"):
            statuses = {marks[blank.label].status for blank in q[name].blanks.values()}
            assert FOLLOW_THROUGH in statuses and statuses <= {FOLLOW_THROUGH, RIGHT}, (spec, name, statuses)
        answers = _perfect(key)
        _set(answers, q["w_new"], (tuple(wk - eta * (y - yhat) * xk for wk, xk in zip(w, x)),))
        answers[q["b_new"].blanks[(0, 0)].label] = _text(b - eta * (y - yhat))
        marks, _ = _mark(key, answers)
        for name in ("w_new", "b_new"):
            assert {marks[blank.label].status for blank in q[name].blanks.values()} == {WRONG}, (spec, name)
            assert {marks[blank.label].note for blank in q[name].blanks.values()} == {WRONG_RULE_SIGN}, (spec, name)
