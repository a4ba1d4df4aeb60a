"""Example 2, a single training step: Example 1's forward pass, the loss, dL/dz, dL/dW_out, an SGD update, and again."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from functools import cache, lru_cache
from typing import Callable

import sympy
from sympy import ImmutableMatrix, Rational

from generator.core.forward import (EXP_TABLE_KS, PLACES, decimal_softmax, ln_table_tex, table_log, table_log_ratio,
                                   table_softmax)
from generator.core.problem import Bounds, Choice, Contract, Part, Problem, Quantity, Step, Tex
from generator.core.readings import Reading, format_places
from generator.core.registry import Option
from generator.documents.render import decimal_tex, matrix_tex, number_tex
from generator.core.rng import Rng
from generator.core.worked import product_step, transpose_step
from generator.problems.example1 import BOOK_TARGET, DATA_OPTION, FORWARD_FORBIDDEN, VOCABULARY, Forward, draw_forward

TITLE = "Example 2: a single training step"
CHAINED = True
LEARNING_RATES = ("1/2", "1")
OPTIONS = [
    Option("d_k", ("1", "4"), "1", "width of queries and keys; √d_k = 1 or 2"),
    Option("lr", LEARNING_RATES, "1/2",
           "learning rate η; 1/2 or 1 keep the updated weights in fractions no finer than 1/24"),
    DATA_OPTION,  # book: also the book's task, A B → C
]
# The simple probabilities p̃ the backward pass uses: denominators with ln in the printed table, each entry
# within this distance of the true probability.
GIVEN_DENOMINATORS = range(2, 13)
PROBABILITY_TOLERANCE = Fraction(1, 20)
UPDATE_DENOMINATOR = 24  # the updated weights and logits stay in fractions no finer than 1/24


# The book's task A B → C (data=book): a rule of every training chain on the book's data.
BOOK_TASK_RULE = {"the book's target is not C": lambda p: p.options.get("data") == "book" and p.facts["target"] != "C"}


def predicts_target(problem: Problem) -> bool:
    """Does the model already predict the training target (nothing left to learn)?"""
    return problem.answer("next").value == problem.facts["target"]


def _new_logits(problem: Problem) -> list[Fraction]:
    return [Fraction(int(v.p), int(v.q)) for v in problem.answer("z_new")]


def _wrong_tie(problem: Problem) -> bool:
    """Do two wrong tokens share the largest new logit (the question would have two answers)?"""
    z_new, target = _new_logits(problem), int(problem.facts["target_index"])
    top = max(v for j, v in enumerate(z_new) if j != target)
    return sum(1 for j, v in enumerate(z_new) if j != target and v == top) > 1


CONTRACT = Contract(
    given=Bounds(4, 12, Rational(4)),
    intermediate=Bounds(240, 24, Rational(20)),
    answer=Bounds(240, 24, Rational(20)),
    rational_only=False,
    forbidden={
        **FORWARD_FORBIDDEN,
        "the model already predicts the target": predicts_target,
        "two wrong tokens tie for the most likely after the step": _wrong_tie,
        "the most likely wrong token's lead is invisible at 4 places":
            lambda p: likeliest_wrong(_new_logits(p), int(p.facts["target_index"])) is None,
        "a simple probability is 0": lambda p: any(v == 0 for v in p.facts["given_p"]),
        **BOOK_TASK_RULE,
    },
)


def _round(value: Decimal, places: int = PLACES) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def simple_probabilities(z: list[int]) -> list[Fraction] | None:
    """The fractions a_j/b (smallest b ≤ 12, every a_j ≥ 1, Σ = 1) within the tolerance of softmax(z), if any."""
    # softmax(z) depends on z − max z alone and follows any reordering of z: each shift is worked once, in sorted
    # order (usable_shifts asks about 500 shifts, 35 orders apart; the searches ask about the same few thousands of times).
    top = max(z)
    order = sorted(range(len(z)), key=z.__getitem__)
    found = _simple_probabilities(tuple(z[j] - top for j in order))
    if found is None:
        return None
    probabilities = [Fraction(0)] * len(z)
    for rank, j in enumerate(order):
        probabilities[j] = found[rank]
    return probabilities


@cache
def _simple_probabilities(shift: tuple[int, ...]) -> tuple[Fraction, ...] | None:
    """simple_probabilities of logits already shifted by their maximum (simple_probabilities passes them sorted)."""
    p = decimal_softmax(shift)
    tolerance = Decimal(PROBABILITY_TOLERANCE.numerator) / PROBABILITY_TOLERANCE.denominator
    for b in GIVEN_DENOMINATORS:
        counts = [int(_round(v * b, 0)) for v in p]
        if sum(counts) == b and min(counts) >= 1 and all(abs(Decimal(a) / b - v) <= tolerance for a, v in zip(counts, p)):
            return tuple(Fraction(a, b) for a in counts)
    return None


@cache
def table_probability(shift: tuple[int, ...], j: int) -> Reading:
    """p_j of softmax over whole logits already shifted by their maximum, worked from the printed e^k table."""
    return table_softmax(list(shift))[j]


# Digits of decimal_softmax that can be trusted: it works to 30 significant digits, and a probability is below 1.
CALCULATOR_SLACK = Fraction(1, 10**25)


def probability_after(z_new: list[Fraction], j: int) -> Reading:
    """p'_j after the update: the table route where every z' − max z' is printed, else the calculator's value."""
    return _probabilities_after(tuple(z_new))[j]


@lru_cache(maxsize=4096)
def _probabilities_after(z_new: tuple[Fraction, ...]) -> tuple[Reading, ...]:
    # The updated logits are mostly fractions, and the e^k table prints only whole k.
    top = max(z_new)
    shift = tuple(v - top for v in z_new)
    if all(t.denominator == 1 and t in EXP_TABLE_KS for t in shift):
        return tuple(table_probability(tuple(int(t) for t in shift), j) for j in range(len(z_new)))
    values = (Fraction(v) for v in decimal_softmax(z_new))
    return tuple(Reading(v, v - CALCULATOR_SLACK, v + CALCULATOR_SLACK) for v in values)


def rise_is_visible(before: Reading, after: Reading) -> bool:
    """Is every 4-place value a reading of the sheet allows for p after above every one it allows before?"""
    return before.rounded().high < after.rounded().low


def likeliest_wrong(z_new: list[Fraction], target: int) -> int | None:
    """The wrong token with the largest new probability, when the 4-place values the key prints show it for every
    reading (each above every other wrong token's by more than a unit); None for a tie or a near-tie."""
    wrong = [j for j in range(len(z_new)) if j != target]
    top = max(wrong, key=lambda j: z_new[j])
    if any(z_new[j] == z_new[top] for j in wrong if j != top):
        return None  # a tie: no reading can tell the two apart
    mine = probability_after(z_new, top).rounded()
    if all(probability_after(z_new, j).rounded().high < mine.low for j in wrong if j != top):
        return top
    return None


@cache
def usable_shifts() -> tuple[tuple[int, ...], ...]:
    """Every z − max z (one clear maximum, within the e^k table) whose softmax has simple probabilities near it."""
    return tuple(shift for shift in itertools.product(EXP_TABLE_KS, repeat=len(VOCABULARY))
                 if shift.count(0) == 1 and simple_probabilities(list(shift)) is not None)


def sgd_on_output(z: list[int], c: list[int], target: int, eta: Fraction, p_given: list[Fraction]) -> tuple[list[Fraction], list[Fraction]]:
    """dz = p̃ − y and the new logits z' = z − η‖c‖²·dz (W_out' = W_out − η cᵀdz, so z' = c W_out')."""
    dz = [p - (1 if j == target else 0) for j, p in enumerate(p_given)]
    norm = sum(v * v for v in c)
    return dz, [zj - eta * norm * d for zj, d in zip(z, dz)]


# A further chain's demand on the backward pass: called with dL/dz, W_out and the plain model (example1.plain_model).
BackwardTest = Callable[[list[Fraction], list[list[int]], dict], bool]
# What the chain's key shows of the step's effect, visible at 4 places: called with z − max z, z' − max z and the
# target (softmax, and so every probability the key prints, sees only differences of logits).
StepTest = Callable[[list[int], list[Fraction], int], bool]


def target_rise_visible(z: list[int], z_new: list[Fraction], target: int) -> bool:
    """The target's probability before (the table route of the probabilities part) and after show the rise."""
    before = table_probability(tuple(v - max(z) for v in z), target)
    return rise_is_visible(before, probability_after(z_new, target))


def likeliest_wrong_visible(z: list[int], z_new: list[Fraction], target: int) -> bool:
    """Example 2's question has one answer, and the key's 4-place probabilities show it."""
    return likeliest_wrong(z_new, target) is not None


def training_accept(target: int, eta: Fraction, extra: BackwardTest | None = None,
                    visible: StepTest = target_rise_visible):
    """The demands on Example 1's logits for a clean training step towards `target` whose effect `visible` shows."""
    # All but one demand depend on the logits only through their shape z − max z (with the context c): they are
    # decided once per shape, which many logit rows share (the candidates are z = top + shift for a few shifts).
    shapes: dict[tuple, tuple | None] = {}  # (z − max z, c) → (dL/dz, z − z') of a clean, visible step, else None

    def clean_shape(shift: tuple[int, ...], c: tuple[int, ...]) -> tuple | None:
        if shift[target] == 0 or 0 in c:
            # The model must not already predict the target (there is something to learn), and a zero in the
            # context would make a whole row of dL/dW_out zero.
            return None
        p_given = simple_probabilities(list(shift))
        if p_given is None:
            return None
        dz, z_new = sgd_on_output(list(shift), list(c), target, eta, p_given)  # z' − max z: z' less a whole number
        if any(v.denominator > UPDATE_DENOMINATOR for v in z_new):
            return None
        # The update needs fractions no finer than 1/24: η·c_i·dz_j for every entry.
        if any((eta * ci * d).denominator > UPDATE_DENOMINATOR for ci in c for d in dz):
            return None
        if not visible(list(shift), z_new, target):
            return None
        return dz, [t - v for t, v in zip(shift, z_new)]

    def clean_step(z: list[int], c: list[int]) -> list[Fraction] | None:
        top = max(z)
        key = (tuple(v - top for v in z), tuple(c))
        if key not in shapes:
            shapes[key] = clean_shape(*key)
        if shapes[key] is None:
            return None
        dz, fall = shapes[key]
        return dz if all(abs(v - f) <= 10 for v, f in zip(z, fall)) else None  # z' within ±10: the demand on z itself

    def accept(z: list[int], c: list[int], w_out: list[list[int]], model: dict) -> bool:
        # Only the further chain's test looks at W_out: the rest is decided once per logit shape (clean_step).
        dz = clean_step(z, c)
        return dz is not None and (extra is None or extra(dz, w_out, model))
    return accept


@dataclass(frozen=True)
class Training:
    """Example 1's forward pass plus what the training chains add: target, η and the Given probabilities."""

    forward: Forward
    target: int
    eta: Rational
    p_given: ImmutableMatrix
    y: ImmutableMatrix
    dz: ImmutableMatrix


def draw_training(rng: Rng, options: dict[str, str], extra: BackwardTest | None = None,
                  visible: StepTest = target_rise_visible) -> Training:
    """Draw a target first (the book's task: A B → C), then Example 1's model with logits that allow a clean step
    towards it."""
    book = options.get("data") == "book"
    target = BOOK_TARGET if book else rng.below(len(VOCABULARY))
    eta = Fraction(options["lr"]) if "lr" in options else Fraction(1, 2)
    forward = draw_forward(rng, int(options["d_k"]), training_accept(target, eta, extra, visible), usable_shifts(), book)
    p_given = ImmutableMatrix([simple_probabilities([int(v) for v in forward.z])])
    y = ImmutableMatrix([[1 if j == target else 0 for j in range(len(VOCABULARY))]])
    return Training(forward, target, Rational(eta.numerator, eta.denominator), p_given, y, p_given - y)


def loss_parts(tr: Training) -> list[Part]:
    """The loss from the Given probabilities, exactly and (a blank of its own) to 4 places; then dL/dz = p̃ − y."""
    name = VOCABULARY[tr.target]
    pt = tr.p_given[tr.target]
    loss = sympy.log(1 / pt)  # ln(5/2), not −ln(2/5)
    true_loss = -sympy.log(tr.forward.p[tr.target])
    # The sheet's method: −ln(a/b) = ln b − ln a from the ln k table (p̃ is printed in lowest terms).
    a, b = int(pt.p), int(pt.q)
    loss_reading = table_log_ratio(b, a)
    exact_q = Quantity("L_exact", Tex("L"), loss)
    loss_q = Quantity("L", Tex("L"), loss, reading=loss_reading)
    worked = (f"\\ln {b} \\approx {format_places(table_log(b).route)}" if a == 1 else
              f"\\ln {b} - \\ln {a} \\approx {format_places(table_log(b).route)} - {format_places(table_log(a).route)}"
              f" = {format_places(loss_reading.route)}")
    dz_q = Quantity("dz", Tex(r"\frac{\partial L}{\partial z}"), tr.dz)
    probabilities = r",\ ".join(f"\\tilde p_{{\\text{{{v}}}}} = {number_tex(x)}" for v, x in zip(VOCABULARY, tr.p_given))
    return [
        Part(Tex(f"Compute the loss $L = -\\ln \\tilde p_{{\\text{{{name}}}}}$ exactly, as a logarithm."),
             (exact_q,),
             (Step(text=Tex(r"$-\ln \frac{a}{b} = \ln \frac{b}{a}$."), formula=Tex(r"L = -\ln \tilde p_{\text{target}}"),
                   lines=(Tex(f"L = -\\ln {number_tex(pt)} = {number_tex(loss)}"),), result=exact_q),),
             given=Tex(f"From here on, use these simple probabilities, each within {Decimal(PROBABILITY_TOLERANCE.numerator) / PROBABILITY_TOLERANCE.denominator} of the "
                       f"true one: ${probabilities}$, and this table: \\[" + ln_table_tex() + "\\]")),
        Part(Tex(r"Give $L$ to 4 decimal places (use the table of $\ln k$)."),
             (loss_q,),
             (Step(text=Tex(r"$\ln \frac{b}{a} = \ln b - \ln a$, from the table."), formula=Tex(r"L = -\ln \tilde p_{\text{target}}"),
                   lines=(Tex(f"L = {worked}" if a == 1 else f"L = {number_tex(loss)} = {worked}"),),
                   result=loss_q,
                   checks=(Tex(r"\text{With the exact probability the loss would be } \approx "
                               + decimal_tex(true_loss, PLACES)),)),),
             decimals=True),
        Part(Tex(r"Compute $\partial L/\partial z = \tilde p - y$, where $y$ is the one-hot row of the target "
                 f"\\texttt{{{name}}}."),
             (dz_q,),
             (Step(text=Tex("Softmax and cross-entropy together have this simple gradient: subtract 1 at the target."),
                   formula=Tex(r"\frac{\partial L}{\partial z_j} = \tilde p_j - \mathbf{1}[j = \text{target}]"),
                   lines=(Tex(f"y = {matrix_tex(tr.y)}"),), result=dz_q,
                   checks=(Tex(r"\text{The entries sum to 0; only the target's is negative.}"),)),)),
    ]


def output_gradient_part(tr: Training) -> tuple[Part, Quantity]:
    """dL/dW_out = cᵀ·dL/dz."""
    f = tr.forward
    dw = f.c.T * tr.dz
    dw_q = Quantity("dW_out", Tex(r"\frac{\partial L}{\partial W_{\text{out}}}"), dw)
    part = Part(Tex(r"Compute $\partial L/\partial W_{\text{out}} = c^{\mathsf T}\,\partial L/\partial z$."), (dw_q,),
                (transpose_step("c", "c", f.c, Quantity("cT", Tex(r"c^{\mathsf T}"), f.c.T)),
                 product_step(Tex(r"Row $i$ of $c^{\mathsf T}$ (just $c_i$) times $\partial L/\partial z$."), f.c.T, tr.dz,
                              Tex(r"\frac{\partial L}{\partial W_{\text{out}}} = c^{\mathsf T}\,\frac{\partial L}{\partial z}"), dw_q,
                              checks=(Tex(r"\text{Its shape } " + f"({f.w_out.rows}\\times {f.w_out.cols})"
                                          + r"\text{ is the shape of } W_{\text{out}}\text{; each row is a multiple of } \partial L/\partial z."),))))
    return part, dw_q


def sgd_update_step(symbol: str, name: str, before: ImmutableMatrix, grad: ImmutableMatrix, eta: Rational) -> tuple[Step, Quantity]:
    """θ' = θ − η·g, with the sign check a student can run."""
    after = before - eta * grad
    result = Quantity(name, Tex(symbol + "'"), after)
    step = Step(text=Tex(f"Subtract $\\eta = {number_tex(eta)}$ times the gradient from every entry."),
                formula=Tex(f"{symbol}' = {symbol} - \\eta\\,\\frac{{\\partial L}}{{\\partial {symbol}}}"),
                lines=(Tex(f"\\eta\\,\\frac{{\\partial L}}{{\\partial {symbol}}} = {matrix_tex(eta * grad)}"),),
                result=result,
                checks=(Tex(r"\text{Every entry moved against the sign of its gradient (and entries with gradient 0 did not move).}"),))
    return step, result


def _q(x: Fraction) -> sympy.Rational:
    return Rational(x.numerator, x.denominator)


def _tt(j: int) -> str:
    return f"\\texttt{{{VOCABULARY[j]}}}"


def likeliest_wrong_steps(tr: Training, z_new: list[Fraction], answer: Quantity) -> tuple[Step, ...]:
    """Why the wrong token with the largest new probability is the one it is: each wrong logit fell by η‖c‖²·p̃_j,
    so the likeliest wrong token before the step (the prediction) fell at least as far as any other; whether it
    fell further than its lead decides, in words chosen from the numbers. Then every wrong token's 4-place
    probability before and after, and which of them rose, where one visibly did."""
    z = [int(v) for v in tr.forward.z]
    t = tr.target
    p_given = [Fraction(int(v.p), int(v.q)) for v in tr.p_given]
    norm = sum(int(v) ** 2 for v in tr.forward.c)
    k = Fraction(int(tr.eta.p), int(tr.eta.q)) * norm
    wrong = [j for j in range(len(VOCABULARY)) if j != t]
    fall = {j: k * p_given[j] for j in wrong}
    if any(z[j] - fall[j] != z_new[j] for j in wrong):
        raise ValueError("the new logits are not z − η‖c‖²·p̃ at the wrong tokens")
    factor = "" if k == 1 else f"{number_tex(_q(k))} \\cdot "  # η‖c‖² = 1 multiplies nothing
    lines = tuple(Tex(f"z'_{{\\text{{{VOCABULARY[j]}}}}} = {number_tex(_q(Fraction(z[j])))} - {factor}"
                      f"{number_tex(_q(p_given[j]))} = {number_tex(_q(z_new[j]))}") for j in wrong)
    scaled = r"\tilde p_j" if k == 1 else f"{number_tex(_q(k))}\\,\\tilde p_j"
    fell = Step(text=Tex(f"Every wrong logit fell by $\\eta\\,\\lVert c\\rVert^2\\,\\tilde p_j = {scaled}$, in proportion to "
                         r"the token's probability $\tilde p_j$."),
                formula=Tex(r"z'_j = z_j - \eta\,\lVert c\rVert^2\,\tilde p_j \quad (j \ne \text{target})"),
                lines=lines)

    m = z.index(max(z))  # the prediction before the step: one clear maximum, never the target
    best = likeliest_wrong(z_new, t)
    if best is None or VOCABULARY[best] != answer.value.value:
        raise ValueError("the key's choice is not the wrong token whose new probability is visibly the largest")
    others = [j for j in wrong if j != m]
    ties = [j for j in others if fall[j] == fall[m]]
    how_far = (f"fell the furthest, by ${number_tex(_q(fall[m]))}$" if not ties else
               f"fell as far as {' and '.join(_tt(j) for j in ties)}, by ${number_tex(_q(fall[m]))}$")
    if best == m:
        runner = max(others, key=lambda j: z_new[j])  # the closest to it after the step
        lead, extra = Fraction(z[m] - z[runner]), fall[m] - fall[runner]
        if not lead > extra >= 0:
            raise ValueError("the prediction stayed ahead without its lead exceeding its extra fall")
        why = (f"{_tt(m)}, the likeliest wrong token before the step, {how_far}; but it started "
               f"${number_tex(_q(lead))}$ ahead of {_tt(runner)}, the closest wrong token after the step, "
               + (f"more than the ${number_tex(_q(extra))}$ it fell beyond {_tt(runner)}" if extra else
                  f"and {_tt(runner)} fell just as far")
               + f", so {_tt(m)} still has the largest new logit of the wrong tokens")
    else:
        lead, extra = Fraction(z[m] - z[best]), fall[m] - fall[best]
        if not 0 < lead < extra:
            raise ValueError("a wrong token overtook the prediction without the prediction falling further than its lead")
        why = (f"{_tt(m)}, the likeliest wrong token before the step, {how_far}; {_tt(best)} fell only "
               f"${number_tex(_q(fall[best]))}$. {_tt(m)} started only ${number_tex(_q(lead))}$ ahead of {_tt(best)}, "
               f"less than the ${number_tex(_q(extra))}$ more that it fell, so {_tt(best)} overtook it and now has the "
               "largest new logit of the wrong tokens")
    top = max(z_new)
    whole = all((v - top).denominator == 1 and v - top in EXP_TABLE_KS for v in z_new)
    how = ("from the table too" if whole else
           "with a calculator, since the new logits are fractions the table does not print")
    shift = tuple(v - max(z) for v in z)
    compare = tuple(Tex(f"p_{{\\text{{{VOCABULARY[j]}}}}} \\approx {format_places(table_probability(shift, j).rounded().route)}"
                        f" \\;\\to\\; p'_{{\\text{{{VOCABULARY[j]}}}}} \\approx "
                        f"{format_places(probability_after(z_new, j).rounded().route)}") for j in wrong)
    decide = Step(text=Tex(why + "; softmax keeps the order of the logits, so it is the likeliest. "
                           f"Before (the table's values above) and after ({how}), at 4 places:"),
                  lines=compare, result=answer)
    # A wrong token whose logit fell can still gain probability, where the sum Σ e^{z_i} shrank by more: said only
    # where the 4-place values show the rise for every reading.
    risen = [j for j in wrong if rise_is_visible(table_probability(shift, j), probability_after(z_new, j))]
    if not risen:
        return fell, decide
    names = " and ".join(_tt(j) for j in risen)
    one = len(risen) == 1
    note = Step(text=Tex(f"The logit{'' if one else 's'} of {names} fell too, yet {'its' if one else 'their'} "
                         f"probabilit{'y' if one else 'ies'} rose: $e^{{z_j}}$ shrank less, in proportion, than the sum "
                         r"$\sum_i e^{z_i}$ it is divided by."))
    return fell, decide, note


def generate(rng: Rng, options: dict[str, str]) -> Problem:
    """Example 1's forward pass, then one SGD step on W_out towards a target the model does not yet predict."""
    visible: StepTest = likeliest_wrong_visible
    if options.get("data") == "book":
        # The book's fixed input leans one way (the prediction keeps its place in about 60% of draws at η = 1/2,
        # 30% at η = 1): there the outcome is drawn first, evenly, so that neither answer can be guessed.
        keeps = rng.below(2) == 0
        visible = lambda z, z_new, t: (likeliest_wrong_visible(z, z_new, t)  # noqa: E731
                                       and (likeliest_wrong(z_new, t) == z.index(max(z))) == keeps)
    tr = draw_training(rng, options, visible=visible)
    f = tr.forward
    name = VOCABULARY[tr.target]
    gradient_part, dw_q = output_gradient_part(tr)
    update, w_new_q = sgd_update_step(r"W_{\text{out}}", "W_out_new", f.w_out, dw_q.value, tr.eta)
    z_new = f.c * w_new_q.value
    z_new_q = Quantity("z_new", Tex("z'"), z_new)
    norm = (f.c * f.c.T)[0, 0]
    new_logits = [Fraction(int(v.p), int(v.q)) for v in z_new]
    wrong = [v for j, v in enumerate(VOCABULARY) if j != tr.target]
    best = likeliest_wrong(new_logits, tr.target)
    if best is None:
        raise ValueError("draw_training let through a step whose likeliest wrong token is not clear at 4 places")
    likeliest = Quantity("likeliest_wrong", Tex(r"\text{likeliest wrong token}"),
                         Choice(VOCABULARY[best], tuple((v, v) for v in wrong)))
    parts = list(f.parts) + loss_parts(tr) + [
        gradient_part,
        Part(Tex(f"Update the output weights with one step of gradient descent, learning rate $\\eta = {number_tex(tr.eta)}$."),
             (w_new_q,), (update,)),
        Part(Tex(r"Forward again: compute the new logits $z' = c\,W_{\text{out}}'$ (the context $c$ has not changed)."),
             (z_new_q,),
             (product_step(Tex(r"$c$ times column $j$ of $W_{\text{out}}'$."), f.c, w_new_q.value,
                           Tex(r"z' = c\,W_{\text{out}}'"), z_new_q,
                           checks=(Tex(f"z' - z = -\\eta\\,\\lVert c\\rVert^2\\,\\frac{{\\partial L}}{{\\partial z}} "
                                       f"= -{number_tex(tr.eta)} \\cdot {number_tex(norm)} \\cdot \\frac{{\\partial L}}{{\\partial z}}"
                                       f": \\text{{the logit of {name} rose, every other fell.}}"),)),)),
        Part(Tex(f"After the step, which wrong token (any token but the target \\texttt{{{name}}}) does the model find "
                 "the most likely? Why?"),
             (likeliest,),
             likeliest_wrong_steps(tr, new_logits, likeliest)),
    ]
    facts = dict(f.facts)
    facts.update({"target": name, "target_index": Rational(tr.target), "eta": tr.eta, "given_p": tr.p_given})
    return Problem.draft(given=f.given, parts=parts, facts=facts, needs_calculator=True)
