"""Example 6, a complete block: attention, residual, LayerNorm, feed-forward, residual, LayerNorm."""

from __future__ import annotations

import math
from fractions import Fraction
from functools import cache

from sympy import ImmutableMatrix, Rational

from generator.core.forward import (
    layernorm_patterns,
    add_step,
    affine_step,
    hidden_biases,
    weight_rows,
    layernorm_output_step,
    layernorm_stats_step,
    pattern_sigma,
    plain_product,
    relu,
    relu_step,
)
from generator.core.draws import has_zero_row
from generator.core.problem import Bounds, Contract, Part, Problem, Quantity, Tex, matrix
from generator.core.rng import Rng
from generator.core.slips import product_rule, zero
from generator.core.worked import product_step

TITLE = "Example 6: a complete transformer block"
CHAINED = True
OPTIONS = []
TOKENS, D_MODEL, D_FF = 2, 4, 2
# Deviation patterns with σ = 3 (such as (−3, −1, −1, 5)) keep the normalised values in thirds; the ±1 patterns
# enter doubled, as ±2 with σ = 2 (at σ = 1 dividing by σ² instead of σ would go unseen). The ±1 patterns alone
# would make every LayerNorm output ±1, a "notice this" item rather than practice.
@cache
def _narrow() -> list[tuple[int, ...]]:
    return [u if pattern_sigma(u) == 3 else tuple(2 * k for k in u)
            for u in layernorm_patterns() if pattern_sigma(u) in (1, 3) and max(map(abs, u)) <= 5]



CONTRACT = Contract(
    given=Bounds(16, 4, Rational(4)),
    intermediate=Bounds(48, 8, Rational(12)),
    answer=Bounds(48, 8, Rational(12)),
    forbidden={
        "a pre-activation is exactly 0": lambda p: any(v == 0 for v in p.answer("h")),
        "ReLU cuts nothing": lambda p: all(v > 0 for v in p.answer("h")),
        "ReLU cuts everything": lambda p: all(v < 0 for v in p.answer("h")),
        "two tokens get the same attention output": lambda p: p.answer("O").row(0) == p.answer("O").row(1),
        # The text speaks of the last token predicting the next: the first token must not see it.
        "the attention is not causal": lambda p: p.given_value("A")[0, 1] != 0,
        **product_rule("O = A·V", lambda p: (p.given_value("A"), p.given_value("V"))),
        "a token's input is zero (forgetting the residual would not show)": lambda p: has_zero_row(p.given_value("X")),
        "γ₁ is all 1 and β₁ all 0 (forgetting them would not show)": lambda p: _plain_affine(p, "1"),
        "γ₂ is all 1 and β₂ all 0 (forgetting them would not show)": lambda p: _plain_affine(p, "2"),
        **product_rule("h = y₁·W₁ + b₁", lambda p: (p.answer("y1"), p.given_value("W1"), p.answer("h"))),
        **product_rule("f = r·W₂ + b₂", lambda p: (p.answer("r"), p.given_value("W2"), p.answer("r2") - p.answer("y1"))),
        "b₁ is all zeros (forgetting it would not show)": lambda p: zero(p.given_value("b1")),
        "b₂ is all zeros (forgetting it would not show)": lambda p: zero(p.given_value("b2")),
        "a LayerNorm row's mean is 0 (forgetting to subtract it would not show)": lambda p: any(
            m == 0 for m in list(p.answer("mu1")) + [p.answer("mu2")]),
        "a LayerNorm σ is 1 (dividing by σ² would not show)": lambda p: any(
            s == 1 for s in list(p.answer("sigma1")) + [p.answer("sigma2")]),
    },
)


def _plain_affine(p: Problem, which: str) -> bool:
    """γ all 1 and β all 0: the LayerNorm's scale and shift do nothing."""
    return all(g == 1 for g in p.given_value(f"gamma{which}")) and zero(p.given_value(f"beta{which}"))


def _ints(rng: Rng, rows: int, cols: int, low: int, high: int) -> list[list[Fraction]]:
    return [[Fraction(rng.integer(low, high)) for _ in range(cols)] for _ in range(rows)]



def _whole_window(centres: list[Fraction], radius: int) -> list[tuple[int, int]]:
    """Per centre c, the lowest and highest whole k with |k − c| ≤ radius."""
    return [(math.ceil(c - radius), math.floor(c + radius)) for c in centres]


def _plus_row(a, row):
    return [[x + y for x, y in zip(r, row)] for r in a]


@cache
def _quarter_rows(visible: int) -> list[tuple[int, ...]]:
    """The attention weight rows in halves and quarters (attention_weight_row's choice), counted in quarters."""
    return [tuple(int(4 * Fraction(w)) for w in row) for row in weight_rows(visible, halves_and_quarters=True)]


