"""ReLU backward: the upstream gradient passes where the pre-activation was positive and is zeroed elsewhere."""

from __future__ import annotations

from sympy import ImmutableMatrix, Rational

from generator.core.draws import SMALL_DIFFICULTY, small_matrix
from generator.core.problem import Bounds, Contract, Part, Problem, Quantity, Step, Tex
from generator.core.registry import Option
from generator.documents.render import number_tex
from generator.core.rng import Rng
from generator.core.worked import entry_label

TITLE = "Backward through ReLU"
OPTIONS = [
    Option("tokens", ("1", "2"), "2", "rows of h"),
    Option("d_ff", ("2", "4"), "4", "hidden width (columns of h)"),
    SMALL_DIFFICULTY,
]

CONTRACT = Contract(
    given=Bounds(4, 2, Rational(2)),
    intermediate=Bounds(4, 2, Rational(2)),
    answer=Bounds(4, 2, Rational(2)),
    forbidden={
        # ReLU's derivative at exactly 0 is a convention, not a lesson: never draw it.
        "a pre-activation is exactly 0": lambda p: any(v == 0 for v in p.given_value("h")),
        "ReLU passes everything": lambda p: all(v > 0 for v in p.given_value("h")),
        "ReLU blocks everything": lambda p: all(v < 0 for v in p.given_value("h")),
        "a zeroed entry had no gradient to lose": lambda p: all(
            g == 0 for g, h in zip(p.given_value("dr"), p.given_value("h")) if h < 0),
        # ReLU applied to the gradient itself, max(∂L/∂r, 0), is the classic slip: it must not give ∂L/∂h.
        "ReLU of the upstream gradient gives the same ∂L/∂h": lambda p: p.given_value("dr").applyfunc(
            lambda g: max(g, 0)) == p.answer("dh"),
    },
)


def _signed_matrix(rng: Rng, difficulty: str, rows: int, cols: int) -> ImmutableMatrix:
    """Non-zero small entries, each with a random sign."""
    sizes = small_matrix(rng, difficulty, rows, cols, nonzero=True)
    return ImmutableMatrix(rows, cols, [sizes[k] * rng.sign() for k in range(rows * cols)])


def _zeroed_lines(zeroed: list[str], per_line: int = 3) -> tuple[Tex, ...]:
    """The negative pre-activations, a few per line: with 2 × 4 entries one line would run off the page."""
    chunks = [",\\ ".join(zeroed[k:k + per_line]) for k in range(0, len(zeroed), per_line)]
    return tuple(Tex((r"\text{zeroed where } h < 0\text{: } " if k == 0 else "") + chunk) for k, chunk in enumerate(chunks))


def generate(rng: Rng, options: dict[str, str]) -> Problem:
    """Draw h (never 0) and the upstream gradient dL/dr; the mask is [h > 0]."""
    n, d = int(options["tokens"]), int(options["d_ff"])
    # Signs drawn apart from sizes (entry by entry, in order): the easy sizes are 1 and 2, and ReLU needs
    # negatives to cut.
    h, dr = (_signed_matrix(rng, options["difficulty"], n, d) for _ in range(2))
    mask = h.applyfunc(lambda v: Rational(1) if v > 0 else Rational(0))
    dh = dr.multiply_elementwise(mask)
    mask_q = Quantity("mask", Tex(r"\mathbf{1}[h > 0]"), mask)
    dh_q = Quantity("dh", Tex(r"\frac{\partial L}{\partial h}"), dh)
    zeroed = [f"{entry_label('h', i, j)} = {number_tex(h[i, j])}" for i in range(n) for j in range(d) if h[i, j] < 0]
    parts = [
        Part(Tex(r"Write the mask $\mathbf{1}[h > 0]$: 1 where ReLU passed its input, 0 where it cut it."), (mask_q,),
             (Step(text=Tex(r"ReLU's slope is 1 for a positive input and 0 for a negative one."),
                   formula=Tex(r"\operatorname{ReLU}'(h) = \mathbf{1}[h > 0]"), result=mask_q),)),
        Part(Tex(r"Compute $\partial L/\partial h$ from the upstream gradient $\partial L/\partial r$."), (dh_q,),
             (Step(text=Tex("Multiply entry by entry: the gradient passes where ReLU passed the input, and is zeroed where it cut it."),
                   formula=Tex(r"\frac{\partial L}{\partial h} = \frac{\partial L}{\partial r} \odot \mathbf{1}[h > 0]"),
                   lines=_zeroed_lines(zeroed), result=dh_q,
                   checks=(Tex(r"\text{The zeros of } \partial L/\partial h \text{ sit exactly where } h < 0."),)),)),
    ]
    return Problem.draft(given=[Quantity("h", Tex("h"), h), Quantity("dr", Tex(r"\frac{\partial L}{\partial r}"), dr)],
                         parts=parts)
