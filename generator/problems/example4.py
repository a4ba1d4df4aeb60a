"""Example 4, several patterns: a batch of 3 sequences, the averaged gradient of W_out, one epoch by hand, then the loss curve."""

from __future__ import annotations

import itertools
import math
from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction
from functools import cache

import sympy
from sympy import ImmutableMatrix, Rational

from generator.core.forward import PLACES, ln_table_tex, table_log_ratio
from generator.core.problem import Bounds, Choice, Contract, Part, Problem, Quantity, Step, Tex, matrix_rows
from generator.core.readings import Reading, format_places, total as total_of
from generator.core.registry import Option
from generator.documents.render import matrix_tex, number_tex
from generator.core.rng import Rng
from generator.core.worked import product_step, transpose_step
from generator.problems.example1 import BOOK_EMBEDDINGS, DATA_OPTION, VOCABULARY

TITLE = "Example 4: several patterns"
CHAINED = True
OPTIONS = [
    Option("epochs", ("4", "6"), "6", "epochs of training shown in the key's loss table and plot"),
    Option("lr", ("1", "3"), "1", "learning rate η; with the mean over 3 examples these keep W_out in twelfths or quarters"),
    DATA_OPTION,  # book: the book's three patterns A B → C, A A → D, B A → C and its embeddings
]
BATCH = 3
D_MODEL = 2
DIGITS = 50  # the loss curve's working precision: far beyond the 4 places it prints (see _rounded)


# The book's Example 4: three patterns over its embeddings (A = [1,0], B = [0,1]). The book prints no weights, so
# the frozen attention is ours: the last token weighs the two tokens ã = (1/3, 2/3), and c_b = ã·X_b·W_V with a
# drawn W_V whose value rows differ by multiples of 3 (so every context is whole). A A → D gives c = v_A whatever ã.
BOOK_PATTERNS = (((0, 1), 2), ((0, 0), 3), ((1, 0), 2))  # (input token ids, target id)
BOOK_WEIGHTS = (Fraction(1, 3), Fraction(2, 3))


def _words(ids) -> str:
    return " ".join(VOCABULARY[i] for i in ids)


def book_contexts(w_v: list[list[int]]) -> list[list[Fraction]]:
    """c_b = ã·X_b·W_V for the book's three input sequences."""
    out = []
    for ids, _ in BOOK_PATTERNS:
        x = [BOOK_EMBEDDINGS[i] for i in ids]
        mixed = [sum(a * row[k] for a, row in zip(BOOK_WEIGHTS, x)) for k in range(D_MODEL)]
        out.append([sum(mixed[k] * w_v[k][j] for k in range(D_MODEL)) for j in range(D_MODEL)])
    return out


def _is_book(p: Problem) -> bool:
    return p.options.get("data") == "book"


def _book_data_used(p: Problem) -> bool:
    """Targets, input sequences and contexts exactly the book's patterns through ã and the printed W_V."""
    contexts = book_contexts(p.facts["W_V"].tolist())
    return ([int(t) for t in p.facts["targets"]] == [t for _, t in BOOK_PATTERNS]
            and p.given_value("C").tolist() == [[Rational(v.numerator, v.denominator) for v in row] for row in contexts])


def _loss_falls(problem: Problem) -> bool:
    """Does the printed loss table fall at every epoch?"""
    losses = list(problem.key_facts["loss_curve"])
    return all(b < a for a, b in zip(losses, losses[1:]))


CONTRACT = Contract(
    given=Bounds(6, 1, Rational(6)),  # the contexts (−2…2), and the facts: targets, η and the number of epochs
    intermediate=Bounds(40, 12, Rational(12)),
    answer=Bounds(40, 12, Rational(12)),
    rational_only=False,
    forbidden={
        "two sequences share a context": lambda p: len({tuple(p.given_value("C").row(b)) for b in range(BATCH)}) < BATCH,
        "every sequence has the same target": lambda p: len(set(p.facts["targets_text"].split(", "))) == 1,
        "the loss does not fall at every epoch": lambda p: not _loss_falls(p),
        # After one epoch, a sequence whose context points elsewhere need not predict its target yet.
        "every sequence predicts its target (copied from the statement, the answers would be right)": lambda p: [
            p.answer(f"next{b}").value for b in range(BATCH)] == p.facts["targets_text"].split(", "),
        "a context is the negative of another": lambda p: any(
            tuple(-v for v in a) == b for a in matrix_rows(p.given_value("C")) for b in matrix_rows(p.given_value("C"))),
        "the book's patterns are not the book's": lambda p: _is_book(p) and not _book_data_used(p),
    },
)


