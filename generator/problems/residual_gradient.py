"""Residual connections and vanishing gradients: a stack of layers with and without skip paths, and y = x + f(x)."""

from __future__ import annotations

from fractions import Fraction

import sympy
from sympy import ImmutableMatrix, Rational

from generator.core.forward import plain_product, plain_rows
from generator.core.problem import Bounds, Choice, Contract, Expansion, Part, Problem, Quantity, Step, Term, Tex, matrix
from generator.core.registry import Option
from generator.core.rng import Rng
from generator.core.slips import plain_slip_hidden, symmetric
from generator.core.worked import product_step
from generator.core.forward import add_step
from generator.documents.render import factor_tex, matrix_tex, number_tex

TITLE = "Residual connections and vanishing gradients"
OPTIONS = [Option("layers", ("3", "4"), "4", "layers in the stack (each with its own local derivative a_k)")]
# Local derivatives of a layer that shrinks its input: small fractions whose 1 + a stays small too (3/2, 4/3, 5/4, 7/5).
FACTORS = tuple(Fraction(v) for v in ("1/2", "1/3", "1/4", "2/5", "2/3", "3/4"))
TOPS = (2, 3, 4, 5, 6)  # ∂L/∂h_L: never 1, where r·(1 + a) and r + a (the factor added, not multiplied) agree
DEEP_FACTORS = tuple(Fraction(v) for v in ("1/2", "1/3", "1/4", "2/5"))
THRESHOLDS = tuple(Fraction(1, 10**k) for k in (1, 2, 3))
COUNTS = tuple(str(n) for n in range(2, 11))  # the choices offered for the layer count
MARGIN = Fraction(11, 10)
POWER_DENOMINATOR = 3000  # the key lists a¹ … aⁿ: (2/5)⁸ = 256/390625 is no number to meet by hand  # the count is no near miss: a^(n−1) ≥ 1.1·t and a^n ≤ t/1.1
JACOBIAN_ENTRIES = tuple(Fraction(v) for v in ("-1/2", "-1/4", "0", "1/4", "1/2"))
NONZERO = (-2, -1, 1, 2)
WHY = (
    ("plain", "the plain network: layers that shrink the gradient keep its steps small"),
    ("residual", "the residual network: with the skip path each factor is 1 + a, at least 1"),
    ("both", "both: the chain rule multiplies the same factors in either network"),
    ("neither", "neither: a product of many factors always vanishes in a deep network"),
)
LIMIT_NUMERATOR, LIMIT_DENOMINATOR, LIMIT = 120, 60, 24


def _layers(p: Problem) -> int:
    return int(p.options.get("layers", "4"))


def _factors(p: Problem) -> list:
    return [p.given_value(f"a{k}") for k in range(1, _layers(p) + 1)]


def _count(a: Fraction, t: Fraction) -> int:
    """The fewest layers n with aⁿ < t."""
    n, power = 1, a
    while power >= t:
        n, power = n + 1, power * a
    return n


def _large_powers(a: Fraction, t: Fraction) -> bool:
    return (a ** _count(a, t)).denominator > POWER_DENOMINATOR


def _deep(p: Problem) -> tuple[Fraction, Fraction]:
    return tuple(Fraction(int(p.facts[k].p), int(p.facts[k].q)) for k in ("deep_a", "t"))


def _near_miss(a: Fraction, t: Fraction) -> bool:
    n = _count(a, t)
    return a ** (n - 1) < MARGIN * t or a ** n * MARGIN > t


