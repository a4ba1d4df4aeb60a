"""Adam and AdamW by hand: moments, bias correction and (AdamW) decoupled weight decay, steps 1 and 2, ε = 0."""

from __future__ import annotations

from functools import cache

import sympy
from sympy import ImmutableMatrix, Rational

from generator.core.problem import Bounds, Contract, Part, Problem, Quantity, Step, Tex
from generator.core.registry import Option
from generator.documents.render import factor_tex, matrix_tex, number_tex
from generator.core.rng import Rng
from generator.core.slips import dropped_hidden, sign_hidden

TITLE = "Adam and AdamW steps"
OPTIONS = [
    Option("optimizer", ("adam", "adamw"), "adam", "adamw: first decay θ by (1 − ηλ), then take the Adam step"),
    # A real ε (about 1e-8) would turn every update into a 9-digit decimal that no pencil can carry.
    Option("eps", ("0",), "0", "ε in θ ← θ − η·m̂/(√v̂ + ε); a hand sheet uses 0 so that √v̂ + ε stays exact"),
]
# Hand values, stated on the sheet. With |g₂| = |g₁| entry by entry, v̂₂ = g₁² for any β₂, so √v̂₂ is whole; β₁ = 1/3
# makes m̂₂/√v̂₂ either ±1 or ∓1/2, and ηλ = 1/10 makes the AdamW decay a factor of 9/10: θ stays in hundredths.
LEARNING_RATE, BETA1, BETA2, WEIGHT_DECAY = Rational(1, 10), Rational(1, 3), Rational(1, 2), Rational(1)
SIZE = 3

CONTRACT = Contract(
    given=Bounds(5, 10, Rational(5)),
    intermediate=Bounds(250, 100, Rational(25)),  # θ in hundredths (e.g. −247/100); v̂ = g² up to 25
    answer=Bounds(250, 100, Rational(25)),
    forbidden={
        "every entry keeps its gradient's sign and size (step 2 would repeat step 1)": lambda p: p.given_value("g1") == p.given_value("g2"),
        # θ₀ = 0 would let −η·m̂/√v̂ alone (θ₀ dropped, or AdamW's decay left out) pass for θ₁.
        "θ₀ is all zeros (dropping it, or the decay, would not show)": lambda p: dropped_hidden(p.given_value("theta0")),
        "a step's m̂ is all zeros (a flipped sign would not show)": lambda p: sign_hidden(p.answer("m_hat1"))
        or sign_hidden(p.answer("m_hat2")),
    },
)


@cache
def _gradient_pairs() -> tuple[tuple[int, int], ...]:
    """(g₁, g₂) per entry: non-zero, |g| ≤ 5 and |g₂| = |g₁|, the same sign or flipped (momentum then halves the step)."""
    return tuple((a, sign * a) for a in range(-5, 6) if a for sign in (1, -1))


def _vector(values) -> ImmutableMatrix:
    return ImmutableMatrix([list(values)])


def _moment_lines(name: str, beta, previous, g, value, squared: bool) -> tuple[Tex, ...]:
    """m or v entry by entry: β·old + (1 − β)·g (or g²)."""
    lines = []
    for j in range(SIZE):
        term = factor_tex(g[j]) + ("^2" if squared else "")
        lines.append(Tex(f"{name}[0,{j}] = {number_tex(beta)} \\cdot {factor_tex(previous[j])} + {number_tex(1 - beta)} \\cdot "
                         f"{term} = {number_tex(value[j])}"))
    return tuple(lines)


def _step(t: int, theta, m_prev, v_prev, g, decoupled: bool):
    """One Adam(W) step, exactly: the moments, their bias-corrected forms, the root and the new θ."""
    m = BETA1 * m_prev + (1 - BETA1) * g
    v = BETA2 * v_prev + (1 - BETA2) * g.applyfunc(lambda x: x * x)
    m_hat, v_hat = m / (1 - BETA1 ** t), v / (1 - BETA2 ** t)
    root = v_hat.applyfunc(sympy.sqrt)
    if not all(r.is_Rational for r in root):
        raise ValueError("√v̂ must be rational by construction")
    decayed = theta * (1 - LEARNING_RATE * WEIGHT_DECAY) if decoupled else theta
    new = _vector(decayed[j] - LEARNING_RATE * m_hat[j] / root[j] for j in range(SIZE))
    return m, v, m_hat, v_hat, root, decayed, new


