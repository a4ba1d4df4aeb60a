"""Gradient clipping by global norm: one norm over every parameter's gradient, then one common scale."""

from __future__ import annotations

from functools import cache
from itertools import product
from math import isqrt

import sympy
from sympy import ImmutableMatrix, Rational

from generator.core.problem import Bounds, Choice, Contract, Part, Problem, Quantity, Step, Tex
from generator.core.registry import Option
from generator.documents.render import number_tex
from generator.core.rng import Rng

TITLE = "Gradient clipping by global norm"
OPTIONS = [Option("max_norm", ("1", "2", "5"), "1", "the clipping threshold c (gradients are scaled to norm c when longer)")]
# Every gradient entry is c·k/10 for a whole k, so ‖g‖ = c·N/10 with N whole: the norm exceeds c exactly when N > 10.
# Whether it does is drawn (half the sheets clip, half do not), so the comparison is a question, not a given.
UNIT = Rational(1, 10)
CLIP_OPTIONS = (("yes", "yes: the gradients are clipped"), ("no", "no: the gradients are left as they are"))

CONTRACT = Contract(
    given=Bounds(8, 10, Rational(8)),
    intermediate=Bounds(40, 16, Rational(8)),
    answer=Bounds(40, 16, Rational(8)),
    forbidden={
        # ‖g‖ = c: the scale is 1 whichever way "exceeds" is read, so the question would have no answer.
        # ‖g‖ = c: clipping and not clipping give the same s = 1, so neither slip (scaling a short gradient by
        # c/‖g‖, or leaving a long one as it is) would show.
        "the norm equals c": lambda p: p.answer("norm") == p.facts["c"],
    },
)


@cache
def _whole_norm_sizes() -> dict[bool, tuple[tuple[int, ...], ...]]:
    """Four sizes 1–8 (two per parameter) whose squares add up to a perfect square N², by whether N > 10.

    Sizes only (4,096 candidates): signs are drawn per entry, which keeps this table cheap to build.
    """
    found: dict[bool, list[tuple[int, ...]]] = {True: [], False: []}
    for g in product(range(1, 9), repeat=4):
        square = sum(v * v for v in g)
        root = isqrt(square)
        if root * root == square and root != 10:
            found[root > 10].append(g)
    return {clip: tuple(sizes) for clip, sizes in found.items()}


def generate(rng: Rng, options: dict[str, str]) -> Problem:
    """Gradients of W and b with a norm c·N/10 (N whole), longer than c in half the draws."""
    c = Rational(options["max_norm"])
    clip = rng.below(2) == 1
    g = [c * UNIT * size * rng.sign() for size in rng.choice(_whole_norm_sizes()[clip])]
    g_w, g_b = ImmutableMatrix([list(g[:2])]), ImmutableMatrix([list(g[2:])])
    square = sum(v * v for v in g)
    norm = sympy.sqrt(square)
    if clip != (norm > c):
        raise AssertionError("the drawn case does not match the norm")
    ratio = c / norm
    scale = min(ratio, Rational(1))  # torch's clamp of c/‖g‖ at 1
    norm_q = Quantity("norm", Tex(r"\lVert g \rVert"), norm)
    ratio_q = Quantity("ratio", Tex(r"c / \lVert g \rVert"), ratio)
    exceeds_q = Quantity("exceeds", Tex(r"\lVert g \rVert > c"), Choice("yes" if clip else "no", CLIP_OPTIONS))
    scale_q = Quantity("scale", Tex("s"), scale)
    clipped_w, clipped_b = Quantity("gW_clipped", Tex(r"\tilde g_W"), g_w * scale), Quantity("gb_clipped", Tex(r"\tilde g_b"), g_b * scale)
    terms = " + ".join(f"\\left({number_tex(v)}\\right)^2" for v in g)
    ratio_line = Tex(f"\\frac{{c}}{{\\lVert g \\rVert}} = \\frac{{{number_tex(c)}}}{{{number_tex(norm)}}} = {number_tex(ratio)}")
    if clip:
        scale_step = Step(text=Tex(f"$c/\\lVert g \\rVert < 1$, that is ${number_tex(norm)} > {number_tex(c)}$: the norm "
                                   "exceeds the threshold, so every gradient is shrunk by this factor."),
                          formula=Tex(r"s = \min\left(1, \frac{c}{\lVert g \rVert}\right)"),
                          lines=(ratio_line, Tex(f"s = {number_tex(scale)}")), result=scale_q)
        clipped_check = Tex(r"\sqrt{\textstyle\sum \tilde g_W^2 + \sum \tilde g_b^2} = c")
        clip_text = "Multiply every entry by $s$: the direction stays, the length becomes $c$."
    else:
        scale_step = Step(text=Tex(f"$c/\\lVert g \\rVert > 1$, that is ${number_tex(norm)} < {number_tex(c)}$: the norm "
                                   "is within the threshold, so nothing is clipped (multiplying by $c/\\lVert g \\rVert$ "
                                   "would lengthen the gradients)."),
                          formula=Tex(r"s = \min\left(1, \frac{c}{\lVert g \rVert}\right)"),
                          lines=(ratio_line, Tex("s = 1")), result=scale_q)
        clipped_check = Tex(r"\text{The gradients are unchanged.}")
        clip_text = "With $s = 1$ every entry stays as it is."
    parts = [
        Part(Tex(r"Compute the global norm $\lVert g \rVert$ over both gradients together."), (norm_q,),
             (Step(text=Tex("Square every entry of every gradient, add them all, and take the root."),
                   formula=Tex(r"\lVert g \rVert = \sqrt{\textstyle\sum g_W^2 + \sum g_b^2}"),
                   lines=(Tex(f"\\lVert g \\rVert = \\sqrt{{{terms}}} = \\sqrt{{{number_tex(square)}}} = {number_tex(norm)}"),),
                   result=norm_q),)),
        Part(Tex(r"Compute $c / \lVert g \rVert$. Does the norm exceed $c$? Give the factor "
                 r"$s = \min(1, c / \lVert g \rVert)$ by which every gradient is multiplied."), (ratio_q, exceeds_q, scale_q),
             (scale_step,)),
        Part(Tex(r"Compute the clipped gradients $\tilde g_W = s\,g_W$ and $\tilde g_b = s\,g_b$."), (clipped_w, clipped_b),
             (Step(text=Tex(clip_text), formula=Tex(r"\tilde g = s\,g"), result=clipped_w, checks=(clipped_check,)),
              Step(text=Tex("The same factor for the bias."), formula=Tex(r"\tilde g_b = s\,g_b"), result=clipped_b))),
    ]
    return Problem.draft(given=[Quantity("g_W", Tex("g_W"), g_w), Quantity("g_b", Tex("g_b"), g_b)], parts=parts,
                         facts={"c": c})
