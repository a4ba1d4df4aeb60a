"""Example 5, a feed-forward layer after attention: attention output, FFN with ReLU, and the residual."""

from __future__ import annotations

from sympy import ImmutableMatrix, Rational

from ..draws import has_zero_row, int_matrix
from ..forward import add_step, affine_step, attention_weight_row, hidden_biases, relu, relu_step
from ..problem import Bounds, Contract, Part, Problem, Quantity, Tex
from ..registry import Option
from ..rng import Rng
from ..worked import product_step

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
    },
)



def generate(rng: Rng, options: dict[str, str]) -> Problem:
    """Draw weights (halves and quarters), V, and the FFN; chain attention → FFN → residual."""
    n, dff = int(options["tokens"]), int(options["d_ff"])
    a = ImmutableMatrix([attention_weight_row(rng, n, n, halves_and_quarters=True) for _ in range(n)])
    v = int_matrix(rng, n, D_MODEL, -3, 3)
    o = a * v
    w1 = int_matrix(rng, D_MODEL, dff, -2, 2)
    b1 = hidden_biases(rng, o * w1, "hard")  # halves, so the bias can meet quarter-valued inputs
    h = o * w1 + ImmutableMatrix.vstack(*([b1] * n))
    r = relu(h)
    w2 = ImmutableMatrix(dff, D_MODEL, [Rational(rng.integer(-2, 2), 2) for _ in range(dff * D_MODEL)])
    b2 = int_matrix(rng, 1, D_MODEL, -1, 1)
    f = r * w2 + ImmutableMatrix.vstack(*([b2] * n))
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
