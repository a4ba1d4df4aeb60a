"""The perceptron: the step of w·x + b, and the update w ← w + η(y − ŷ)x, b ← b + η(y − ŷ), once or over a data set."""

from __future__ import annotations

from fractions import Fraction
from functools import cache
from itertools import permutations, product

from sympy import ImmutableMatrix, Integer, Rational

from generator.core.problem import Bounds, Contract, Part, Problem, Quantity, Step, Tex
from generator.core.registry import Option
from generator.core.rng import Rng
from generator.documents.render import factor_tex, number_tex

TITLE = "The perceptron: prediction and update"
OPTIONS = [
    Option("steps", ("1", "4"), "1", "one update on one example, or one pass through a data set of four points"),
    Option("eta", ("1", "1/2"), "1", "the learning rate η"),
    Option("data", ("and", "or"), "and", "the data set of the four-step pass: the points of {0, 1}² labelled by AND or OR"),
]
CORNERS = ((0, 0), (0, 1), (1, 0), (1, 1))
LABELS = {"and": lambda a, c: int(a and c), "or": lambda a, c: int(a or c)}


def _run(w: tuple, b, points, labels, eta, *, sign: int = 1, bias: bool = True, ties: bool = False) -> list[tuple]:
    """Each step's (z, ŷ, w after, b after) in plain numbers; sign=−1 is the update's sign slip, bias=False the
    forgotten bias (never added to z, never updated). None once a score is exactly 0, unless ties: then the stated
    convention decides (ŷ = 0), as for a slip that lands on 0."""
    rows = []
    for x, y in zip(points, labels):
        z = w[0] * x[0] + w[1] * x[1] + (b if bias else 0)
        if z == 0 and not ties:
            return None
        yhat = 1 if z > 0 else 0
        step = sign * eta * (y - yhat)
        w = (w[0] + step * x[0], w[1] + step * x[1])
        if bias:
            b = b + step
        rows.append((z, yhat, w, b))
    return rows


def _table(p: Problem):
    """The key's table of one problem as plain numbers, read back from its answers."""
    if p.options["steps"] == "1":
        return [(p.answer("z"), p.answer("yhat"), tuple(p.answer("w_new")), p.answer("b_new"))]
    return [(z, yhat, (w0, w1), b) for z, yhat, w0, w1, b in p.answer("table").tolist()]


def _inputs(p: Problem):
    eta = Rational(p.options["eta"])
    w0, b0 = tuple(p.given_value("w")), p.given_value("b")
    if p.options["steps"] == "1":
        return w0, b0, [tuple(p.given_value("x"))], [p.given_value("y")], eta
    return w0, b0, [tuple(row) for row in p.given_value("X").tolist()], list(p.given_value("y")), eta


def _slip_hidden(p: Problem, **slip) -> bool:
    """A slip's table matches the key's in any entry a student writes (score, prediction, weights or bias)."""
    w0, b0, points, labels, eta = _inputs(p)
    slipped = _run(w0, b0, points, labels, eta, **slip, ties=True)
    right = _table(p)
    return right[-1][2] == slipped[-1][2] or right[-1][3] == slipped[-1][3]


def _sign_slip_hidden(p: Problem) -> bool:
    """w − η(y − ŷ)x, b − η(y − ŷ): the final weights or bias, or a weight an update changed, come out the same."""
    return _slip_hidden(p, sign=-1)


def _bias_slip_hidden(p: Problem) -> bool:
    """The bias forgotten: one example's score comes out the same (b = 0), or the four steps' predictions do."""
    if p.options["steps"] == "1":
        return p.given_value("b") == 0
    w0, b0, points, labels, eta = _inputs(p)
    slipped = _run(w0, b0, points, labels, eta, bias=False, ties=True)
    right = _table(p)
    return [r[1] for r in right] == [s[1] for s in slipped]


def _updates(p: Problem) -> int:
    w0, b0, points, labels, eta = _inputs(p)
    return sum(1 for x, y, row in zip(points, labels, _table(p)) if row[1] != y)


