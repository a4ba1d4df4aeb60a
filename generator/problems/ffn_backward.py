"""Backward through the position-wise feed-forward block on its own: Y = ReLU(X·W₁ + b₁)·W₂ + b₂ (+ X)."""

from __future__ import annotations

from dataclasses import replace

from sympy import ImmutableMatrix, Rational

from generator.core.draws import all_zero
from generator.core.forward import add_step, affine_step, plain_product, plain_transpose, relu_step
from generator.core.problem import Bounds, Contract, Part, Problem, Quantity, Step, Tex, matrix
from generator.core.registry import Option
from generator.core.rng import Rng
from generator.core.slips import plain_slip_hidden, symmetric
from generator.core.worked import product_step, shape_check, shape_text, sum_rows_step
from generator.documents.render import matrix_tex, number_tex

TITLE = "Backward through the feed-forward block"
# GELU is not offered: its slope Φ(z) + z·φ(z) is irrational at every z ≠ 0, so ∂L/∂Z and everything after it
# (dW₁, db₁, dX) would be 4-place decimals carried through three products, not exact values.
OPTIONS = [
    Option("tokens", ("1", "2"), "2", "rows of X (d_model = 2)"),
    Option("d_ff", ("2", "3"), "3", "hidden width (columns of W_1)"),
    Option("residual", ("no", "yes"), "no", "Y = FFN(X), or the block with its skip path, Y = X + FFN(X)"),
    Option("forward", ("stored", "compute"), "stored",
           "stored: the forward pass's Z is printed, as a backward pass reads it from memory; compute: the student "
           "recomputes Z = X·W_1 + b_1 first"),
]
D_MODEL = 2
NONZERO = (-2, -1, 1, 2)  # X and dY: no 0, so every product and every cut entry shows
WEIGHTS = (-2, -1, 0, 1, 2)
BIASES = (-2, -1, 1, 2)
PRE_LIMIT = 6  # |Z| at most: H and every gradient stay small
GRADIENT_LIMIT = 16  # every gradient entry at most
SECOND_TRIES = 8  # second layers (W₂, dY) tried per clean first layer before a new first layer is drawn


def _residual(p: Problem) -> bool:
    return p.options.get("residual") == "yes"


def _pre(p: Problem) -> ImmutableMatrix:
    return p.facts["Z"] if "Z" in p.facts else p.answer("Z")


def _dx_branch(p: Problem) -> ImmutableMatrix:
    return p.answer("dX_ffn") if _residual(p) else p.answer("dX")


def _ints(m: ImmutableMatrix) -> list[list[int]]:
    """A matrix of whole numbers (every value of this type is one) as plain ints, for the fast slip checks."""
    return [[int(v) for v in row] for row in m.tolist()]


def _ints_t(m: ImmutableMatrix) -> list[list[int]]:
    """The transpose of a whole-number matrix as plain ints."""
    return plain_transpose(_ints(m))


def _slip_rule(label: str, factors) -> dict:
    """slips.product_rule on plain ints (plain_slip_hidden is hidden_product_slips without sympy's arithmetic):
    factors(p) gives (A, B) or (A, B, answer) as plain rows."""
    return {f"a slip in {label} (transpose, order) gives the same answer": lambda p: plain_slip_hidden(*factors(p))}


