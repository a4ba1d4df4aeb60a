"""The exact problem model: quantities, worked steps, parts and problems."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from math import prod
from typing import Callable, Iterator, Union

import sympy
from sympy import ImmutableMatrix, Rational


class Tex(str):
    """LaTeX that the code built on purpose: rendered as is, never escaped."""


@dataclass(frozen=True)
class Choice:
    """A multiple-choice answer: the chosen key and every (key, label) offered."""

    value: str
    options: tuple[tuple[str, str], ...]  # (key, plain-text label) in printed order

    def __post_init__(self) -> None:
        if self.value not in self.keys:
            raise ValueError(f"choice {self.value!r} is not one of {self.keys}")

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(key for key, _ in self.options)


# A value on a sheet: an exact scalar (sympy Rational or exact symbolic form),
# an exact matrix, or a choice. Never a float.
Value = Union[sympy.Expr, ImmutableMatrix, Choice]


def exact(value: int | str | Rational | Fraction) -> Rational:
    """An exact sympy Rational from an int, a 'p/q' string, a Fraction or a Rational; refuses floats."""
    if isinstance(value, float):
        raise TypeError("floats are not exact; pass an int, a 'p/q' string or a Rational")
    return Rational(value)


def matrix(rows: list[list[int | Rational | Fraction]]) -> ImmutableMatrix:
    """An exact immutable matrix from nested lists of ints, Fractions (from the plain-number searches) or Rationals."""
    return ImmutableMatrix([[exact(x) for x in row] for row in rows])


class PerMatrix:
    """Values worked from immutable matrices, remembered per matrix object (kept, so that its id stays its own);
    bounded: emptied when full. A mutable matrix may change: its value is worked every time."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._known: dict[int, tuple[ImmutableMatrix, object]] = {}

    def get(self, value, work):
        """work(value), remembered for this matrix object."""
        known = self._known.get(id(value))
        if known is not None and known[0] is value:
            return known[1]
        result = work(value)
        if isinstance(value, ImmutableMatrix):
            if len(self._known) >= self.size:
                self._known.clear()
            self._known[id(value)] = (value, result)
        return result


# A problem's matrices are read by its contract, its worked steps, both documents and the JSON key, and sympy's
# tolist() builds every entry anew each time (about 14 µs for a 2×2).
_rows_read = PerMatrix(1024)


def matrix_rows(value: ImmutableMatrix) -> tuple[tuple, ...]:
    """The matrix's entries, row by row (value.tolist() as tuples), remembered for the matrices read lately."""
    return _rows_read.get(value, lambda m: tuple(map(tuple, m.tolist())))


def rational_rows(m) -> list[list[int | Fraction]] | None:
    """The matrix as rows of plain numbers (whole ones as ints: Fraction arithmetic is ten times slower, and the
    draws are mostly whole), or None where it is no matrix, is empty or has an entry that is no Rational."""
    if not isinstance(m, sympy.MatrixBase) or 0 in m.shape:
        return None
    rows = matrix_rows(m)
    if not all(v.is_Rational for row in rows for v in row):
        return None
    return [[int(v.p) if v.q == 1 else Fraction(int(v.p), int(v.q)) for v in row] for row in rows]


def terminates(x: Rational) -> bool:
    """True when the fraction's decimal ends (its denominator has no prime factor but 2 and 5)."""
    q = int(x.q)
    for prime in (2, 5):
        while q % prime == 0:
            q //= prime
    return q == 1


@dataclass(frozen=True)
class Quantity:
    """A named value: `name` is ASCII (used in answer labels), `symbol` is how it prints."""

    name: str
    symbol: Tex
    value: Value
    # A 4-place answer worked the sheet's way: a readings.Reading, or a tuple of rows of them for a matrix.
    reading: object = None
    # The sheet asks for this value as an exact decimal written in full: the key's answer box, the grading sheet and a
    # part given on the worksheet print its terminating decimals (0.00005090399355361), not fractions
    # (5090399355361/10¹⁷). Every entry must be a fraction whose decimal ends; the JSON key keeps exact strings.
    exact_decimal: bool = False

    def __post_init__(self) -> None:
        if self.exact_decimal:
            entries = list(self.value) if isinstance(self.value, ImmutableMatrix) else [self.value]
            if not all(isinstance(x, Rational) and terminates(x) for x in entries):
                raise ValueError(f"{self.name}: exact_decimal needs fractions whose decimals end")

    @property
    def shape(self) -> tuple[int, int] | None:
        """(rows, columns) for a matrix, None for a scalar or a choice."""
        return self.value.shape if isinstance(self.value, ImmutableMatrix) else None


