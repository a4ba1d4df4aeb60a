"""Example 3, full backpropagation: Example 2's loss and dL/dz, then back through W_out and attention to W_Q, W_K, W_V."""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction

import sympy
from sympy import ImmutableMatrix, Rational

from generator.core.forward import decimal_softmax, plain_product, plain_rows, plain_transpose, table_log_ratio
from generator.core.problem import Bounds, Choice, Contract, Expansion, Part, Problem, Quantity, Step, Term, Tex, matrix
from generator.core.readings import Reading, format_places, ratio_of_sum
from generator.core.registry import Option
from generator.documents.render import factor_tex, matrix_tex, number_tex
from generator.core.rng import Rng
from generator.core.slips import product_rule
from generator.core.worked import dot_expansion, product_step, transpose_step
from generator.problems.example1 import DATA_OPTION, FORWARD_FORBIDDEN, VOCABULARY, drawn_only, plain_model
from generator.problems.example2 import BOOK_TASK_RULE, draw_training, loss_parts, output_gradient_part, predicts_target, sgd_update_step

TITLE = "Example 3: full backpropagation"
CHAINED = True
OPTIONS = [Option("d_k", ("1", "4"), "1", "width of queries and keys; √d_k = 1 or 2"),
           Option("update", ("none", "sgd"), "none",
                  "sgd: then one step of gradient descent on W_Q, W_K, W_V and W_out (eta = 1/2 or 1/4, chosen so the new "
                  "weights stay in fortieths), the forward pass again, the new loss to 4 places, and whether it went down"),
           DATA_OPTION]  # book: the book's data and task A B → C, as Example 2's
BACKWARD_DENOMINATOR = 40  # every gradient on the sheet is a fraction no finer than 1/40


