"""One complete training step of a tiny transformer: loss over positions, backward to every parameter, an AdamW update."""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction
from functools import cache
from math import lcm

import numpy
import sympy
from sympy import ImmutableMatrix, Rational

from generator.core.backprop import adamw_first_step, output_gradient, post_backward, tiny_backward
from generator.core.backprop_scaled import BelowNorm, post_gradients_scaled
from generator.core.forward import decimal_softmax, exp_table_tex, ln_table_tex, mean_line, plain_product, plain_transpose
from generator.core.problem import Bounds, Contract, Expansion, Part, Problem, Quantity, Step, Term, Tex, matrix
from generator.core.registry import Option, SpecError
from generator.documents.render import factor_tex, labelled_table, matrix_tex, number_tex
from generator.core.rng import Rng
from generator.core.slips import plain_slip_hidden, product_rule
from generator.core.worked import entry_label, product_step, shape_check, shape_text, sum_rows_step
from generator.problems.example2 import simple_probabilities, usable_shifts
from generator.problems.layernorm_backward import divided_numbers, products_mean_line
from generator.problems.tiny_transformer import (GELU_SLOPE, GELU_TABLE, LOSS_PARTS, VOCABULARY, Restart, draw_front,
                                                 draw_post_front, forward_problem, gelu_slope_lines, layernorm_affine,
                                                 loss_parts, unit_columns, unit_matrix)
from generator.core.forward import phi_table_tex

TITLE = "One complete training step of a tiny transformer"
CHAINED = True
N_TOKENS = 2  # two positions keep a backward pass to every parameter one sitting long
# The tensors AdamW may update on the sheet: small enough to do by hand, and their gradients can be drawn with no zero
# entry (ε = 0 would make a zero 0/0). E cannot: the rows of tokens not in the input always get 0; nor, often, can
# W_Q, W_K and W_V: only the last token's query is used, so a 0 in its LayerNorm output zeroes a whole row.
UPDATABLE = ("W_O", "gamma", "beta", "b_1", "b_2")
# norm=post: each LayerNorm its own γ and β; there `gamma` and `beta` name the second's (the one nearest the loss).
POST_UPDATABLE = ("W_O", "gamma_1", "beta_1", "gamma_2", "beta_2", "b_1", "b_2")
POST_ALIASES = {"gamma": "gamma_2", "beta": "beta_2"}
OPTIONS = [
    Option("input", ("random", "AB", "BB"), "random",
           "the 2 input tokens as letters of the vocabulary A-D (a repeated token shows embedding gradients adding up), or random",
           free=True),
    Option("heads", ("1", "2"), "1", "attention heads, each of width d_head = 1"),
    Option("reduction", ("mean", "sum"), "mean", "whether L averages or adds the positions' losses (mean: dz is halved)"),
    Option("forward", ("given", "compute"), "given",
           "given: the forward pass's values are printed; compute: the student works it out first, as in tiny_transformer"),
    Option("update", ("W_O+gamma", "beta+b_2", "b_1"), "W_O+gamma",
           f"the tensors AdamW updates, joined by +, from {', '.join(UPDATABLE)}", free=True),
    Option("activation", ("relu", "gelu"), "relu",
           "the feed-forward layer's activation; gelu: GELU(x) = x·Φ(x) with a printed Φ, φ table, pre-activations 0 "
           "(exact: slope ½) or at least 3 from 0 (simple values and slopes given, within 0.005 and 0.012)"),
    Option("norm", ("embeddings", "post"), "embeddings",
           "embeddings: LayerNorm of the embeddings only (as in BERT); post: Add & Norm after each sublayer, as in the "
           "original transformer (the backward pass goes through two LayerNorms; update names gamma_1, beta_1, gamma_2, "
           "beta_2, and gamma, beta for the second; ReLU only)"),
]
# AdamW as torch.optim.AdamW(lr=1/10, betas=(0.9, 0.999), weight_decay=1/10, eps=0): at step 1 the bias correction
# undoes (1 − β) exactly, so m̂ = g, v̂ = g², √v̂ = |g| and the decay multiplies θ by 99/100.
LEARNING_RATE, BETA1, BETA2, WEIGHT_DECAY = Fraction(1, 10), Fraction(9, 10), Fraction(999, 1000), Fraction(1, 10)
GRADIENT_DENOMINATOR, GRADIENT_SIZE, GRADIENT_NUMERATOR = 40, 12, 240  # every gradient: a/b with b ≤ 40, |·| ≤ 12
OUTPUT_ATTEMPTS = 30  # output layers tried per model
POST_OUTPUT_ATTEMPTS = 80  # the same for norm=post (γ₂, β₂ and the output layer)
READOUT_DRAWS = 24  # norm=post: output layers tried on one fitting readout plan (see _draw_post)
OFFSETS = range(-3, 4)  # the largest logit of a row, before its shift pattern is added
_OFFSET_PAIRS = tuple((a, b) for a in OFFSETS for b in OFFSETS)
LOGIT_REACH = 64  # |logit| < 64 for every column of −1/0/1 entries (H₂'s entries are within ±8), shifts included
SIGMAS = (Fraction(1, 2), Fraction(2))  # LayerNorm's σ per row: never 1 (see _with_sigmas)

SYMBOLS = {
    "dz": "dz", "dW_out": r"dW_{\text{out}}", "dH2": "dH_2", "dW_2": "dW_2", "db_2": "db_2", "dr": "dr", "du": "du",
    "dW_1": "dW_1", "db_1": "db_1", "dH1": "dH_1", "dW_O": "dW_O", "dO": "dO", "dV": "dV", "dQ": "dQ", "dK": "dK",
    "dW_Q": "dW_Q", "dW_K": "dW_K", "dW_V": "dW_V", "dY": "dY", "dgamma": r"d\gamma", "dbeta": r"d\beta",
    "dxhat": r"d\hat X", "dX": "dX", "dE": "dE", "dP": "dP",
}
SYMBOLS.update({"dgamma_1": r"d\gamma_1", "dbeta_1": r"d\beta_1", "dR1": "dR_1", "dgamma_2": r"d\gamma_2",
                "dbeta_2": r"d\beta_2", "dR2": "dR_2"})
PARAMETER_SYMBOLS = {"W_O": "W_O", "gamma": r"\gamma", "beta": r"\beta", "b_1": "b_1", "b_2": "b_2", "gamma_1": r"\gamma_1",
                     "beta_1": r"\beta_1", "gamma_2": r"\gamma_2", "beta_2": r"\beta_2"}
PARAMETERS = ("E", "P", "gamma", "beta", "W_Q", "W_K", "W_V", "W_O", "W_1", "b_1", "W_2", "b_2", "W_out")
POST_PARAMETERS = ("E", "P", "W_Q", "W_K", "W_V", "W_O", "gamma_1", "beta_1", "W_1", "b_1", "W_2", "b_2", "gamma_2",
                   "beta_2", "W_out")


def _post(options: dict[str, str]) -> bool:
    return options.get("norm") == "post"


def _updated(options: dict[str, str]) -> list[str]:
    """The tensors AdamW updates, by their parameter names (with norm=post, gamma and beta are γ₂ and β₂)."""
    names = options["update"].split("+")
    return [POST_ALIASES.get(name, name) for name in names] if _post(options) else names


def _parameters(p: Problem) -> tuple[str, ...]:
    return POST_PARAMETERS if _post(p.options) else PARAMETERS


def _sums(post: bool) -> _Sums:
    """What the residual sums are called: H₂ and H₁, or R₂ and R₁ with Add & Norm (see _Sums)."""
    return POST_SUMS if post else PRE_SUMS


def _gelu(options: dict[str, str]) -> bool:
    return options.get("activation") == "gelu"


def _all_gradients_move(p: Problem) -> bool:
    return all(any(p.answer("d" + name)) for name in _parameters(p))


CONTRACT = Contract(
    given=Bounds(12, 12, Rational(8)),  # weights −2…2, activations up to 8, Given probabilities in twelfths at most
    # Gradients: fractions no finer than 1/80 (the mean halves 1/40), at most 12; AdamW's θ' is in hundredths (θ·99/100).
    intermediate=Bounds(400, 100, Rational(GRADIENT_SIZE)),
    answer=Bounds(400, 100, Rational(GRADIENT_SIZE)),
    rational_only=False,
    always_masked=True,
    forbidden={
        "a parameter gets an all-zero gradient": lambda p: not _all_gradients_move(p),
        "a head's scores get no gradient": lambda p: any(not any(p.answer(f"dS{h}")) for h in range(1, int(p.options["heads"]) + 1)),
        "an updated entry has a zero gradient (0/0 with ε = 0)": lambda p: any(
            v == 0 for name in _updated(p.options) for v in p.answer("d" + name)),
        # Draws that teach (generator/slips.py). σ = 1 would hide σ² for σ and a forgotten 1/σ in dX (see _with_sigmas).
        "a LayerNorm σ is 1 (a forgotten 1/σ in dX would not show)": lambda p: any(
            1 in _forward(p, name) for name in (("sigma", "sigma2") if _post(p.options) else ("sigma",))),
        # The search bounds every gradient, not every product written out in the key (a term O·dH₁ reached 124/9
        # once in 1,000 draws): such a draw is made again rather than printed out of bounds.
        "a worked value is out of the contract's bounds": lambda p: bool(CONTRACT.violations(p)),
        "an entry of dO is 0 (that row of dÃ and dS would be all 0)": lambda p: 0 in p.answer("dO"),
        "two heads get the same dÃ or dS (one head's work copied for the other would be right)": lambda p: int(
            p.options["heads"]) > 1 and any(p.answer(f"{name}1") == p.answer(f"{name}2") for name in ("dA", "dS")),
        # GELU: at u = 0 the slope is exactly ½, the one place GELU's derivative differs from ReLU's on the sheet.
        "GELU: no pre-activation is 0, or the one there gets no gradient": lambda p: _gelu(p.options) and not any(
            pre == 0 and d != 0 for pre, d in zip(_forward(p, "u"), p.answer("dr"))),
        **{name: rule for label, factors in (
            ("dW_out = H₂ᵀ·dz", lambda p: (_forward(p, "H2").T, p.answer("dz"))),
            ("dH₂ = dz·W_outᵀ", lambda p: (p.answer("dz"), p.given_value("W_out").T)),
            ("dW₂ = rᵀ·dH₂ (dR₂ with Add & Norm)", lambda p: (_forward(p, "r").T, p.answer(_sums(_post(p.options)).second))),
            ("dW₁ = H₁ᵀ·du", lambda p: (_forward(p, "H1").T, p.answer("du"))),
            ("dW_O = Oᵀ·dH₁ (dR₁ with Add & Norm)", lambda p: (_forward(p, "O").T, p.answer(_sums(_post(p.options)).first))),
            ("dO = dH₁·W_Oᵀ (dR₁ with Add & Norm)", lambda p: (p.answer(_sums(_post(p.options)).first), p.given_value("W_O").T)),
        ) for name, rule in product_rule(label, factors).items()},
    },
)


