"""Feed-forward pre-activation and the GELU activation (erf variant), with Φ and φ printed on the sheet."""

from __future__ import annotations

from fractions import Fraction

from sympy import ImmutableMatrix, Rational

from generator.core.draws import SMALL_DIFFICULTY, drawn_matrix, small_entry
from generator.core.forward import affine_step, gelu, hidden_biases, phi_table_tex, phi_tables
from generator.core.problem import Bounds, Contract, Part, Problem, Quantity, Step, Tex
from generator.core.registry import Option
from generator.core.readings import format_places
from generator.documents.render import number_tex
from generator.core.rng import Rng
from generator.core.slips import hidden_product_slips, product_rule, zero

TITLE = "Feed-forward layer with GELU"
OPTIONS = [
    Option("tokens", ("1", "2"), "1", "rows of x"),
    Option("d_ff", ("2", "4"), "4", "hidden width (d_model = 2)"),
    SMALL_DIFFICULTY,
]
D_MODEL = 2
WINDOW = Rational(2)  # pre-activations stay in [-2, 2], where GELU differs visibly from ReLU


def _pre(p: Problem) -> ImmutableMatrix:
    return p.parts[0].answers[0].value


CONTRACT = Contract(
    given=Bounds(6, 2, Rational(3)),
    intermediate=Bounds(16, 4, Rational(8)),
    answer=Bounds(16, 4, Rational(2)),
    rational_only=False,
    forbidden={
        "a pre-activation is exactly 0": lambda p: any(v == 0 for v in _pre(p)),
        "a pre-activation lies outside [-2, 2]": lambda p: any(abs(v) > WINDOW for v in _pre(p)),
        "no pre-activation is negative": lambda p: all(v > 0 for v in _pre(p)),
        "b₁ is all zeros (forgetting it would not show)": lambda p: zero(p.given_value("b1")),
        **product_rule("h = x·W₁ + b₁", lambda p: (p.given_value("x"), p.given_value("W1"), p.answer("h"))),
    },
)


def table_grid(difficulty: str) -> list[Rational]:
    """The x of the printed Φ table: whole numbers, or halves for hard sheets (0 is never a pre-activation)."""
    step = Rational(1, 2) if difficulty == "hard" else Rational(1)
    return [k * step for k in range(-int(WINDOW / step), int(WINDOW / step) + 1) if k != 0]


def generate(rng: Rng, options: dict[str, str]) -> Problem:
    """Draw x, W₁ and b₁ (every pre-activation a printed x of the table, some negative); work out h and GELU(h)."""
    n, dff, difficulty = int(options["tokens"]), int(options["d_ff"]), options["difficulty"]
    # The same grid for every variant: a table of only the values needed would give away h.
    grid = table_grid(difficulty)
    on_grid = set(map(Fraction, grid))
    # Cheap redraws before any step is built: every pre-activation is in the printed table. A hard sheet with two
    # tokens and four hidden units redraws about 30 times, so each try is worked in plain Fractions (the same
    # draws as small_matrix's, in the same order) and sympy only sees the one kept.
    while True:
        x_entries = [small_entry(rng, difficulty, nonzero=True) for _ in range(n * D_MODEL)]
        w1_entries = [small_entry(rng, difficulty) for _ in range(D_MODEL * dff)]
        x_rows = [[Fraction(v) for v in x_entries[i * D_MODEL:(i + 1) * D_MODEL]] for i in range(n)]
        w1_rows = [[Fraction(v) for v in w1_entries[k * dff:(k + 1) * dff]] for k in range(D_MODEL)]
        xw = [[sum(row[k] * w1_rows[k][j] for k in range(D_MODEL)) for j in range(dff)] for row in x_rows]
        b1 = hidden_biases(rng, xw, difficulty, window=WINDOW)
        biases = [Fraction(v) for v in b1]
        pre_rows = [[v + b for v, b in zip(row, biases)] for row in xw]
        if not (all(v in on_grid for row in pre_rows for v in row) and any(v < 0 for row in pre_rows for v in row)
                and any(biases)):
            continue
        x = drawn_matrix(n, D_MODEL, tuple(x_entries))
        w1 = drawn_matrix(D_MODEL, dff, tuple(w1_entries))
        pre = x * w1 + ImmutableMatrix.vstack(*([b1] * n))
        if not hidden_product_slips(x, w1, pre):
            break
    h = Quantity("h", Tex("h"), pre)
    cdf, _ = phi_tables(tuple(grid))
    readings = tuple(tuple(v * cdf(v) for v in h.value.row(i)) for i in range(n))
    g = Quantity("g", Tex("g"), h.value.applyfunc(gelu), reading=readings)
    lines = tuple(
        Tex(f"g[{i},{j}] = {number_tex(v)} \\cdot \\Phi({number_tex(v)}) \\approx {number_tex(v)} \\cdot "
            f"{format_places(cdf(v).route)} \\approx {format_places(readings[i][j].rounded().route)}")
        for i in range(n) for j, v in enumerate(h.value.row(i))
    )
    parts = [
        Part(Tex(r"Compute the pre-activation $h = x\,W_1 + b_1$."), (h,),
             (affine_step(Tex(r"Row of $x$ times column $j$ of $W_1$, plus $b_1[j]$."), x, w1, b1, Tex(r"h = x\,W_1 + b_1"), h),)),
        Part(Tex(r"Apply GELU to every entry, $g = h\,\Phi(h)$, to 4 decimal places."), (g,),
             (Step(text=Tex(r"Multiply each entry by $\Phi$ of itself, read from the table. Unlike ReLU, GELU lets a "
                            r"little of a negative input through."),
                   formula=Tex(r"\operatorname{GELU}(x) = x\,\Phi(x)"), lines=lines, result=g,
                   checks=(Tex(r"\text{Positive entries shrink a little; negative ones become small negatives.}"),)),),
             decimals=True),
    ]
    given = [Quantity("x", Tex("x"), x), Quantity("W1", Tex("W_1"), w1), Quantity("b1", Tex("b_1"), b1)]
    return Problem.draft(given=given, parts=parts, facts={"phi_table": phi_table_tex(tuple(grid))}, needs_calculator=True)