CONTRACT = Contract(
    given=Bounds(3, 2, Rational(3)),  # η = 1/2 is stated with the givens
    intermediate=Bounds(20, 2, Rational(10)),
    answer=Bounds(20, 2, Rational(10)),
    forbidden={
        "a score w·x + b is exactly 0": lambda p: any(row[0] == 0 for row in _table(p)),
        "no update happens": lambda p: _updates(p) == 0,
        # Four steps: at least two updates and one point already right, so both cases of the rule show.
        "every step updates, or only one does": lambda p: p.options["steps"] == "4" and _updates(p) in (1, 4),
        "the bias is 0": lambda p: p.given_value("b") == 0,
        "the update's sign slip gives the key's weights or bias": _sign_slip_hidden,
        "forgetting the bias gives the key's score or predictions": _bias_slip_hidden,
    },
)


@cache
def _single_draws() -> tuple:
    """(w, x, b) with whole entries: x with no 0 (each weight moves, so the sign slip shows in every entry), w·x ≠ 0
    (the score without the bias is no tie) and w·x + b ≠ 0. Whether b flips the prediction is left to the draw: were
    it made to flip it always, the prediction would follow from the sign of b alone."""
    found = []
    sizes = (-2, -1, 1, 2)
    for w in product((-2, -1, 0, 1, 2), repeat=2):
        for x in product(sizes, repeat=2):
            dot = w[0] * x[0] + w[1] * x[1]
            if dot == 0:
                continue
            for b in (-3, -2, -1, 1, 2, 3):
                z = dot + b
                # With η = 1 (the larger rate) the new score z ± (‖x‖² + 1) stays within ±8.
                if z != 0 and abs(z) <= 5 and abs(z + (-1 if z > 0 else 1) * (x[0] ** 2 + x[1] ** 2 + 1)) <= 8:
                    found.append((w, x, b))
    return tuple(found)


@cache
def _pass_draws(eta_text: str, data: str) -> tuple:
    """(order, w₀, b₀) for the four-step pass, checked in plain fractions as the contract checks them: no score of 0,
    two or three updates, and neither the sign slip nor the forgotten bias hidden, a slip's score of 0 read by the
    stated convention."""
    # Worked in whole numbers: w, b and every step scaled by 1/η (a factor that changes no sign and no equality).
    scale = int(1 / Fraction(eta_text))
    found = []
    for order in permutations(range(4)):
        points = [CORNERS[i] for i in order]
        labels = [LABELS[data](*pt) for pt in points]
        for w in product((-1, 0, 1), repeat=2):
            for b in (-2, -1, 1, 2):
                ws, bs = (scale * w[0], scale * w[1]), scale * b
                rows = _run(ws, bs, points, labels, 1)
                if rows is None or sum(r[1] != y for r, y in zip(rows, labels)) not in (2, 3):
                    continue
                slipped = _run(ws, bs, points, labels, 1, sign=-1, ties=True)
                if slipped[-1][2] == rows[-1][2] or slipped[-1][3] == rows[-1][3]:
                    continue
                unbiased = _run(ws, bs, points, labels, 1, bias=False, ties=True)
                if [r[1] for r in unbiased] == [r[1] for r in rows]:
                    continue
                found.append((order, w, b))
    return tuple(found)