def _weight_row(rng: Rng, visible: int) -> list[int]:
    """attention_weight_row(rng, visible, TOKENS, halves_and_quarters=True) in quarters: the same draws."""
    return rng.shuffled(rng.choice(_quarter_rows(visible))) + [0] * (TOKENS - visible)


def _draw(rng: Rng):
    """One attempt at the whole design, in plain numbers; None when a step would not be clean."""
    # Causal: token i sees tokens 0…i, so the first token attends only to itself.
    # Up to X, which 19 attempts in 20 fail, the numbers are whole in quarters (the weights' denominators divide 4):
    # integer arithmetic there makes an attempt several times cheaper than Fractions.
    a4 = [_weight_row(rng, i + 1) for i in range(TOKENS)]
    v = [[rng.integer(-2, 2) for _ in range(D_MODEL)] for _ in range(TOKENS)]
    o4 = plain_product(a4, v)
    if o4[0] == o4[1]:
        return None
    # The first residual stream is designed; the input X is whatever makes X + O equal it.
    # μ ≠ 0 and σ of 2 or 3 (never 1): a forgotten − μ, or σ² for σ, would otherwise give the same normalised row.
    mus = [rng.choice([-2, -1, 1, 2]) for _ in range(TOKENS)]
    us = [rng.choice(_narrow()) for _ in range(TOKENS)]
    x4 = [[4 * (mu + k) - q for k, q in zip(u, oo)] for mu, u, oo in zip(mus, us, o4)]
    if any(abs(val) > 16 for row in x4 for val in row):  # |X| ≤ 4; its denominators divide 4 by construction
        return None
    a = [[Fraction(w, 4) for w in row] for row in a4]
    x = [[Fraction(val, 4) for val in row] for row in x4]
    gamma1 = [Fraction(rng.choice([1, 2, -1])) for _ in range(D_MODEL)]
    beta1 = _ints(rng, 1, D_MODEL, -1, 1)[0]
    y1 = [[g * k / pattern_sigma(u) + b for g, k, b in zip(gamma1, u, beta1)] for u in us]
    w1 = _ints(rng, D_MODEL, D_FF, -1, 1)
    xw = plain_product(y1, w1)
    if any(abs(val) > 11 for row in xw for val in row):
        return None
    b1 = [Fraction(int(b.p), int(b.q)) for b in hidden_biases(rng, xw, "medium")]  # whole biases keep h in thirds
    h = _plus_row(xw, b1)
    flat = [val for row in h for val in row]
    if any(val == 0 or abs(val) > 8 for val in flat) or not (min(flat) < 0 < max(flat)):
        return None
    r = [[max(val, Fraction(0)) for val in row] for row in h]
    # A symmetric h hides hᵀ; a symmetric r hides rᵀ·W₂; a zero b₁ hides a forgotten bias (see the contract).
    if h[0][1] == h[1][0] or r[0][1] == r[1][0] or not any(b1):
        return None
    w2 = _ints(rng, D_FF, D_MODEL, -1, 1)
    rw2 = plain_product(r, w2)
    # The last token's second residual stream is designed too; b₂ is what makes y₁ + r·W₂ + b₂ equal it.
    last = [p + q for p, q in zip(y1[1], rw2[1])]
    centre = round(sum(last) / D_MODEL)
    # |b₂| ≤ 3: each k of the pattern within 3 of s − μ₂, tested on whole bounds worked once per μ₂, not per pattern.
    close = [(mu2, u) for mu2 in (centre - 1, centre, centre + 1) if mu2 != 0  # μ₂ = 0 would hide a forgotten − μ
             for window in [_whole_window([s - mu2 for s in last], 3)]
             for u in _narrow() if all(low <= k <= high for k, (low, high) in zip(u, window))]
    if not close:
        return None
    mu2, u2 = rng.choice(close)
    b2 = [mu2 + k - s for k, s in zip(u2, last)]
    r2 = [[p + q + b for p, q, b in zip(yy, rr, b2)] for yy, rr in zip(y1, rw2)]
    if any(abs(b) > 3 for b in b2) or any(abs(val) > 10 for row in r2 for val in row) or not any(b2):
        return None
    gamma2 = [Fraction(rng.choice([1, 2, -1])) for _ in range(D_MODEL)]
    beta2 = _ints(rng, 1, D_MODEL, -1, 1)[0]
    return {name: matrix(value) for name, value in (
        ("A", a), ("V", v), ("X", x), ("gamma1", [gamma1]), ("beta1", [beta1]), ("W1", w1), ("b1", [b1]),
        ("W2", w2), ("b2", [b2]), ("gamma2", [gamma2]), ("beta2", [beta2]))}


