"""A two-layer network by hand: forward pass with ReLU, the loss ½(out − t)², every gradient, the zeros a ReLU cut makes.

Stage 10's Exercise 1: z = x·W₁ + b₁, h = ReLU(z), out = h·W₂ + b₂, L = ½(out − t)², then ∂L/∂out, ∂L/∂W₂, ∂L/∂b₂,
∂L/∂h, ∂L/∂z through the ReLU, ∂L/∂W₁, ∂L/∂b₁; which hidden unit's gradients are 0 and why (a choice); optionally one
SGD step."""

from __future__ import annotations

from sympy import ImmutableMatrix, Rational

from generator.core.draws import has_zero_row
from generator.core.forward import PLACES, affine_step, relu, relu_step
from generator.core.problem import Bounds, Choice, Contract, Expansion, Part, Problem, Quantity, Step, Term, Tex
from generator.core.registry import Option
from generator.core.rng import Rng
from generator.core.slips import product_rule, zero
from generator.core.worked import entry_label, product_step, transpose_step
from generator.documents.render import decimal_tex, factor_tex, matrix_tex, number_tex
from generator.problems.example2 import sgd_update_step

TITLE = "A two-layer network: forward pass, loss and every gradient"
CHAINED = True
OPTIONS = [
    Option("inputs", ("2", "3"), "2", "width of the input row x (rows of W₁)"),
    Option("hidden", ("2", "3"), "2", "hidden units (columns of W₁, rows of W₂)"),
    Option("update", ("none", "sgd"), "none",
           "sgd: a last part takes one gradient-descent step on W₁, b₁, W₂ and b₂ with η = 1/50"),
]
# η = 1/50 keeps the updated weights in hundredths (the gradients are halves) and lowers the loss in almost every
# draw: η = 1/10 overshoots in most, since every weight of the path moves out at once (the rare draw where even
# 1/50 does not lower the loss visibly is not made).
ETA = Rational(1, 50)
# One draw in NO_CUT has every pre-activation positive (nothing cut, no gradient 0); the others have exactly one
# hidden unit cut, drawn evenly: the "which gradients are 0" question has no fixed answer.
NO_CUT = 4
X_VALUES = (-2, -1, 1, 2)  # never 0: a 0 in x would make a row of ∂L/∂W₁ 0 for another reason than the ReLU
BIASES = (-3, -2, -1, 1, 2, 3)  # never 0: a forgotten bias shows in every entry of z
Z_LIMIT = 3  # |z| ≤ 3: h, out and the gradients stay small
W2_VALUES = (-2, -1, 1, 2)  # never 0: every hidden unit receives a gradient ∂L/∂h ≠ 0
B2_VALUES = (-2, -1, 1, 2)
# out − t, drawn: never 0 (every gradient would be 0) and never ±1, where ½(out − t)² = ½|out − t| and the square
# forgotten would not show.
ERRORS = tuple(Rational(k, 2) for k in (-4, -3, -1, 1, 3, 4))
OUT_LIMIT = 6
# Reasons offered for the zeros (their statements are in the prompt); the right one depends on the draw.
REASONS = (("A", "A"), ("B", "B"), ("C", "C"))


def _cut_units(p: Problem) -> list[int]:
    """The hidden units the ReLU cuts (z < 0)."""
    return [j for j, v in enumerate(p.answer("z")) if v < 0]


