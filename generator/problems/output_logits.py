"""Output layer: logits z = h·W_out + b, probabilities from a printed e^k table, and the predicted next token."""

from __future__ import annotations

from sympy import ImmutableMatrix, Rational

from generator.core.forward import (exp_table_tex, plain_product, printed_sum_is_one, softmax_rows, table_softmax,
                       table_softmax_line, whole_scores_print_to_one)
from generator.core.problem import Bounds, Choice, Contract, Part, Problem, Quantity, Step, Tex
from generator.core.registry import Option
from generator.core.rng import Rng
from generator.core.slips import product_rule, softmax_axis_hidden
from generator.core.worked import product_step

TITLE = "Output logits and probabilities"
OPTIONS = [
    Option("positions", ("1", "2"), "1", "rows of h (positions whose next token is predicted)"),
    Option("vocab", ("3", "4"), "4", "vocabulary size (columns of W_out)"),
    Option("bias", ("yes", "no"), "yes", "yes: add an output bias b"),
]
VOCABULARY = "ABCD"
D_MODEL = 2

CONTRACT = Contract(
    given=Bounds(2, 1, Rational(2)),
    intermediate=Bounds(10, 1, Rational(10)),
    answer=Bounds(10, 1, Rational(10)),
    rational_only=False,
    forbidden={
        "a row of logits has a tied maximum": lambda p: any(
            list(p.answer("z").row(i)).count(max(p.answer("z").row(i))) > 1 for i in range(p.answer("z").rows)),
        "printed probabilities do not sum to 1 at 4 places": lambda p: not all(
            printed_sum_is_one(row) for row in p.reading("p")),
        "a hidden state is zero": lambda p: any(not any(p.given_value("h").row(i)) for i in range(p.given_value("h").rows)),
        "the bias is all zeros": lambda p: p.options["bias"] == "yes" and not any(p.given_value("b")),
        **product_rule("z = h·W_out (+ b)", lambda p: (p.given_value("h"), p.given_value("W_out"), p.answer("z"))),
        "softmax down the columns gives the same p": lambda p: softmax_axis_hidden(p.answer("z")),
    },
)


def _draw(rng: Rng, positions: int, vocab: int, bias: bool):
    """h, W_out and b whose logits are whole, at most 5 below each row's maximum (inside the e^k table), with a
    unique maximum and 4-place probabilities that add up to 1.0000."""
    while True:
        h = [[rng.integer(-2, 2) for _ in range(D_MODEL)] for _ in range(positions)]
        w = [[rng.integer(-2, 2) for _ in range(vocab)] for _ in range(D_MODEL)]
        b = [rng.integer(-1, 1) if bias else 0 for _ in range(vocab)]
        z = [[v + c for v, c in zip(row, b)] for row in plain_product(h, w)]
        if bias and not any(b):
            continue  # "add the bias" with b = 0 would be a step that does nothing
        if positions == D_MODEL and h[0][1] == h[1][0]:
            continue  # a symmetric h: hᵀ·W_out = h·W_out, so a transposed h would go unseen
        if all(any(row) for row in h) and all(max(row) - min(row) <= 5 and row.count(max(row)) == 1
                                              and whole_scores_print_to_one(row) for row in z):
            return h, w, [b]


def generate(rng: Rng, options: dict[str, str]) -> Problem:
    """Draw the output layer, then work out logits, probabilities (4 places) and the prediction."""
    positions, vocab, bias = int(options["positions"]), int(options["vocab"]), options["bias"] == "yes"
    h, w, b = (ImmutableMatrix(m) for m in _draw(rng, positions, vocab, bias))
    z = h * w + ImmutableMatrix.vstack(*([b] * positions))
    shifted = ImmutableMatrix(positions, vocab, lambda i, j: z[i, j] - max(z.row(i)))
    p = softmax_rows(shifted)
    readings = tuple(table_softmax(list(shifted.row(i))) for i in range(positions))
    names = VOCABULARY[:vocab]
    last = list(z.row(positions - 1))
    predicted = names[last.index(max(last))]
    z_q, p_q = Quantity("z", Tex("z"), z), Quantity("p", Tex("p"), p, reading=readings)
    next_q = Quantity("next", Tex(r"\text{next}"), Choice(predicted, tuple((v, v) for v in names)))
    formula = r"z = h\,W_{\text{out}}" + (" + b" if bias else "")
    product = product_step(Tex(r"Row $i$ of $h$ times column $j$ of $W_{\text{out}}$: the score of token $j$."),
                           h, w, Tex(r"h\,W_{\text{out}}"), Quantity("hW", Tex(r"h\,W_{\text{out}}"), h * w), expand="row")
    z_steps = (product, Step(text=Tex("Add the bias $b$ to every row."), formula=Tex(formula), result=z_q)) if bias \
        else (product_step(product.text, h, w, Tex(formula), z_q, expand="row"),)
    lines = []
    for i in range(positions):
        lines += [table_softmax_line(f"p[{i},{j}]", list(shifted.row(i)), j, p[i, j]) for j in range(vocab)]
    parts = [
        Part(Tex(f"Compute the logits ${formula}$, one score per vocabulary token."), (z_q,), z_steps),
        Part(Tex(r"Compute the probabilities $p = \operatorname{softmax}(z)$ of each row, to 4 decimal places."), (p_q,),
             (Step(text=Tex("Subtract the row's largest logit (softmax does not change), then use the table."),
                   formula=Tex(r"p[i,j] = \frac{e^{z_{ij} - \max_m z_{im}}}{\sum_k e^{z_{ik} - \max_m z_{im}}}"),
                   lines=tuple(lines), result=p_q,
                   checks=(Tex(r"\text{Each row sums to 1 (also at 4 decimal places).}"),)),),
             decimals=True),
        Part(Tex("Which token does the model predict after the last position?"), (next_q,),
             (Step(text=Tex(f"The largest probability belongs to the largest logit: token {predicted}.")),)),
    ]
    given = [Quantity("h", Tex("h"), h), Quantity("W_out", Tex(r"W_{\text{out}}"), w)]
    if bias:
        given.append(Quantity("b", Tex("b"), b))
    facts = {"vocabulary": ", ".join(names), "e_table": exp_table_tex()}
    return Problem.draft(given=given, parts=parts, facts=facts, needs_calculator=True)
