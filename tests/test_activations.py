"""activations: the draws that teach, checked with plain fractions apart from the type's own predicates."""

from __future__ import annotations

from fractions import Fraction

import sympy

from .test_slips import _problems

SEEDS = 300


def _f(row) -> list[Fraction]:
    return [Fraction(int(v.p), int(v.q)) for v in row]


def test_inputs_are_logs_of_small_whole_numbers_of_both_signs():
    for options, p in _problems("activations", SEEDS):
        ks = []
        for v in p.given_value("h"):
            sign = -1 if v.could_extract_minus_sign() else 1
            argument = (sign * v).args[0]
            assert isinstance(sign * v, sympy.log) and argument.is_Integer and argument >= 2, (options, v)
            ks.append(sign * int(argument))
        assert len(set(ks)) == len(ks) and {k > 0 for k in ks} == {True, False}, (options, ks)


def test_values_and_slopes_by_hand_and_no_slip_gives_them():
    for options, p in _problems("activations", SEEDS):
        signed = []
        for v in p.given_value("h"):
            negative = v.could_extract_minus_sign()
            k = int(((-v) if negative else v).args[0])
            signed.append((Fraction(1, k) if negative else Fraction(k)))  # e^x
        g = _f(p.given_value("g"))
        if options["function"] in ("sigmoid", "both"):
            s = [e / (1 + e) for e in signed]
            slope = [v * (1 - v) for v in s]
            assert _f(p.answer("s")) == s and _f(p.answer("s_slope")) == slope
            dh = [a * b for a, b in zip(g, slope)]
            assert _f(p.answer("dh_s")) == dh
            assert [a * b for a, b in zip(g, s)] != dh  # σ' written as σ
        if options["function"] in ("tanh", "both"):
            g_t = _f(p.given_value("g_t")) if options["function"] == "both" else g
            t = [(e - 1 / e) / (e + 1 / e) for e in signed]
            slope = [1 - v * v for v in t]
            assert _f(p.answer("t")) == t and _f(p.answer("t_slope")) == slope
            dh = [a * b for a, b in zip(g_t, slope)]
            assert _f(p.answer("dh_t")) == dh
            assert [a * (1 - b) for a, b in zip(g_t, t)] != dh  # tanh' written as 1 − tanh
        if options["relu"] == "yes":
            mask = [Fraction(int(e > 1)) for e in signed]
            assert _f(p.answer("r_slope")) == mask and 0 < sum(mask) < len(mask)
            assert [max(a, 0) for a in g] != _f(p.answer("dh_r"))


def test_the_slopes_follow_from_the_students_own_values():
    """σ' = σ(1 − σ) and tanh' = 1 − tanh² worked from a σ and a tanh the student got wrong earn follow-through; the
    other activation's slope rule applied to them (1 − σ², tanh(1 − tanh)) stays wrong."""
    from generator.marking.marker import FOLLOW_THROUGH, RIGHT, WRONG

    from .test_marking import _key, _perfect, _set, _statuses

    key = _key("activations:function=both", 3)
    q = key.problems[0].quantities
    s = [v + Fraction(1, 7) for v in q["s"].values[0]]  # a slip in every σ
    t = list(q["t"].values[0])
    t[0] += Fraction(1, 5)  # a slip in one tanh: the other entry's slope is simply right
    answers = _perfect(key)
    _set(answers, q["s"], (tuple(s),))
    _set(answers, q["t"], (tuple(t),))
    _set(answers, q["s_slope"], (tuple(v * (1 - v) for v in s),))
    _set(answers, q["t_slope"], (tuple(1 - v * v for v in t),))
    assert {m.status for m in _statuses(key, answers, "s_slope")} == {FOLLOW_THROUGH}
    assert [m.status for m in _statuses(key, answers, "t_slope")] == [FOLLOW_THROUGH, RIGHT]
    _set(answers, q["s_slope"], (tuple(1 - v * v for v in s),))
    _set(answers, q["t_slope"], (tuple(v * (1 - v) for v in t),))
    assert {m.status for m in _statuses(key, answers, "s_slope")} == {WRONG}
    assert {m.status for m in _statuses(key, answers, "t_slope")} == {WRONG}