CONTRACT = Contract(
    given=Bounds(16, 50, Rational(8)),  # η = 1/50 is a stated fact
    # Halves up to the gradients; the SGD part's η·∂L/∂θ and new weights in hundredths. Every value within ±10.
    intermediate=Bounds(400, 100, Rational(10)),
    answer=Bounds(400, 100, Rational(10)),
    forbidden={
        # ReLU's slope at exactly 0 is a convention, not this lesson.
        "a pre-activation is exactly 0": lambda p: any(v == 0 for v in p.answer("z")),
        "the ReLU cuts more than one hidden unit": lambda p: len(_cut_units(p)) > 1,
        "out = t (every gradient is 0)": lambda p: p.answer("dout") == 0,
        "|out − t| = 1 (forgetting the square gives the same loss)": lambda p: abs(p.answer("dout")) == 1,
        "an input is 0 (a row of ∂L/∂W₁ would be 0 for another reason)": lambda p: any(
            v == 0 for v in p.given_value("x")),
        "a weight of W₂ is 0 (no gradient would reach its unit)": lambda p: any(v == 0 for v in p.given_value("W2")),
        "an entry of b₁ is 0 (forgetting it would not show there)": lambda p: any(
            v == 0 for v in p.given_value("b1")),
        "b₂ is 0 (forgetting it would not show)": lambda p: zero(p.given_value("b2")),
        "a row or a column of W₁ is 0": lambda p: has_zero_row(p.given_value("W1")) or has_zero_row(p.given_value("W1").T),
        "the SGD step does not lower the loss at 4 places": lambda p: "L_new" in p.key_facts
        and p.answer("L") - p.key_facts["L_new"] < Rational(1, 10**PLACES),
        # max(∂L/∂h, 0), ReLU applied to the gradient instead of its mask, is the classic slip.
        "ReLU of the upstream gradient gives the same ∂L/∂z": lambda p: p.answer("dh").applyfunc(
            lambda g: max(g, 0)) == p.answer("dz"),
        **product_rule("z = x·W₁ + b₁", lambda p: (p.given_value("x"), p.given_value("W1"), p.answer("z"))),
        **product_rule("∂L/∂W₁ = xᵀ·∂L/∂z", lambda p: (p.given_value("x").T, p.answer("dz"))),
    },
)


def _biases(rng: Rng, xw: list, cut: int | None) -> list[Rational] | None:
    """b₁ putting each unit's z on its planned side of 0 (negative only at `cut`), never 0, within ±Z_LIMIT."""
    biases = []
    for j, v in enumerate(xw):
        fine = [b for b in BIASES if v + b != 0 and abs(v + b) <= Z_LIMIT and (v + b < 0) == (j == cut)]
        if not fine:
            return None
        biases.append(Rational(rng.choice(fine)))
    return biases


def _draw(rng: Rng, inputs: int, width: int, cut: int | None):
    """x, W₁, b₁ with the planned cut; then W₂ and b₂ keeping out small; then the target t."""
    while True:
        x = ImmutableMatrix(1, inputs, [rng.choice(X_VALUES) for _ in range(inputs)])
        w1 = ImmutableMatrix(inputs, width, [rng.integer(-2, 2) for _ in range(inputs * width)])
        biases = _biases(rng, list(x * w1), cut)
        if biases is not None and not has_zero_row(w1) and not has_zero_row(w1.T):
            break
    b1 = ImmutableMatrix([biases])
    h = relu(x * w1 + b1)
    while True:
        w2 = ImmutableMatrix(width, 1, [rng.choice(W2_VALUES) for _ in range(width)])
        b2 = Rational(rng.choice(B2_VALUES))
        out = (h * w2)[0, 0] + b2
        if abs(out) <= OUT_LIMIT:
            break
    t = out - rng.choice(ERRORS)
    return x, w1, b1, w2, b2, t


def _q(name: str, symbol: str, value) -> Quantity:
    return Quantity(name, Tex(symbol), value)


def _grad(name: str, of: str, value) -> Quantity:
    return Quantity(name, Tex(f"\\frac{{\\partial L}}{{\\partial {of}}}"), value)


