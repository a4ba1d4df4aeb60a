"""LayerNorm backward (ε = 0 on paper): ∂L/∂β, ∂L/∂γ, ∂L/∂x̂ = ∂L/∂y ⊙ γ and ∂L/∂x row by row."""

from __future__ import annotations

from fractions import Fraction
from functools import cache

import sympy
from sympy import ImmutableMatrix, Rational

from generator.core.backprop import layernorm_row_parts
from generator.core.forward import layernorm_patterns, layernorm_stats_step, mean_line, pattern_sigma, per_row_value
from generator.core.problem import Bounds, Contract, Expansion, Part, Problem, Quantity, Step, Term, Tex
from generator.core.registry import Option
from generator.documents.render import factor_tex, matrix_tex, number_tex
from generator.core.rng import Rng
from generator.core.worked import entry_label, shape_text
from generator.problems.layernorm import row_values, teaching_row

TITLE = "Backward through LayerNorm"
OPTIONS = [Option("rows", ("1", "2"), "1", "how many rows (tokens) of x")]
D = 4
GAMMAS = (Rational(1), Rational(2), Rational(-1), Rational(1, 2))
DY_LIMIT = 2  # the upstream gradient is whole, in −2…2
# Every value of a row's backward pass (means, products, the bracket, ∂x) must fit these, or ∂L/∂y is redrawn.
ROW_DENOMINATOR = 12
ROW_NUMERATOR = 20


def _means(p: Problem) -> list[tuple[sympy.Expr, sympy.Expr]]:
    """mean(∂x̂) and mean(∂x̂ ⊙ x̂) of each row, from the answers."""
    dxhat, xhat = p.answer("dxhat"), p.answer("xhat")
    return [(sum(dxhat.row(i)) / D, sum(a * b for a, b in zip(dxhat.row(i), xhat.row(i))) / D) for i in range(xhat.rows)]


def _sigmas(p: Problem) -> list[sympy.Expr]:
    """σ of each row, from the answers."""
    sigma = p.answer("sigma")
    return list(sigma) if isinstance(sigma, ImmutableMatrix) else [sigma]


CONTRACT = Contract(
    # The maxima measured over 6,000 draws (3,000 per option): |x| ≤ |μ| + 5, and 20/3 is 4·(5/3), ∂x̂·x̂ at its largest.
    given=Bounds(11, 2, Rational(8)),
    intermediate=Bounds(20, 12, Rational(20, 3)),
    answer=Bounds(20, 12, Rational(20, 3)),
    forbidden={
        "∂L/∂y is all zeros": lambda p: not any(p.given_value("dy")),
        "a row of ∂L/∂y is all zeros": lambda p: any(not any(row) for row in p.given_value("dy").tolist()),
        "∂L/∂x is all zeros": lambda p: not any(p.answer("dx")),
        "∂L/∂γ is all zeros": lambda p: not any(p.answer("dgamma")),
        "∂L/∂β is all zeros": lambda p: not any(p.answer("dbeta")),
        # ε is 0 on paper; a real model's ε ≈ 1e-5 must not matter, so σ stays well away from 0.
        "σ is smaller than 1": lambda p: any(s < 1 for s in _sigmas(p)),
        # A zero mean would let a student who drops that term of the formula get the right ∂x.
        "a row's mean of ∂x̂ is 0": lambda p: any(m1 == 0 for m1, _ in _means(p)),
        "a row's mean of ∂x̂ ⊙ x̂ is 0": lambda p: any(m2 == 0 for _, m2 in _means(p)),
        # μ = 0 hides a forgotten − μ; σ = 1 hides a forgotten 1/σ in ∂x (or σ² for σ); γ = 1 hides ∂x̂ = ∂y.
        "a row's mean is 0 (forgetting to subtract it would not show)": lambda p: 0 in row_values(p.answer("mu")),
        "σ is 1 (forgetting to divide by it would not show)": lambda p: any(s == 1 for s in _sigmas(p)),
        "γ is all 1 (∂x̂ = ∂y would look right)": lambda p: all(g == 1 for g in p.given_value("gamma")),
    },
)


