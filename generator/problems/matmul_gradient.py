"""Gradients of a matrix product C = A·B: dA = dC·Bᵀ and dB = Aᵀ·dC, on numbers."""

from __future__ import annotations

from sympy import Rational

from generator.core.draws import DIFFICULTY, ENTRY_DENOMINATOR, ENTRY_NUMERATOR, matrix_of
from generator.core.problem import Bounds, Contract, Part, Problem, Quantity, Tex
from generator.core.rng import Rng
from generator.core.forward import plain_product as _mul, plain_transpose as _t
from generator.core.slips import plain_product_rule, plain_values, plain_zero
from generator.core.worked import product_step, shape_text

TITLE = "Gradients of a matrix product"
OPTIONS = [DIFFICULTY]



def _g(p: Problem, name: str) -> list[list]:
    # Plain rows (slips.plain_values): the rules below ask for a dozen products of each draw, at 30 µs each in sympy.
    return plain_values(p)[name]


CONTRACT = Contract(
    given=Bounds(ENTRY_NUMERATOR, ENTRY_DENOMINATOR, Rational(ENTRY_NUMERATOR)),
    intermediate=Bounds(50, 4, Rational(50)),
    answer=Bounds(50, 4, Rational(50)),
    forbidden={
        "dC is zero": lambda p: plain_zero(_g(p, "dC")),
        "a gradient is zero": lambda p: any(plain_zero(_g(p, part.answers[0].name)) for part in p.parts),
        # Each common slip must give a visibly different (wrong) answer.
        "forgetting Bᵀ gives the same dA": lambda p: _mul(_g(p, "dC"), _g(p, "B")) == _mul(_g(p, "dC"), _t(_g(p, "B"))),
        "forgetting Aᵀ gives the same dB": lambda p: _mul(_g(p, "A"), _g(p, "dC")) == _mul(_t(_g(p, "A")), _g(p, "dC")),
        "Bᵀ·dC gives the same dA": lambda p: _mul(_t(_g(p, "B")), _g(p, "dC")) == _mul(_g(p, "dC"), _t(_g(p, "B"))),
        "dC·Aᵀ gives the same dB": lambda p: _mul(_g(p, "dC"), _t(_g(p, "A"))) == _mul(_t(_g(p, "A")), _g(p, "dC")),
        # The generic slips too, among them a transposed answer (dA or dB symmetric).
        **plain_product_rule("dA = dC·Bᵀ", lambda p: (_g(p, "dC"), _t(_g(p, "B")))),
        **plain_product_rule("dB = Aᵀ·dC", lambda p: (_t(_g(p, "A")), _g(p, "dC"))),
    },
)


def generate(rng: Rng, options: dict[str, str]) -> Problem:
    """Draw A, B and the upstream gradient dC; work out dA and dB."""
    difficulty = options["difficulty"]
    a, b, dc = (matrix_of(rng, difficulty, 2, 2) for _ in range(3))
    at, bt = a.T, b.T  # each transpose once: sympy builds a new matrix for every .T
    da = Quantity("dA", Tex("dA"), dc * bt)
    db = Quantity("dB", Tex("dB"), at * dc)
    return Problem.draft(
        given=[Quantity("A", Tex("A"), a), Quantity("B", Tex("B"), b), Quantity("dC", Tex("dC"), dc)],
        parts=[
            Part(
                prompt=Tex(r"Compute $dA = dC\,B^{\mathsf T}$."),
                answers=(da,),
                steps=(
                    product_step(
                        Tex(r"Row $i$ of $dC$ times column $j$ of $B^{\mathsf T}$ (row $j$ of $B$)."),
                        dc,
                        bt,
                        Tex(r"dA = dC\,B^{\mathsf T}"),
                        da,
                        checks=(Tex(f"dA \\text{{ has the shape of }} A\\text{{: }} {shape_text(a)}."),),
                    ),
                ),
            ),
            Part(
                prompt=Tex(r"Compute $dB = A^{\mathsf T}\,dC$."),
                answers=(db,),
                steps=(
                    product_step(
                        Tex(r"Row $i$ of $A^{\mathsf T}$ (column $i$ of $A$) times column $j$ of $dC$."),
                        at,
                        dc,
                        Tex(r"dB = A^{\mathsf T}\,dC"),
                        db,
                        checks=(Tex(f"dB \\text{{ has the shape of }} B\\text{{: }} {shape_text(b)}."),),
                    ),
                ),
            ),
        ],
    )