CONTRACT = Contract(
    given=Bounds(6, 1000, Rational(6)),  # g ≤ 6, the threshold down to 1/1000
    intermediate=Bounds(LIMIT_NUMERATOR, LIMIT_DENOMINATOR, Rational(LIMIT)),
    answer=Bounds(LIMIT_NUMERATOR, LIMIT_DENOMINATOR, Rational(LIMIT)),
    forbidden={
        # Two equal factors would let a product taken from the wrong end (layer 1 first) give the same running values.
        "two layers have the same factor": lambda p: len(set(_factors(p))) < _layers(p),
        "the top gradient is 1 (r + a would equal r·(1 + a))": lambda p: p.given_value("g") == 1,
        "the layer count is a near miss": lambda p: _near_miss(*_deep(p)),
        "a power aⁿ the key lists has a denominator over 3000": lambda p: _large_powers(*_deep(p)),
        "J is symmetric (a transposed J looks right)": lambda p: symmetric(p.given_value("J")),
        "J has a zero row or column": lambda p: any(all(v == 0 for v in p.given_value("J").row(i)) for i in range(2))
        or any(all(v == 0 for v in p.given_value("J").col(j)) for j in range(2)),
        "an entry of ∂L/∂y·J is 0 (that entry of ∂L/∂x would only copy ∂L/∂y)": lambda p: 0 in p.answer("gx_branch"),
        # slips.product_rule's test on plain Fractions (hidden_product_slips without sympy's arithmetic).
        "a slip in ∂L/∂y·J (transpose, order) gives the same answer": lambda p: plain_slip_hidden(
            plain_rows(p.given_value("gy")), plain_rows(p.given_value("J"))),
        "a slip in ∂L/∂y + ∂L/∂y·J (transpose, order) gives the same answer": lambda p: plain_slip_hidden(
            plain_rows(p.given_value("gy")), plain_rows(p.given_value("J")), plain_rows(p.answer("gx"))),
    },
)


def _clean_chain(g: int, factors: list[Fraction]) -> bool:
    """Every running value of both chains within the contract's bounds."""
    plain, res = Fraction(g), Fraction(g)
    for a in reversed(factors):
        branch = res * a
        plain, res = plain * a, res + branch
        for v in (plain, branch, res):
            if abs(v.numerator) > LIMIT_NUMERATOR or v.denominator > LIMIT_DENOMINATOR or abs(v) > LIMIT:
                return False
    return True


def _draw_chain(rng: Rng, layers: int) -> tuple[int, list[Fraction]]:
    while True:
        factors = [rng.choice(FACTORS) for _ in range(layers)]
        g = rng.choice(TOPS)
        if len(set(factors)) == layers and _clean_chain(g, factors):
            return g, factors


def _draw_deep(rng: Rng) -> tuple[Fraction, Fraction]:
    while True:
        a, t = rng.choice(DEEP_FACTORS), rng.choice(THRESHOLDS)
        if not _near_miss(a, t) and not _large_powers(a, t) and str(_count(a, t)) in COUNTS:
            return a, t


def _draw_jacobian(rng: Rng) -> tuple[list[list[Fraction]], list[list[int]]]:
    while True:
        j = [[rng.choice(JACOBIAN_ENTRIES) for _ in range(2)] for _ in range(2)]
        gy = [[rng.choice(NONZERO) for _ in range(2)]]
        if j[0][1] == j[1][0] or any(not any(row) for row in j) or any(not any(col) for col in zip(*j)):
            continue
        branch = plain_product(gy, j)
        gx = [[a + b for a, b in zip(gy[0], branch[0])]]
        if all(branch[0]) and not plain_slip_hidden(gy, j) and not plain_slip_hidden(gy, j, gx):
            return j, gy


def _r(x: Fraction) -> Rational:
    return Rational(x.numerator, x.denominator)


def _plain_part(g, factors, plain_q: list[Quantity]) -> Part:
    """(a) Without skips: each layer multiplies the gradient by its own a_k."""
    layers = len(factors)
    lines = []
    previous = g
    for k in range(layers, 0, -1):
        value = previous * factors[k - 1]
        lines.append(Expansion(Tex(f"g_{{{k - 1}}} = g_{{{k}}}\\,a_{{{k}}}"), (Term((previous, factors[k - 1])),), value))
        previous = value
    total = sympy.Mul(*factors)
    return Part(Tex(r"The plain network: compute the gradient $g_k = \partial L/\partial h_k$ reaching each layer's input, "
                    f"from $g_{{{layers - 1}}}$ down to $g_0$."),
                tuple(plain_q),
                (Step(text=Tex(r"Chain rule: $h_k = a_k\,h_{k-1}$, so $\partial h_k/\partial h_{k-1} = a_k$ and each layer "
                               "multiplies the gradient by its factor."),
                      formula=Tex(r"g_{k-1} = g_k\,a_k"), expansions=tuple(lines), result=plain_q[-1],
                      checks=(Tex(f"g_0 = g\\,\\textstyle\\prod_k a_k = {number_tex(g)} \\cdot {number_tex(total)} = "
                                  f"{number_tex(g * total)}\\text{{: every factor below 1 shrinks it.}}"),)),))