@cache
def _patterns() -> list[tuple[int, ...]]:
    """Deviation patterns with σ_u of 1 or 3 (x̂ in wholes or thirds).

    With σ_u = 5 the x̂ term is u_j (∂x̂·u)/100: hardly any whole ∂L/∂y keeps ∂x in small denominators.
    """
    return [u for u in layernorm_patterns() if pattern_sigma(u) <= 3]


def _row_is_clean(xhat: list[Fraction], dxhat: list[Fraction], sigma: Fraction) -> bool:
    """Both means non-zero (every term of the formula matters), ∂x non-zero, every value small."""
    means, products, tail, g, dx = layernorm_row_parts(xhat, dxhat, sigma)
    if 0 in means or not any(dx):
        return False
    values = dxhat + means + products + tail + g + dx
    return all(v.denominator <= ROW_DENOMINATOR and abs(v.numerator) <= ROW_NUMERATOR for v in values)


def _fraction(value: sympy.Rational) -> Fraction:
    """A sympy Rational as a plain Fraction, for the fast search."""
    return Fraction(int(value.p), int(value.q))


def _dy_row(rng: Rng, xhat: list, gamma: ImmutableMatrix, sigma: sympy.Rational) -> list[Rational]:
    """A whole upstream gradient row whose backward pass is clean.

    Redrawn rather than built: every pattern, scale and γ leaves at least 42 of the 625 rows clean (checked by
    enumeration), so the loop ends quickly. Plain Fractions inside, since sympy arithmetic is slow.
    """
    xhat_f, gamma_f, sigma_f = [_fraction(v) for v in xhat], [_fraction(g) for g in gamma], _fraction(sigma)
    while True:
        dy = [rng.integer(-DY_LIMIT, DY_LIMIT) for _ in range(D)]
        if _row_is_clean(xhat_f, [d * g for d, g in zip(dy, gamma_f)], sigma_f):
            return [Rational(d) for d in dy]


def products_mean_line(label: str, left, right, mean: sympy.Expr) -> Tex:
    """label = (l0·r0 + l1·r1 + …)/n = total/n = mean, checked."""
    total = sympy.Add(*(a * b for a, b in zip(left, right, strict=True)))
    if total / len(left) != mean:
        raise ValueError(f"mean line for {label} does not add up")
    terms = " + ".join(f"{factor_tex(a)} \\cdot {factor_tex(b)}" for a, b in zip(left, right))
    return Tex(f"{label} = \\frac{{{terms}}}{{{len(left)}}} = \\frac{{{number_tex(total)}}}{{{len(left)}}} = {number_tex(mean)}")


def _row_tex(values) -> str:
    """A row of numbers as a 1×n bracket."""
    return matrix_tex(ImmutableMatrix([list(values)]))


def divided_line(label: str, formula: str, numerator_row, sigma: sympy.Expr, result_row) -> Tex:
    """label = formula = [row] / σ = [result], checked."""
    return Tex(f"{label} = {formula} = {divided_numbers(numerator_row, sigma, result_row)}")


def divided_numbers(numerator_row, sigma: sympy.Expr, result_row) -> str:
    """[row] / σ = [result], checked (the numbers of a divided line, for a line of their own)."""
    if [v / sigma for v in numerator_row] != list(result_row):
        raise ValueError("a division line does not add up")
    return f"{_row_tex(numerator_row)} \\,/\\, {number_tex(sigma)} = {_row_tex(result_row)}"


def _forward_part(x, mus, sigmas, suffix, q) -> Part:
    """(a) μ, σ and x̂ = (x − μ)/σ, with the statistics written out by the forward type's shared step."""
    stats, worked_mus, worked_sigmas = layernorm_stats_step(x, list(range(x.rows)), suffix)
    if worked_mus != mus or worked_sigmas != sigmas:
        raise ValueError("LayerNorm statistics do not match the drawn rows")
    lines = tuple(divided_line(f"\\hat{{x}}[{i},:]", f"(x[{i},:] - \\mu{suffix(i)})/\\sigma{suffix(i)}",
                                [v - mus[i] for v in x.row(i)], sigmas[i], q["xhat"].value.row(i))
                  for i in range(x.rows))
    xhat_step = Step(text=Tex(r"Subtract the row's mean and divide by its $\sigma$."),
                     formula=Tex(r"\hat{x}_j = \frac{x_j - \mu}{\sigma}"), lines=lines, result=q["xhat"],
                     checks=(Tex(r"\text{Each row of } \hat{x} \text{ has mean 0 and mean square 1: } \textstyle\sum_j \hat{x}_j = 0,"
                                 r"\ \sum_j \hat{x}_j^2 = d\text{. Part (d) relies on both.}"),))
    return Part(Tex(r"Forward pass: compute $\mu$ and $\sigma$ of each row (divide by $d$; $\varepsilon = 0$) and "
                    r"$\hat{x} = (x - \mu)/\sigma$."), (q["mu"], q["sigma"], q["xhat"]), (stats, xhat_step))


