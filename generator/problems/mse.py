"""Mean squared error: the errors ŷ − y, the loss (mean over all N entries, or sum), ∂L/∂ŷ, and the ½ convention.

∂L/∂ŷ = (2/N)(ŷ − y) for the mean, 2(ŷ − y) for the sum; ½·Σ(ŷ − y)² has the gradient ŷ − y itself, so the three
conventions differ by a constant factor k that a learning rate absorbs."""

from __future__ import annotations

from sympy import ImmutableMatrix, Rational

from generator.core.problem import Bounds, Contract, Part, Problem, Quantity, Step, Tex
from generator.core.registry import Option
from generator.core.rng import Rng
from generator.core.slips import reduction_hidden
from generator.documents.render import factor_tex, number_tex

TITLE = "Mean squared error and its gradient"
OPTIONS = [
    Option("examples", ("3", "4"), "4", "rows of ŷ and y, one example per row"),
    Option("outputs", ("1", "2"), "1", "columns of ŷ and y: outputs per example (the mean is over all N entries)"),
    Option("reduction", ("mean", "sum"), "mean",
           "mean: L = (1/N)·Σ(ŷ − y)², PyTorch's mse_loss; sum: L = Σ(ŷ − y)², mse_loss with reduction='sum'"),
]
# Targets in halves; errors whole and never 0 (a prediction on its target: every slip in the gradient gives that
# entry 0 as well), so the gradient is in N-ths and the loss in N-ths or halves.
TARGETS = tuple(Rational(k, 2) for k in range(-4, 7))
ERRORS = (-3, -2, -1, 1, 2, 3)
PREDICTION_LIMIT = 4


def _entries(p: Problem, name: str) -> list:
    return list(p.answer(name))


def _count(p: Problem) -> int:
    """N: every entry of ŷ, over examples and outputs."""
    return len(p.given_value("y_hat"))


def _scale(p: Problem) -> Rational:
    """The loss's factor before Σ(ŷ − y)²: 1/N for the mean, 1 for the sum."""
    return Rational(1, _count(p)) if p.options["reduction"] == "mean" else Rational(1)


def _same_entry(slipped, right) -> bool:
    """A slip that gives some entry right: that blank could not tell the slip from the skill."""
    return any(a == b for a, b in zip(slipped, right))


CONTRACT = Contract(
    given=Bounds(12, 2, Rational(8)),  # N = 8 is a stated fact
    intermediate=Bounds(144, 8, Rational(72)),
    answer=Bounds(144, 8, Rational(72)),
    forbidden={
        "a prediction equals its target": lambda p: any(v == 0 for v in _entries(p, "e")),
        "every error is the same (a swapped or shifted entry would not show)": lambda p: len(set(_entries(p, "e"))) == 1,
        # The classic slips of the gradient, each checked entry by entry.
        "forgetting the 2 gives an entry of ∂L/∂ŷ": lambda p: _same_entry(
            [g / 2 for g in _entries(p, "dy_hat")], _entries(p, "dy_hat")),
        "forgetting (or adding) 1/N gives an entry of ∂L/∂ŷ": lambda p: _same_entry(
            [g * _count(p) if p.options["reduction"] == "mean" else g / _count(p) for g in _entries(p, "dy_hat")],
            _entries(p, "dy_hat")),
        "y − ŷ for ŷ − y gives an entry of ∂L/∂ŷ": lambda p: _same_entry(
            [-g for g in _entries(p, "dy_hat")], _entries(p, "dy_hat")),
        # And of the loss: the sum for the mean (or back), the square forgotten, the ½ convention for the mean.
        "the sum for the mean (or the mean for the sum) gives L": lambda p: reduction_hidden(
            p.answer("L") * (_count(p) if p.options["reduction"] == "mean" else 1), _count(p)),
        "Σ|ŷ − y| for Σ(ŷ − y)² (the square forgotten) gives L": lambda p: _scale(p) * sum(
            abs(v) for v in _entries(p, "e")) == p.answer("L"),
        "Σ(ŷ − y) for Σ(ŷ − y)² gives L": lambda p: _scale(p) * sum(_entries(p, "e")) == p.answer("L"),
        "the ½ convention gives the same loss": lambda p: p.answer("L_half") == p.answer("L"),
    },
)


def _draw(rng: Rng, rows: int, cols: int) -> tuple[ImmutableMatrix, ImmutableMatrix]:
    """Targets y and predictions ŷ = y + e with whole errors e ≠ 0, every prediction within ±PREDICTION_LIMIT."""
    while True:
        y = ImmutableMatrix(rows, cols, [rng.choice(TARGETS) for _ in range(rows * cols)])
        e = ImmutableMatrix(rows, cols, [Rational(rng.choice(ERRORS)) for _ in range(rows * cols)])
        y_hat = y + e
        if all(abs(v) <= PREDICTION_LIMIT for v in y_hat):
            return y_hat, y