def _forward(problem: Problem, name: str) -> ImmutableMatrix:
    """A forward value: printed in the Given box (a fact) or, with forward=compute, one of the student's answers."""
    return problem.facts[name] if name in problem.facts else problem.answer(name)


def check_options(options: dict[str, str]) -> None:
    """The input is 2 letters of the vocabulary; the updated tensors are named from UPDATABLE, each once."""
    text = options["input"]
    if text != "random" and (len(text) != N_TOKENS or any(letter not in VOCABULARY for letter in text)):
        raise SpecError(f"problem type 'training_step': input={text!r} is not accepted; accepted: {N_TOKENS} letters of "
                        f"{', '.join(VOCABULARY)} (such as AB or BB), or random")
    names = _updated(options)
    updatable = POST_UPDATABLE if _post(options) else UPDATABLE
    unknown = [name for name in names if name not in updatable]
    if unknown or len(set(names)) != len(names):
        aliases = " (gamma and beta: the second LayerNorm's)" if _post(options) else ""
        raise SpecError(f"problem type 'training_step': update={options['update']!r} is not accepted{' with norm=post' * _post(options)}; "
                        f"accepted: names from {', '.join(updatable)}{aliases} joined by + (such as W_O+gamma), each once "
                        "(E and the larger matrices are not offered: AdamW with ε = 0 needs every entry's gradient non-zero, "
                        "and their gradients often have zeros)")
    if _post(options) and _gelu(options):
        raise SpecError("problem type 'training_step': norm=post is not accepted with activation=gelu; accepted: norm=post "
                        "with activation=relu, or activation=gelu with norm=embeddings")


# ----- drawing ---------------------------------------------------------------------------------------------


def _forward_extras(front: dict) -> dict:
    """What the backward pass needs beyond draw_front: Q, K, x̂ and σ.

    draw_front builds each row as x = μ + σ·u with u of ±1, so x̂ = u, and σ is any entry's distance from the mean.
    """
    xhat = [[Fraction(k) for k in u] for u in front["patterns"]]
    sigmas = [(Fraction(row[0]) - Fraction(sum(row), len(row))) / u[0] for row, u in zip(front["x"], xhat)]
    return {**front, "Q": plain_product(front["y"], front["W_Q"]), "K": plain_product(front["y"], front["W_K"]),
            "xhat": xhat, "sigma": sigmas}


def _output(rng: Rng, model: dict, scale: Fraction, updated: list[str]) -> dict | None:
    """W₂, b₂ and W_out whose logits have simple probabilities in every row, and whose backward pass is clean."""
    w2 = [list(rng.choice(unit_columns(len(model["gamma"])))) for _ in range(len(model["b_1"]))]
    b2 = [rng.integer(-1, 1) for _ in model["gamma"]]
    f = [[a + b for a, b in zip(row, b2)] for row in plain_product(model["r"], w2)]
    h2 = [[a + b for a, b in zip(hr, fr)] for hr, fr in zip(model["H1"], f)]
    if max(abs(v) for row in f + h2 for v in row) > 8:
        return None
    readout = _readout(rng, h2, model["weights"])
    if readout is None:
        return None
    w_out, z, p_rows = readout
    model = {**model, "W_2": w2, "b_2": b2, "W_out": w_out, "H2": h2, "z": z, "p_rows": p_rows}
    return _kept(model, tiny_backward(model, p_rows, model["ids"][1:N_TOKENS + 1], scale, _small_fractions(scale)), updated)


def _readout(rng: Rng, h2, weights) -> tuple | None:
    """W_out whose logits z = H₂·W_out have simple probabilities in every row: (W_out, z, p̃'s rows), or None.

    Each row's logits are an allowed shift pattern (example2.usable_shifts) plus an offset; every column of W_out is
    then a −1/0/1 column that gives the wanted column of logits, looked up instead of searched for.
    """
    plan = _readout_plan(rng, h2, weights)
    return None if plan is None else _readout_draw(rng, *plan)


def _readout_plan(rng: Rng, h2, weights) -> tuple | None:
    """_readout's shift patterns, the offsets that fit them and the columns of W_out that reach each column of
    logits, or None where no offset fits: every W_out _readout_draw makes of them gives simple probabilities."""
    product = numpy.array(h2, dtype=numpy.int64) @ unit_matrix(len(h2[0]))  # rows: positions; columns: w's
    denominator = max(p.denominator for head in weights for row in head for p in row)
    shifts = rng.choice(_shift_pairs(denominator))
    vocab = len(shifts[0])
    # The offsets (a, b) that put every column's logits in reach. Each reachable column of logits (x, y) is one bit of
    # a whole number (_code); shifting it by a column's shift pattern and keeping the bits all columns share leaves
    # the offsets that fit them all: most output layers are turned away here, so the bits do it, not sets of tuples.
    reachable = _reachable_bits(product)
    fitting = _OFFSET_MASK
    for j in range(vocab):
        move = _code(shifts[0][j], shifts[1][j]) - _code(0, 0)
        fitting &= reachable >> move if move >= 0 else reachable << -move
    if not fitting:
        return None
    offsets = [pair for pair in _OFFSET_PAIRS if fitting >> _code(*pair) & 1]
    return shifts, offsets, _reach(h2, product.T.tolist())


def _readout_draw(rng: Rng, shifts, offsets, reach) -> tuple:
    """One offset of the plan and, for each column of logits, one column of W_out that gives it: (W_out, z, p̃'s rows)."""
    offset = rng.choice(offsets)
    columns = [rng.choice(reach[(shifts[0][j] + offset[0], shifts[1][j] + offset[1])]) for j in range(len(shifts[0]))]
    w_out = [list(row) for row in zip(*columns)]
    return w_out, [[s + o for s in shift] for shift, o in zip(shifts, offset)], _probability_rows(shifts)


def _probability_rows(shifts) -> list[list[Fraction]]:
    """p̃'s rows for one shift pattern per position: a readout plan's, whatever its offset and W_out."""
    return [list(_shift_probabilities(shift)) for shift in shifts]


def _reachable_bits(product: numpy.ndarray) -> int:
    """Every column (x, y) of logits H₂·w (the columns of `product`, two positions) as its bit (_code), in one number:
    the bits set in a boolean array by numpy and packed into bytes (a shift and an or per column cost more)."""
    flags = numpy.zeros((2 * LOGIT_REACH) ** 2, dtype=numpy.uint8)
    flags[_code(product[0], product[1])] = 1  # _code is arithmetic: it takes numpy's rows as it takes ints
    return int.from_bytes(numpy.packbits(flags, bitorder="little").tobytes(), "little")


@cache
def _shift_probabilities(shift: tuple[int, ...]) -> tuple[Fraction, ...]:
    """simple_probabilities of one allowed shift pattern (the few patterns recur in every draw)."""
    return tuple(simple_probabilities(list(shift)))


def _reach(h2, logits: list[list[int]]) -> dict[tuple, list[tuple[int, ...]]]:
    """Each column of logits some −1/0/1 column w of W_out gives (`logits`: H₂·w for each w), with every such w."""
    reach: dict[tuple, list[tuple[int, ...]]] = {}
    for w, column in zip(unit_columns(len(h2[0])), logits):
        reach.setdefault(tuple(column), []).append(w)
    return reach


def _code(x: int, y: int) -> int:
    """A column of two logits as one bit's place: each logit is within ±64 (H₂'s entries within ±8, four of them)."""
    return (x + LOGIT_REACH) * 2 * LOGIT_REACH + y + LOGIT_REACH


_OFFSET_MASK = sum(1 << _code(a, b) for a, b in _OFFSET_PAIRS)  # every offset pair's bit


def _kept(model: dict, grads: dict | None, updated: list[str]) -> dict | None:
    """The model with its gradients, or None where the backward pass is not clean or would not teach."""
    if grads is None or not _moves(model, grads, updated):
        return None
    if _backward_slip_hidden(model, grads):
        return None
    if "slopes" in model and not any(pre == 0 and d != 0 for u_row, d_row in zip(model["u"], grads["dr"])
                                     for pre, d in zip(u_row, d_row)):
        return None  # GELU's exact slope ½ at u = 0 must meet a gradient
    return {**model, "grads": grads}


def _moves(model: dict, grads: dict, updated: list[str]) -> bool:
    """Whether the gradients teach: every head's scores, every parameter and every entry of dO get one, and every
    updated entry (0/0 with ε = 0). Only which entries are 0 counts: the whole-number pass's S·g answers as g does."""
    parameters = POST_PARAMETERS if model.get("norm") == "post" else PARAMETERS
    return _teaching(grads, len(model["weights"]), parameters, updated)