def _parameter_part(dy, xhat, q) -> Part:
    """(b) ∂L/∂β and ∂L/∂γ: β and γ act on every row, so their gradients add up the rows."""
    rows, dbeta, dgamma = dy.rows, q["dbeta"].value, q["dgamma"].value
    total = sympy.Add(*dy)
    if sympy.Add(*dbeta) != total:
        raise ValueError("∂β does not add up to the sum of ∂y")
    beta_expansions = tuple(Expansion(Tex(f"\\partial\\beta[{j}]"), tuple(Term((dy[i, j],)) for i in range(rows)), dbeta[0, j])
                            for j in range(D)) if rows > 1 else ()
    beta_step = Step(
        text=Tex(r"$\beta$ is added to every row, so its gradient adds up the rows of $\partial L/\partial y$"
                 + (r" ($\partial\beta$ is short for $\partial L/\partial\beta$)." if rows > 1 else r"; with one row it is $\partial L/\partial y$ itself.")),
        formula=Tex(r"\frac{\partial L}{\partial \beta_j} = \sum_i \frac{\partial L}{\partial y}[i,j]"),
        shapes=Tex(f"{shape_text(dy)} \\to {shape_text(dbeta)}"), expansions=beta_expansions, result=q["dbeta"],
        checks=(Tex(f"\\textstyle\\sum_j \\partial\\beta_j = {number_tex(total)}"
                    r" = \text{the sum of every entry of } \partial L/\partial y."),
                Tex(r"\text{Its shape } (1 \times 4) \text{ is the shape of } \beta.")))
    gamma_expansions = tuple(
        Expansion(Tex(f"\\partial\\gamma[{j}]"), tuple(Term((dy[i, j], xhat[i, j])) for i in range(rows)), dgamma[0, j])
        for j in range(D))
    gamma_step = Step(
        text=Tex(r"$\gamma_j$ multiplies $\hat{x}_j$ in every row, so each row contributes $\partial L/\partial y \cdot \hat{x}$"
                 r" ($\partial\gamma$ is short for $\partial L/\partial\gamma$)."),
        formula=Tex(r"\frac{\partial L}{\partial \gamma_j} = \sum_i \frac{\partial L}{\partial y}[i,j]\,\hat{x}[i,j]"),
        shapes=Tex(f"{shape_text(dy)} \\odot {shape_text(xhat)} \\to {shape_text(dgamma)}"),
        expansions=gamma_expansions, result=q["dgamma"],
        checks=(Tex(r"\text{Its shape } (1 \times 4) \text{ is the shape of } \gamma."),))
    return Part(Tex(r"Compute $\partial L/\partial \beta = \sum_i \partial L/\partial y[i,:]$ and "
                    r"$\partial L/\partial \gamma = \sum_i \partial L/\partial y[i,:] \odot \hat{x}[i,:]$ (sums over the rows)."),
                (q["dbeta"], q["dgamma"]), (beta_step, gamma_step))


