"""Output layer backward: from ∂L/∂z to ∂L/∂W_out = hᵀ·∂L/∂z, ∂L/∂b (summed over positions) and ∂L/∂h = ∂L/∂z·W_outᵀ."""

from __future__ import annotations

from sympy import ImmutableMatrix, Rational

from generator.core.draws import has_zero_row
from generator.core.problem import Bounds, Contract, Expansion, Part, Problem, Quantity, Step, Term, Tex
from generator.core.registry import Option
from generator.core.rng import Rng
from generator.core.slips import product_rule
from generator.core.worked import product_step, transpose_step

TITLE = "Backward through the output layer"
OPTIONS = [
    Option("positions", ("1", "2"), "2", "rows of h and of ∂L/∂z"),
    Option("vocab", ("3", "4"), "3", "columns of W_out (vocabulary size)"),
]
D_MODEL = 2

CONTRACT = Contract(
    given=Bounds(8, 8, Rational(2)),
    # |value| ≤ 4 in eighths: a numerator up to 32 (25/8 occurs once the transposed-h draws are turned away).
    intermediate=Bounds(32, 8, Rational(4)),
    answer=Bounds(32, 8, Rational(4)),
    forbidden={
        "a hidden state is zero": lambda p: has_zero_row(p.given_value("h")),
        "a gradient is all zeros": lambda p: any(not any(p.answer(n)) for n in ("dW", "db", "dh")),
        **product_rule("∂L/∂W_out = hᵀ·∂L/∂z", lambda p: (p.given_value("h").T, p.given_value("dz"))),
        **product_rule("∂L/∂h = ∂L/∂z·W_outᵀ", lambda p: (p.given_value("dz"), p.given_value("W_out").T)),
    },
)


def _dz_row(rng: Rng, vocab: int, total: int) -> list[Rational]:
    """p − onehot with p = k/total for small k: a real dlogits row (sums to 0, one negative entry).

    Every row shares the denominator `total`, so sums over rows stay in that denominator.
    """
    while True:
        ks = [rng.integer(1, total - vocab + 1) for _ in range(vocab)]
        if sum(ks) == total and len(set(ks)) > 1:
            break
    target = rng.below(vocab)
    return [Rational(k, total) - (1 if j == target else 0) for j, k in enumerate(ks)]


def generate(rng: Rng, options: dict[str, str]) -> Problem:
    """Draw h, W_out and a dlogits matrix; backpropagate through z = h·W_out + b."""
    n, vocab = int(options["positions"]), int(options["vocab"])
    h = ImmutableMatrix(n, D_MODEL, [rng.choice([-2, -1, 1, 2]) for _ in range(n * D_MODEL)])
    w = ImmutableMatrix(D_MODEL, vocab, [rng.integer(-2, 2) for _ in range(D_MODEL * vocab)])
    total = rng.choice([4, 6] if vocab == 3 else [6, 8])
    dz = ImmutableMatrix([_dz_row(rng, vocab, total) for _ in range(n)])
    dw, dh = h.T * dz, dz * w.T
    db = ImmutableMatrix([[sum(dz.col(j)) for j in range(vocab)]])
    dw_q = Quantity("dW", Tex(r"\frac{\partial L}{\partial W_{\text{out}}}"), dw)
    db_q = Quantity("db", Tex(r"\frac{\partial L}{\partial b}"), db)
    dh_q = Quantity("dh", Tex(r"\frac{\partial L}{\partial h}"), dh)
    ht_q, wt_q = Quantity("hT", Tex(r"h^{\mathsf T}"), h.T), Quantity("WT", Tex(r"W_{\text{out}}^{\mathsf T}"), w.T)
    db_step = Step(
        text=Tex("The bias is added to every position, so its gradient adds up the rows of $\\partial L/\\partial z$."),
        formula=Tex(r"\frac{\partial L}{\partial b}[j] = \sum_i \frac{\partial L}{\partial z}[i,j]"),
        expansions=tuple(Expansion(Tex(f"\\partial b[{j}]"), tuple(Term((dz[i, j],)) for i in range(n)), db[0, j])
                         for j in range(vocab)),
        result=db_q,
        checks=(Tex(r"\text{The entries of } \partial L/\partial b \text{ add up to 0, as every row of } \partial L/\partial z \text{ does.}"),))
    parts = [
        Part(Tex(r"Compute $\partial L/\partial W_{\text{out}} = h^{\mathsf T}\,\partial L/\partial z$."), (dw_q,),
             (transpose_step("h", "h", h, ht_q),
              product_step(Tex(r"Row $i$ of $h^{\mathsf T}$ times column $j$ of $\partial L/\partial z$."), h.T, dz,
                           Tex(r"\frac{\partial L}{\partial W_{\text{out}}} = h^{\mathsf T}\,\frac{\partial L}{\partial z}"), dw_q,
                           expand="row",
                           checks=(Tex(r"\text{Its shape } (d_{\text{model}} \times V) \text{ is the shape of } W_{\text{out}}."),)))),
        Part(Tex(r"Compute $\partial L/\partial b$."), (db_q,), (db_step,)),
        Part(Tex(r"Compute the gradient passed back to the hidden state, $\partial L/\partial h = \partial L/\partial z\;W_{\text{out}}^{\mathsf T}$."),
             (dh_q,),
             (transpose_step("W_out", r"W_{\text{out}}", w, wt_q),
              product_step(Tex(r"Row $i$ of $\partial L/\partial z$ times column $j$ of $W_{\text{out}}^{\mathsf T}$."), dz, w.T,
                           Tex(r"\frac{\partial L}{\partial h} = \frac{\partial L}{\partial z}\,W_{\text{out}}^{\mathsf T}"), dh_q,
                           expand="row", checks=(Tex(r"\text{Its shape is the shape of } h."),)))),
    ]
    return Problem.draft(given=[Quantity("h", Tex("h"), h), Quantity("W_out", Tex(r"W_{\text{out}}"), w),
                                Quantity("dz", Tex(r"\frac{\partial L}{\partial z}"), dz)], parts=parts)
