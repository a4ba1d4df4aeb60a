"""Scaled attention scores S = Q·Kᵀ/√d_k, with or without a causal mask."""

from __future__ import annotations

from sympy import ImmutableMatrix, Rational

from generator.core.draws import SMALL_DIFFICULTY, has_zero_row, small_matrix
from generator.core.forward import causal_mask, causal_mask_step, scale_step
from generator.core.problem import Bounds, Contract, Part, Problem, Quantity, Tex
from generator.core.registry import Option, SpecError
from generator.core.rng import Rng
from generator.core.slips import constant_row, equal_rows, product_rule, unscaled_hidden
from generator.core.worked import product_step

TITLE = "Scaled attention scores"
OPTIONS = [
    Option("tokens", ("2", "3"), "3", "rows of Q and K"),
    # √d_k must be a whole number on a pencil sheet: 1 or 2 (d_k = 2 or 8 would need √2).
    Option("d_k", ("1", "4"), "4", "width of queries and keys; √d_k = 1 or 2"),
    Option("mask", ("none", "causal"), "none", "causal: token i only sees tokens j ≤ i"),
    SMALL_DIFFICULTY,
]
_ROOTS = {1: 1, 4: 2}

CONTRACT = Contract(
    given=Bounds(4, 2, Rational(4)),  # d_k itself is a given
    intermediate=Bounds(128, 8, Rational(16)),
    # Q·Kᵀ itself is an answer (up to 16); the scaled scores have denominators up to 8.
    answer=Bounds(128, 8, Rational(16)),
    forbidden={
        "Q or K has a zero row": lambda p: has_zero_row(p.given_value("Q")) or has_zero_row(p.given_value("K")),
        "all scores are equal": lambda p: len(set(p.parts[0].answers[0].value)) == 1,
        # Two equal keys score alike for every query: their columns of S repeat and softmax cannot tell them apart.
        "two keys are equal": lambda p: equal_rows(p.given_value("K")),
        "a query scores all its visible keys alike": lambda p: constant_row(p.answer("S")),
        **product_rule("Q·Kᵀ", lambda p: (p.given_value("Q"), p.given_value("K").T)),
        "forgetting the 1/√d_k gives the same scores": lambda p: unscaled_hidden(p.answer("QKT"), _ROOTS[int(p.facts["d_k"])]),
    },
)


def check_options(options: dict[str, str]) -> None:
    """Easy keys with d_k = 1 are the numbers 1 and 2: three tokens would need two equal keys."""
    if options["difficulty"] == "easy" and options["d_k"] == "1" and options["tokens"] == "3":
        raise SpecError("problem type 'attention_scores': tokens=3 with d_k=1 at difficulty=easy would repeat a key "
                        "(easy entries are 1 or 2); accepted: tokens=2, d_k=4, or difficulty medium or hard")


def _distinct_rows(rng: Rng, difficulty: str, n: int, dk: int):
    """n rows of non-zero small entries, a row equal to an earlier one drawn again."""
    rows: list[list[Rational]] = []
    while len(rows) < n:
        row = list(small_matrix(rng, difficulty, 1, dk, nonzero=True))
        if row not in rows:
            rows.append(row)
    return rows


def generate(rng: Rng, options: dict[str, str]) -> Problem:
    """Draw Q and K; work out Q·Kᵀ, the scaling and (if asked) the mask."""
    n, dk = int(options["tokens"]), int(options["d_k"])
    # Non-zero entries: a zero query or key row would make a whole row or column of scores trivial.
    q = small_matrix(rng, options["difficulty"], n, dk, nonzero=True)
    k = ImmutableMatrix(_distinct_rows(rng, options["difficulty"], n, dk))  # equal keys would score alike
    raw = Quantity("QKT", Tex(r"Q\,K^{\mathsf T}"), q * k.T)
    scaled = raw.value / _ROOTS[dk]
    masked = options["mask"] == "causal"
    final = causal_mask(scaled) if masked else scaled
    s = Quantity("S", Tex("S"), final)
    steps = [scale_step(raw.value, _ROOTS[dk], Quantity("S", Tex("S"), scaled))]
    if masked:
        steps.append(causal_mask_step(scaled, s))
    parts = [
        Part(prompt=Tex(r"Compute $Q\,K^{\mathsf T}$."), answers=(raw,),
             steps=(product_step(Tex(r"Row $i$ of $Q$ dotted with row $j$ of $K$ gives entry $[i,j]$."),
                                 q, k.T, Tex(r"Q\,K^{\mathsf T}"), raw, expand="row"),)),
        Part(prompt=Tex(r"Compute the scaled scores $S = Q\,K^{\mathsf T} / \sqrt{d_k}$"
                        + (r" and apply the causal mask." if masked else ".")),
             answers=(s,), steps=tuple(steps)),
    ]
    return Problem.draft(given=[Quantity("Q", Tex("Q"), q), Quantity("K", Tex("K"), k)], parts=parts,
                         facts={"d_k": Rational(dk), "causal": Rational(int(masked))})