def _dxhat_part(dy, gamma, q) -> Part:
    """(c) ∂L/∂x̂ = ∂L/∂y ⊙ γ, the first row written out."""
    dxhat = q["dxhat"].value
    expansions = tuple(Expansion(entry_label(r"\partial\hat{x}", 0, j), (Term((dy[0, j], gamma[0, j])),), dxhat[0, j])
                       for j in range(D))
    step = Step(text=Tex(r"$y_j = \gamma_j \hat{x}_j + \beta_j$, so each entry's gradient is multiplied by its $\gamma_j$ (in every row;"
                         r" $\partial\hat{x}$ is short for $\partial L/\partial\hat{x}$)."),
                formula=Tex(r"\frac{\partial L}{\partial \hat{x}}[i,j] = \frac{\partial L}{\partial y}[i,j]\,\gamma_j"),
                shapes=Tex(f"{shape_text(dy)} \\odot {shape_text(gamma)} \\to {shape_text(dxhat)}"),
                expansions=expansions, result=q["dxhat"],
                checks=(Tex(r"\text{Its shape is the shape of } \hat{x}."),))
    return Part(Tex(r"Compute $\partial L/\partial \hat{x} = \partial L/\partial y \odot \gamma$ ($\gamma$ multiplies every row)."),
                (q["dxhat"],), (step,))


def _dx_part(xhat, sigmas, suffix, q) -> Part:
    """(d) ∂x = (∂x̂ − mean(∂x̂) − x̂ ⊙ mean(∂x̂ ⊙ x̂))/σ: the two means, the bracket g, the division, the checks."""
    dxhat, g, dx = q["dxhat"].value, q["g"].value, q["dx"].value
    m1 = [sum(dxhat.row(i)) / D for i in range(xhat.rows)]
    m2 = [sum(a * b for a, b in zip(dxhat.row(i), xhat.row(i))) / D for i in range(xhat.rows)]
    mean_lines = []
    for i in range(xhat.rows):
        mean_lines += [mean_line(f"\\overline{{\\partial\\hat{{x}}}}{suffix(i)}", dxhat.row(i), m1[i]),
                       products_mean_line(f"\\overline{{\\partial\\hat{{x}} \\odot \\hat{{x}}}}{suffix(i)}",
                                           dxhat.row(i), xhat.row(i), m2[i])]
    means_step = Step(text=Tex(r"The two means over the row's 4 features ($\partial$ is short for $\partial L/\partial$)."),
                      formula=Tex(r"\overline{\partial\hat{x}} = \tfrac{1}{d}\textstyle\sum_j \partial\hat{x}_j, \quad "
                                  r"\overline{\partial\hat{x} \odot \hat{x}} = \tfrac{1}{d}\textstyle\sum_j \partial\hat{x}_j\,\hat{x}_j"),
                      lines=tuple(mean_lines))
    g_expansions = tuple(
        Expansion(entry_label("g", i, j), (Term((dxhat[i, j],)), Term((m1[i],), sign=-1), Term((xhat[i, j], m2[i]), sign=-1)),
                  g[i, j])
        for i in range(xhat.rows) for j in range(D))
    g_step = Step(text=Tex(r"The bracket $g$: remove from $\partial\hat{x}$ its mean and its part along $\hat{x}$, entry by entry."),
                  formula=Tex(r"g_j = \partial\hat{x}_j - \overline{\partial\hat{x}} - \hat{x}_j\,\overline{\partial\hat{x} \odot \hat{x}}"),
                  expansions=g_expansions, result=q["g"])
    dx_lines = tuple(divided_line(f"\\partial x[{i},:]", f"g[{i},:]/\\sigma{suffix(i)}", g.row(i), sigmas[i], dx.row(i))
                     for i in range(dx.rows))
    checks = []
    for i in range(dx.rows):
        row, hat = list(dx.row(i)), list(xhat.row(i))
        # Guard the key: with ε = 0, Σ x̂ = 0 and Σ x̂² = d make both of these exactly 0.
        if sympy.Add(*row) != 0 or sympy.Add(*(a * b for a, b in zip(row, hat))) != 0:
            raise ValueError("LayerNorm backward row is not centred or not orthogonal to x̂")
        checks += [Tex(f"\\text{{row {i} sums to 0: }} " + " + ".join(factor_tex(v) for v in row) + " = 0"),
                   Tex(f"\\partial x[{i},:] \\cdot \\hat{{x}}[{i},:] = "
                       + " + ".join(f"{factor_tex(a)} \\cdot {factor_tex(b)}" for a, b in zip(row, hat)) + " = 0")]
    checks.append(Tex(f"\\text{{Its shape }} {shape_text(dx)} \\text{{ is the shape of }} x."))
    dx_step = Step(text=Tex(r"Divide each row of $g$ by that row's $\sigma$."),
                   formula=Tex(r"\frac{\partial L}{\partial x} = \frac{g}{\sigma}"), lines=dx_lines, result=q["dx"],
                   checks=tuple(checks))
    return Part(Tex(r"Compute $\partial L/\partial x = \tfrac{1}{\sigma}\bigl(\partial\hat{x} - \overline{\partial\hat{x}}"
                    r" - \hat{x} \odot \overline{\partial\hat{x} \odot \hat{x}}\bigr)$ row by row, where $\partial\hat{x}$ is "
                    r"$\partial L/\partial \hat{x}$ and a bar is the mean over the row's 4 features."),
                (q["dx"],), (means_step, g_step, dx_step))


