"""Text reaches TeX escaped, Tex passes as built, exact values print exactly, floats are refused."""

from __future__ import annotations

import re

import pytest
from sympy import E, ImmutableMatrix, Rational, log

from generator.core.problem import Expansion, Term, Tex
from generator.documents.render import (environment, escape_tex, expansion_tex, labelled_table, matrix_tex, number_tex,
                              pdf_string, prose_tex, to_tex, typographic_quotes)
from generator.documents.sheet import render_key, render_worksheet

from .conftest import sheet_for


def test_every_special_character_is_escaped():
    assert escape_tex(r"50% of A&B_1 cost $3 #1 {x} ~y^2 \par") == (
        r"50\% of A\&B\_1 cost \$3 \#1 \{x\} \textasciitilde{}y\textasciicircum{}2 \textbackslash{}par"
    )


def test_finalize_escapes_text_but_passes_tex():
    template = environment().from_string(r"\VAR{plain}|\VAR{built}")
    assert template.render(plain="a_b", built=Tex(r"\frac{1}{2}")) == r"a\_b|\frac{1}{2}"


def test_exact_values_print_with_sympy():
    assert to_tex(Rational(-3, 4)) == r"- \frac{3}{4}"
    assert to_tex(log(6)) == r"\ln 6"
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


def test_the_log_of_a_plain_number_is_spelled_as_the_sheets_write_it():
    assert number_tex(log(3)) == r"\ln 3"
    assert number_tex(log(Rational(4, 3))) == r"\ln \frac{4}{3}"
    assert number_tex(log(36) / 2) == r"\frac{\ln 36}{2}"
    assert number_tex(log(3) - log(2)) == r"- \ln 2 + \ln 3"
    assert number_tex(log(3) ** 2) == r"\left(\ln 3\right)^{2}"  # not \ln 3^{2}, which reads as ln 9
    assert number_tex(log(1 + E**2)) == r"\ln{\left(1 + e^{2} \right)}"  # not a plain number: sympy's own form


def test_prose_gets_typographic_quotes_and_stays_tex_safe():
    assert typographic_quotes("""Bob's 'quiz' "x" '90s""") == "Bob\u2019s \u2018quiz\u2019 \u201cx\u201d \u201990s"
    assert prose_tex("O'Brien") == "O\u2019Brien"
    # Quotes turn typographic; every TeX special still prints as itself.
    assert prose_tex(r"it's 50% \par {x}") == "it\u2019s" + r" 50\% \textbackslash{}par \{x\}"


def test_pdf_strings_are_hex_so_no_character_can_end_them():
    text = "Bob\u2019s ) \\ (x) \U0001F600"
    hex_string = pdf_string(text)
    assert hex_string.startswith("<FEFF") and hex_string.endswith(">")
    assert set(hex_string[1:-1]) <= set("0123456789ABCDEF")
    assert bytes.fromhex(hex_string[5:-1]).decode("utf-16-be") == text


def test_fractions_in_a_matrix_print_at_text_size_with_room():
    assert matrix_tex(ImmutableMatrix([[1, 2]])) == r"\begin{bmatrix} 1 & 2 \end{bmatrix}"
    assert matrix_tex(ImmutableMatrix([[0, Rational(-3, 4)]])) == \
        r"\begin{fracmatrix} 0 & \fracstyle - \frac{3}{4} \end{fracmatrix}"
    # Row labels beside a table of fractions get the same taller rows, so they stay level with them.
    assert labelled_table(["A"], ImmutableMatrix([[Rational(1, 2)]]), "E").startswith(r"E = {\fracrows \begin{matrix}")


def test_the_log_of_a_plain_number_is_spelled_the_same_on_sheet_and_key():
    sheet = sheet_for(["cross_entropy", "example2", "tiny_transformer"], seed=4, calculator="basic")
    worksheet, key = render_worksheet(sheet), render_key(sheet)
    for tex in (worksheet, key):
        assert not re.search(r"\\ln\{\\left\((\d+|\\frac\{\d+\}\{\d+\}) \\right\)\}", tex)
    assert re.search(r"\\ln \d", worksheet) and re.search(r"= \\ln \d+ \\approx", key)


def test_json_decimal_is_positional_with_15_significant_digits():
    """The JSON key's `decimal` is what a grader reads: positional (never sympy's '1.00000000000000e-5'), 15
    significant digits, trailing zeros dropped, for tiny, huge and irrational values alike."""
    import sympy
    from decimal import Decimal

    from generator.documents.sheet import decimal_string

    cases = {
        sympy.Rational(1, 100000): "0.00001",
        sympy.Rational(-3, 2000000): "-0.0000015",
        sympy.Rational(123456789012345678): "123456789012346000",
        sympy.Rational(-5, 2): "-2.5",
        sympy.Rational(100): "100",
        sympy.Rational(0): "0",
        sympy.Rational(1, 3): "0.333333333333333",
    }
    for value, text in cases.items():
        assert decimal_string(value) == text
    tiny = decimal_string(sympy.exp(-20))
    assert "e" not in tiny.lower() and tiny.startswith("0.00000000206115362")
    significant = tiny.replace("0.", "", 1).lstrip("0")
    assert len(significant) == 15 and not significant.endswith("0")
    assert abs(Decimal(tiny) - Decimal(str(sympy.N(sympy.exp(-20), 30)))) < Decimal("1e-23")