CONTRACT = Contract(
    given=Bounds(PRE_LIMIT, 1, Rational(PRE_LIMIT)),  # X, W, b, dY in ±2; the stored Z within ±6
    intermediate=Bounds(GRADIENT_LIMIT * 2, 1, Rational(GRADIENT_LIMIT * 2)),
    answer=Bounds(GRADIENT_LIMIT * 2, 1, Rational(GRADIENT_LIMIT * 2)),
    forbidden={
        # ReLU's derivative at exactly 0 is a convention, not this lesson: never drawn.
        "a pre-activation is exactly 0": lambda p: any(v == 0 for v in _pre(p)),
        "ReLU passes everything": lambda p: all(v > 0 for v in _pre(p)),
        "ReLU blocks everything": lambda p: all(v < 0 for v in _pre(p)),
        "a zeroed entry had no gradient to lose": lambda p: all(
            g == 0 for g, z in zip(p.answer("dH"), _pre(p)) if z < 0),
        # Multiplying by H instead of the mask, or skipping W₂ᵀ (dY for dH where d_ff = 2), must give another dZ.
        "dH ⊙ H gives the same dZ (every kept Z is 1)": lambda p: p.answer("dH").multiply_elementwise(p.answer("H")) == p.answer("dZ"),
        "dH equals dY (a forgotten W₂ᵀ would not show)": lambda p: p.answer("dH") == p.given_value("dY"),
        "ReLU of the gradient gives the same ∂L/∂Z": lambda p: p.answer("dH").applyfunc(lambda g: max(g, 0)) == p.answer("dZ"),
        # With two tokens, each unit passes at least one of them: a unit cut everywhere only adds zero rows and columns.
        "a hidden unit is cut for every one of 2 tokens": lambda p: _pre(p).rows > 1 and any(
            all(v < 0 for v in column) for column in zip(*_pre(p).tolist())),
        "b₁ is all zeros (forgetting it would not show)": lambda p: all_zero(p.given_value("b1")),
        "a gradient is all zeros": lambda p: any(all_zero(p.answer(n)) for n in ("dW2", "dH", "dZ", "dW1", "db1", "dX")),
        "dX_ffn equals dY (the skip's gradient looks like the branch's)": lambda p: _dx_branch(p) == p.given_value("dY"),
        "W₁ or W₂ has a zero row or column (an idle unit)": lambda p: not all(
            _nonzero_lines(_ints(p.given_value(name))) for name in ("W1", "W2")),
        "a square gradient is symmetric (a transposed answer looks right)": lambda p: any(
            symmetric(p.answer(n)) for n in ("dW2", "dW1")),
        **_slip_rule("Z = X·W₁ + b₁", lambda p: (_ints(p.given_value("X")), _ints(p.given_value("W1")), _ints(_pre(p)))),
        **_slip_rule("dW₂ = Hᵀ·dY", lambda p: (_ints_t(p.answer("H")), _ints(p.given_value("dY")))),
        **_slip_rule("dH = dY·W₂ᵀ", lambda p: (_ints(p.given_value("dY")), _ints_t(p.given_value("W2")))),
        **_slip_rule("dW₁ = Xᵀ·dZ", lambda p: (_ints_t(p.given_value("X")), _ints(p.answer("dZ")))),
        **_slip_rule("dZ·W₁ᵀ (dX, or the FFN's share of it)", lambda p: (_ints(p.answer("dZ")), _ints_t(p.given_value("W1")))),
        **_slip_rule("dX = dY + dZ·W₁ᵀ", lambda p: (_ints(p.answer("dZ")), _ints_t(p.given_value("W1")), _ints(p.answer("dX")))),
    },
)


def _nonzero_lines(m: list[list[int]]) -> bool:
    """No row and no column all zeros."""
    return all(any(row) for row in m) and all(any(col) for col in zip(*m))


def _first_layer(rng: Rng, n: int, dff: int) -> tuple | None:
    """X, W₁ and b₁ (each bias picked among those that leave no Z at 0 and every Z within ±6); None if unclean."""
    x = [[rng.choice(NONZERO) for _ in range(D_MODEL)] for _ in range(n)]
    w1 = [[rng.choice(WEIGHTS) for _ in range(dff)] for _ in range(D_MODEL)]
    if not _nonzero_lines(w1):
        return None
    xw = plain_product(x, w1)
    b1 = []
    for column in zip(*xw):
        fits = [b for b in BIASES if all(v + b != 0 and abs(v + b) <= PRE_LIMIT for v in column)]
        if not fits:
            return None
        b1.append(rng.choice(fits))
    z = [[v + b for v, b in zip(row, b1)] for row in xw]
    flat = [v for row in z for v in row]
    if all(v > 0 for v in flat) or all(v < 0 for v in flat):
        return None
    if n > 1 and any(all(v < 0 for v in col) for col in zip(*z)):
        return None  # a unit cut for every token
    if plain_slip_hidden(x, w1, z):
        return None
    return x, w1, b1, z


