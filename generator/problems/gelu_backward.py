"""GELU backward: GELU'(h) = Φ(h) + h·φ(h) from a printed table, then ∂L/∂h = ∂L/∂g ⊙ GELU'(h)."""

from __future__ import annotations

import sympy
from sympy import ImmutableMatrix, Rational

from generator.core.forward import normal_cdf, normal_pdf, phi_table_tex, phi_tables
from generator.core.problem import Bounds, Contract, Part, Problem, Quantity, Step, Tex
from generator.core.registry import Option
from generator.core.readings import format_places
from generator.documents.render import factor_tex, number_tex
from generator.core.rng import Rng

TITLE = "Backward through GELU"
OPTIONS = [
    Option("grid", ("whole", "halves"), "whole", "pre-activations are whole numbers in ±2, or halves in ±2"),
    Option("size", ("2", "3"), "3", "entries of h"),
]
WINDOW = 2

CONTRACT = Contract(
    given=Bounds(4, 2, Rational(2)),
    intermediate=Bounds(4, 2, Rational(3)),  # slopes lie in about (−0.13, 1.13); times |∂L/∂g| ≤ 2
    answer=Bounds(4, 2, Rational(3)),
    rational_only=False,  # Φ and φ are irrational: the sheet prints them, the key keeps them exact
    forbidden={
        "every pre-activation has the same sign": lambda p: len({v > 0 for v in p.given_value("h")}) == 1,
        "an upstream gradient is 0": lambda p: 0 in p.given_value("dg"),
        # At h = 0 the slope Φ(0) + 0·φ(0) is Φ alone: the product rule's second term would go unseen.
        "a pre-activation is 0 (Φ alone gives the slope)": lambda p: 0 in p.given_value("h"),
    },
)


def derivative(x: sympy.Expr) -> sympy.Expr:
    """GELU'(x) = Φ(x) + x·φ(x), exact (erf variant)."""
    return normal_cdf(x) + x * normal_pdf(x)


def _signed(value) -> str:
    """A 4-place decimal as a factor: negatives in parentheses."""
    text = format_places(value)
    return f"({text})" if text.startswith("-") else text


def generate(rng: Rng, options: dict[str, str]) -> Problem:
    """Draw h on the table's grid (never 0) and a small whole upstream gradient."""
    step = Rational(1, 2) if options["grid"] == "halves" else Rational(1)
    grid = [k * step for k in range(-int(WINDOW / step), int(WINDOW / step) + 1) if k != 0]
    n = int(options["size"])
    h = ImmutableMatrix([[rng.choice(grid) for _ in range(n)]])
    dg = ImmutableMatrix([[rng.choice([-2, -1, 1, 2]) for _ in range(n)]])
    slope = ImmutableMatrix([[derivative(v) for v in h]])
    dh = dg.multiply_elementwise(slope)
    cdf, pdf = phi_tables(tuple(grid))
    # The sheet's method: Φ and φ from the table, the slope rounded to 4 places (part a), then times ∂L/∂g.
    slope_readings = [cdf(v) + v * pdf(v) for v in h]
    dh_readings = [d * s.rounded() for d, s in zip(dg, slope_readings)]
    slope_q = Quantity("slope", Tex(r"\operatorname{GELU}'(h)"), slope, reading=(tuple(slope_readings),))
    dh_q = Quantity("dh", Tex(r"\frac{\partial L}{\partial h}"), dh, reading=(tuple(dh_readings),))
    slope_lines = tuple(
        Tex(f"\\operatorname{{GELU}}'({number_tex(v)}) = \\Phi({number_tex(v)}) + {factor_tex(v)} \\cdot \\varphi({number_tex(v)}) "
            f"\\approx {format_places(cdf(v).route)} + {factor_tex(v)} \\cdot {format_places(pdf(v).route)} "
            f"\\approx {format_places(s.rounded().route)}")
        for v, s in zip(h, slope_readings))
    dh_lines = tuple(
        Tex(f"\\frac{{\\partial L}}{{\\partial h_{j}}} = {factor_tex(dg[j])} \\cdot {_signed(slope_readings[j].rounded().route)} "
            f"\\approx {format_places(dh_readings[j].rounded().route)}")
        for j in range(n))
    parts = [
        Part(Tex(r"Compute the slope $\operatorname{GELU}'(h) = \Phi(h) + h\,\varphi(h)$ of each entry, to 4 decimal places."),
             (slope_q,),
             (Step(text=Tex(r"Product rule on $h\,\Phi(h)$: the derivative of $\Phi$ is $\varphi$."),
                   formula=Tex(r"\frac{d}{dh}\,h\,\Phi(h) = \Phi(h) + h\,\varphi(h)"), lines=slope_lines, result=slope_q,
                   checks=(Tex(r"\text{Unlike ReLU's 0 or 1, the slope is slightly negative for } h \le -1 "
                               r"\text{ and slightly above 1 for } h \ge 1."),)),),
             decimals=True),
        Part(Tex(r"Compute $\partial L/\partial h = \partial L/\partial g \odot \operatorname{GELU}'(h)$, to 4 decimal places."),
             (dh_q,),
             (Step(text=Tex("Multiply each upstream gradient by its slope."),
                   formula=Tex(r"\frac{\partial L}{\partial h} = \frac{\partial L}{\partial g} \odot \operatorname{GELU}'(h)"),
                   lines=dh_lines, result=dh_q),),
             decimals=True),
    ]
    return Problem.draft(given=[Quantity("h", Tex("h"), h), Quantity("dg", Tex(r"\frac{\partial L}{\partial g}"), dg)],
                         parts=parts, facts={"phi_table": phi_table_tex(tuple(grid))}, needs_calculator=True)