def generate(rng: Rng, options: dict[str, str]) -> Problem:
    """Draw the network (a unit cut in most draws), then work the forward pass, the loss and the backward pass."""
    inputs, width = int(options["inputs"]), int(options["hidden"])
    cut = None if rng.below(NO_CUT) == 0 else rng.below(width)
    x, w1, b1, w2, b2, t = _draw(rng, inputs, width, cut)
    z = _q("z", "z", x * w1 + b1)
    h = _q("h", "h", relu(z.value))
    out_value = (h.value * w2)[0, 0] + b2
    out = _q("out", r"\mathrm{out}", out_value)
    error = out_value - t
    loss = _q("L", "L", error ** 2 / 2)
    dout = _grad("dout", r"\mathrm{out}", error)
    dout_m = ImmutableMatrix([[error]])
    dw2 = _grad("dW2", "W_2", h.value.T * dout_m)
    db2 = _grad("db2", "b_2", error)
    dh = _grad("dh", "h", dout_m * w2.T)
    mask = z.value.applyfunc(lambda v: Rational(1) if v > 0 else Rational(0))
    dz = _grad("dz", "z", dh.value.multiply_elementwise(mask))
    dw1 = _grad("dW1", "W_1", x.T * dz.value)
    db1 = _grad("db1", "b_1", dz.value)

    parts = [
        Part(Tex(r"Compute the pre-activations $z = x\,W_1 + b_1$."), (z,),
             (affine_step(Tex(r"$x$ times column $j$ of $W_1$, plus $b_1[0,j]$."), x, w1, b1, Tex(r"z = x\,W_1 + b_1"), z),)),
        Part(Tex(r"Apply the activation: $h = \operatorname{ReLU}(z)$."), (h,), (relu_step(z.value, h, "z"),)),
        Part(Tex(r"Compute the output $\mathrm{out} = h\,W_2 + b_2$."), (out,), (_out_step(h.value, w2, b2, out),)),
        Part(Tex(r"Compute the loss $L = \tfrac12\,(\mathrm{out} - t)^2$."), (loss,), (_loss_step(out_value, t, loss),)),
        Part(Tex(r"Backward: compute $\partial L/\partial \mathrm{out}$."), (dout,), (_dout_step(out_value, t, dout),)),
        Part(Tex(r"Compute $\partial L/\partial W_2$ and $\partial L/\partial b_2$."), (dw2, db2),
             _output_layer_steps(h.value, error, dw2, db2)),
        Part(Tex(r"Compute the gradient passed back to the hidden layer, $\partial L/\partial h$."), (dh,),
             (transpose_step("W2", "W_2", w2, _q("W2T", r"W_2^{\mathsf T}", w2.T)),
              product_step(Tex(r"$\partial L/\partial \mathrm{out}$ times column $j$ of $W_2^{\mathsf T}$ (row $j$ of $W_2$)."),
                           dout_m, w2.T,
                           Tex(r"\frac{\partial L}{\partial h} = \frac{\partial L}{\partial \mathrm{out}}\,W_2^{\mathsf T}"), dh,
                           checks=(Tex(r"\text{Its shape is the shape of } h\text{; every entry is } "
                                       r"\partial L/\partial \mathrm{out} \text{ times a weight of } W_2\text{, none of them 0.}"),)))),
        Part(Tex(r"Backward through the ReLU: compute $\partial L/\partial z$."), (dz,), (_relu_back_step(z.value, dh.value, dz),)),
        Part(Tex(r"Compute $\partial L/\partial W_1$ and $\partial L/\partial b_1$."), (dw1, db1),
             (transpose_step("x", "x", x, _q("xT", r"x^{\mathsf T}", x.T)),
              product_step(Tex(r"Row $i$ of $x^{\mathsf T}$ (just $x[0,i]$) times $\partial L/\partial z$."), x.T, dz.value,
                           Tex(r"\frac{\partial L}{\partial W_1} = x^{\mathsf T}\,\frac{\partial L}{\partial z}"), dw1,
                           checks=(Tex(r"\text{Its shape } " + f"({inputs}\\times {width})" + r"\text{ is the shape of } W_1"
                                       r"\text{; each row is a multiple of } \partial L/\partial z."),)),
              Step(text=Tex(r"$b_1$ is added to $z$ once, so its gradient is $\partial L/\partial z$ itself."),
                   formula=Tex(r"\frac{\partial L}{\partial b_1} = \frac{\partial L}{\partial z}"), result=db1))),
        _zeros_part(x, z.value, w2, error, width),
    ]
    given = [_q("x", "x", x), _q("W1", "W_1", w1), _q("b1", "b_1", b1), _q("W2", "W_2", w2), _q("b2", "b_2", b2),
             _q("t", "t", t)]
    facts, key_facts = {"update": options["update"]}, {}
    if options["update"] == "sgd":
        part, key_facts = _sgd_part(x, t, {"W1": w1, "b1": b1, "W2": w2, "b2": b2},
                                    {"W1": dw1.value, "b1": db1.value, "W2": dw2.value, "b2": error}, loss.value)
        parts.append(part)
        facts["eta"] = ETA
    return Problem.draft(given=given, parts=parts, facts=facts, key_facts=key_facts)


