"""Sigmoid and tanh, their slopes σ(1 − σ) and 1 − tanh², and the backward step, exact at inputs ±ln k."""

from __future__ import annotations

import sympy
from sympy import ImmutableMatrix, Rational

from generator.core.problem import Bounds, Contract, Part, Problem, Quantity, Step, Tex
from generator.core.registry import Option
from generator.core.rng import Rng
from generator.documents.render import factor_tex, number_tex

TITLE = "Sigmoid and tanh: values, slopes and the backward step"
OPTIONS = [
    Option("function", ("sigmoid", "tanh", "both"), "both", "which activation the problem is about"),
    Option("size", ("2", "3"), "2", "entries of the pre-activation h"),
    Option("relu", ("no", "yes"), "no", "also ask ReLU's slope and backward step, for comparison"),
]
# σ(ln k) = k/(k + 1) and σ'(ln k) = k/(k + 1)²: k ≤ 4 keeps denominators within 25. tanh(ln k) = (k² − 1)/(k² + 1):
# k = 2, 3 give 3/5 and 4/5 with slopes 16/25 and 9/25 (k = 4 would give 15/17 and 64/289).
SIGMOID_KS = (2, 3, 4)
TANH_KS = (2, 3)
UPSTREAM = (-3, -2, -1, 1, 2, 3)



def _uses(problem: Problem, function: str) -> bool:
    return problem.options["function"] in (function, "both")


def _sig_slip_hidden(p: Problem) -> bool:
    """σ'(h) written as σ(h): the slope or ∂L/∂h it gives is the key's."""
    if not _uses(p, "sigmoid"):
        return False
    s, g = p.answer("s"), p.given_value("g")
    return list(s) == list(p.answer("s_slope")) or [a * b for a, b in zip(g, s)] == list(p.answer("dh_s"))


def _tanh_slip_hidden(p: Problem) -> bool:
    """tanh'(h) written as 1 − tanh(h), not squared: the slope or ∂L/∂h it gives is the key's."""
    if not _uses(p, "tanh"):
        return False
    t, g = p.answer("t"), p.given_value("g_t" if p.options["function"] == "both" else "g")
    slipped = [1 - v for v in t]
    return slipped == list(p.answer("t_slope")) or [a * b for a, b in zip(g, slipped)] == list(p.answer("dh_t"))


CONTRACT = Contract(
    given=Bounds(3, 1, Rational(3)),  # g whole in ±3; h = ±ln k, |h| ≤ ln 4 (irrational: only its size is bounded)
    intermediate=Bounds(75, 25, Rational(3)),
    answer=Bounds(75, 25, Rational(3)),
    rational_only=False,  # the inputs are logarithms; every answer is a fraction
    forbidden={
        # x = 0 is no lesson here (σ = 1/2, tanh = 0, and ReLU's slope at 0 is a convention taught elsewhere).
        "an input is 0": lambda p: any(v == 0 for v in p.given_value("h")),
        "two inputs are equal": lambda p: len(set(p.given_value("h"))) < len(p.given_value("h")),
        # One positive and one negative input at least: σ(−x) = 1 − σ(x) and ReLU's cut both show.
        "every input has the same sign": lambda p: len({v.is_positive for v in p.given_value("h")}) == 1,
        "an upstream gradient is 0": lambda p: any(v == 0 for q in p.given if q.name.startswith("g") for v in q.value),
        "σ' written as σ gives the key's slope or gradient": _sig_slip_hidden,
        "tanh' written as 1 − tanh gives the key's slope or gradient": _tanh_slip_hidden,
        "ReLU of the upstream gradient gives the key's ReLU gradient": lambda p: p.options["relu"] == "yes"
        and [max(v, 0) for v in p.given_value("g")] == list(p.answer("dh_r")),
    },
)


def _ln_tex(sign: int, k: int) -> str:
    return rf"\ln {k}" if sign > 0 else rf"-\ln {k}"


def _row_tex(entries: list[str]) -> str:
    return r"\begin{bmatrix} " + " & ".join(entries) + r" \end{bmatrix}"