def _teaching(grads: dict, heads: int, parameters: tuple[str, ...], updated: list[str]) -> bool:
    """_moves' test on these parameters' gradients and these updated ones."""
    return (all(any(v for row in grads[f"dS{h + 1}"] for v in row) for h in range(heads))
            and all(any(v for row in grads["d" + n] for v in row) for n in parameters)
            and not any(v == 0 for name in updated for row in grads["d" + name] for v in row)
            # a head output with no gradient: that row of dÃ, and its scores' gradient, would be all 0
            and not any(v == 0 for row in grads["dO"] for v in row)
            # two heads with the same dÃ or dS: one head's work copied for the other would be right
            and not _heads_alike(grads, heads))


# norm=post: the parameters whose gradients lie below the second LayerNorm, linear in dR₂ whatever the output layer.
BELOW_NORM_2 = tuple(name for name in POST_PARAMETERS if name not in ("gamma_2", "beta_2", "W_out"))


def _below_norm_can_teach(model: dict, below: BelowNorm, updated: list[str]) -> bool:
    """Whether some output layer could give the gradients below the second LayerNorm what _moves asks of them: an entry
    0 (or two heads alike) for a generic dR₂ is so for all (a write direction in the span of 1 and a row's x̂₁ leaves
    that row of dO 0; a head's two values equal leave its dS 0), and no output layer is worth trying."""
    below_updated = [name for name in updated if name in BELOW_NORM_2]
    return _teaching(below.generic(), len(model["weights"]), BELOW_NORM_2, below_updated)


def _heads_alike(grads: dict, heads: int) -> bool:
    """Whether two heads get the same dÃ or the same dS (Fractions, or the whole-number pass's S times them)."""
    return heads > 1 and any(grads[f"{name}1"] == grads[f"{name}2"] for name in ("dA", "dS"))


def _backward_slip_hidden(model: dict, grads: dict) -> bool:
    """Would a transposed or swapped factor (or a transposed answer) give one of the backward products' answers?"""
    t = plain_transpose
    sums = _sums(model.get("norm") == "post")
    products = ((t(model["H2"]), grads["dz"]), (grads["dz"], t(model["W_out"])), (t(model["r"]), grads[sums.second]),
                (t(model["H1"]), grads["du"]), (t(model["o"]), grads[sums.first]), (grads[sums.first], t(model["W_O"])))
    return any(plain_slip_hidden(a, b) for a, b in products)


@cache
def _shift_pairs(weights: int) -> tuple[tuple[tuple[int, ...], ...], ...]:
    """Pairs of shift patterns (one per position) whose probabilities share denominators with the attention weights'.

    dz's rows mix in dW_out, and meet Ã's denominator in dV and dS: sharing denominators keeps those fractions small.
    """
    def denominator(shift):
        return max(p.denominator for p in simple_probabilities(list(shift)))
    pairs = tuple((a, b) for a in usable_shifts() for b in usable_shifts()
                  if lcm(denominator(a), denominator(b)) * weights <= GRADIENT_DENOMINATOR)
    # Weights in eighths or tenths share little with any pattern: then only the pairs' own denominators are bounded.
    return pairs or tuple((a, b) for a in usable_shifts() for b in usable_shifts()
                          if lcm(denominator(a), denominator(b)) <= GRADIENT_DENOMINATOR)


def _clean_fraction(scale: Fraction):
    """_small_fractions' bounds for one fraction in lowest terms, as (numerator, denominator)."""
    finest = GRADIENT_DENOMINATOR * scale.denominator

    def test(numerator: int, denominator: int) -> bool:
        return denominator <= finest and abs(numerator) <= GRADIENT_SIZE * denominator and abs(numerator) <= GRADIENT_NUMERATOR
    return test


def _small_fractions(scale: Fraction):
    """The bounds every gradient on the sheet keeps: fractions no finer than 1/40, or 1/80 when the mean halves them."""
    clean = _clean_fraction(scale)

    def test(rows: list[list[Fraction]]) -> bool:
        return all(clean(v.numerator, v.denominator) for row in rows for v in row)
    return test


def _draw(rng: Rng, heads: int, chosen: list[int] | None, scale: Fraction, updated: list[str], activation: str = "relu") -> dict:
    """The forward model (tiny_transformer's front), then an output layer that keeps the whole backward pass clean."""
    while True:
        try:
            # X, P and σ are chosen last (_with_sigmas): the front need not fit P to them.
            model = _forward_extras(draw_front(rng, N_TOKENS, heads, chosen, fit_positions=False, activation=activation))
        except Restart:
            continue
        if "b_1" in updated and any(all(v < 0 for v in column) for column in zip(*model["u"])):
            continue  # a hidden unit the ReLU cuts at every position gives db_1 a 0, whatever the output layer
        # LayerNorm's σ and μ reach nothing but X, P and the last step dX = (…)/σ: the search runs with σ = 1, and
        # each row's σ is chosen once its bracket is known (see _with_sigmas).
        search = {**model, "sigma": [Fraction(1)] * len(model["x"])}
        # OUTPUT_ATTEMPTS output layers per model: past that, a fresh model is cheaper than more tries.
        for _ in range(OUTPUT_ATTEMPTS):
            found = _output(rng, search, scale, updated)
            if found is not None:
                final = _with_sigmas(rng, found, scale)
                if final is not None:
                    return final


def _with_sigmas(rng: Rng, model: dict, scale: Fraction) -> dict | None:
    """Each row's σ (½ or 2, never 1) and μ (±1), chosen last; X, P, dX, dP and dE follow. None if no σ is clean.

    At σ = 1, dividing by σ² instead of σ (forward) or forgetting the 1/σ (dX) would go unseen. The search ran with
    σ = 1, so its dX is each row's bracket; dividing it by ½ doubles it and by 2 halves it.
    """
    clean, grads = _small_fractions(scale), model["grads"]
    sigmas = []
    for bracket in grads["dX"]:
        fits = [s for s in SIGMAS if clean([[v / s for v in bracket]])]
        if not fits:
            return None
        sigmas.append(rng.choice(fits))
    dx = [[v / s for v in bracket] for bracket, s in zip(grads["dX"], sigmas)]
    de = [[Fraction(0)] * len(row) for row in model["E"]]
    for i, token in enumerate(model["ids"][:len(dx)]):
        de[token] = [a + b for a, b in zip(de[token], dx[i])]  # a token used twice gets both rows' gradients
    if not clean(de):
        return None
    mus = [rng.choice([-1, 1]) for _ in sigmas]  # μ ≠ 0: a forgotten − μ would go unseen
    x = [[mu + s * k for k in u] for mu, s, u in zip(mus, sigmas, model["patterns"])]
    p = [[a - b for a, b in zip(row, model["E"][token])] for row, token in zip(x, model["ids"])]
    return {**model, "sigma": sigmas, "x": x, "P": p, "grads": {**grads, "dX": dx, "dP": dx, "dE": de}}


def _draw_post(rng: Rng, heads: int, chosen: list[int] | None, scale: Fraction, updated: list[str]) -> dict:
    """norm=post: tiny_transformer's Add & Norm model up to R₂, then γ₂, β₂ and an output layer that keep the whole
    backward pass (through both LayerNorms, whose σ are fixed by the forward pass) clean."""
    while True:
        try:
            model = _post_extras(draw_post_front(rng, N_TOKENS, heads, chosen))
        except Restart:
            continue
        if "b_1" in updated and any(all(v < 0 for v in column) for column in zip(*model["u"])):
            continue  # a hidden unit the ReLU cuts at every position gives db_1 a 0, whatever the output layer
        if all(v <= 0 for row in model["u"] for v in row) or any(len({row[h] for row in model["K"]}) == 1
                                                                   for h in range(heads)):
            continue  # dW_1 would be 0 (no unit passes), or dQ (equal keys: dQ[1] = dS[1,0]·(K[0] − K[1]) = 0)
        below = BelowNorm(model)
        if not _below_norm_can_teach(model, below, updated):
            continue
        targets = model["ids"][1:N_TOKENS + 1]
        for _ in range(POST_OUTPUT_ATTEMPTS):
            gamma2, beta2, h2 = layernorm_affine(rng, model["Rhat2"])
            plan = _readout_plan(rng, h2, model["weights"])
            if plan is None:
                continue
            # A fitting plan is rare and has hundreds of output layers or more: a few are tried before the next γ₂, β₂.
            dz = output_gradient(_probability_rows(plan[0]), targets, scale)
            teaches = _second_norm_test(dz, model["Rhat2"], updated)
            for _ in range(READOUT_DRAWS):
                w_out, z, p_rows = _readout_draw(rng, *plan)
                if not teaches(w_out):
                    continue
                found = {**model, "gamma_2": gamma2, "beta_2": beta2, "H2": h2, "W_out": w_out, "z": z, "p_rows": p_rows}
                scaled = post_gradients_scaled(found, dz, _clean_fraction(scale), below)
                if scaled is None or not _moves(found, scaled, updated):
                    continue  # the whole-number pass turns away most output layers; post_backward works the rest exactly
                kept = _kept(found, post_backward(found, p_rows, targets, scale, _small_fractions(scale)), updated)
                if kept is not None:
                    return kept