def _residual_part(g, factors, branch_q: list[Quantity], res_q: list[Quantity]) -> Part:
    """(b) With skips: the block's + copies r_k to the skip path, the sublayer's path carries r_k·a_k, and they add."""
    layers = len(factors)
    steps = []
    previous = g
    for n, k in enumerate(range(layers, 0, -1)):
        branch = previous * factors[k - 1]
        steps.append(Step(
            text=Tex(f"Block {k}: the sublayer's path carries $r_{{{k}}}\\,a_{{{k}}}$, the skip path $r_{{{k}}}$ "
                     "unchanged; $h_{k-1}$ fed both, so the two add." if n == 0 else f"Block {k}, the same way."),
            formula=Tex(f"r_{{{k - 1}}} = r_{{{k}}} + r_{{{k}}}\\,a_{{{k}}} = r_{{{k}}}\\,(1 + a_{{{k}}})"),
            expansions=(Expansion(Tex(f"r_{{{k}}}\\,a_{{{k}}}"), (Term((previous, factors[k - 1])),), branch),
                        Expansion(Tex(f"r_{{{k - 1}}}"), (Term((previous,)), Term((branch,))), previous + branch)),
            result=res_q[n]))
        previous = previous + branch
    product = sympy.Mul(*(1 + a for a in factors))
    steps[-1] = Step(text=steps[-1].text, formula=steps[-1].formula, expansions=steps[-1].expansions, result=res_q[-1],
                     checks=(Tex(r"r_0 = g\,\textstyle\prod_k (1 + a_k) = " + number_tex(g) + r" \cdot "
                                 + r" \cdot ".join(factor_tex(1 + a) for a in reversed(factors)) + " = "
                                 + number_tex(g * product) + r" \ge g\text{: no factor is below 1.}"),))
    answers = tuple(q for pair in zip(branch_q, res_q) for q in pair)
    return Part(Tex(r"The residual network, block by block from the top: compute the sublayer's share $r_k\,a_k$ and the "
                    r"gradient $r_{k-1} = \partial L/\partial h_{k-1}$ reaching the block's input."),
                answers, tuple(steps))


def _count_part(a, t, count_q: Quantity) -> Part:
    """(c) A deeper plain network with one repeated factor: the fewest layers that take the gradient below t·g."""
    n = _count(a, t)
    powers = [Tex(f"a^{{{k}}} = {number_tex(a ** k)} {'<' if a ** k < t else '>'} {number_tex(t)}") for k in range(1, n + 1)]
    return Part(Tex(f"A deeper plain network repeats one layer with $a = {number_tex(a)}$. After how many layers does the "
                    f"gradient reaching the bottom first fall below ${number_tex(t)}$ of the gradient at the top?"),
                (count_q,),
                (Step(text=Tex(r"After $n$ layers the gradient is $g\,a^n$: find the first $n$ with $a^n$ below the threshold."),
                      formula=Tex(r"\frac{g_0}{g} = a^n"), lines=tuple(powers), result=count_q,
                      checks=(Tex(f"\\text{{With skip paths: }} (1 + a)^n = \\left({number_tex(1 + a)}\\right)^n \\ge 1,"),
                              Tex(r"\text{so the residual network's gradient never falls below the threshold, however deep.}"))),))


def _why_part(why_q: Quantity) -> Part:
    return Part(Tex("Which network still trains its first layer when it is deep, and why? Choose one."),
                (why_q,),
                (Step(text=Tex(r"Multiply out $\prod_k (1 + a_k)$: one of its terms is $1 \cdot 1 \cdots 1$, the path that takes "
                               "every skip connection. That path delivers the top gradient to the first layer unchanged, "
                               "whatever the sublayers do; the plain network has only the path $\\prod_k a_k$, which shrinks "
                               "with every layer whose factor is below 1."),
                      formula=Tex(r"\prod_k (1 + a_k) = 1 + \sum_k a_k + \sum_{j<k} a_j a_k + \dots \ge 1"),
                      result=why_q),))


