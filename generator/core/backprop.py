"""The tiny transformer's backward pass and one AdamW step in plain Fractions: fast enough to test every draw."""

from __future__ import annotations

from fractions import Fraction
from typing import Callable

from generator.core.forward import plain_product, plain_transpose

Rows = list[list[Fraction]]


def _column_sums(m: Rows) -> Rows:
    """A bias's gradient: the bias is added to every row, so its gradient adds up the rows."""
    return [[sum(column, Fraction(0)) for column in zip(*m)]]


def _add(*ms: Rows) -> Rows:
    return [[sum(values, Fraction(0)) for values in zip(*rows)] for rows in zip(*ms)]


def _column(m: list[list], h: int) -> list:
    return [row[h] for row in m]


class _Unclean(Exception):
    """A gradient failed the caller's test: the rest of the pass is not worth computing."""


class _Gradients(dict):
    """The gradients so far; each one stored is tested at once, so a draw that will be refused stops early."""

    def __init__(self, clean: Callable[[Rows], bool] | None) -> None:
        super().__init__()
        self.clean = clean

    def __setitem__(self, name: str, rows: Rows) -> None:
        if self.clean is not None and not self.clean(rows):
            raise _Unclean(name)
        super().__setitem__(name, rows)


def tiny_backward(model: dict, p_rows: Rows, targets: list[int], scale: Fraction,
                  clean: Callable[[Rows], bool] | None = None) -> dict[str, Rows] | None:
    """Every gradient, named as the sheet's blanks, from dL/dz = scale·(p̃ − onehot) back to E and P.

    `model` holds the forward values (tiny_transformer.draw_front's keys plus Q, K, xhat, sigma, H2, W_2, b_2, W_out;
    with GELU also "slopes", the Given slope of each pre-activation);
    attention uses the Given weights, as the sheet does. Masked entries of dÃ are 0: the mask holds those weights at 0.
    With `clean`, None as soon as one gradient fails it.
    """
    try:
        return _backward(model, p_rows, targets, scale, _Gradients(clean))
    except _Unclean:
        return None


def post_backward(model: dict, p_rows: Rows, targets: list[int], scale: Fraction,
                  clean: Callable[[Rows], bool] | None = None) -> dict[str, Rows] | None:
    """tiny_backward for Add & Norm after each sublayer (norm=post): R₁ = X + O·W_O, H₁ = LN₁(R₁), R₂ = H₁ + FFN(H₁),
    H₂ = LN₂(R₂). `model` holds tiny_transformer.draw_post_front's keys plus Q, K, v, sigma_1, sigma_2, gamma_2, H2,
    W_out. The gradients of R₂, H₁ and R₁ are dR2, dH1 and dR1; the LayerNorms' are dgamma_1, dbeta_1 and so on."""
    try:
        return _post_backward(model, p_rows, targets, scale, _Gradients(clean))
    except _Unclean:
        return None


def _backward(model: dict, p_rows: Rows, targets: list[int], scale: Fraction, g: _Gradients) -> dict[str, Rows]:
    n = len(p_rows)
    _output_backward(model, p_rows, targets, scale, g)
    _feed_forward_backward(model, g, "dH2")
    g["dH1"] = _add(g["dH2"], plain_product(g["du"], plain_transpose(model["W_1"])))
    g["dW_O"] = plain_product(plain_transpose(model["o"]), g["dH1"])
    g["dO"] = plain_product(g["dH1"], plain_transpose(model["W_O"]))
    _heads_backward(model, g, model["y"], n)
    g["dY"] = _add(g["dH1"], *_projection_paths(model, g))
    _layernorm_backward(g, g["dY"], model["xhat"], model["gamma"], model["sigma"], ("dgamma", "dbeta", "dxhat", "dX"))
    _embeddings_backward(model, g, n)
    return dict(g)