def _second_norm_test(dz, rhat2, updated: list[str]):
    """_moves' test of dγ₂ and dβ₂ for one dz, as a test of W_out: dz, W_out and x̂₂ decide them alone (dH₂ = dz·W_outᵀ;
    γ₂ scales only what lies below). Worked before the whole-number pass, as most output layers that pass it fail
    here (a row of W_out with one value for every token gives dH₂ a zero column, since each row of dz sums to 0).
    Each is linear in a row of W_out: dγ₂[j] = Σ_v W_out[j,v]·Σ_i x̂₂[i,j]·dz[i,v], dβ₂[j] = Σ_v W_out[j,v]·Σ_i dz[i,v]
    (dz times its common denominator, whole)."""
    common = lcm(*(v.denominator for row in dz for v in row))
    whole = [[int(v * common) for v in row] for row in dz]
    gamma_weights = [[sum(x[j] * row[v] for x, row in zip(rhat2, whole)) for v in range(len(whole[0]))]
                     for j in range(len(rhat2[0]))]
    beta_weights = [sum(column) for column in zip(*whole)]
    nonzero = [name for name in ("gamma_2", "beta_2") if name in updated]

    def test(w_out) -> bool:
        grads = {"gamma_2": [sum(w * c for w, c in zip(row, weights)) for row, weights in zip(w_out, gamma_weights)],
                 "beta_2": [sum(w * c for w, c in zip(row, beta_weights)) for row in w_out]}
        return all(any(values) for values in grads.values()) and all(all(grads[name]) for name in nonzero)
    return test


def _post_extras(front: dict) -> dict:
    """What the backward pass needs beyond draw_post_front: Q, K, V (the heads read X) and each row's σ of R₁ and R₂
    (rows {a, a, b, b}: σ = |a − b|/2)."""
    def sigmas(rows):
        return [Fraction(max(row) - min(row), 2) for row in rows]
    return {**front, "Q": plain_product(front["x"], front["W_Q"]), "K": plain_product(front["x"], front["W_K"]),
            "v": plain_product(front["x"], front["W_V"]), "sigma_1": sigmas(front["R1"]), "sigma_2": sigmas(front["R2"])}


def generate(rng: Rng, options: dict[str, str]) -> Problem:
    """Draw a clean model and step, then write every part exactly."""
    chosen = None if options["input"] == "random" else [VOCABULARY.index(c) for c in options["input"]]
    mean = options["reduction"] == "mean"
    scale = Fraction(1, N_TOKENS) if mean else Fraction(1)
    if _post(options):
        return _problem(_draw_post(rng, int(options["heads"]), chosen, scale, _updated(options)), options, scale)
    d = _draw(rng, int(options["heads"]), chosen, scale, _updated(options), options.get("activation", "relu"))
    return _problem(d, options, scale)


# ----- the sheet -------------------------------------------------------------------------------------------


def _q(name: str, symbol: str, value) -> Quantity:
    return Quantity(name, Tex(symbol), value)


def _forward_given(m: dict, heads: int, gelu: bool = False) -> Tex:
    """The forward pass's values, for the sheet that starts at the loss."""
    weights = r" \quad ".join(f"\\tilde A{_head_suffix(h, heads)} = {matrix_tex(m['A'][h])}" for h in range(heads))
    r_symbol = r"\tilde r" if gelu else "r"
    # Short lines: display math cannot wrap, and a variant with wider numbers (or two heads) must still fit.
    lines = [
        f"X = {matrix_tex(m['X'])} \\quad \\sigma = {matrix_tex(m['sigma'])} \\quad \\hat X = \\frac{{X - \\mu}}{{\\sigma}} = "
        f"{matrix_tex(m['xhat'])}",
        f"Y = {matrix_tex(m['Y'])} \\quad Q = {matrix_tex(m['Q'])} \\quad K = {matrix_tex(m['K'])} \\quad V = {matrix_tex(m['V'])}",
        f"{weights} \\quad O = {matrix_tex(m['O'])}",
        f"H_1 = {matrix_tex(m['H1'])} \\quad u = {matrix_tex(m['u'])} \\quad {r_symbol} = {matrix_tex(m['r'])}",
        f"H_2 = {matrix_tex(m['H2'])} \\quad z = {matrix_tex(m['z'])}",
        f"\\tilde p = {matrix_tex(m['p'])}",
    ]
    return Tex("The forward pass gave these values (attention used the simple weights $\\tilde A$, each within 0.05 of the "
               "true weight; $\\tilde p$ is within 0.05 of softmax of each row of $z$, and the backward pass uses it as if "
               "exact):" + "".join(f"\\[ {line} \\]" for line in lines)
               + ("" if not gelu else r" GELU$(u) = u\,\Phi(u)$ is exactly 0 at $u = 0$ and within 0.005 of ReLU$(u)$ where "
                  r"$|u| \ge 3$: the forward pass used $\tilde r = \operatorname{ReLU}(u)$ as its output."))


POST_GIVEN = ("X", "Q", "K", "V", "O", "R1", "sigma", "Rhat1", "H1", "u", "r", "R2", "sigma2", "Rhat2", "H2", "z")


def _post_forward_given(m: dict, heads: int) -> Tex:
    """norm=post: the forward pass's values, each LayerNorm's σ and x̂ beside its input."""
    weights = r" \quad ".join(f"\\tilde A{_head_suffix(h, heads)} = {matrix_tex(m['A'][h])}" for h in range(heads))
    lines = [
        f"X = {matrix_tex(m['X'])} \\quad Q = {matrix_tex(m['Q'])} \\quad K = {matrix_tex(m['K'])} \\quad V = {matrix_tex(m['V'])}",
        f"{weights} \\quad O = {matrix_tex(m['O'])}",
        f"R_1 = {matrix_tex(m['R1'])} \\quad \\sigma_1 = {matrix_tex(m['sigma'])} \\quad \\hat R_1 = \\frac{{R_1 - \\mu_1}}{{\\sigma_1}} = "
        f"{matrix_tex(m['Rhat1'])}",
        f"H_1 = {matrix_tex(m['H1'])} \\quad u = {matrix_tex(m['u'])} \\quad r = {matrix_tex(m['r'])}",
        f"R_2 = {matrix_tex(m['R2'])} \\quad \\sigma_2 = {matrix_tex(m['sigma2'])} \\quad \\hat R_2 = \\frac{{R_2 - \\mu_2}}{{\\sigma_2}} = "
        f"{matrix_tex(m['Rhat2'])}",
        f"H_2 = {matrix_tex(m['H2'])} \\quad z = {matrix_tex(m['z'])}",
        f"\\tilde p = {matrix_tex(m['p'])}",
    ]
    return Tex("The forward pass gave these values (attention used the simple weights $\\tilde A$, each within 0.05 of the "
               "true weight; $\\tilde p$ is within 0.05 of softmax of each row of $z$, and the backward pass uses it as if "
               "exact):" + "".join(f"\\[ {line} \\]" for line in lines))


def _head_suffix(h: int, heads: int) -> str:
    return f"_{h + 1}" if heads > 1 else ""


