"""Q, K and V projections of a sequence: Q = X·W_Q, K = X·W_K, V = X·W_V (row-vector convention)."""

from __future__ import annotations

from sympy import Rational

from generator.core.draws import SMALL_DIFFICULTY, all_zero, has_zero_row, small_matrix
from generator.core.problem import Bounds, Contract, Part, Problem, Quantity, Tex
from generator.core.registry import Option
from generator.core.rng import Rng
from generator.core.slips import equal_rows, hidden_product_slips, product_rule, symmetric
from generator.core.worked import product_step

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
        # Two equal keys would score alike for every query downstream (and two equal tokens project alike).
        "two tokens of X are equal": lambda p: equal_rows(p.given_value("X")),
        "two keys are equal": lambda p: equal_rows(p.answer("K")),
        **{name: rule for n in _NAMES
           for name, rule in product_rule(f"{n} = X·W_{n}", lambda p, n=n: (p.given_value("X"), p.given_value(f"W_{n}"))).items()},
    },
)


WEIGHT_TRIES = 100  # per projection, before X is drawn again


def _weights(rng: Rng, difficulty: str, x, dk: int) -> dict | None:
    """W_Q, W_K, W_V drawn one at a time until each projection teaches (see the contract); None if one cannot."""
    weights: dict = {}
    for name in _NAMES:
        for _ in range(WEIGHT_TRIES):
            w = small_matrix(rng, difficulty, x.cols, dk)
            projected = x * w
            if all_zero(projected) or hidden_product_slips(x, w) or (name == "K" and equal_rows(projected)) \
                    or any(projected == x * other for other in weights.values()):
                continue
            weights[name] = w
            break
        else:
            return None
    return weights


def generate(rng: Rng, options: dict[str, str]) -> Problem:
    """Draw X and the three weight matrices; multiply."""
    n, d, dk = int(options["tokens"]), int(options["d_model"]), int(options["d_k"])
    difficulty = options["difficulty"]
    weights = None
    while weights is None:
        x = small_matrix(rng, difficulty, n, d)
        # A square symmetric X gives Xᵀ·W = X·W for every W: no weights could show that slip.
        if not (has_zero_row(x) or equal_rows(x) or symmetric(x)):
            weights = _weights(rng, difficulty, x, dk)
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