def _rounded(value: Decimal) -> Decimal:
    """value to 4 places, refusing a value so near a rounding boundary that 50 digits could not decide it."""
    quantum = Decimal(1).scaleb(-PLACES)
    rounded = value.quantize(quantum, rounding=ROUND_HALF_UP)
    if abs(abs(value - rounded) - quantum / 2) < Decimal(1).scaleb(-30):
        raise ArithmeticError(f"{value} is too close to a rounding boundary to print")
    return rounded


def loss_curve(c: list[list[int]], targets: list[int], eta: Rational, epochs: int) -> list[Decimal]:
    """The mean loss before each epoch 0…epochs of full-batch gradient descent from W_out = 0, to 50 digits."""
    with localcontext() as context:
        context.prec = DIGITS
        return _losses(c, targets, Decimal(eta.p) / Decimal(eta.q), epochs, Decimal(0), Decimal.exp, Decimal.ln)


def _losses(c, targets, step, epochs: int, zero, exp, log) -> list:
    """The mean loss before each epoch of full-batch descent from W_out = 0, in one number type (Decimal or float)."""
    w = [[zero] * len(VOCABULARY) for _ in range(D_MODEL)]
    losses = []
    for _ in range(epochs + 1):
        total, grad = zero, [[zero] * len(VOCABULARY) for _ in range(D_MODEL)]
        for row, t in zip(c, targets):
            z = [sum(row[i] * w[i][j] for i in range(D_MODEL)) for j in range(len(VOCABULARY))]
            top = max(z)
            exps = [exp(v - top) for v in z]
            norm = sum(exps)
            total += log(norm) - (z[t] - top)
            for j in range(len(VOCABULARY)):
                dz = exps[j] / norm - (1 if j == t else 0)
                for i in range(D_MODEL):
                    grad[i][j] += row[i] * dz / BATCH
        losses.append(total / BATCH)
        w = [[w[i][j] - step * grad[i][j] for j in range(len(VOCABULARY))] for i in range(D_MODEL)]
    return losses


def _first_epoch_logits(c: list[list[int]], targets: list[int], eta: Fraction) -> list[list[Fraction]]:
    """Z₁ = C·W₁ with W₁ = −η·Cᵀ(P₀ − Y)/3, in plain Fractions."""
    vocab = len(VOCABULARY)
    dz = [[Fraction(1, vocab) - (1 if j == t else 0) for j in range(vocab)] for t in targets]
    w1 = [[-eta * sum((row[i] * d[j] for row, d in zip(c, dz)), Fraction(0)) / BATCH for j in range(vocab)]
          for i in range(D_MODEL)]
    return [[sum((row[i] * w1[i][j] for i in range(D_MODEL)), Fraction(0)) for j in range(vocab)] for row in c]


def _falls_in_floats(c: list[list[int]], targets: list[int], eta: Rational, epochs: int) -> bool:
    """Could the loss fall at every epoch (visibly at 4 places)? Floats, so a near case is left to loss_curve."""
    losses = _losses(c, targets, float(eta), epochs, 0.0, math.exp, math.log)
    # A fall of under half a unit in the 4th place may still print as a fall (or not): loss_curve decides.
    return all(b < a + 1e-4 for a, b in zip(losses, losses[1:]))


def _draw(rng: Rng) -> tuple[list[list[int]], list[int]]:
    """Three distinct non-zero contexts and targets (not all equal) whose first hand epoch stays clean."""
    while True:
        rows: list[list[int]] = []
        while len(rows) < BATCH:
            row = [rng.integer(-2, 2) for _ in range(D_MODEL)]
            if any(row) and row not in rows and [-v for v in row] not in rows:
                rows.append(row)
        targets = [rng.below(len(VOCABULARY)) for _ in range(BATCH)]
        if len(set(targets)) > 1:
            return rows, targets