@dataclass(frozen=True)
class Term:
    """One signed product in a worked expansion, e.g. −(b·c) in a determinant."""

    factors: tuple[sympy.Expr, ...]
    sign: int = 1  # +1 or -1; printed as a + or − between terms

    @property
    def value(self) -> sympy.Expr:
        return self.sign * sympy.Mul(*self.factors)


@dataclass(frozen=True)
class Expansion:
    """One element worked out in full: label = Σ ± products = value."""

    label: Tex
    terms: tuple[Term, ...]
    value: sympy.Expr

    def __post_init__(self) -> None:
        # Guard the key: the written-out sum must equal the value it claims.
        if isinstance(self.value, Rational) and all(isinstance(f, Rational) for t in self.terms for f in t.factors):
            # Rationals: exact by their own arithmetic (Python's ints where all are whole), without building sympy's
            # Mul and Add, which cost ten times more (a key has dozens of these).
            if self.value.q == 1 and all(f.q == 1 for t in self.terms for f in t.factors):
                total = sum(t.sign * prod(int(f.p) for f in t.factors) for t in self.terms)
                same = total == int(self.value.p)
            else:
                total = 0
                for term in self.terms:
                    product = term.sign
                    for factor in term.factors:
                        product = product * factor
                    total = total + product
                same = total == self.value
            if not same:
                raise ValueError(f"expansion of {self.label} sums to {total}, not {self.value}")
            return
        total = sympy.Add(*(term.value for term in self.terms))
        difference = total - self.value
        if difference != 0 and sympy.simplify(difference) != 0:
            raise ValueError(f"expansion of {self.label} sums to {total}, not {self.value}")


@dataclass(frozen=True)
class Step:
    """One worked step of a key: what is done, the formula, shapes, expansions and result."""

    text: str | Tex  # plain words (escaped), or Tex with $math$
    formula: Tex = Tex("")
    shapes: Tex = Tex("")  # math mode, e.g. (2\times 2)\cdot(2\times 2) \to (2\times 2)
    expansions: tuple[Expansion, ...] = ()
    lines: tuple[Tex, ...] = ()  # worked lines that are not sums of products (means, roots), math mode
    result: Quantity | None = None
    checks: tuple[Tex, ...] = ()


@dataclass(frozen=True)
class Part:
    """One lettered question: the prompt, the blanks a student fills in, and the worked steps."""

    prompt: Tex
    answers: tuple[Quantity, ...]
    steps: tuple[Step, ...]
    decimals: bool = False  # the prompt asks for 4-place decimals: the sheet gives wider boxes
    # A "Given" box printed before the part (sheet and key): restarts a chain with clean values,
    # so one slip, or an irrational step, does not spoil everything after it.
    given: Tex = Tex("")
    shown: bool = False  # the teacher chose to print this part's values instead of asking for them


