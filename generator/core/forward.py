"""Exact worked steps of a transformer's forward pass, shared by single-step and chained problems."""

from __future__ import annotations

import itertools
import math
from decimal import Decimal, localcontext
from fractions import Fraction
from functools import cache, lru_cache
from math import gcd, isqrt

import sympy
from sympy import ImmutableMatrix, Rational

from generator.core.problem import Expansion, Quantity, Step, Term, Tex
# PLACES: the decimals printed in tables and asked for in answers.
from generator.core.readings import PLACES, NotInTable, Reading, Table, format_places, ratio_of_sum
from generator.documents.render import decimal_tex, factor_tex, number_tex
from generator.core.worked import cells_to_expand, check_result, entry_label, shape_text

NEG_INF = -sympy.oo


def affine_step(text, x: ImmutableMatrix, w: ImmutableMatrix, b: ImmutableMatrix, formula: Tex,
                result: Quantity, expand: str = "row") -> Step:
    """h = x·W + b (b a row added to every row): shapes, entries written out, result."""
    value = x * w + ImmutableMatrix.vstack(*([b] * x.rows))
    check_result("affine", value, result)
    expansions = tuple(
        Expansion(
            entry_label(result.symbol, i, j),
            tuple(Term((x[i, k], w[k, j])) for k in range(x.cols)) + (Term((b[0, j],)),),
            value[i, j],
        )
        for i, j in cells_to_expand(value, expand)
    )
    return Step(
        text=text,
        formula=formula,
        shapes=Tex(f"{shape_text(x)} \\cdot {shape_text(w)} + {shape_text(b)} \\to {shape_text(value)}"),
        expansions=expansions,
        result=result,
    )


def add_step(text, a: ImmutableMatrix, b: ImmutableMatrix, formula: Tex, result: Quantity,
             expand: str = "row", checks: tuple[Tex, ...] = ()) -> Step:
    """Entrywise sum of two same-shape matrices (positions, residuals)."""
    value = a + b
    check_result("add", value, result)
    expansions = tuple(
        Expansion(entry_label(result.symbol, i, j), (Term((a[i, j],)), Term((b[i, j],))), value[i, j])
        for i, j in cells_to_expand(value, expand)
    )
    return Step(text=text, formula=formula, shapes=Tex(f"{shape_text(a)} + {shape_text(b)} \\to {shape_text(value)}"),
                expansions=expansions, result=result, checks=checks)


def scale_step(raw: ImmutableMatrix, root: int, result: Quantity) -> Step:
    """Divide every score by √d_k (an integer here by construction)."""
    value = raw / root
    check_result("scale", value, result)
    lines = tuple(
        Tex(f"{entry_label(result.symbol, i, j)} = \\frac{{{number_tex(raw[i, j])}}}{{{root}}} = {number_tex(value[i, j])}")
        for i, j in cells_to_expand(value, "row")
    )
    return Step(
        text=Tex(f"Divide every score by $\\sqrt{{d_k}} = {root}$, so that longer vectors do not give larger scores."),
        formula=Tex(f"{result.symbol} = \\frac{{Q\\,K^{{\\mathsf T}}}}{{\\sqrt{{d_k}}}}"),
        lines=lines if root != 1 else (),
        result=result,
    )


def plain_product(a: list[list], b: list[list]) -> list[list]:
    """Matrix product of plain ints or Fractions: constrained searches try many draws, and sympy is slow."""
    return [[sum(x * y for x, y in zip(row, col)) for col in zip(*b)] for row in a]


def plain_rows(m: ImmutableMatrix) -> list[list[Fraction]]:
    """A matrix of rationals as rows of plain Fractions (for plain_product and plain_transpose)."""
    return [[Fraction(int(v.p), int(v.q)) for v in row] for row in m.tolist()]


def plain_transpose(a: list[list]) -> list[list]:
    """The transpose of a matrix of plain numbers (the companion of plain_product)."""
    return [list(col) for col in zip(*a)]


def causal_mask(scores: ImmutableMatrix) -> ImmutableMatrix:
    """Scores with −∞ above the diagonal: a token may not look at later tokens."""
    return ImmutableMatrix(scores.rows, scores.cols,
                           lambda i, j: NEG_INF if j > i else scores[i, j])


