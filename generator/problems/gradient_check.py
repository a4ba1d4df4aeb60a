"""A numerical gradient check: finite differences of L(w) = ½a(w − c)² against the analytic gradient; which should match."""

from __future__ import annotations

from sympy import Rational

from generator.core.problem import Bounds, Choice, Contract, Part, Problem, Quantity, Step, Tex
from generator.core.registry import Option
from generator.documents.render import factor_tex, number_tex
from generator.core.rng import Rng

TITLE = "Checking a gradient with finite differences"
OPTIONS = [
    Option("h", ("1/10", "1/2"), "1/10", "the finite-difference step h"),
    Option("verdict", ("yes", "no"), "yes",
           "yes: a last part asks which difference should match the analytic gradient, and why (a choice)"),
]
MATCHES = (("central", "the central one"), ("forward", "the forward one"), ("both", "both"), ("neither", "neither"))
# Reasons offered (their statements are in the prompt): (1) is right. The classic slip, the central difference over h
# instead of 2h, gives twice dL/dw: a student who makes it sees no match and is led to (3), so it never gives the key.
REASONS = (("1", "(1)"), ("2", "(2)"), ("3", "(3)"))

CONTRACT = Contract(
    given=Bounds(5, 10, Rational(5)),
    intermediate=Bounds(1000, 200, Rational(25)),  # short decimals: L(w + h) = 961/200 is 4.805
    answer=Bounds(1000, 200, Rational(25)),
    forbidden={
        "w is at the minimum (the gradient is 0)": lambda p: p.given_value("w") == p.given_value("c"),
        # Dividing the central difference by h instead of 2h, or flipping its sign, must change it.
        "the central difference over h (not 2h) gives the same value": lambda p: p.answer("central") == 0,
    },
)


def generate(rng: Rng, options: dict[str, str]) -> Problem:
    """Draw a, c and w; every value is a short exact decimal since h is 1/10 or 1/2."""
    h = Rational(options["h"])
    a, c = Rational(rng.choice([1, 2, 4])), Rational(rng.integer(-2, 2))
    w = c + rng.choice([-3, -2, -1, 1, 2, 3])

    def loss(x):
        return a * (x - c) ** 2 / 2

    values = {"L": loss(w), "L_plus": loss(w + h), "L_minus": loss(w - h)}
    central = (values["L_plus"] - values["L_minus"]) / (2 * h)
    forward = (values["L_plus"] - values["L"]) / h
    analytic = a * (w - c)
    q = {n: Quantity(n, Tex(s), v) for n, s, v in (
        ("L", "L(w)", values["L"]), ("L_plus", "L(w + h)", values["L_plus"]), ("L_minus", "L(w - h)", values["L_minus"]),
        ("central", r"\frac{L(w+h) - L(w-h)}{2h}", central), ("forward", r"\frac{L(w+h) - L(w)}{h}", forward),
        ("analytic", r"\frac{dL}{dw}", analytic))}
    lines = tuple(Tex(f"{q[n].symbol} = \\tfrac12 \\cdot {number_tex(a)} \\cdot \\left({number_tex(x)} - {factor_tex(c)}\\right)^2 = {number_tex(values[n])}")
                  for n, x in (("L", w), ("L_plus", w + h), ("L_minus", w - h)))
    parts = [
        Part(Tex(r"Evaluate $L(w)$, $L(w + h)$ and $L(w - h)$."), (q["L"], q["L_plus"], q["L_minus"]),
             (Step(text=Tex("Put each point into the loss."), formula=Tex(r"L(x) = \tfrac12\,a\,(x - c)^2"), lines=lines),)),
        Part(Tex(r"Compute the central difference $\frac{L(w+h) - L(w-h)}{2h}$ and the forward difference $\frac{L(w+h) - L(w)}{h}$."),
             (q["central"], q["forward"]),
             (Step(text=Tex("Divide each change in the loss by the change in $w$."),
                   lines=(Tex(f"\\frac{{{number_tex(values['L_plus'])} - {factor_tex(values['L_minus'])}}}{{{number_tex(2 * h)}}} = {number_tex(central)}"),
                          Tex(f"\\frac{{{number_tex(values['L_plus'])} - {factor_tex(values['L'])}}}{{{number_tex(h)}}} = {number_tex(forward)}"))),)),
        Part(Tex(r"Compute the analytic gradient $\frac{dL}{dw} = a\,(w - c)$ and compare."), (q["analytic"],),
             (Step(text=Tex("Differentiate the square."), formula=Tex(r"\frac{dL}{dw} = a\,(w - c)"),
                   lines=(Tex(f"\\frac{{dL}}{{dw}} = {number_tex(a)} \\cdot \\left({number_tex(w)} - {factor_tex(c)}\\right) = {number_tex(analytic)}"),),
                   result=q["analytic"],
                   checks=(Tex(r"\text{The central difference is exact for a parabola; the forward one is off by } "
                               f"\\tfrac{{a h}}{{2}} = {number_tex(forward - analytic)}."),)),)),
    ]
    if options["verdict"] == "yes":
        parts.append(_verdict_part(a, h, central, forward, analytic))
    return Problem.draft(given=[Quantity("a", Tex("a"), a), Quantity("c", Tex("c"), c), Quantity("w", Tex("w"), w)],
                         parts=parts, facts={"h": h})



def _verdict_part(a, h, central, forward, analytic) -> Part:
    """Should the numerical and the analytic gradient match? Which difference does, and why: two choices."""
    which = Quantity("match", Tex(r"\text{matches}"), Choice("central", MATCHES))
    why = Quantity("why", Tex(r"\text{why}"), Choice("1", REASONS))
    prompt = Tex(
        r"Should the numerical and the analytic gradient match? Tick which difference equals $dL/dw$ exactly, then "
        r"tick the reason.\par "
        r"(1) In $L(w+h) - L(w-h)$ the $h^2$ terms cancel, so for a parabola the central difference is exact; the "
        r"forward difference keeps an error $\tfrac{a h}{2}$ that shrinks with $h$. The analytic gradient is right.\par "
        r"(2) A finite difference only approximates a derivative: neither can equal it, whatever the function.\par "
        r"(3) A difference that does not equal $dL/dw$ shows a bug in the analytic gradient.")
    text = Tex(f"The central difference ${number_tex(central)}$ equals $dL/dw = {number_tex(analytic)}$; the forward "
               f"difference ${number_tex(forward)}$ is off by $\\tfrac{{a h}}{{2}} = {number_tex(a * h / 2)}$, "
               "the size its error should have. The answer is the central one, and the analytic gradient passes the check.")
    lines = (Tex(r"L(w \pm h) = L(w) \pm a\,(w - c)\,h + \tfrac12\,a\,h^2"),
             Tex(r"\frac{L(w+h) - L(w-h)}{2h} = a\,(w - c), \qquad \frac{L(w+h) - L(w)}{h} = a\,(w - c) + \tfrac{a h}{2}"))
    steps = (Step(text=text, lines=lines, result=which),
             Step(text=Tex(r"Only (1) fits the numbers. A real check (floats, $h \approx 10^{-5}$, a loss that is no "
                           r"parabola) expects agreement to about $10^{-7}$ relative (an error of order $h^2$, plus "
                           r"rounding), not exactly; a gap of a factor 2 (as from dividing by $h$ instead of $2h$) is a bug in the check itself."),
                  result=why))
    return Part(prompt, (which, why), steps)
