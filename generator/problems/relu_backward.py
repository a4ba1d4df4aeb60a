"""ReLU backward: the upstream gradient passes where the pre-activation was positive and is zeroed elsewhere."""

from __future__ import annotations

from sympy import ImmutableMatrix, Rational

from generator.core.draws import SMALL_DIFFICULTY, small_matrix
from generator.core.problem import Bounds, Choice, Contract, Part, Problem, Quantity, Step, Tex
from generator.core.registry import Option
from generator.documents.render import number_tex
from generator.core.rng import Rng
from generator.core.worked import entry_label

TITLE = "Backward through ReLU"
OPTIONS = [
    Option("tokens", ("1", "2"), "2", "rows of h"),
    Option("d_ff", ("2", "4"), "4", "hidden width (columns of h)"),
    SMALL_DIFFICULTY,
    Option("at_zero", ("no", "yes"), "no",
           "yes: exactly one pre-activation is 0, and a part asks its gradient under PyTorch's convention ReLU'(0) = 0"),
]
# Why ReLU'(0) is a convention: the slope jumps from 0 to 1 there, so no derivative exists, and every slope in
# [0, 1] is a subgradient. The wrong options are the two "certain" derivatives and giving up.
CONVENTION_OPTIONS = (
    ("subgradient", "no derivative at 0; any slope in [0, 1] is a subgradient, PyTorch picks 0"),
    ("flat", "ReLU is flat at 0, so its derivative there is exactly 0"),
    ("identity", "ReLU(0) = 0 passes its input on, so its derivative there is exactly 1"),
    ("stop", "the gradient at 0 is undefined, so backpropagation stops there"),
)


def _at_zero(p: Problem) -> bool:
    return p.options.get("at_zero") == "yes"


def _cut(p: Problem) -> list[bool]:
    """Where ReLU blocks the gradient: h < 0, and h = 0 too where the sheet draws a 0 (ReLU'(0) = 0)."""
    return [h < 0 or (h == 0 and _at_zero(p)) for h in p.given_value("h")]

CONTRACT = Contract(
    given=Bounds(4, 2, Rational(2)),
    intermediate=Bounds(4, 2, Rational(2)),
    answer=Bounds(4, 2, Rational(2)),
    forbidden={
        # ReLU's derivative at exactly 0 is a convention, not a lesson: never draw it, unless the problem is about
        # that convention (at_zero=yes), and then exactly once.
        "a pre-activation is exactly 0": lambda p: not _at_zero(p) and any(v == 0 for v in p.given_value("h")),
        "not exactly one pre-activation is 0 (at_zero=yes)": lambda p: _at_zero(p) and list(p.given_value("h")).count(0) != 1,
        "ReLU passes everything": lambda p: all(v > 0 for v in p.given_value("h")),
        "ReLU blocks everything": lambda p: all(v <= 0 for v in p.given_value("h")),
        "a zeroed entry had no gradient to lose": lambda p: all(
            g == 0 for g, cut in zip(p.given_value("dr"), _cut(p)) if cut),
        # 1[h ≥ 0], the slope 1 at 0, is the slip at_zero=yes is about: it must not give ∂L/∂h.
        "the mask 1[h >= 0] gives the same ∂L/∂h": lambda p: _at_zero(p) and p.given_value("dr").multiply_elementwise(
            p.given_value("h").applyfunc(lambda v: 1 if v >= 0 else 0)) == p.answer("dh"),
        # With a 0 drawn, 1 × 2 draws can give ∂L/∂h = the mask itself: the mask copied would be right.
        "∂L/∂h equals the mask (at_zero=yes)": lambda p: _at_zero(p) and p.answer("dh") == p.answer("mask"),
        # ReLU applied to the gradient itself, max(∂L/∂r, 0), is the classic slip: it must not give ∂L/∂h.
        "ReLU of the upstream gradient gives the same ∂L/∂h": lambda p: p.given_value("dr").applyfunc(
            lambda g: max(g, 0)) == p.answer("dh"),
    },
)


def _signed_matrix(rng: Rng, difficulty: str, rows: int, cols: int) -> ImmutableMatrix:
    """Non-zero small entries, each with a random sign."""
    sizes = small_matrix(rng, difficulty, rows, cols, nonzero=True)
    return ImmutableMatrix(rows, cols, [sizes[k] * rng.sign() for k in range(rows * cols)])


def _zeroed_lines(zeroed: list[str], per_line: int = 3, relation: str = "<") -> tuple[Tex, ...]:
    """The cut pre-activations, a few per line: with 2 × 4 entries one line would run off the page."""
    chunks = [",\\ ".join(zeroed[k:k + per_line]) for k in range(0, len(zeroed), per_line)]
    return tuple(Tex((f"\\text{{zeroed where }} h {relation} 0\\text{{: }} " if k == 0 else "") + chunk)
                 for k, chunk in enumerate(chunks))


