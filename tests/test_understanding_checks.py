"""Stage 10's understanding checks as choices: the sign of ∂L/∂logits (dlogits) and whether the numerical and the
analytic gradient should match (gradient_check). The keys are true to the numbers, no classic slip leads to the key's
choice, and the token that rises follows through from the student's own ∂L/∂z. Checked with plain Fractions."""

from __future__ import annotations

from collections import Counter
from fractions import Fraction

from generator.marking.marker import FOLLOW_THROUGH, RIGHT, WRONG

from .test_marking import _key, _mark, _perfect, _set
from .test_slips import _problems

TOKENS = "ABCD"


def _f(v) -> Fraction:
    return Fraction(int(v.p), int(v.q))


def _row(m, i: int = 0) -> list[Fraction]:
    return [_f(v) for v in m.row(i)]


def test_the_rising_logit_is_the_target_and_no_misreading_points_at_it():
    """The key ticks the one negative entry of row 0 of ∂L/∂z, the target's; the prediction (the likeliest token), the
    least likely token and the sign slip y − p (every entry but one negative) each lead elsewhere; the ticked token
    changes with the draw."""
    ticked = Counter()
    for options, p in _problems("dlogits", 300, sign="yes"):
        probabilities, dz = _row(p.answer("p")), _row(p.answer("dz"))
        target = int(p.facts["targets"][0])
        negative = [j for j, v in enumerate(dz) if v < 0]
        assert negative == [target] and 0 not in dz
        assert p.answer("rises").value == TOKENS[target] and p.answer("why").value == "1"
        assert probabilities[target] not in (max(probabilities), min(probabilities))
        ticked[(options["vocab"], target)] += 1
    for vocab in ("3", "4"):  # the middle token of a row can be any token
        assert all(ticked[(vocab, j)] >= 10 for j in range(int(vocab))), ticked


def test_without_the_sign_part_there_is_no_choice():
    for _, p in _problems("dlogits", 12, sign="no"):
        assert [a.name for part in p.parts for a in part.answers] == ["p", "y", "dz"]


def test_the_rising_logit_follows_from_the_students_own_gradient():
    """A target misread in y, carried into ∂L/∂z: ticking the token whose entry is then negative earns follow-through;
    ticking the prediction (which no row of the student's leads to) stays wrong."""
    key = _key("dlogits", 4)
    q = key.problems[0].quantities
    p = q["p"].values
    rows, cols = len(p), len(p[0])
    targets = [int(t) for t in q["targets"].values[0]]
    probabilities = list(p[0])
    misread = next(j for j in range(cols) if j != targets[0] and probabilities[j] != max(probabilities))
    own = [misread] + targets[1:]
    y = [[Fraction(int(j == own[i])) for j in range(cols)] for i in range(rows)]
    scale = Fraction(1, rows)  # the default loss is the mean
    dz = [[(p[i][j] - y[i][j]) * scale for j in range(cols)] for i in range(rows)]
    answers = _perfect(key)
    _set(answers, q["y"], y)
    _set(answers, q["dz"], dz)
    label = next(b.label for b in key.blanks if b.name == "rises")
    answers[label] = TOKENS[misread]
    marks, _ = _mark(key, answers)
    assert {marks[b.label].status for b in q["dz"].blanks.values()} <= {FOLLOW_THROUGH, RIGHT}
    assert marks[label].status == FOLLOW_THROUGH
    answers[label] = TOKENS[probabilities.index(max(probabilities))]
    assert _mark(key, answers)[0][label].status == WRONG
    answers[label] = "none"
    assert _mark(key, answers)[0][label].status == WRONG


def test_the_central_difference_matches_and_the_slip_over_h_does_not():
    """The key's verdict is true in every draw: the central difference equals dL/dw, the forward one is off by ah/2;
    the classic slip (dividing by h, not 2h) gives 2·dL/dw, which matches nothing, so it never leads to the key."""
    for options, p in _problems("gradient_check", 100, verdict="yes"):
        a, h = _f(p.given_value("a")), Fraction(options["h"])
        central, forward, analytic = (_f(p.answer(n)) for n in ("central", "forward", "analytic"))
        assert central == analytic != forward == analytic + a * h / 2
        slipped = (_f(p.answer("L_plus")) - _f(p.answer("L_minus"))) / h
        assert slipped != analytic and slipped != forward
        assert p.answer("match").value == "central" and p.answer("why").value == "1"
    for _, p in _problems("gradient_check", 4, verdict="no"):
        assert "match" not in [a.name for part in p.parts for a in part.answers]
