"""The gradient of cross-entropy with respect to the logits: dL/dz = p − onehot(target), divided by N for a mean."""

from __future__ import annotations

import sympy
from sympy import ImmutableMatrix, Rational

from generator.core.problem import Bounds, Contract, Part, Problem, Quantity, Step, Tex
from generator.core.registry import Option
from generator.core.forward import draw_log_logits
from generator.documents.render import ln_matrix_tex, number_tex
from generator.core.rng import Rng
from generator.core.slips import reduction_hidden, softmax_axis_hidden

TITLE = "Backward: the gradient of the loss with respect to the logits"
OPTIONS = [
    Option("positions", ("1", "2", "3"), "2", "how many positions (rows of logits) the loss covers"),
    Option("reduction", ("sum", "mean"), "mean", "mean divides every row's gradient by the number of positions"),
    Option("vocab", ("3", "4"), "3", "vocabulary size (columns of logits)"),
]
VOCABULARY = "ABCD"

CONTRACT = Contract(
    given=Bounds(6, 1, Rational(6)),
    intermediate=Bounds(12, 36, Rational(12)),
    answer=Bounds(12, 36, Rational(1)),
    rational_only=False,  # the logits are given as ln k
    forbidden={
        # A target that already has all the probability has a zero gradient: nothing to learn.
        "a gradient row is all zeros": lambda p: any(not any(p.answer("dz").row(i)) for i in range(p.answer("dz").rows)),
        "softmax down the columns gives the same p": lambda p: softmax_axis_hidden(p.given_value("z")),
        "the summed loss's gradient gives the same as the mean's": lambda p: p.options["reduction"] == "mean"
        and reduction_hidden(p.answer("dz"), p.answer("dz").rows),
    },
)


def generate(rng: Rng, options: dict[str, str]) -> Problem:
    """Logits ln k make p = k/Σk rational, so every gradient is an exact small fraction."""
    positions, vocab, mean = int(options["positions"]), int(options["vocab"]), options["reduction"] == "mean"
    ks, targets = draw_log_logits(rng, positions, vocab)
    z = ImmutableMatrix([[sympy.log(k) for k in row] for row in ks])
    p = ImmutableMatrix([[Rational(k, sum(row)) for k in row] for row in ks])
    onehot = ImmutableMatrix(positions, vocab, lambda i, j: 1 if j == targets[i] else 0)
    scale = Rational(1, positions) if mean else Rational(1)
    dz = (p - onehot) * scale
    p_q, y_q, dz_q = Quantity("p", Tex("p"), p), Quantity("y", Tex("y"), onehot), Quantity("dz", Tex(r"\frac{\partial L}{\partial z}"), dz)
    scale_tex = f"\\frac{{1}}{{{positions}}}" if mean and positions > 1 else ""
    lines = tuple(
        Tex(f"\\text{{row {i}, target {VOCABULARY[t]}: }} " + scale_tex + r"\left("
            + ",\\ ".join(number_tex(p[i, j]) + (" - 1" if j == t else "") for j in range(vocab)) + r"\right)")
        for i, t in enumerate(targets))
    parts = [
        Part(Tex(r"Compute the probabilities $p = \operatorname{softmax}(z)$ of each row, as fractions."), (p_q,),
             (Step(text=Tex(r"$e^{\ln k} = k$, so each row's probabilities are its $k$'s divided by their sum."),
                   formula=Tex(r"p[i,j] = \frac{e^{z_{ij}}}{\sum_m e^{z_{im}}}"), result=p_q,
                   checks=(Tex(r"\text{Each row of } p \text{ sums to 1.}"),)),)),
        Part(Tex(r"Write the one-hot targets $y$ (row $i$ has a 1 in the column of position $i$'s target)."), (y_q,),
             (Step(text=Tex("One row per position, 1 at the target's column, 0 elsewhere."), result=y_q),)),
        Part(Tex(f"Compute the gradient $\\partial L / \\partial z$ of the {'mean' if mean else 'summed'} loss."), (dz_q,),
             (Step(text=Tex("Softmax and cross-entropy together give p minus the one-hot target"
                            + (f", divided by the {positions} positions for a mean." if mean and positions > 1 else ".")),
                   formula=Tex(r"\frac{\partial L}{\partial z} = " + (scale_tex + r"\,(p - y)" if scale_tex else "p - y")),
                   lines=lines, result=dz_q,
                   checks=(Tex(r"\text{Each row sums to 0, and only the target's entry is negative.}"),)),)),
    ]
    z_tex = Tex(ln_matrix_tex(ks))
    facts = {"z_tex": z_tex, "targets": ImmutableMatrix([targets]), "vocabulary": ", ".join(VOCABULARY[:vocab]),
             "targets_text": ", ".join(f"position {i}: {VOCABULARY[t]}" for i, t in enumerate(targets)),
             "reduction": options["reduction"]}
    return Problem.draft(given=[Quantity("z", Tex("z"), z)], parts=parts, facts=facts)
