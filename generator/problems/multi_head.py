"""Several attention heads: concatenate their outputs and project with W_O."""

from __future__ import annotations

from sympy import ImmutableMatrix, Rational

from generator.core.draws import SMALL_DIFFICULTY, has_zero_row, small_matrix
from generator.core.problem import Bounds, Contract, Part, Problem, Quantity, Step, Tex
from generator.core.registry import Option, SpecError
from generator.core.rng import Rng
from generator.core.slips import product_rule
from generator.core.worked import product_step

TITLE = "Multi-head attention: concatenate, then project"
D_MODEL_OPTION = Option("d_model", ("2", "3", "4"), "2", "width of the model (columns of the concatenation and of W_O)")
OPTIONS = [
    Option("tokens", ("2", "3"), "2", "rows of each head's output"),
    Option("heads", ("2", "3"), "2", "number of heads; each has width d_head = d_model / heads"),
    D_MODEL_OPTION,
    SMALL_DIFFICULTY,
]

CONTRACT = Contract(
    given=Bounds(4, 2, Rational(3)),  # entries within ±2; the head count (up to 3) is a stated fact
    intermediate=Bounds(64, 4, Rational(16)),
    answer=Bounds(64, 4, Rational(16)),
    forbidden={
        "a head's output has a zero row": lambda p: any(
            has_zero_row(q.value) for q in p.given if q.name.startswith("H")),
        "W_O has a zero row": lambda p: has_zero_row(p.given_value("W_O")),
        "the output is all zeros": lambda p: all(x == 0 for x in p.parts[1].answers[0].value),
        # Equal heads would hide concatenating them in the wrong order.
        "two heads' outputs are equal": lambda p: len({q.value for q in p.given if q.name.startswith("H")})
        < sum(q.name.startswith("H") for q in p.given),
        **product_rule("O = H·W_O", lambda p: (p.answer("H"), p.given_value("W_O"))),
    },
)


def check_options(options: dict[str, str]) -> None:
    """The heads split d_model evenly: d_head = d_model / heads must be whole."""
    heads, d_model = int(options["heads"]), int(options["d_model"])
    if d_model % heads:
        fits = [d for d in map(int, D_MODEL_OPTION.choices) if d % heads == 0]
        raise SpecError(f"problem type 'multi_head': d_model={d_model} is not divisible by heads={heads}; "
                        f"accepted: d_model {' or '.join(map(str, fits))} with heads={heads}")


def generate(rng: Rng, options: dict[str, str]) -> Problem:
    """Draw each head's output and W_O; concatenate and multiply."""
    n, heads, d_model = int(options["tokens"]), int(options["heads"]), int(options["d_model"])
    d_head = d_model // heads
    difficulty = options["difficulty"]
    outputs = [small_matrix(rng, difficulty, n, d_head, nonzero=True) for _ in range(heads)]
    w_o = small_matrix(rng, difficulty, d_model, d_model)
    concat = Quantity("H", Tex("H"), ImmutableMatrix.hstack(*outputs))
    out = Quantity("O", Tex("O"), concat.value * w_o)
    blocks = r" \mid ".join(f"H_{h + 1}" for h in range(heads))
    return Problem.draft(
        given=[Quantity(f"H{h + 1}", Tex(f"H_{h + 1}"), value) for h, value in enumerate(outputs)]
        + [Quantity("W_O", Tex("W_O"), w_o)],
        parts=[
            Part(Tex(f"Concatenate the heads: $H = [\\,{blocks}\\,]$."), (concat,),
                 (Step(text=Tex("Put each head's columns to the right of the previous head's; rows stay tokens."),
                       formula=Tex(f"H = [\\,{blocks}\\,]"), result=concat),)),
            Part(Tex(r"Project: compute $O = H\,W_O$."), (out,),
                 (product_step(Tex(r"Row $i$ of $H$ times column $j$ of $W_O$."), concat.value, w_o,
                               Tex(r"O = H\,W_O"), out, expand="row"),)),
        ],
        facts={"heads": Rational(heads), "d_head": Rational(d_head)},
    )
