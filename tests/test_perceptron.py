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


def test_a_slip_in_the_pass_is_carried_down_the_table():
    """steps=4: a score written with the wrong sign at one step; the prediction from it, the update from that
    prediction and every later row worked from the student's own weights earn follow-through. A later row whose update
    has its sign slipped stays wrong."""
    from generator.marking.marker import FOLLOW_THROUGH, RIGHT, WRONG

    from .test_marking import _key, _mark, _perfect, _set

    for spec in ("perceptron:steps=4", "perceptron:steps=4,eta=1/2,data=or"):
        key = _key(spec, 2)
        q = key.problems[0].quantities
        w, (b,) = list(q["w"].values[0]), q["b"].values[0]
        points, labels, eta = q["X"].values, [row[0] for row in q["y"].values], q["eta"].values[0][0]
        slip = 1  # the second step's score: rows 1 to 3 change
        table = []
        for t, (x, y) in enumerate(zip(points, labels)):
            z = w[0] * x[0] + w[1] * x[1] + b
            z = -z if t == slip else z
            yhat = Fraction(int(z > 0))
            w = [w[0] + eta * (y - yhat) * x[0], w[1] + eta * (y - yhat) * x[1]]
            b = b + eta * (y - yhat)
            table.append((z, yhat, w[0], w[1], b))
        key_table = q["table"].values
        assert table[slip][1] != key_table[slip][1]  # the slip flips that step's prediction
        answers = _perfect(key)
        _set(answers, q["table"], table)
        marks, _ = _mark(key, answers)
        cells = {index: marks[blank.label].status for index, blank in q["table"].blanks.items()}
        assert cells[(slip, 0)] == WRONG, spec
        carried = {status for (i, j), status in cells.items() if (i, j) != (slip, 0)}
        assert carried <= {FOLLOW_THROUGH, RIGHT} and FOLLOW_THROUGH in carried, (spec, cells)
        assert {cells[(3, j)] for j in range(5)} & {FOLLOW_THROUGH}, (spec, cells)  # carried to the last row

        last = list(table[3])
        step = eta * (labels[3] - last[1])
        if step:  # the last step updates: subtract it instead
            last[2:] = [table[2][2] - step * points[3][0], table[2][3] - step * points[3][1], table[2][4] - step]
        else:  # no update at the last step: make one anyway
            last[2:] = [table[2][2] + eta * points[3][0], table[2][3] + eta * points[3][1], table[2][4] + eta]
        _set(answers, q["table"], table[:3] + [tuple(last)])
        marks, _ = _mark(key, answers)
        statuses = [marks[q["table"].blanks[(3, j)].label].status for j in (2, 3, 4)]
        # A weight whose input is 0 does not move either way; the bias always does.
        assert FOLLOW_THROUGH not in statuses and statuses[-1] == WRONG, (spec, statuses)
