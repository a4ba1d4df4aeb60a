"""Example 3, full backpropagation: Example 2's loss and dL/dz, then back through W_out and attention to W_Q, W_K, W_V."""

from __future__ import annotations

from fractions import Fraction

from sympy import Rational

from generator.core.forward import plain_product, plain_transpose
from generator.core.problem import Bounds, Contract, Expansion, Part, Problem, Quantity, Step, Term, Tex, matrix
from generator.core.registry import Option
from generator.documents.render import matrix_tex
from generator.core.rng import Rng
from generator.core.slips import product_rule
from generator.core.worked import dot_expansion, product_step, transpose_step
from generator.problems.example1 import FORWARD_FORBIDDEN, VOCABULARY, plain_model
from generator.problems.example2 import draw_training, loss_parts, output_gradient_part, predicts_target

TITLE = "Example 3: full backpropagation"
CHAINED = True
OPTIONS = [Option("d_k", ("1", "4"), "1", "width of queries and keys; √d_k = 1 or 2")]
BACKWARD_DENOMINATOR = 40  # every gradient on the sheet is a fraction no finer than 1/40


CONTRACT = Contract(
    given=Bounds(4, 12, Rational(4)),
    intermediate=Bounds(250, 40, Rational(20)),
    answer=Bounds(250, 40, Rational(20)),
    rational_only=False,
    forbidden={
        **FORWARD_FORBIDDEN,
        "the model already predicts the target": predicts_target,
        "the score gradient is zero (attention would learn nothing)": lambda p: not any(p.answer("dS")),
        "a weight gradient is all zeros": lambda p: any(not any(p.answer(n)) for n in ("dW_Q", "dW_K", "dW_V", "dW_out")),
        # ḡ = 0 would let a student who drops it from dS_r = ã_r(dã_r − ḡ) get dS right.
        "ḡ is 0 (dropping it gives the same dS)": lambda p: sum(
            a * d for a, d in zip(p.facts["given_weights"], p.answer("da"))) == 0,
        **product_rule("dV = ãᵀ·dc", lambda p: (p.facts["given_weights"].T, p.answer("dc"))),
        **product_rule("dã = dc·Vᵀ", lambda p: (p.answer("dc"), p.answer("V").T)),
        **product_rule("dW_K = Xᵀ·dK", lambda p: (p.answer("X").T, p.answer("dK"))),
        **product_rule("dW_V = Xᵀ·dV", lambda p: (p.answer("X").T, p.answer("dV"))),
    },
)


def backward_values(dz: list[Fraction], w_out: list[list[int]], model: dict, root: int) -> dict[str, list]:
    """Every gradient of the attention layer in plain Fractions (rows of lists), last query only."""
    x, k, v, a = model["x"], model["k"], model["v"], model["weights"]
    q = model["q"][-1]
    dc = [sum((dz[j] * w_out[i][j] for j in range(len(dz))), Fraction(0)) for i in range(len(w_out))]
    dv = [[a[r] * dc[i] for i in range(len(dc))] for r in range(len(a))]
    da = [sum((dc[i] * v[r][i] for i in range(len(dc))), Fraction(0)) for r in range(len(a))]
    mean = sum((a[r] * da[r] for r in range(len(a))), Fraction(0))
    ds = [a[r] * (da[r] - mean) for r in range(len(a))]
    dr = [d / root for d in ds]
    dq = [sum((dr[r] * k[r][m] for r in range(len(a))), Fraction(0)) for m in range(len(q))]
    dk = [[dr[r] * q[m] for m in range(len(q))] for r in range(len(a))]
    dw_q = [[x[-1][i] * dq[m] for m in range(len(q))] for i in range(len(x[0]))]
    dw_k = [[sum((x[r][i] * dk[r][m] for r in range(len(a))), Fraction(0)) for m in range(len(q))] for i in range(len(x[0]))]
    dw_v = [[sum((x[r][i] * dv[r][n] for r in range(len(a))), Fraction(0)) for n in range(len(dc))] for i in range(len(x[0]))]
    return {"dc": [dc], "dV": dv, "da": [da], "gbar": [[mean]], "dS": [ds], "dR": [dr], "dq": [dq], "dK": dk,
            "dW_Q": dw_q, "dW_K": dw_k, "dW_V": dw_v}


