"""4-place answers worked the sheet's way: printed table values taken as exact, and every value a reading allows.

A part that asks for 4 places and prints a 4-place table (e^k, ln k, Φ, φ) is answered right by a student who
takes the table's values as printed and rounds where the statement says. A `Reading` carries that route's value
next to an interval that holds every value any reading of the statement can give: each printed table value is
only known to ±½ unit of the 4th place, each rounding the statement asks for moves a value by up to ½ unit, and
exact arithmetic (Fractions) over those intervals is rigorous, so the exact value always lies inside too.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from functools import cached_property
from typing import Callable, Hashable, Union

import sympy

PLACES = 4  # decimals printed in tables and asked for in answers
UNIT = Fraction(1, 10**PLACES)
HALF = UNIT / 2


class NotInTable(ValueError):
    """A step needs a table value the sheet does not print: such a draw is not made (the registry redraws)."""


def round_places(x: Fraction, places: int = PLACES) -> Fraction:
    """x rounded half away from zero to `places` decimals, as decimal_tex prints it (exact, no floats)."""
    unit = Fraction(1, 10**places)
    magnitude = (abs(x) / unit + Fraction(1, 2)).__floor__() * unit
    return magnitude if x >= 0 else -magnitude


def printed(value: sympy.Expr, places: int = PLACES) -> Fraction:
    """The 4-place decimal a table prints for an exact value (the same digits as render.decimal_tex)."""
    digits = Decimal(str(sympy.N(value, 40))).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    return Fraction(digits)


Number = Union["Reading", Fraction, int]


@dataclass(frozen=True)
class Reading:
    """A value worked from printed tables: the table route's value and the interval [low, high] of every reading."""

    route: Fraction  # the printed table values taken as exact, asked roundings done
    low: Fraction
    high: Fraction
    entries: frozenset = frozenset()  # (table, key, printed value) of every table value used on the way

    @classmethod
    def exactly(cls, value) -> "Reading":
        """A value known exactly (a given, a fraction): no reading can differ from it."""
        value = Fraction(value) if not isinstance(value, sympy.Rational) else Fraction(int(value.p), int(value.q))
        return cls(value, value, value)

    @property
    def width(self) -> Fraction:
        return self.high - self.low

    def rounded(self) -> "Reading":
        """The statement asks for this value to 4 places: the route rounds it, and any value within ½ unit may be written."""
        return self._rounded

    @cached_property
    def _rounded(self) -> "Reading":
        # Worked once per reading: the key's line, its accepted interval and the JSON key each ask, and a softmax
        # route's Fractions have denominators of a dozen digits.
        return Reading(round_places(self.route), self.low - HALF, self.high + HALF, self.entries)

    def hull(self, *others: "Reading") -> "Reading":
        """Several ways of working the same value (ln(2/6) as ln 2 − ln 6 or −ln 3): the route is this one's."""
        return Reading(self.route, min([self.low] + [o.low for o in others]), max([self.high] + [o.high for o in others]),
                       self.entries.union(*(o.entries for o in others)))

    def contains(self, x: Fraction) -> bool:
        return self.low <= x <= self.high

    def _combine(self, other: Number, route_op: Callable, bounds: Callable) -> "Reading":
        other = other if isinstance(other, Reading) else Reading.exactly(other)
        low, high = bounds(self, other)
        return Reading(route_op(self.route, other.route), low, high, self.entries | other.entries)

    def __add__(self, other: Number) -> "Reading":
        return self._combine(other, lambda a, b: a + b, lambda a, b: (a.low + b.low, a.high + b.high))

    __radd__ = __add__

    def __neg__(self) -> "Reading":
        return Reading(-self.route, -self.high, -self.low, self.entries)

    def __sub__(self, other: Number) -> "Reading":
        return self + (-_as_reading(other))

    def __rsub__(self, other: Number) -> "Reading":
        return _as_reading(other) + (-self)

    def __mul__(self, other: Number) -> "Reading":
        def bounds(a, b):
            corners = [a.low * b.low, a.low * b.high, a.high * b.low, a.high * b.high]
            return min(corners), max(corners)
        return self._combine(other, lambda a, b: a * b, bounds)

    __rmul__ = __mul__

    def __truediv__(self, other: Number) -> "Reading":
        other = _as_reading(other)
        if other.low <= 0 <= other.high:
            raise ZeroDivisionError("a divisor whose interval holds 0")
        return self * Reading(1 / other.route, 1 / other.high, 1 / other.low, other.entries)

    def __rtruediv__(self, other: Number) -> "Reading":
        return _as_reading(other) / self