def _problem(d: dict, options: dict[str, str], scale: Fraction) -> Problem:
    """Every part, step and answer, exactly."""
    heads, n = len(d["weights"]), N_TOKENS
    ids, targets = d["ids"][:n], d["ids"][1:n + 1]
    mean = options["reduction"] == "mean"
    post = _post(options)
    g = {name: matrix(rows) for name, rows in d["grads"].items()}
    m = {"X": matrix(d["x"]), "Q": matrix(d["Q"]), "K": matrix(d["K"]), "V": matrix(d["v"]), "O": matrix(d["o"]),
         "H1": matrix(d["H1"]), "u": matrix(d["u"]), "r": matrix(d["r"]), "H2": matrix(d["H2"]), "z": matrix(d["z"]),
         "p": matrix(d["p_rows"]), "A": [matrix([row + [Fraction(0)] * (n - len(row)) for row in w]) for w in d["weights"]]}
    w = {name: matrix(d[name]) for name in ("W_Q", "W_K", "W_V", "W_O", "W_1", "W_2", "W_out")}
    w.update({"b_1": matrix([d["b_1"]]), "b_2": matrix([d["b_2"]]), "E": matrix(d["E"]), "P": matrix(d["P"])})
    if post:  # Add & Norm: R₁ and R₂, each LayerNorm's σ and x̂ (the Rhat rows of ±1), γ and β
        m.update({"R1": matrix(d["R1"]), "sigma": matrix([[s] for s in d["sigma_1"]]), "Rhat1": matrix(d["Rhat1"]),
                  "R2": matrix(d["R2"]), "sigma2": matrix([[s] for s in d["sigma_2"]]), "Rhat2": matrix(d["Rhat2"])})
        w.update({name: matrix([d[name]]) for name in ("gamma_1", "beta_1", "gamma_2", "beta_2")})
    else:
        m.update({"sigma": matrix([[s] for s in d["sigma"]]), "xhat": matrix(d["xhat"]), "Y": matrix(d["y"])})
        w.update({"gamma": matrix([d["gamma"]]), "beta": matrix([d["beta"]])})
    sums = _sums(post)
    q = {name: _q(name, SYMBOLS[name], value) for name, value in g.items() if name in SYMBOLS}
    for h in range(heads):
        q[f"dA{h + 1}"] = _q(f"dA{h + 1}", f"d\\tilde A{_head_suffix(h, heads)}", g[f"dA{h + 1}"])
        q[f"dS{h + 1}"] = _q(f"dS{h + 1}", f"dS{_head_suffix(h, heads)}", g[f"dS{h + 1}"])

    p_target = [d["p_rows"][i][t] for i, t in enumerate(targets)]
    onehot = ImmutableMatrix(n, 4, lambda i, j: 1 if j == targets[i] else 0)
    half = r"\tfrac{1}{2}" if mean else ""

    loss_given = Tex("Use these simple probabilities, each within 0.05 of softmax of its row of $z$, as if exact: $\\tilde p = "
                     + matrix_tex(m["p"]) + "$ (row $i$: position $i$), and this table: \\[" + ln_table_tex() + "\\]")
    # ℓᵢ exactly, L exactly as one logarithm and L to 4 places from the printed ln k table (tiny_transformer's parts).
    parts = loss_parts(
        p_target, mean, r"\ell_i = -\ln \tilde p[i, t_i]",
        [f"-\\ln \\tilde p[{i},{t}] = -\\ln {number_tex(Rational(p.numerator, p.denominator))}"
         for i, (t, p) in enumerate(zip(targets, p_target))],
        given=Tex((_post_forward_given(m, heads) if post else _forward_given(m, heads, _gelu(options)))
                  + " The table of $\\ln k$: \\[" + ln_table_tex() + "\\]")
        if options["forward"] == "given" else loss_given, aside=" ($t_i$ its target)") + [
        # dz joins the output layer's part, as du joins the first layer's: the sheet keeps to 26 parts, a to z, with
        # forward=compute (the loss took a second part, for L to 4 places).
        Part(Tex(f"Output layer ($z = H_2\\,W_{{\\text{{out}}}}$): compute $dz = \\partial L/\\partial z = {half}(\\tilde p - y)$, "
                 r"with $y$ the one-hot rows of the targets; then $dW_{\text{out}} = H_2^{\mathsf T} dz$ and "
                 r"$dH_2 = dz\,W_{\text{out}}^{\mathsf T}$."),
             (q["dz"], q["dW_out"], q["dH2"]),
             (Step(text=Tex("Subtract 1 at each row's target" + (", then halve: the mean over 2 positions divides every "
                                                                  "gradient by 2." if mean else ".")),
                   formula=Tex(r"dz[i,:] = " + half + r"\bigl(\tilde p[i,:] - y[i,:]\bigr)"),
                   lines=tuple(Tex(f"dz[{i},:] = {half}\\left({matrix_tex(m['p'][i, :])} - "
                                   f"{matrix_tex(onehot[i, :])}\\right) = {matrix_tex(g['dz'][i, :])}") for i in range(n)),
                   result=q["dz"],
                   checks=tuple(Tex(f"\\text{{row {i} sums to 0: }} " + " + ".join(factor_tex(v) for v in g["dz"].row(i)) + " = 0")
                                for i in range(n))),
              product_step(Tex(r"Column $i$ of $H_2$ dotted with column $j$ of $dz$."), m["H2"].T, g["dz"],
                           Tex(r"dW_{\text{out}} = H_2^{\mathsf T} dz"), q["dW_out"], expand="row",
                           checks=(shape_check(g["dW_out"], r"W_{\text{out}}"),)),
              product_step(Tex(r"Row $i$ of $dz$ dotted with row $j$ of $W_{\text{out}}$."), g["dz"], w["W_out"].T,
                           Tex(r"dH_2 = dz\,W_{\text{out}}^{\mathsf T}"), q["dH2"], expand="row"))),
    ] + ([_norm_part(g, m, w, q, POST_NORM_2)] if post else []) + [
        _ffn_output_part(g, m, w, q, sums),
        _gelu_layer_part(g, m, q) if _gelu(options) else
        Part(Tex(r"Through the ReLU and the first layer ($r = \operatorname{ReLU}(u)$, $u = H_1 W_1 + b_1$): compute "
                 r"$du$, $dW_1 = H_1^{\mathsf T} du$ and $db_1$."),
             (q["du"], q["dW_1"], q["db_1"]),
             (Step(text=Tex(r"The ReLU passes the gradient where $u > 0$ and blocks it where $u < 0$."),
                   formula=Tex(r"du[i,j] = dr[i,j] \text{ if } u[i,j] > 0, \text{ else } 0"),
                   lines=tuple(_relu_line(m["u"][i, j], g["du"][i, j], i, j)
                               for i in range(n) for j in range(m["u"].cols)),
                   result=q["du"]),
              product_step(Tex(r"Column $i$ of $H_1$ dotted with column $j$ of $du$."), m["H1"].T, g["du"], Tex(r"dW_1 = H_1^{\mathsf T} du"),
                           q["dW_1"], expand="row", checks=(shape_check(g["dW_1"], "W_1"),)),
              sum_rows_step(Tex(r"$b_1$ is added to every row, so its gradient adds up the rows of $du$."), g["du"], "du", q["db_1"]))),
        _residual_part(g, w, q, sums),
    ] + ([_norm_part(g, m, w, q, POST_NORM_1)] if post else []) + [
        _projection_part(g, m, w, q, sums),
        _head_output_part(g, m, q, heads),
        _softmax_part(g, m, q, heads),
        _query_key_part(g, m, q, heads, sums),
        _dy_part(g, w, q, sums),
    ] + ([] if post else [_norm_part(g, m, w, q, PRE_NORM)]) + [
        _embedding_part(g, q, ids),
        _adamw_part(g, w, options),
    ]
    if post:  # its second LayerNorm adds a part: three pairs share one, so that forward=compute keeps to 26 (a to z)
        parts = _joined(parts, ("dH1", "dA1", "dX"))
    if options["forward"] == "compute":
        parts = _forward_parts(d, n, heads, mean, options.get("activation", "relu")) + parts
    # The givens in the order the model meets them (with Add & Norm each LayerNorm's γ and β where the chain meets them).
    given = [_q(name, {**PARAMETER_SYMBOLS, "W_out": r"W_{\text{out}}"}.get(name, name), w[name])
             for name in (POST_PARAMETERS if post else PARAMETERS)]
    facts = {
        "token_ids": ImmutableMatrix([ids]),
        "targets": ImmutableMatrix([targets]),
        "E_table": labelled_table(VOCABULARY, w["E"], "E"),
        "P_table": labelled_table([f"position {i}" for i in range(n)], w["P"], "P"),
        "sequence": Tex(r"\texttt{" + " ".join(VOCABULARY[t] for t in ids) + "}"),
        "targets_text": ", ".join(f"position {i}: {VOCABULARY[t]}" for i, t in enumerate(targets)),
        "given_weights": ImmutableMatrix.vstack(*m["A"]),
        "given_p": ImmutableMatrix(n, 1, [m["p"][i, t] for i, t in enumerate(targets)]),  # as tiny_transformer's key
        "given_p_rows": m["p"],
        "heads": Rational(heads),
        "reduction": "mean" if mean else "sum",
        "updated": Tex(", ".join(f"${PARAMETER_SYMBOLS[name]}$" for name in _updated(options))),
    }
    if _gelu(options):
        facts["activation"] = Tex(r"\operatorname{GELU}")  # the statement's FFN (ReLU unless this fact is there)
        # The slopes du = dr ⊙ s uses (½ at u = 0, the Given s̃ elsewhere): the rule is printed; the matrix is for marking.
        facts["slopes"] = m["u"].applyfunc(lambda v: Rational(GELU_SLOPE[int(v)].numerator, GELU_SLOPE[int(v)].denominator))
    if post:
        facts["norm"] = "post"  # the statement's model: Add & Norm after each sublayer
    if options["forward"] == "compute":
        facts["e_table"] = exp_table_tex()
    else:
        # Everything the forward Given box prints, so the JSON key (and marking's follow-through) has it too.
        facts.update({name: m[name] for name in (POST_GIVEN if post else ("X", "sigma", "xhat", "Y", "Q", "K", "V", "O", "H1",
                                                                          "u", "r", "H2", "z"))})
    # AdamW's hyperparameters are printed in the last part's prompt; in the JSON key they are key facts, not givens
    # (β₂ = 999/1000 is PyTorch's default, not a number the student computes with).
    hyperparameters = {"lr": Rational(LEARNING_RATE), "beta1": Rational(BETA1), "beta2": Rational(BETA2),
                       "weight_decay": Rational(WEIGHT_DECAY)}
    return Problem.draft(given=given, parts=parts, facts=facts, needs_calculator=True, key_facts=hyperparameters)


def _joined(parts: list[Part], firsts: tuple[str, ...]) -> list[Part]:
    """Each part whose first answer is named in `firsts` joined with the part after it: both prompts, answers, steps."""
    joined: list[Part] = []
    i = 0
    while i < len(parts):
        part = parts[i]
        if part.answers[0].name in firsts and i + 1 < len(parts):
            after = parts[i + 1]
            part = Part(Tex(f"{part.prompt} {after.prompt}"), part.answers + after.answers, part.steps + after.steps,
                        given=Tex(part.given + after.given))
            i += 1
        joined.append(part)
        i += 1
    return joined


def _forward_parts(d: dict, n: int, heads: int, mean: bool, activation: str = "relu") -> list[Part]:
    """tiny_transformer's forward parts for this model, up to the target probabilities (the loss parts are ours: the
    Given box prints full rows of p̃)."""
    targets = d["ids"][1:n + 1]
    drawn = {**d, "p_given": [d["p_rows"][i][t] for i, t in enumerate(targets)],
             "p_true": [decimal_softmax(tuple(d["z"][i]))[t] for i, t in enumerate(targets)]}
    return list(forward_problem(drawn, n, heads, mean, activation).parts[:-LOSS_PARTS])


def _gelu_layer_part(g: dict, m: dict, q: dict) -> Part:
    """GELU's backward: du = dr ⊙ s, the slope exactly ½ at u = 0 and the Given s̃ (ReLU's 1 or 0) where |u| ≥ 3."""
    n, cols = m["u"].shape
    slopes = m["u"].applyfunc(lambda v: Rational(GELU_SLOPE[int(v)].numerator, GELU_SLOPE[int(v)].denominator))
    if g["dr"].multiply_elementwise(slopes) != g["du"]:
        raise ValueError("du is not dr times the slopes")
    lines = gelu_slope_lines(m["u"]) + tuple(
        Tex(f"du[{i},{j}] = {factor_tex(slopes[i, j])} \\cdot {factor_tex(g['dr'][i, j])} = {number_tex(g['du'][i, j])}"
            f" \\quad (u[{i},{j}] = {number_tex(m['u'][i, j])})") for i in range(n) for j in range(cols))
    return Part(Tex(r"Through the GELU and the first layer ($r = \operatorname{GELU}(u) = u\,\Phi(u)$, $u = H_1 W_1 + b_1$): compute "
                    r"$du = dr \odot s$, with $s$ the slope $\operatorname{GELU}'(u) = \Phi(u) + u\,\varphi(u)$ (exact at $u = 0$; "
                    r"where $|u| \ge 3$ use $\tilde s = 1$ for $u > 0$ and $\tilde s = 0$ for $u < 0$), then "
                    r"$dW_1 = H_1^{\mathsf T} du$ and $db_1$."),
                (q["du"], q["dW_1"], q["db_1"]),
                (Step(text=Tex(r"Each entry's slope from the table: at $u = 0$ it is exactly $\Phi(0) = \tfrac12$ (where ReLU has no "
                               r"derivative); where $|u| \ge 3$ it is within 0.012 of ReLU's 1 or 0."),
                      formula=Tex(r"du[i,j] = dr[i,j]\,\operatorname{GELU}'(u[i,j])"), lines=lines, result=q["du"]),
                 product_step(Tex(r"Column $i$ of $H_1$ dotted with column $j$ of $du$."), m["H1"].T, g["du"], Tex(r"dW_1 = H_1^{\mathsf T} du"),
                              q["dW_1"], expand="row", checks=(shape_check(g["dW_1"], "W_1"),)),
                 sum_rows_step(Tex(r"$b_1$ is added to every row, so its gradient adds up the rows of $du$."), g["du"], "du", q["db_1"])),
                given=Tex(r"GELU$'(x) = \Phi(x) + x\,\varphi(x)$, with this table: \[" + phi_table_tex(GELU_TABLE) + r"\]"))