def _backward_values(x, mus, sigmas, gamma, dy) -> dict[str, ImmutableMatrix]:
    """Every matrix of the backward pass, exact, straight from the formulas."""
    rows = x.rows
    xhat = ImmutableMatrix(rows, D, lambda i, j: (x[i, j] - mus[i]) / sigmas[i])
    dxhat = ImmutableMatrix(rows, D, lambda i, j: dy[i, j] * gamma[0, j])
    m1 = [sum(dxhat.row(i)) / D for i in range(rows)]
    m2 = [sum(a * b for a, b in zip(dxhat.row(i), xhat.row(i))) / D for i in range(rows)]
    g = ImmutableMatrix(rows, D, lambda i, j: dxhat[i, j] - m1[i] - xhat[i, j] * m2[i])
    return {
        "xhat": xhat,
        "dbeta": ImmutableMatrix([[sum(dy.col(j)) for j in range(D)]]),
        "dgamma": ImmutableMatrix([[sum(dy[i, j] * xhat[i, j] for i in range(rows)) for j in range(D)]]),
        "dxhat": dxhat,
        "g": g,
        "dx": ImmutableMatrix(rows, D, lambda i, j: g[i, j] / sigmas[i]),
    }


SYMBOLS = {
    "xhat": r"\hat{x}", "dbeta": r"\frac{\partial L}{\partial \beta}", "dgamma": r"\frac{\partial L}{\partial \gamma}",
    "dxhat": r"\frac{\partial L}{\partial \hat{x}}", "g": "g", "dx": r"\frac{\partial L}{\partial x}",
}


def generate(rng: Rng, options: dict[str, str]) -> Problem:
    """Draw rows x = μ + c·u (σ_u of 1 or 3), γ, β, and an upstream gradient whose backward pass stays clean."""
    rows = int(options["rows"])
    drawn = [teaching_row(rng, _patterns()) for _ in range(rows)]
    x = ImmutableMatrix([row for row, _, _ in drawn])
    mus, sigmas = [mu for _, mu, _ in drawn], [sigma for _, _, sigma in drawn]
    gamma = ImmutableMatrix([[rng.choice(GAMMAS) for _ in range(D)]])
    while all(g == 1 for g in gamma):
        gamma = ImmutableMatrix([[rng.choice(GAMMAS) for _ in range(D)]])
    beta = ImmutableMatrix([[Rational(rng.integer(-2, 2)) for _ in range(D)]])
    dy = ImmutableMatrix([_dy_row(rng, [(v - mu) / sigma for v in row], gamma, sigma) for row, mu, sigma in drawn])
    values = _backward_values(x, mus, sigmas, gamma, dy)
    q = {name: Quantity(name, Tex(SYMBOLS[name]), value) for name, value in values.items()}
    q["mu"] = Quantity("mu", Tex(r"\mu"), per_row_value(mus, rows))
    q["sigma"] = Quantity("sigma", Tex(r"\sigma"), per_row_value(sigmas, rows))
    suffix = (lambda i: f"_{i}") if rows > 1 else (lambda i: "")
    parts = [
        _forward_part(x, mus, sigmas, suffix, q),
        _parameter_part(dy, values["xhat"], q),
        _dxhat_part(dy, gamma, q),
        _dx_part(values["xhat"], sigmas, suffix, q),
    ]
    given = [Quantity("x", Tex("x"), x), Quantity("gamma", Tex(r"\gamma"), gamma), Quantity("beta", Tex(r"\beta"), beta),
             Quantity("dy", Tex(r"\frac{\partial L}{\partial y}"), dy)]
    return Problem.draft(given=given, parts=parts)
