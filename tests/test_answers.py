"""Answers are parsed by a whitelist grammar, never evaluated: accepted forms, refused input, key strings."""

from __future__ import annotations

import builtins
import re
import sys
from fractions import Fraction

import pytest
import sympy

from generator.marking import exactnum as xn
from generator.marking.answers import (ACCEPTED, CONSTANTS, FUNCTIONS, AnswerError, _parse_cached, parse_answer,
                                       parse_exact)

from .conftest import key_json


@pytest.mark.parametrize("text, value, form, unreduced", [
    ("3/4", Fraction(3, 4), "fraction", False),
    ("-3 / 4", Fraction(-3, 4), "fraction", False),
    ("6/8", Fraction(3, 4), "fraction", True),
    ("4/2", Fraction(2), "fraction", True),
    ("0.75", Fraction(3, 4), "decimal", False),
    ("-.75", Fraction(-3, 4), "decimal", False),
    ("0,75", Fraction(3, 4), "decimal", False),
    ("\u22123/4", Fraction(-3, 4), "fraction", False),
    ("  7 ", Fraction(7), "integer", False),
    ("\u2212 2", Fraction(-2), "integer", False),
    ("(1 + 2)/4", Fraction(3, 4), "expression", False),
    ("2^-1", Fraction(1, 2), "expression", False),
    ("1.5e-3", Fraction(3, 2000), "expression", False),
])
def test_rational_forms(text, value, form, unreduced):
    parsed = parse_answer(text)
    assert parsed.number == value and parsed.form == form and parsed.unreduced == unreduced
    assert parsed.value == sympy.Rational(value.numerator, value.denominator)


@pytest.mark.parametrize("text, exact", [
    ("e^2/(1+e^2)", sympy.exp(2) / (1 + sympy.exp(2))),
    ("exp(2)/(1 + exp(2))", sympy.exp(2) / (1 + sympy.exp(2))),
    ("ln 6", sympy.log(6)),
    ("ln(6)", sympy.log(6)),
    ("log(5/3) + log(5/2)", sympy.log(sympy.Rational(5, 3)) + sympy.log(sympy.Rational(5, 2))),
    ("2ln3", 2 * sympy.log(3)),
    ("√2/2", sympy.sqrt(2) / 2),
    ("3√2", 3 * sympy.sqrt(2)),
    ("sqrt(2)", sympy.sqrt(2)),
    ("π/4", sympy.pi / 4),
    ("2pi", 2 * sympy.pi),
    ("exp(-1)", sympy.exp(-1)),
    ("e^-1", sympy.exp(-1)),
])
def test_irrational_expressions_build_exact_sympy_values(text, exact):
    parsed = parse_answer(text)
    assert parsed.form == "expression"
    assert sympy.simplify(parsed.value - exact) == 0
    assert abs(xn.to_mpf(parsed.number) - xn.CTX.mpf(str(sympy.N(exact, 40)))) < xn.CTX.mpf(10) ** -30


@pytest.mark.parametrize("text", ["-∞", "-inf", "−oo", "-infinity"])
def test_minus_infinity_for_a_masked_score(text):
    assert xn.is_neg_inf(parse_answer(text).number)


@pytest.mark.parametrize("text, words", [
    ("__import__('os').system('touch /tmp/x')", "unexpected character"),
    ("os", "unknown name"),
    ("lambda: 1", "unexpected character"),
    ("9^9^9^9", "too large"),
    ("2^100", "too large"),
    ("10^12*10^12", "too large"),
    ("1e999999", "power of ten"),
    ("exp(1000)", "too large"),
    ("x" * 1_000_000, "too long"),
    ("1\x002", "control character"),
    ("(" * 30 + "1" + ")" * 30, "nested too deeply"),
    ("-" * 40 + "1", "nested too deeply"),
    ("9" * 40, "digits"),
    ("1/0", "division by zero"),
    ("ln(0)", "not positive"),
    ("sqrt(-1)", "negative"),
    ("", "empty"),
    ("3/4/", "ends too early"),
    ("(1+2", "not closed"),
    ("1 2", "unexpected"),
    ("inf + 1", "on its own"),
    ("x", "unknown name"),
])
def test_refused_with_a_reason(text, words):
    with pytest.raises(AnswerError) as error:
        parse_answer(text)
    assert words in str(error.value) and "\n" not in str(error.value)


