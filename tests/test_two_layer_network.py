"""two_layer_network: draws that teach (one hidden unit cut in most draws, none in some; every classic slip shows),
the choice of the zero gradients true to the numbers, and follow-through down the backward pass. Checked with plain
Fractions, apart from the type's own predicates."""

from __future__ import annotations

from collections import Counter
from fractions import Fraction

from generator.marking.marker import FOLLOW_THROUGH, RIGHT, WRONG

from .test_marking import _key, _mark, _perfect, _set, _statuses, _text
from .test_slips import _problems


def _f(v) -> Fraction:
    return Fraction(int(v.p), int(v.q))


def _row(m) -> list[Fraction]:
    return [_f(v) for v in m]


def _relu(row):
    return [max(v, Fraction(0)) for v in row]


def test_one_unit_is_cut_in_most_draws_none_in_some_and_never_a_zero():
    cases, per_set, units = Counter(), Counter(), Counter()
    for options, p in _problems("two_layer_network"):
        z = _row(p.answer("z"))
        assert 0 not in z
        cut = [j for j, v in enumerate(z) if v < 0]
        assert len(cut) <= 1
        key = tuple(sorted(options.items()))
        cases[(key, len(cut))] += 1
        per_set[key] += 1
        if cut:
            units[(options["hidden"], cut[0])] += 1
    for key, total in per_set.items():
        assert cases[(key, 1)] >= 0.6 * total and cases[(key, 0)] >= 0.1 * total, (key, cases)
    for width in ("2", "3"):  # the cut unit is drawn: no fixed answer to the choice
        assert all(units[(width, j)] >= 40 for j in range(int(width))), units


def test_the_key_is_the_network_worked_by_hand():
    for options, p in _problems("two_layer_network", 200):
        x, b1, w2 = (_row(p.given_value(n)) for n in ("x", "b1", "W2"))
        b2, t = (_f(p.given_value(n)) for n in ("b2", "t"))  # numbers, as the sheet prints them
        w1 = [_row(p.given_value("W1").row(i)) for i in range(len(x))]
        z = [sum(x[i] * w1[i][j] for i in range(len(x))) + b1[j] for j in range(len(b1))]
        h = _relu(z)
        out = sum(a * b for a, b in zip(h, w2)) + b2
        error = out - t
        assert (_row(p.answer("z")), _row(p.answer("h")), _f(p.answer("out"))) == (z, h, out)
        assert _f(p.answer("L")) == error * error / 2 and _f(p.answer("dout")) == error
        dh = [error * w for w in w2]
        dz = [g if v > 0 else Fraction(0) for g, v in zip(dh, z)]
        assert _row(p.answer("dW2")) == [v * error for v in h] and _f(p.answer("db2")) == error
        assert _row(p.answer("dh")) == dh and _row(p.answer("dz")) == dz == _row(p.answer("db1"))
        assert [_row(p.answer("dW1").row(i)) for i in range(len(x))] == [[xi * g for g in dz] for xi in x]
        cut = [j for j, v in enumerate(z) if v < 0]
        assert p.answer("zero_unit").value == (str(cut[0]) if cut else "none")
        assert p.answer("why").value == ("A" if cut else "C")


def test_every_classic_slip_shows():
    for options, p in _problems("two_layer_network"):
        x, b1, w2 = (_row(p.given_value(n)) for n in ("x", "b1", "W2"))
        error, loss = _f(p.answer("dout")), _f(p.answer("L"))
        # The loss: the square or the ½ forgotten; the error's sign or the ½'s cancelling in ∂L/∂out.
        assert loss not in (abs(error) / 2, error / 2, error * error)
        assert error not in (-error, 2 * error)
        # A forgotten bias shows in every entry of z; no weight of W₂ and no input is 0.
        assert all(b != 0 for b in b1) and 0 not in w2 and 0 not in x
        # ReLU of the gradient instead of its mask; and ∂L/∂h, which is never 0 (the gradient reaches every unit).
        dh, dz = _row(p.answer("dh")), _row(p.answer("dz"))
        assert _relu(dh) != dz and 0 not in dh
        # ∂L/∂W₁ written transposed, where the shape allows it.
        dw1 = p.answer("dW1")
        if dw1.rows == dw1.cols:
            assert dw1 != dw1.T
        if options["update"] == "sgd":
            assert p.key_facts["L_new"] < p.answer("L")


