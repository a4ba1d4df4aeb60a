"""A fast exact first test of the norm=post backward pass: the same pass in whole numbers, every value times one S.

The pass is linear in dz (the forward values, the ReLU mask and the Given weights are fixed), and S is a multiple
of every denominator it can produce, so S·(each gradient) is a whole number and Python's ints do the work that
Fractions would do thirty times slower. The training step's search tries about a hundred output layers per
problem and keeps one: this test turns most away, and backprop.post_backward (in Fractions, the definition)
recomputes the few it lets through.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from math import gcd, lcm

Ints = list[list[int]]


def _mul(a: Ints, b: Ints) -> Ints:
    return [[sum(x * y for x, y in zip(row, col)) for col in zip(*b)] for row in a]


def _t(a: list[list]) -> list[list]:
    return [list(col) for col in zip(*a)]


def _add(*ms: Ints) -> Ints:
    return [[sum(values) for values in zip(*rows)] for rows in zip(*ms)]


def _column_sums(m: Ints) -> Ints:
    return [[sum(col) for col in zip(*m)]]


def _layernorm(upstream: Ints, xhat: list[list[int]], gamma: list[int], sigma: list[Fraction]) -> tuple[Ints, ...]:
    """dγ, dβ, dx̂ and d(input) of one LayerNorm, scaled as `upstream` is (x̂ of ±1 and whole γ keep them whole)."""
    n, d = len(upstream), len(gamma)
    dgamma = [[sum(upstream[i][j] * xhat[i][j] for i in range(n)) for j in range(d)]]
    dxhat = [[v * g for v, g in zip(row, gamma)] for row in upstream]
    dinput = []
    for row, hat, s in zip(dxhat, xhat, sigma):
        m1, m2 = sum(row) // d, sum(v * x for v, x in zip(row, hat)) // d  # exact: S has the factor d
        dinput.append([(v - m1 - x * m2) * s.denominator // s.numerator for v, x in zip(row, hat)])
    return dgamma, _column_sums(upstream), dxhat, dinput


def post_scale(model: dict, dz: list[list[Fraction]]) -> int:
    """S: a multiple of every denominator of the pass (dz's, the means' d, each LayerNorm's σ, each head's weights
    twice: dS = Ã ⊙ (dÃ − Σ Ã·dÃ))."""
    d = len(model["gamma_2"])
    sigmas = lcm(*(s.numerator for s in model["sigma_1"] + model["sigma_2"]))
    weights = lcm(*(p.denominator for head in model["weights"] for row in head for p in row))
    return lcm(*(v.denominator for row in dz for v in row)) * d * d * sigmas * sigmas * weights * weights


def post_gradients_clean(model: dict, dz: list[list[Fraction]], clean: Callable[[int, int], bool]) -> bool:
    """Whether every gradient of backprop.post_backward passes `clean(numerator, denominator)` entry by entry (a
    fraction in lowest terms), stopping at the first that does not."""
    s = post_scale(model, dz)

    def ok(rows: Ints) -> bool:
        for row in rows:
            for v in row:
                g = gcd(v, s)
                if not clean(v // g, s // g):
                    return False
        return True
    n, heads = len(dz), len(model["weights"])
    z = [[int(v * s) for v in row] for row in dz]
    dh2 = _mul(z, _t(model["W_out"]))
    if not (ok(z) and ok(_mul(_t(model["H2"]), z)) and ok(dh2)):
        return False
    second = _layernorm(dh2, model["Rhat2"], model["gamma_2"], model["sigma_2"])
    if not all(map(ok, second)):
        return False
    dr2 = second[-1]
    dr = _mul(dr2, _t(model["W_2"]))
    du = [[v if pre > 0 else 0 for v, pre in zip(row, u_row)] for row, u_row in zip(dr, model["u"])]
    dh1 = _add(dr2, _mul(du, _t(model["W_1"])))
    if not all(ok(m) for m in (_mul(_t(model["r"]), dr2), _column_sums(dr2), dr, du, _mul(_t(model["H1"]), du),
                               _column_sums(du), dh1)):
        return False
    first = _layernorm(dh1, model["Rhat1"], model["gamma_1"], model["sigma_1"])
    dr1 = first[-1]
    do = _mul(dr1, _t(model["W_O"]))
    if not all(ok(m) for m in (*first, _mul(_t(model["o"]), dr1), do)):
        return False
    dq, dk, dv = ([[0] * heads for _ in range(n)] for _ in range(3))
    for h in range(heads):
        weights = model["weights"][h]
        a_den = lcm(*(p.denominator for row in weights for p in row))
        a = [[int(weights[i][j] * a_den) if j <= i else 0 for j in range(n)] for i in range(n)]  # Ã·a_den, whole
        v, q, k = [row[h] for row in model["v"]], [row[h] for row in model["Q"]], [row[h] for row in model["K"]]
        da = [[do[i][h] * v[j] if j <= i else 0 for j in range(n)] for i in range(n)]
        ds = []
        for i in range(n):
            mean = sum(a[i][j] * da[i][j] for j in range(i + 1))  # ḡ·a_den
            ds.append([a[i][j] * (da[i][j] * a_den - mean) // (a_den * a_den) if j <= i else 0 for j in range(n)])
        if not (ok(da) and ok(ds)):
            return False
        for i in range(n):
            dv[i][h] = sum(a[m][i] * do[m][h] for m in range(i, n)) // a_den
            dq[i][h] = sum(ds[i][j] * k[j] for j in range(n))
            dk[i][h] = sum(ds[m][i] * q[m] for m in range(n))
    read = _t(model["x"])
    if not all(ok(m) for m in (dq, dk, dv, _mul(read, dq), _mul(read, dk), _mul(read, dv))):
        return False
    dx = _add(dr1, _mul(dq, _t(model["W_Q"])), _mul(dk, _t(model["W_K"])), _mul(dv, _t(model["W_V"])))
    de = [[0] * len(row) for row in model["E"]]
    for i, token in enumerate(model["ids"][:n]):
        de[token] = [a + b for a, b in zip(de[token], dx[i])]
    return ok(dx) and ok(de)
