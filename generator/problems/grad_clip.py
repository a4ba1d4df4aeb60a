"""Gradient clipping by global norm: one norm over every parameter's gradient, then one common scale."""

from __future__ import annotations

from functools import cache
from itertools import product
from math import isqrt

import sympy
from sympy import ImmutableMatrix, Rational

from ..problem import Bounds, Contract, Part, Problem, Quantity, Step, Tex
from ..registry import Option
from ..render import number_tex
from ..rng import Rng

TITLE = "Gradient clipping by global norm"
OPTIONS = [Option("max_norm", ("1", "2", "5"), "1", "the clipping threshold c (gradients are scaled to norm c when longer)")]

CONTRACT = Contract(
    given=Bounds(8, 1, Rational(8)),
    intermediate=Bounds(144, 13, Rational(144)),
    answer=Bounds(40, 13, Rational(13)),
    forbidden={
        "the gradients are already short enough (nothing to clip)": lambda p: p.answer("norm") <= p.facts["c"],
    },
)


@cache
def _whole_norm_sizes() -> tuple[tuple[int, ...], ...]:
    """Four sizes 1–8 (two per parameter) whose squares add up to a perfect square between 3² and 13².

    Sizes only (4,096 candidates): signs are drawn per entry, which keeps this table cheap to build.
    """
    found = []
    for g in product(range(1, 9), repeat=4):
        square = sum(v * v for v in g)
        root = isqrt(square)
        if root * root == square and 3 <= root <= 13:
            found.append(g)
    return tuple(found)


def generate(rng: Rng, options: dict[str, str]) -> Problem:
    """Gradients of W and b with a whole global norm, so the scale c/‖g‖ is a simple fraction."""
    c = Rational(options["max_norm"])
    g = [size * rng.sign() for size in rng.choice(_whole_norm_sizes())]
    g_w, g_b = ImmutableMatrix([list(g[:2])]), ImmutableMatrix([list(g[2:])])
    square = sum(v * v for v in g)
    norm = sympy.sqrt(square)
    scale = c / norm
    norm_q = Quantity("norm", Tex(r"\lVert g \rVert"), norm)
    scale_q = Quantity("scale", Tex("s"), scale)
    clipped_w, clipped_b = Quantity("gW_clipped", Tex(r"\tilde g_W"), g_w * scale), Quantity("gb_clipped", Tex(r"\tilde g_b"), g_b * scale)
    terms = " + ".join(f"({number_tex(v)})^2" if v < 0 else f"{v}^2" for v in g)
    parts = [
        Part(Tex(r"Compute the global norm $\lVert g \rVert$ over both gradients together."), (norm_q,),
             (Step(text=Tex("Square every entry of every gradient, add them all, and take the root."),
                   formula=Tex(r"\lVert g \rVert = \sqrt{\textstyle\sum g_W^2 + \sum g_b^2}"),
                   lines=(Tex(f"\\lVert g \\rVert = \\sqrt{{{terms}}} = \\sqrt{{{square}}} = {number_tex(norm)}"),),
                   result=norm_q),)),
        Part(Tex(r"Compute the scale $s = c / \lVert g \rVert$ (the norm exceeds $c$)."), (scale_q,),
             (Step(text=Tex("The norm is above the threshold, so every gradient is shrunk by the same factor."),
                   formula=Tex(r"s = \frac{c}{\lVert g \rVert}"),
                   lines=(Tex(f"s = \\frac{{{number_tex(c)}}}{{{number_tex(norm)}}} = {number_tex(scale)}"),), result=scale_q),)),
        Part(Tex(r"Compute the clipped gradients $\tilde g_W = s\,g_W$ and $\tilde g_b = s\,g_b$."), (clipped_w, clipped_b),
             (Step(text=Tex("Multiply every entry by $s$: the direction stays, the length becomes $c$."),
                   formula=Tex(r"\tilde g = s\,g"), result=clipped_w,
                   checks=(Tex(r"\sqrt{\textstyle\sum \tilde g_W^2 + \sum \tilde g_b^2} = c"),)),
              Step(text=Tex("The same factor for the bias."), formula=Tex(r"\tilde g_b = s\,g_b"), result=clipped_b))),
    ]
    return Problem.draft(given=[Quantity("g_W", Tex("g_W"), g_w), Quantity("g_b", Tex("g_b"), g_b)], parts=parts,
                         facts={"c": c})
