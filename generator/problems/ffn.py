"""Feed-forward layer with ReLU and a residual connection: y = x + ReLU(x·W₁ + b₁)·W₂ + b₂."""

from __future__ import annotations

from sympy import ImmutableMatrix, Rational

from generator.core.draws import SMALL_DIFFICULTY, small_matrix
from generator.core.forward import add_step, affine_step, hidden_biases, relu, relu_step
from generator.core.problem import Bounds, Contract, Part, Problem, Quantity, Tex
from generator.core.registry import Option
from generator.core.rng import Rng
from generator.core.slips import hidden_product_slips, product_rule, symmetric, zero

TITLE = "Feed-forward layer (ReLU) and residual"
OPTIONS = [
    Option("tokens", ("1", "2"), "1", "rows of x"),
    Option("d_ff", ("2", "4"), "4", "hidden width (d_model = 2)"),
    SMALL_DIFFICULTY,
]
D_MODEL = 2
LAYER_TRIES = 50  # second layers drawn per first layer; the registry redraws the rare first layer none suits


def _pre(p: Problem) -> ImmutableMatrix:
    return p.parts[0].answers[0].value


CONTRACT = Contract(
    given=Bounds(6, 2, Rational(3)),  # biases reach ±3 so one hidden unit can be cut
    intermediate=Bounds(160, 8, Rational(20)),
    answer=Bounds(160, 8, Rational(20)),
    forbidden={
        # ReLU at exactly 0 is a convention question, not this lesson.
        "a pre-activation is exactly 0": lambda p: any(v == 0 for v in _pre(p)),
        "ReLU zeroes nothing": lambda p: all(v > 0 for v in _pre(p)),
        "ReLU zeroes everything": lambda p: all(v < 0 for v in _pre(p)),
        "the layer adds nothing": lambda p: all(v == 0 for v in p.parts[2].answers[0].value),
        "a number grows beyond 20": lambda p: any(abs(v) > 20 for v in p.values("answer")),
        "b₁ is all zeros (forgetting it would not show)": lambda p: zero(p.given_value("b1")),
        "b₂ is all zeros (forgetting it would not show)": lambda p: zero(p.given_value("b2")),
        **product_rule("h = x·W₁ + b₁", lambda p: (p.given_value("x"), p.given_value("W1"), p.answer("h"))),
        **product_rule("f = r·W₂ + b₂", lambda p: (p.answer("r"), p.given_value("W2"), p.answer("f"))),
    },
)


def generate(rng: Rng, options: dict[str, str]) -> Problem:
    """Draw x, W₁, b₁, W₂, b₂; work out h, ReLU(h), the FFN output and the residual sum."""
    n, dff, difficulty = int(options["tokens"]), int(options["d_ff"]), options["difficulty"]
    # Each layer is drawn again on its own until no slip in its product (and no zero bias) would go unseen.
    while True:
        x = small_matrix(rng, difficulty, n, D_MODEL, nonzero=True)
        w1 = small_matrix(rng, difficulty, D_MODEL, dff)
        b1 = hidden_biases(rng, x * w1, difficulty)
        pre = x * w1 + ImmutableMatrix.vstack(*([b1] * n))
        flat = list(pre)
        # The contract's ReLU rules first: a layer with nothing (or everything) cut is redrawn anyway.
        # A symmetric r = ReLU(h) would give rᵀ·W₂ = r·W₂ for every W₂.
        if 0 not in flat and min(flat) < 0 < max(flat) and not zero(b1) and not hidden_product_slips(x, w1, pre) \
                and not symmetric(relu(pre)):
            break
    r_value = relu(pre)
    # W₂ in [-1, 1] keeps the sum over the hidden units small enough to carry by hand.
    low = 0 if difficulty == "easy" else -2
    for _ in range(LAYER_TRIES):
        w2 = ImmutableMatrix(dff, D_MODEL, [Rational(rng.integer(low, 2), 2) for _ in range(dff * D_MODEL)])
        b2 = small_matrix(rng, difficulty, 1, D_MODEL)
        out = r_value * w2 + ImmutableMatrix.vstack(*([b2] * n))
        if not zero(b2) and not hidden_product_slips(r_value, w2, out):
            break
    h = Quantity("h", Tex("h"), pre)
    r = Quantity("r", Tex("r"), r_value)
    f = Quantity("f", Tex("f"), out)
    y = Quantity("y", Tex("y"), x + f.value)
    parts = [
        Part(Tex(r"Compute the pre-activation $h = x\,W_1 + b_1$."), (h,),
             (affine_step(Tex(r"Row of $x$ times column $j$ of $W_1$, plus $b_1[j]$."), x, w1, b1, Tex(r"h = x\,W_1 + b_1"), h),)),
        Part(Tex(r"Apply the activation: $r = \operatorname{ReLU}(h)$."), (r,), (relu_step(h.value, r),)),
        Part(Tex(r"Compute the layer's output $f = r\,W_2 + b_2$."), (f,),
             (affine_step(Tex(r"Row of $r$ times column $j$ of $W_2$, plus $b_2[j]$."), r.value, w2, b2, Tex(r"f = r\,W_2 + b_2"), f),)),
        Part(Tex(r"Add the residual: $y = x + f$."), (y,),
             (add_step(Tex("The residual connection adds the layer's input back to its output."), x, f.value,
                       Tex("y = x + f"), y),)),
    ]
    given = [Quantity("x", Tex("x"), x), Quantity("W1", Tex("W_1"), w1), Quantity("b1", Tex("b_1"), b1),
             Quantity("W2", Tex("W_2"), w2), Quantity("b2", Tex("b_2"), b2)]
    return Problem.draft(given=given, parts=parts)