def _jacobian_part(j: ImmutableMatrix, gy: ImmutableMatrix, branch_q: Quantity, gx_q: Quantity) -> Part:
    """(e) The vector case: ∂y/∂x = I + J, so ∂L/∂x = ∂L/∂y·(I + J) = ∂L/∂y + ∂L/∂y·J."""
    identity = ImmutableMatrix.eye(2)
    return Part(Tex(r"The vector case: compute $\frac{\partial L}{\partial y}\,J$ (what a block without its skip path would pass "
                    r"to $x$), then $\frac{\partial L}{\partial x} = \frac{\partial L}{\partial y}\,(I + J)$."),
                (branch_q, gx_q),
                (product_step(Tex(r"Row vector times Jacobian: $\partial L/\partial x_j = \sum_i \partial L/\partial y_i\,"
                                  r"\partial y_i/\partial x_j$, so entry $j$ is $\partial L/\partial y$ times column $j$ of $J$."),
                              gy, j, Tex(r"\frac{\partial L}{\partial y}\,J"), branch_q),
                 add_step(Tex(r"$y = x + f(x)$, so $\partial y/\partial x = I + J$ and the identity's share is "
                              r"$\partial L/\partial y$ itself."),
                          gy, branch_q.value, Tex(r"\frac{\partial L}{\partial x} = \frac{\partial L}{\partial y}\,(I + J) = "
                                                  r"\frac{\partial L}{\partial y} + \frac{\partial L}{\partial y}\,J"),
                          gx_q, expand="all",
                          checks=(Tex(f"I + J = {matrix_tex(identity + j)}\\text{{, and }} {matrix_tex(gy)}\\,{matrix_tex(identity + j)} = "
                                      f"{matrix_tex(gx_q.value)}."),
                                  Tex(r"\text{However small } J \text{ makes } \tfrac{\partial L}{\partial y}\,J\text{, the skip path "
                                      r"still delivers } \tfrac{\partial L}{\partial y}\text{.}")))))


def generate(rng: Rng, options: dict[str, str]) -> Problem:
    """Draw the stack's factors and top gradient, the deep network's factor and threshold, and the block's Jacobian."""
    layers = int(options["layers"])
    g_int, factors_plain = _draw_chain(rng, layers)
    deep_a, t = _draw_deep(rng)
    j_plain, gy_plain = _draw_jacobian(rng)
    g, factors = Rational(g_int), [_r(a) for a in factors_plain]
    plain_q, branch_q, res_q = [], [], []
    plain = res = g
    for k in range(layers, 0, -1):
        plain = plain * factors[k - 1]
        plain_q.append(Quantity(f"g{k - 1}", Tex(f"g_{{{k - 1}}}"), plain))
        branch = res * factors[k - 1]
        branch_q.append(Quantity(f"branch{k}", Tex(f"r_{{{k}}}\\,a_{{{k}}}"), branch))
        res = res + branch
        res_q.append(Quantity(f"r{k - 1}", Tex(f"r_{{{k - 1}}}"), res))
    count_q = Quantity("layers_needed", Tex("n"), Choice(str(_count(deep_a, t)), tuple((c, c) for c in COUNTS)))
    why_q = Quantity("trains", Tex(r"\text{network}"), Choice("residual", WHY))
    j, gy = matrix(j_plain), matrix(gy_plain)
    gx_branch_q = Quantity("gx_branch", Tex(r"\frac{\partial L}{\partial y}\,J"), gy * j)
    gx_q = Quantity("gx", Tex(r"\frac{\partial L}{\partial x}"), gy + gy * j)
    parts = [_plain_part(g, factors, plain_q), _residual_part(g, factors, branch_q, res_q),
             _count_part(_r(deep_a), _r(t), count_q), _why_part(why_q), _jacobian_part(j, gy, gx_branch_q, gx_q)]
    given = ([Quantity(f"a{k}", Tex(f"a_{{{k}}}"), factors[k - 1]) for k in range(1, layers + 1)]
             + [Quantity("g", Tex("g"), g), Quantity("J", Tex("J"), j), Quantity("gy", Tex(r"\frac{\partial L}{\partial y}"), gy)])
    facts = {"deep_a": _r(deep_a), "t": _r(t), "layers": Rational(layers),
             "factor_list": Tex(r",\quad ".join(f"a_{{{k}}} = {number_tex(factors[k - 1])}" for k in range(1, layers + 1)))}
    return Problem.draft(given=given, parts=parts, facts=facts)