def generate(rng: Rng, options: dict[str, str]) -> Problem:
    """Draw h = (±ln k, …) with distinct entries of both signs, and a whole upstream gradient g."""
    n, function = int(options["size"]), options["function"]
    ks = TANH_KS if function != "sigmoid" else SIGMOID_KS
    pool = [(sign, k) for k in ks for sign in (1, -1)]
    drawn = rng.shuffled(pool)[:n]
    while len({sign for sign, _ in drawn}) == 1:  # both signs, by construction (the contract checks it too)
        drawn = rng.shuffled(pool)[:n]
    h = ImmutableMatrix([[sign * sympy.log(k) for sign, k in drawn]])
    g = ImmutableMatrix([[rng.choice(UPSTREAM) for _ in range(n)]])
    h_tex = [_ln_tex(sign, k) for sign, k in drawn]
    given = [Quantity("h", Tex("h"), h), Quantity("g", Tex(r"\frac{\partial L}{\partial a}"), g)]
    g_t, up_s, up_t = g, "a", "a"
    if function == "both":
        # Each activation gets its own upstream gradient: with one g for both, tanh's slopes at ±ln 2, ±ln 3 are an
        # affine function of σ's there, so ∂L/∂h through tanh would follow from g and ∂L/∂h through σ, a relation
        # that is no step.
        g_t = ImmutableMatrix([[rng.choice(UPSTREAM) for _ in range(n)]])
        up_s, up_t = r"a_{\sigma}", r"a_{\operatorname{tanh}}"
        given = [Quantity("h", Tex("h"), h), Quantity("g", Tex(r"\frac{\partial L}{\partial a_{\sigma}}"), g),
                 Quantity("g_t", Tex(r"\frac{\partial L}{\partial a_{\operatorname{tanh}}}"), g_t)]
    facts = {"h_tex": Tex(_row_tex(h_tex)), "function": function, "relu": options["relu"]}

    values, slopes, backs = [], [], []
    if function in ("sigmoid", "both"):
        s = [Rational(k, k + 1) if sign > 0 else Rational(1, k + 1) for sign, k in drawn]
        s_slope = [v * (1 - v) for v in s]
        s_q = Quantity("s", Tex(r"\sigma(h)"), ImmutableMatrix([s]))
        ss_q = Quantity("s_slope", Tex(r"\sigma'(h)"), ImmutableMatrix([s_slope]))
        dh_q = Quantity("dh_s", Tex(r"\frac{\partial L}{\partial h}\ (\sigma)"), g.multiply_elementwise(ss_q.value))
        s_lines = tuple(
            Tex(f"\\sigma({ht}) = \\frac{{1}}{{1 + e^{{{'-' if sign > 0 else ''}\\ln {k}}}}} = "
                f"\\frac{{1}}{{1 + {number_tex(Rational(1, k) if sign > 0 else Rational(k))}}} = {number_tex(v)}")
            for ht, (sign, k), v in zip(h_tex, drawn, s))
        ss_lines = tuple(Tex(f"\\sigma'({ht}) = {number_tex(v)} \\cdot \\left(1 - {number_tex(v)}\\right) = "
                             f"{number_tex(v)} \\cdot {number_tex(1 - v)} = {number_tex(d)}")
                         for ht, v, d in zip(h_tex, s, s_slope))
        values.append((s_q, Step(
            text=Tex(r"$e^{-\ln k} = 1/k$ and $e^{\ln k} = k$, so $\sigma(\ln k) = \frac{k}{k+1}$ and "
                     r"$\sigma(-\ln k) = \frac{1}{k+1}$."),
            formula=Tex(r"\sigma(x) = \frac{1}{1 + e^{-x}}"), lines=s_lines, result=s_q,
            checks=(Tex(r"\sigma(-x) = 1 - \sigma(x)\text{: a negative input gives less than } \tfrac12\text{, a positive one more.}"),))))
        slopes.append((ss_q, Step(
            text=Tex(r"The slope of the sigmoid is written with its own value: $\sigma' = \sigma\,(1 - \sigma)$ "
                     r"(not $\sigma$ itself)."),
            formula=Tex(r"\sigma'(x) = \sigma(x)\,\bigl(1 - \sigma(x)\bigr)"), lines=ss_lines, result=ss_q,
            checks=(Tex(r"0 < \sigma'(x) \le \tfrac14\text{, and } \sigma'(-x) = \sigma'(x)."),))))
        backs.append((dh_q, _back_step(r"\sigma", g, s_slope, dh_q, up_s)))
    if function in ("tanh", "both"):
        t = [sign * Rational(k * k - 1, k * k + 1) for sign, k in drawn]
        t_slope = [1 - v * v for v in t]
        t_q = Quantity("t", Tex(r"\operatorname{tanh}(h)"), ImmutableMatrix([t]))
        ts_q = Quantity("t_slope", Tex(r"\operatorname{tanh}'(h)"), ImmutableMatrix([t_slope]))
        dh_q = Quantity("dh_t", Tex(r"\frac{\partial L}{\partial h}\ (\operatorname{tanh})"), g_t.multiply_elementwise(ts_q.value))
        t_lines = tuple(
            Tex(f"\\operatorname{{tanh}}({ht}) = \\frac{{{number_tex(_e(sign, k))} - {number_tex(1 / _e(sign, k))}}}"
                f"{{{number_tex(_e(sign, k))} + {number_tex(1 / _e(sign, k))}}} = {number_tex(v)}")
            for ht, (sign, k), v in zip(h_tex, drawn, t))
        ts_lines = tuple(Tex(f"\\operatorname{{tanh}}'({ht}) = 1 - \\left({number_tex(v)}\\right)^2 = 1 - {number_tex(v * v)} = {number_tex(d)}")
                         for ht, v, d in zip(h_tex, t, t_slope))
        values.append((t_q, Step(
            text=Tex(r"Write $\operatorname{tanh}$ with $e^{x}$ and $e^{-x}$: at $x = \pm\ln k$ these are $k$ and $1/k$."),
            formula=Tex(r"\operatorname{tanh}(x) = \frac{e^{x} - e^{-x}}{e^{x} + e^{-x}}"), lines=t_lines, result=t_q,
            checks=(Tex(r"\operatorname{tanh}(-x) = -\operatorname{tanh}(x)\text{, and every value lies between } -1 \text{ and } 1."),))))
        slopes.append((ts_q, Step(
            text=Tex(r"The slope of $\operatorname{tanh}$ is one minus its value \emph{squared}."),
            formula=Tex(r"\operatorname{tanh}'(x) = 1 - \operatorname{tanh}^2(x)"), lines=ts_lines, result=ts_q,
            checks=(Tex(r"0 < \operatorname{tanh}'(x) \le 1\text{, and } \operatorname{tanh}'(-x) = \operatorname{tanh}'(x)."),))))
        backs.append((dh_q, _back_step(r"\operatorname{tanh}", g_t, t_slope, dh_q, up_t)))

    both = len(values) == 2
    names = r"$\sigma(h)$ and $\operatorname{tanh}(h)$" if both else f"${values[0][0].symbol}$"
    slope_names = r"$\sigma'(h)$ and $\operatorname{tanh}'(h)$" if both else f"${slopes[0][0].symbol}$"
    parts = [
        Part(Tex(f"Compute {names} entry by entry, as fractions."),
             tuple(q for q, _ in values), tuple(step for _, step in values)),
        Part(Tex(f"Compute the slopes {slope_names} entry by entry, as fractions."),
             tuple(q for q, _ in slopes), tuple(step for _, step in slopes)),
        Part(Tex(r"Backward pass: the gradient of the loss with respect to the activation's output arrives from the "
                 r"layer above. Compute $\partial L/\partial h$" + (" for each activation, each with its own upstream "
                                                                     "gradient." if both else ".")),
             tuple(q for q, _ in backs), tuple(step for _, step in backs)),
    ]
    if options["relu"] == "yes":
        mask = ImmutableMatrix([[Rational(1) if sign > 0 else Rational(0) for sign, _ in drawn]])
        mask_q = Quantity("r_slope", Tex(r"\operatorname{ReLU}'(h)"), mask)
        dr_q = Quantity("dh_r", Tex(r"\frac{\partial L}{\partial h}\ (\operatorname{ReLU})"), g.multiply_elementwise(mask))
        parts.append(Part(
            Tex(r"For comparison, with $a = \operatorname{ReLU}(h)$ instead: compute the slope $\operatorname{ReLU}'(h)$ and "
                r"$\partial L/\partial h$ for the same upstream gradient" + (r" $\partial L/\partial a_{\sigma}$." if both else ".")),
            (mask_q, dr_q),
            (Step(text=Tex("ReLU's slope is 1 for a positive input and 0 for a negative one: it never shrinks a gradient "
                           "it passes, unlike the sigmoid's slope of at most 1/4."),
                  formula=Tex(r"\operatorname{ReLU}'(x) = \mathbf{1}[x > 0]"), result=mask_q),
             _back_step(r"\operatorname{ReLU}", g, list(mask), dr_q, up_s))))
    return Problem.draft(given=given, parts=parts, facts=facts)


def _e(sign: int, k: int) -> Rational:
    """e^x at x = ±ln k."""
    return Rational(k) if sign > 0 else Rational(1, k)


def _back_step(name: str, g: ImmutableMatrix, slope: list, result: Quantity, upstream: str = "a") -> Step:
    """Chain rule entry by entry: upstream gradient times the local slope."""
    lines = tuple(Tex(f"\\frac{{\\partial L}}{{\\partial h_{j}}} = {factor_tex(g[j])} \\cdot {factor_tex(slope[j])} = "
                      f"{number_tex(result.value[j])}") for j in range(len(slope)))
    return Step(text=Tex("Chain rule, entry by entry: the upstream gradient times the local slope."),
                formula=Tex(f"\\frac{{\\partial L}}{{\\partial h}} = \\frac{{\\partial L}}{{\\partial {upstream}}} \\odot {name}'(h)"),
                lines=lines, result=result)
