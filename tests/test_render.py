"""Text reaches TeX escaped, Tex passes as built, exact values print exactly, floats are refused."""

from __future__ import annotations

import pytest
from sympy import ImmutableMatrix, Rational, log

from generator.problem import Expansion, Term, Tex
from generator.render import environment, escape_tex, expansion_tex, to_tex


def test_every_special_character_is_escaped():
    assert escape_tex(r"50% of A&B_1 cost $3 #1 {x} ~y^2 \par") == (
        r"50\% of A\&B\_1 cost \$3 \#1 \{x\} \textasciitilde{}y\textasciicircum{}2 \textbackslash{}par"
    )


def test_finalize_escapes_text_but_passes_tex():
    template = environment().from_string(r"\VAR{plain}|\VAR{built}")
    assert template.render(plain="a_b", built=Tex(r"\frac{1}{2}")) == r"a\_b|\frac{1}{2}"


def test_exact_values_print_with_sympy():
    assert to_tex(Rational(-3, 4)) == r"- \frac{3}{4}"
    assert to_tex(log(6)) == r"\ln{\left(6 \right)}"
    assert to_tex(ImmutableMatrix([[1, 2]])) == r"\begin{bmatrix} 1 & 2 \end{bmatrix}"


@pytest.mark.parametrize("bad", [0.5, True])
def test_floats_never_reach_a_sheet(bad):
    with pytest.raises(TypeError):
        to_tex(bad)


def test_missing_variable_fails():
    with pytest.raises(Exception, match="undefined"):
        environment().from_string(r"\VAR{nothing}").render()


def test_negative_factors_are_parenthesised_and_signs_never_double():
    expansion = Expansion(Tex("x"), (Term((Rational(-2), Rational(3))), Term((Rational(1), Rational(-1)), sign=-1)), Rational(-5))
    assert expansion_tex(expansion) == r"x &= \left(-2\right) \cdot 3 - 1 \cdot \left(-1\right) = -5"


def test_an_expansion_that_does_not_add_up_is_refused():
    with pytest.raises(ValueError):
        Expansion(Tex("x"), (Term((Rational(2), Rational(3))),), Rational(7))


def test_ligatures_are_broken_so_text_prints_as_typed():
    assert escape_tex("a--b ``c'' <d>") == r"a-{}-{}b \textasciigrave{}\textasciigrave{}c\textquotesingle{}\textquotesingle{} \textless{}d\textgreater{}"
