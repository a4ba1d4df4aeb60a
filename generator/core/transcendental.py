"""Exact verdicts on the irrational forms a key holds (softmax weights in e^k, logarithms), without sympy's
assumptions, which take about a millisecond per value the first time.

A value built from fractions and e^k (k whole) by +, ·, and whole powers is R(e) for a rational function R with
rational coefficients. e is transcendental, so R(e) is rational only where R is constant, and a denominator of R
vanishes at e only where it is the zero function. Working R at two fractions decides both: two different values
prove R not constant (R(e) irrational), and a denominator not 0 at a fraction is not the zero function (R(e)
finite). ln r of a fraction r > 0, r ≠ 1, is irrational (e^(p/q) = r would make e algebraic) and finite, and so is
c·ln r for a fraction c ≠ 0 (sympy keeps c = 0 as no product).
Any other form gets no verdict here (None): the caller asks sympy.
"""

from __future__ import annotations

from fractions import Fraction

import sympy

# Two points R is worked at: e's rough size, and a second that no small rational function takes the same value at.
POINTS = (Fraction(11, 4), Fraction(17, 6))


class _NoVerdict(Exception):
    """A form this module does not decide, or a pole at one of the points."""


def irrational_and_finite(value: sympy.Expr) -> tuple[bool, bool] | None:
    """(is irrational, is finite) proved for a rational function of e or ln of a fraction; None for any other form."""
    if (isinstance(value, sympy.Mul) and len(value.args) == 2 and isinstance(value.args[0], sympy.Rational)
            and isinstance(value.args[1], sympy.log)):
        value = value.args[1]  # c·ln r (a mean of losses): irrational and finite with ln r, c being a fraction ≠ 0
    if isinstance(value, sympy.log) and isinstance(value.args[0], sympy.Rational):
        r = value.args[0]
        if r > 0 and r != 1:
            return True, True
        return None
    try:
        at = [_at(value, t) for t in POINTS]
    except (_NoVerdict, ZeroDivisionError):
        return None
    if at[0] == at[1]:
        return None  # perhaps constant: sympy decides
    return True, True


def _at(value: sympy.Expr, t: Fraction) -> Fraction:
    """R(t) for value = R(e), exactly; _NoVerdict for another form; ZeroDivisionError where a denominator vanishes
    at t (then it is not proved nonzero as a function, and the value gets no verdict)."""
    if isinstance(value, sympy.Rational):
        return Fraction(int(value.p), int(value.q))
    if value is sympy.E:
        return t
    if isinstance(value, sympy.exp):
        k = value.args[0]
        if isinstance(k, sympy.Integer):
            return t ** int(k)
        raise _NoVerdict(value)
    if isinstance(value, sympy.Add):
        return sum((_at(a, t) for a in value.args), Fraction(0))
    if isinstance(value, sympy.Mul):
        product = Fraction(1)
        for a in value.args:
            product *= _at(a, t)
        return product
    if isinstance(value, sympy.Pow) and isinstance(value.exp, sympy.Integer):
        return _at(value.base, t) ** int(value.exp)
    raise _NoVerdict(value)