def _relu_line(pre, value, i: int, j: int) -> Tex:
    kept = pre > 0
    return Tex(f"du[{i},{j}] = " + (f"dr[{i},{j}] = {number_tex(value)}" if kept else "0")
               + f" \\quad (u[{i},{j}] = {number_tex(pre)} {'> 0' if kept else '< 0'})")


@dataclass(frozen=True)
class _Sums:
    """What the backward parts between the residual sums call things: with LayerNorm on the embeddings the sums are
    H₂ and H₁ and the heads read Y; with Add & Norm they are R₂ and R₁ (each followed by a LayerNorm), the heads read X."""
    second: str  # the feed-forward layer's residual sum, as a key of the gradients ("dH2") and in TeX ("H_2")
    second_tex: str
    first: str  # the attention's residual sum
    first_tex: str
    read: str  # what the heads read, and its gradient (the four paths' sum)
    read_grad: str


PRE_SUMS = _Sums("dH2", "H_2", "dH1", "H_1", "Y", "dY")
POST_SUMS = _Sums("dR2", "R_2", "dR1", "R_1", "X", "dX")


def _ffn_output_part(g: dict, m: dict, w: dict, q: dict, sums: _Sums) -> Part:
    """The feed-forward layer's output (its residual sum = H₁ + r·W₂ + b₂): dW₂, db₂ and dr."""
    d2, t2 = sums.second, sums.second_tex
    return Part(Tex(f"Feed-forward output (${t2} = H_1 + r\\,W_2 + b_2$): compute $dW_2 = r^{{\\mathsf T}} d{t2}$, $db_2$ (the "
                    f"column sums of $d{t2}$) and $dr = d{t2}\\,W_2^{{\\mathsf T}}$."),
                (q["dW_2"], q["db_2"], q["dr"]),
                (product_step(Tex(f"Column $i$ of $r$ dotted with column $j$ of $d{t2}$."), m["r"].T, g[d2],
                              Tex(f"dW_2 = r^{{\\mathsf T}} d{t2}"), q["dW_2"], expand="row", checks=(shape_check(g["dW_2"], "W_2"),)),
                 sum_rows_step(Tex(f"$b_2$ is added to every row, so its gradient adds up the rows of $d{t2}$."), g[d2], f"d{t2}",
                               q["db_2"]),
                 product_step(Tex(f"Row $i$ of $d{t2}$ dotted with row $j$ of $W_2$."), g[d2], w["W_2"].T,
                              Tex(f"dr = d{t2}\\,W_2^{{\\mathsf T}}"), q["dr"], expand="row")))


def _residual_part(g: dict, w: dict, q: dict, sums: _Sums) -> Part:
    """dH₁ = dH₂ (the residual's copy; dR₂ with Add & Norm) + du·W₁ᵀ (through the feed-forward layer)."""
    d2, t2 = sums.second, sums.second_tex
    through = g["du"] * w["W_1"].T
    q_through = _q("duW1", r"du\,W_1^{\mathsf T}", through)
    d_model = g["dH1"].cols
    expansions = tuple(Expansion(entry_label("dH_1", 0, j), (Term((g[d2][0, j],)),)
                                 + tuple(Term((g["du"][0, k], w["W_1"][j, k])) for k in range(w["W_1"].cols)), g["dH1"][0, j])
                       for j in range(d_model))
    if g[d2] + through != g["dH1"]:
        raise ValueError("dH1 is not the sum of its two paths")
    return Part(Tex(f"The residual around the feed-forward layer (${t2} = H_1 + \\operatorname{{FFN}}(H_1)$): compute "
                    f"$dH_1 = d{t2} + du\\,W_1^{{\\mathsf T}}$."),
                (q["dH1"],),
                (product_step(Tex(r"Through the feed-forward layer: row $i$ of $du$ dotted with row $j$ of $W_1$."), g["du"],
                              w["W_1"].T, Tex(r"du\,W_1^{\mathsf T}"), q_through, expand="first"),
                 Step(text=Tex(f"$H_1$ reaches ${t2}$ twice, directly and through the layer, so the two gradients add."),
                      formula=Tex(f"dH_1 = d{t2} + du\\,W_1^{{\\mathsf T}}"),
                      shapes=Tex(f"{shape_text(g[d2])} + {shape_text(through)} \\to {shape_text(g['dH1'])}"),
                      expansions=expansions, result=q["dH1"])))


def _projection_part(g: dict, m: dict, w: dict, q: dict, sums: _Sums) -> Part:
    """Attention's output projection (its residual sum = Y + O·W_O, or X + O·W_O with Add & Norm): dW_O and dO."""
    d1, t1, read = sums.first, sums.first_tex, sums.read
    return Part(Tex(f"Attention's output projection (${t1} = {read} + O\\,W_O$): compute $dW_O = O^{{\\mathsf T}} d{t1}$ and "
                    f"$dO = d{t1}\\,W_O^{{\\mathsf T}}$."),
                (q["dW_O"], q["dO"]),
                (product_step(Tex(f"Column $i$ of $O$ dotted with column $j$ of $d{t1}$."), m["O"].T, g[d1],
                              Tex(f"dW_O = O^{{\\mathsf T}} d{t1}"), q["dW_O"], expand="row", checks=(shape_check(g["dW_O"], "W_O"),)),
                 product_step(Tex(f"Row $i$ of $d{t1}$ dotted with row $j$ of $W_O$."), g[d1], w["W_O"].T,
                              Tex(f"dO = d{t1}\\,W_O^{{\\mathsf T}}"), q["dO"])))


def _head_output_part(g: dict, m: dict, q: dict, heads: int) -> Part:
    """Per head, O = Ã·V: dÃ = dO·Vᵀ on the visible entries, dV = Ãᵀ·dO."""
    n = m["V"].rows
    steps = []
    for h in range(heads):
        s = _head_suffix(h, heads)
        da = g[f"dA{h + 1}"]
        steps.append(Step(
            text=Tex(f"Head {h + 1}: each visible weight's gradient is its row's $dO$ times the value it weighted "
                     r"(masked entries stay 0: the mask holds those weights at 0)."),
            formula=Tex(f"d\\tilde A{s}[i,j] = dO[i,{h}]\\,V[j,{h}] \\quad (j \\le i)"),
            expansions=tuple(Expansion(entry_label(f"d\\tilde A{s}", i, j), (Term((g["dO"][i, h], m["V"][j, h])),), da[i, j])
                             for i in range(n) for j in range(i + 1)),
            result=q[f"dA{h + 1}"]))
        steps.append(Step(
            text=Tex(f"Head {h + 1}: value $j$ collects the gradient of every output that used it, weighted by $\\tilde A{s}$."),
            formula=Tex(f"dV[j,{h}] = \\sum_{{i \\ge j}} \\tilde A{s}[i,j]\\,dO[i,{h}]"),
            expansions=tuple(Expansion(entry_label("dV", j, h), tuple(Term((m["A"][h][i, j], g["dO"][i, h])) for i in range(j, n)),
                                       g["dV"][j, h]) for j in range(n))))
    steps[-1] = replace(steps[-1], result=q["dV"], checks=(shape_check(g["dV"], "V"),))
    answers = tuple(q[f"dA{h + 1}"] for h in range(heads)) + (q["dV"],)
    return Part(Tex(r"Through each head's output $O[:,h] = \tilde A_{h+1}\,V[:,h]$: compute $d\tilde A = dO\,V^{\mathsf T}$ on the "
                    r"visible entries ($j \le i$; write 0 where masked) and $dV = \tilde A^{\mathsf T} dO$."
                    if heads > 1 else
                    r"Through the head's output $O = \tilde A\,V$: compute $d\tilde A = dO\,V^{\mathsf T}$ on the visible "
                    r"entries ($j \le i$; write 0 where masked) and $dV = \tilde A^{\mathsf T} dO$."),
                answers, tuple(steps))


