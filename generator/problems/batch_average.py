"""Batch gradient averaging: the loss is a mean over examples, so the step uses the mean of their gradients."""

from __future__ import annotations

from sympy import ImmutableMatrix, Rational

from generator.core.problem import Bounds, Contract, Expansion, Part, Problem, Quantity, Step, Term, Tex
from generator.core.registry import Option
from generator.documents.render import factor_tex, number_tex
from generator.core.rng import Rng
from generator.core.slips import dropped_hidden, reduction_hidden

TITLE = "Averaging gradients over a batch"
OPTIONS = [Option("batch", ("2", "3", "4"), "3", "examples in the batch; at most 4 fit the sheet's table of gradients")]
LEARNING_RATE = Rational(1, 2)
SIZE = 2

CONTRACT = Contract(
    given=Bounds(6, 2, Rational(6)),
    intermediate=Bounds(40, 8, Rational(16)),  # n·ḡ up to 16 in the written-out sums
    answer=Bounds(40, 8, Rational(6)),
    forbidden={
        "an entry of the batch gradient is 0 (that parameter would not move)": lambda p: 0 in p.answer("g_mean"),
        "every example has the same gradient (averaging would teach nothing)": lambda p: len(
            {tuple(p.given_value("G").row(i)) for i in range(p.given_value("G").rows)}) == 1,
        "θ₀ is all zeros (dropping it would not show)": lambda p: dropped_hidden(p.given_value("theta0")),
        "the sum gives the same ḡ as the mean": lambda p: reduction_hidden(p.answer("g_mean"), p.given_value("G").rows),
        # With two examples, each example's own mean is also a 1×2 row: averaging along the wrong axis must show.
        "averaging each example's entries gives the same ḡ": lambda p: p.given_value("G").shape == (2, 2) and [
            sum(p.given_value("G").row(i)) / 2 for i in range(2)] == list(p.answer("g_mean")),
    },
)


def generate(rng: Rng, options: dict[str, str]) -> Problem:
    """Draw one gradient row per example; average them and take one SGD step with η = 1/2."""
    n = int(options["batch"])
    grads = ImmutableMatrix(n, SIZE, [rng.integer(-4, 4) for _ in range(n * SIZE)])
    theta = ImmutableMatrix([[rng.integer(-3, 3) for _ in range(SIZE)]])
    mean = ImmutableMatrix([[sum(grads.col(j)) / n for j in range(SIZE)]])
    new = theta - LEARNING_RATE * mean
    mean_q, new_q = Quantity("g_mean", Tex(r"\bar g"), mean), Quantity("theta1", Tex(r"\theta_1"), new)
    parts = [
        Part(Tex(r"Compute the batch gradient $\bar g$, the mean of the examples' gradients (rows of $G$)."), (mean_q,),
             (Step(text=Tex(f"The loss is the mean over the {n} examples, so its gradient is the mean of theirs."),
                   formula=Tex(r"\bar g[j] = \frac{1}{" + str(n) + r"}\sum_i G[i,j]"),
                   expansions=tuple(Expansion(Tex(f"{n}\\,\\bar g[{j}]"), tuple(Term((grads[i, j],)) for i in range(n)),
                                              n * mean[0, j]) for j in range(SIZE)),
                   result=mean_q),)),
        Part(Tex(f"Take one SGD step: $\\theta_1 = \\theta_0 - \\eta\\,\\bar g$ with $\\eta = {number_tex(LEARNING_RATE)}$."), (new_q,),
             (Step(text=Tex("Move against the averaged gradient."), formula=Tex(r"\theta_1 = \theta_0 - \eta\,\bar g"),
                   lines=tuple(Tex(f"\\theta_1[{j}] = {number_tex(theta[j])} - {number_tex(LEARNING_RATE)} \\cdot "
                                   + f"{factor_tex(mean[j])} = {number_tex(new[j])}") for j in range(SIZE)),
                   result=new_q,
                   checks=(Tex(r"\text{Every entry moved against the sign of } \bar g\text{.}"),
                           Tex(r"\text{With a summed loss the step would be } " + str(n) + r"\text{ times as large.}"))),)),
    ]
    return Problem.draft(given=[Quantity("G", Tex("G"), grads), Quantity("theta0", Tex(r"\theta_0"), theta)], parts=parts,
                         facts={"eta": LEARNING_RATE})