@dataclass(frozen=True)
class Problem:
    """A generated problem: its type, options, seed, given values and parts, all exact."""

    type: str
    title: str
    options: dict[str, str]
    seed: str
    given: tuple[Quantity, ...]
    parts: tuple[Part, ...]
    facts: dict[str, Value | Tex] = field(default_factory=dict)  # what else the statement prints
    needs_calculator: bool = False  # True when a step needs more than pencil (e.g. dividing 4-place decimals)
    # Values only the key prints, beyond what a student computes (a loss curve to 4 places): in the JSON key,
    # but not givens, so not held to the givens' bounds.
    key_facts: dict[str, Value] = field(default_factory=dict)

    @classmethod
    def draft(cls, given, parts, facts=None, needs_calculator=False, key_facts=None) -> "Problem":
        """A problem body; the registry fills in type, title, options and seed."""
        return cls("", "", {}, "", tuple(given), tuple(parts), dict(facts or {}), needs_calculator, dict(key_facts or {}))

    def answer(self, name: str) -> Value:
        """The value of the answer blank called `name` (in any part)."""
        for part in self.parts:
            for quantity in part.answers:
                if quantity.name == name:
                    return quantity.value
        raise KeyError(name)

    def reading(self, name: str):
        """The table-route reading of the answer called `name` (rows of readings for a matrix), or None."""
        for part in self.parts:
            for quantity in part.answers:
                if quantity.name == name:
                    return quantity.reading
        raise KeyError(name)

    def given_value(self, name: str) -> Value:
        """The value of the given quantity called `name`."""
        for quantity in self.given:
            if quantity.name == name:
                return quantity.value
        raise KeyError(name)

    def values(self, kind: str) -> Iterator[sympy.Expr]:
        """Every exact scalar of one kind: 'given', 'intermediate' or 'answer'."""
        if kind == "given":
            quantities = list(self.given) + [Quantity(k, Tex(k), v) for k, v in self.facts.items()]
            yield from _scalars(q.value for q in quantities)
        elif kind == "intermediate":
            for part in self.parts:
                for step in part.steps:
                    for expansion in step.expansions:
                        for term in expansion.terms:
                            yield from term.factors
                            yield term.value
                        yield expansion.value
                    if step.result is not None:
                        yield from _scalars([step.result.value])
        elif kind == "answer":
            yield from _scalars(a.value for part in self.parts for a in part.answers)
        else:
            raise ValueError(f"unknown kind {kind!r}; accepted: given, intermediate, answer")


def _scalars(values) -> Iterator[sympy.Expr]:
    """Flatten matrices into their entries; skip choices."""
    for value in values:
        if isinstance(value, ImmutableMatrix):
            yield from value.flat()  # row by row, as iterating would, without sympy's indexing per entry
        elif isinstance(value, sympy.Basic):
            yield value


@dataclass(frozen=True)
class Bounds:
    """Largest |numerator|, denominator and |value| allowed for a kind of value."""

    numerator: int
    denominator: int
    magnitude: Rational

    def violations(self, values) -> list[str]:
        """Why each value breaks these bounds (empty when all are fine)."""
        found = []
        # Rationals (nearly every value) are compared as plain integers: sympy's own comparisons cost 20× more.
        top, bottom = int(self.magnitude.p), int(self.magnitude.q)
        for value in values:
            if isinstance(value, Rational):
                p, q = int(value.p), int(value.q)
                if abs(p) > self.numerator:
                    found.append(f"{value}: |numerator| > {self.numerator}")
                if q > self.denominator:
                    found.append(f"{value}: denominator > {self.denominator}")
                if abs(p) * bottom > top * q:
                    found.append(f"{value}: |value| > {self.magnitude}")
                continue
            if value == -sympy.oo:
                continue  # a causal mask's −∞ is a marker, not a number to compute with
            # An exact irrational value (e^2/(e^2+1), ln 6): only its size is bounded.
            if not value.is_finite or abs(value.evalf(30)) > self.magnitude:
                found.append(f"{value}: |value| > {self.magnitude} or not finite")
        return found


Forbidden = Callable[[Problem], bool]


@dataclass(frozen=True)
class Contract:
    """What a problem type promises: bounds per kind of value and degenerate draws it never makes."""

    given: Bounds
    intermediate: Bounds
    answer: Bounds
    # name -> predicate that is True for a degenerate problem; such draws are redrawn.
    forbidden: dict[str, Forbidden] = field(default_factory=dict)
    # False where exact irrational values (e^k, ln k) are part of the lesson.
    rational_only: bool = True
    # True where scores always carry a causal mask's −∞ (otherwise only with the option mask=causal).
    always_masked: bool = False

    def degeneracies(self, problem: Problem) -> list[str]:
        """The names of the forbidden conditions this problem meets."""
        return [name for name, test in self.forbidden.items() if test(problem)]

    def violations(self, problem: Problem) -> list[str]:
        """Every bound this problem breaks, by kind."""
        return [
            f"{kind}: {message}"
            for kind, bounds in (("given", self.given), ("intermediate", self.intermediate), ("answer", self.answer))
            for message in bounds.violations(problem.values(kind))
        ]
