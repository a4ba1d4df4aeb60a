"""Backward through a residual connection h = x + F(x): the merge copies ∂L/∂h to both paths, the split adds them."""

from __future__ import annotations

from sympy import ImmutableMatrix, Rational

from generator.core.draws import all_zero, has_zero_row
from generator.core.forward import add_step, plain_product, plain_transpose
from generator.core.problem import Bounds, Contract, Part, Problem, Quantity, Step, Tex
from generator.core.registry import Option
from generator.documents.render import matrix_tex, number_tex
from generator.core.rng import Rng
from generator.core.slips import plain_slip_hidden, product_rule
from generator.core.worked import entry_label, product_step, shape_text

TITLE = "Backward through a residual connection"
OPTIONS = [
    Option("tokens", ("1", "2"), "2", "rows of x (d_model = 2)"),
    Option("sublayer", ("linear", "relu"), "linear", "F(x) = x·W, or F(x) = ReLU(x·W)"),
]
D_MODEL = 2
NONZERO = (-2, -1, 1, 2)  # x and dh: no 0, so every product and every cut entry shows



def _pre(p: Problem) -> ImmutableMatrix:
    """u = x·W, the sublayer's pre-activation (recomputed from the givens)."""
    return p.given_value("x") * p.given_value("W")


def _upstream(p: Problem) -> ImmutableMatrix:
    """The gradient that enters x·W: du with ReLU, dF (= dh) without."""
    return p.answer("du") if _relu(p) else p.given_value("dh")


def _parallel_rows(rows: list[list[int]]) -> bool:
    """Two rows equal or opposite: the second token would repeat the first one's lesson."""
    return len(rows) == 2 and (rows[0] == rows[1] or rows[0] == [-v for v in rows[1]])


def _mask(u: ImmutableMatrix) -> ImmutableMatrix:
    """1[u > 0] entry by entry."""
    return u.applyfunc(lambda v: Rational(1) if v > 0 else Rational(0))


def _relu(p: Problem) -> bool:
    return p.options.get("sublayer") == "relu"


CONTRACT = Contract(
    # Measured over 2,000 seeds, and also the most the draws allow: u and dW reach 2·2 + 2·2 = 8,
    # dx = dh + dx_branch reaches 2 + 8 = 10 (the sum's expansion is an intermediate too).
    given=Bounds(2, 1, Rational(2)),
    intermediate=Bounds(10, 1, Rational(10)),
    answer=Bounds(10, 1, Rational(10)),
    forbidden={
        "dh has a zero row": lambda p: has_zero_row(p.given_value("dh")),
        "x has a zero row": lambda p: has_zero_row(p.given_value("x")),
        "two tokens of x are equal or opposite": lambda p: _parallel_rows(p.given_value("x").tolist()),
        # A symmetric W hides a forgotten transpose in dx_branch.
        "W is symmetric": lambda p: p.given_value("W") == p.given_value("W").T,
        "W has a zero row or column (an idle unit)": lambda p: (
            has_zero_row(p.given_value("W")) or has_zero_row(p.given_value("W").T)),
        "dW is zero": lambda p: all_zero(p.answer("dW")),
        "dW is symmetric (a transposed answer looks right)": lambda p: p.answer("dW") == p.answer("dW").T,
        "dW's rows are equal (swapped rows of xᵀ look right)": lambda p: p.answer("dW").row(0) == p.answer("dW").row(1),
        "x·du (no transpose) gives the same dW": lambda p: (
            p.given_value("x").rows == D_MODEL and p.given_value("x") * _upstream(p) == p.answer("dW")),
        "the branch sends no gradient to x": lambda p: all_zero(p.answer("dx_branch")),
        "the branch's gradient equals the skip's": lambda p: p.answer("dx_branch") == p.given_value("dh"),
        "dx is zero": lambda p: all_zero(p.answer("dx")),
        # ReLU's derivative at exactly 0 is a convention, not this lesson.
        "a pre-activation is exactly 0": lambda p: _relu(p) and any(v == 0 for v in _pre(p)),
        "ReLU passes everything": lambda p: _relu(p) and all(v > 0 for v in _pre(p)),
        "ReLU blocks everything": lambda p: _relu(p) and all(v < 0 for v in _pre(p)),
        "du equals the mask (copying the mask looks right)": lambda p: _relu(p) and p.answer("du") == p.answer("mask"),
        **product_rule("u = x·W", lambda p: (p.given_value("x"), p.given_value("W"))),
        **product_rule("dW = xᵀ·du", lambda p: (p.given_value("x").T, _upstream(p))),
        **product_rule("dx_branch = du·Wᵀ", lambda p: (_upstream(p), p.given_value("W").T)),
    },
)