@cache
def _book_value_weights() -> tuple[tuple[tuple[int, int], ...], ...]:
    """Every W_V (entries −2…2) whose value rows differ by multiples of 3, not equal: whole, distinct contexts."""
    columns = [(a, b) for a in range(-2, 3) for b in range(-2, 3) if (a - b) % 3 == 0]
    found = []
    for c0, c1 in itertools.product(columns, repeat=D_MODEL):
        w_v = ((c0[0], c1[0]), (c0[1], c1[1]))
        if w_v[0] != w_v[1]:
            found.append(w_v)
    return tuple(found)


def _draw_book(rng: Rng) -> tuple[list[list[int]], list[int], tuple]:
    """The book's patterns: a W_V with non-zero, distinct contexts, no context the negative of another."""
    while True:
        w_v = rng.choice(_book_value_weights())
        rows = [[int(v) for v in row] for row in book_contexts([list(r) for r in w_v])]
        if all(any(r) for r in rows) and len({tuple(r) for r in rows}) == BATCH and not any(
                [-v for v in r] in rows for r in rows):
            return rows, [t for _, t in BOOK_PATTERNS], w_v


def book_facts(w_v) -> dict:
    """What the statement prints of the book's patterns: the sequences, ã, W_V and how they give C."""
    w = ImmutableMatrix([list(r) for r in w_v])
    a = ImmutableMatrix([[Rational(v.numerator, v.denominator) for v in BOOK_WEIGHTS]])
    patterns = ",\\ ".join(f"\\texttt{{{_words(ids)}}} \\to \\texttt{{{VOCABULARY[t]}}}" for ids, t in BOOK_PATTERNS)
    note = Tex(r"The batch is the book's Example 4 (\emph{Understanding Transformers}): the patterns $" + patterns
               + r"$, with the book's embeddings $A = [1, 0]$ and $B = [0, 1]$. The book prints no weights: here the "
               r"frozen attention lets the last token weigh the sequence's two tokens by $\tilde a$, and $W_V$ is drawn "
               r"so that every context $c_b = \tilde a\,X_b\,W_V$ (row $b$ of $C$) is whole:")
    display = Tex(r"\tilde a = " + matrix_tex(a) + r" \qquad W_V = " + matrix_tex(w)
                  + r" \qquad X_0 = \begin{bmatrix} \texttt{A} \\ \texttt{B} \end{bmatrix},\ X_1 = \begin{bmatrix} \texttt{A} \\ \texttt{A} \end{bmatrix},\ "
                  r"X_2 = \begin{bmatrix} \texttt{B} \\ \texttt{A} \end{bmatrix}")
    return {"W_V": w, "book_note": note, "book_display": display}  # ã only in the text: the givens stay whole


def loss_plot(losses: list[str]) -> Tex:
    """The loss per epoch, drawn with LaTeX's own picture environment (no package needed)."""
    top = max(Decimal(v) for v in losses)
    width, height = 70, 36
    step_x = Decimal(width) / (len(losses) - 1)
    points = [(10 + step_x * e, 6 + Decimal(height) * Decimal(v) / top) for e, v in enumerate(losses)]
    fmt = lambda v: f"{v.quantize(Decimal('0.01'))}"  # noqa: E731
    parts = [r"\setlength{\unitlength}{1mm}\begin{picture}(90,54)",
             r"\put(10,6){\line(1,0){" + str(width + 4) + "}}", r"\put(10,6){\line(0,1){" + str(height + 4) + "}}",
             r"\put(50,0){\makebox(0,0){\scriptsize epoch}}",
             r"\put(10,51){\makebox(0,0){\scriptsize mean loss}}",
             r"\put(9," + fmt(points[0][1]) + r"){\makebox(0,0)[r]{\scriptsize " + losses[0] + "}}",
             r"\put(9,6){\makebox(0,0)[r]{\scriptsize 0}}"]
    for e, (x, y) in enumerate(points):
        parts.append(f"\\put({fmt(x)},{fmt(y)}){{\\circle*{{1.2}}}}")
        parts.append(f"\\put({fmt(x)},3){{\\makebox(0,0){{\\scriptsize {e}}}}}")
    for (x1, y1), (x2, y2) in zip(points, points[1:]):
        parts.append(f"\\qbezier({fmt(x1)},{fmt(y1)})({fmt((x1 + x2) / 2)},{fmt((y1 + y2) / 2)})({fmt(x2)},{fmt(y2)})")
    parts.append(r"\end{picture}")
    return Tex(r"\mbox{" + "".join(parts) + "}")


