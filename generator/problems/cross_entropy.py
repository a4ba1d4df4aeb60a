"""Output probabilities and cross-entropy loss over one or more positions, logits given as logarithms."""

from __future__ import annotations

from fractions import Fraction
from functools import reduce
from math import gcd
from operator import mul

import sympy
from sympy import ImmutableMatrix, Rational

from generator.core.forward import (draw_log_logits, ln_table_tex, one_log_tex, one_log_value, table_log, table_log_ratio,
                       table_one_log)
from generator.core.problem import Bounds, Contract, Part, Problem, Quantity, Step, Tex
from generator.core.registry import Option
from generator.core.readings import format_places, total as total_of
from generator.documents.render import ln_matrix_tex, number_tex
from generator.core.rng import Rng
from generator.core.slips import reduction_hidden, softmax_axis_hidden

TITLE = "Probabilities and cross-entropy loss"
OPTIONS = [
    Option("positions", ("1", "2", "3"), "2", "how many positions (rows of logits) the loss covers"),
    Option("reduction", ("sum", "mean"), "mean", "whether L adds the positions' losses or averages them"),
    Option("vocab", ("3", "4"), "4", "vocabulary size (columns of logits)"),
]
VOCABULARY = "ABCD"

CONTRACT = Contract(
    given=Bounds(6, 1, Rational(6)),
    intermediate=Bounds(12, 12, Rational(12)),
    answer=Bounds(12, 12, Rational(12)),
    rational_only=False,
    forbidden={
        # A target that already has all the probability gives L = 0: nothing to learn.
        "a target probability is 1": lambda p: any(v == 1 for v in _targets_p(p)),
        "softmax down the columns gives the same p": lambda p: softmax_axis_hidden(p.given_value("z")),
        "the total loss gives the same L as the mean": lambda p: p.options["reduction"] == "mean"
        and reduction_hidden(p.answer("L"), p.given_value("z").rows),
    },
)


def _targets_p(problem: Problem) -> list:
    p = problem.parts[0].answers[0].value
    targets = problem.facts["targets"]
    return [p[i, int(t)] for i, t in enumerate(targets)]


