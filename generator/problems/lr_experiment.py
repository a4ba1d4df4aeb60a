"""A learning-rate experiment on L = ½a(w − c)²: a step below 2/a converges, a step past 2/a diverges."""

from __future__ import annotations

from sympy import ImmutableMatrix, Rational

from generator.core.problem import Bounds, Choice, Contract, Part, Problem, Quantity, Step, Tex
from generator.core.registry import Option
from generator.documents.render import factor_tex, number_tex
from generator.core.rng import Rng

TITLE = "How large may a step be? Gradient descent on a parabola"
OPTIONS = [Option("steps", ("2", "3"), "3", "gradient-descent steps taken with each learning rate"),
           Option("rates", ("2", "4"), "2",
                  "4 adds Stage 10's two named cases: eta_3 = 1/a (one step to the minimum) and eta_4 = 5/(2a), just past "
                  "2/a (diverges, oscillating with growing size), and asks how each rate behaves")]
# Each step multiplies the distance to the minimum by r = 1 − ηa: r = ±1/2 converges (the second by overshooting
# to and fro), r = −2 or −3 diverges. Which of the two rates diverges, both or neither is drawn: no fixed answer.
CONVERGING = (Rational(1, 2), Rational(-1, 2))
DIVERGING = (Rational(-2), Rational(-3))
VERDICTS = (("eta1", "only the first rate"), ("eta2", "only the second rate"), ("both", "both rates"),
            ("neither", "neither rate"))
# rates=4: η₃ = 1/a lands on the minimum in one step (r = 0); η₄ = 5/(2a) is a quarter past 2/a (r = −3/2): the
# smallest step past the limit whose powers stay in eighths over 3 steps (2.1 for 2/a = 2 would need 1331/1000).
NAMED_FACTORS = (Rational(0), Rational(-3, 2))
BEHAVIOURS = (("converges", "converges"), ("oscillates", "oscillates and converges"), ("diverges", "diverges"))