def _out_step(h: ImmutableMatrix, w2: ImmutableMatrix, b2, out: Quantity) -> Step:
    """out = Σⱼ h[0,j]·W₂[j,0] + b₂, written out (out is a number, so no matrix step)."""
    terms = tuple(Term((h[0, j], w2[j, 0])) for j in range(h.cols)) + (Term((b2,)),)
    return Step(text=Tex(r"$h$ times the column $W_2$, plus $b_2$."), formula=Tex(r"\mathrm{out} = h\,W_2 + b_2"),
                shapes=Tex(f"(1 \\times {h.cols}) \\cdot ({h.cols} \\times 1) + (1 \\times 1) \\to (1 \\times 1)"),
                expansions=(Expansion(Tex(r"\mathrm{out}"), terms, out.value),), result=out)


def _loss_step(out, t, loss: Quantity) -> Step:
    error = out - t
    return Step(text=Tex("Square the error and halve it."), formula=Tex(r"L = \tfrac12\,(\mathrm{out} - t)^2"),
                lines=(Tex(f"L = \\tfrac12\\,\\left({number_tex(out)} - {factor_tex(t)}\\right)^2 = "
                           f"\\tfrac12 \\cdot \\left({number_tex(error)}\\right)^2 = {number_tex(loss.value)}"),),
                result=loss)


def _dout_step(out, t, dout: Quantity) -> Step:
    return Step(text=Tex(r"The derivative of $\tfrac12 u^2$ is $u$: the $\tfrac12$ cancels the 2 of the square."),
                formula=Tex(r"\frac{\partial L}{\partial \mathrm{out}} = \mathrm{out} - t"),
                lines=(Tex(f"\\frac{{\\partial L}}{{\\partial \\mathrm{{out}}}} = {number_tex(out)} - {factor_tex(t)} "
                           f"= {number_tex(dout.value)}"),),
                result=dout,
                checks=(Tex(r"\text{Its sign says which way out should move: } "
                            + (r"\text{positive, out is too large.}" if dout.value > 0 else r"\text{negative, out is too small.}")),))


def _output_layer_steps(h: ImmutableMatrix, error, dw2: Quantity, db2: Quantity) -> tuple[Step, ...]:
    cut = [j for j in range(h.cols) if h[0, j] == 0]
    checks = (Tex(r"\text{Its shape } " + f"({h.cols}\\times 1)" + r"\text{ is the shape of } W_2"
                  + ("" if not cut else r"\text{; row } " + str(cut[0]) + r"\text{ is 0, since } "
                     + entry_label("h", 0, cut[0]) + r" = 0\text{ (the ReLU cut that unit).}")),)
    return (transpose_step("h", "h", h, _q("hT", r"h^{\mathsf T}", h.T)),
            product_step(Tex(r"Row $j$ of $h^{\mathsf T}$ (just $h[0,j]$) times $\partial L/\partial \mathrm{out}$."), h.T,
                         ImmutableMatrix([[error]]),
                         Tex(r"\frac{\partial L}{\partial W_2} = h^{\mathsf T}\,\frac{\partial L}{\partial \mathrm{out}}"), dw2,
                         checks=checks),
            Step(text=Tex(r"$b_2$ is added to out once, so its gradient is $\partial L/\partial \mathrm{out}$ itself."),
                 formula=Tex(r"\frac{\partial L}{\partial b_2} = \frac{\partial L}{\partial \mathrm{out}}"), result=db2))


