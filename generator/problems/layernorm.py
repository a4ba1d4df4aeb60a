"""LayerNorm of each row (ε = 0 on paper), built so that σ is a whole number: x = μ + c·u."""

from __future__ import annotations


import sympy
from sympy import ImmutableMatrix, Rational

from generator.core.forward import layernorm_row, mean_line, per_row_value
from generator.core.problem import Bounds, Contract, Expansion, Part, Problem, Quantity, Step, Term, Tex
from generator.core.registry import Option
from generator.documents.render import number_tex
from generator.core.rng import Rng

TITLE = "Layer normalisation"
OPTIONS = [Option("rows", ("1", "2"), "1", "how many rows (tokens) to normalise")]
D = 4


CONTRACT = Contract(
    given=Bounds(14, 2, Rational(10)),
    intermediate=Bounds(36, 10, Rational(10)),
    answer=Bounds(36, 10, Rational(36)),  # σ² ≤ 36
    forbidden={
        # ε is 0 on paper; a real model's ε ≈ 1e-5 must not matter, so σ stays well away from 0.
        "σ is smaller than 1": lambda p: any(s < 1 for s in _sigmas(p)),
        "γ has a zero": lambda p: any(g == 0 for g in p.given_value("gamma")),
        # μ = 0 hides a forgotten − μ; σ = 1 hides dividing by σ² (or not at all) instead of by σ.
        "a row's mean is 0 (forgetting to subtract it would not show)": lambda p: 0 in row_values(p.answer("mu")),
        "σ is 1 (dividing by σ² would not show)": lambda p: any(s == 1 for s in _sigmas(p)),
        "γ is all 1 and β all 0 (forgetting them would not show)": lambda p: all(
            g == 1 for g in p.given_value("gamma")) and not any(p.given_value("beta")),
    },
)


def row_values(value) -> list:
    """A per-row statistic (a scalar for one row, a column for several) as a list."""
    return list(value) if isinstance(value, ImmutableMatrix) else [value]


def teaching_row(rng: Rng, patterns=None):
    """layernorm_row, drawn again while μ = 0 or σ = 1 (each would hide a slip in x̂ = (x − μ)/σ)."""
    while True:
        row, mu, sigma = layernorm_row(rng, patterns)
        if mu != 0 and sigma != 1:
            return row, mu, sigma


def _sigmas(problem: Problem) -> list[sympy.Expr]:
    sigma = problem.parts[2].answers[0].value
    return list(sigma) if isinstance(sigma, ImmutableMatrix) else [sigma]


def generate(rng: Rng, options: dict[str, str]) -> Problem:
    """Draw rows x = μ + c·u with σ whole, and γ, β; normalise each row."""
    rows = int(options["rows"])
    xs, mus, variances, sigmas = [], [], [], []
    for _ in range(rows):
        row, mu, sigma = teaching_row(rng)
        xs.append(row)
        mus.append(mu)
        variances.append(sigma ** 2)
        sigmas.append(sigma)
    x = ImmutableMatrix(xs)
    gamma = ImmutableMatrix([[Rational(rng.choice([1, 2, -1, Rational(1, 2), 3])) for _ in range(D)]])
    beta = ImmutableMatrix([[Rational(rng.integer(-2, 2)) for _ in range(D)]])
    xhat = ImmutableMatrix(rows, D, lambda i, j: (x[i, j] - mus[i]) / sigmas[i])
    y = ImmutableMatrix(rows, D, lambda i, j: gamma[0, j] * xhat[i, j] + beta[0, j])
    for i in range(rows):  # the statistics the key claims, recomputed from x itself
        row = list(x.row(i))
        assert sum(row) / D == mus[i] and sum((v - mus[i]) ** 2 for v in row) / D == variances[i]

    suffix = (lambda i: f"_{i}") if rows > 1 else (lambda i: "")
    mu_q = Quantity("mu", Tex(r"\mu"), per_row_value(mus, rows))
    var_q = Quantity("var", Tex(r"\sigma^2"), per_row_value(variances, rows))
    sigma_q = Quantity("sigma", Tex(r"\sigma"), per_row_value(sigmas, rows))
    xhat_q = Quantity("xhat", Tex(r"\hat{x}"), xhat)
    y_q = Quantity("y", Tex("y"), y)
    mean_lines = tuple(mean_line(f"\\mu{suffix(i)}", x.row(i), mus[i]) for i in range(rows))
    var_lines = tuple(
        mean_line(f"\\sigma^2{suffix(i)}", [(v - mus[i]) ** 2 for v in x.row(i)], variances[i]) for i in range(rows)
    )
    sigma_lines = tuple(
        Tex(f"\\sigma{suffix(i)} = \\sqrt{{{number_tex(variances[i])}}} = {number_tex(sigmas[i])}") for i in range(rows)
    )
    xhat_lines = tuple(
        Tex(f"\\hat{{x}}[{i},{j}] = \\frac{{{number_tex(x[i, j])} - \\left({number_tex(mus[i])}\\right)}}"
            f"{{{number_tex(sigmas[i])}}} = {number_tex(xhat[i, j])}")
        for i in range(rows) for j in range(D) if i == 0
    )
    y_expansions = tuple(
        Expansion(Tex(f"y[0,{j}]"), (Term((gamma[0, j], xhat[0, j])), Term((beta[0, j],))), y[0, j]) for j in range(D)
    )
    parts = [
        Part(Tex(r"Compute the mean $\mu$ of each row."), (mu_q,),
             (Step(text=Tex("Add the entries of the row and divide by $d = 4$."), formula=Tex(r"\mu = \frac{1}{d}\sum_j x_j"),
                   lines=mean_lines),)),
        Part(Tex(r"Compute the variance $\sigma^2$ (divide by $d$)."), (var_q,),
             (Step(text=Tex("Square each deviation from the mean, add, and divide by $d$ (the biased variance)."),
                   formula=Tex(r"\sigma^2 = \frac{1}{d}\sum_j (x_j - \mu)^2"), lines=var_lines),)),
        Part(Tex(r"Compute $\sigma$."), (sigma_q,),
             (Step(text=Tex(r"Take the square root ($\varepsilon = 0$ on this sheet)."),
                   formula=Tex(r"\sigma = \sqrt{\sigma^2 + \varepsilon}"), lines=sigma_lines),)),
        Part(Tex(r"Normalise: $\hat{x} = (x - \mu)/\sigma$."), (xhat_q,),
             (Step(text=Tex("Subtract the row's mean and divide by its $\\sigma$."),
                   formula=Tex(r"\hat{x}_j = \frac{x_j - \mu}{\sigma}"), lines=xhat_lines, result=xhat_q,
                   checks=(Tex(r"\text{Each row of } \hat{x} \text{ has mean 0 and variance 1.}"),)),)),
        Part(Tex(r"Scale and shift: $y = \gamma \odot \hat{x} + \beta$."), (y_q,),
             (Step(text=Tex(r"Multiply entry $j$ by $\gamma_j$ and add $\beta_j$."),
                   formula=Tex(r"y_j = \gamma_j\,\hat{x}_j + \beta_j"), expansions=y_expansions, result=y_q),)),
    ]
    given = [Quantity("x", Tex("x"), x), Quantity("gamma", Tex(r"\gamma"), gamma), Quantity("beta", Tex(r"\beta"), beta)]
    return Problem.draft(given=given, parts=parts)