def generate(rng: Rng, options: dict[str, str]) -> Problem:
    """Draw θ₀ and two gradients whose step-2 v̂ is a perfect square entry by entry, then take both steps."""
    decoupled = options["optimizer"] == "adamw"
    pairs = [rng.choice(_gradient_pairs()) for _ in range(SIZE)]
    g1, g2 = _vector(a for a, _ in pairs), _vector(b for _, b in pairs)
    theta0 = _vector(rng.integer(-3, 3) for _ in range(SIZE))
    zero = _vector([0] * SIZE)
    s1 = _step(1, theta0, zero, zero, g1, decoupled)
    s2 = _step(2, s1[6], s1[0], s1[1], g2, decoupled)
    parts = []
    for t, (m, v, m_hat, v_hat, root, decayed, new), (m_prev, v_prev), g, theta in (
            (1, s1, (zero, zero), g1, theta0), (2, s2, (s1[0], s1[1]), g2, s1[6])):
        q = {n: Quantity(f"{n}{t}", Tex(s), val) for n, s, val in (
            ("m", f"m_{t}", m), ("v", f"v_{t}", v), ("m_hat", f"\\hat m_{t}", m_hat), ("v_hat", f"\\hat v_{t}", v_hat),
            ("theta", f"\\theta_{t}", new))}
        decay_line = (Tex(f"\\theta_{{{t - 1}}} (1 - \\eta\\lambda) = {number_tex(1 - LEARNING_RATE * WEIGHT_DECAY)}\\,\\theta_{{{t - 1}}} = "
                          + matrix_tex(decayed)),) if decoupled else ()
        update_lines = tuple(
            Tex(f"\\theta_{t}[0,{j}] = {number_tex(decayed[j])} - {number_tex(LEARNING_RATE)} \\cdot "
                f"\\frac{{{number_tex(m_hat[j])}}}{{{number_tex(root[j])}}} = {number_tex(new[j])}")
            for j in range(SIZE))
        parts.append(Part(
            Tex(f"Step {t}: compute $m_{t}$, $v_{t}$, the bias-corrected $\\hat m_{t}$ and $\\hat v_{t}$, and $\\theta_{t}$."),
            (q["m"], q["v"], q["m_hat"], q["v_hat"], q["theta"]),
            (Step(text=Tex("Update the moving averages of the gradient and of its square."),
                  formula=Tex(f"m_{t} = \\beta_1 m_{t - 1} + (1 - \\beta_1)\\,g_{t}, \\quad v_{t} = \\beta_2 v_{t - 1} + (1 - \\beta_2)\\,g_{t}^2"),
                  lines=_moment_lines(f"m_{t}", BETA1, m_prev, g, m, False) + _moment_lines(f"v_{t}", BETA2, v_prev, g, v, True)),
             Step(text=Tex(f"Undo the averages' pull toward their zero start: divide by $1 - \\beta^{t}$."),
                  formula=Tex(f"\\hat m_{t} = \\frac{{m_{t}}}{{1 - \\beta_1^{t}}} = \\frac{{m_{t}}}{{{number_tex(1 - BETA1 ** t)}}}, \\quad "
                              f"\\hat v_{t} = \\frac{{v_{t}}}{{1 - \\beta_2^{t}}} = \\frac{{v_{t}}}{{{number_tex(1 - BETA2 ** t)}}}"),
                  result=q["m_hat"],
                  checks=((Tex(r"\text{At step 1, } \hat m_1 = g_1 \text{ and } \hat v_1 = g_1^2\text{, so the step is } \eta\,\operatorname{sign}(g_1)."),)
                          if t == 1 else ())),
             Step(text=Tex("Decay the weights first (decoupled from the gradient), then step." if decoupled
                           else "Step against $\\hat m$, scaled by the root of $\\hat v$ ($\\varepsilon = 0$)."),
                  formula=Tex((f"\\theta_{t} = \\theta_{{{t - 1}}}(1 - \\eta\\lambda) - \\eta\\,\\frac{{\\hat m_{t}}}{{\\sqrt{{\\hat v_{t}}}}}" if decoupled
                               else f"\\theta_{t} = \\theta_{{{t - 1}}} - \\eta\\,\\frac{{\\hat m_{t}}}{{\\sqrt{{\\hat v_{t}}}}}")),
                  lines=decay_line + update_lines, result=q["theta"],
                  checks=(Tex(r"\text{The Adam step moves every entry against the sign of } \hat m_{%d}" % t
                              + (r"\text{ (after the decay toward 0).}" if decoupled else ".")),))),
        ))
    given = [Quantity("theta0", Tex(r"\theta_0"), theta0), Quantity("g1", Tex("g_1"), g1), Quantity("g2", Tex("g_2"), g2)]
    facts = {"eta": LEARNING_RATE, "beta1": BETA1, "beta2": BETA2, "weight_decay": WEIGHT_DECAY, "optimizer": options["optimizer"]}
    return Problem.draft(given=given, parts=parts, facts=facts)