def _relu_back_step(z: ImmutableMatrix, dh: ImmutableMatrix, dz: Quantity) -> Step:
    mask = z.applyfunc(lambda v: Rational(1) if v > 0 else Rational(0))
    cut = [j for j in range(z.cols) if z[0, j] < 0]
    lines = [Tex(f"\\mathbf{{1}}[z > 0] = {matrix_tex(mask)}")]
    if cut:
        j = cut[0]
        lines.append(Tex(f"\\frac{{\\partial L}}{{\\partial z}}[0,{j}] = {factor_tex(dh[0, j])} \\cdot 0 = 0"
                         f" \\quad\\text{{since }} z[0,{j}] = {number_tex(z[0, j])} < 0"))
        check = Tex(r"\text{The gradient reached the cut unit (} \partial L/\partial h \ne 0 \text{ there) and stops at the ReLU.}")
    else:
        check = Tex(r"\text{Every } z[0,j] > 0\text{: the mask is all ones and } \partial L/\partial z = \partial L/\partial h.")
    return Step(text=Tex("ReLU's slope is 1 where $z > 0$ and 0 where $z < 0$: multiply entry by entry by the mask."),
                formula=Tex(r"\frac{\partial L}{\partial z} = \frac{\partial L}{\partial h} \odot \mathbf{1}[z > 0]"),
                lines=tuple(lines), result=dz, checks=(check,))


def _zeros_part(x: ImmutableMatrix, z: ImmutableMatrix, w2: ImmutableMatrix, error, width: int) -> Part:
    """Which hidden unit's gradients are 0 (or none), and why: a choice, and a reason chosen from three."""
    cut = [j for j in range(width) if z[0, j] < 0]
    units = (("none", "none"),) + tuple((str(j), f"unit {j}") for j in range(width))
    which = Quantity("zero_unit", Tex(r"\text{unit}"), Choice(str(cut[0]) if cut else "none", units))
    why = Quantity("why", Tex(r"\text{why}"), Choice("A" if cut else "C", REASONS))
    prompt = Tex(
        r"Look back at the gradients of parts (f) to (i). Are some of their entries exactly 0? If so, they belong to "
        r"one hidden unit $j$: tick it (or none). Then tick the reason.\par "
        r"(A) $z[0,j] < 0$: the ReLU cut unit $j$, so $h[0,j] = 0$ in the forward pass, and its slope "
        r"$\operatorname{ReLU}'(z[0,j]) = 0$ stops the gradient in the backward pass.\par "
        r"(B) $h[0,j] = 0$, so $\partial L/\partial h[0,j] = 0$: no gradient reaches unit $j$ from the output.\par "
        r"(C) No unit is cut: every $z[0,j] > 0$, so the ReLU passes every gradient and none is 0.")
    if cut:
        j = cut[0]
        dh = error * w2[j, 0]
        rows = r",\ ".join(f"\\frac{{\\partial L}}{{\\partial W_1}}[{i},{j}] = {factor_tex(x[0, i])} \\cdot 0 = 0"
                           for i in range(x.cols))
        lines = (Tex(f"\\frac{{\\partial L}}{{\\partial W_2}}[{j},0] = h[0,{j}] \\cdot \\frac{{\\partial L}}{{\\partial \\mathrm{{out}}}}"
                     f" = 0 \\cdot {factor_tex(error)} = 0"),
                 Tex(f"\\frac{{\\partial L}}{{\\partial h}}[0,{j}] = \\frac{{\\partial L}}{{\\partial \\mathrm{{out}}}} \\cdot W_2[{j},0]"
                     f" = {factor_tex(error)} \\cdot {factor_tex(w2[j, 0])} = {number_tex(dh)} \\ne 0"),
                 Tex(f"\\frac{{\\partial L}}{{\\partial z}}[0,{j}] = {factor_tex(dh)} \\cdot \\operatorname{{ReLU}}'({number_tex(z[0, j])})"
                     f" = {factor_tex(dh)} \\cdot 0 = 0"),
                 Tex(rows),
                 Tex(f"\\frac{{\\partial L}}{{\\partial b_1}}[0,{j}] = \\frac{{\\partial L}}{{\\partial z}}[0,{j}] = 0"))
        text = Tex(f"$z[0,{j}] = {number_tex(z[0, j])} < 0$: the ReLU cut unit {j}. In the forward pass $h[0,{j}] = 0$, so "
                   f"row {j} of $\\partial L/\\partial W_2$ is 0; in the backward pass the gradient does reach the unit "
                   f"($\\partial L/\\partial h[0,{j}] \\ne 0$, so (B) is wrong) but ReLU's slope 0 stops it, so "
                   f"$\\partial L/\\partial z[0,{j}]$, column {j} of $\\partial L/\\partial W_1$ and "
                   f"$\\partial L/\\partial b_1[0,{j}]$ are 0. Every other entry is not: no input, no weight of $W_2$ "
                   r"and not $\partial L/\partial \mathrm{out}$ is 0. The reason is (A).")
        steps = (Step(text=text, lines=lines, result=which),
                 Step(text=Tex(r"A unit that is cut for every input never learns: it gets no gradient (a ``dead'' ReLU)."),
                      result=why))
    else:
        text = Tex(r"Every $z[0,j] > 0$: the ReLU cuts nothing, its mask is all ones and $\partial L/\partial z = "
                   r"\partial L/\partial h$. No input, no weight of $W_2$ and not $\partial L/\partial \mathrm{out}$ is 0, "
                   r"so no gradient entry is 0: none, and the reason is (C).")
        steps = (Step(text=text, lines=(Tex(f"z = {matrix_tex(z)}"),), result=which),
                 Step(text=Tex("(A) and (B) need a unit that is cut; here none is."), result=why))
    return Part(prompt, (which, why), steps)


