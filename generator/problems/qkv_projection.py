"""Q, K and V projections of a sequence: Q = X·W_Q, K = X·W_K, V = X·W_V (row-vector convention)."""

from __future__ import annotations

from sympy import Rational

from ..draws import SMALL_DIFFICULTY, has_zero_row, small_matrix
from ..problem import Bounds, Contract, Part, Problem, Quantity, Tex
from ..registry import Option
from ..rng import Rng
from ..worked import product_step

TITLE = "Query, key and value projections"
OPTIONS = [
    Option("tokens", ("2", "3"), "2", "rows of X (one per token)"),
    Option("d_model", ("2", "3", "4"), "3", "columns of X"),
    Option("d_k", ("1", "2"), "2", "columns of each projection"),
    SMALL_DIFFICULTY,
]
_NAMES = ("Q", "K", "V")

CONTRACT = Contract(
    given=Bounds(4, 2, Rational(2)),
    # A sum of at most 4 products of two numbers of size ≤ 2 (quarters at 'hard').
    intermediate=Bounds(64, 4, Rational(16)),
    answer=Bounds(64, 4, Rational(16)),
    forbidden={
        "X has a zero row": lambda p: has_zero_row(p.given_value("X")),
        "a projection is all zeros": lambda p: any(all(x == 0 for x in part.answers[0].value) for part in p.parts),
        "two projections are equal": lambda p: len({part.answers[0].value for part in p.parts}) < 3,
    },
)


def generate(rng: Rng, options: dict[str, str]) -> Problem:
    """Draw X and the three weight matrices; multiply."""
    n, d, dk = int(options["tokens"]), int(options["d_model"]), int(options["d_k"])
    difficulty = options["difficulty"]
    x = small_matrix(rng, difficulty, n, d)
    weights = {name: small_matrix(rng, difficulty, d, dk) for name in _NAMES}
    expand = "all" if n * dk <= 4 else "row"
    parts = []
    for name in _NAMES:
        w_symbol = f"W_{name}"
        result = Quantity(name, Tex(name), x * weights[name])
        parts.append(Part(
            prompt=Tex(f"Compute ${name} = X\\,{w_symbol}$."),
            answers=(result,),
            steps=(product_step(Tex(f"Row $i$ of $X$ times column $j$ of ${w_symbol}$ gives ${name}[i,j]$."),
                                x, weights[name], Tex(f"{name} = X\\,{w_symbol}"), result, expand=expand),),
        ))
    given = [Quantity("X", Tex("X"), x)] + [Quantity(f"W_{n}", Tex(f"W_{n}"), w) for n, w in weights.items()]
    return Problem.draft(given=given, parts=parts)
