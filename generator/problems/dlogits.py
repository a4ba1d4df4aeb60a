"""The gradient of cross-entropy with respect to the logits: dL/dz = p − onehot(target), divided by N for a mean; which
logit's gradient is negative, and why (a choice)."""

from __future__ import annotations

import sympy
from sympy import ImmutableMatrix, Rational

from generator.core.problem import Bounds, Choice, Contract, Part, Problem, Quantity, Step, Tex
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
    Option("sign", ("yes", "no"), "yes",
           "yes: a last part asks which logit of position 0 has a negative gradient (and so rises), and why"),
]
VOCABULARY = "ABCD"
# Reasons offered for the sign (their statements are in the prompt): (1) is the right one; (2) and (3) are the classic
# misreadings, and the draws keep the target away from the tokens they point at (see _slip_tokens).
REASONS = (("1", "(1)"), ("2", "(2)"), ("3", "(3)"))


def _slip_tokens(p: Problem) -> set[int]:
    """The tokens of position 0 a misreading points at: the likeliest (the step backs the prediction) and the least
    likely (the step evens out the probabilities)."""
    row = list(p.answer("p").row(0))
    return {j for j, v in enumerate(row) if v in (max(row), min(row))}

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
        # Ticking the prediction (or the least likely token) would give the key's answer: the choice would not show
        # whether the student knows the sign of p − y.
        "position 0's target is its likeliest or least likely token": lambda p: p.options["sign"] == "yes"
        and int(p.facts["targets"][0]) in _slip_tokens(p),
    },
)


def _draw(rng: Rng, positions: int, vocab: int, sign: bool) -> tuple[list[list[int]], list[int]]:
    """Logits ln k and targets; with the sign part, position 0's target strictly between its likeliest and least likely
    token."""
    while True:
        ks, targets = draw_log_logits(rng, positions, vocab)
        row, t = ks[0], targets[0]
        if not sign or min(row) < row[t] < max(row):
            return ks, targets


def generate(rng: Rng, options: dict[str, str]) -> Problem:
    """Logits ln k make p = k/Σk rational, so every gradient is an exact small fraction."""
    positions, vocab, mean = int(options["positions"]), int(options["vocab"]), options["reduction"] == "mean"
    ks, targets = _draw(rng, positions, vocab, options["sign"] == "yes")
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
    if options["sign"] == "yes":
        parts.append(_sign_part(p, dz, targets[0], vocab, positions if mean else 1))
    z_tex = Tex(ln_matrix_tex(ks))
    facts = {"z_tex": z_tex, "targets": ImmutableMatrix([targets]), "vocabulary": ", ".join(VOCABULARY[:vocab]),
             "targets_text": ", ".join(f"position {i}: {VOCABULARY[t]}" for i, t in enumerate(targets)),
             "reduction": options["reduction"]}
    return Problem.draft(given=[Quantity("z", Tex("z"), z)], parts=parts, facts=facts)


def _sign_part(p: ImmutableMatrix, dz: ImmutableMatrix, target: int, vocab: int, divisor: int) -> Part:
    """Which logit of position 0 has a negative gradient (so gradient descent raises it), and why: two choices."""
    tokens = (("none", "none"),) + tuple((VOCABULARY[j], VOCABULARY[j]) for j in range(vocab))
    which = Quantity("rises", Tex(r"\text{token}"), Choice(VOCABULARY[target], tokens))
    why = Quantity("why", Tex(r"\text{why}"), Choice("1", REASONS))
    over = f"\\tfrac{{1}}{{{divisor}}}\\," if divisor > 1 else ""
    prompt = Tex(
        r"Gradient descent changes the logits by $-\eta\,\partial L/\partial z$. Which logit of position 0 has a "
        r"negative gradient, and so rises under gradient descent? Tick its token (or none), then tick the reason.\par "
        f"(1) $\\partial L/\\partial z_j = {over}(p_j - y_j)$: $y_j = 1$ only at the target and $p_j < 1$, so only "
        r"the target's entry is negative; every other token has $y_j = 0$, a positive entry, and its logit falls.\par "
        r"(2) The likeliest token's entry is negative: the step makes the model surer of its own prediction.\par "
        r"(3) The least likely token's entry is negative: the step evens out the probabilities.")
    row = list(p.row(0))
    t = VOCABULARY[target]
    entries = r",\ ".join(f"{VOCABULARY[j]}\\colon {number_tex(dz[0, j])}" for j in range(vocab))
    text = Tex(f"Row 0 of $\\partial L/\\partial z$ has one negative entry, at the target {t}: "
               f"$p_{{{t}}} - 1 = {number_tex(p[0, target])} - 1 < 0$. Every other token has $y_j = 0$, so its entry "
               f"is positive. The target is neither the likeliest token nor the least likely: "
               f"${number_tex(min(row))} < p_{{{t}}} = {number_tex(p[0, target])} < {number_tex(max(row))}$.")
    steps = (Step(text=text, lines=(Tex(f"\\frac{{\\partial L}}{{\\partial z}}[0,\\cdot]\\colon\\ {entries}"),), result=which),
             Step(text=Tex(r"The sign comes from $-y_j$ alone: whatever the probabilities, descent raises the target's "
                           r"logit and lowers every other one. The reason is (1)."),
                  result=why))
    return Part(prompt, (which, why), steps)