def _sgd_part(x: ImmutableMatrix, t, params: dict, grads: dict, loss) -> tuple[Part, dict]:
    """One SGD step on every parameter; the key runs the forward pass again to show that the loss went down.
    Returns the part and the new output and loss (key facts: the contract checks the fall)."""
    steps, answers, new = [], [], {}
    for name, symbol in (("W1", "W_1"), ("b1", "b_1"), ("W2", "W_2")):
        step, quantity = sgd_update_step(symbol, f"{name}_new", params[name], grads[name], ETA)
        steps.append(step)
        answers.append(quantity)
        new[name] = quantity.value
    b2_new = Quantity("b2_new", Tex("b_2'"), params["b2"] - ETA * grads["b2"])
    steps.append(Step(text=Tex(f"The same for the number $b_2$, with $\\partial L/\\partial b_2 = {number_tex(grads['b2'])}$."),
                      formula=Tex(r"b_2' = b_2 - \eta\,\frac{\partial L}{\partial b_2}"),
                      lines=(Tex(f"b_2' = {number_tex(params['b2'])} - {number_tex(ETA)} \\cdot {factor_tex(grads['b2'])} "
                                 f"= {number_tex(b2_new.value)}"),),
                      result=b2_new))
    answers.append(b2_new)
    out = (relu(x * new["W1"] + new["b1"]) * new["W2"])[0, 0] + b2_new.value
    new_loss = (out - t) ** 2 / 2
    steps.append(Step(text=Tex("Forward again with the new weights, to see what the step did (to 4 places)."),
                      lines=(Tex(f"\\mathrm{{out}}' {_places(out)}, \\qquad L' = \\tfrac12\\,"
                                 f"(\\mathrm{{out}}' - t)^2 {_places(new_loss)}"),),
                      checks=(Tex(f"L' {_places(new_loss)} < L = {number_tex(loss)}"
                                  r"\text{: the step lowered the loss.}"),)))
    part = Part(Tex(f"Take one step of gradient descent with learning rate $\\eta = {number_tex(ETA)}$: compute "
                    r"$W_1'$, $b_1'$, $W_2'$ and $b_2'$."), tuple(answers), tuple(steps))
    return part, {"out_new": out, "L_new": new_loss}


def _places(value) -> str:
    """'= 0.25' for a value that ends within 4 places, else '≈ 0.2519' (the exact value is a long fraction)."""
    return ("= " if (value * 10**PLACES).is_Integer else "\\approx ") + decimal_tex(value, PLACES)
