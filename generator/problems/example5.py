"""Example 5, a feed-forward layer after attention: attention output, FFN with ReLU, and the residual."""

from __future__ import annotations

from sympy import ImmutableMatrix, Rational

from generator.core.draws import has_zero_row, int_matrix
from generator.core.forward import add_step, affine_step, attention_weight_row, hidden_biases, relu, relu_step
from generator.core.problem import Bounds, Contract, Part, Problem, Quantity, Tex
from generator.core.registry import Option
from generator.core.rng import Rng
from generator.core.slips import equal_rows, hidden_product_slips, product_rule, symmetric, zero
from generator.core.worked import product_step

TITLE = "Example 5: a feed-forward layer and the residual"
CHAINED = True
OPTIONS = [
    Option("tokens", ("2", "3"), "2", "tokens in the sequence"),
    Option("d_ff", ("2", "4"), "2", "hidden width of the feed-forward layer (d_model = 2)"),
]
D_MODEL = 2



CONTRACT = Contract(
    given=Bounds(6, 4, Rational(3)),
    intermediate=Bounds(96, 8, Rational(12)),  # eighths: quarters from A times halves from W₂
    answer=Bounds(96, 8, Rational(12)),
    forbidden={
        "V has a zero row": lambda p: has_zero_row(p.given_value("V")),
        "two tokens get the same attention output": lambda p: len(set(map(tuple, p.answer("O").tolist())))
        < p.answer("O").rows,
        "a pre-activation is exactly 0": lambda p: any(v == 0 for v in p.answer("h")),
        "ReLU cuts nothing": lambda p: all(v > 0 for v in p.answer("h")),
        "ReLU cuts everything": lambda p: all(v < 0 for v in p.answer("h")),
        "the layer adds nothing": lambda p: all(v == 0 for v in p.answer("f")),
        "a number grows beyond 12": lambda p: any(abs(v) > 12 for v in p.values("answer")),
        "a token's attention output is zero (forgetting the residual would not show)": lambda p: has_zero_row(p.answer("O")),
        "b₁ is all zeros (forgetting it would not show)": lambda p: zero(p.given_value("b1")),
        "b₂ is all zeros (forgetting it would not show)": lambda p: zero(p.given_value("b2")),
        **product_rule("O = A·V", lambda p: (p.given_value("A"), p.given_value("V"))),
        **product_rule("h = O·W₁ + b₁", lambda p: (p.answer("O"), p.given_value("W1"), p.answer("h"))),
        **product_rule("f = r·W₂ + b₂", lambda p: (p.answer("r"), p.given_value("W2"), p.answer("f"))),
    },
)



SECOND_LAYER_TRIES = 50  # W₂, b₂ drawn per first layer before the first layer is drawn again


def _second_layer(rng: Rng, r: ImmutableMatrix, dff: int, n: int):
    """W₂ (halves), b₂ and f = r·W₂ + b₂ with no slip hidden, a non-zero b₂ and f, and every number within 12."""
    for _ in range(SECOND_LAYER_TRIES):
        w2 = ImmutableMatrix(dff, D_MODEL, [Rational(rng.integer(-2, 2), 2) for _ in range(dff * D_MODEL)])
        b2 = int_matrix(rng, 1, D_MODEL, -1, 1)
        f = r * w2 + ImmutableMatrix.vstack(*([b2] * n))
        if not zero(b2) and not zero(f) and not hidden_product_slips(r, w2, f) and max(map(abs, f)) <= 12:
            return w2, b2, f
    return None


def generate(rng: Rng, options: dict[str, str]) -> Problem:
    """Draw weights (halves and quarters), V, and the FFN; chain attention → FFN → residual."""
    n, dff = int(options["tokens"]), int(options["d_ff"])
    # Layer by layer, each drawn again on its own until it teaches (see the contract): redrawing the whole chain
    # for a slip in its last product took four draws a sheet.
    while True:
        a = ImmutableMatrix([attention_weight_row(rng, n, n, halves_and_quarters=True) for _ in range(n)])
        v = int_matrix(rng, n, D_MODEL, -3, 3)
        o = a * v
        if not (has_zero_row(v) or has_zero_row(o) or equal_rows(o) or hidden_product_slips(a, v)):
            break
    layers = None
    while layers is None:
        w1 = int_matrix(rng, D_MODEL, dff, -2, 2)
        b1 = hidden_biases(rng, o * w1, "hard")  # halves, so the bias can meet quarter-valued inputs
        h = o * w1 + ImmutableMatrix.vstack(*([b1] * n))
        flat = list(h)
        # A symmetric r would give rᵀ·W₂ = r·W₂ for every W₂.
        if 0 in flat or not min(flat) < 0 < max(flat) or zero(b1) or hidden_product_slips(o, w1, h) \
                or symmetric(relu(h)) or max(map(abs, flat)) > 12:
            continue
        r = relu(h)
        layers = _second_layer(rng, r, dff, n)
    w2, b2, f = layers
    y = o + f
    o_q, h_q, r_q, f_q, y_q = (Quantity(name, Tex(name), value) for name, value in
                               (("O", o), ("h", h), ("r", r), ("f", f), ("y", y)))
    parts = [
        Part(Tex(r"Compute the attention output $O = A\,V$."), (o_q,),
             (product_step(Tex(r"Row $i$ of $O$ averages the rows of $V$ with token $i$'s weights."), a, v,
                           Tex(r"O = A\,V"), o_q, expand="row"),)),
        Part(Tex(r"Feed-forward, first layer: compute $h = O\,W_1 + b_1$."), (h_q,),
             (affine_step(Tex(r"Row of $O$ times column $j$ of $W_1$, plus $b_1[j]$."), o, w1, b1,
                          Tex(r"h = O\,W_1 + b_1"), h_q),)),
        Part(Tex(r"Apply ReLU: $r = \operatorname{ReLU}(h)$."), (r_q,), (relu_step(h, r_q),)),
        Part(Tex(r"Feed-forward, second layer: compute $f = r\,W_2 + b_2$."), (f_q,),
             (affine_step(Tex(r"Row of $r$ times column $j$ of $W_2$, plus $b_2[j]$."), r, w2, b2,
                          Tex(r"f = r\,W_2 + b_2"), f_q),)),
        Part(Tex(r"Add the residual: $y = O + f$."), (y_q,),
             (add_step(Tex("The residual connection adds the sub-layer's input back: if the layer learned nothing, "
                           "$y$ would equal $O$."), o, f, Tex("y = O + f"), y_q),)),
    ]
    given = [Quantity("A", Tex("A"), a), Quantity("V", Tex("V"), v), Quantity("W1", Tex("W_1"), w1),
             Quantity("b1", Tex("b_1"), b1), Quantity("W2", Tex("W_2"), w2), Quantity("b2", Tex("b_2"), b2)]
    return Problem.draft(given=given, parts=parts)