def causal_mask_step(scores: ImmutableMatrix, result: Quantity) -> Step:
    """Set S[i,j] = −∞ for j > i."""
    check_result("mask", causal_mask(scores), result)
    return Step(
        text=Tex(r"Causal mask: token $i$ may only attend to tokens $j \le i$, so every entry with $j > i$ becomes $-\infty$ (and later gets weight $e^{-\infty} = 0$)."),
        formula=Tex(r"S[i,j] = -\infty \text{ for } j > i"),
        result=result,
    )


def softmax_rows(scores: ImmutableMatrix) -> ImmutableMatrix:
    """Exact softmax of each row (−∞ gives weight 0)."""
    rows = []
    for i in range(scores.rows):
        exps = [sympy.exp(x) for x in scores.row(i)]
        total = sympy.Add(*exps)
        rows.append([e / total for e in exps])
    return ImmutableMatrix(rows)


def relu(value: ImmutableMatrix) -> ImmutableMatrix:
    """max(0, x) entrywise."""
    return value.applyfunc(lambda x: x if x > 0 else Rational(0))


def relu_step(pre: ImmutableMatrix, result: Quantity, pre_symbol: str = "h") -> Step:
    """ReLU: negative entries become 0, positive ones pass unchanged."""
    check_result("relu", relu(pre), result)
    # One line per row of zeroed entries, so a wide layer never runs off the page.
    lines = []
    for i in range(pre.rows):
        zeroed = [f"{entry_label(pre_symbol, i, j)} = {number_tex(pre[i, j])}" for j in range(pre.cols) if pre[i, j] < 0]
        if zeroed:
            lines.append(Tex(f"\\text{{row {i}, set to 0: }} " + ",\\ ".join(zeroed)))
    return Step(
        text=Tex("ReLU keeps positive entries and replaces negative ones by 0."),
        formula=Tex(r"\operatorname{ReLU}(x) = \max(0, x)"),
        lines=tuple(lines),
        result=result,
    )


def mean_line(label: str, values, mean: sympy.Expr) -> Tex:
    """label = (v0 + v1 + …)/n = total/n = mean, checked."""
    values = list(values)
    total = sympy.Add(*values)
    if total / len(values) != mean:
        raise ValueError(f"mean line for {label} does not add up")
    terms = " + ".join(factor_tex(v) for v in values)
    return Tex(f"{label} = \\frac{{{terms}}}{{{len(values)}}} = \\frac{{{number_tex(total)}}}{{{len(values)}}} = {number_tex(mean)}")