def clean_backward(root: int):
    """The demand on a draw: every gradient small and in fractions no finer than 1/40, and attention learns."""
    def accept(dz, w_out, model) -> bool:
        values = backward_values(dz, w_out, model, root)
        entries = [e for rows in values.values() for row in rows for e in row]
        if any(e.denominator > BACKWARD_DENOMINATOR or abs(e) > 12 or abs(e.numerator) > 240 for e in entries):
            return False
        if not any(values["dS"][0]) or not all(any(e for row in values[n] for e in row) for n in ("dW_Q", "dW_K", "dW_V")):
            return False
        # ḡ = 0 hides a dropped ḡ in dS; a slip in dW_V = Xᵀ·dV or dV = ãᵀ·dc must show (see the contract).
        x, dv, dw_v = model["x"], values["dV"], values["dW_V"]
        xt = plain_transpose(x)
        return (values["gbar"][0][0] != 0 and dv != plain_transpose(dv)
                and dw_v not in (plain_product(xt, plain_transpose(dv)), plain_product(x, dv), plain_product(dv, xt),
                                 plain_transpose(dw_v)))
    return accept


def generate(rng: Rng, options: dict[str, str]) -> Problem:
    """Example 2's model and target, then dL/dz back to every weight matrix (from the Given ã and p̃)."""
    root = {"1": 1, "4": 2}[options["d_k"]]
    tr = draw_training(rng, options, clean_backward(root))
    f = tr.forward
    plain_dz = [Fraction(int(d.p), int(d.q)) for d in tr.dz]
    plain_w = [[int(f.w_out[i, j]) for j in range(f.w_out.cols)] for i in range(f.w_out.rows)]
    values = {name: matrix(rows) for name, rows in
              backward_values(plain_dz, plain_w, plain_model(f.x, f.q, f.k, f.v, f.given_weights), root).items()}
    a = f.given_weights
    q_last, x_last = f.q[1:2, :], f.x[1:2, :]

    def quantity(name: str, symbol: str) -> Quantity:
        return Quantity(name, Tex(symbol), values[name])

    dc, dv, da, ds, dr = (quantity(n, s) for n, s in (("dc", "dc"), ("dV", "dV"), ("da", r"d\tilde a"), ("dS", "dS"), ("dR", "dR")))
    dq, dk = quantity("dq", "dq"), quantity("dK", "dK")
    dw_q, dw_k, dw_v = quantity("dW_Q", "dW_Q"), quantity("dW_K", "dW_K"), quantity("dW_V", "dW_V")
    gbar = values["gbar"][0, 0]
    gradient_part, _ = output_gradient_part(tr)
    shape_check = lambda w, name: Tex(f"\\text{{The shape of }} d{name} \\text{{ is the shape of }} {name}\\text{{: }} ({w.rows}\\times {w.cols}).")  # noqa: E731
    parts = list(f.parts) + loss_parts(tr) + [
        gradient_part,
        Part(Tex(r"Pass the gradient back to the context: $dc = \frac{\partial L}{\partial z}\,W_{\text{out}}^{\mathsf T}$."), (dc,),
             (transpose_step("W_out", r"W_{\text{out}}", f.w_out, Quantity("WoT", Tex(r"W_{\text{out}}^{\mathsf T}"), f.w_out.T)),
              product_step(Tex(r"$\partial L/\partial z$ times column $i$ of $W_{\text{out}}^{\mathsf T}$ (row $i$ of $W_{\text{out}}$)."),
                           tr.dz, f.w_out.T, Tex(r"dc = \frac{\partial L}{\partial z}\,W_{\text{out}}^{\mathsf T}"), dc,
                           checks=(Tex(r"\text{Its shape is the shape of } c\text{.}"),)))),
        Part(Tex(r"Through $c = \tilde a\,V$: compute $dV = \tilde a^{\mathsf T} dc$ and $d\tilde a = dc\,V^{\mathsf T}$."), (dv, da),
             (product_step(Tex(r"Row $r$ of $dV$ is $\tilde a_r$ times $dc$: each value row gets the share its weight gave it."),
                           a.T, values["dc"], Tex(r"dV = \tilde a^{\mathsf T} dc"), dv, checks=(shape_check(f.v, "V"),)),
              product_step(Tex(r"$d\tilde a_r$ is $dc$ dotted with value row $r$."), values["dc"], f.v.T,
                           Tex(r"d\tilde a = dc\,V^{\mathsf T}"), da))),
        Part(Tex(r"Through the softmax: compute $\bar g = \sum_r \tilde a_r\,d\tilde a_r$ and $dS_r = \tilde a_r\,(d\tilde a_r - \bar g)$, "
                 r"the gradient of the last token's scores."), (ds,),
             (Step(text=Tex(r"The softmax backward rule for a row, with the Given weights $\tilde a$."),
                   formula=Tex(r"dS_r = \tilde a_r\left(d\tilde a_r - \bar g\right)"),
                   expansions=(dot_expansion(Tex(r"\bar g"), list(a), list(values["da"])),)
                   + tuple(Expansion(Tex(f"dS_{r}"), (Term((a[r], values["da"][r])), Term((a[r], gbar), sign=-1)), values["dS"][r])
                           for r in range(2)),
                   result=ds, checks=(Tex(r"dS_0 + dS_1 = 0\text{: adding the same amount to both scores changes no weight.}"),)),)),
        Part(Tex(r"Through the scale and the product $S = q\,K^{\mathsf T}/\sqrt{d_k}$ (with $q$ the last row of $Q$): compute "
                 r"$dR = dS/\sqrt{d_k}$, $dq = dR\,K$ and $dK = dR^{\mathsf T} q$."), (dr, dq, dk),
             (Step(text=Tex(f"Dividing by $\\sqrt{{d_k}} = {root}$ in the forward pass divides the gradient by {root} too."),
                   formula=Tex(r"dR = dS / \sqrt{d_k}"), lines=(Tex(f"dR = {matrix_tex(values['dS'])} / {root}"),), result=dr),
              product_step(Tex(r"$dR$ times column $m$ of $K$: the query moves toward the keys whose scores should rise."),
                           values["dR"], f.k, Tex(r"dq = dR\,K"), dq),
              product_step(Tex(r"Row $r$ of $dK$ is $dR_r$ times $q$."), values["dR"].T, q_last, Tex(r"dK = dR^{\mathsf T} q"), dk,
                           checks=(Tex(r"\text{Row 0 of } Q \text{ reaches no loss (only the last token predicts), so only } q \text{ gets a gradient.}"),)))),
        Part(Tex(r"The weight gradients: $dW_Q = x_1^{\mathsf T} dq$ (with $x_1$ the last row of $X$), $dW_K = X^{\mathsf T} dK$ "
                 r"and $dW_V = X^{\mathsf T} dV$."), (dw_q, dw_k, dw_v),
             (product_step(Tex(r"Row $i$ of $dW_Q$ is $x_1[i]$ times $dq$."), x_last.T, values["dq"], Tex(r"dW_Q = x_1^{\mathsf T} dq"), dw_q,
                           checks=(shape_check(f.w_q, "W_Q"),)),
              product_step(Tex(r"Row $i$ of $X^{\mathsf T}$ times column $m$ of $dK$."), f.x.T, values["dK"], Tex(r"dW_K = X^{\mathsf T} dK"), dw_k,
                           checks=(shape_check(f.w_k, "W_K"),)),
              product_step(Tex(r"Row $i$ of $X^{\mathsf T}$ times column $n$ of $dV$."), f.x.T, values["dV"], Tex(r"dW_V = X^{\mathsf T} dV"), dw_v,
                           checks=(shape_check(f.w_v, "W_V"),)))),
    ]
    facts = dict(f.facts)
    facts.update({"target": VOCABULARY[tr.target], "target_index": Rational(tr.target), "given_p": tr.p_given,
                  "root": Rational(root)})
    return Problem.draft(given=f.given, parts=parts, facts=facts, needs_calculator=True)