def test_nothing_is_evaluated(monkeypatch):
    """The parser never hands text to eval, exec or sympy's string parsers (sympy may still convert its own objects)."""
    def guarded(original):
        def call(*args, **kwargs):
            if any(isinstance(a, str) for a in args):
                raise AssertionError(f"text was evaluated: {args[0]!r}")
            return original(*args, **kwargs)
        return call

    for module, name in ((builtins, "eval"), (builtins, "exec"), (sympy, "sympify"), (sympy, "parse_expr"),
                         (sys.modules["sympy.core.sympify"], "sympify")):
        monkeypatch.setattr(module, name, guarded(getattr(module, name)))
    _parse_cached.cache_clear()
    for text in ("e^2/(1+e^2) - ln 3 + sqrt(2)*pi/7", "exp(-1/2)*sqrt(2)/(2*sqrt(pi)) + erf(sqrt(2)/2)/2",
                 "-3/4", "0,125"):
        parse_answer(text)
    with pytest.raises(AssertionError):
        sympy.sympify("1")  # the guard itself works


def test_every_key_string_reads_back_as_sympy_reads_it():
    """Every exact value the keys write (fractions, logs, exponentials, erf, −∞) parses to sympy's own value."""
    specs = ["tiny_transformer", "cross_entropy:positions=2", "gelu_backward", "ffn_gelu", "example1",
             "output_logits", "attention_backward", "softmax:form=table"]
    seen = 0
    for problem in key_json(specs, seed=4)["problems"]:
        for blank in problem["blanks"]:
            if blank["kind"] != "number":
                continue
            ours = parse_exact(blank["value"])
            theirs = sympy.sympify(blank["value"])  # the oracle, on our own trusted key text
            if theirs == -sympy.oo:
                assert xn.is_neg_inf(ours)
            else:
                assert abs(xn.to_mpf(ours) - xn.CTX.mpf(str(sympy.N(theirs, 40)))) < xn.CTX.mpf(10) ** -28, blank
            seen += 1
    assert seen > 100


@pytest.mark.parametrize("length, said", [
    (250, "too long (250 characters; accepted: at most 200)"),
    (1000, "too long (1000 characters; accepted: at most 200)"),
    (1001, "too long (more than 1000 characters; accepted: at most 200)"),
    (5000, "too long (more than 1000 characters; accepted: at most 200)"),
    (1_000_000, "too long (more than 1000 characters; accepted: at most 200)"),
])
def test_a_long_answer_from_a_file_is_refused_with_its_true_length(length, said):
    """Cells are cut on reading; the length in the message is still true (exact up to 1000, else 'more than 1000')."""
    from generator.marking.answerfile import parse_answers
    rows, issues = parse_answers("student_id,variant,blank,answer\ns1,V,1a x,\"" + "1" * length + "\"\n", "a.csv")
    assert not issues
    with pytest.raises(AnswerError) as error:
        parse_answer(rows[0].answer)
    assert str(error.value) == said
    with pytest.raises(AnswerError) as error:
        parse_answer("1" * length)  # given whole (the web page): the same truth
    assert str(error.value) == said