def test_the_zero_gradients_are_the_cut_units():
    """Every zero entry of every gradient belongs to the cut unit: row j of ∂L/∂W₂, ∂L/∂z[0,j], column j of ∂L/∂W₁,
    ∂L/∂b₁[0,j]; ∂L/∂h[0,j] is not 0."""
    for _, p in _problems("two_layer_network", 300):
        choice = p.answer("zero_unit").value
        zeros = {(name, j) for name in ("dW2", "dz", "db1") for j, v in enumerate(p.answer(name)) if v == 0}
        dw1 = p.answer("dW1")
        zeros |= {("dW1", j) for j in range(dw1.cols) if any(dw1[i, j] == 0 for i in range(dw1.rows))}
        if choice == "none":
            assert not zeros
        else:
            j = int(choice)
            assert zeros == {("dW2", j), ("dz", j), ("db1", j), ("dW1", j)}
            assert all(dw1[i, j] == 0 for i in range(dw1.rows))


def test_follow_through_down_the_backward_pass():
    """A slip in ∂L/∂out carried the right way into every later gradient earns follow-through; a wrong out carried
    into L and ∂L/∂out too."""
    key = _key("two_layer_network", 5)
    q = key.problems[0].quantities
    h, w2, x, z = (q[n].values for n in ("h", "W2", "x", "z"))
    error = q["dout"].values[0][0] + 1
    dh = ((tuple(error * w[0] for w in w2)),)
    dz = ((tuple(g if v > 0 else Fraction(0) for g, v in zip(dh[0], z[0]))),)
    answers = _perfect(key)
    answers[q["dout"].blanks[(0, 0)].label] = _text(error)
    answers[q["db2"].blanks[(0, 0)].label] = _text(error)
    _set(answers, q["dW2"], tuple((v * error,) for v in h[0]))
    _set(answers, q["dh"], dh)
    _set(answers, q["dz"], dz)
    _set(answers, q["dW1"], tuple(tuple(xi * g for g in dz[0]) for xi in x[0]))
    _set(answers, q["db1"], dz)
    marks, _ = _mark(key, answers)
    for name in ("db2", "dW2", "dh", "dz", "dW1", "db1"):
        statuses = {marks[b.label].status for b in q[name].blanks.values()}
        assert FOLLOW_THROUGH in statuses and statuses <= {FOLLOW_THROUGH, RIGHT}, name
    # ReLU's mask forgotten (∂L/∂z = ∂L/∂h) where a unit is cut: wrong there.
    if any(v < 0 for v in z[0]):
        _set(answers, q["dz"], dh)
        assert WRONG in {m.status for m in _statuses(key, answers, "dz")}

    answers = _perfect(key)
    out = q["out"].values[0][0] + 2
    t = q["t"].values[0][0]
    answers[q["out"].blanks[(0, 0)].label] = _text(out)
    answers[q["L"].blanks[(0, 0)].label] = _text((out - t) ** 2 / 2)
    answers[q["dout"].blanks[(0, 0)].label] = _text(out - t)
    marks, _ = _mark(key, answers)
    assert marks[q["L"].blanks[(0, 0)].label].status == FOLLOW_THROUGH
    assert marks[q["dout"].blanks[(0, 0)].label].status == FOLLOW_THROUGH
    answers[q["L"].blanks[(0, 0)].label] = _text((out - t) ** 2)  # the ½ forgotten
    assert _mark(key, answers)[0][q["L"].blanks[(0, 0)].label].status == WRONG


def test_the_cut_unit_follows_from_the_students_own_z():
    """A slip in z that makes another unit the negative one: ticking that unit earns follow-through."""
    for seed in range(1, 40):
        key = _key("two_layer_network", seed)
        q = key.problems[0].quantities
        z = list(q["z"].values[0])
        if not any(v < 0 for v in z):
            continue
        cut = next(j for j, v in enumerate(z) if v < 0)
        other = (cut + 1) % len(z)
        own = [Fraction(1) if j == cut else Fraction(-1) if j == other else v for j, v in enumerate(z)]
        answers = _perfect(key)
        _set(answers, q["z"], (tuple(own),))
        label = next(b.label for b in key.blanks if b.name == "zero_unit")
        answers[label] = f"unit {other}"
        marks, _ = _mark(key, answers)
        assert marks[label].status == FOLLOW_THROUGH
        answers[label] = "none"  # nothing the student wrote leads there
        assert _mark(key, answers)[0][label].status == WRONG
        return
    raise AssertionError("no variant with a cut unit")