def generate(rng: Rng, options: dict[str, str]) -> Problem:
    """Draw y and whole errors; work the errors, the loss, its gradient and the ½ convention."""
    rows, cols = int(options["examples"]), int(options["outputs"])
    mean = options["reduction"] == "mean"
    y_hat, y = _draw(rng, rows, cols)
    n = rows * cols
    e = y_hat - y
    square_sum = sum(v ** 2 for v in e)
    scale = Rational(1, n) if mean else Rational(1)
    factor = 2 * scale  # ∂L/∂ŷ = factor·e, and k = factor
    cells = [(i, j) for i in range(rows) for j in range(cols)]

    e_q = Quantity("e", Tex("e"), e)
    loss_q = Quantity("L", Tex("L"), scale * square_sum)
    grad_q = Quantity("dy_hat", Tex(r"\frac{\partial L}{\partial \hat y}"), factor * e)
    half_q = Quantity("L_half", Tex(r"L_{1/2}"), square_sum / 2)
    half_grad_q = Quantity("dy_hat_half", Tex(r"\frac{\partial L_{1/2}}{\partial \hat y}"), e)
    k_q = Quantity("k", Tex("k"), factor)

    squares = " + ".join(f"{factor_tex(v)}^2" for v in e)
    reduce = (f"\\frac{{1}}{{{n}}}" if mean else "")
    loss_formula = (r"L = \frac{1}{N} \sum_{i,j} \left(\hat y[i,j] - y[i,j]\right)^2" if mean else
                    r"L = \sum_{i,j} \left(\hat y[i,j] - y[i,j]\right)^2")
    loss_line = (f"L = {reduce}\\left({squares}\\right) = {reduce}\\cdot {number_tex(square_sum)} = {number_tex(loss_q.value)}"
                 if mean else f"L = {squares} = {number_tex(square_sum)}")
    grad_formula = (r"\frac{\partial L}{\partial \hat y} = \frac{2}{N}\,(\hat y - y) = \frac{2}{" + str(n) + r"}\,e" if mean
                    else r"\frac{\partial L}{\partial \hat y} = 2\,(\hat y - y) = 2\,e")
    grad_lines = tuple(
        Tex(f"\\frac{{\\partial L}}{{\\partial \\hat y}}[{i},{j}] = {number_tex(factor)} \\cdot {factor_tex(e[i, j])} "
            f"= {number_tex(factor * e[i, j])}") for i, j in cells)
    parts = [
        Part(Tex(r"Compute the errors $e = \hat y - y$, entry by entry."), (e_q,),
             (Step(text=Tex("Prediction minus target, entry by entry (the order matters for the gradient's sign)."),
                   formula=Tex(r"e[i,j] = \hat y[i,j] - y[i,j]"),
                   lines=tuple(Tex(f"e[{i},{j}] = {number_tex(y_hat[i, j])} - {factor_tex(y[i, j])} = {number_tex(e[i, j])}")
                               for i, j in cells),
                   result=e_q),)),
        Part(Tex("Compute the loss $L$."), (loss_q,),
             (Step(text=Tex("Square every error and add them up" + (f"; divide by the number of entries, $N = {n}$"
                                                                       + (f" ({rows} examples times {cols} outputs)"
                                                                          if cols > 1 else "") + "." if mean else ".")),
                   formula=Tex(loss_formula), lines=(Tex(loss_line),), result=loss_q),)),
        Part(Tex(r"Compute the gradient $\partial L/\partial \hat y$ (one entry per prediction)."), (grad_q,),
             (Step(text=Tex(r"The derivative of $u^2$ is $2u$, and each prediction appears in one term of the sum"
                            + (r", which is divided by $N$." if mean else ".")),
                   formula=Tex(grad_formula), lines=grad_lines, result=grad_q,
                   checks=(Tex(r"\text{Every entry has the sign of its error: a prediction above its target is pushed "
                               r"down.}"),)),)),
        Part(Tex(r"Some texts write the squared error with a $\tfrac12$ and no mean: "
                 r"$L_{1/2} = \tfrac12 \sum_{i,j} (\hat y[i,j] - y[i,j])^2$. Compute $L_{1/2}$ and its gradient "
                 r"$\partial L_{1/2}/\partial \hat y$."), (half_q, half_grad_q),
             (Step(text=Tex(r"Half the sum of the squared errors."),
                   formula=Tex(r"L_{1/2} = \tfrac12 \sum_{i,j} e[i,j]^2"),
                   lines=(Tex(f"L_{{1/2}} = \\tfrac12 \\cdot {number_tex(square_sum)} = {number_tex(half_q.value)}"),),
                   result=half_q),
              Step(text=Tex(r"The $\tfrac12$ cancels the 2 from the square's derivative: the gradient is the error itself."),
                   formula=Tex(r"\frac{\partial L_{1/2}}{\partial \hat y} = \hat y - y = e"), result=half_grad_q))),
        Part(Tex(r"Your gradient from (c) is $k$ times $\partial L_{1/2}/\partial \hat y$, the same number $k$ for "
                 r"every entry. Give $k$."), (k_q,),
             (Step(text=Tex(r"Compare the formulas: the losses differ by a constant factor, so do their gradients, "
                            r"entry by entry. Both have their minimum at $\hat y = y$; a step of gradient descent on $L$ "
                            r"with learning rate $\eta$ is the step on $L_{1/2}$ with learning rate $k\,\eta$."),
                   formula=Tex(r"k = \frac{\partial L/\partial \hat y}{\partial L_{1/2}/\partial \hat y} = "
                               + (r"\frac{2}{N}" if mean else "2")),
                   lines=(Tex(f"k = {number_tex(k_q.value)}"),), result=k_q,
                   checks=((Tex(f"L = {number_tex(loss_q.value)} = \\frac{{2}}{{{n}}}\\,L_{{1/2}}"
                                if mean else f"L = {number_tex(loss_q.value)} = 2\\,L_{{1/2}}"),))),)),
    ]
    given = [Quantity("y_hat", Tex(r"\hat y"), y_hat), Quantity("y", Tex("y"), y)]
    facts = {"N": Rational(n), "outputs": Rational(cols), "reduction": options["reduction"]}
    return Problem.draft(given=given, parts=parts, facts=facts)