@pytest.mark.parametrize("text, said", [
    ("log(32, 2)", "log takes one argument, and a comma does not separate two; accepted: log(x), and for a logarithm "
                   "to base b, ln(x)/ln(b)"),
    ("ln(8, 2)", "ln takes one argument"),
    ("sqrt(4, 2)", "sqrt takes one argument, and a comma does not separate two; accepted: sqrt(x)"),
    ("√(4, 2)", "sqrt takes one argument"),
    ("1, 2", "a comma between two values; accepted: one number or expression per answer"),
    ("log(32 , 2)", "a comma that is not a decimal comma; accepted: one value per answer, a function takes one argument"),
    ("(2 3)", "unexpected '3' after '2'; accepted: an operator"),
    ("1/2)", "a closing bracket ')' without its opening one '('"),
    ("log(32", "a bracket is not closed"),
])
def test_a_second_argument_or_a_stray_token_is_named(text, said):
    """log(32, 2) is not 'a bracket is not closed': the message says what is wrong and what is accepted."""
    with pytest.raises(AnswerError) as error:
        parse_answer(text)
    assert said in str(error.value) and "\n" not in str(error.value)
    if "," in text:
        assert "not closed" not in str(error.value)


def test_a_decimal_comma_inside_a_function_is_still_read():
    assert parse_answer("ln(0,5)").value == sympy.log(sympy.Rational(1, 2))
    assert parse_answer("2,5").number == Fraction(5, 2)


@pytest.mark.parametrize("text, value, form", [
    ("１０", Fraction(10), "integer"),
    ("－３／４", Fraction(-3, 4), "fraction"),
    ("０．５", Fraction(1, 2), "decimal"),
    ("０，５", Fraction(1, 2), "decimal"),
    ("\u3000－\u3000３\u3000／\u3000４\u3000", Fraction(-3, 4), "fraction"),
    ("（１＋２）／４", Fraction(3, 4), "expression"),
    ("２＾－１", Fraction(1, 2), "expression"),
    ("１．５ｅ－３", Fraction(3, 2000), "expression"),
])
def test_full_width_forms_are_read_as_ascii(text, value, form):
    """A CJK keyboard types U+FF01–U+FF5E (ASCII + 0xFEE0) and U+3000 for a space: read as the ASCII they stand for."""
    parsed = parse_answer(text)
    assert parsed.number == value and parsed.form == form


def test_full_width_names_and_infinity_are_read():
    assert parse_answer("ｌｎ（２）").value == sympy.log(2)
    assert parse_answer("ＬＯＧ（８）").value == sympy.log(8)
    assert parse_answer("ｅ＾２").value == sympy.exp(2)
    assert xn.is_neg_inf(parse_answer("－ｉｎｆ").number)


@pytest.mark.parametrize("text", ["2²", "½", "¾", "2⁻¹", "①"])
def test_compatibility_forms_outside_the_full_width_block_are_still_refused(text):
    """Not NFKC: ² would become 2 (so 2² would read as 22) and ½ would become 1⁄2; such forms stay unreadable."""
    with pytest.raises(AnswerError, match="unexpected character"):
        parse_answer(text)


@pytest.mark.parametrize("text", ["x", "os", "foo(2)", "lambda: 1", "2 @ 3", "£5"])
def test_every_accepted_list_is_the_one_constant(text):
    """Both 'unexpected character' and 'unknown name' say the same list: ACCEPTED."""
    with pytest.raises(AnswerError) as error:
        parse_answer(text)
    assert str(error.value).endswith(f"; accepted: {ACCEPTED}")


def test_the_accepted_list_is_what_the_parser_reads():
    """Every function and constant the parser reads is named, and every name listed is read."""
    words = set(re.findall(r"[A-Za-zπ√]+", ACCEPTED)) - {"digits", "a", "decimal", "point", "or", "comma", "brackets",
                                                            "and", "on", "its", "own"}
    assert FUNCTIONS | set(CONSTANTS) <= words
    for word in words:
        if word in FUNCTIONS or word == "√":
            parse_answer(f"{word}(2)")
        elif word not in ("inf", "oo", "e"):
            parse_answer(word)
    for text in ("1.5e-3", "2**3", "(1+2)/4^2", "0,5", "-inf", "-oo", "-∞", "e", "π", "pi"):
        parse_answer(text)
    assert set("+-*/^()√π∞.,") <= {ch for ch in ACCEPTED}