def _search(rng: Rng, n: int, dff: int, residual: bool) -> dict | None:
    """One draw in plain ints; None when any forbidden case (or a bound) is met."""
    first = _first_layer(rng, n, dff)
    if first is None:
        return None
    x, w1, b1, z = first
    h = [[max(v, 0) for v in row] for row in z]
    for _ in range(SECOND_TRIES):
        found = _second_layer(rng, x, w1, b1, z, h, residual)
        if found is not None:
            return found
    return None


def _second_layer(rng: Rng, x, w1, b1, z, h, residual: bool) -> dict | None:
    """W₂ and dY for a clean first layer, and every gradient; None when any forbidden case (or a bound) is met."""
    dff, n = len(b1), len(x)
    w2 = [[rng.choice(WEIGHTS) for _ in range(D_MODEL)] for _ in range(dff)]
    dy = [[rng.choice(NONZERO) for _ in range(D_MODEL)] for _ in range(n)]
    if not _nonzero_lines(w2):
        return None
    t = plain_transpose
    dw2, dh = plain_product(t(h), dy), plain_product(dy, t(w2))
    dz = [[g if v > 0 else 0 for g, v in zip(grow, zrow)] for grow, zrow in zip(dh, z)]
    if all(g == 0 for grow, zrow in zip(dh, z) for g, v in zip(grow, zrow) if v < 0):
        return None  # the mask cut nothing that carried a gradient
    if dz == [[max(g, 0) for g in row] for row in dh] or dh == dy:
        return None
    if dz == [[g * v for g, v in zip(grow, hrow)] for grow, hrow in zip(dh, h)]:
        return None
    dw1, db1 = plain_product(t(x), dz), [sum(col) for col in zip(*dz)]
    branch = plain_product(dz, t(w1))
    dx = [[a + b for a, b in zip(r, s)] for r, s in zip(dy, branch)] if residual else branch
    grads = (dw2, dh, dz, dw1, [db1], dx)
    if any(not any(v for row in g for v in row) for g in grads) or branch == dy:
        return None
    if any(abs(v) > GRADIENT_LIMIT for g in grads + (branch,) for row in g for v in row):
        return None
    if any(len(g) == len(g[0]) > 1 and g == t(g) for g in (dw2, dw1)):
        return None
    products = ((t(h), dy, None), (dy, t(w2), None), (t(x), dz, None), (dz, t(w1), None), (dz, t(w1), dx))
    if any(plain_slip_hidden(a, b, answer) for a, b, answer in products):
        return None
    b2 = [rng.choice(BIASES) for _ in range(D_MODEL)]
    return {"X": x, "W1": w1, "b1": [b1], "W2": w2, "b2": [b2], "dY": dy, "Z": z, "H": h, "mask": [[int(v > 0) for v in row] for row in z],
            "dW2": dw2, "db2": [[sum(col) for col in zip(*dy)]], "dH": dh, "dZ": dz, "dW1": dw1, "db1": [db1],
            "branch": branch, "dX": dx}


def _draw(rng: Rng, n: int, dff: int, residual: bool) -> dict[str, ImmutableMatrix]:
    """Redrawn on plain ints until clean (built here, so the registry never redraws)."""
    while True:
        found = _search(rng, n, dff, residual)
        if found is not None:
            return {name: matrix(rows) for name, rows in found.items()}


def _mask_lines(z: ImmutableMatrix, mask: ImmutableMatrix, dh: ImmutableMatrix, dz: ImmutableMatrix) -> tuple[Tex, ...]:
    """One line per token: which hidden units pass their gradient and which are cut."""
    lines = []
    for i in range(z.rows):
        kept = [f"Z[{i},{j}] = {number_tex(z[i, j])} > 0" for j in range(z.cols) if z[i, j] > 0]
        cut = [f"Z[{i},{j}] = {number_tex(z[i, j])} < 0" for j in range(z.cols) if z[i, j] < 0]
        text = r"\text{row " + str(i) + ": }"
        if kept:
            text += r"\text{kept where }" + ",\\ ".join(kept)
        if cut:
            text += (r";\ " if kept else "") + r"\text{zeroed where }" + ",\\ ".join(cut)
        lines.append(Tex(text))
    lines.append(Tex(f"dZ = {matrix_tex(dh)} \\odot {matrix_tex(mask)} = {matrix_tex(dz)}"))
    return tuple(lines)


