"""Dot products and what their sign says about the angle between two vectors."""

from __future__ import annotations

from sympy import Rational

from generator.core.draws import DIFFICULTY, ENTRY_DENOMINATOR, ENTRY_LIMIT, ENTRY_NUMERATOR, drawn_matrix, entry
from generator.core.problem import Bounds, Choice, Contract, Part, Problem, Quantity, Step, Tex
from generator.core.rng import Rng
from generator.core.slips import plain_values, plain_zero
from generator.core.worked import dot_expansion

TITLE = "Dot products and similarity"
OPTIONS = [DIFFICULTY]

ANGLE_OPTIONS = (
    ("acute", "less than 90 degrees"),
    ("right", "exactly 90 degrees"),
    ("obtuse", "more than 90 degrees"),
)
_NAMES = ("b", "c", "d")

# The rules read the vectors as plain rows (slips.plain_values): sympy builds a new object for every entry it gives.
CONTRACT = Contract(
    given=Bounds(ENTRY_NUMERATOR, ENTRY_DENOMINATOR, Rational(ENTRY_NUMERATOR)),
    intermediate=Bounds(50, 4, Rational(50)),
    answer=Bounds(50, 4, Rational(50)),
    forbidden={
        "a vector is zero": lambda p: any(plain_zero(plain_values(p)[q.name]) for q in p.given),
        "a vector is a multiple of a": lambda p: any(
            _row(p, q)[0] * _row(p, p.given[0])[1] == _row(p, q)[1] * _row(p, p.given[0])[0] for q in p.given[1:]
        ),
        "two of b, c, d are equal": lambda p: len({tuple(_row(p, q)) for q in p.given[1:]}) < len(_NAMES),
        # a₀b₁ + a₁b₀ − (a₀b₀ + a₁b₁) = −(a₀ − a₁)(b₀ − b₁): pairing the wrong entries must change the answer.
        "pairing a₀ with b₁ gives the same dot product": lambda p: any(
            _crossed(_row(p, p.given[0]), _row(p, q)) == _dot(_row(p, p.given[0]), _row(p, q)) for q in p.given[1:]),
    },
)
# Which angles a sheet asks about is drawn slot by slot (not one of each): no answer follows from the other two.


def _row(p: Problem, quantity: Quantity) -> list:
    """A given vector's entries, plain."""
    return plain_values(p)[quantity.name][0]


def _dot(a, b) -> Rational:
    return a[0] * b[0] + a[1] * b[1]


def _crossed(a, b) -> Rational:
    return a[0] * b[1] + a[1] * b[0]


def _angle(dot: Rational) -> str:
    return "acute" if dot > 0 else "right" if dot == 0 else "obtuse"


def _sheet_vectors(rng: Rng, difficulty: str, a: tuple) -> list[tuple] | None:
    """b, c, d at angles drawn one by one, as pairs of entries; None when the draw cannot be met (more right angles
    than scales). Pairs, not sympy vectors, while drawing: most draws are thrown away."""
    largest = max(abs(a[0]), abs(a[1]))
    # A perpendicular vector is a multiple of (−a1, a0), scaled only while it stays in the difficulty's range.
    scales = rng.shuffled([Rational(s) for s in (-2, -1, 1, 2) if abs(s) * largest <= ENTRY_LIMIT[difficulty]])
    vectors: list[tuple] = []
    for angle in (rng.choice([key for key, _ in ANGLE_OPTIONS]) for _ in _NAMES):
        if angle == "right":
            if not scales:
                return None
            scale = scales.pop()
            vectors.append((-a[1] * scale, a[0] * scale))
            continue
        while True:
            v = (entry(rng, difficulty), entry(rng, difficulty))
            if (_angle(_dot(a, v)) == angle and v[0] != v[1] and v[0] * a[1] != v[1] * a[0] and v not in vectors):
                vectors.append(v)
                break
    return vectors


def generate(rng: Rng, options: dict[str, str]) -> Problem:
    """Draw a (non-zero entries of different sizes) and b, c, d, each at an angle drawn on its own."""
    difficulty = options["difficulty"]
    vectors = None
    while vectors is None:
        a = (entry(rng, difficulty, nonzero=True), entry(rng, difficulty, nonzero=True))
        # |a₀| ≠ |a₁|: a₀ = a₁ would let crossed pairs give the same dot product; a₀ = −a₁ does so for a⊥.
        if abs(a[0]) != abs(a[1]):
            vectors = _sheet_vectors(rng, difficulty, a)
    given = [Quantity("a", Tex("a"), drawn_matrix(1, 2, a))] + [Quantity(n, Tex(n), drawn_matrix(1, 2, v))
                                                                 for n, v in zip(_NAMES, vectors)]
    parts = []
    for name, vector in zip(_NAMES, vectors):
        dot = _dot(a, vector)
        angle = Choice(_angle(dot), ANGLE_OPTIONS)
        check = {
            "acute": r"a \cdot " + name + r" > 0\text{, so the angle is less than } 90^\circ.",
            "right": r"a \cdot " + name + r" = 0\text{, so the vectors are perpendicular.}",
            "obtuse": r"a \cdot " + name + r" < 0\text{, so the angle is more than } 90^\circ.",
        }[angle.value]
        parts.append(
            Part(
                prompt=Tex(f"Compute $a \\cdot {name}$. Is the angle between $a$ and ${name}$ less than, equal to or more than $90^\\circ$?"),
                answers=(
                    Quantity(f"a.{name}", Tex(f"a \\cdot {name}"), dot),
                    Quantity(f"angle(a,{name})", Tex(f"\\angle(a,{name})"), angle),
                ),
                steps=(
                    Step(
                        text=Tex(f"Multiply matching entries of $a$ and ${name}$ and add."),
                        formula=Tex(f"a \\cdot {name} = a_0 {name}_0 + a_1 {name}_1"),
                        expansions=(dot_expansion(Tex(f"a \\cdot {name}"), a, vector),),
                        checks=(Tex(check),),
                    ),
                ),
            )
        )
    return Problem.draft(given=given, parts=parts)
