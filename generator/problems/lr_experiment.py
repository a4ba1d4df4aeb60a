"""A learning-rate experiment on L = ½a(w − c)²: a small step converges, a step past 2/a diverges."""

from __future__ import annotations

from sympy import ImmutableMatrix, Rational

from ..problem import Bounds, Choice, Contract, Part, Problem, Quantity, Step, Tex
from ..registry import Option
from ..render import factor_tex, number_tex
from ..rng import Rng

TITLE = "How large may a step be? Gradient descent on a parabola"
OPTIONS = [Option("steps", ("2", "3"), "3", "gradient-descent steps taken with each learning rate")]
# Each step multiplies the distance to the minimum by r = 1 − ηa: r = 1/2 converges, r = −2 diverges.
FACTORS = (Rational(1, 2), Rational(-2))

CONTRACT = Contract(
    given=Bounds(4, 8, Rational(4)),  # the learning rates (1/2)/a and 3/a are stated facts
    intermediate=Bounds(40, 8, Rational(40)),
    answer=Bounds(40, 8, Rational(40)),
    forbidden={"w starts at the minimum (nothing to learn)": lambda p: p.given_value("w0") == p.given_value("c")},
)


def generate(rng: Rng, options: dict[str, str]) -> Problem:
    """Draw a, c and w₀; the two learning rates are (1 − r)/a for r = 1/2 and r = −2."""
    steps = int(options["steps"])
    a, c = Rational(rng.choice([1, 2, 4])), Rational(rng.integer(-2, 2))
    w0 = c + rng.choice([-2, -1, 1, 2])
    etas = [(1 - r) / a for r in FACTORS]
    g0 = Quantity("g0", Tex(r"\frac{dL}{dw}(w_0)"), a * (w0 - c))
    parts = [Part(Tex(r"Compute the gradient $\frac{dL}{dw}$ at $w_0$."), (g0,),
                  (Step(text=Tex(r"$L = \tfrac12 a (w - c)^2$, so $\frac{dL}{dw} = a\,(w - c)$."),
                        lines=(Tex(f"\\frac{{dL}}{{dw}}(w_0) = {number_tex(a)} \\cdot ({number_tex(w0)} - {factor_tex(c)}) = {number_tex(g0.value)}"),),
                        result=g0),))]
    for name, eta in zip(("eta1", "eta2"), etas):
        ws, lines, w = [], [], w0
        for t in range(1, steps + 1):
            new = w - eta * a * (w - c)
            lines.append(Tex(f"w_{t} = {number_tex(w)} - {number_tex(eta)} \\cdot {number_tex(a)} \\cdot ({number_tex(w)} - {factor_tex(c)}) = {number_tex(new)}"))
            ws.append(new)
            w = new
        symbol = r"\eta_1" if name == "eta1" else r"\eta_2"
        trail = Quantity(f"w_{name}", Tex(f"w\\,({symbol})"), ImmutableMatrix([ws]))
        parts.append(Part(Tex(f"Take {steps} steps $w_t = w_{{t-1}} - {symbol}\\,\\frac{{dL}}{{dw}}(w_{{t-1}})$ with ${symbol} = {number_tex(eta)}$, "
                              f"starting at $w_0$: give $w_1, \\dots, w_{steps}$."),
                          (trail,),
                          (Step(text=Tex(f"Each step multiplies the distance to the minimum $c$ by $1 - {symbol}\\,a = {number_tex(1 - eta * a)}$."),
                                formula=Tex(f"w_t - c = (1 - {symbol} a)\\,(w_{{t-1}} - c)"), lines=tuple(lines), result=trail),)))
    verdict = Quantity("diverges", Tex(r"\text{diverges}"), Choice("eta2", (("eta1", "the first rate"), ("eta2", "the second rate"))))
    limit = Quantity("limit", Tex(r"\eta_{\max}"), 2 / a)
    parts.append(Part(Tex(r"Which learning rate makes $w$ run away from the minimum? Above which learning rate $\eta_{\max}$ does that always happen?"),
                      (verdict, limit),
                      (Step(text=Tex(r"The distance shrinks only when $|1 - \eta a| < 1$, that is $0 < \eta < 2/a$."),
                            formula=Tex(f"\\eta_{{\\max}} = \\frac{{2}}{{a}} = {number_tex(2 / a)}"),
                            checks=(Tex(f"\\eta_2 = {number_tex(etas[1])} > {number_tex(2 / a)}: " + r"|1 - \eta_2 a| = 2\text{, so each step doubles the distance.}"),)),)))
    given = [Quantity("a", Tex("a"), a), Quantity("c", Tex("c"), c), Quantity("w0", Tex("w_0"), w0)]
    return Problem.draft(given=given, parts=parts, facts={"eta1": etas[0], "eta2": etas[1]})