def generate(rng: Rng, options: dict[str, str]) -> Problem:
    """Draw X, W₁, b₁, W₂, b₂ and dY; recompute Z and H, then backpropagate layer by layer."""
    n, dff, residual = int(options["tokens"]), int(options["d_ff"]), options["residual"] == "yes"
    g = _draw(rng, n, dff, residual)
    x, w1, b1, w2, b2, dy, z, h, dh, dz, branch = (g[k] for k in ("X", "W1", "b1", "W2", "b2", "dY", "Z", "H", "dH", "dZ", "branch"))
    q = {name: Quantity(name, Tex(symbol), g[name]) for name, symbol in (
        ("Z", "Z"), ("H", "H"), ("dW2", "dW_2"), ("db2", "db_2"), ("dH", "dH"), ("dZ", "dZ"), ("dW1", "dW_1"), ("db1", "db_1"))}
    mask_q = Quantity("mask", Tex(r"\mathbf{1}[Z > 0]"), g["mask"])
    relu_steps = (relu_step(z, q["H"], pre_symbol="Z"),
                  Step(text=Tex(r"ReLU's slope is 1 where $Z > 0$ and 0 where $Z < 0$ (no entry of $Z$ is exactly 0)."),
                       formula=Tex(r"\operatorname{ReLU}'(Z) = \mathbf{1}[Z > 0]"), result=mask_q))
    if options["forward"] == "compute":
        first = Part(Tex(r"Recompute the forward values the backward pass needs: $Z = X\,W_1 + b_1$, $H = \operatorname{ReLU}(Z)$ "
                         r"and the mask $\mathbf{1}[Z > 0]$."),
                     (q["Z"], q["H"], mask_q),
                     (affine_step(Tex(r"Row $i$ of $X$ times column $j$ of $W_1$, plus $b_1[j]$."), x, w1, b1,
                                  Tex(r"Z = X\,W_1 + b_1"), q["Z"], expand="all"),) + relu_steps)
    else:
        first = Part(Tex(r"From the stored $Z$, write $H = \operatorname{ReLU}(Z)$ and the mask $\mathbf{1}[Z > 0]$."),
                     (q["H"], mask_q),
                     (replace(relu_steps[0], checks=(Tex(r"\text{A check of the stored values: } Z = X\,W_1 + b_1."),)),
                      relu_steps[1]))
    parts = [
        first,
        Part(Tex(r"The second layer" + (r" (the FFN's output receives $dY$ unchanged: the skip's $+$ copies it)" if residual else "")
                 + r": compute $dW_2 = H^{\mathsf T} dY$, $db_2$ (the column sums of $dY$) and $dH = dY\,W_2^{\mathsf T}$."),
             (q["dW2"], q["db2"], q["dH"]),
             (product_step(Tex(r"Row $i$ of $H^{\mathsf T}$ (column $i$ of $H$) times column $j$ of $dY$."), h.T, dy,
                           Tex(r"dW_2 = H^{\mathsf T} dY"), q["dW2"], expand="row", checks=(shape_check(h.T * dy, "W_2"),)),
              sum_rows_step(Tex(r"$b_2$ is added to every token's row, so its gradient adds up the rows of $dY$ "
                                 r"(the value of $b_2$ itself never enters a gradient)."), dy, "dY", q["db2"]),
              product_step(Tex(r"Row $i$ of $dY$ times column $j$ of $W_2^{\mathsf T}$ (row $j$ of $W_2$)."), dy, w2.T,
                           Tex(r"dH = dY\,W_2^{\mathsf T}"), q["dH"], expand="row",
                           checks=(Tex(f"dH \\text{{ has the shape of }} H\\text{{: }} {shape_text(dh)}."),)))),
        Part(Tex(r"Through the ReLU: compute $dZ = dH \odot \mathbf{1}[Z > 0]$."), (q["dZ"],),
             (Step(text=Tex(r"ReLU's slope is 1 where $Z > 0$ and 0 where $Z < 0$ (no entry of $Z$ is exactly 0): the gradient "
                            "passes where ReLU passed its input and is zeroed where it cut it."),
                   formula=Tex(r"dZ = dH \odot \mathbf{1}[Z > 0]"), lines=_mask_lines(z, g["mask"], dh, dz), result=q["dZ"],
                   checks=(Tex(r"\text{The zeros of the mask are the zeros of } H\text{: a unit ReLU cut learns nothing from this token.}"),)),)),
        Part(Tex(r"The first layer: compute $dW_1 = X^{\mathsf T} dZ$ and $db_1$ (the column sums of $dZ$)."),
             (q["dW1"], q["db1"]),
             (product_step(Tex(r"Row $i$ of $X^{\mathsf T}$ (column $i$ of $X$) times column $j$ of $dZ$."), x.T, dz,
                           Tex(r"dW_1 = X^{\mathsf T} dZ"), q["dW1"], expand="row", checks=(shape_check(x.T * dz, "W_1"),)),
              sum_rows_step(Tex(r"$b_1$ is added to every token's row, so its gradient adds up the rows of $dZ$."),
                             dz, "dZ", q["db1"]))),
        _input_part(x, w1, dy, dz, branch, residual),
    ]
    shape = Tex(r"Y = X + \operatorname{ReLU}(X\,W_1 + b_1)\,W_2 + b_2" if residual
                else r"Y = \operatorname{ReLU}(X\,W_1 + b_1)\,W_2 + b_2")
    given = [Quantity("X", Tex("X"), x), Quantity("W1", Tex("W_1"), w1), Quantity("b1", Tex("b_1"), b1),
             Quantity("W2", Tex("W_2"), w2), Quantity("b2", Tex("b_2"), b2), Quantity("dY", Tex("dY"), dy)]
    facts = {"block": shape, "forward": options["forward"]}
    if options["forward"] == "stored":
        facts["Z"] = z
    return Problem.draft(given=given, parts=parts, facts=facts)