def generate(rng: Rng, options: dict[str, str]) -> Problem:
    """Design both residual streams so each LayerNorm has a rational σ; give X and b₂ that produce them."""
    drawn = None
    while drawn is None:
        drawn = _draw(rng)
    a, v, x, w1, b1, w2, b2 = (drawn[k] for k in ("A", "V", "X", "W1", "b1", "W2", "b2"))
    gamma1, beta1, gamma2, beta2 = (drawn[k] for k in ("gamma1", "beta1", "gamma2", "beta2"))
    o = a * v
    r1 = x + o
    stats1, mus1, sigmas1 = layernorm_stats_step(r1, [0, 1], lambda i: f"_{i}")
    y1 = ImmutableMatrix([[gamma1[0, j] * (r1[i, j] - mus1[i]) / sigmas1[i] + beta1[0, j] for j in range(D_MODEL)]
                          for i in range(TOKENS)])
    h = y1 * w1 + ImmutableMatrix.vstack(b1, b1)
    r = relu(h)
    f = r * w2 + ImmutableMatrix.vstack(b2, b2)
    r2 = y1 + f
    stats2, mus2, sigmas2 = layernorm_stats_step(r2, [1], lambda i: "")

    q = {name: Quantity(name, Tex(symbol), value) for name, symbol, value in (
        ("O", "O", o), ("r1", "r_1", r1), ("mu1", r"\mu", ImmutableMatrix(TOKENS, 1, mus1)),
        ("sigma1", r"\sigma", ImmutableMatrix(TOKENS, 1, sigmas1)), ("y1", "y_1", y1), ("h", "h", h), ("r", "r", r),
        ("r2", "r_2", r2), ("mu2", r"\mu", mus2[0]), ("sigma2", r"\sigma", sigmas2[0]))}
    y2 = ImmutableMatrix([[gamma2[0, j] * (r2[1, j] - mus2[0]) / sigmas2[0] + beta2[0, j] for j in range(D_MODEL)]])
    q["y2"] = Quantity("y2", Tex("y_2"), y2)
    parts = [
        Part(Tex(r"Attention: compute $O = A\,V$."), (q["O"],),
             (product_step(Tex(r"Row $i$ of $O$ averages the rows of $V$ with token $i$'s weights."), a, v,
                           Tex(r"O = A\,V"), q["O"], expand="row"),)),
        Part(Tex(r"Residual: compute $r_1 = X + O$."), (q["r1"],),
             (add_step(Tex("Add the attention output to the block's input."), x, o, Tex("r_1 = X + O"), q["r1"]),)),
        Part(Tex(r"LayerNorm 1: compute $\mu$ and $\sigma$ of each row of $r_1$."), (q["mu1"], q["sigma1"]),
             (stats1,)),
        Part(Tex(r"LayerNorm 1: compute $y_1 = \gamma_1 \odot (r_1 - \mu)/\sigma + \beta_1$."), (q["y1"],),
             (layernorm_output_step(r1, [0, 1], mus1, sigmas1, gamma1, beta1, q["y1"]),)),
        Part(Tex(r"Feed-forward: compute $h = y_1\,W_1 + b_1$."), (q["h"],),
             (affine_step(Tex(r"Row of $y_1$ times column $j$ of $W_1$, plus $b_1[j]$."), y1, w1, b1,
                          Tex(r"h = y_1\,W_1 + b_1"), q["h"]),)),
        Part(Tex(r"Apply ReLU: $r = \operatorname{ReLU}(h)$."), (q["r"],), (relu_step(h, q["r"]),)),
        Part(Tex(r"Feed-forward output and residual: compute $r_2 = y_1 + r\,W_2 + b_2$."), (q["r2"],),
             (affine_step(Tex(r"Row of $r$ times column $j$ of $W_2$, plus $b_2[j]$."), r, w2, b2,
                          Tex(r"f = r\,W_2 + b_2"), Quantity("f", Tex("f"), f)),
              add_step(Tex("Add the layer's input back."), y1, f, Tex("r_2 = y_1 + f"), q["r2"]))),
        Part(Tex(r"LayerNorm 2, for the last token (row 1 of $r_2$): compute $\mu$ and $\sigma$."),
             (q["mu2"], q["sigma2"]), (stats2,)),
        Part(Tex(r"LayerNorm 2: compute the block's output for the last token, "
                 r"$y_2 = \gamma_2 \odot (r_2[1,:] - \mu)/\sigma + \beta_2$."), (q["y2"],),
             (layernorm_output_step(r2, [1], mus2, sigmas2, gamma2, beta2, q["y2"]),)),
    ]
    given = [Quantity(n, Tex(s), val) for n, s, val in (
        ("X", "X", x), ("A", "A", a), ("V", "V", v), ("gamma1", r"\gamma_1", gamma1), ("beta1", r"\beta_1", beta1),
        ("W1", "W_1", w1), ("b1", "b_1", b1), ("W2", "W_2", w2), ("b2", "b_2", b2),
        ("gamma2", r"\gamma_2", gamma2), ("beta2", r"\beta_2", beta2))]
    return Problem.draft(given=given, parts=parts)

