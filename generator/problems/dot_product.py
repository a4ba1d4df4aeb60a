"""Dot products and what their sign says about the angle between two vectors."""

from __future__ import annotations

from sympy import ImmutableMatrix, Rational

from ..draws import DIFFICULTY, ENTRY_DENOMINATOR, ENTRY_LIMIT, ENTRY_NUMERATOR, entry
from ..problem import Bounds, Choice, Contract, Part, Problem, Quantity, Step, Tex
from ..rng import Rng
from ..worked import dot_expansion

TITLE = "Dot products and similarity"
OPTIONS = [DIFFICULTY]

ANGLE_OPTIONS = (
    ("acute", "less than 90 degrees"),
    ("right", "exactly 90 degrees"),
    ("obtuse", "more than 90 degrees"),
)
_NAMES = ("b", "c", "d")

CONTRACT = Contract(
    given=Bounds(ENTRY_NUMERATOR, ENTRY_DENOMINATOR, Rational(ENTRY_NUMERATOR)),
    intermediate=Bounds(50, 4, Rational(50)),
    answer=Bounds(50, 4, Rational(50)),
    forbidden={
        "a vector is zero": lambda p: any(all(x == 0 for x in q.value) for q in p.given),
        # Exactly one of each sign, so the three cases are all practised.
        "the three signs are not one of each": lambda p: sorted(
            part.answers[1].value.value for part in p.parts
        ) != ["acute", "obtuse", "right"],
        "a vector is a multiple of a": lambda p: any(
            q.value[0] * p.given[0].value[1] == q.value[1] * p.given[0].value[0] for q in p.given[1:]
        ),
    },
)


def _vector(rng: Rng, difficulty: str) -> ImmutableMatrix:
    return ImmutableMatrix(1, 2, [entry(rng, difficulty), entry(rng, difficulty)])


def _angle(dot: Rational) -> str:
    return "acute" if dot > 0 else "right" if dot == 0 else "obtuse"


def generate(rng: Rng, options: dict[str, str]) -> Problem:
    """Draw a (both entries non-zero), one vector at each kind of angle to it, in shuffled order."""
    difficulty = options["difficulty"]
    a = ImmutableMatrix(1, 2, [entry(rng, difficulty, nonzero=True), entry(rng, difficulty, nonzero=True)])
    # A perpendicular vector is a multiple of (−a1, a0); doubling only while it stays in the difficulty's range.
    largest = max(abs(a[0]), abs(a[1]))
    scale = rng.choice([Rational(s) for s in (-2, -1, 1, 2) if abs(s) * largest <= ENTRY_LIMIT[difficulty]])
    perpendicular = ImmutableMatrix(1, 2, [-a[1] * scale, a[0] * scale])
    others = [_vector(rng, difficulty), _vector(rng, difficulty)]
    vectors = rng.shuffled([perpendicular, *others])
    given = [Quantity("a", Tex("a"), a)] + [Quantity(n, Tex(n), v) for n, v in zip(_NAMES, vectors)]
    parts = []
    for name, vector in zip(_NAMES, vectors):
        dot = (a * vector.T)[0]
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
