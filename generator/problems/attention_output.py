"""Attention output O = A·V from given rational attention weights A (each row sums to 1)."""

from __future__ import annotations

from sympy import ImmutableMatrix, Rational

from generator.core.draws import has_zero_row
from generator.core.forward import attention_weight_row
from generator.core.problem import Bounds, Contract, Part, Problem, Quantity, Tex
from generator.core.registry import Option
from generator.core.rng import Rng
from generator.core.slips import product_rule
from generator.core.worked import product_step

TITLE = "Attention output: weights times values"
OPTIONS = [
    Option("tokens", ("2", "3"), "3", "number of tokens (rows of A and V)"),
    Option("d_v", ("2", "3"), "2", "width of each value vector"),
    Option("mask", ("none", "causal"), "none", "causal: weights above the diagonal are 0"),
]

CONTRACT = Contract(
    given=Bounds(4, 4, Rational(4)),
    # Weighted averages of values in [-4, 4]: quarters or thirds, never beyond ±4.
    intermediate=Bounds(16, 4, Rational(4)),
    answer=Bounds(16, 4, Rational(4)),
    forbidden={
        "V has a zero row": lambda p: has_zero_row(p.given_value("V")),
        "two tokens get the same output": lambda p: len({tuple(p.parts[0].answers[0].value.row(i))
                                                       for i in range(p.parts[0].answers[0].value.rows)})
        < p.parts[0].answers[0].value.rows,
        # Aᵀ·V (weights read down a column), A·Vᵀ, V·A or Oᵀ must give another output.
        **product_rule("O = A·V", lambda p: (p.given_value("A"), p.given_value("V"))),
    },
)


def generate(rng: Rng, options: dict[str, str]) -> Problem:
    """Draw the weights (rows summing to 1) and V; multiply."""
    n, dv = int(options["tokens"]), int(options["d_v"])
    causal = options["mask"] == "causal"
    a = ImmutableMatrix([attention_weight_row(rng, i + 1 if causal else n, n) for i in range(n)])
    v = ImmutableMatrix(n, dv, [Rational(rng.integer(-4, 4)) for _ in range(n * dv)])
    o = Quantity("O", Tex("O"), a * v)
    if any(sum(a.row(i)) != 1 for i in range(n)):
        raise AssertionError("a weight row does not sum to 1")
    part = Part(
        prompt=Tex(r"Compute $O = A\,V$. Row $i$ of $O$ is the weighted average of the value rows that token $i$ attends to."),
        answers=(o,),
        steps=(product_step(Tex(r"Row $i$ of $O$ is $\sum_j A[i,j]\,V[j,:]$."), a, v, Tex(r"O = A\,V"), o,
                            expand="row", checks=(Tex(r"\text{Each row of } A \text{ sums to 1: each output is an average of values.}"),)),),
    )
    return Problem.draft(given=[Quantity("A", Tex("A"), a), Quantity("V", Tex("V"), v)], parts=[part])
