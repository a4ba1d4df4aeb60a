"""Answers parsed, never evaluated: a whitelist grammar that builds exact sympy values from tokens, with bounded work."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache
from math import gcd

import sympy

from generator.marking import exactnum as xn

MAX_LENGTH = 200  # characters of one answer (a key's exact strings may be longer: KEY_MAX_LENGTH)
KEY_MAX_LENGTH = 2000
MAX_READ = 1000  # characters of a cell read from an answers file; a longer one is cut to MAX_READ + 1 (so: "more than")
MAX_TOKENS = 120
MAX_DEPTH = 20  # nested brackets, signs, functions and powers
MAX_DIGITS = 30  # digits in one number
MAX_MAGNITUDE = 10**12  # every value on the way, in size
MAX_POWER = 64  # |k| in x^k
MAX_EXP_ARGUMENT = 30  # |x| in e^x
MAX_SCIENTIFIC = 20  # |k| in 1.5e-k
FULL_PRECISION = 10  # significant digits that stand for an exact value (a spreadsheet writes 15: 0,666666666666667)

# Typographic forms a spreadsheet, a phone or a word processor puts in: read as their ASCII meaning.
_REPLACEMENTS = {
    "\u2212": "-", "\u2013": "-", "\u2012": "-", "\u2010": "-", "\u2011": "-", "\ufe63": "-", "\uff0d": "-",
    "\u00d7": "*", "\u00b7": "*", "\u22c5": "*", "\u2217": "*", "\u00f7": "/", "\u2215": "/", "\u2044": "/",
    "\u00a0": " ", "\u2009": " ", "\u202f": " ", "\u2007": " ", "\t": " ",
}
# A full-width keyboard (Chinese, Japanese, Korean input) types U+FF01–U+FF5E, each its ASCII character + 0xFEE0
# ('１０', '－３／４', '０．５'), and U+3000 for a space: read as that ASCII. Only this block, not NFKC, which would
# also read '²' as 2 and '½' as 1⁄2 and so change what was written.
_REPLACEMENTS |= {chr(code): chr(code - 0xFEE0) for code in range(0xFF01, 0xFF5F)} | {"\u3000": " "}
_ALLOWED = set("0123456789+-*/^().,  abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZπ√∞")
FUNCTIONS = frozenset({"ln", "log", "exp", "sqrt", "erf"})  # each worked out by _function
CONSTANTS = {"e": sympy.E, "pi": sympy.pi, "π": sympy.pi}
# What the parser reads, named once for every message that says what is accepted (a test checks it against
# FUNCTIONS, CONSTANTS and _ALLOWED).
ACCEPTED = ("digits (a decimal point or comma, 1.5e-3), + - * / ^ (or **), brackets ( ), e, pi (π), "
            "ln, log, exp, sqrt (√), erf, and on its own -inf (-oo, -∞)")
_INFINITY = re.compile(r"([+-]?)\s*(?:inf|infinity|oo|∞)", re.IGNORECASE)
_INTEGER = re.compile(r"([+-]?)\s*(\d{1,30})")
_FRACTION = re.compile(r"([+-]?)\s*(\d{1,30})\s*/\s*([+-]?)\s*(\d{1,30})")
_DECIMAL = re.compile(r"([+-]?)\s*(\d{0,30})[.,](\d{1,30})|([+-]?)\s*(\d{1,30})[.,]")
_WRITTEN_DECIMAL = re.compile(r"[+-]?\s*(?:\d*[.,]\d+|\d+)(?:[eE][+-]?\d+)?")
_TOKEN = re.compile(r"\s*(?:(?P<num>\d+(?:[.,]\d*)?|[.,]\d+)(?P<sci>[eE][+-]?\d+(?![.,\d]))?|(?P<name>[A-Za-z]+|π)|(?P<op>\*\*|[-+*/^()√]))")


class AnswerError(ValueError):
    """An answer that cannot be read; the message is the reason, in one line."""


@dataclass(frozen=True)
class Parsed:
    """One answer read exactly: its value, how it was written (form) and whether a fraction was left unreduced."""

    text: str
    number: xn.Num  # a Fraction when rational, a 40-digit mpmath value otherwise, or −∞
    form: str  # integer, fraction, decimal, expression or infinity
    unreduced: bool = False  # a fraction p/q typed with a common factor (6/8), or over 1
    exact: sympy.Expr | None = None  # the exact sympy value an expression built (plain numbers: see value)

    @property
    def value(self) -> sympy.Expr:
        """The exact sympy value."""
        if self.exact is not None:
            return self.exact
        if isinstance(self.number, Fraction):
            return sympy.Rational(self.number.numerator, self.number.denominator)
        return -sympy.oo if xn.is_neg_inf(self.number) else sympy.oo


def stands_for(parsed: Parsed, exact: xn.Num) -> bool:
    """A decimal of FULL_PRECISION or more significant digits agreeing with exact to that many (Excel's 2/3)."""
    if not _WRITTEN_DECIMAL.fullmatch(parsed.text) or xn.is_neg_inf(exact):
        return False
    written = Decimal(parsed.text.replace(",", ".").replace(" ", ""))
    if written.is_zero() or len(written.as_tuple().digits) < FULL_PRECISION:
        return False
    # Half a unit in the FULL_PRECISION-th significant digit of the number written.
    half_unit = Fraction(1, 2) * Fraction(10) ** (written.adjusted() - FULL_PRECISION + 1)
    return xn.same(parsed.number, exact, half_unit)


def normalise(text: str) -> str:
    """Typographic minus signs, times signs and spaces, and full-width forms, as ASCII; surrounding spaces dropped."""
    return "".join(_REPLACEMENTS.get(ch, ch) for ch in text).strip()


def parse_answer(text: str, max_length: int = MAX_LENGTH) -> Parsed:
    """Read one answer; AnswerError says why it cannot be read (checked before any work is done)."""
    if len(text) > max_length:
        # Past MAX_READ the text may have been cut on reading: its length is only known to be more than that.
        length = f"more than {MAX_READ}" if len(text) > MAX_READ else str(len(text))
        raise AnswerError(f"too long ({length} characters; accepted: at most {max_length})")
    if any(ord(ch) < 32 and ch != "\t" or ch == "\x7f" for ch in text):
        raise AnswerError("contains a control character (such as a NUL byte); accepted: a number or a short expression")
    text = normalise(text)
    if not text:
        raise AnswerError("empty")
    bad = next((ch for ch in text if ch not in _ALLOWED), None)
    if bad is not None:
        raise AnswerError(f"unexpected character {bad!r}; accepted: {ACCEPTED}")
    return _parse_cached(text)


@lru_cache(maxsize=65536)
def _parse_cached(text: str) -> Parsed:
    # Plain numbers (nearly every answer) are read directly, without building an expression.
    if m := _INFINITY.fullmatch(text):
        return Parsed(text, xn.NEG_INF if m.group(1) == "-" else -xn.NEG_INF, "infinity")
    if m := _INTEGER.fullmatch(text):
        return Parsed(text, _signed(m.group(1), Fraction(int(m.group(2)))), "integer")
    if m := _FRACTION.fullmatch(text):
        p, q = int(m.group(2)), int(m.group(4))
        if q == 0:
            raise AnswerError("division by zero")
        value = Fraction(p, q) * (-1 if (m.group(1) == "-") != (m.group(3) == "-") else 1)
        return Parsed(text, value, "fraction", unreduced=gcd(p, q) > 1 or q == 1)
    if m := _DECIMAL.fullmatch(text):
        if m.group(3) is not None:
            whole, frac, sign = m.group(2) or "0", m.group(3), m.group(1)
        else:
            whole, frac, sign = m.group(5), "", m.group(4)
        value = Fraction(int(whole + frac), 10 ** len(frac))
        return Parsed(text, _signed(sign, value), "decimal")
    expr, number = _Parser(text).parse()
    if isinstance(expr, sympy.Rational):
        return Parsed(text, Fraction(int(expr.p), int(expr.q)), "expression", exact=expr)
    return Parsed(text, number, "expression", exact=expr)


def _signed(sign: str, value: Fraction) -> Fraction:
    return -value if sign == "-" else value


@lru_cache(maxsize=16384)
def parse_exact(text: str) -> xn.Num:
    """A key's exact string ('-3/4', 'log(6)', 'exp(2)/(1 + exp(2))', '-oo') as a marking number."""
    return parse_answer(text, KEY_MAX_LENGTH).number if not _is_plain_fraction(text) else Fraction(text)


def _is_plain_fraction(text: str) -> bool:
    return bool(re.fullmatch(r"-?\d{1,30}(?:/\d{1,30})?", text))


class _Parser:
    """Recursive descent over the tokens; every node carries its exact sympy value and a 40-digit check value."""

    def __init__(self, text: str) -> None:
        self.tokens = self._tokenize(text)
        self.position = 0
        self.depth = 0

    @staticmethod
    def _tokenize(text: str) -> list[tuple[str, str]]:
        tokens, position = [], 0
        while position < len(text):
            m = _TOKEN.match(text, position)
            if not m or m.end() == position:
                rest = text[position:].strip()
                if not rest:
                    break
                if rest.startswith(","):
                    raise AnswerError("a comma that is not a decimal comma; accepted: one value per answer, a function "
                                      "takes one argument, and a decimal comma sits between digits (0,5)")
                raise AnswerError(f"cannot read {rest[:20]!r}")
            position = m.end()
            if m.group("num") is not None:
                digits = re.sub(r"\D", "", m.group("num"))
                if len(digits) > MAX_DIGITS:
                    raise AnswerError(f"a number with {len(digits)} digits; accepted: at most {MAX_DIGITS}")
                tokens.append(("num", m.group("num") + (m.group("sci") or "")))
            elif m.group("name") is not None:
                tokens.append(("name", m.group("name")))
            else:
                tokens.append(("op", "^" if m.group("op") == "**" else m.group("op")))
            if len(tokens) > MAX_TOKENS:
                raise AnswerError(f"too many symbols; accepted: at most {MAX_TOKENS}")
        if not tokens:
            raise AnswerError("empty")
        return tokens

    def parse(self):
        value = self._sum()
        if self.position != len(self.tokens):
            raise AnswerError(self._stray())
        return value

    def _stray(self, function: str | None = None) -> str:
        """Why the token at the current position cannot follow what was read (inside function's bracket, if given)."""
        token, before = self.tokens[self.position], self.tokens[self.position - 1]
        if before[0] == "num" and before[1].endswith(","):
            # "32, 2": the comma was read as a decimal comma of 32; what follows is a second value.
            if function is not None:
                return (f"{function} takes one argument, and a comma does not separate two; accepted: {function}(x), "
                        "and for a logarithm to base b, ln(x)/ln(b)" if function in ("ln", "log") else
                        f"{function} takes one argument, and a comma does not separate two; accepted: {function}(x)")
            return ("a comma between two values; accepted: one number or expression per answer "
                    "(a decimal comma has no space after it: 0,5)")
        if token == ("op", ")"):
            return "a closing bracket ')' without its opening one '('"
        return f"unexpected {token[1]!r} after {before[1]!r}; accepted: an operator (+ - * / ^) between two values"

    def _peek(self) -> tuple[str, str] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def _take(self) -> tuple[str, str]:
        token = self._peek()
        if token is None:
            raise AnswerError("ends too early")
        self.position += 1
        return token

    def _enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise AnswerError(f"nested too deeply; accepted: at most {MAX_DEPTH} levels")

    def _sum(self):
        left = self._product()
        while (token := self._peek()) in (("op", "+"), ("op", "-")):
            self._take()
            right = self._product()
            left = _checked(left[0] + right[0] if token[1] == "+" else left[0] - right[0],
                            left[1] + right[1] if token[1] == "+" else left[1] - right[1])
        return left

    def _product(self):
        left = self._signed()
        while True:
            token = self._peek()
            if token in (("op", "*"), ("op", "/")):
                self._take()
                right = self._signed()
            elif token is not None and (token[0] == "name" or token in (("op", "("), ("op", "√"))):
                right = self._signed()  # 2π, 3√2, 2 ln 3, 2(1 + e): multiplication without a sign
                token = ("op", "*")
            else:
                return left
            if token[1] == "/":
                if right[1] == 0:
                    raise AnswerError("division by zero")
                left = _checked(left[0] / right[0], left[1] / right[1])
            else:
                left = _checked(left[0] * right[0], left[1] * right[1])

    def _signed(self):
        token = self._peek()
        if token in (("op", "+"), ("op", "-")):
            self._take()
            self._enter()
            value = self._signed()
            self.depth -= 1
            return (-value[0], -value[1]) if token[1] == "-" else value
        return self._power()

    def _power(self):
        base = self._primary()
        if self._peek() == ("op", "^"):
            self._take()
            self._enter()
            exponent = self._signed()  # right-associative: 2^3^2 = 2^9, and e^-1 reads as e^(−1)
            self.depth -= 1
            return _power(base, exponent)
        return base

    def _primary(self):
        kind, text = self._take()
        if kind == "num":
            return _number(text)
        if kind == "name":
            name = text if text == "π" else text.lower()
            if name in CONSTANTS:
                value = CONSTANTS[name]
                return value, xn.CTX.e if name == "e" else xn.CTX.pi
            if name in FUNCTIONS:
                self._enter()
                argument = self._group(name) if self._peek() == ("op", "(") else self._power()
                self.depth -= 1
                return _function(name, argument)
            if name in ("inf", "infinity", "oo"):
                raise AnswerError("∞ is accepted only on its own (−∞ for a masked score)")
            raise AnswerError(f"unknown name {text!r}; accepted: {ACCEPTED}")
        if text == "(":
            self.position -= 1
            return self._group()
        if text == "√":
            self._enter()
            argument = self._group("sqrt") if self._peek() == ("op", "(") else self._primary()
            self.depth -= 1
            return _function("sqrt", argument)
        raise AnswerError(f"unexpected {text!r}")

    def _group(self, function: str | None = None):
        self._take()  # "("
        self._enter()
        value = self._sum()
        self.depth -= 1
        if self._peek() is None:
            raise AnswerError("a bracket is not closed")
        if self._peek() != ("op", ")"):
            raise AnswerError(self._stray(function))
        self._take()
        return value


def _checked(expr, number):
    """Refuse a value that has grown past MAX_MAGNITUDE (or is not a number): the work stays small."""
    if xn.CTX.isnan(number) or xn.CTX.isinf(number) or abs(number) > MAX_MAGNITUDE:
        raise AnswerError(f"a value on the way is too large; accepted: sizes up to {MAX_MAGNITUDE:.0e}")
    return expr, number


def _number(text: str):
    mantissa, _, scientific = text.replace(",", ".").lower().partition("e")
    whole, _, frac = mantissa.partition(".")
    value = Fraction(int((whole or "0") + frac), 10 ** len(frac))
    if scientific:
        power = int(scientific)
        if abs(power) > MAX_SCIENTIFIC:
            raise AnswerError(f"the power of ten in {text!r} is too large; accepted: at most {MAX_SCIENTIFIC}")
        value *= Fraction(10) ** power
    return _checked(sympy.Rational(value.numerator, value.denominator), xn.to_mpf(value))


def _power(base, exponent):
    b_expr, b_num = base
    e_expr, e_num = exponent
    if abs(e_num) > MAX_POWER:
        raise AnswerError(f"the power {sympy.sstr(e_expr)[:20]} is too large; accepted: at most {MAX_POWER} in size")
    if b_expr == sympy.E:
        if abs(e_num) > MAX_EXP_ARGUMENT:
            raise AnswerError(f"e to a power over {MAX_EXP_ARGUMENT} is too large")
        return _checked(sympy.exp(e_expr), xn.CTX.exp(e_num))
    if b_num < 0 and not (isinstance(e_expr, sympy.Integer)):
        raise AnswerError("a negative number to a fractional power")
    if b_num == 0 and e_num <= 0:
        raise AnswerError("0 to a power that is not positive")
    if isinstance(e_expr, sympy.Rational) and e_expr.q > MAX_POWER:
        raise AnswerError(f"a root of order over {MAX_POWER}")
    magnitude = abs(b_num) ** e_num if b_num != 0 else xn.CTX.zero
    _checked(None, magnitude)  # before sympy builds the exact power
    return _checked(b_expr ** e_expr, b_num ** e_num if b_num >= 0 else (-1) ** int(e_num) * magnitude)


def _function(name: str, argument):
    expr, number = argument
    if name in ("ln", "log"):
        if number <= 0:
            raise AnswerError("the logarithm of a number that is not positive")
        return _checked(sympy.log(expr), xn.CTX.log(number))
    if name == "exp":
        if abs(number) > MAX_EXP_ARGUMENT:
            raise AnswerError(f"e to a power over {MAX_EXP_ARGUMENT} is too large")
        return _checked(sympy.exp(expr), xn.CTX.exp(number))
    if name == "sqrt":
        if number < 0:
            raise AnswerError("the square root of a negative number")
        return _checked(sympy.sqrt(expr), xn.CTX.sqrt(number))
    return _checked(sympy.erf(expr), xn.CTX.erf(number))