def _as_reading(x: Number) -> Reading:
    return x if isinstance(x, Reading) else Reading.exactly(x)


def total(values) -> Reading:
    """The sum of readings (and exact numbers)."""
    result = Reading.exactly(0)
    for value in values:
        result = result + value
    return result


def ratio_of_sum(values: list[Reading], j: int) -> Reading:
    """values[j] / Σ values, for positive values, with the tight interval (the quotient rises with values[j] and
    falls with every other term, so naive interval division would count values[j]'s error twice)."""
    others = [v for i, v in enumerate(values) if i != j]
    mine = values[j]
    route = mine.route / sum((v.route for v in values), Fraction(0))
    low = mine.low / (mine.low + sum((v.high for v in others), Fraction(0)))
    high = mine.high / (mine.high + sum((v.low for v in others), Fraction(0)))
    return Reading(route, low, high, frozenset().union(*(v.entries for v in values)))


@dataclass(frozen=True)
class Table:
    """A printed 4-place table: its name, the keys it prints and, for each, the exact value behind it."""

    name: str
    exact: Callable[[Hashable], sympy.Expr]
    keys: tuple

    def __call__(self, key) -> Reading:
        """The printed value of `key` as a reading; NotInTable where the sheet does not print it."""
        if key not in self.keys:
            raise NotInTable(f"{self.name} table has no entry {key}")
        return _lookup(self, key)

    def printed_values(self) -> dict:
        """key → printed 4-place value, as the sheet shows it."""
        return {key: printed(self.exact(key)) for key in self.keys}


_LOOKUPS: dict = {}


def _lookup(table: Table, key) -> Reading:
    cached = _LOOKUPS.get((table, key))
    if cached is None:
        value = table.exact(key)
        shown = printed(value)
        # A printed value that is the exact value (e^0 = 1, Φ(0) = ½) carries no rounding error.
        known = value.is_Rational and Fraction(int(value.p), int(value.q)) == shown
        cached = Reading(shown, shown if known else shown - HALF, shown if known else shown + HALF,
                         frozenset({(table.name, key, shown)}))
        _LOOKUPS[(table, key)] = cached
    return cached


def answer_interval(reading: Reading) -> tuple[Fraction, Fraction, Fraction]:
    """A 4-place blank: the value the sheet's method prints and the accepted interval (a final rounding included)."""
    final = reading.rounded()
    return final.route, final.low, final.high


def format_places(value: Fraction, places: int = PLACES) -> str:
    """A Fraction with at most `places` decimals written out exactly ('-1.7352', '0.0177')."""
    scaled = value * 10**places
    if scaled.denominator != 1:
        raise ValueError(f"{value} has more than {places} decimals")
    digits = str(abs(scaled.numerator)).rjust(places + 1, "0")
    text = f"{digits[:-places]}.{digits[-places:]}" if places else digits
    return ("-" if value < 0 else "") + text


def fallback_reading(value: sympy.Expr) -> Reading:
    """The reading of a 4-place answer whose type gives none: its exact value, known to 12 places."""
    if value.is_Rational:
        return Reading.exactly(value)
    tiny = Fraction(1, 10**12)
    near = Fraction(Decimal(str(sympy.N(value, 30))).quantize(Decimal(1).scaleb(-12), rounding=ROUND_HALF_UP))
    return Reading(near, near - tiny, near + tiny)


def answer_reading(quantity, index) -> Reading:
    """The reading of one entry of a 4-place answer (its type's, or the exact value's)."""
    reading = quantity.reading
    if reading is not None:
        return reading[index[0]][index[1]] if index is not None else reading
    value = quantity.value[index] if index is not None else quantity.value
    return fallback_reading(value)