def hidden_biases(rng, xw: ImmutableMatrix, difficulty: str, window: Rational | None = None) -> ImmutableMatrix:
    """b₁ per hidden unit: no pre-activation exactly 0, one unit negative and one positive for every token,
    and (with a window) every pre-activation within ±window.

    Built rather than redrawn: an activation only teaches something when it visibly cuts some entries and
    keeps others.
    """
    # Whole numbers inside, every value times one common denominator: callers search many draws (ffn_gelu's
    # hard sheets about 30 a problem), and sympy's, even Fraction's, arithmetic is slow.
    rows = xw.tolist() if isinstance(xw, ImmutableMatrix) else xw
    columns = [[Fraction(int(v.p), int(v.q)) if isinstance(v, sympy.Rational) else Fraction(v) for v in col]
               for col in zip(*rows)]
    step = Fraction(1, 2) if difficulty == "hard" else Fraction(1)
    scale = math.lcm(step.denominator, *(v.denominator for column in columns for v in column))
    columns = [[v.numerator * (scale // v.denominator) for v in column] for column in columns]
    unit = step.numerator * (scale // step.denominator)
    candidates = [k * unit for k in range(-int(3 / step), int(3 / step) + 1)]
    # A whole number against a bound: n <= bound exactly when n <= floor(bound).
    bound = None if window is None else math.floor(Fraction(window) * scale)
    count = len(columns)
    cut = min(range(count), key=lambda j: (max(columns[j]), j))  # easiest to push below 0
    kept = max((j for j in range(count) if j != cut), key=lambda j: (min(columns[j]), -j))
    biases = []
    for j, column in enumerate(columns):
        # Each test on a whole column is one on its extremes (or on the set of its negatives): the same lists as
        # testing every entry, in a few comparisons per candidate.
        zeros, low, high = {-v for v in column}, min(column), max(column)
        fine = [b for b in candidates if b not in zeros]
        if bound is not None:
            fine = [b for b in fine if high + b <= bound and -(low + b) <= bound] or fine
        if j == cut:
            fine = [b for b in fine if high + b < 0] or fine
        elif j == kept:
            fine = [b for b in fine if low + b > 0] or fine
        biases.append(rng.choice(fine))
    return ImmutableMatrix([[Rational(b, scale) for b in biases]])


def normal_cdf(x: sympy.Expr) -> sympy.Expr:
    """Φ(x) = (1 + erf(x/√2))/2, exact."""
    return (1 + sympy.erf(x / sympy.sqrt(2))) / 2


def normal_pdf(x: sympy.Expr) -> sympy.Expr:
    """φ(x) = e^{−x²/2}/√(2π), exact."""
    return sympy.exp(-x**2 / 2) / sympy.sqrt(2 * sympy.pi)


def gelu(x: sympy.Expr) -> sympy.Expr:
    """GELU(x) = x·Φ(x), the exact (erf) variant."""
    return x * normal_cdf(x)


# Attention weight rows with denominators 2, 3 or 4 (each sums to 1), so weighted averages stay clean.
WEIGHT_ROWS = {
    1: [("1",)],
    2: [("1/2", "1/2"), ("1/4", "3/4"), ("3/4", "1/4"), ("1/3", "2/3"), ("2/3", "1/3")],
    3: [("1/2", "1/4", "1/4"), ("1/3", "1/3", "1/3"), ("1/2", "1/2", "0"), ("3/4", "1/4", "0"), ("2/3", "1/3", "0"),
        ("1/4", "1/2", "1/4")],
}


def attention_weight_row(rng, visible: int, n: int, halves_and_quarters: bool = False) -> list[Rational]:
    """n weights summing to 1, only the first `visible` non-zero (a causal row), in shuffled order."""
    row = [Rational(w) for w in rng.shuffled(rng.choice(weight_rows(visible, halves_and_quarters)))]
    return row + [Rational(0)] * (n - visible)


def weight_rows(visible: int, halves_and_quarters: bool = False) -> list[tuple[str, ...]]:
    """The rows attention_weight_row draws from, in its order (WEIGHT_ROWS, or those in halves and quarters)."""
    rows = WEIGHT_ROWS[visible]
    return [row for row in rows if all(Rational(w).q in (1, 2, 4) for w in row)] if halves_and_quarters else rows


@cache
def layernorm_patterns(d: int = 4) -> list[tuple[int, ...]]:
    """Integer deviations u (Σu = 0, gcd 1) whose mean square is a perfect square: σ_u is whole (≤ 5).

    Rows x = μ + c·u built from these have a rational σ = c·σ_u, so LayerNorm stays exact by hand.
    Enumerated on first use (15⁴ candidates), not at import: most sheets never need it.
    """
    found = []
    for u in itertools.product(range(-7, 8), repeat=d):
        square = sum(x * x for x in u)
        if sum(u) == 0 and square and square % d == 0 and isqrt(square // d) ** 2 == square // d:
            if gcd(*u) == 1 and isqrt(square // d) <= 5:
                found.append(u)
    return found


def pattern_sigma(u) -> int:
    """σ of an integer deviation pattern (a whole number by construction)."""
    return isqrt(sum(k * k for k in u) // len(u))


def layernorm_row(rng, patterns=None) -> tuple[list[Rational], Rational, Rational]:
    """One row x = μ + c·u (μ whole in −3…3, u from `patterns`, default all): returns x, μ and σ = c·σ_u ≥ 1."""
    u = rng.choice(patterns or layernorm_patterns())
    sigma_u = pattern_sigma(u)
    # Doubling only small patterns and halving only wide ones keeps |x − μ| ≤ 7 and σ ≥ 1.
    scales = [Rational(1)] + ([Rational(2)] if max(map(abs, u)) <= 3 else []) + ([Rational(1, 2)] if sigma_u >= 2 else [])
    c = rng.choice(scales)
    mu = Rational(rng.integer(-3, 3))
    return [mu + c * k for k in u], mu, c * sigma_u


def per_row_value(values: list, rows: int):
    """A per-row statistic as an answer: a scalar for one row, a column for several."""
    return values[0] if rows == 1 else ImmutableMatrix(rows, 1, values)


def layernorm_stats_step(x: ImmutableMatrix, rows: list[int], suffix) -> tuple[Step, list, list]:
    """μ, σ² and σ of the given rows, every line written out; returns the step, the μs and the σs."""
    mus, sigmas, lines = [], [], []
    for i in rows:
        row = list(x.row(i))
        mu = sympy.Add(*row) / len(row)
        variance = sympy.Add(*[(v - mu) ** 2 for v in row]) / len(row)
        sigma = sympy.sqrt(variance)
        if not sigma.is_Rational:
            raise ValueError("LayerNorm row without a rational σ")
        lines += [mean_line(f"\\mu{suffix(i)}", row, mu),
                  mean_line(f"\\sigma^2{suffix(i)}", [(v - mu) ** 2 for v in row], variance),
                  Tex(f"\\sigma{suffix(i)} = \\sqrt{{{number_tex(variance)}}} = {number_tex(sigma)}")]
        mus.append(mu)
        sigmas.append(sigma)
    step = Step(text=Tex(r"Mean, biased variance (divide by $d$) and its root, row by row ($\varepsilon = 0$)."),
                formula=Tex(r"\mu = \tfrac{1}{d}\sum_j x_j, \quad \sigma^2 = \tfrac{1}{d}\sum_j (x_j - \mu)^2"),
                lines=tuple(lines))
    return step, mus, sigmas


def layernorm_output_step(x: ImmutableMatrix, rows: list[int], mus, sigmas, gamma: ImmutableMatrix,
                          beta: ImmutableMatrix, result: Quantity) -> Step:
    """y = γ ⊙ (x − μ)/σ + β for the given rows, the first of them written out entry by entry."""
    value = ImmutableMatrix([[gamma[0, j] * (x[i, j] - mu) / sigma + beta[0, j] for j in range(x.cols)]
                             for i, mu, sigma in zip(rows, mus, sigmas)])
    check_result("layernorm", value, result)
    i, mu, sigma = rows[0], mus[0], sigmas[0]
    expansions = tuple(
        Expansion(Tex(f"{result.symbol}[0,{j}]"), (Term((gamma[0, j], (x[i, j] - mu) / sigma)), Term((beta[0, j],))),
                  value[0, j])
        for j in range(x.cols)
    )
    return Step(text=Tex(r"Normalise with the row's $\mu$ and $\sigma$, then scale by $\gamma$ and shift by $\beta$."),
                formula=Tex(r"y_j = \gamma_j\,\frac{x_j - \mu}{\sigma} + \beta_j"), expansions=expansions, result=result,
                checks=(Tex(r"\text{Before } \gamma, \beta\text{, each row has mean 0 and variance 1.}"),))


EXP_TABLE_KS = tuple(range(0, -6, -1))  # every shifted score a sheet uses: e^0 … e^−5


EXP_TABLE = Table("e^k", sympy.exp, EXP_TABLE_KS)


@cache
def exp_table_tex() -> Tex:
    """The printed table of e^k, the same full grid on every variant (so it reveals no answer)."""
    return Tex(r"\begin{array}{c|" + "c" * len(EXP_TABLE_KS) + r"} k & " + " & ".join(map(str, EXP_TABLE_KS))
               + r" \\ \hline e^{k} & " + " & ".join(decimal_tex(sympy.exp(k), PLACES) for k in EXP_TABLE_KS)
               + r" \end{array}")


def table_exponential(t) -> Reading:
    """e^t as the printed table gives it (e^{−∞} = 0 exactly, a masked score)."""
    if t == NEG_INF:
        return Reading.exactly(0)
    if int(t) != t:
        raise NotInTable(f"e^k table has no entry {t}")  # int() would truncate e^{−1/2} to e^0
    return EXP_TABLE(int(t))


def table_softmax(exponents) -> tuple[Reading, ...]:
    """Softmax of shifted scores (max 0, masked −∞ allowed) worked from the printed e^k table."""
    return _table_softmax(tuple(exponents))


@lru_cache(maxsize=4096)  # a key's softmax lines ask for the whole row once per entry, and the same rows recur
def _table_softmax(exponents: tuple) -> tuple[Reading, ...]:
    exps = [table_exponential(t) for t in exponents]
    return tuple(ratio_of_sum(exps, j) if t != NEG_INF else Reading.exactly(0) for j, t in enumerate(exponents))


def table_softmax_line(label: str, exponents, j: int, value: sympy.Expr) -> Tex:
    """label = e^{t_j} / (e^{t_0} + …) ≈ table values ≈ the 4-place route value, exponents shifted by the row's max."""
    visible = [t for t in exponents if t != NEG_INF]
    powers = " + ".join(f"e^{{{number_tex(t)}}}" for t in visible)
    exps = [table_exponential(t) for t in visible]
    looked_up = " + ".join(format_places(e.route) for e in exps)
    reading = table_softmax(exponents)[j]
    if len(visible) == 1:
        return Tex(f"{label} = \\frac{{e^{{{number_tex(exponents[j])}}}}}{{{powers}}} = {number_tex(value)}")
    return Tex(f"{label} = \\frac{{e^{{{number_tex(exponents[j])}}}}}{{{powers}}} \\approx "
               f"\\frac{{{format_places(table_exponential(exponents[j]).route)}}}{{{looked_up}}} "
               f"\\approx {format_places(reading.rounded().route)}")


def printed_sum_is_one(p) -> bool:
    """Do a probability row's printed 4-place values add up to exactly 1? (a trap in the source material)

    `p` is a row of readings (the table route's values are what the key prints) or of exact values."""
    if all(isinstance(x, Reading) for x in p):
        return sum((x.rounded().route for x in p), Fraction(0)) == 1
    return sum((Decimal(decimal_tex(x, PLACES)) for x in p), Decimal(0)) == 1


LN_TABLE_KS = tuple(range(2, 13))  # ln of every numerator and denominator a Given probability can have


LN_TABLE = Table("ln k", sympy.log, LN_TABLE_KS)


def table_log(k: int) -> Reading:
    """ln k from the printed table (ln 1 = 0 exactly)."""
    return Reading.exactly(0) if k == 1 else LN_TABLE(k)


def table_log_ratio(a: int, b: int) -> Reading:
    """ln(a/b) worked from the ln k table, the route with the fraction reduced first (ln(6/2) = ln 3); the interval
    also holds the other readings: ln a − ln b as written, and both split into primes (ln 12 = 2 ln 2 + ln 3)."""
    g = gcd(a, b)
    routes = [table_log(a // g) - table_log(b // g), table_log(a) - table_log(b),
              _log_of_primes(a) - _log_of_primes(b)]
    return routes[0].hull(*routes[1:])


def table_log_by_primes(x: Fraction) -> Reading:
    """ln x of a fraction whose numerator and denominator may lie past the table: by their primes."""
    return _log_of_primes(x.numerator) - _log_of_primes(x.denominator)


def one_log(ratio: Fraction, divisor: int = 1) -> tuple[Fraction, int]:
    """ln(ratio)/divisor as one logarithm over the smallest whole divisor, (root, d) with ln(root)/d the same value:
    where the ratio is a k-th power for a k that divides the divisor, its k-th root is taken (ln(25)/2 = ln 5,
    ln(36)/2 = ln 6, ln(16)/4 = ln 2)."""
    for k in range(divisor, 1, -1):  # the largest such k first
        if divisor % k == 0:
            top, bottom = _whole_root(ratio.numerator, k), _whole_root(ratio.denominator, k)
            if top is not None and bottom is not None:
                return Fraction(top, bottom), divisor // k
    return ratio, divisor


def _whole_root(n: int, k: int) -> int | None:
    """The whole k-th root of n ≥ 1, or None."""
    root = round(n ** (1 / k))
    return next((r for r in (root - 1, root, root + 1) if r > 0 and r**k == n), None)


def one_log_value(ratio: Fraction, divisor: int = 1) -> sympy.Expr:
    """ln(ratio)/divisor, exactly, printed simplified as one logarithm (ln(20)/3, ln 5: never a sum of logarithms)."""
    root, d = one_log(ratio, divisor)
    return sympy.log(Rational(root.numerator, root.denominator)) / d


def one_log_tex(ratio: Fraction, divisor: int = 1) -> str:
    """'ln(ratio)/divisor' as the key writes the combined loss, then '= ln root / d' where a root simplifies it."""
    forms = [number_tex(sympy.log(Rational(ratio.numerator, ratio.denominator)) / divisor),
             number_tex(one_log_value(ratio, divisor))]
    return forms[0] if forms[0] == forms[1] else " = ".join(forms)


def table_one_log(ratio: Fraction, divisor: int = 1) -> Reading:
    """ln(ratio)/divisor from the ln k table as a student who wrote it as one logarithm works it: by the primes of the
    fraction, or, where the simplified fraction's numerator and denominator are printed, read directly (ln 6, not
    ln 2 + ln 3). The route is the one by primes."""
    reading = table_log_by_primes(ratio) / divisor
    root, d = one_log(ratio, divisor)
    if all(k == 1 or k in LN_TABLE_KS for k in (root.numerator, root.denominator)):
        reading = reading.hull(table_log_ratio(root.numerator, root.denominator) / d)
    return reading


def _log_of_primes(n: int) -> Reading:
    """ln n as the sum of the table's ln p over n's prime factors."""
    result, p = Reading.exactly(0), 2
    while n > 1:
        while n % p == 0:
            result, n = result + table_log(p), n // p
        p += 1
    return result


@cache
def ln_table_tex() -> Tex:
    """The printed table of ln k, the same grid on every variant (so it reveals no answer)."""
    return Tex(r"\begin{array}{c|" + "c" * len(LN_TABLE_KS) + r"} k & " + " & ".join(map(str, LN_TABLE_KS))
               + r" \\ \hline \ln k & " + " & ".join(decimal_tex(sympy.log(k), PLACES) for k in LN_TABLE_KS)
               + r" \end{array}")


@cache
def decimal_softmax(scores: tuple[int | Fraction, ...]) -> tuple[Decimal, ...]:
    """Softmax of whole or fractional scores to 30 digits, for deciding which draws are clean (keys stay exact)."""
    with localcontext() as context:
        context.prec = 30
        top = max(scores)
        exps = [(Decimal((s - top).numerator) / (s - top).denominator).exp() for s in scores]
        total = sum(exps)
        return tuple(e / total for e in exps)


def whole_scores_print_to_one(scores) -> bool:
    """Do the 4-place softmax(scores) the sheet's table gives add up to exactly 1? Scores more than the table's
    range below their maximum cannot be worked from the sheet, so they do not print to one either."""
    top = max(scores)
    return _shift_prints_to_one(tuple(s - top for s in scores))


@cache  # the output-layer searches ask about the same few shapes z − max z thousands of times per draw
def _shift_prints_to_one(shift: tuple) -> bool:
    """whole_scores_print_to_one for scores already shifted by their maximum."""
    if any(t not in EXP_TABLE_KS for t in shift):
        return False
    return printed_sum_is_one(table_softmax(list(shift)))


def draw_log_logits(rng, positions: int, vocab: int) -> tuple[list[list[int]], list[int]]:
    """Rows of k (1–6, not all equal, summing to at most 12) for logits ln k, and one target per row.

    e^{ln k} = k, so softmax gives the fractions k/Σk: losses and gradients stay exact by hand.
    """
    ks, targets = [], []
    for _ in range(positions):
        while True:
            row = [rng.integer(1, 6) for _ in range(vocab)]
            if sum(row) <= 12 and len(set(row)) > 1:
                break
        ks.append(row)
        targets.append(rng.below(vocab))
    return ks, targets


@cache
def phi_tables(values: tuple) -> tuple[Table, Table]:
    """The printed Φ and φ tables over the grid `values` (what phi_table_tex prints)."""
    return Table("Phi", normal_cdf, tuple(values)), Table("phi", normal_pdf, tuple(values))


@cache
def phi_table_tex(values: tuple) -> Tex:
    """Φ(x) and φ(x) to 4 places for the given x (the same grid on every variant, so it reveals no answer)."""
    header = " & ".join(number_tex(v) for v in values)
    phi_row = " & ".join(decimal_tex(normal_cdf(v), PLACES) for v in values)
    pdf_row = " & ".join(decimal_tex(normal_pdf(v), PLACES) for v in values)
    return Tex(r"\begin{array}{c|" + "c" * len(values) + r"} x & " + header + r" \\ \hline \Phi(x) & " + phi_row
               + r" \\ \varphi(x) & " + pdf_row + r" \end{array}")