def _clean(x: list[list[int]], w: list[list[int]], dh: list[list[int]], relu: bool) -> bool:
    """Does this draw avoid every forbidden case? (checked on plain ints before any sympy is built)"""
    if _parallel_rows(x) or w[0][1] == w[1][0] or any(not any(row) for row in w) or any(not any(col) for col in zip(*w)):
        return False  # symmetric W hides a transpose; a zero row or column of W makes a unit idle
    u = plain_product(x, w)
    flat = [v for row in u for v in row]
    if relu and (0 in flat or all(v > 0 for v in flat) or all(v < 0 for v in flat)):
        return False
    du = [[g if (v > 0 or not relu) else 0 for g, v in zip(grow, urow)] for grow, urow in zip(dh, u)]
    if relu and du == [[int(v > 0) for v in row] for row in u]:
        return False
    dw, branch = plain_product(plain_transpose(x), du), plain_product(du, plain_transpose(w))
    dx = [[a + b for a, b in zip(r, s)] for r, s in zip(dh, branch)]
    no_transpose = len(x) == D_MODEL and plain_product(x, du) == dw
    dw_clean = dw != plain_transpose(dw) and dw[0] != dw[1] and not no_transpose
    # The generic slips of every product on the sheet (the contract's product rules), in plain numbers.
    slips_show = not any(plain_slip_hidden(a, b) for a, b in ((x, w), (plain_transpose(x), du), (du, plain_transpose(w))))
    return dw_clean and slips_show and any(map(any, branch)) and branch != dh and any(map(any, dx))


def _draw(rng: Rng, n: int, relu: bool) -> tuple[ImmutableMatrix, ImmutableMatrix, ImmutableMatrix]:
    """x and dh from ±1, ±2 and W from −2…2, redrawn until clean (built here, so the registry never redraws)."""
    while True:
        x = [[rng.choice(NONZERO) for _ in range(D_MODEL)] for _ in range(n)]
        w = [[rng.integer(-2, 2) for _ in range(D_MODEL)] for _ in range(D_MODEL)]
        dh = [[rng.choice(NONZERO) for _ in range(D_MODEL)] for _ in range(n)]
        if _clean(x, w, dh, relu):
            return ImmutableMatrix(x), ImmutableMatrix(w), ImmutableMatrix(dh)


def _merge_part(df_q: Quantity, skip_q: Quantity) -> Part:
    """(a) The + of the forward pass: its local derivative is 1 for each summand, so dh is copied to both."""
    return Part(
        Tex(r"The merge: the forward pass added $x_{\text{skip}}$ and $F$. Write the gradient reaching the sublayer's "
            r"output, $dF$, and the gradient on the skip path, $dx_{\text{skip}}$."),
        (df_q, skip_q),
        (Step(text=Tex(r"$h = x_{\text{skip}} + F$ entry by entry, so $\partial h[i,j]/\partial F[i,j] = 1$: "
                       r"addition copies the gradient to each summand."),
              formula=Tex(r"dF = dh \cdot 1"), result=df_q),
         Step(text=Tex(r"Likewise $\partial h[i,j]/\partial x_{\text{skip}}[i,j] = 1$."),
              formula=Tex(r"dx_{\text{skip}} = dh \cdot 1"), result=skip_q,
              checks=(Tex(r"\text{Both are } dh \text{ unchanged: a sum passes its gradient to every summand.}"),))),
    )


def _mask_steps(x, w, u_q: Quantity, mask_q: Quantity, du_q: Quantity) -> tuple[Step, ...]:
    """ReLU only: recompute u = x·W, read off the mask, and zero the gradient where ReLU cut."""
    u = u_q.value
    zeroed = [f"{entry_label('u', i, j)} = {number_tex(u[i, j])} < 0"
              for i in range(u.rows) for j in range(u.cols) if u[i, j] < 0]
    return (
        product_step(Tex(r"Recompute the pre-activation the forward pass used: row $i$ of $x$ times column $j$ of $W$."),
                     x, w, Tex(r"u = x\,W"), u_q),
        Step(text=Tex(r"ReLU's slope is 1 where $u > 0$ and 0 where $u < 0$ (no entry of $u$ is exactly 0)."),
             formula=Tex(r"\operatorname{ReLU}'(u) = \mathbf{1}[u > 0]"), result=mask_q),
        Step(text=Tex("Multiply entry by entry: the gradient passes where ReLU passed its input "
                      "and is zeroed where it cut it."),
             formula=Tex(r"du = dF \odot \mathbf{1}[u > 0]"),
             lines=(Tex(r"\text{zeroed, since } " + ",\\ ".join(zeroed)),), result=du_q),
    )