def generate(rng: Rng, options: dict[str, str]) -> Problem:
    """One misclassified example (steps=1), or w₀, b₀ and an order of the four corners of {0, 1}² (steps=4)."""
    eta = Rational(options["eta"])
    if options["steps"] == "1":
        w, x, b = rng.choice(_single_draws())
        z = w[0] * x[0] + w[1] * x[1] + b
        yhat = 1 if z > 0 else 0
        y = 1 - yhat  # the example is misclassified: an update happens
        points, labels = [x], [y]
        given = [Quantity("w", Tex("w"), ImmutableMatrix([list(w)])), Quantity("b", Tex("b"), Integer(b)),
                 Quantity("x", Tex("x"), ImmutableMatrix([list(x)])), Quantity("y", Tex("y"), Integer(y))]
    else:
        order, w, b = rng.choice(_pass_draws(options["eta"], options["data"]))
        points = [CORNERS[i] for i in order]
        labels = [LABELS[options["data"]](*pt) for pt in points]
        given = [Quantity("w", Tex("w_0"), ImmutableMatrix([list(w)])), Quantity("b", Tex("b_0"), Integer(b)),
                 Quantity("X", Tex("X"), ImmutableMatrix([list(pt) for pt in points])),
                 Quantity("y", Tex("y"), ImmutableMatrix([[v] for v in labels]))]
    rows = _run(w, Integer(b), points, labels, eta)
    zs = [Rational(r[0]) for r in rows]
    yhats = [Integer(r[1]) for r in rows]
    ws = [tuple(Rational(v) for v in r[2]) for r in rows]
    bs = [Rational(r[3]) for r in rows]
    facts = {"eta": eta, "steps": options["steps"], "data": options["data"].upper()}
    if options["steps"] == "1":
        return Problem.draft(given=given, parts=_single_parts(w, b, points[0], labels[0], eta, zs[0], yhats[0], ws[0], bs[0]),
                             facts=facts)
    return Problem.draft(given=given, parts=_pass_parts(w, b, points, labels, eta, zs, yhats, ws, bs), facts=facts)


def _dot_tex(w, x) -> str:
    return " + ".join(f"{factor_tex(Integer(a) if isinstance(a, int) else a)} \\cdot {factor_tex(Integer(c))}" for a, c in zip(w, x))


def _single_parts(w, b, x, y, eta, z, yhat, w_new, b_new) -> list[Part]:
    z_q = Quantity("z", Tex(r"w \cdot x + b"), z)
    yhat_q = Quantity("yhat", Tex(r"\hat y"), yhat)
    w_q = Quantity("w_new", Tex(r"w'"), ImmutableMatrix([list(w_new)]))
    b_q = Quantity("b_new", Tex(r"b'"), b_new)
    error = y - yhat
    x_new = w_new[0] * x[0] + w_new[1] * x[1] + b_new
    z_new_q = Quantity("z_new", Tex(r"w' \cdot x + b'"), x_new)
    step_text = number_tex(eta * error)
    fixed = (x_new > 0) == (y == 1)
    return [
        Part(Tex(r"Compute the score $w \cdot x + b$ and the prediction $\hat y$."), (z_q, yhat_q),
             (Step(text=Tex("The dot product, then the bias; the step function gives 1 only for a positive score."),
                   formula=Tex(r"\hat y = \begin{cases} 1 & w \cdot x + b > 0 \\ 0 & w \cdot x + b \le 0 \end{cases}"),
                   lines=(Tex(f"w \\cdot x + b = {_dot_tex(w, x)} + {factor_tex(Integer(b))} = {number_tex(z)}"),
                          Tex(f"\\hat y = {yhat} \\quad ({number_tex(z)} {'>' if z > 0 else '<'} 0)")),
                   result=z_q,
                   checks=(Tex(f"\\hat y = {yhat} \\ne y = {y}\\text{{: the example is misclassified, so the weights change.}}"),)),)),
        Part(Tex(r"Apply the perceptron rule once: compute the new weights $w'$ and bias $b'$."), (w_q, b_q),
             (Step(text=Tex(f"The error is $y - \\hat y = {y} - {yhat} = {number_tex(error)}$: the weights move "
                            f"{'towards' if error > 0 else 'away from'} $x$, and the bias moves the same way."),
                   formula=Tex(r"w' = w + \eta\,(y - \hat y)\,x, \qquad b' = b + \eta\,(y - \hat y)"),
                   lines=tuple(Tex(f"w'_{k} = {number_tex(Integer(w[k]))} + {factor_tex(eta * error)} \\cdot {factor_tex(Integer(x[k]))} "
                                   f"= {number_tex(w_new[k])}") for k in range(2))
                   + (Tex(f"b' = {number_tex(Integer(b))} + {factor_tex(eta * error)} = {number_tex(b_new)}"),),
                   result=w_q,
                   checks=(Tex(f"\\eta\\,(y - \\hat y) = {step_text}\\text{{: each weight changes by }} {step_text} \\cdot x_k"
                               r"\text{, the bias by the same amount.}"),)),)),
        Part(Tex(r"Compute the new score $w' \cdot x + b'$ of the same example."), (z_new_q,),
             (Step(text=Tex("The same example with the new weights and bias."),
                   formula=Tex(r"w' \cdot x + b'"),
                   lines=(Tex(f"w' \\cdot x + b' = {_dot_tex(w_new, x)} + {factor_tex(b_new)} = {number_tex(x_new)}"),),
                   result=z_new_q,
                   checks=(Tex(f"\\text{{The score moved by }} \\eta\\,(y - \\hat y)\\,(\\lVert x \\rVert^2 + 1) = "
                               f"{factor_tex(eta * error)} \\cdot {x[0] ** 2 + x[1] ** 2 + 1} = {number_tex(x_new - z)}"
                               + (r"\text{: the example is now classified correctly.}" if fixed
                                  else r"\text{: towards } y\text{, though not yet across 0.}")),)),)),
    ]


