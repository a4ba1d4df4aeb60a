"""Two optimizer steps by hand: plain SGD, or SGD with momentum in PyTorch's form (v ← μv + g, θ ← θ − ηv)."""

from __future__ import annotations

from sympy import ImmutableMatrix, Rational

from generator.core.problem import Bounds, Contract, Part, Problem, Quantity, Step, Tex
from generator.core.registry import Option
from generator.documents.render import factor_tex, number_tex
from generator.core.rng import Rng
from generator.core.slips import dropped_hidden, sign_hidden
from generator.core.worked import entry_label

TITLE = "Optimizer steps: SGD and momentum"
OPTIONS = [
    Option("optimizer", ("sgd", "momentum"), "sgd", "sgd: θ ← θ − η·g; momentum: v ← μ·v + g, θ ← θ − η·v (PyTorch's form)"),
    Option("momentum", ("1/2", "9/10"), "1/2", "μ, used by the momentum optimizer; these keep the velocity in small fractions"),
    Option("lr", ("1/10",), "1/10", "learning rate η; 1/10 keeps every update exact in tenths"),
]
SIZE = 3

CONTRACT = Contract(
    given=Bounds(10, 10, Rational(4)),
    # Tenths after one step, hundredths after a momentum step (θ₂ = −387/100 is −3.87): exact and short.
    intermediate=Bounds(400, 100, Rational(6)),
    answer=Bounds(400, 100, Rational(6)),
    forbidden={
        "a gradient entry is 0 (nothing moves)": lambda p: any(
            v == 0 for name in ("g1", "g2") for v in p.given_value(name)),
        "the two gradients are equal (step 2 would teach nothing new)": lambda p: p.given_value("g1") == p.given_value("g2"),
        # θ₀ = 0 would let −η·g₁ alone (θ₀ dropped) pass for θ₁; a zero gradient, θ + η·g (the sign flipped).
        "θ₀ is all zeros (dropping it would not show)": lambda p: dropped_hidden(p.given_value("theta0")),
        "a gradient is all zeros (a flipped sign would not show)": lambda p: sign_hidden(p.given_value("g1"))
        or sign_hidden(p.given_value("g2")),
    },
)


def _update_lines(symbol: str, before, step, after, factor: str) -> tuple[Tex, ...]:
    """θ_t[j] = θ_{t−1}[j] − η·step[j] = value, entry by entry."""
    return tuple(
        Tex(f"{entry_label(symbol, 0, j)} = {number_tex(before[j])} - {factor} \\cdot {factor_tex(step[j])} = {number_tex(after[j])}")
        for j in range(SIZE))


def generate(rng: Rng, options: dict[str, str]) -> Problem:
    """Draw θ₀ and two gradients, then take two steps exactly."""
    momentum = options["optimizer"] == "momentum"
    mu = Rational(options["momentum"])
    theta0 = ImmutableMatrix([[rng.integer(-3, 3) for _ in range(SIZE)]])
    g1 = ImmutableMatrix([[rng.choice([-3, -2, -1, 1, 2, 3]) for _ in range(SIZE)]])
    g2 = ImmutableMatrix([[rng.choice([-3, -2, -1, 1, 2, 3]) for _ in range(SIZE)]])
    eta_value = Rational(options["lr"])
    eta = number_tex(eta_value)
    parts = []
    if momentum:
        v1 = g1  # PyTorch starts the buffer at the first gradient
        theta1 = theta0 - eta_value * v1
        v2 = mu * v1 + g2
        theta2 = theta1 - eta_value * v2
        q = {n: Quantity(n, Tex(s), val) for n, s, val in (
            ("v1", "v_1", v1), ("theta1", r"\theta_1", theta1), ("v2", "v_2", v2), ("theta2", r"\theta_2", theta2))}
        parts = [
            Part(Tex(r"Step 1: the velocity $v_1$ and the parameters $\theta_1$."), (q["v1"], q["theta1"]),
                 (Step(text=Tex("At the first step PyTorch sets the velocity to the gradient itself."),
                       formula=Tex(r"v_1 = g_1"), result=q["v1"]),
                  Step(text=Tex("Move against the velocity."), formula=Tex(r"\theta_1 = \theta_0 - \eta\,v_1"),
                       lines=_update_lines(r"\theta_1", theta0, v1, theta1, eta), result=q["theta1"]))),
            Part(Tex(r"Step 2: the velocity $v_2$ and the parameters $\theta_2$."), (q["v2"], q["theta2"]),
                 (Step(text=Tex(f"Keep $\\mu = {number_tex(mu)}$ of the old velocity and add the new gradient."),
                       formula=Tex(r"v_2 = \mu\,v_1 + g_2"),
                       lines=tuple(Tex(f"v_2[0,{j}] = {number_tex(mu)} \\cdot {factor_tex(v1[j])} + {factor_tex(g2[j])} = {number_tex(v2[j])}")
                                   for j in range(SIZE)), result=q["v2"]),
                  Step(text=Tex("Move against the velocity."), formula=Tex(r"\theta_2 = \theta_1 - \eta\,v_2"),
                       lines=_update_lines(r"\theta_2", theta1, v2, theta2, eta), result=q["theta2"]))),
        ]
    else:
        theta1 = theta0 - eta_value * g1
        theta2 = theta1 - eta_value * g2
        q = {n: Quantity(n, Tex(s), val) for n, s, val in (("theta1", r"\theta_1", theta1), ("theta2", r"\theta_2", theta2))}
        check = Tex(r"\text{Each entry moves against the sign of its gradient.}")
        parts = [
            Part(Tex(r"Step 1: compute $\theta_1 = \theta_0 - \eta\,g_1$."), (q["theta1"],),
                 (Step(text=Tex("Move every parameter a step against its gradient."), formula=Tex(r"\theta_1 = \theta_0 - \eta\,g_1"),
                       lines=_update_lines(r"\theta_1", theta0, g1, theta1, eta), result=q["theta1"], checks=(check,)),)),
            Part(Tex(r"Step 2: compute $\theta_2 = \theta_1 - \eta\,g_2$."), (q["theta2"],),
                 (Step(text=Tex("The same rule with the new gradient."), formula=Tex(r"\theta_2 = \theta_1 - \eta\,g_2"),
                       lines=_update_lines(r"\theta_2", theta1, g2, theta2, eta), result=q["theta2"], checks=(check,)),)),
        ]
    given = [Quantity("theta0", Tex(r"\theta_0"), theta0), Quantity("g1", Tex("g_1"), g1), Quantity("g2", Tex("g_2"), g2)]
    facts = {"eta": eta_value, "mu": mu, "optimizer": options["optimizer"]}
    return Problem.draft(given=given, parts=parts, facts=facts)