def _sublayer_part(x, w, du_q: Quantity, dw_q: Quantity, branch_q: Quantity, relu: bool) -> Part:
    """(b) Through F: the matmul rules dW = xᵀ·du and dx_branch = du·Wᵀ (u = x·W; u is F itself when linear)."""
    if relu:
        u_q = Quantity("u", Tex("u"), x * w)
        mask_q = Quantity("mask", Tex(r"\mathbf{1}[u > 0]"), _mask(x * w))
        steps, answers, g = _mask_steps(x, w, u_q, mask_q, du_q), (mask_q, du_q), "du"
        prompt = (r"Through the sublayer ($u = x\,W$, $F = \operatorname{ReLU}(u)$): write the mask $\mathbf{1}[u > 0]$, "
                  r"then $du$, $dW = x^{\mathsf T}\,du$ and the branch's gradient to $x$, "
                  r"$dx_{\text{branch}} = du\;W^{\mathsf T}$.")
    else:
        steps, answers, g = (), (), "dF"  # F = x·W itself, so the gradient entering x·W is dF
        prompt = (r"Through the sublayer ($F = x\,W$): compute $dW = x^{\mathsf T}\,dF$ and the branch's gradient to $x$, "
                  r"$dx_{\text{branch}} = dF\;W^{\mathsf T}$.")
    steps += (
        product_step(Tex(rf"Row $i$ of $x^{{\mathsf T}}$ (column $i$ of $x$) times column $j$ of ${g}$."),
                     x.T, du_q.value, Tex(rf"dW = x^{{\mathsf T}}\,{g}"), dw_q,
                     checks=(Tex(rf"dW \text{{ has the shape of }} W\text{{: }} {shape_text(w)}."),)),
        product_step(Tex(rf"Row $i$ of ${g}$ times column $j$ of $W^{{\mathsf T}}$ (row $j$ of $W$)."),
                     du_q.value, w.T, Tex(rf"dx_{{\text{{branch}}}} = {g}\,W^{{\mathsf T}}"), branch_q,
                     checks=(Tex(rf"dx_{{\text{{branch}}}} \text{{ has the shape of }} x\text{{: }} {shape_text(x)}."),)),
    )
    return Part(Tex(prompt), answers + (dw_q, branch_q), steps)


def _split_part(skip_q: Quantity, branch_q: Quantity, dx_q: Quantity) -> Part:
    """(c) x fanned out to two paths, so the gradients of both paths add up in dx."""
    return Part(
        Tex(r"The split: $x$ fed both the skip path and the sublayer. Compute $dx$."),
        (dx_q,),
        (add_step(Tex("A value used twice gets the sum of the gradients of its uses."), skip_q.value, branch_q.value,
                  Tex(r"dx = dx_{\text{skip}} + dx_{\text{branch}}"), dx_q, expand="all",
                  checks=(Tex(rf"dx \text{{ has the shape of }} x\text{{: }} {shape_text(dx_q.value)}."),
                          Tex(r"\text{Without the skip path, } dx \text{ would be only } dx_{\text{branch}} = "
                              + matrix_tex(branch_q.value) + "."),
                          Tex(r"dx - dx_{\text{branch}} = dh\text{: the identity path carries } dh \text{ unchanged.}"))),),
    )


def generate(rng: Rng, options: dict[str, str]) -> Problem:
    """Draw x, W and dh; backpropagate through h = x + F(x): merge, sublayer, split."""
    n, relu = int(options["tokens"]), options["sublayer"] == "relu"
    x, w, dh = _draw(rng, n, relu)
    df_q = Quantity("dF", Tex("dF"), dh)
    skip_q = Quantity("dx_skip", Tex(r"dx_{\text{skip}}"), dh)
    du_q = Quantity("du", Tex("du"), dh.multiply_elementwise(_mask(x * w))) if relu else df_q
    dw_q = Quantity("dW", Tex("dW"), x.T * du_q.value)
    branch_q = Quantity("dx_branch", Tex(r"dx_{\text{branch}}"), du_q.value * w.T)
    dx_q = Quantity("dx", Tex("dx"), dh + branch_q.value)
    parts = [_merge_part(df_q, skip_q), _sublayer_part(x, w, du_q, dw_q, branch_q, relu),
             _split_part(skip_q, branch_q, dx_q)]
    sublayer = Tex(r"F(x) = \operatorname{ReLU}(u) \text{ with } u = x\,W" if relu else r"F(x) = x\,W")
    return Problem.draft(given=[Quantity("x", Tex("x"), x), Quantity("W", Tex("W"), w), Quantity("dh", Tex("dh"), dh)],
                         parts=parts, facts={"sublayer": sublayer})
