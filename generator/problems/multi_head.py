"""Two attention heads: concatenate their outputs and project with W_O."""

from __future__ import annotations

from sympy import ImmutableMatrix, Rational

from ..draws import SMALL_DIFFICULTY, has_zero_row, small_matrix
from ..problem import Bounds, Contract, Part, Problem, Quantity, Step, Tex
from ..registry import Option
from ..rng import Rng
from ..worked import product_step

TITLE = "Two heads: concatenate, then project"
OPTIONS = [
    Option("tokens", ("2", "3"), "2", "rows of each head's output"),
    Option("d_head", ("1", "2"), "1", "width of each head; d_model = 2·d_head"),
    SMALL_DIFFICULTY,
]

CONTRACT = Contract(
    given=Bounds(4, 2, Rational(2)),
    intermediate=Bounds(64, 4, Rational(16)),
    answer=Bounds(64, 4, Rational(16)),
    forbidden={
        "a head's output has a zero row": lambda p: has_zero_row(p.given_value("H1")) or has_zero_row(p.given_value("H2")),
        "W_O has a zero row": lambda p: has_zero_row(p.given_value("W_O")),
        "the output is all zeros": lambda p: all(x == 0 for x in p.parts[1].answers[0].value),
    },
)


def generate(rng: Rng, options: dict[str, str]) -> Problem:
    """Draw both heads' outputs and W_O; concatenate and multiply."""
    n, dh = int(options["tokens"]), int(options["d_head"])
    difficulty = options["difficulty"]
    h1, h2 = small_matrix(rng, difficulty, n, dh, nonzero=True), small_matrix(rng, difficulty, n, dh, nonzero=True)
    w_o = small_matrix(rng, difficulty, 2 * dh, 2 * dh)
    concat = Quantity("H", Tex("H"), ImmutableMatrix.hstack(h1, h2))
    out = Quantity("O", Tex("O"), concat.value * w_o)
    return Problem.draft(
        given=[Quantity("H1", Tex("H_1"), h1), Quantity("H2", Tex("H_2"), h2), Quantity("W_O", Tex("W_O"), w_o)],
        parts=[
            Part(Tex(r"Concatenate the heads: $H = [\,H_1 \mid H_2\,]$."), (concat,),
                 (Step(text=Tex(r"Put the columns of $H_2$ to the right of those of $H_1$; rows stay tokens."),
                       formula=Tex(r"H = [\,H_1 \mid H_2\,]"), result=concat),)),
            Part(Tex(r"Project: compute $O = H\,W_O$."), (out,),
                 (product_step(Tex(r"Row $i$ of $H$ times column $j$ of $W_O$."), concat.value, w_o,
                               Tex(r"O = H\,W_O"), out, expand="row"),)),
        ],
    )