def _post_backward(model: dict, p_rows: Rows, targets: list[int], scale: Fraction, g: _Gradients) -> dict[str, Rows]:
    n = len(p_rows)
    _output_backward(model, p_rows, targets, scale, g)
    _layernorm_backward(g, g["dH2"], model["Rhat2"], model["gamma_2"], model["sigma_2"],
                        ("dgamma_2", "dbeta_2", "dRhat2", "dR2"))
    _feed_forward_backward(model, g, "dR2")
    g["dH1"] = _add(g["dR2"], plain_product(g["du"], plain_transpose(model["W_1"])))
    _layernorm_backward(g, g["dH1"], model["Rhat1"], model["gamma_1"], model["sigma_1"],
                        ("dgamma_1", "dbeta_1", "dRhat1", "dR1"))
    g["dW_O"] = plain_product(plain_transpose(model["o"]), g["dR1"])
    g["dO"] = plain_product(g["dR1"], plain_transpose(model["W_O"]))
    _heads_backward(model, g, model["x"], n)
    g["dX"] = _add(g["dR1"], *_projection_paths(model, g))  # the residual and the three projections
    _embeddings_backward(model, g, n)
    return dict(g)


def output_gradient(p_rows: Rows, targets: list[int], scale: Fraction) -> Rows:
    """dz = scale·(p̃ − onehot): each row's probabilities less 1 at its target (scale ½ for the mean over 2)."""
    return [[scale * (p - (1 if j == t else 0)) for j, p in enumerate(row)] for row, t in zip(p_rows, targets)]


def _output_backward(model: dict, p_rows: Rows, targets: list[int], scale: Fraction, g: _Gradients) -> None:
    """dz = scale·(p̃ − onehot), dW_out = H₂ᵀ·dz, dH₂ = dz·W_outᵀ."""
    g["dz"] = output_gradient(p_rows, targets, scale)
    g["dW_out"] = plain_product(plain_transpose(model["H2"]), g["dz"])
    g["dH2"] = plain_product(g["dz"], plain_transpose(model["W_out"]))


def _feed_forward_backward(model: dict, g: _Gradients, upstream: str) -> None:
    """From the gradient of the feed-forward sum (dH2, or dR2 with Add & Norm) to dW_2, db_2, dr, du, dW_1, db_1."""
    g["dW_2"] = plain_product(plain_transpose(model["r"]), g[upstream])
    g["db_2"] = _column_sums(g[upstream])
    g["dr"] = plain_product(g[upstream], plain_transpose(model["W_2"]))
    if "slopes" in model:  # GELU: each entry's Given slope s̃ (tiny_transformer.GELU_SLOPE)
        g["du"] = [[d * s for d, s in zip(drow, srow)] for drow, srow in zip(g["dr"], model["slopes"])]
    else:
        g["du"] = [[d if pre > 0 else Fraction(0) for d, pre in zip(drow, urow)] for drow, urow in zip(g["dr"], model["u"])]
    g["dW_1"] = plain_product(plain_transpose(model["H1"]), g["du"])
    g["db_1"] = _column_sums(g["du"])


def _heads_backward(model: dict, g: _Gradients, read: Rows, n: int) -> None:
    """From dO through each head's Given weights to dÃ, dS, dQ, dK, dV and the projections' weights (`read`: what the
    heads read, Y or X)."""
    heads = len(model["weights"])
    dq, dk, dv = ([[Fraction(0)] * heads for _ in range(n)] for _ in range(3))
    for h in range(heads):
        a = model["weights"][h]  # visible rows: a[i] has i + 1 entries
        do, v, q, k = _column(g["dO"], h), _column(model["v"], h), _column(model["Q"], h), _column(model["K"], h)
        da = [[do[i] * v[j] if j <= i else Fraction(0) for j in range(n)] for i in range(n)]
        ds = []
        for i in range(n):
            mean = sum((a[i][j] * da[i][j] for j in range(i + 1)), Fraction(0))
            ds.append([a[i][j] * (da[i][j] - mean) if j <= i else Fraction(0) for j in range(n)])
        g[f"dA{h + 1}"], g[f"dS{h + 1}"] = da, ds
        for i in range(n):
            dv[i][h] = sum((a[m][i] * do[m] for m in range(i, n)), Fraction(0))
            dq[i][h] = sum((ds[i][j] * k[j] for j in range(n)), Fraction(0))  # scale 1/√d_head = 1
            dk[i][h] = sum((ds[m][i] * q[m] for m in range(n)), Fraction(0))
    g["dQ"], g["dK"], g["dV"] = dq, dk, dv
    read_t = plain_transpose(read)
    g["dW_Q"], g["dW_K"], g["dW_V"] = (plain_product(read_t, d) for d in (dq, dk, dv))