def generate(rng: Rng, options: dict[str, str]) -> Problem:
    """Draw logits ln k per position and a target per position; p is then k/Σk and L a logarithm."""
    positions, vocab, mean = int(options["positions"]), int(options["vocab"]), options["reduction"] == "mean"
    ks, targets = draw_log_logits(rng, positions, vocab)
    z = ImmutableMatrix([[sympy.log(k) for k in row] for row in ks])
    p = ImmutableMatrix([[Rational(k, sum(row)) for k in row] for row in ks])
    losses = [sympy.log(Rational(sum(row), row[t])) for row, t in zip(ks, targets)]
    # L simplified as one logarithm (ln(20)/3, not ln(4/3)/3 + ln(3)/3 + ln(5)/3): Σ ln aᵢ = ln Π aᵢ, and
    # ln(25)/2 = ln 5 (forward.one_log).
    ratio = reduce(mul, (Fraction(sum(row), row[t]) for row, t in zip(ks, targets)), Fraction(1))
    loss = one_log_value(ratio, positions if mean else 1)
    z_tex = Tex(ln_matrix_tex(ks))
    p_q = Quantity("p", Tex("p"), p)
    # The sheet's method: ln from the table; L from the positions' losses, kept whole or first written to 4 places.
    loss_readings = [table_log_ratio(sum(row), row[t]) for row, t in zip(ks, targets)]
    l_q = Quantity("L_pos", Tex(r"\ell"), ImmutableMatrix(positions, 1, losses) if positions > 1 else losses[0],
                   reading=tuple((r,) for r in loss_readings) if positions > 1 else loss_readings[0])
    divisor = positions if mean else 1
    # Also ln Π aᵢ from the table (by primes, or read directly), the way a student who simplified L first works it.
    total_reading = (total_of(loss_readings) / divisor).hull(total_of(r.rounded() for r in loss_readings) / divisor,
                                                            table_one_log(ratio, divisor))
    total_q = Quantity("L", Tex("L"), loss)
    decimal_q = Quantity("L", Tex("L"), loss, reading=total_reading)
    p_lines = tuple(
        Tex(f"\\text{{row {i}: }} \\textstyle\\sum_j e^{{z_{{{i}j}}}} = " + " + ".join(map(str, row)) + f" = {sum(row)}")
        for i, row in enumerate(ks)
    )
    l_lines = tuple(
        Tex(f"\\ell_{i} = -\\ln p[{i},{t}] = -\\ln {number_tex(p[i, t])} = {number_tex(losses[i])}"
            + _from_table(sum(row), row[t]))
        for i, (row, t) in enumerate(zip(ks, targets))
    )
    summed = " + ".join(number_tex(x) for x in losses)
    if mean and positions > 1:
        summed = f"\\frac{{1}}{{{positions}}}\\left({summed}\\right)"
    exact_line = f"L = {summed} = {one_log_tex(ratio, divisor)}" if positions > 1 else f"L = {summed}"
    loss_line = f"L = {number_tex(loss)}"
    if total_reading.width and positions > 1:
        names = " + ".join(f"\\ell_{i}" for i in range(positions))
        routes = " + ".join(format_places(r.route) for r in loss_readings)
        over = (lambda text: f"\\frac{{{text}}}{{{positions}}}") if mean else (lambda text: text)
        loss_line += f" = {over(names)} \\approx {over(routes)} \\approx {format_places(total_reading.rounded().route)}"
    elif total_reading.width:
        loss_line += f" \\approx {format_places(total_reading.rounded().route)}"
    combine = "\\frac{1}{" + str(positions) + "}\\sum_i \\ell_i" if mean else "\\sum_i \\ell_i"
    parts = [
        Part(Tex(r"Compute the probabilities $p = \operatorname{softmax}(z)$ of each row, as fractions."), (p_q,),
             (Step(text=Tex(r"$e^{\ln k} = k$, so each row's probabilities are its $k$'s divided by their sum."),
                   formula=Tex(r"p[i,j] = \frac{e^{z_{ij}}}{\sum_m e^{z_{im}}}"), lines=p_lines, result=p_q,
                   checks=(Tex(r"\text{Each row of } p \text{ sums to 1.}"),)),)),
        Part(Tex(r"Compute the loss $\ell_i = -\ln p[i, \text{target}_i]$ of each position, exactly."), (l_q,),
             (Step(text=Tex(r"Only the target's probability enters; $-\ln \frac{a}{b} = \ln \frac{b}{a}$."),
                   formula=Tex(r"\ell_i = -\ln p[i, \text{target}_i]"), lines=l_lines),)),
        Part(Tex(f"Compute the {'mean' if mean else 'total'} loss $L = {combine}$ exactly, as one logarithm "
                 f"(or a logarithm divided by a whole number)."),
             (total_q,),
             (Step(text=Tex(r"Combine the positions' losses as the sheet says; $\ln a + \ln b = \ln ab$."),
                   formula=Tex(f"L = {combine}"), lines=(Tex(exact_line),), result=total_q),)),
        Part(Tex("Give $L$ to 4 decimal places, using the table."), (decimal_q,),
             (Step(text=Tex("Add the positions' losses from the table (or look up the logarithm of $L$'s fraction)."),
                   lines=(Tex(loss_line),), result=decimal_q),), decimals=True),
    ]
    targets_text = ", ".join(f"position {i}: {VOCABULARY[t]}" for i, t in enumerate(targets))
    facts = {"z_tex": z_tex, "ln_table": ln_table_tex(), "targets": ImmutableMatrix([targets]), "targets_text": targets_text,
             "vocabulary": ", ".join(VOCABULARY[:vocab]), "reduction": options["reduction"]}
    return Problem.draft(given=[Quantity("z", Tex("z"), z)], parts=parts, facts=facts)


def _from_table(total: int, k: int) -> str:
    """' = ln a − ln b ≈ x − y ≈ ℓ' with the printed table's values (the fraction reduced first), as a student
    without a calculator works it."""
    g = gcd(total, k)
    a, b = total // g, k // g
    if a == b:
        return ""
    value = format_places(table_log_ratio(total, k).route)
    if b == 1:
        return f" \\approx {value}"
    return (f" = \\ln {a} - \\ln {b} \\approx {format_places(table_log(a).route)} - {format_places(table_log(b).route)}"
            f" = {value}")