CONTRACT = Contract(
    given=Bounds(5, 8, Rational(4)),  # the learning rates (1/2)/a … 3/a (and rates=4's 5/(2a)) are stated facts
    # rates=4's η₄ (r = −3/2) takes w₀ = c ± 1 to c ∓ 27/8 in 3 steps: 2 + 27/8 = 43/8 at most.
    intermediate=Bounds(48, 8, Rational(40)),
    answer=Bounds(48, 8, Rational(40)),
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


def _behaviour(r: Rational) -> str:
    """How w moves when each step multiplies its distance to the minimum by r."""
    return "diverges" if abs(r) > 1 else "oscillates" if r < 0 else "converges"


def _behaviour_line(symbol: str, eta: Rational, a: Rational, r: Rational) -> Tex:
    """The reason: |1 − ηa| against 1, and the sign of 1 − ηa (a negative factor overshoots to the other side)."""
    head = f"{symbol} = {number_tex(eta)},\\ 1 - {symbol} a = {number_tex(r)}"
    if r == 0:
        return Tex(head + r"\text{: on } c \text{ after one step (converges).}")
    if abs(r) > 1:
        return Tex(head + f",\\ |1 - {symbol} a| = {number_tex(abs(r))} > 1"
                   + r"\text{: grows, crossing } c \text{ each step (diverges).}")
    if r < 0:
        return Tex(head + f",\\ |1 - {symbol} a| = {number_tex(abs(r))} < 1"
                   + r"\text{: shrinks, crossing } c \text{ each step (oscillates, converges).}")
    return Tex(head + f",\\ |1 - {symbol} a| = {number_tex(abs(r))} < 1"
               + r"\text{: shrinks, on one side of } c \text{ (converges).}")


def generate(rng: Rng, options: dict[str, str]) -> Problem:
    """Draw a, c, w₀ and two factors r; the learning rates are (1 − r)/a. rates=4 adds η₃ = 1/a and η₄ = 5/(2a)."""
    steps = int(options["steps"])
    named = options.get("rates") == "4"
    factors = _factors(rng)
    a, c = Rational(rng.choice([1, 2, 4])), Rational(rng.integer(-2, 2))
    # (−3)³ = −27 steps of a distance 2 would run past ±40: a rate with r = −3 starts 1 from the minimum.
    w0 = c + rng.choice([-1, 1] if Rational(-3) in factors and steps == 3 else [-2, -1, 1, 2])
    all_factors = factors + (NAMED_FACTORS if named else ())  # no further draws: the default draws are unchanged
    etas = [(1 - r) / a for r in all_factors]
    names = [f"eta{k + 1}" for k in range(len(etas))]
    g0 = Quantity("g0", Tex(r"\frac{dL}{dw}(w_0)"), a * (w0 - c))
    parts = [Part(Tex(r"Compute the gradient $\frac{dL}{dw}$ at $w_0$."), (g0,),
                  (Step(text=Tex(r"$L = \tfrac12 a (w - c)^2$, so $\frac{dL}{dw} = a\,(w - c)$."),
                        lines=(Tex(f"\\frac{{dL}}{{dw}}(w_0) = {number_tex(a)} \\cdot ({number_tex(w0)} - {factor_tex(c)}) = {number_tex(g0.value)}"),),
                        result=g0),))]
    for name, eta in zip(names, etas):
        ws, lines, w = [], [], w0
        for t in range(1, steps + 1):
            new = w - eta * a * (w - c)
            lines.append(Tex(f"w_{t} = {number_tex(w)} - {number_tex(eta)} \\cdot {number_tex(a)} \\cdot ({number_tex(w)} - {factor_tex(c)}) = {number_tex(new)}"))
            ws.append(new)
            w = new
        symbol = f"\\eta_{name[3:]}"
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
    parts.append(Part(Tex((r"Which of $\eta_1$ and $\eta_2$" if named else r"Which of the two learning rates")
                          + r" make $w$ run away from the minimum: only $\eta_1$, only $\eta_2$, "
                          r"both or neither? Above which learning rate $\eta_{\max}$ does that always happen?"),
                      (verdict_q, limit),
                      (Step(text=Tex(r"The distance shrinks only when $|1 - \eta a| < 1$, that is $0 < \eta < 2/a$."),
                            formula=Tex(f"\\eta_{{\\max}} = \\frac{{2}}{{a}} = {number_tex(2 / a)}"),
                            checks=checks),)))
    given = [Quantity("a", Tex("a"), a), Quantity("c", Tex("c"), c), Quantity("w0", Tex("w_0"), w0)]
    if named:
        kinds = [Quantity(f"kind_{name}", Tex(f"\\eta_{name[3:]}"), Choice(_behaviour(r), BEHAVIOURS))
                 for name, r in zip(names, all_factors)]
        parts.append(Part(Tex(r"For each learning rate, does $w$ converge to $c$ (from one side), oscillate and converge "
                              r"(crossing $c$ at every step, ever closer), or diverge? Compare $|1 - \eta a|$ with 1."),
                          tuple(kinds),
                          (Step(text=Tex(r"Each step multiplies the distance $w - c$ by $1 - \eta a$: its size says whether "
                                         r"the distance shrinks ($|1 - \eta a| < 1$) or grows ($> 1$), its sign whether $w$ "
                                         r"stays on one side of $c$ or crosses it at every step. At $\eta = 1/a$ the factor is 0; "
                                         r"past $2/a$ it is below $-1$."),
                                formula=Tex(r"w_t - c = (1 - \eta a)^t\,(w_0 - c)"),
                                lines=tuple(_behaviour_line(f"\\eta_{name[3:]}", eta, a, r)
                                            for name, eta, r in zip(names, etas, all_factors))),)))
    return Problem.draft(given=given, parts=parts, facts=dict(zip(names, etas)))