def _pass_parts(w0, b0, points, labels, eta, zs, yhats, ws, bs) -> list[Part]:
    table_q = Quantity("table", Tex(r"\begin{pmatrix} z_t & \hat y_t & w_t & b_t \end{pmatrix}"),
                       ImmutableMatrix([[zs[t], yhats[t], ws[t][0], ws[t][1], bs[t]] for t in range(4)]))
    lines = []
    w, b = tuple(Integer(v) for v in w0), Integer(b0)
    for t, (x, y) in enumerate(zip(points, labels)):
        z, yhat = zs[t], yhats[t]
        head = (f"t = {t + 1}:\\ x = ({x[0]}, {x[1]}),\\ y = {y}:\\quad z = {_dot_tex(w, x)} + {factor_tex(b)} = {number_tex(z)},"
                f"\\ \\hat y = {yhat}")
        if yhat == y:
            lines.append(Tex(head + r"\quad\text{right: no change}"))
        else:
            step = eta * (y - yhat)
            lines.append(Tex(head + f"\\quad\\eta\\,(y - \\hat y) = {number_tex(step)}"))
            lines.append(Tex(f"\\qquad w_{t + 1} = ({number_tex(w[0])}, {number_tex(w[1])}) + {factor_tex(step)} \\cdot ({x[0]}, {x[1]})"
                             f" = ({number_tex(ws[t][0])}, {number_tex(ws[t][1])}),\\ b_{t + 1} = {number_tex(b)} + "
                             f"{factor_tex(step)} = {number_tex(bs[t])}"))
        w, b = ws[t], bs[t]
    rows = r" \\ ".join(f"{t + 1} & ({x[0]}, {x[1]}) & {y} & {number_tex(zs[t])} & {yhats[t]} & "
                          f"{number_tex(eta * (y - yhats[t]))} & ({number_tex(ws[t][0])}, {number_tex(ws[t][1])}) & "
                          f"{number_tex(bs[t])}" for t, (x, y) in enumerate(zip(points, labels)))
    lines.append(Tex(r"\begin{array}{c|cc|cc|c|cc} t & x_t & y_t & z_t & \hat y_t & \eta\,(y_t - \hat y_t) & w_t & b_t "
                     r"\\ \hline " + rows + r" \end{array}"))
    return [
        Part(Tex(r"Go through the data set once, in the order given (row $t$ of $X$ at step $t$). At each step compute the "
                 r"score $z_t = w \cdot x_t + b$ with the current weights, the prediction $\hat y_t$, and the weights "
                 r"$w_t$ and bias $b_t$ after the step (unchanged when $\hat y_t = y_t$). Row $t$ of the table is "
                 r"$z_t,\ \hat y_t$, the two weights of $w_t$, and $b_t$."),
             (table_q,),
             (Step(text=Tex("One row per step: score, prediction, then the rule, which changes nothing when the "
                            "prediction is right."),
                   formula=Tex(r"w \leftarrow w + \eta\,(y_t - \hat y_t)\,x_t, \qquad b \leftarrow b + \eta\,(y_t - \hat y_t)"),
                   lines=tuple(lines), result=table_q,
                   checks=(Tex(r"\text{A step with } \hat y_t = y_t \text{ repeats the row above in } w_t \text{ and } b_t."),)),)),
    ]
