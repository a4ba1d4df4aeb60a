"""Matrix product: 2×2·2×2 (and the product in the other order) or 2×2·2×1."""

from __future__ import annotations

from sympy import Rational

from generator.core.draws import DIFFICULTY, ENTRY_DENOMINATOR, ENTRY_NUMERATOR, matrix_of
from generator.core.problem import Bounds, Contract, Part, Problem, Quantity, Tex
from generator.core.registry import Option
from generator.core.rng import Rng
from generator.core.forward import plain_product as _mul
from generator.core.slips import plain_product_rule, plain_values, plain_zero
from generator.core.worked import product_step

TITLE = "Matrix multiplication"
OPTIONS = [
    Option("shape", ("2x2", "2x1"), "2x2", "2x2: A·B and B·A of two 2×2 matrices; 2x1: a 2×2 matrix times a column vector"),
    DIFFICULTY,
]

_ENTRY = Bounds(ENTRY_NUMERATOR, ENTRY_DENOMINATOR, Rational(ENTRY_NUMERATOR, 1))
# A sum of two products of entries: |Σ| ≤ 2·5·5 for integers, 2·(5/2)² with denominator 4 for halves.
_SUM = Bounds(50, 4, Rational(50))


# The rules work on plain rows (slips.plain_values): they ask for many products of each draw, at 30 µs each in sympy.
def _has_zero_row_or_column(rows: list[list]) -> bool:
    return any(all(x == 0 for x in row) for row in rows) or any(all(x == 0 for x in col) for col in zip(*rows))


def _commutes(problem: Problem) -> bool:
    a, b = plain_values(problem)["A"], plain_values(problem)[problem.given[1].name]
    return _square(b) and _mul(a, b) == _mul(b, a)


def _square(rows: list[list]) -> bool:
    """2×2 (B), not 2×1 (x)."""
    return (len(rows), len(rows[0])) == (2, 2)


def _second(p: Problem) -> list[list]:
    """B, or the vector x."""
    return plain_values(p)[p.given[1].name]


CONTRACT = Contract(
    given=_ENTRY,
    intermediate=_SUM,
    answer=_SUM,
    forbidden={
        # An identity or a zero row/column makes the product trivial to read off.
        "A is the identity": lambda p: plain_values(p)["A"] == [[1, 0], [0, 1]],
        "A has a zero row or column": lambda p: _has_zero_row_or_column(plain_values(p)["A"]),
        "B (or x) has a zero row or column": lambda p: _has_zero_row_or_column(_second(p)),
        "an answer is all zeros": lambda p: any(plain_zero(plain_values(p)[a.name]) for part in p.parts for a in part.answers),
        # AB = BA would hide the lesson that order matters.
        "A and B commute": _commutes,
        # A·Bᵀ, Aᵀ·B or the answer transposed (and Aᵀ·x) must give another product.
        **plain_product_rule("A·B (or A·x)", lambda p: (plain_values(p)["A"], _second(p))),
        **plain_product_rule("B·A", lambda p: (_second(p), plain_values(p)["A"]) if _square(_second(p))
                             else (plain_values(p)["A"], _second(p))),
    },
)


def generate(rng: Rng, options: dict[str, str]) -> Problem:
    """Draw A and B (or a vector x) and work out the product(s)."""
    difficulty = options["difficulty"]
    a = matrix_of(rng, difficulty, 2, 2)
    if options["shape"] == "2x1":
        x = matrix_of(rng, difficulty, 2, 1, nonzero=True)
        y = Quantity("y", Tex("y"), a * x)
        part = Part(
            prompt=Tex(r"Compute $y = A\,x$."),
            answers=(y,),
            steps=(product_step(Tex(r"Take the dot product of each row of $A$ with the column $x$."), a, x, Tex(r"y = A\,x"), y),),
        )
        return Problem.draft(
            given=[Quantity("A", Tex("A"), a), Quantity("x", Tex("x"), x)],
            parts=[part],
        )
    b = matrix_of(rng, difficulty, 2, 2)
    c = Quantity("C", Tex("C"), a * b)
    d = Quantity("D", Tex("D"), b * a)
    return Problem.draft(
        given=[Quantity("A", Tex("A"), a), Quantity("B", Tex("B"), b)],
        parts=[
            Part(
                prompt=Tex(r"Compute $C = A\,B$."),
                answers=(c,),
                steps=(product_step(Tex(r"Row $i$ of $A$ times column $j$ of $B$ gives $C[i,j]$."), a, b, Tex(r"C = A\,B"), c),),
            ),
            Part(
                prompt=Tex(r"Compute $D = B\,A$ and compare it with $C$."),
                answers=(d,),
                steps=(
                    product_step(
                        Tex(r"Row $i$ of $B$ times column $j$ of $A$ gives $D[i,j]$."),
                        b,
                        a,
                        Tex(r"D = B\,A"),
                        d,
                        checks=(Tex(r"D \ne C\text{: the order of a matrix product matters.}"),),
                    ),
                ),
            ),
        ],
    )
