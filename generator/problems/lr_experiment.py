"""A learning-rate experiment on L = ½a(w − c)²: a step below 2/a converges, a step past 2/a diverges."""

from __future__ import annotations

from sympy import ImmutableMatrix, Rational

from generator.core.problem import Bounds, Choice, Contract, Part, Problem, Quantity, Step, Tex
from generator.core.registry import Option
from generator.documents.render import factor_tex, number_tex
from generator.core.rng import Rng

TITLE = "How large may a step be? Gradient descent on a parabola"
OPTIONS = [Option("steps", ("2", "3"), "3", "gradient-descent steps taken with each learning rate")]
# Each step multiplies the distance to the minimum by r = 1 − ηa: r = ±1/2 converges (the second by overshooting
# to and fro), r = −2 or −3 diverges. Which of the two rates diverges, both or neither is drawn: no fixed answer.
CONVERGING = (Rational(1, 2), Rational(-1, 2))
DIVERGING = (Rational(-2), Rational(-3))
VERDICTS = (("eta1", "only the first rate"), ("eta2", "only the second rate"), ("both", "both rates"),
            ("neither", "neither rate"))

CONTRACT = Contract(
    given=Bounds(4, 8, Rational(4)),  # the learning rates (1/2)/a and 3/a are stated facts
    intermediate=Bounds(40, 8, Rational(40)),
    answer=Bounds(40, 8, Rational(40)),
    forbidden={
        "w starts at the minimum (nothing to learn)": lambda p: p.given_value("w0") == p.given_value("c"),
        "the two rates are equal": lambda p: p.facts["eta1"] == p.facts["eta2"],
    },
)


def _factors(rng: Rng) -> tuple[Rational, Rational]:
    """r₁ and r₂ for a verdict drawn evenly: only η₁ diverges, only η₂, both, or neither."""
    verdict = rng.choice([key for key, _ in VERDICTS])
    pools = {"eta1": (DIVERGING, CONVERGING), "eta2": (CONVERGING, DIVERGING), "both": (DIVERGING, DIVERGING),
             "neither": (CONVERGING, CONVERGING)}[verdict]
    first, second = rng.shuffled(pools[0]), rng.shuffled(pools[1])
    # Two different rates even when both come from one pool (the pools have two factors each).
    return first[0], next(r for r in second if r != first[0])


def generate(rng: Rng, options: dict[str, str]) -> Problem:
    """Draw a, c, w₀ and two factors r; the learning rates are (1 − r)/a."""
    steps = int(options["steps"])
    factors = _factors(rng)
    a, c = Rational(rng.choice([1, 2, 4])), Rational(rng.integer(-2, 2))
    # (−3)³ = −27 steps of a distance 2 would run past ±40: a rate with r = −3 starts 1 from the minimum.
    w0 = c + rng.choice([-1, 1] if Rational(-3) in factors and steps == 3 else [-2, -1, 1, 2])
    etas = [(1 - r) / a for r in factors]
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
    diverging = [abs(r) > 1 for r in factors]
    verdict = {(True, False): "eta1", (False, True): "eta2", (True, True): "both", (False, False): "neither"}[tuple(diverging)]
    verdict_q = Quantity("diverges", Tex(r"\text{diverges}"), Choice(verdict, VERDICTS))
    limit = Quantity("limit", Tex(r"\eta_{\max}"), 2 / a)
    checks = tuple(
        Tex(f"{symbol} = {number_tex(eta)} {'>' if runs else '<'} {number_tex(2 / a)}: |1 - {symbol} a| = {number_tex(abs(r))}"
            + (r"\text{, so each step multiplies the distance by more than 1.}" if runs else r"\text{, so the distance shrinks.}"))
        for symbol, eta, r, runs in zip((r"\eta_1", r"\eta_2"), etas, factors, diverging))
    parts.append(Part(Tex(r"Which of the two learning rates make $w$ run away from the minimum: only $\eta_1$, only $\eta_2$, "
                          r"both or neither? Above which learning rate $\eta_{\max}$ does that always happen?"),
                      (verdict_q, limit),
                      (Step(text=Tex(r"The distance shrinks only when $|1 - \eta a| < 1$, that is $0 < \eta < 2/a$."),
                            formula=Tex(f"\\eta_{{\\max}} = \\frac{{2}}{{a}} = {number_tex(2 / a)}"),
                            checks=checks),)))
    given = [Quantity("a", Tex("a"), a), Quantity("c", Tex("c"), c), Quantity("w0", Tex("w_0"), w0)]
    return Problem.draft(given=given, parts=parts, facts={"eta1": etas[0], "eta2": etas[1]})