def _softmax_part(g: dict, m: dict, q: dict, heads: int) -> Part:
    """dS = Ã ⊙ (dÃ − ḡ) row by row, with ḡ_i the weighted mean of row i of dÃ."""
    n = m["V"].rows
    steps = []
    for h in range(heads):
        s, a, da, ds = _head_suffix(h, heads), m["A"][h], g[f"dA{h + 1}"], g[f"dS{h + 1}"]
        means = [sympy.Add(*(a[i, j] * da[i, j] for j in range(i + 1))) for i in range(n)]
        steps.append(Step(
            text=Tex(f"Head {h + 1}: the weighted mean $\\bar g_i$ of each row of $d\\tilde A{s}$, then each visible score's "
                     "gradient: its weight times how far its $d\\tilde A$ is above that mean."),
            formula=Tex(f"\\bar g_i = \\sum_{{j \\le i}} \\tilde A{s}[i,j]\\,d\\tilde A{s}[i,j], \\quad "
                        f"dS{s}[i,j] = \\tilde A{s}[i,j]\\,\\bigl(d\\tilde A{s}[i,j] - \\bar g_i\\bigr)"),
            expansions=tuple(Expansion(Tex(f"\\bar g_{i}"), tuple(Term((a[i, j], da[i, j])) for j in range(i + 1)), means[i])
                             for i in range(n))
            + tuple(Expansion(entry_label(f"dS{s}", i, j), (Term((a[i, j], da[i, j])), Term((a[i, j], means[i]), sign=-1)), ds[i, j])
                    for i in range(n) for j in range(i + 1)),
            result=q[f"dS{h + 1}"],
            checks=(Tex(r"\text{Row 0 is 0: token 0 sees only itself, so its weight is 1 whatever its score.}"),
                    Tex(r"\text{Each row sums to 0: adding the same amount to a row's scores changes no weight.}"))))
    return Part(Tex(r"Through the softmax (row by row, with the Given weights): with $\bar g_i = \sum_j \tilde A[i,j]\,d\tilde A[i,j]$, "
                    r"compute $dS[i,j] = \tilde A[i,j]\,\bigl(d\tilde A[i,j] - \bar g_i\bigr)$ (0 where masked)."
                    + (" Do it for each head." if heads > 1 else "")),
                tuple(q[f"dS{h + 1}"] for h in range(heads)), tuple(steps))


def _query_key_part(g: dict, m: dict, q: dict, heads: int, sums: _Sums) -> Part:
    """S = Q·Kᵀ per head (√d_head = 1): dQ = dS·K and dK = dSᵀ·Q, column by column."""
    n = m["Q"].rows
    dq_expansions, dk_expansions = [], []
    for h in range(heads):
        ds = g[f"dS{h + 1}"]
        dq_expansions += [Expansion(entry_label("dQ", i, h), tuple(Term((ds[i, j], m["K"][j, h])) for j in range(n)), g["dQ"][i, h])
                          for i in range(n)]
        dk_expansions += [Expansion(entry_label("dK", i, h), tuple(Term((ds[r, i], m["Q"][r, h])) for r in range(n)), g["dK"][i, h])
                          for i in range(n)]
    suffix = "_{h+1}" if heads > 1 else ""
    read = sums.read  # what the heads read: Y, or X with Add & Norm
    weight_steps = tuple(product_step(Tex(f"Column $i$ of ${read}$ dotted with column $h$ of $d{name}$."), m[read].T, g[f"d{name}"],
                                      Tex(f"dW_{name} = {read}^{{\\mathsf T}} d{name}"), q[f"dW_{name}"], expand="first",
                                      checks=(shape_check(g[f"dW_{name}"], f"W_{name}"),)) for name in ("Q", "K", "V"))
    return Part(Tex(f"Through the scores $S{suffix} = Q[:,h]\\,K[:,h]^{{\\mathsf T}}$ (scale $1/\\sqrt{{d_{{\\text{{head}}}}}} = 1$): "
                    f"compute $dQ$ and $dK$ (column $h$ for head {'$h+1$' if heads > 1 else '1'}); then the projection weights' "
                    f"gradients $dW_Q = {read}^{{\\mathsf T}} dQ$, $dW_K = {read}^{{\\mathsf T}} dK$ and "
                    f"$dW_V = {read}^{{\\mathsf T}} dV$."),
                (q["dQ"], q["dK"], q["dW_Q"], q["dW_K"], q["dW_V"]),
                (Step(text=Tex("A query's gradient: its row of score gradients, each times the key it met."),
                      formula=Tex(f"dQ[i,h] = \\sum_j dS{suffix}[i,j]\\,K[j,h]"), expansions=tuple(dq_expansions), result=q["dQ"],
                      checks=(Tex(r"\text{Row 0 is 0: token 0's score gradients are all 0.}"),)),
                 Step(text=Tex("A key's gradient: its column of score gradients, each times the query that met it."),
                      formula=Tex(f"dK[j,h] = \\sum_i dS{suffix}[i,j]\\,Q[i,h]"), expansions=tuple(dk_expansions), result=q["dK"]))
                + weight_steps)


def _dy_part(g: dict, w: dict, q: dict, sums: _Sums) -> Part:
    """What the heads read (Y, or X with Add & Norm) feeds the residual and the three projections: each path's gradient,
    then dY = dH₁ + dQ·W_Qᵀ + dK·W_Kᵀ + dV·W_Vᵀ (dX = dR₁ + … with Add & Norm)."""
    read, total_name, residual, residual_tex = sums.read, sums.read_grad, sums.first, sums.first_tex
    dy = g[total_name]
    paths = {name: _q(f"d{name}W{name}", f"d{name}\\,W_{name}^{{\\mathsf T}}", g[f"d{name}"] * w[f"W_{name}"].T)
             for name in ("Q", "K", "V")}
    if g[residual] + sum((p.value for p in paths.values()), ImmutableMatrix.zeros(*dy.shape)) != dy:
        raise ValueError(f"{total_name} is not the sum of its four paths")
    last = dy.rows - 1  # the last row: token 0's query and score gradients are 0, so row 0 shows less
    path_steps = tuple(product_step(Tex(f"Through $W_{name}$: row $i$ of $d{name}$ dotted with row $j$ of $W_{name}$."),
                                    g[f"d{name}"], w[f"W_{name}"].T, Tex(f"d{name}\\,W_{name}^{{\\mathsf T}}"), path, expand="first")
                       for name, path in paths.items())
    formula = f"d{read} = d{residual_tex} + dQ\\,W_Q^{{\\mathsf T}} + dK\\,W_K^{{\\mathsf T}} + dV\\,W_V^{{\\mathsf T}}"
    total = Step(text=Tex(f"Add the four paths' gradients, entry by entry (row {last} written out)."),
                 formula=Tex(formula),
                 expansions=tuple(Expansion(entry_label(f"d{read}", last, j), (Term((g[residual][last, j],)),)
                                            + tuple(Term((path.value[last, j],)) for path in paths.values()), dy[last, j])
                                  for j in range(dy.cols)),
                 result=q[total_name])
    return Part(Tex(f"${read}$ reaches the loss four ways (the residual and the three projections): compute ${formula}$."),
                (q[total_name],), path_steps + (total,))


@dataclass(frozen=True)
class _Norm:
    """One LayerNorm's backward part, as the sheet names it: out = γ ⊙ x̂ + β with x̂ = (input − μ)/σ."""
    title: str
    out: str  # TeX of the output, the input, x̂, μ, σ, γ, β and γ's entry j
    inp: str
    hat: str
    mu: str
    sigma: str
    gamma: str
    beta: str
    gamma_j: str
    sigma_row: str  # σ of row i, as a format string
    mean_row: str  # a row mean's row index, as a format string ("[{}]" where x̂ has a subscript of its own)
    values: tuple[str, str, str]  # keys of x̂ and σ (forward values) and of γ (a given)
    grads: tuple[str, str, str, str, str]  # keys of the output's gradient, dγ, dβ, dx̂ and the input's gradient


PRE_NORM = _Norm("LayerNorm", "Y", "X", r"\hat X", r"\mu", r"\sigma", r"\gamma", r"\beta", r"\gamma_j", "\\sigma_{}",
                 "_{}", ("xhat", "sigma", "gamma"), ("dY", "dgamma", "dbeta", "dxhat", "dX"))
POST_NORM_2 = _Norm(r"The second Add \& Norm's LayerNorm", "H_2", "R_2", r"\hat R_2", r"\mu_2", r"\sigma_2", r"\gamma_2",
                    r"\beta_2", r"\gamma_{2,j}", "\\sigma_{{2,{}}}", "[{}]", ("Rhat2", "sigma2", "gamma_2"),
                    ("dH2", "dgamma_2", "dbeta_2", "dRhat2", "dR2"))
POST_NORM_1 = _Norm(r"The first Add \& Norm's LayerNorm", "H_1", "R_1", r"\hat R_1", r"\mu_1", r"\sigma_1", r"\gamma_1",
                    r"\beta_1", r"\gamma_{1,j}", "\\sigma_{{1,{}}}", "[{}]", ("Rhat1", "sigma", "gamma_1"),
                    ("dH1", "dgamma_1", "dbeta_1", "dRhat1", "dR1"))