CONTRACT = Contract(
    given=Bounds(4, 12, Rational(4)),
    # update=sgd's new scores S' = q'K'ᵀ/√d_k are in eightieths where √d_k = 2 halves fortieths; all else is in fortieths.
    intermediate=Bounds(250, 80, Rational(20)),
    answer=Bounds(250, 80, Rational(20)),
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
        # The book's X = I: dW_K = dK and dW_V = dV, and a transposed or missing X is no slip there.
        **drawn_only(product_rule("dW_K = Xᵀ·dK", lambda p: (p.answer("X").T, p.answer("dK")))),
        **drawn_only(product_rule("dW_V = Xᵀ·dV", lambda p: (p.answer("X").T, p.answer("dV")))),
        **BOOK_TASK_RULE,
        "the new loss and the loss before can print alike at 4 places (update=sgd)": lambda p: loss_change_hidden(p),
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
        return backward_is_clean(backward_values(dz, w_out, model, root), model)
    return accept


def backward_is_clean(values: dict, model: dict) -> bool:
    """clean_backward's demands on the gradients of one draw."""
    entries = [e for rows in values.values() for row in rows for e in row]
    if any(e.denominator > BACKWARD_DENOMINATOR or abs(e) > 12 or abs(e.numerator) > 240 for e in entries):
        return False
    if not any(values["dS"][0]) or not all(any(e for row in values[n] for e in row) for n in ("dW_Q", "dW_K", "dW_V")):
        return False
    # ḡ = 0 hides a dropped ḡ in dS; a slip in dW_V = Xᵀ·dV or dV = ãᵀ·dc must show (see the contract).
    x, dv, dw_v = model["x"], values["dV"], values["dW_V"]
    xt = plain_transpose(x)
    if x == xt:  # a symmetric X (the book's X = I; drawn X never is): its slips give dW_V itself, so only dV's show
        return values["gbar"][0][0] != 0 and dv != plain_transpose(dv)
    return (values["gbar"][0][0] != 0 and dv != plain_transpose(dv)
            and dw_v not in (plain_product(xt, plain_transpose(dv)), plain_product(x, dv), plain_product(dv, xt),
                             plain_transpose(dw_v)))


def generate(rng: Rng, options: dict[str, str]) -> Problem:
    """Example 2's model and target, then dL/dz back to every weight matrix (from the Given ã and p̃)."""
    root = {"1": 1, "4": 2}[options["d_k"]]
    sgd = options.get("update") == "sgd"
    tr = draw_training(rng, options, clean_update(root) if sgd else clean_backward(root))
    f = tr.forward
    plain_dz = [Fraction(int(d.p), int(d.q)) for d in tr.dz]
    plain_w = [[int(f.w_out[i, j]) for j in range(f.w_out.cols)] for i in range(f.w_out.rows)]
    model = plain_model(f.x, f.q, f.k, f.v, f.given_weights)
    plain_values = backward_values(plain_dz, plain_w, model, root)
    values = {name: matrix(rows) for name, rows in plain_values.items()}
    a = f.given_weights
    q_last, x_last = f.q[1:2, :], f.x[1:2, :]

    def quantity(name: str, symbol: str) -> Quantity:
        return Quantity(name, Tex(symbol), values[name])

    dc, dv, da, ds, dr = (quantity(n, s) for n, s in (("dc", "dc"), ("dV", "dV"), ("da", r"d\tilde a"), ("dS", "dS"), ("dR", "dR")))
    dq, dk = quantity("dq", "dq"), quantity("dK", "dK")
    dw_q, dw_k, dw_v = quantity("dW_Q", "dW_Q"), quantity("dW_K", "dW_K"), quantity("dW_V", "dW_V")
    gbar = values["gbar"][0, 0]
    gradient_part, dw_out_q = output_gradient_part(tr)
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
    if sgd:
        found = update_rate(plain_values, plain_rows(dw_out_q.value), plain_dz, plain_w, model, root)
        if found is None:
            raise ValueError("clean_update let through a step with no clean learning rate")
        more = update_parts(tr, values, dw_out_q.value, root, _q(found[0]))
        eta = _q(found[0])
        parts += more
        facts["eta"] = eta
    return Problem.draft(given=f.given, parts=parts, facts=facts, needs_calculator=True)


# ---- update=sgd: one step of gradient descent on all four weight matrices, the forward pass again, the new loss ----

# The largest of these that keeps the step, the new weights and the new scores clean is used.
UPDATE_RATES = (Fraction(1, 2),)
UPDATE_STEP = Fraction(2)  # no weight moves further than this in one step
NEW_DENOMINATOR = 40  # the new weights, queries, keys and values: fractions no finer than 1/40
SCORE_DENOMINATOR = 80  # the new scores: no finer than 1/80
MAX_LOGIT = 12  # |c'| and |z'| stay within this (the contract's bound is 20)
LOSS_SCREEN = 0.002
MAX_NEW_LOSS = 3.0  # p'_target above e^−3 ≈ 0.05: its 4 places (and their logarithm) keep several digits  # the float screen's margin: the change in the loss (and its direction) is no rounding artefact
DIGITS = 40  # the calculator route's working precision, far past the 4 places it is rounded to
SLACK = Fraction(1, 10**30)
# Three answers, one of them never the key's (the draw keeps L' and L apart at 4 places): a two-way choice is
# matched by the argmax of some two-entry row in every reference draw by chance (the loss mostly falls).
LOSS_CHOICES = (("yes", "yes, L' < L"), ("same", "L' = L at 4 places"), ("no", "no, L' > L"))


def _decimal(x: Fraction) -> Decimal:
    return Decimal(x.numerator) / Decimal(x.denominator)


def _monotone(reading: Reading, function) -> Reading:
    """An increasing function (exp, ln) of a reading: the calculator's value of the route, the ends taken outward."""
    with localcontext() as context:
        context.prec = DIGITS
        route, low, high = (Fraction(function(_decimal(v))) for v in (reading.route, reading.low, reading.high))
    return Reading(route, low - SLACK, high + SLACK, reading.entries)


def exp_reading(reading: Reading) -> Reading:
    return _monotone(reading, Decimal.exp)


def ln_reading(reading: Reading) -> Reading:
    if reading.low <= 0:
        raise ArithmeticError("ln of an interval that reaches 0")
    return _monotone(reading, Decimal.ln)


def step_is_clean(eta: Fraction, grads: list[list[list[Fraction]]]) -> bool:
    """Is the step η·g no finer than 1/40 and no larger than UPDATE_STEP in every entry?"""
    return all(step.denominator <= NEW_DENOMINATOR and abs(step) <= UPDATE_STEP
               for rows in grads for row in rows for step in (eta * g for g in row))


def update_rate(values: dict, dw_out, dz, w_out, model: dict, root: int) -> tuple[Fraction, dict] | None:
    """The largest learning rate whose step and new forward pass (q', K', V' in fortieths, S' in fortieths times
    √d_k) are clean, with that forward pass; None if there is none."""
    grads = [values["dW_Q"], values["dW_K"], values["dW_V"], dw_out]
    for eta in UPDATE_RATES:
        if not step_is_clean(eta, grads):
            continue
        new = new_forward(values, dz, w_out, model, root, eta)
        # S' = q'K'ᵀ/√d_k, a product of fortieths: allowed eightieths.
        if _clean([e for n in ("q", "K", "V") for row in new[n] for e in row]) and _clean(new["S"][0], SCORE_DENOMINATOR):
            return eta, new
    return None


def _clean(values, denominator: int = NEW_DENOMINATOR) -> bool:
    return all(v.denominator <= denominator and abs(v.numerator) <= 250 and abs(v) <= 20 for v in values)


def new_forward(values: dict, dz: list[Fraction], w_out: list[list[int]], model: dict, root: int, eta: Fraction) -> dict:
    """After W ← W − η·dW: q' = x₁W_Q', K' = XW_K', V' = XW_V', S' = q'K'ᵀ/√d_k and W_out', in plain Fractions
    (worked from the old values: q' = q − η·x₁·dW_Q, and so on, so the weights themselves are not needed)."""
    x, k, v, a = model["x"], model["k"], model["v"], model["weights"]
    xt = plain_transpose(x)
    c = [sum((a[r] * v[r][i] for r in range(len(a))), Fraction(0)) for i in range(len(v[0]))]
    dw_out = [[ci * d for d in dz] for ci in c]
    q_new = [[qm - eta * sum((x[-1][i] * values["dW_Q"][i][m] for i in range(len(xt))), Fraction(0))
              for m, qm in enumerate(model["q"][-1])]]
    k_new = [[k[r][m] - eta * e for m, e in enumerate(row)] for r, row in enumerate(plain_product(x, values["dW_K"]))]
    v_new = [[v[r][n] - eta * e for n, e in enumerate(row)] for r, row in enumerate(plain_product(x, values["dW_V"]))]
    s_new = [sum((qm * km for qm, km in zip(q_new[0], row)), Fraction(0)) / root for row in k_new]
    w_out_new = [[w - eta * g for w, g in zip(rw, rg)] for rw, rg in zip(w_out, dw_out)]
    return {"dW_out": dw_out, "q": q_new, "K": k_new, "V": v_new, "S": [s_new], "W_out": w_out_new}


def _float_losses(new: dict, model: dict, w_out, target: int, root: int) -> tuple[float, float, float]:
    """The loss after the step (exact weights a', no rounding), the true loss before it (exact a), in floats, and the
    largest |c'| or |z'|."""
    sizes = []

    def loss(scores, v, w):
        top = max(scores)
        e = [math.exp(float(s - top)) for s in scores]
        weights = [x / sum(e) for x in e]
        c = [sum(weights[r] * float(v[r][i]) for r in range(len(v))) for i in range(len(v[0]))]
        z = [sum(c[i] * float(w[i][j]) for i in range(len(c))) for j in range(len(w[0]))]
        zmax = max(z)
        sizes.extend(abs(e) for e in c + z)
        return math.log(sum(math.exp(zj - zmax) for zj in z)) - (z[target] - zmax)
    q, k = model["q"][-1], model["k"]
    before = [Fraction(sum(a * b for a, b in zip(q, row)), root) for row in k]
    after = loss(new["S"][0], new["V"], new["W_out"])
    return after, loss(before, model["v"], w_out), max(sizes)


class _ModelScreen:
    """One model's cheap necessary conditions for a clean step (update=sgd), each decided once per dz or per δ."""

    # With ã_0 + ã_1 = 1, dS = ã_0·ã_1·δ·(1, −1) where δ = dc·(V_0 − V_1): dS, dW_Q, dW_K, q', K' and S' depend on
    # W_out only through that one number. Most draws fail there (δ = 0, or a step of W_Q or W_K, a new query or key
    # leaves fortieths), so it is decided once per δ, before any backward pass; the W_out step depends on dz alone.

    def __init__(self, model: dict, root: int):
        x, k, v, a = model["x"], model["k"], model["v"], model["weights"]
        if a[0] + a[1] != 1:
            raise ValueError("the Given weights do not sum to 1")
        self.model, self.root = model, root
        self.q = model["q"][-1]
        self.k = k
        self.c = [a[0] * v[0][i] + a[1] * v[1][i] for i in range(2)]
        self.value_gap = [v[0][i] - v[1][i] for i in range(2)]
        self.rate_scales = [eta * a[0] * a[1] / root for eta in UPDATE_RATES]  # η·dR_0 = η·(−dR_1) = this times δ
        self.key_gap = [k[0][m] - k[1][m] for m in range(len(self.q))]
        x_gap = [x[0][i] - x[1][i] for i in range(2)]
        # dW_Q = x₁ᵀ·dq = dR_0·x₁ᵀ(K_0 − K_1) and dW_K = Xᵀ·dRᵀq = dR_0·(X_0 − X_1)ᵀq: whole multiples of dR_0.
        multiples = [x[-1][i] * g for i in range(2) for g in self.key_gap] + [x_gap[i] * qm for i in range(2) for qm in self.q]
        self.largest_multiple = max(map(abs, multiples))
        self.multiples = {abs(n) for n in multiples if n}
        self.query_norm = sum(e * e for e in x[-1])  # q' = q − η·x₁·dW_Q = q − η·dR_0·‖x₁‖²·(K_0 − K_1)
        self.key_reach = [sum(x[r][i] * x_gap[i] for i in range(2)) for r in range(2)]  # K'_r = K_r − η·dR_0·this·q
        self.outputs: dict[tuple, tuple | None] = {}
        self.last_dz: list[Fraction] | None = None
        self.last_output: tuple | None = None
        self.queries: dict[tuple[int, int], bool] = {}

    def output_step(self, dz: list[Fraction]) -> tuple | None:
        """dW_out = cᵀdz and dz in whole numbers over a common denominator, or None if W_out's step is not clean."""
        if dz is self.last_dz:  # the column choices tried for one logit row come in a run, with the same dz
            return self.last_output
        key = tuple((d.numerator, d.denominator) for d in dz)  # hashing whole numbers is far cheaper than Fractions
        if key not in self.outputs:
            dw_out = [[ci * d for d in dz] for ci in self.c]
            denominator = math.lcm(*(d.denominator for d in dz))
            clean = any(step_is_clean(eta, [dw_out]) for eta in UPDATE_RATES)
            self.outputs[key] = (dw_out, denominator, [int(d * denominator) for d in dz]) if clean else None
        self.last_dz, self.last_output = dz, self.outputs[key]
        return self.last_output

    def query_side_clean(self, whole_delta: int, denominator: int) -> bool:
        """Does δ = whole_delta/denominator let attention learn (dS ≠ 0, as backward_is_clean demands) with a learning
        rate that keeps dW_Q's and dW_K's steps, q', K' and S' clean (as update_rate demands)?"""
        key = (whole_delta, denominator)
        if key not in self.queries:
            self.queries[key] = whole_delta != 0 and any(
                self._query_side_clean(Fraction(scale.numerator * whole_delta, scale.denominator * denominator))
                for scale in self.rate_scales)
        return self.queries[key]

    def _query_side_clean(self, step: Fraction) -> bool:
        """query_side_clean at one learning rate, where step = η·dR_0."""
        # step_is_clean on step·m for each multiple m, in whole numbers: (step·m)'s denominator is d/gcd(d, m).
        if abs(step) * self.largest_multiple > UPDATE_STEP:
            return False
        n, d = step.numerator, step.denominator
        if any(d // math.gcd(d, m) > NEW_DENOMINATOR for m in self.multiples):
            return False
        # q' and K' in whole numbers over d, S' over d²·√d_k: a Fraction each, not a chain of Fraction products.
        q_new = [d * qm - n * self.query_norm * g for qm, g in zip(self.q, self.key_gap)]
        k_new = [[d * km - n * reach * qm for km, qm in zip(row, self.q)] for row, reach in zip(self.k, self.key_reach)]
        s_new = [Fraction(sum(a * b for a, b in zip(q_new, row)), d * d * self.root) for row in k_new]
        return _clean([Fraction(v, d) for v in q_new + k_new[0] + k_new[1]]) and _clean(s_new, SCORE_DENOMINATOR)


def clean_update(root: int):
    """clean_backward's demands, then a clean step: a learning rate that keeps the new weights in fortieths, a new
    forward pass in fortieths up to the scores, and a change in the loss that the sheet's L and the true loss before
    the step agree on (screened in floats; the 4 places are decided on the readings, see the contract)."""
    # The draw tries many W_out for one model: what does not depend on W_out is worked once per model (_ModelScreen),
    # and the attention layer's gradients, step and new scores, which depend on W_out only through dc = dz·W_outᵀ,
    # once per (dz, dc). The same decisions as working every draw through, many times faster.
    screens: list[_ModelScreen | None] = [None]
    attention: dict[tuple, tuple[Fraction, dict] | None] = {}

    def screen_for(model: dict) -> _ModelScreen:
        if screens[0] is None or screens[0].model is not model:
            screens[0] = _ModelScreen(model, root)
            attention.clear()
        return screens[0]

    def attention_step(dz, dc, w_out, model, dw_out) -> tuple[Fraction, dict] | None:
        key = (tuple(dz), dc)
        if key not in attention:
            attention[key] = None
            values = backward_values(dz, w_out, model, root)
            # The step's test before backward_is_clean's slip checks: it is cheaper and refuses more draws.
            grads = [values["dW_Q"], values["dW_K"], values["dW_V"], dw_out]
            if any(step_is_clean(eta, grads) for eta in UPDATE_RATES) and backward_is_clean(values, model):
                attention[key] = update_rate(values, dw_out, dz, w_out, model, root)
        return attention[key]

    def accept(dz, w_out, model) -> bool:
        screen = screen_for(model)
        output = screen.output_step(dz)  # W_out's step first: it needs no backward pass
        if output is None:
            return False
        dw_out, denominator, whole_dz = output
        whole_dc = [sum(d * w for d, w in zip(whole_dz, row)) for row in w_out]  # dc times the denominator
        if not screen.query_side_clean(sum(d * g for d, g in zip(whole_dc, screen.value_gap)), denominator):
            return False
        dc = tuple(Fraction(d, denominator) for d in whole_dc)
        found = attention_step(dz, dc, w_out, model, dw_out)
        if found is None:
            return False
        eta, new = found
        # W_out' is the one part of the new forward pass that depends on W_out itself.
        new = dict(new, W_out=[[w - eta * g for w, g in zip(rw, rg)] for rw, rg in zip(w_out, new["dW_out"])])
        if new["S"][0][0] == new["S"][0][1]:
            return False  # a' = (½, ½) would make c' and z' fractions in thousandths
        # c' and z' are linear in a'_0; an entry that does not move with it would be a fraction in thousandths.
        slope = [a - b for a, b in zip(new["V"][0], new["V"][1])]
        if 0 in slope or any(sum(slope[i] * new["W_out"][i][j] for i in range(2)) == 0 for j in range(len(dz))):
            return False
        target = next(j for j, d in enumerate(dz) if d < 0)
        after, true_before, size = _float_losses(new, model, w_out, target, root)
        sheet_before = math.log(1 / float(dz[target] + 1))
        return (after < MAX_NEW_LOSS and size <= MAX_LOGIT and abs(after - sheet_before) > LOSS_SCREEN and abs(after - true_before) > LOSS_SCREEN
                and (after < sheet_before) == (after < true_before))
    return accept


def new_loss_reading(p_new: Reading) -> Reading:
    """L' = −ln p'_target from the 4-place p' (a calculator's ln): the key's reasoning, not a blank of its own (an
    exact loss blank is one logarithm of a fraction on these sheets, and L' is the logarithm of a sum of powers of e)."""
    return -ln_reading(p_new.rounded())


def loss_change_hidden(problem: Problem) -> bool:
    """update=sgd: do some 4-place values of L and L' the sheet's readings allow overlap (the choice would be open)?"""
    if problem.options.get("update") != "sgd":
        return False
    before, after = problem.reading("L").rounded(), new_loss_reading(problem.reading("p_new")).rounded()
    return not (after.high < before.low or after.low > before.high)


def _exp(argument: sympy.Expr) -> sympy.Expr:
    """e^x left unevaluated (sympy's evaluation asks assumptions of nested forms: about 100 ms a problem); e^0 = 1."""
    return sympy.Integer(1) if argument == 0 else sympy.exp(argument, evaluate=False)


def _q(x: Fraction) -> Rational:
    return Rational(x.numerator, x.denominator)


def _places(reading: Reading) -> str:
    return format_places(reading.rounded().route)


def update_parts(tr, values: dict, dw_out: ImmutableMatrix, root: int, eta: Rational) -> list[Part]:
    """The step W' = W − η·dW on all four matrices, the forward pass again from the new weights (exact up to the
    scores, then 4 places with a calculator, each step from the 4-place values before it), the new loss and whether
    it went down."""
    f = tr.forward
    grads = {"W_Q": values["dW_Q"], "W_K": values["dW_K"], "W_V": values["dW_V"], "W_out": dw_out}
    symbols = {"W_Q": "W_Q", "W_K": "W_K", "W_V": "W_V", "W_out": r"W_{\text{out}}"}
    before = {"W_Q": f.w_q, "W_K": f.w_k, "W_V": f.w_v, "W_out": f.w_out}
    updates = {n: sgd_update_step(symbols[n], f"{n}_new", before[n], grads[n], eta) for n in before}
    new_w = {n: result.value for n, (_, result) in updates.items()}
    x_last = f.x[1:2, :]
    q_new = Quantity("q_new", Tex("q'"), x_last * new_w["W_Q"])
    k_new = Quantity("K_new", Tex("K'"), f.x * new_w["W_K"])
    v_new = Quantity("V_new", Tex("V'"), f.x * new_w["W_V"])
    raw = q_new.value * k_new.value.T
    s_exact = raw / root
    t = tr.target
    # The calculator route from the exact scores S': a', c', z', p'_t and L', each from the 4-place values before it.
    e_s = [exp_reading(Reading.exactly(s)) for s in s_exact]
    a_read = [ratio_of_sum(e_s, j) for j in range(2)]
    v_plain, w_plain = plain_rows(v_new.value), plain_rows(new_w["W_out"])
    c_read = [a_read[0].rounded() * v_plain[0][i] + a_read[1].rounded() * v_plain[1][i] for i in range(2)]
    z_read = [c_read[0].rounded() * w_plain[0][j] + c_read[1].rounded() * w_plain[1][j] for j in range(len(VOCABULARY))]
    e_z = [exp_reading(r.rounded()) for r in z_read]
    p_read = ratio_of_sum(e_z, t)
    l_read = new_loss_reading(p_read)
    # Exact values: with α = a'_0 = 1/(1 + e^{S'_1 − S'_0}), c' and z' are linear in α (short exact forms).
    alpha = 1 / (1 + _exp(s_exact[1] - s_exact[0]))
    a_exact = ImmutableMatrix([[alpha, 1 - alpha]])
    base = [v_new.value[1, i] for i in range(2)]
    slope = [v_new.value[0, i] - v_new.value[1, i] for i in range(2)]
    c_exact = ImmutableMatrix([[base[i] + slope[i] * alpha for i in range(2)]])
    cz = [sum(base[i] * new_w["W_out"][i, j] for i in range(2)) for j in range(len(VOCABULARY))]
    dz_ = [sum(slope[i] * new_w["W_out"][i, j] for i in range(2)) for j in range(len(VOCABULARY))]
    z_exact = ImmutableMatrix([[cz[j] + dz_[j] * alpha for j in range(len(VOCABULARY))]])
    others = sympy.Add(*(_exp((cz[j] - cz[t]) + (dz_[j] - dz_[t]) * alpha)
                         for j in range(len(VOCABULARY)) if j != t))
    p_exact = 1 / (1 + others)
    s_q = Quantity("S_new", Tex("S'"), s_exact)
    a_q = Quantity("a_new", Tex("a'"), a_exact, reading=(tuple(a_read),))
    c_q = Quantity("c_new", Tex("c'"), c_exact, reading=(tuple(c_read),))
    z_q = Quantity("z_new", Tex("z'"), z_exact, reading=(tuple(z_read),))
    name = VOCABULARY[t]
    p_q = Quantity("p_new", Tex(f"p'_{{\\text{{{name}}}}}"), p_exact, reading=p_read)
    loss_before = tr_loss_reading(tr)
    z_only = f.c * new_w["W_out"]  # Example 2's step: W_out alone
    down = l_read.rounded().high < loss_before.rounded().low
    down_q = Quantity("loss_down", Tex(r"\text{lower loss}"), Choice("yes" if down else "no", LOSS_CHOICES))
    parts = [
        Part(Tex(f"Update all four weight matrices with one step of gradient descent, $\\eta = {number_tex(eta)}$: "
                 r"$W' = W - \eta\,dW$ for $W_Q$, $W_K$, $W_V$ and $W_{\text{out}}$."),
             tuple(result for _, result in updates.values()), tuple(step for step, _ in updates.values())),
        Part(Tex(r"Forward again with the new weights: compute $q' = x_1 W_Q'$, $K' = X\,W_K'$, $V' = X\,W_V'$ and the "
                 r"last token's new scores $S' = q'\,K'^{\mathsf T}/\sqrt{d_k}$."),
             (q_new, k_new, v_new, s_q),
             (product_step(Tex(r"The last row of $X$ times column $m$ of $W_Q'$."), x_last, new_w["W_Q"], Tex(r"q' = x_1 W_Q'"), q_new),
              product_step(Tex(r"Row $i$ of $X$ times column $m$ of $W_K'$."), f.x, new_w["W_K"], Tex(r"K' = X\,W_K'"), k_new),
              product_step(Tex(r"Row $i$ of $X$ times column $n$ of $W_V'$."), f.x, new_w["W_V"], Tex(r"V' = X\,W_V'"), v_new),
              Step(text=Tex(r"$q'$ dotted with each row of $K'$, divided by $\sqrt{d_k}$."),
                   formula=Tex(r"S'_j = q' \cdot K'_j / \sqrt{d_k}"),
                   lines=tuple(Tex(f"S'_{j} = {number_tex(raw[j])}" + (f" / {root}" if root != 1 else "")
                                   + f" = {number_tex(s_exact[j])}") for j in range(2)),
                   result=s_q))),
        Part(Tex(r"Compute the last token's new attention weights $a' = \operatorname{softmax}(S')$ to 4 decimal places "
                 r"(with a calculator's $e^x$)."),
             (a_q,),
             (Step(text=Tex(r"The softmax of the two new scores."),
                   formula=Tex(r"a'_j = \frac{e^{S'_j}}{e^{S'_0} + e^{S'_1}}"),
                   lines=tuple(Tex(f"a'_{j} = \\frac{{e^{{{number_tex(s_exact[j])}}}}}{{e^{{{number_tex(s_exact[0])}}} + "
                                   f"e^{{{number_tex(s_exact[1])}}}}} \\approx {_places(a_read[j])}") for j in range(2)),
                   result=a_q, checks=(Tex(r"a'_0 + a'_1 = 1"),)),),
             decimals=True),
        Part(Tex(r"From your 4-place $a'$, compute the new context $c' = a'\,V'$ and logits $z' = c'\,W_{\text{out}}'$, "
                 r"each to 4 decimal places."),
             (c_q, z_q),
             (Step(text=Tex(r"A weighted average of the new value rows."), formula=Tex(r"c' = a'_0 V'_0 + a'_1 V'_1"),
                   lines=tuple(Tex(f"c'_{i} = {_places(a_read[0])} \\cdot {factor_tex(v_new.value[0, i])} + "
                                   f"{_places(a_read[1])} \\cdot {factor_tex(v_new.value[1, i])} \\approx {_places(c_read[i])}")
                               for i in range(2)),
                   result=c_q),
              Step(text=Tex(r"$c'$ (4 places) times column $j$ of $W_{\text{out}}'$."), formula=Tex(r"z' = c'\,W_{\text{out}}'"),
                   lines=tuple(Tex(f"z'_{j} = {_places(c_read[0])} \\cdot {factor_tex(new_w['W_out'][0, j])} + "
                                   f"{_places(c_read[1])} \\cdot {factor_tex(new_w['W_out'][1, j])} \\approx {_places(z_read[j])}")
                               for j in range(len(VOCABULARY))),
                   result=z_q)),
             decimals=True),
        Part(Tex(f"From your 4-place $z'$, compute the new probability of the target, $p'_{{\\text{{{name}}}}}$, to 4 decimal "
                 "places."),
             (p_q,),
             (Step(text=Tex(r"Softmax of the 4-place logits at the target, $e^x$ from the calculator."),
                   formula=Tex(r"p'_{\text{target}} = \frac{e^{z'_{\text{target}}}}{\sum_j e^{z'_j}}"),
                   lines=(Tex(f"p'_{{\\text{{{name}}}}} = \\frac{{e^{{{_places(z_read[t])}}}}}{{"
                              + " + ".join(f"e^{{{_places(r)}}}" for r in z_read) + f"}} \\approx {_places(p_read)}"),),
                   result=p_q),),
             decimals=True),
        Part(Tex(r"Did the step lower the loss? Compare the new loss $L' = -\ln p'_{\text{target}}$ with the loss $L$ "
                 r"before the step (it falls exactly where the target's probability rises)."),
             (down_q,),
             (Step(text=Tex(r"The new loss from the 4-place probability, with a calculator's $\ln$."),
                   formula=Tex(r"L' = -\ln p'_{\text{target}}"),
                   lines=(Tex(f"L' = -\\ln {_places(p_read)} \\approx {_places(l_read)}"),)),
              Step(text=Tex(("Yes" if down else "No") + f": $L' \\approx {_places(l_read)}$ is "
                            + ("below" if down else "above") + f" $L \\approx {_places(loss_before)}$"
                            + (". One step on all four matrices moved the weights against their gradients, and the target's "
                               "probability rose." if down else
                               ". The gradients were worked at the Given simple weights and probabilities, and a step this "
                               "large overshoots: the loss is only guaranteed to fall for a small enough step.")
                            + r" The true loss before the step (exact weights $a$, no simple values) agrees: "
                            + f"$\\approx {true_loss_before(tr, root)}$."),
                   result=down_q),
              Step(text=Tex(r"For comparison, Example 2's step changes only $W_{\text{out}}$ (the same $\eta$; the context "
                            r"$c = \tilde a\,V$ stays): its logits $z'' = c\,W_{\text{out}}'$ give the loss $L''$."),
                   lines=(Tex(f"z'' = {matrix_tex(z_only)},\\quad L'' = -\\ln \\operatorname{{softmax}}(z'')_{{\\text{{{name}}}}} "
                              f"\\approx {_logsumexp_loss(z_only, t)}"),)))),
    ]
    return parts


def tr_loss_reading(tr) -> Reading:
    """The loss part's reading: L = ln b − ln a from the ln k table (as loss_parts works it)."""
    pt = tr.p_given[tr.target]
    return table_log_ratio(int(pt.q), int(pt.p))


def true_loss_before(tr, root: int) -> str:
    """−ln p_target with the exact weights a (not ã) and exact probabilities, to 4 places (Decimal, 40 digits)."""
    f = tr.forward
    scores = tuple(Fraction(int(sum(f.q[1, m] * f.k[j, m] for m in range(f.q.cols))), root) for j in range(2))
    with localcontext() as context:
        context.prec = DIGITS
        weights = decimal_softmax(scores)
        c = [sum(weights[r] * int(f.v[r, i]) for r in range(2)) for i in range(2)]
        z = [sum(c[i] * int(f.w_out[i, j]) for i in range(2)) for j in range(len(VOCABULARY))]
        top = max(z)
        loss = sum((v - top).exp() for v in z).ln() - (z[tr.target] - top)
        return format_places(Fraction(loss.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)))


def _logsumexp_loss(z: ImmutableMatrix, target: int) -> str:
    """−ln softmax(z)[target] for rational logits, to 4 places (Decimal, 40 digits)."""
    with localcontext() as context:
        context.prec = DIGITS
        values = [_decimal(Fraction(int(v.p), int(v.q))) for v in z]
        top = max(values)
        loss = sum((v - top).exp() for v in values).ln() - (values[target] - top)
        return format_places(Fraction(loss.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)))
