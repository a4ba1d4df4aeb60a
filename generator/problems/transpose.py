"""Transpose and Q·Kᵀ: every pairwise dot product of rows at once, as attention does."""

from __future__ import annotations

from sympy import Rational

from generator.core.draws import DIFFICULTY, ENTRY_DENOMINATOR, ENTRY_NUMERATOR, matrix_of
from generator.core.problem import Bounds, Contract, Part, Problem, Quantity, Tex
from generator.core.rng import Rng
from generator.core.forward import plain_product as _mul, plain_transpose as _t
from generator.core.slips import plain_product_rule, plain_values, plain_zero
from generator.core.worked import product_step, transpose_step

TITLE = "Transpose and all dot products at once"
OPTIONS = [DIFFICULTY]

_ENTRY = Bounds(ENTRY_NUMERATOR, ENTRY_DENOMINATOR, Rational(ENTRY_NUMERATOR))
_SUM = Bounds(50, 4, Rational(50))

def _v(p, name: str) -> list[list]:
    # Plain rows (slips.plain_values): the rules ask for several products of each draw, at 30 µs each in sympy.
    return plain_values(p)[name]


CONTRACT = Contract(
    given=_ENTRY,
    intermediate=_SUM,
    answer=_SUM,
    forbidden={
        # A symmetric K equals its transpose: forgetting to transpose would go unseen.
        "K is symmetric": lambda p: _v(p, "K") == _t(_v(p, "K")),
        "Q·K equals Q·Kᵀ": lambda p: _mul(_v(p, "Q"), _v(p, "K")) == _mul(_v(p, "Q"), _t(_v(p, "K"))),
        "a row of Q or K is zero": lambda p: any(
            all(x == 0 for x in row) for name in ("Q", "K") for row in _v(p, name)[:2]
        ),
        "S is all zeros": lambda p: plain_zero(_v(p, p.parts[1].answers[0].name)),
        # S = Sᵀ would hide K·Qᵀ (queries and keys swapped); Qᵀ·Kᵀ and Kᵀ·Q must differ too.
        **plain_product_rule("S = Q·Kᵀ", lambda p: (_v(p, "Q"), _t(_v(p, "K")))),
    },
)


def generate(rng: Rng, options: dict[str, str]) -> Problem:
    """Draw Q and K (rows are tokens) and work out Kᵀ and S = Q·Kᵀ."""
    difficulty = options["difficulty"]
    q = matrix_of(rng, difficulty, 2, 2)
    k = matrix_of(rng, difficulty, 2, 2)
    kt = Quantity("KT", Tex(r"K^{\mathsf T}"), k.T)  # Kᵀ once: sympy builds a new matrix for every .T
    s = Quantity("S", Tex("S"), q * kt.value)
    return Problem.draft(
        given=[Quantity("Q", Tex("Q"), q), Quantity("K", Tex("K"), k)],
        parts=[
            Part(
                prompt=Tex(r"Write down $K^{\mathsf T}$."),
                answers=(kt,),
                steps=(transpose_step("K", "K", k, kt),),
            ),
            Part(
                prompt=Tex(r"Compute $S = Q\,K^{\mathsf T}$."),
                answers=(s,),
                steps=(
                    product_step(
                        Tex(r"Row $i$ of $Q$ times column $j$ of $K^{\mathsf T}$ (which is row $j$ of $K$) gives $S[i,j]$."),
                        q,
                        kt.value,
                        Tex(r"S = Q\,K^{\mathsf T}"),
                        s,
                        checks=(Tex(r"S[i,j] = q_i \cdot k_j\text{: the dot product of row $i$ of $Q$ with row $j$ of $K$.}"),),
                    ),
                ),
            ),
        ],
    )