def _projection_paths(model: dict, g: _Gradients) -> list[Rows]:
    """dQ·W_Qᵀ, dK·W_Kᵀ and dV·W_Vᵀ: what the heads' input gets through the three projections."""
    return [plain_product(g[d], plain_transpose(model[w])) for d, w in (("dQ", "W_Q"), ("dK", "W_K"), ("dV", "W_V"))]


def _layernorm_backward(g: _Gradients, upstream: Rows, xhat: Rows, gamma: list, sigma: list,
                        names: tuple[str, str, str, str]) -> None:
    """One LayerNorm (out = γ ⊙ x̂ + β, ε = 0) from its output's gradient: dγ, dβ, dx̂ = d(out) ⊙ γ and d(input),
    stored under `names` in that order."""
    n = len(upstream)
    dgamma, dbeta, dxhat, dinput = names
    g[dgamma] = [[sum((upstream[i][j] * xhat[i][j] for i in range(n)), Fraction(0)) for j in range(len(gamma))]]
    g[dbeta] = _column_sums(upstream)
    g[dxhat] = [[d * gm for d, gm in zip(row, gamma)] for row in upstream]
    g[dinput] = [layernorm_row_parts(xhat[i], g[dxhat][i], sigma[i])[-1] for i in range(n)]


def _embeddings_backward(model: dict, g: _Gradients, n: int) -> None:
    """dP = dX, and each token's row of dE adds up the rows of dX where it was used."""
    g["dP"] = g["dX"]
    d_e = [[Fraction(0)] * len(row) for row in model["E"]]
    for i, token in enumerate(model["ids"][:n]):
        d_e[token] = [a + b for a, b in zip(d_e[token], g["dX"][i])]  # a token used twice gets both rows' gradients
    g["dE"] = d_e


def layernorm_row_parts(xhat: list[Fraction], dxhat: list[Fraction], sigma: Fraction) -> tuple[list[Fraction], ...]:
    """One LayerNorm row's backward pass (ε = 0): the means, the products dx̂ ⊙ x̂, the x̂ term, the bracket g and dx."""
    d = len(xhat)
    m1 = sum(dxhat, Fraction(0)) / d
    products = [a * b for a, b in zip(dxhat, xhat)]
    m2 = sum(products, Fraction(0)) / d
    tail = [v * m2 for v in xhat]
    g = [a - m1 - t for a, t in zip(dxhat, tail)]
    return [m1, m2], products, tail, g, [v / sigma for v in g]


def adamw_first_step(theta: Rows, grad: Rows, lr: Fraction, beta1: Fraction, beta2: Fraction,
                     decay: Fraction) -> dict[str, Rows]:
    """AdamW's first step with ε = 0: m, v, their bias-corrected m̂ = g and v̂ = g², the decay and the new θ.

    Every gradient entry must be non-zero (with ε = 0 a zero would give 0/0); then √v̂ = |g| is exact.
    """
    if any(x == 0 for row in grad for x in row):
        raise ValueError("AdamW with ε = 0 needs non-zero gradients")
    m = [[(1 - beta1) * x for x in row] for row in grad]
    v = [[(1 - beta2) * x * x for x in row] for row in grad]
    m_hat = [[x / (1 - beta1) for x in row] for row in m]
    v_hat = [[x / (1 - beta2) for x in row] for row in v]
    decayed = [[x * (1 - lr * decay) for x in row] for row in theta]
    new = [[t - lr * mh / abs(g) for t, mh, g in zip(trow, mrow, grow)] for trow, mrow, grow in zip(decayed, m_hat, grad)]
    return {"m": m, "v": v, "m_hat": m_hat, "v_hat": v_hat, "decayed": decayed, "new": new}