def _input_part(x, w1, dy, dz, branch, residual: bool) -> Part:
    """dX through W₁; with the skip path, dY added on top."""
    product_text = Tex(r"Row $i$ of $dZ$ times column $j$ of $W_1^{\mathsf T}$ (row $j$ of $W_1$).")
    if not residual:
        dx_q = Quantity("dX", Tex("dX"), branch)
        return Part(Tex(r"The input: compute $dX = dZ\,W_1^{\mathsf T}$."), (dx_q,),
                    (product_step(product_text, dz, w1.T, Tex(r"dX = dZ\,W_1^{\mathsf T}"), dx_q,
                                  checks=(Tex(f"dX \\text{{ has the shape of }} X\\text{{: }} {shape_text(x)}."),)),))
    branch_q = Quantity("dX_ffn", Tex(r"dX_{\text{FFN}}"), branch)
    dx_q = Quantity("dX", Tex("dX"), dy + branch)
    return Part(Tex(r"The input: $X$ reached $Y$ twice, through the FFN and along the skip path. Compute the FFN's share "
                    r"$dX_{\text{FFN}} = dZ\,W_1^{\mathsf T}$, then $dX = dY + dX_{\text{FFN}}$."),
                (branch_q, dx_q),
                (product_step(product_text, dz, w1.T, Tex(r"dX_{\text{FFN}} = dZ\,W_1^{\mathsf T}"), branch_q),
                 add_step(Tex(r"The skip path's local derivative is 1, so it adds $dY$ unchanged to the FFN's share."),
                          dy, branch, Tex(r"dX = dY + dX_{\text{FFN}}"), dx_q, expand="all",
                          checks=(Tex(f"dX \\text{{ has the shape of }} X\\text{{: }} {shape_text(x)}."),
                                  Tex(r"\text{Without the skip path, } dX \text{ would be only } dX_{\text{FFN}} = "
                                      + matrix_tex(branch) + ".")))))
