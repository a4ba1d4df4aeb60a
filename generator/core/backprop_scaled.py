"""A fast exact first test of the norm=post backward pass: the same pass in whole numbers, every value times one S.

The pass is linear in dz (the forward values, the ReLU mask and the Given weights are fixed), and S is a multiple
of every denominator it can produce, so S·(each gradient) is a whole number and Python's ints do the work that
Fractions would do thirty times slower. The training step's search tries about a hundred output layers per
problem and keeps one: this pass turns most away (unclean, or with a gradient that would not teach), and
backprop.post_backward (in Fractions, the definition) recomputes the few it lets through.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from math import gcd, lcm

from generator.core.forward import plain_product as _mul, plain_transpose as _t

Ints = list[list[int]]


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
    return lcm(*(v.denominator for row in dz for v in row)) * _model_scale(model)


def _model_scale(model: dict) -> int:
    """The part of S the model gives, whatever dz is: d twice, the σ's numerators twice, the weights' denominators
    twice."""
    d = len(model["Rhat1"][0])
    sigmas = lcm(*(s.numerator for s in model["sigma_1"] + model["sigma_2"]))
    weights = lcm(*(p.denominator for head in model["weights"] for row in head for p in row))
    return d * d * sigmas * sigmas * weights * weights


class BelowNorm:
    """The pass below the second LayerNorm (dW_2 … dE) of one block, as linear forms in dR₂'s free numbers.

    Each row of dR₂ (LN₂'s backward of dH₂) is orthogonal to 1 and to its x̂ of ±1, two of each sign: it is (s, −s) on
    the two +1 places and (t, −t) on the two −1 places, and everything below is linear in those 2n numbers (the ReLU
    mask and the heads' weights are fixed by the forward pass). The pass is run once per number (that one `scale`,
    the others 0): each entry's coefficients."""

    def __init__(self, model: dict):
        self.scale = _model_scale(model)
        self.places: list[tuple[int, int]] = []  # where each free number sits in dR₂ (its + place)
        self.runs: list[dict[str, Ints]] = []  # the pass for each free number
        for i, signs in enumerate(model["Rhat2"]):
            for sign in (1, -1):
                first, second = (j for j, x in enumerate(signs) if x == sign)
                dr2 = [[0] * len(signs) for _ in model["Rhat2"]]
                dr2[i][first], dr2[i][second] = self.scale, -self.scale
                g: dict[str, Ints] = {}
                _below_second_norm(model, dr2, lambda name, rows: g.setdefault(name, rows))
                self.runs.append(g)
                self.places.append((i, first))

    def generic(self) -> dict[str, Ints]:
        """Every gradient below for a generic dR₂, as whole numbers: an entry that is 0 here is 0 for every output
        layer, and two entries equal here are equal for every one. Each entry is the whole number whose digits in a
        balanced base past every coefficient are its coefficients: 0 only if all are, equal only if all are."""
        base = 2 * max(abs(v) for g in self.runs for rows in g.values() for row in rows for v in row) + 1
        return {name: [[sum(g[name][i][j] * base ** k for k, g in enumerate(self.runs)) for j in range(len(row))]
                       for i, row in enumerate(rows)] for name, rows in self.runs[0].items()}

    def entries(self, dr2: Ints, name: str) -> Ints:
        """One gradient below, from dR₂ scaled as the pass scales it (S·dR₂, S a multiple of `scale`): S times it."""
        numbers = [dr2[i][j] for i, j in self.places]
        rows = []
        for i, row in enumerate(self.runs[0][name]):
            values = []
            for j in range(len(row)):
                whole, rest = divmod(sum(n * g[name][i][j] for n, g in zip(numbers, self.runs)), self.scale)
                if rest:  # S·(the gradient) is whole, and this is it: a remainder is a bug, never a rounding
                    raise ArithmeticError(f"{name}[{i}][{j}] is not whole at the pass's scale")
                values.append(whole)
            rows.append(values)
        return rows


# The gradients below the second LayerNorm that most output layers fail at: tested first, from their linear forms.
FIRST_TESTED = ("dR1", "dW_O")


class _Unclean(Exception):
    """A gradient failed the test: the rest of the pass is not worth computing."""


def post_gradients_scaled(model: dict, dz: list[list[Fraction]], clean: Callable[[int, int], bool],
                          below: BelowNorm | None = None) -> dict[str, Ints] | None:
    """S times each gradient of backprop.post_backward, under the same names, or None as soon as one entry fails
    `clean(numerator, denominator)` (a fraction in lowest terms). Which entries are 0 is S's business no more than
    the Fractions': the caller may test that here too. With the block's BelowNorm, FIRST_TESTED are tested from
    their linear forms as soon as dR₂ is known (the same verdict, reached sooner for most output layers)."""
    s = post_scale(model, dz)
    g: dict[str, Ints] = {}

    def test(name: str, rows: Ints) -> None:
        for row in rows:
            for v in row:
                d = gcd(v, s)
                if not clean(v // d, s // d):
                    raise _Unclean(name)

    def put(name: str, rows: Ints) -> Ints:
        test(name, rows)
        g[name] = rows
        return rows

    def first_tested(dr2: Ints) -> None:
        if below is not None:
            for name in FIRST_TESTED:
                test(name, below.entries(dr2, name))
    try:
        _scaled_pass(model, [[int(v * s) for v in row] for row in dz], put, first_tested)
    except _Unclean:
        return None
    return g


def _scaled_pass(model: dict, z: Ints, put: Callable[[str, Ints], Ints], first_tested: Callable[[Ints], None]) -> None:
    put("dz", z)
    put("dW_out", _mul(_t(model["H2"]), z))
    dh2 = put("dH2", _mul(z, _t(model["W_out"])))
    *_, dr2 = [put(name, rows) for name, rows in zip(("dgamma_2", "dbeta_2", "dRhat2", "dR2"),
                                                     _layernorm(dh2, model["Rhat2"], model["gamma_2"], model["sigma_2"]))]
    first_tested(dr2)
    _below_second_norm(model, dr2, put)


def _below_second_norm(model: dict, dr2: Ints, put: Callable[[str, Ints], Ints]) -> None:
    """From dR₂ (scaled) to dE: linear in dR₂, the ReLU mask and the heads' weights fixed by the forward pass."""
    n, heads = len(dr2), len(model["weights"])
    put("dW_2", _mul(_t(model["r"]), dr2))
    put("db_2", _column_sums(dr2))
    dr = put("dr", _mul(dr2, _t(model["W_2"])))
    du = put("du", [[v if pre > 0 else 0 for v, pre in zip(row, u_row)] for row, u_row in zip(dr, model["u"])])
    put("dW_1", _mul(_t(model["H1"]), du))
    put("db_1", _column_sums(du))
    dh1 = put("dH1", _add(dr2, _mul(du, _t(model["W_1"]))))
    *_, dr1 = [put(name, rows) for name, rows in zip(("dgamma_1", "dbeta_1", "dRhat1", "dR1"),
                                                     _layernorm(dh1, model["Rhat1"], model["gamma_1"], model["sigma_1"]))]
    put("dW_O", _mul(_t(model["o"]), dr1))
    do = put("dO", _mul(dr1, _t(model["W_O"])))
    dq, dk, dv = ([[0] * heads for _ in range(n)] for _ in range(3))
    for h in range(heads):
        weights = model["weights"][h]
        a_den = lcm(*(p.denominator for row in weights for p in row))
        a = [[int(weights[i][j] * a_den) if j <= i else 0 for j in range(n)] for i in range(n)]  # Ã·a_den, whole
        v, q, k = [row[h] for row in model["v"]], [row[h] for row in model["Q"]], [row[h] for row in model["K"]]
        da = put(f"dA{h + 1}", [[do[i][h] * v[j] if j <= i else 0 for j in range(n)] for i in range(n)])
        ds = []
        for i in range(n):
            mean = sum(a[i][j] * da[i][j] for j in range(i + 1))  # ḡ·a_den
            ds.append([a[i][j] * (da[i][j] * a_den - mean) // (a_den * a_den) if j <= i else 0 for j in range(n)])
        put(f"dS{h + 1}", ds)
        for i in range(n):
            dv[i][h] = sum(a[m][i] * do[m][h] for m in range(i, n)) // a_den
            dq[i][h] = sum(ds[i][j] * k[j] for j in range(n))
            dk[i][h] = sum(ds[m][i] * q[m] for m in range(n))
    read = _t(model["x"])
    for name, rows in (("dQ", dq), ("dK", dk), ("dV", dv)):
        put(name, rows)
        put("dW_" + name[1], _mul(read, rows))
    dx = put("dX", _add(dr1, _mul(dq, _t(model["W_Q"])), _mul(dk, _t(model["W_K"])), _mul(dv, _t(model["W_V"]))))
    put("dP", dx)
    de = [[0] * len(row) for row in model["E"]]
    for i, token in enumerate(model["ids"][:n]):
        de[token] = [a + b for a, b in zip(de[token], dx[i])]
    put("dE", de)