def generate(rng: Rng, options: dict[str, str]) -> Problem:
    """Contexts and targets of 3 sequences; W_out starts at 0, so epoch 1 is exact by hand and the key continues."""
    eta = Rational(options["lr"])
    epochs = int(options["epochs"])
    book = options.get("data") == "book"
    w_v = None
    while True:
        if book:
            rows, targets, w_v = _draw_book(rng)
        else:
            rows, targets = _draw(rng)
        # Epoch 1's logits in plain Fractions first: most draws are turned away here, before any sympy.
        plain_z1 = _first_epoch_logits(rows, targets, Fraction(int(eta.p), int(eta.q)))
        if any(row.count(max(row)) > 1 for row in plain_z1):
            continue  # a tie would make the predicted token ambiguous
        if all(row.index(max(row)) == t for row, t in zip(plain_z1, targets)):
            continue  # every prediction the target: the answers could be copied from the statement
        if not _falls_in_floats(rows, targets, eta, epochs):
            continue  # screened in floats: the 50-digit curve below costs a few milliseconds
        try:
            curve = [_rounded(v) for v in loss_curve(rows, targets, eta, epochs)]
        except ArithmeticError:
            continue
        if all(b < a for a, b in zip(curve, curve[1:])):
            break  # the batch converges: the loss falls at every epoch, visibly at 4 places
    c = ImmutableMatrix(rows)
    y = ImmutableMatrix(BATCH, len(VOCABULARY), lambda b, j: 1 if j == targets[b] else 0)
    p0 = ImmutableMatrix(BATCH, len(VOCABULARY), lambda b, j: Rational(1, len(VOCABULARY)))
    dz = p0 - y
    total = c.T * dz
    grad = total / BATCH
    w1 = -eta * grad
    z1 = c * w1
    if z1.tolist() != [[Rational(v.numerator, v.denominator) for v in row] for row in plain_z1]:
        raise AssertionError("epoch 1's logits differ from the plain search's")
    printed = [str(v) for v in curve]
    loss0 = sympy.log(len(VOCABULARY))
    # The sheet's method: each −ln(1/4) from the ln k table (as ln 4, or 2 ln 2 from the primes), then their mean
    # (the statement asks for no rounding on the way); the probabilities 1/4 are exact.
    loss0_reading = total_of([table_log_ratio(len(VOCABULARY), 1)] * BATCH) / BATCH
    loss0_text = format_places(loss0_reading.rounded().route)
    readings = {"p0": tuple(tuple(Reading.exactly(v) for v in p0.row(b)) for b in range(BATCH)), "L0": loss0_reading}
    q = {name: Quantity(name, Tex(symbol), value, reading=readings.get(name)) for name, symbol, value in (
        ("p0", "P_0", p0), ("L0_exact", "L_0", loss0), ("L0", "L_0", loss0), ("dZ", "dZ", dz), ("S", r"C^{\mathsf T} dZ", total), ("G", "G", grad),
        ("W1", "W_1", w1), ("Z1", "Z_1", z1))}
    names = [VOCABULARY[t] for t in targets]
    predicted = [VOCABULARY[list(z1.row(b)).index(max(z1.row(b)))] for b in range(BATCH)]
    choices = tuple((v, v) for v in VOCABULARY)
    next_q = [Quantity(f"next{b}", Tex(f"\\text{{sequence {b}}}"), Choice(predicted[b], choices)) for b in range(BATCH)]
    table = (r"\begin{array}{c|" + "c" * len(printed) + r"} \text{epoch} & " + " & ".join(str(e) for e in range(len(printed)))
             + r" \\ \hline L & " + " & ".join(printed) + r" \end{array}")
    # Key only: what further epochs do (a student cannot take e to fractional powers by hand).
    curve_step = Step(text=Tex("Training on: the mean loss before each epoch, from the exact values; it falls at every epoch "
                               "(at 4 places)."),
                      lines=(Tex(table), loss_plot(printed)))
    parts = [
        Part(Tex(r"Epoch 0: with $W_0 = 0$ every logit is 0. Write the probabilities $P_0$ (one row per sequence) and the mean loss "
                 r"$L_0 = \frac13\sum_b -\ln P_0[b, t_b]$, exactly."),
             (q["p0"], q["L0_exact"]),
             (Step(text=Tex("Equal logits give equal probabilities, 1/4 for each of the 4 tokens."),
                   formula=Tex(r"P_0[b,j] = \frac{e^0}{4 e^0} = \frac14"), result=q["p0"]),
              Step(text=Tex(r"Every sequence's target has probability $\frac14$, so every loss is $\ln 4$, and so is their mean."),
                   lines=(Tex(r"L_0 = \tfrac13\left(-\ln \tfrac14 - \ln \tfrac14 - \ln \tfrac14\right) = \ln 4"),),
                   result=q["L0_exact"]))),
        Part(Tex(r"Give $L_0$ to 4 decimal places, using the table."), (q["L0"],),
             (Step(text=Tex(r"$\ln 4$ from the table (or $2 \ln 2$)."),
                   lines=(Tex(f"L_0 = \\ln 4 \\approx {loss0_text}"),),
                   result=q["L0"]),),
             decimals=True),
        Part(Tex(r"Compute $dZ = P_0 - Y$, the gradient of each sequence's own loss with respect to its logits."), (q["dZ"],),
             (Step(text=Tex(r"Subtract 1 at each sequence's target."), formula=Tex(r"dZ[b,j] = P_0[b,j] - \mathbf{1}[j = t_b]"),
                   lines=(Tex(f"Y = {matrix_tex(y)}"),), result=q["dZ"],
                   checks=(Tex(r"\text{Each row sums to 0.}"),)),)),
        Part(Tex(r"Add up the three sequences' gradients of $W_{\text{out}}$: $C^{\mathsf T} dZ = \sum_b c_b^{\mathsf T} dz_b$; "
                 r"then average them, $G = \frac13\,C^{\mathsf T} dZ$."), (q["S"], q["G"]),
             (transpose_step("C", "C", c, Quantity("CT", Tex(r"C^{\mathsf T}"), c.T)),
              product_step(Tex(r"Row $i$ of $C^{\mathsf T}$ times column $j$ of $dZ$: one term per sequence."), c.T, dz,
                           Tex(r"C^{\mathsf T} dZ"), q["S"]),
              Step(text=Tex("The loss is the mean over the batch, so the gradient is the mean of the sequences' gradients."),
                   formula=Tex(r"G = \tfrac13\,C^{\mathsf T} dZ"), result=q["G"],
                   checks=(Tex(r"G \text{ has the shape of } W_{\text{out}}\text{: } (2 \times 4)\text{; each row sums to 0.}"),))),),
        Part(Tex(f"Take one step of gradient descent with $\\eta = {number_tex(eta)}$: $W_1 = W_0 - \\eta\\,G$."), (q["W1"],),
             (Step(text=Tex("From $W_0 = 0$ the new weights are just $-\\eta\\,G$."), formula=Tex(r"W_1 = 0 - \eta\,G"),
                   result=q["W1"], checks=(Tex(r"\text{Every entry moved against the sign of its gradient.}"),)),)),
        Part(Tex(r"Epoch 1: compute the new logits $Z_1 = C\,W_1$, and say which token the model now predicts for each sequence."),
             (q["Z1"],) + tuple(next_q),
             (product_step(Tex(r"Row $b$ of $C$ times column $j$ of $W_1$."), c, w1, Tex(r"Z_1 = C\,W_1"), q["Z1"]),
              Step(text=Tex("The prediction is the token with the largest logit in each row."),
                   lines=tuple(Tex(f"\\text{{sequence {b}: predicts {predicted[b]} (target {names[b]})}}") for b in range(BATCH))),
              curve_step)),
    ]
    facts = {
        "targets": ImmutableMatrix([targets]),
        "targets_text": ", ".join(names),
        "eta": eta,
        "epochs": Rational(epochs),
        "ln_table": ln_table_tex(),
    }
    if book:
        facts.update(book_facts(w_v))
    key_facts = {"loss_curve": ImmutableMatrix([[Rational(v) for v in printed]])}  # the 4-place values the key prints
    return Problem.draft(given=[Quantity("C", Tex("C"), c)], parts=parts, facts=facts, key_facts=key_facts)
