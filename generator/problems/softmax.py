"""Softmax of a row in three hand-friendly forms: logits as logarithms, small integers with an e^k table, equal scores."""

from __future__ import annotations


import sympy
from sympy import ImmutableMatrix, Rational

from generator.core.forward import (exp_table_tex, printed_sum_is_one, softmax_rows, table_exponential, table_softmax,
                       table_softmax_line)
from generator.core.problem import Bounds, Contract, Part, Problem, Quantity, Step, Tex
from generator.core.registry import Option
from generator.core.readings import format_places
from generator.documents.render import ln_matrix_tex
from generator.core.rng import Rng

TITLE = "Softmax"
OPTIONS = [
    Option("form", ("logs", "table", "equal"), "logs",
           "logs: logits are ln of whole numbers (exact fractions); table: small integer scores with a printed "
           "table of e^k (needs a basic calculator); equal: all scores equal"),
    Option("length", ("3", "4"), "3", "number of scores in the row"),
]




CONTRACT = Contract(
    given=Bounds(6, 1, Rational(6)),
    intermediate=Bounds(12, 12, Rational(12)),
    answer=Bounds(12, 12, Rational(6)),  # e^{ln k} = k up to 6, probabilities up to 1
    rational_only=False,
    forbidden={
        "the scores are all equal (outside the 'equal' form)": lambda p: p.options["form"] != "equal"
        and len(set(p.given_value("z"))) == 1,
        "the 4-place probabilities do not sum to 1": lambda p: p.options["form"] == "table"
        and not printed_sum_is_one(p.reading("p")[0]),
    },
)


def _logs(rng: Rng, n: int):
    """Logits ln k: e^{ln k} = k, so p = k / Σk is a fraction with a small denominator."""
    while True:
        ks = [rng.integer(1, 6) for _ in range(n)]
        if sum(ks) <= 12 and len(set(ks)) > 1:
            break
    z = ImmutableMatrix([[sympy.log(k) for k in ks]])
    z_tex = Tex(ln_matrix_tex([ks]))
    exps = Quantity("exp_z", Tex("e^{z}"), ImmutableMatrix([ks]))
    total = sum(ks)
    p = Quantity("p", Tex("p"), ImmutableMatrix([[Rational(k, total) for k in ks]]))
    steps_a = (Step(text=Tex(r"$e^{\ln k} = k$: exponentiating undoes the logarithm."),
                    formula=Tex(r"e^{z_i} = e^{\ln k_i} = k_i"), result=exps),)
    steps_b = (Step(text=Tex("Divide each exponential by their sum."),
                    formula=Tex(r"p_i = \frac{e^{z_i}}{\sum_j e^{z_j}}"),
                    lines=(Tex(r"\textstyle\sum_j e^{z_j} = " + " + ".join(map(str, ks)) + f" = {total}"),),
                    result=p, checks=(Tex(r"\textstyle\sum_i p_i = 1"),)),)
    parts = [Part(Tex(r"Compute $e^{z_i}$ for every entry."), (exps,), steps_a),
             Part(Tex(r"Compute $p = \operatorname{softmax}(z)$ as fractions."), (p,), steps_b)]
    return z, {"z_tex": z_tex}, parts, False


def _table(rng: Rng, n: int):
    """Small integer scores; subtracting the max leaves exponents 0, −1, −2, … found in the printed table."""
    scores = [rng.integer(-2, 3) for _ in range(n)]
    z = ImmutableMatrix([[Rational(s) for s in scores]])
    top = max(scores)
    shifted = ImmutableMatrix([[Rational(s - top) for s in scores]])
    t = Quantity("t", Tex("t"), shifted)
    p = Quantity("p", Tex("p"), softmax_rows(shifted), reading=(table_softmax([s - top for s in scores]),))
    # Every exponent these scores can give (0 down to −5), the same table for every variant: a table of
    # only the exponents needed would give away t.
    table = exp_table_tex()
    steps_a = (Step(text=Tex(f"Subtract the largest score, ${top}$, from every score: softmax does not change, and every exponent becomes $\\le 0$."),
                    formula=Tex(r"t_i = z_i - \max_j z_j"), result=t),)
    powers = " + ".join(f"e^{{{s - top}}}" for s in scores)
    steps_b = (
        Step(text=Tex("Look up $e^{t_i}$ in the table and add them up."),
             lines=(Tex(r"\textstyle\sum_j e^{t_j} = " + powers + r" \approx "
                        + format_places(sum(table_exponential(s - top).route for s in scores))),)),
        Step(text=Tex("Divide each exponential by the sum."), formula=Tex(r"p_i = \frac{e^{t_i}}{\sum_j e^{t_j}}"),
             lines=tuple(table_softmax_line(f"p_{i}", [s - top for s in scores], i, p.value[i]) for i in range(len(scores))),
             result=p, checks=(Tex(r"\textstyle\sum_i p_i = 1 \text{ (also at 4 decimal places)}"),)),
    )
    parts = [Part(Tex(r"Compute $t = z - \max_j z_j$."), (t,), steps_a),
             Part(Tex(r"Compute $p = \operatorname{softmax}(z)$ to 4 decimal places."), (p,), steps_b, decimals=True)]
    return z, {"e_table": table}, parts, True


def _equal(rng: Rng, n: int):
    """Equal scores: every exponential is the same, so each weight is 1/n."""
    c = Rational(rng.integer(-3, 5))
    z = ImmutableMatrix([[c] * n])
    p = Quantity("p", Tex("p"), ImmutableMatrix([[Rational(1, n)] * n]))
    steps = (Step(text=Tex("All scores are equal, so all $e^{z_i}$ are equal and each gets the same share."),
                  formula=Tex(r"p_i = \frac{e^{c}}{n\,e^{c}} = \frac{1}{n}"), result=p,
                  checks=(Tex(r"\text{A causal first row is the case } n = 1\text{: weight } [1]."),)),)
    return z, {}, [Part(Tex(r"Compute $p = \operatorname{softmax}(z)$ as fractions."), (p,), steps)], False


def generate(rng: Rng, options: dict[str, str]) -> Problem:
    """Draw a row of logits in the chosen form and work out its softmax."""
    make = {"logs": _logs, "table": _table, "equal": _equal}[options["form"]]
    z, facts, parts, calculator = make(rng, int(options["length"]))
    if not all(a == b for a, b in zip(softmax_rows(z), parts[-1].answers[0].value)) and options["form"] != "table":
        raise AssertionError("softmax answer does not match the exact softmax of z")
    return Problem.draft(given=[Quantity("z", Tex("z"), z)], parts=parts, facts=facts, needs_calculator=calculator)