def _norm_part(g: dict, m: dict, w: dict, q: dict, norm: _Norm) -> Part:
    """One LayerNorm (ε = 0) from its output's gradient: dγ, dβ, dx̂ = d(out) ⊙ γ, then d(input) row by row."""
    up, dgamma, dbeta, dxhat_name, dinput = norm.grads
    xhat_name, sigma_name, gamma_name = norm.values
    dy, xhat, gamma, dxhat, dx = g[up], m[xhat_name], w[gamma_name], g[dxhat_name], g[dinput]
    out, inp, hat, sigma, gm = norm.out, norm.inp, norm.hat, norm.sigma, norm.gamma
    n, d_model = dy.shape
    q_dxhat = _q(dxhat_name, f"d{hat}", dxhat)
    gamma_step = Step(
        text=Tex(f"${norm.gamma_j}$ multiplies ${hat}[i,j]$ in every row, so each row adds $d{out} \\cdot {hat}$."),
        formula=Tex(f"d{gm}[j] = \\sum_i d{out}[i,j]\\,{hat}[i,j]"),
        expansions=tuple(Expansion(entry_label(f"d{gm}", 0, j), tuple(Term((dy[i, j], xhat[i, j])) for i in range(n)), g[dgamma][0, j])
                         for j in range(d_model)),
        result=q[dgamma], checks=(shape_check(g[dgamma], gm),))
    beta_step = sum_rows_step(Tex(f"${norm.beta}$ is added to every row, so its gradient adds up the rows of $d{out}$."), dy,
                              f"d{out}", q[dbeta])
    dxhat_step = Step(text=Tex(f"${out} = {gm} \\odot {hat} + {norm.beta}$: each column of $d{out}$ is multiplied by its "
                               f"${norm.gamma_j}$."),
                      formula=Tex(f"d{hat}[i,j] = d{out}[i,j]\\,{norm.gamma_j}"),
                      lines=tuple(Tex(f"d{hat}[{i},:] = {matrix_tex(dy[i, :])} \\odot {matrix_tex(gamma)} = {matrix_tex(dxhat[i, :])}")
                                  for i in range(n)),
                      result=q_dxhat)
    lines = []
    for i in range(n):
        row, hats = list(dxhat.row(i)), list(xhat.row(i))
        m1, m2 = sympy.Add(*row) / d_model, sympy.Add(*(a * b for a, b in zip(row, hats))) / d_model
        bracket = [a - m1 - x * m2 for a, x in zip(row, hats)]
        mean1, mean2 = (f"\\overline{{{bar}}}{norm.mean_row.format(i)}" for bar in (f"d{hat}", f"d{hat} \\odot {hat}"))
        rule_i = f"\\bigl(d{hat}[{i},:] - {mean1} - {hat}[{i},:]\\,{mean2}\\bigr)/{norm.sigma_row.format(i)}"
        lines += [mean_line(mean1, row, m1), products_mean_line(mean2, row, hats, m2)]
        # The rule on one line, its numbers on the next: together they run past the margin when the fractions are wide.
        lines += [Tex(f"d{inp}[{i},:] = {rule_i}"), Tex("= " + divided_numbers(bracket, m[sigma_name][i, 0], dx.row(i)))]
    checks = []
    for i in range(n):
        if sympy.Add(*dx.row(i)) != 0 or sympy.Add(*(a * b for a, b in zip(dx.row(i), xhat.row(i)))) != 0:
            raise ValueError("LayerNorm backward row is not centred or not orthogonal to x̂")
        products = " + ".join(f"{factor_tex(a)} \\cdot {factor_tex(b)}" for a, b in zip(dx.row(i), xhat.row(i)))
        checks.append(Tex(f"\\text{{row {i} of }} d{inp} \\text{{ sums to 0 and is orthogonal to }} {hat}[{i},:]\\text{{: }} {products} = 0"))
    rule = (f"d{inp} = \\tfrac{{1}}{{{sigma}}}\\bigl(d{hat} - \\overline{{d{hat}}} - {hat} \\odot "
            f"\\overline{{d{hat} \\odot {hat}}}\\bigr)")
    dx_step = Step(text=Tex(f"Row by row: the two means over the 4 features, then the bracket divided by the row's ${sigma}$."),
                   formula=Tex(rule), lines=tuple(lines), result=q[dinput], checks=tuple(checks))
    return Part(Tex(f"{norm.title} (${out} = {gm} \\odot {hat} + {norm.beta}$, ${hat} = ({inp} - {norm.mu})/{sigma}$): compute "
                    f"$d{gm} = \\sum_i d{out}[i,:] \\odot {hat}[i,:]$, $d{norm.beta} = \\sum_i d{out}[i,:]$ and, with "
                    f"$d{hat} = d{out} \\odot {gm}$, ${rule}$ row by row (a bar is the mean over the row's 4 features)."),
                (q[dgamma], q[dbeta], q[dinput]), (gamma_step, beta_step, dxhat_step, dx_step))


def _embedding_part(g: dict, q: dict, ids: list[int]) -> Part:
    """X = E[tokens] + P: dP = dX row by row, and each token's row of dE adds up the rows where it was used."""
    de = g["dE"]
    lines = []
    for t, letter in enumerate(VOCABULARY):
        used = [i for i, token in enumerate(ids) if token == t]
        if used:
            lines.append(Tex(f"dE[{letter},:] = " + " + ".join(f"dX[{i},:]" for i in used) + f" = {matrix_tex(de[t, :])}"))
        else:
            lines.append(Tex(f"dE[{letter},:] = 0 \\quad (\\text{{{letter} is not in the input}})"))
    repeated = len(set(ids)) < len(ids)
    return Part(Tex(r"The embeddings ($X = E[\text{tokens}] + P$): compute $dP$ and $dE$ (one row per vocabulary token A–D)."),
                (q["dP"], q["dE"]),
                (Step(text=Tex(r"Row $i$ of $P$ is added to position $i$ only, so $dP$ is $dX$."), formula=Tex("dP = dX"),
                      result=q["dP"], checks=(shape_check(g["dP"], "P"),)),
                 Step(text=Tex("Each token's row of E was copied to every position that holds it, so its gradient adds up those rows"
                               + (" (here a token appears twice)." if repeated else "; rows of tokens not in the input stay 0.")),
                      formula=Tex(r"dE[t,:] = \sum_{i:\ \text{token}_i = t} dX[i,:]"), lines=tuple(lines), result=q["dE"],
                      checks=(shape_check(de, "E"),))))


def _adamw_part(g: dict, w: dict, options: dict[str, str]) -> Part:
    """AdamW's first step on the chosen tensors: m, v, m̂ = g, v̂ = g², the decay, and θ − η·m̂/√v̂."""
    answers, steps = [], []
    lr, b1, b2, decay = (Rational(x) for x in (LEARNING_RATE, BETA1, BETA2, WEIGHT_DECAY))
    for name in _updated(options):
        symbol, grad, theta = PARAMETER_SYMBOLS[name], g["d" + name], w[name]
        plain = adamw_first_step([[Fraction(int(v.p), int(v.q)) for v in row] for row in theta.tolist()],
                                 [[Fraction(int(v.p), int(v.q)) for v in row] for row in grad.tolist()],
                                 LEARNING_RATE, BETA1, BETA2, WEIGHT_DECAY)
        values = {key: matrix(rows) for key, rows in plain.items()}
        q_mhat = _q(f"mhat_{name}", f"\\hat m_{{{symbol}}}", values["m_hat"])
        root = grad.applyfunc(abs)  # √v̂ = √(g²) = |g|: exact, and as small as the gradient
        q_root = _q(f"rootvhat_{name}", f"\\sqrt{{\\hat v_{{{symbol}}}}}", root)
        q_new = _q(f"{name}_new", f"{symbol}'", values["new"])
        answers += [q_mhat, q_root, q_new]
        sign = grad.applyfunc(lambda v: sympy.sign(v))
        steps += [
            Step(text=Tex(f"${symbol}$: the moments start at 0, so step 1 keeps a $1 - \\beta$ share of $g = d{symbol}$; "
                          "the bias correction divides it out again."),
                 formula=Tex(r"m = (1 - \beta_1)\,g, \quad v = (1 - \beta_2)\,g^2, \quad \hat m = \frac{m}{1 - \beta_1}, \quad "
                             r"\hat v = \frac{v}{1 - \beta_2}"),
                 lines=(Tex(f"m = {number_tex(1 - b1)}\\,g, \\quad v = {number_tex(1 - b2)}\\,g^2"),
                        Tex(f"\\hat m_{{{symbol}}} = \\frac{{{number_tex(1 - b1)}\\,g}}{{{number_tex(1 - b1)}}} = g = {matrix_tex(values['m_hat'])}"),
                        Tex(f"\\hat v_{{{symbol}}} = \\frac{{{number_tex(1 - b2)}\\,g^2}}{{{number_tex(1 - b2)}}} = g^2 = {matrix_tex(values['v_hat'])}"),
                        Tex(f"\\sqrt{{\\hat v_{{{symbol}}}}} = |g| = {matrix_tex(root)}")),
                 result=None),
            Step(text=Tex(f"${symbol}$: decay first, then step by $\\eta\\,\\hat m/\\sqrt{{\\hat v}} = \\eta\\,g/|g|$: every entry moves "
                          "by $\\eta$ against its gradient's sign, whatever the gradient's size."),
                 formula=Tex(f"{symbol}' = {symbol}\\,(1 - \\eta\\lambda) - \\eta\\,\\frac{{\\hat m}}{{\\sqrt{{\\hat v}}}}"),
                 lines=(Tex(f"{symbol}\\,(1 - \\eta\\lambda) = {matrix_tex(theta)} \\cdot {number_tex(1 - lr * decay)} = "
                            f"{matrix_tex(values['decayed'])}"),
                        Tex(f"\\eta\\,\\frac{{\\hat m}}{{\\sqrt{{\\hat v}}}} = {number_tex(lr)} \\cdot {matrix_tex(sign)} = "
                            f"{matrix_tex(sign * lr)}"),
                        Tex(f"{symbol}' = {matrix_tex(values['decayed'])} - {matrix_tex(sign * lr)} = {matrix_tex(values['new'])}")),
                 result=q_new,
                 checks=(Tex(f"\\text{{Each entry of }} {symbol}' - {symbol}\\,(1 - \\eta\\lambda) \\text{{ has the opposite sign of its gradient.}}"),)),
        ]
        if (values["new"] - values["decayed"]).applyfunc(sympy.sign) != -sign:
            raise ValueError("an AdamW update does not move against its gradient")
    return Part(Tex(r"AdamW, step 1 ($\eta = " + number_tex(lr) + r"$, $\beta_1 = " + number_tex(b1) + r"$, $\beta_2 = "
                    + number_tex(b2) + r"$, $\lambda = " + number_tex(decay) + r"$, $\varepsilon = 0$, moments starting at 0): for "
                    + " and ".join(f"${PARAMETER_SYMBOLS[n]}$" for n in _updated(options))
                    + r", compute $\hat m$, $\sqrt{\hat v}$ and the updated values $\theta' = \theta\,(1 - \eta\lambda) - \eta\,\hat m/\sqrt{\hat v}$."),
                tuple(answers), tuple(steps))
