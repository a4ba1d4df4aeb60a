"""Transpose and Q·Kᵀ: every pairwise dot product of rows at once, as attention does."""

from __future__ import annotations

from sympy import Rational

from generator.core.draws import DIFFICULTY, ENTRY_DENOMINATOR, ENTRY_NUMERATOR, matrix_of
from generator.core.problem import Bounds, Contract, Part, Problem, Quantity, Tex
from generator.core.rng import Rng
from generator.core.slips import product_rule
from generator.core.worked import product_step, transpose_step

TITLE = "Transpose and all dot products at once"
OPTIONS = [DIFFICULTY]

_ENTRY = Bounds(ENTRY_NUMERATOR, ENTRY_DENOMINATOR, Rational(ENTRY_NUMERATOR))
_SUM = Bounds(50, 4, Rational(50))

CONTRACT = Contract(
    given=_ENTRY,
    intermediate=_SUM,
    answer=_SUM,
    forbidden={
        # A symmetric K equals its transpose: forgetting to transpose would go unseen.
        "K is symmetric": lambda p: p.given_value("K") == p.given_value("K").T,
        "Q·K equals Q·Kᵀ": lambda p: p.given_value("Q") * p.given_value("K") == p.given_value("Q") * p.given_value("K").T,
        "a row of Q or K is zero": lambda p: any(
            all(x == 0 for x in m.row(i)) for m in (p.given_value("Q"), p.given_value("K")) for i in range(2)
        ),
        "S is all zeros": lambda p: all(x == 0 for x in p.parts[1].answers[0].value),
        # S = Sᵀ would hide K·Qᵀ (queries and keys swapped); Qᵀ·Kᵀ and Kᵀ·Q must differ too.
        **product_rule("S = Q·Kᵀ", lambda p: (p.given_value("Q"), p.given_value("K").T)),
    },
)


def generate(rng: Rng, options: dict[str, str]) -> Problem:
    """Draw Q and K (rows are tokens) and work out Kᵀ and S = Q·Kᵀ."""
    difficulty = options["difficulty"]
    q = matrix_of(rng, difficulty, 2, 2)
    k = matrix_of(rng, difficulty, 2, 2)
    kt = Quantity("KT", Tex(r"K^{\mathsf T}"), k.T)
    s = Quantity("S", Tex("S"), q * k.T)
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
                        k.T,
                        Tex(r"S = Q\,K^{\mathsf T}"),
                        s,
                        checks=(Tex(r"S[i,j] = q_i \cdot k_j\text{: the dot product of row $i$ of $Q$ with row $j$ of $K$.}"),),
                    ),
                ),
            ),
        ],
    )