def generate(rng: Rng, options: dict[str, str]) -> Problem:
    """Draw h (never 0, or exactly one 0 with at_zero=yes) and the upstream gradient dL/dr; the mask is [h > 0]."""
    n, d = int(options["tokens"]), int(options["d_ff"])
    # Signs drawn apart from sizes (entry by entry, in order): the easy sizes are 1 and 2, and ReLU needs
    # negatives to cut.
    h, dr = (_signed_matrix(rng, options["difficulty"], n, d) for _ in range(2))
    at_zero = options.get("at_zero") == "yes"
    zero = None
    if at_zero:  # drawn after h and dr, so the default draws are unchanged
        k = rng.below(n * d)
        zero = (k // d, k % d)
        h = ImmutableMatrix(n, d, [0 if i == k else v for i, v in enumerate(h)])
    mask = h.applyfunc(lambda v: Rational(1) if v > 0 else Rational(0))
    dh = dr.multiply_elementwise(mask)
    mask_q = Quantity("mask", Tex(r"\mathbf{1}[h > 0]"), mask)
    dh_q = Quantity("dh", Tex(r"\frac{\partial L}{\partial h}"), dh)
    zeroed = [f"{entry_label('h', i, j)} = {number_tex(h[i, j])}" for i in range(n) for j in range(d) if h[i, j] <= 0]
    slope = (r"ReLU's slope is 1 for a positive input and 0 for a negative one; at exactly 0 it is 0 by the stated "
             r"convention, so $\mathbf{1}[h > 0]$ (not $\mathbf{1}[h \ge 0]$) is 0 there." if at_zero else
             r"ReLU's slope is 1 for a positive input and 0 for a negative one.")
    parts = [
        Part(Tex(r"Write the mask $\mathbf{1}[h > 0]$: 1 where ReLU passed its input, 0 where it cut it."), (mask_q,),
             (Step(text=Tex(slope), formula=Tex(r"\operatorname{ReLU}'(h) = \mathbf{1}[h > 0]"), result=mask_q),)),
        Part(Tex(r"Compute $\partial L/\partial h$ from the upstream gradient $\partial L/\partial r$."), (dh_q,),
             (Step(text=Tex("Multiply entry by entry: the gradient passes where ReLU passed the input, and is zeroed where it cut it."),
                   formula=Tex(r"\frac{\partial L}{\partial h} = \frac{\partial L}{\partial r} \odot \mathbf{1}[h > 0]"),
                   lines=_zeroed_lines(zeroed, relation=r"\le" if at_zero else "<"), result=dh_q,
                   checks=(Tex(r"\text{The zeros of } \partial L/\partial h \text{ sit exactly where } h "
                               + (r"\le 0." if at_zero else "< 0.")),)),)),
    ]
    if zero is not None:
        i, j = zero
        at = entry_label("h", i, j)
        grad_q = Quantity("dh_zero", Tex(f"\\partial L/\\partial h[{i},{j}]"), dh[i, j])
        why_q = Quantity("why_zero", Tex(r"\text{why}"), Choice("subgradient", CONVENTION_OPTIONS))
        parts.append(Part(
            Tex(f"The pre-activation ${at}$ is exactly 0. What gradient $\\partial L/\\partial h[{i},{j}]$ does "
                r"PyTorch's convention $\operatorname{ReLU}'(0) = 0$ give it, and why is that slope a convention "
                r"rather than a derivative?"),
            (grad_q, why_q),
            (Step(text=Tex(f"With $\\operatorname{{ReLU}}'(0) = 0$ the upstream gradient "
                           f"$\\partial L/\\partial r[{i},{j}] = {number_tex(dr[i, j])}$ is blocked, "
                           r"as at a negative input (the slip $\mathbf{1}[h \ge 0]$ would pass it)."),
                  lines=(Tex(f"\\partial L/\\partial h[{i},{j}] = {number_tex(dr[i, j])} \\cdot 0 = 0"),),
                  result=grad_q),
             Step(text=Tex(r"$\operatorname{ReLU}(h) = \max(h, 0)$ has slope 0 just left of 0 and slope 1 just right of it: "
                           r"no derivative exists at 0. Every slope in $[0, 1]$ is a subgradient there (a line through "
                           r"the origin with that slope stays below the graph); PyTorch picks 0, and a different pick "
                           r"would change only gradients at inputs that are exactly 0."),
                  result=why_q))))
    facts = {"at_zero": "yes"} if at_zero else {}  # the statement states the convention at 0
    return Problem.draft(given=[Quantity("h", Tex("h"), h), Quantity("dr", Tex(r"\frac{\partial L}{\partial r}"), dr)],
                         parts=parts, facts=facts)
