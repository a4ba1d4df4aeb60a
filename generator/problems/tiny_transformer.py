"""A tiny transformer's forward pass: embeddings, LayerNorm, causal two-head attention, FFN, logits and the loss."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction
from functools import cache, lru_cache, reduce
from itertools import permutations, product
from operator import mul, or_

import numpy
import sympy
from sympy import ImmutableMatrix, Rational

from generator.core.forward import (
    NEG_INF,
    PLACES,
    add_step,
    affine_step,
    causal_mask,
    decimal_softmax,
    exp_table_tex,
    hidden_biases,
    phi_table_tex,
    phi_tables,
    layernorm_output_step,
    layernorm_stats_step,
    ln_table_tex,
    plain_product,
    printed_sum_is_one,
    relu,
    relu_step,
    softmax_rows,
    one_log_tex,
    one_log_value,
    table_log,
    table_log_ratio,
    table_one_log,
    table_softmax,
    table_softmax_line,
    whole_scores_print_to_one,
)
from generator.core.problem import Bounds, Contract, Part, Problem, Quantity, Step, Tex, matrix
from generator.core.readings import Reading, format_places, total as total_of
from generator.core.registry import Option, SpecError
from generator.documents.render import factor_tex, labelled_table, matrix_tex, number_tex
from generator.core.rng import Rng
from generator.core.draws import has_zero_row
from generator.core.slips import constant_row, plain_slip_hidden, product_rule
from generator.core.worked import dot_expansion, entry_label, product_step, shape_text
from generator.problems._paired_rows import paired_columns

TITLE = "A tiny transformer's forward pass"
CHAINED = True
OPTIONS = [
    Option("tokens", ("2", "3"), "3", "length of the input sequence (set by input when it is given)"),
    Option("input", ("random", "AB", "CAB", "BBD"), "random",
           "the input tokens as letters of the vocabulary A-D (2 or 3 of them), or random", free=True),
    Option("heads", ("1", "2"), "2", "attention heads, each of width d_head = 1 (so √d_head = 1)"),
    Option("reduction", ("mean", "sum"), "mean", "whether L averages or adds the positions' losses"),
    Option("norm", ("embeddings", "post"), "embeddings",
           "embeddings: LayerNorm of the embeddings only (as in BERT); post: Add & Norm after each sublayer "
           "(R = x + sublayer(x), then LayerNorm), as in the original transformer"),
]
VOCABULARY = ("A", "B", "C", "D")
D_MODEL, D_FF = 4, 2
WEIGHT_TOLERANCE = Fraction(1, 20)  # how far a Given weight may be from the true 4-place weight
PROBABILITY_TOLERANCE = Fraction(3, 200)  # the same for the Given target probabilities
DENOMINATORS = (1, 2, 3, 4, 5, 6, 8, 10, 12)  # of the simple fractions the Given boxes use
ATTEMPTS = 300  # per constrained search; past that the whole model is drawn again
SIGMA = 2  # every row of X is μ + 2u (u of ±1): LayerNorm's σ is 2, and x̂ = u

CONTRACT = Contract(
    given=Bounds(12, 12, Rational(3)),  # Given weights and probabilities have denominators up to 12
    intermediate=Bounds(20, 12, Rational(12)),  # e.g. (4/5)·4 = 16/5 inside a head output
    answer=Bounds(12, 4, Rational(12)),
    rational_only=False,
    always_masked=True,
    forbidden={
        "a pre-activation is exactly 0": lambda p: any(v == 0 for v in p.answer("u")),
        "ReLU cuts nothing": lambda p: all(v > 0 for v in p.answer("u")),
        "ReLU keeps nothing": lambda p: all(v < 0 for v in p.answer("u")),
        # The key prints the table route's weights and checks that each row sums to 1 at 4 places.
        "a printed weight row does not sum to 1 at 4 places": lambda p: not all(
            printed_sum_is_one(row) for h in _heads(p) for row in p.reading(f"A{h}")),
        # Draws that teach (generator/slips.py): every rule below is also met by construction in the draw.
        "a query scores all its visible keys alike": lambda p: any(constant_row(p.answer(f"S{h}")) for h in _heads(p)),
        "K·Qᵀ gives the same visible scores": lambda p: any(_swapped_scores_hidden(p, h) for h in _heads(p)),
        "a LayerNorm row's mean is 0 (forgetting to subtract it would not show)": lambda p: any(
            0 in p.answer(name) for name in _norm_names(p, "mu")),
        "a LayerNorm σ is 1 (dividing by σ² would not show)": lambda p: any(1 in p.answer(name) for name in _norm_names(p, "sigma")),
        "γ is all 1 and β all 0 (forgetting them would not show)": lambda p: any(
            all(g == 1 for g in p.given_value(gamma)) and not any(p.given_value(beta))
            for gamma, beta in zip(_norm_names(p, "gamma"), _norm_names(p, "beta"))),
        "a row of Y is zero (a forgotten residual would not show)": lambda p: has_zero_row(p.answer(_read(p))),
        "b₁ or b₂ is all zeros (forgetting it would not show)": lambda p: not any(p.given_value("b_1"))
        or not any(p.given_value("b_2")),
        **{name: rule for label, factors in (
            ("Q = Y·W_Q", lambda p: (p.answer(_read(p)), p.given_value("W_Q"))),
            ("K = Y·W_K", lambda p: (p.answer(_read(p)), p.given_value("W_K"))),
            ("V = Y·W_V", lambda p: (p.answer(_read(p)), p.given_value("W_V"))),
            ("H₁ = Y + O·W_O", lambda p: (p.answer("O"), p.given_value("W_O"), p.answer(_sums(p)[0]))),
            ("u = H₁·W₁ + b₁", lambda p: (p.answer("H1"), p.given_value("W_1"), p.answer("u"))),
            ("f = r·W₂ + b₂", lambda p: (p.answer("r"), p.given_value("W_2"), p.answer(_sums(p)[1]) - p.answer("H1"))),
            ("z = H₂·W_out", lambda p: (p.answer("H2"), p.given_value("W_out"))),
        ) for name, rule in product_rule(label, factors).items()},
    },
)


def _norm_names(problem: Problem, name: str) -> tuple[str, ...]:
    """The names of one LayerNorm quantity (mu, sigma, gamma, beta) for each LayerNorm of the sheet."""
    if problem.facts.get("norm") != "post":
        return (name,)
    return {"mu": ("mu", "mu2"), "sigma": ("sigma", "sigma2")}.get(name, (f"{name}_1", f"{name}_2"))


def _read(problem: Problem) -> str:
    """What the heads read: Y, or X with Add & Norm (its residual is forgotten alike)."""
    return "X" if problem.facts.get("norm") == "post" else "Y"


def _sums(problem: Problem) -> tuple[str, str]:
    """The two residual sums: H₁ and H₂, or R₁ and R₂ with Add & Norm."""
    return ("R1", "R2") if problem.facts.get("norm") == "post" else ("H1", "H2")


def _swapped_scores_hidden(problem: Problem, h: int) -> bool:
    """Would K·Qᵀ (each visible S[i,j] taken as q_j·k_i) give head h's visible scores?"""
    q, k = problem.answer("Q").col(h - 1), problem.answer("K").col(h - 1)
    return all(q[i] * k[j] == q[j] * k[i] for i in range(len(q)) for j in range(i))


def check_options(options: dict[str, str]) -> None:
    """An input must be 2 or 3 letters of the vocabulary: P has a row per position, E one per token."""
    text = options["input"]
    if text == "random":
        return
    unknown = sorted({letter for letter in text if letter not in VOCABULARY})
    if unknown:
        raise SpecError(f"problem type 'tiny_transformer': input={text!r} has {', '.join(map(repr, unknown))}, not in "
                        f"the vocabulary; accepted: letters {', '.join(VOCABULARY)} (2 or 3 of them), or random")
    if not 2 <= len(text) <= 3:
        raise SpecError(f"problem type 'tiny_transformer': input={text!r} has {len(text)} token{'s' if len(text) != 1 else ''}; accepted: 2 or 3 "
                        f"(a tiny model has positional embeddings for 3 positions), or random")


def _input_ids(options: dict[str, str]) -> list[int] | None:
    """The teacher's input as token ids, or None to draw one."""
    text = options["input"]
    return None if text == "random" else [VOCABULARY.index(letter) for letter in text]


def _heads(problem: Problem) -> range:
    return range(1, int(problem.options["heads"]) + 1)


class Restart(Exception):
    """This draw cannot be completed cleanly: draw the model again."""


@cache
def _sign_patterns() -> tuple[tuple[int, ...], ...]:
    """Rows u of ±1 with two of each sign: mean 0 and variance exactly 1, so LayerNorm leaves whole numbers."""
    return tuple(sorted(set(permutations((1, 1, -1, -1)))))


@cache
def _simple_weights(scores: tuple[int, ...]) -> tuple[tuple[int, tuple[int, ...]], ...]:
    """Every row of Given weights for one causal row of scores, as (d, numerators); none when the row is not
    hand-friendly. (Integers, not Fractions: the search hashes and compares these rows many times.)

    Hand-friendly: the scores are within the e^k table and their 4-place weights add up to 1.0000. A Given row
    has one denominator of DENOMINATORS, sums to 1, has no 0 (a visible token keeps some weight) and lies
    within WEIGHT_TOLERANCE of the true weights.
    """
    if max(scores) - min(scores) > 5:
        return ()
    if not whole_scores_print_to_one(scores):
        return ()
    weights = decimal_softmax(scores)
    rows, seen = [], set()
    for d in DENOMINATORS:
        numerators = tuple(round(w * d) for w in weights)
        row = tuple(Fraction(a, d) for a in numerators)
        if sum(numerators) == d and 0 not in numerators and row not in seen and all(
                abs(Fraction(w) - r) <= WEIGHT_TOLERANCE for w, r in zip(weights, row)):
            seen.add(row)
            rows.append((d, numerators))
    return tuple(rows)


def _simple_fraction(value: Decimal) -> Fraction | None:
    """The fraction a/b with the smallest b ≤ 12 (0 < a < b) within PROBABILITY_TOLERANCE of value."""
    for b in range(2, 13):
        a = round(value * b)
        if 0 < a < b and abs(Fraction(value) - Fraction(a, b)) <= PROBABILITY_TOLERANCE:
            return Fraction(a, b)
    return None



def _column(rows: list[list], j: int) -> list:
    return [row[j] for row in rows]


def _embeddings(rng: Rng, n: int, chosen: list[int] | None = None, fit: bool = True):
    """E, P, the token ids and x = E[ids] + P, with x designed as μ + c·u so that LayerNorm stays whole.

    fit=False leaves μ and σ to the caller (the training step chooses them last): the patterns are drawn
    freely and x, P are placeholders with μ = 1, σ = 2.
    """
    rows: list[tuple[int, ...]] = []
    while len(rows) < len(VOCABULARY):
        row = tuple(rng.integer(-2, 2) for _ in range(D_MODEL))
        if any(row) and row not in rows:
            rows.append(row)
    ids = [rng.below(len(VOCABULARY)) for _ in range(n + 1)]  # the input and, last, the token after it
    if chosen:
        ids[:n] = chosen  # the teacher's input; the token after it is still drawn
    patterns: list[tuple[int, ...]] = []
    x, p = [], []
    for i in range(n):
        # Each position its own sign pattern u and mean μ, among those whose P = x − E[token] stays within ±3.
        # μ ≠ 0 and σ = 2: at μ = 0 a forgotten − μ, and at σ = 1 dividing by σ² for σ, would go unseen.
        fits = [(u, mu) for u in _sign_patterns() if u not in patterns for mu in (-1, 1)
                if not fit or all(abs(mu + SIGMA * k - e) <= 3 for k, e in zip(u, rows[ids[i]]))]
        if not fits:
            raise Restart
        u, mu = rng.choice(fits)
        x_row = [mu + SIGMA * k for k in u]
        patterns.append(u)
        x.append(x_row)
        p.append([a - b for a, b in zip(x_row, rows[ids[i]])])
    return [list(r) for r in rows], ids, p, x, patterns


def _head(rng: Rng, y: list[list[int]], other=None, normal: tuple[int, ...] | None = None):
    """w_Q, w_K, w_V, the Given weights and the shifted score rows of one head, among every clean pair w_Q, w_K.

    `other` is the first head's draw: a second head must attend differently, and with two tokens its columns
    must not make Q, K or V symmetric (a transposed answer would look right). `normal`: every column is
    perpendicular to it (norm=post: the heads then never read what W_O writes).
    """
    key = tuple(map(tuple, y))
    groups = _attention_pairs(key, normal)
    project = lambda w: [sum(a * b for a, b in zip(row, w)) for row in y]  # noqa: E731
    # Few distinct weight patterns: take the first, in random order, for which some w_V gives whole outputs.
    for simple in rng.shuffled(list(groups)):
        entries = [entry for entry in groups[simple] if other is None or entry[2] != other[4]]
        if not entries or not _value_columns(key, simple, normal):
            continue
        values = [w for w in _value_columns(key, simple, normal) if not _mirrors(project(w), other, 2, y)]
        if not values:
            continue
        for q_columns, k_columns, shifted in rng.shuffled(entries):
            k_column = rng.choice(k_columns)
            k = project(k_column)
            # The query of token 0 does not change the weights, only S[0,0]: choose it so that no visible score
            # q_i·k_j equals q_j·k_i (swapped queries and keys, K·Qᵀ, would look right).
            queries = [w for w in q_columns if _scores_show_order(project(w), k) and not _mirrors(project(w), other, 0, y)]
            if queries and not _mirrors(k, other, 1, y):
                return (rng.choice(queries), k_column, rng.choice(values),
                        [[Fraction(a, d) for a in numerators] for d, numerators in simple], shifted)
    raise Restart


def _scores_show_order(q: list[int], k: list[int]) -> bool:
    """Some visible pair j < i has q_i·k_j ≠ q_j·k_i, so K·Qᵀ (queries and keys swapped) gives other scores."""
    return any(q[i] * k[j] != q[j] * k[i] for i in range(len(q)) for j in range(i))


def _mirrors(column: list[int], other, which: int, y) -> bool:
    """With two tokens and two heads, would this column (the second head's) make Q, K or V symmetric?"""
    if other is None or len(y) != 2:
        return False
    first = [sum(a * b for a, b in zip(row, other[which])) for row in y]
    return first[1] == column[0]


@lru_cache(maxsize=4)  # per model: both heads search the same Y; Ys rarely repeat
def _attention_pairs(y: tuple[tuple[int, ...], ...], normal: tuple[int, ...] | None = None) -> dict[tuple, list[tuple]]:
    """Given weights → every (w_Q columns, w_K columns, shifted scores) that gives them: −1, 0, 1 columns whose
    queries and keys are small and non-zero and whose causal weight rows are hand-friendly and not all uniform
    (else the scores would not matter).

    Columns that give the same queries (or keys) are grouped: the search is over distinct projections. With a
    `normal`, the same search keeps only the columns perpendicular to it."""
    if normal is not None:
        found = {}
        perpendicular: dict[int, list] = {}  # the same lists of columns recur across weight patterns: filtered once

        def kept_columns(columns: list) -> list:
            known = perpendicular.get(id(columns))
            if known is None:
                known = perpendicular[id(columns)] = _perpendicular(columns, normal)
            return known
        for simple, entries in _attention_pairs(y).items():
            kept = [(q_columns, k_columns, shifted) for q_columns, k_columns, shifted in
                    ((kept_columns(q), kept_columns(k), shifted) for q, k, shifted in entries)
                    if q_columns and k_columns]
            if kept:
                found[simple] = kept
        return found
    n = len(y)
    columns_of: dict[tuple[int, ...], list[tuple[int, ...]]] = {}  # many columns give the same projection
    for w, vector in zip(unit_columns(D_MODEL), _projections(y)):
        if 0 not in vector and max(map(abs, vector)) <= 3:
            columns_of.setdefault(vector, []).append(w)
    # Row 0 always has weight [1], so the weights depend on q only through q[1:]: group queries by it.
    queries: dict[tuple[int, ...], list[tuple[int, ...]]] = {}
    for q, q_columns in columns_of.items():
        queries.setdefault(q[1:], []).extend(q_columns)
    found: dict[tuple, list[tuple]] = {}
    # Score row i is q_i times the first i + 1 keys: its weight options and shifted scores are worked once per
    # (q_i, k, i), not once per whole query.
    rows_of: dict[tuple, tuple] = {}
    for q_tail, q_columns in queries.items():
        for k, k_columns in columns_of.items():
            if k[0] == k[1]:
                continue  # row 1 (and with k₂ alike row 2) would weigh its keys equally whatever the query
            options, shifted = [], []
            for i in range(1, n):
                known = rows_of.get((q_tail[i - 1], k, i))
                if known is None:
                    row = tuple(q_tail[i - 1] * k[j] for j in range(i + 1))
                    # The shifted scores are what the true weights depend on.
                    known = rows_of[q_tail[i - 1], k, i] = (_simple_weights(row), tuple(v - max(row) for v in row))
                if not known[0]:
                    break
                options.append(known[0])
                shifted.append(known[1])
            else:
                shifted = tuple(shifted)
                for rows in product(*options):
                    simple = ((1, (1,)),) + rows
                    if not all(len(set(numerators)) == 1 for _, numerators in simple):
                        found.setdefault(simple, []).append((q_columns, k_columns, shifted))
    return found


@lru_cache(maxsize=4)
def _values(y: tuple[tuple[int, ...], ...]) -> tuple[tuple[tuple[int, ...], tuple[int, ...]], ...]:
    """Every w_V of −1, 0, 1 with its values y·w_V, when they differ across tokens and stay within ±4."""
    return tuple((w, v) for w, v in zip(unit_columns(D_MODEL), _projections(y))
                 if len(set(v)) > 1 and max(map(abs, v)) <= 4)


@lru_cache(maxsize=4)
def _value_matrix(y: tuple[tuple[int, ...], ...]) -> numpy.ndarray:
    """_values(y)'s value rows as an integer matrix, one row per w_V."""
    return numpy.array([v for _, v in _values(y)], dtype=numpy.int64).reshape(-1, len(y))


@lru_cache(maxsize=128)
def _value_columns(y: tuple[tuple[int, ...], ...], simple: tuple[tuple[int, tuple[int, ...]], ...],
                   normal: tuple[int, ...] | None = None) -> list[tuple[int, ...]]:
    """Every w_V whose values differ across tokens and whose weighted averages (not all 0) are whole."""
    # With weights a_j/d, the average Σ a_j v_j / d is whole when d divides Σ a_j v_j.
    if normal is not None:
        return _perpendicular(_value_columns(y, simple), normal)
    whole = zero = -1  # bits over _values(y): every row's average whole; every row's sum 0
    for row in simple:
        row_whole, row_zero = _row_masks(y, row)
        whole &= row_whole
        zero &= row_zero
    chosen = whole & ~zero
    return [w for index, (w, _) in enumerate(_values(y)) if chosen >> index & 1]


@lru_cache(maxsize=4096)  # weight rows recur across the weight patterns of one Y: each is worked once
def _row_masks(y: tuple[tuple[int, ...], ...], row: tuple[int, tuple[int, ...]]) -> tuple[int, int]:
    """For one row of weights (d, numerators), as bits over _values(y): the values whose weighted average is whole,
    and those whose weighted sum is 0."""
    d, numerators = row
    totals = _value_matrix(y)[:, :len(numerators)] @ numpy.array(numerators, dtype=numpy.int64)
    return _bits(totals % d == 0), _bits(totals == 0)


def _bits(flags: numpy.ndarray) -> int:
    """A boolean vector as a whole number: bit i set where flags[i]."""
    return sum(1 << i for i in numpy.flatnonzero(flags).tolist())


def draw_front(rng: Rng, n: int, heads: int, chosen: list[int] | None = None, fit_positions: bool = True,
               activation: str = "relu") -> dict:
    """The model up to the feed-forward layer's ReLU, in plain ints and Fractions; raises Restart when a step is not clean.

    Each stage retries locally (ATTEMPTS times) before giving up, so a restart of the whole model is rare.
    Shared with the training step, which draws its own output layer. activation="gelu" (the training step's option)
    draws pre-activations on GELU_PRE and adds each entry's Given slope ("slopes"); r is then the Given r̃.
    """
    e, ids, pos, x, patterns = _embeddings(rng, n, chosen, fit_positions)
    while True:
        gamma = [rng.choice([1, 2]) for _ in range(D_MODEL)]
        beta = [rng.integer(-1, 1) for _ in range(D_MODEL)]
        y = [[g * k + b for g, k, b in zip(gamma, u, beta)] for u in patterns]
        # γ = 1 with β = 0 would hide a forgotten scale and shift; a zero row of Y a forgotten residual.
        if (any(g != 1 for g in gamma) or any(beta)) and all(any(row) for row in y):
            break
    drawn = [_head(rng, y)]
    if heads == 2:  # two heads that attend alike teach nothing about having two
        drawn.append(_head(rng, y, other=drawn[0]))
    w_q, w_k, w_v = ([list(col) for col in zip(*[d[m] for d in drawn])] for m in range(3))
    v = plain_product(y, w_v)
    # Whole by construction (_value_columns): plain ints from here on.
    o = [[int(sum(a * b for a, b in zip(drawn[h][3][i], _column(v, h)[: i + 1]))) for h in range(heads)] for i in range(n)]
    w_o, h1 = first_clean(rng, lambda: _residual(rng, y, o, heads))
    if activation == "gelu":
        w1, b1, u = first_clean(rng, lambda: _hidden_gelu(rng, h1))
        extra = {"slopes": [[GELU_SLOPE[val] for val in row] for row in u]}
    else:
        w1, b1, u = first_clean(rng, lambda: _hidden(rng, h1))
        extra = {}
    r = [[max(val, 0) for val in row] for row in u]  # GELU's Given r̃ is ReLU's value too (see GELU_PRE)
    return {"E": e, "ids": ids, "P": pos, "x": x, "gamma": gamma, "beta": beta, "W_Q": w_q, "W_K": w_k, "W_V": w_v,
            "weights": [d[3] for d in drawn], "W_O": w_o, "W_1": w1, "b_1": b1, "patterns": patterns, "y": y, "v": v,
            "o": o, "H1": h1, "u": u, "r": r, **extra}


def _draw(rng: Rng, n: int, heads: int, chosen: list[int] | None = None) -> dict:
    """One attempt at the whole model: the shared front, then an output layer with simple target probabilities."""
    front = draw_front(rng, n, heads, chosen)
    w2, b2, h2, w_out, p_given, p_true = first_clean(rng, lambda: _output(rng, front["H1"], front["r"], front["ids"][1:]))
    return {**front, "W_2": w2, "b_2": b2, "W_out": w_out, "p_given": p_given, "p_true": p_true}


# norm=post: Add & Norm after each sublayer (the original transformer's order, and the book's Example 6), no LayerNorm
# on the embeddings. A LayerNorm row comes out whole only when it is {a, a, b, b} with a ≠ b: x̂ is then ±1, two of each
# sign (any other rational σ leaves thirds or fifths, which would follow into the logits, past the e^k table). Both
# LayerNorm inputs are built so: R₁ = X + O·W_O by design (below), R₂ = H₁ + r·W₂ + b₂ by a search of W₂ and b₂.
# R₁ first: the heads read only columns perpendicular to a direction m and W_O writes along m (each row of W_O is a
# multiple of m), so X = R₁ − O·W_O gives the heads the same Q, K and V as R₁ would. R₁ is drawn clean, the heads are
# searched on it, and X (hence P) follows. A student who forgets the attention's term normalises X, which is not clean.
POST_SCALES = ((Fraction(3, 2), (Fraction(-1, 2), Fraction(1, 2))), (Fraction(2), (Fraction(-1), Fraction(1))),
               (Fraction(5, 2), (Fraction(-1, 2), Fraction(1, 2))))  # σ of R₁'s rows and their means: entries within ±3
# W_O's row for head h is a_h·m, the heads' a_h different (equal rows of W_O would hide the heads' columns swapped).
WRITE_CHOICES = {1: [(a,) for a in (-2, -1, 1, 2)], 2: [(a, b) for a in (-2, -1, 1, 2) for b in (-2, -1, 1, 2) if a != b]}
FFN_ATTEMPTS = 20  # W₁ draws for one H₁ before the model is drawn again (each W₂ search is exhaustive)
FFN_COLUMN = tuple(product((-1, 0, 1), repeat=D_FF + 1))  # (W₂[0,j], W₂[1,j], b₂[j]) for one column j of R₂


@cache
def write_directions() -> tuple[tuple[int, ...], ...]:
    """Directions m of −1, 0, 1 (first non-zero entry 1, two non-zero at least) that change a row's deviations."""
    return tuple(m for m in unit_columns(D_MODEL) if sum(map(abs, m)) >= 2 and len(set(m)) > 1
                 and next(a for a in m if a) == 1)


def paired_row(row) -> bool:
    """A row {a, a, b, b} (a ≠ b) whose σ = |a − b|/2 is not 1 and whose mean (a + b)/2 is not 0."""
    values = sorted(row)
    a, b = values[0], values[3]
    return values[1] == a and values[2] == b and a != b and b - a != 2 and a + b != 0


def layernorm_affine(rng: Rng, patterns) -> tuple[list[int], list[int], list[list[int]]]:
    """γ of 1 or 2 and β of −1…1 (not γ all 1 with β all 0) for normalised rows of ±1, and γ ⊙ x̂ + β (no zero row)."""
    while True:
        gamma = [rng.choice([1, 2]) for _ in range(D_MODEL)]
        beta = [rng.integer(-1, 1) for _ in range(D_MODEL)]
        y = [[g * k + b for g, k, b in zip(gamma, u, beta)] for u in patterns]
        if (any(g != 1 for g in gamma) or any(beta)) and all(any(row) for row in y):
            return gamma, beta, y


def _post_writes(r1, o, normal, coefficients):
    """W_O (rows a_h·m) and X = R₁ − O·W_O: every row moved, X within ±5 (E within ±2, P within ±3); or None."""
    w_o = [[a * m for m in normal] for a in coefficients]
    moves = [sum(a * b for a, b in zip(row, coefficients)) for row in o]
    if 0 in moves or plain_slip_hidden(o, w_o):
        return None  # a row the attention leaves alone would not show a forgotten attention term there
    x = [[int(c - s * m) for c, m in zip(row, normal)] for row, s in zip(r1, moves)]
    if max(abs(val) for row in x for val in row) > 5 or not all(any(row) for row in x):
        return None
    if any(_signs(a) == _signs(b) for a, b in zip(x, r1)):
        return None  # LayerNorm(X) would give that row of H₁ too: a forgotten attention term would not show there
    return w_o, x


def _signs(row) -> tuple[bool, ...] | None:
    """Which entries of a row {a, a, b, b} are above its mean (its x̂ up to scale), or None for any other row."""
    values = sorted(row)
    if not values[0] == values[1] < values[2] == values[3]:
        return None
    return tuple(2 * v > values[0] + values[3] for v in row)


def _post_embeddings(rng: Rng, x, ids):
    """E (entries −2…2, rows distinct and non-zero) and P = X − E[tokens] within ±3."""
    rows: dict[int, list[int]] = {}
    for t in sorted(set(ids[:len(x)])):
        at = [i for i, token in enumerate(ids[:len(x)]) if token == t]
        row = []
        for j in range(D_MODEL):
            fits = [v for v in range(-2, 3) if all(abs(x[i][j] - v) <= 3 for i in at)]
            if not fits:
                return None
            row.append(rng.choice(fits))
        rows[t] = row
    for t in range(len(VOCABULARY)):
        if t not in rows:
            rows[t] = [rng.integer(-2, 2) for _ in range(D_MODEL)]
    e = [rows[t] for t in range(len(VOCABULARY))]
    if not all(any(row) for row in e) or len({tuple(row) for row in e}) < len(e):
        return None
    return e, [[a - b for a, b in zip(x[i], e[t])] for i, t in enumerate(ids[:len(x)])]


def _post_feed_forward(rng: Rng, h1, r):
    """W₂ and b₂ whose R₂ = H₁ + r·W₂ + b₂ has every row {a, a, b, b}, or None: one of every such W₂, b₂ (found by
    _paired_rows.paired_columns), tried at random until one keeps the rest of the sheet clean."""
    n = len(h1)
    paired = paired_columns(h1, r, FFN_COLUMN)
    for _ in range(min(len(paired), 60)):
        chosen = paired[rng.below(len(paired))]
        r2 = [[h1[i][j] + r[i][0] * c[0] + r[i][1] * c[1] + c[2] for j, c in enumerate(chosen)] for i in range(n)]
        w2 = [[c[0] for c in chosen], [c[1] for c in chosen]]
        b2 = [c[2] for c in chosen]
        f = [[v - h for v, h in zip(rr, hr)] for rr, hr in zip(r2, h1)]
        # μ₂ = (a + b)/2 within the contract's numerators; a forgotten b₂, or rᵀ·W₂, must show.
        if (all(map(paired_row, r2)) and all(map(any, w2)) and any(b2)
                and max(abs(v) for row in f + r2 for v in row) <= 6 and not plain_slip_hidden(r, w2, f)):
            return w2, b2, r2
    return None


@cache
def _normal_masks() -> dict[tuple[int, ...], int]:
    """For each column of −1, 0, 1: the write directions it is perpendicular to, as bits (bit k: write_directions()[k])."""
    return {w: sum(1 << k for k, m in enumerate(write_directions()) if not sum(a * b for a, b in zip(w, m)))
            for w in unit_columns(D_MODEL)}


@lru_cache(maxsize=8192)  # most R₁ let no head attend cleanly; the same R₁ recur across the draws of a class set
def _readable_normals(key: tuple[tuple[int, ...], ...]) -> tuple[tuple[int, ...], ...]:
    """The write directions m for which some query, key and value columns perpendicular to m give one head clean
    weights and whole outputs on R₁ (one pass over the unrestricted search, instead of a search per m)."""
    masks, found = _normal_masks(), 0

    def perpendicular_to_some(columns) -> int:
        """The directions some of these columns are perpendicular to, as bits."""
        return reduce(or_, (masks[w] for w in columns), 0)
    for simple, entries in _attention_pairs(key).items():
        readers = 0  # the directions some query and key columns of this weight pattern are both perpendicular to
        for q_columns, k_columns, _ in entries:
            readers |= perpendicular_to_some(q_columns) & perpendicular_to_some(k_columns)
        if readers & ~found:
            found |= readers & perpendicular_to_some(_value_columns(key, simple))
    return tuple(m for k, m in enumerate(write_directions()) if found >> k & 1)


def _post_attention(rng: Rng, r1, heads: int):
    """A write direction m, the heads' draws (every column perpendicular to m), their outputs O, W_O and X = R₁ − O·W_O:
    the first m, in random order, for which every head attends cleanly on R₁ and some W_O keeps X small."""
    for normal in rng.shuffled(_readable_normals(tuple(map(tuple, r1)))):
        try:
            drawn = [_head(rng, r1, normal=normal)]
            if heads == 2:
                drawn.append(_head(rng, r1, other=drawn[0], normal=normal))
        except Restart:
            continue
        v = plain_product(r1, [list(col) for col in zip(*[d[2] for d in drawn])])
        # Each term Ã[i,j]·V[j,h] of the key's head outputs: 27/10 is past the contract's numerators.
        terms = [a * b for h, d in enumerate(drawn) for row in d[3] for a, b in zip(row, _column(v, h))]
        if any(abs(term.numerator) > 20 for term in terms):
            continue
        o = [[int(sum(a * b for a, b in zip(drawn[h][3][i], _column(v, h)[: i + 1]))) for h in range(heads)]
             for i in range(len(r1))]
        for coefficients in rng.shuffled(WRITE_CHOICES[heads]):
            written = _post_writes(r1, o, normal, coefficients)
            if written:
                return drawn, o, *written
    raise Restart


def _draw_post(rng: Rng, n: int, heads: int, chosen: list[int] | None = None) -> dict:
    """One attempt at the norm=post model: draw_post_front, then the second LayerNorm's γ₂, β₂ and the output layer."""
    front = draw_post_front(rng, n, heads, chosen)
    for _ in range(ATTEMPTS):
        gamma2, beta2, h2 = layernorm_affine(rng, front["Rhat2"])
        readout = _readout(rng, h2, front["ids"][1:])
        if readout:
            break
    else:
        raise Restart
    w_out, p_given, p_true = readout
    return {**front, "gamma_2": gamma2, "beta_2": beta2, "H2": h2, "W_out": w_out, "p_given": p_given, "p_true": p_true}


def draw_post_front(rng: Rng, n: int, heads: int, chosen: list[int] | None = None) -> dict:
    """The norm=post model up to R₂ (shared with the training step, which draws its own γ₂, β₂ and output layer):
    R₁ clean by design, X from it, R₂ clean by a search. "Rhat1" and "Rhat2" are the LayerNorms' x̂ rows (±1)."""
    ids = [rng.below(len(VOCABULARY)) for _ in range(n + 1)]  # the input and, last, the token after it
    if chosen:
        ids[:n] = chosen
    patterns = rng.shuffled(list(_sign_patterns()))[:n]  # each position its own: rows of H₁ differ
    r1 = []
    for u in patterns:
        sigma, means = rng.choice(POST_SCALES)
        mu = rng.choice(means)
        r1.append([int(mu + sigma * k) for k in u])  # whole: a half-integer μ goes with a half-integer σ
    drawn, o, w_o, x = _post_attention(rng, r1, heads)
    w_q, w_k, w_v = ([list(col) for col in zip(*[d[m] for d in drawn])] for m in range(3))
    e, pos = first_clean(rng, lambda: _post_embeddings(rng, x, ids))
    gamma1, beta1, h1 = layernorm_affine(rng, patterns)
    for _ in range(FFN_ATTEMPTS):
        w1, b1, u = first_clean(rng, lambda: _hidden(rng, h1))
        r = [[max(val, 0) for val in row] for row in u]
        found = _post_feed_forward(rng, h1, r)
        if found:
            break
    else:
        raise Restart
    w2, b2, r2 = found
    normalised = [[1 if above else -1 for above in _signs(row)] for row in r2]  # x̂ of each row {a, a, b, b}
    return {"norm": "post", "E": e, "ids": ids, "P": pos, "x": x, "W_Q": w_q, "W_K": w_k, "W_V": w_v,
            "weights": [d[3] for d in drawn], "o": o, "W_O": w_o, "R1": r1, "Rhat1": [list(u) for u in patterns],
            "gamma_1": gamma1, "beta_1": beta1, "H1": h1, "W_1": w1, "b_1": b1, "u": u, "r": r, "W_2": w2, "b_2": b2,
            "R2": r2, "Rhat2": normalised}


def first_clean(rng: Rng, attempt):
    """The first clean result of attempt() (None means not clean), or Restart after ATTEMPTS tries."""
    for _ in range(ATTEMPTS):
        found = attempt()
        if found is not None:
            return found
    raise Restart


@cache
def unit_columns(length: int) -> tuple[tuple[int, ...], ...]:
    """Every column of −1, 0, 1 of this length except the zero column."""
    return tuple(w for w in product((-1, 0, 1), repeat=length) if any(w))


@cache
def unit_matrix(length: int) -> numpy.ndarray:
    """unit_columns(length) as the columns of an integer matrix (one product gives every column's projection)."""
    return numpy.array(unit_columns(length), dtype=numpy.int64).T


@lru_cache(maxsize=4)  # per model: _attention_pairs and _values both ask for the same Y
def _projections(y: tuple[tuple[int, ...], ...]) -> tuple[tuple[int, ...], ...]:
    """y·w for every column w of unit_columns(D_MODEL), in that order: one integer matrix product (the searches
    below ask for all of them, for every R₁ drawn)."""
    rows = numpy.array(y)
    if rows.dtype.kind != "i":  # numpy would truncate a Fraction to a whole number without a word
        raise TypeError(f"projections of whole numbers only, not {rows.dtype}")
    return tuple(map(tuple, (rows.astype(numpy.int64) @ unit_matrix(D_MODEL)).T.tolist()))


def _perpendicular(columns: list[tuple[int, ...]], normal: tuple[int, ...]) -> list[tuple[int, ...]]:
    """The columns perpendicular to `normal` (a head reading through them ignores that direction)."""
    bit = _direction_bits().get(normal)
    if bit is not None:  # a write direction: read off each column's mask (_normal_masks) instead of a dot product
        masks = _normal_masks()
        return [w for w in columns if masks[w] & bit]
    return [w for w in columns if not sum(a * b for a, b in zip(w, normal))]


@cache
def _direction_bits() -> dict[tuple[int, ...], int]:
    """Each write direction's bit in _normal_masks."""
    return {m: 1 << k for k, m in enumerate(write_directions())}


def _columns(rng: Rng, length: int, count: int) -> list[list[int]]:
    """A weight matrix (length × count) of −1, 0, 1 with no zero column, drawn column by column."""
    chosen = [rng.choice(unit_columns(length)) for _ in range(count)]
    return [list(row) for row in zip(*chosen)]


def _residual(rng: Rng, y, o, heads: int):
    """W_O (no zero row) with a small H₁ = Y + O·W_O."""
    w_o = [list(rng.choice(unit_columns(D_MODEL))) for _ in range(heads)]
    h1 = [[a + b for a, b in zip(yr, ar)] for yr, ar in zip(y, plain_product(o, w_o))]
    if plain_slip_hidden(o, w_o):
        return None  # Oᵀ·W_O (two tokens, two heads) must give another projection
    return (w_o, h1) if max(abs(val) for row in h1 for val in row) <= 5 else None


def _hidden(rng: Rng, h1):
    """W₁ and b₁ whose pre-activations are never 0, some cut by ReLU and some kept."""
    w1 = _columns(rng, D_MODEL, D_FF)
    xw = plain_product(h1, w1)
    if max(abs(val) for row in xw for val in row) > 8:
        return None
    b1 = [int(b) for b in hidden_biases(rng, xw, "easy", window=Rational(6))]
    u = [[a + b for a, b in zip(row, b1)] for row in xw]
    flat = [val for row in u for val in row]
    if 0 in flat or not (min(flat) < 0 < max(flat)) or max(map(abs, flat)) > 8:
        return None
    # A zero b₁ would hide a forgotten bias; uᵀ (two tokens, two hidden units) must not look right, nor rᵀ for r
    # downstream (in r·W₂, and the training step's dW₂ = rᵀ·dH₂ and dW₁ = H₁ᵀ·du).
    r = [[max(val, 0) for val in row] for row in u]
    if not any(b1) or plain_slip_hidden(h1, w1, u) or (len(r) == len(r[0]) and r == [list(c) for c in zip(*r)]):
        return None
    return w1, b1, u


# GELU in a chain (the training step's activation=gelu): GELU(x) = x·Φ(x) is exact only at 0 (value 0, slope Φ(0) = ½).
# Every pre-activation is 0 or at least 3 away from it, where GELU is within 0.005 of ReLU's value and its slope
# Φ(u) + u·φ(u) within 0.012 of ReLU's: the sheet gives those simple values (r̃, s̃) for the rest of the chain, as it
# gives Ã and p̃, so every later number stays a small fraction. (At ±1 or ±2 the slopes are near 13/12 and −1/12:
# twelfths would follow every gradient back to the embeddings.)
GELU_PRE = (-4, -3, 0, 3, 4)
GELU_SLOPE = {-4: Fraction(0), -3: Fraction(0), 0: Fraction(1, 2), 3: Fraction(1), 4: Fraction(1)}
GELU_VALUE_TOLERANCE, GELU_SLOPE_TOLERANCE = Fraction(1, 200), Fraction(3, 250)  # 0.005 and 0.012, checked in the tests


GELU_TABLE = tuple(Rational(k) for k in range(-4, 5))  # the printed Φ, φ grid: the same on every variant


def gelu_value_lines(u: ImmutableMatrix) -> tuple[Tex, ...]:
    """GELU(u) = u·Φ(u) from the printed table for each pre-activation value, and the Given r̃ the chain uses."""
    cdf, _ = phi_tables(GELU_TABLE)
    lines = []
    for v in sorted(set(u)):
        if v == 0:
            lines.append(Tex(r"\operatorname{GELU}(0) = 0 \cdot \Phi(0) = 0 \quad \text{(exact)}"))
        else:
            product_ = format_places(Fraction(int(v)) * cdf(v).route)
            lines.append(Tex(f"\\operatorname{{GELU}}({number_tex(v)}) = {factor_tex(v)} \\cdot \\Phi({number_tex(v)}) \\approx "
                             f"{factor_tex(v)} \\cdot {format_places(cdf(v).route)} = {product_} \\approx "
                             f"{number_tex(max(v, 0))} = \\tilde r"))
    return tuple(lines)


def gelu_slope_lines(u: ImmutableMatrix) -> tuple[Tex, ...]:
    """GELU'(u) = Φ(u) + u·φ(u) from the printed table for each pre-activation value, and the slope s̃ the chain uses."""
    cdf, pdf = phi_tables(GELU_TABLE)
    lines = []
    for v in sorted(set(u)):
        slope = GELU_SLOPE[int(v)]
        route = cdf(v).route + Fraction(int(v)) * pdf(v).route
        tail = (r" = \tfrac{1}{2} \quad \text{(exact)}" if v == 0
                else f" \\approx {number_tex(Rational(slope.numerator, slope.denominator))} = \\tilde s")
        lines.append(Tex(f"\\operatorname{{GELU}}'({number_tex(v)}) = \\Phi({number_tex(v)}) + {factor_tex(v)} \\cdot "
                         f"\\varphi({number_tex(v)}) \\approx {format_places(cdf(v).route)} + {factor_tex(v)} \\cdot "
                         f"{format_places(pdf(v).route)} = {format_places(route)}" + tail))
    return tuple(lines)


GELU_VALUES_GIVEN = Tex(
    r"GELU$(x) = x\,\Phi(x)$ is exactly 0 at $x = 0$; where $|x| \ge 3$ it is within 0.005 of ReLU$(x)$ (see the table), "
    r"and the chain uses that simple value $\tilde r = \operatorname{ReLU}(x)$ there, as if exact. ")


def _hidden_gelu(rng: Rng, h1):
    """W₁ and b₁ whose pre-activations all lie on GELU_PRE: at least one 0 (GELU's exact slope ½) and one kept."""
    w1 = _columns(rng, D_MODEL, D_FF)
    xw = plain_product(h1, w1)
    b1 = []
    for column in zip(*xw):
        fits = [b for b in range(-6, 7) if all(v + b in GELU_PRE for v in column)]
        if not fits:
            return None
        b1.append(rng.choice(fits))
    u = [[a + b for a, b in zip(row, b1)] for row in xw]
    flat = [val for row in u for val in row]
    if 0 not in flat or not any(val > 0 for val in flat) or not any(b1) or plain_slip_hidden(h1, w1, u):
        return None
    r = [[max(val, 0) for val in row] for row in u]
    if len(r) == len(r[0]) and r == [list(c) for c in zip(*r)]:
        return None
    return w1, b1, u


def _output(rng: Rng, h1, r, targets):
    """W₂, b₂ and W_out: logits within the e^k table, each target's probability near a simple fraction."""
    w2 = [list(rng.choice(unit_columns(D_MODEL))) for _ in range(D_FF)]
    b2 = [rng.integer(-1, 1) for _ in range(D_MODEL)]
    f = [[a + b for a, b in zip(row, b2)] for row in plain_product(r, w2)]
    h2 = [[a + b for a, b in zip(hr, fr)] for hr, fr in zip(h1, f)]
    if max(abs(val) for row in f + h2 for val in row) > 8:
        return None
    if not any(b2) or plain_slip_hidden(r, w2, f):
        return None  # a forgotten b₂, or rᵀ·W₂, would go unseen
    found = _readout(rng, h2, targets)
    return None if found is None else (w2, b2, h2, *found)


def _readout(rng: Rng, h2, targets):
    """W_out with logits within the e^k table and each target's probability near a simple fraction, or None."""
    # Each candidate column of W_out gives one column of logits; small columns keep every row in the table.
    logits = {w: [sum(a * b for a, b in zip(row, w)) for row in h2] for w in unit_columns(D_MODEL)}
    usable = [w for w, col in logits.items() if max(map(abs, col)) <= 6]
    if len(usable) < len(VOCABULARY):
        return None
    for _ in range(20):
        chosen = [rng.choice(usable) for _ in VOCABULARY]
        z = [list(row) for row in zip(*(logits[w] for w in chosen))]
        if any(max(row) - min(row) > 5 for row in z):
            continue
        if plain_slip_hidden(h2, [list(row) for row in zip(*chosen)]):
            continue  # H₂·W_outᵀ must give other logits
        p_t = [decimal_softmax(tuple(row))[t] for row, t in zip(z, targets)]
        if all(Decimal("0.1") <= p <= Decimal("0.9") for p in p_t):
            p_given = [_simple_fraction(p) for p in p_t]
            if None not in p_given:
                return [list(row) for row in zip(*chosen)], p_given, p_t
    return None


def _causal_weights(rows: list[list[Fraction]], n: int) -> ImmutableMatrix:
    return matrix([row + [Fraction(0)] * (n - len(row)) for row in rows])


def generate(rng: Rng, options: dict[str, str]) -> Problem:
    """Draw the model so every step stays clean, redrawing it whole when a step cannot be."""
    chosen = _input_ids(options)
    n, heads = (len(chosen) if chosen else int(options["tokens"])), int(options["heads"])
    draw = _draw_post if options["norm"] == "post" else _draw
    while True:
        try:
            drawn = draw(rng, n, heads, chosen)
            break
        except Restart:
            continue
    return forward_problem(drawn, n, heads, options["reduction"] == "mean")


def _softmax_lines(symbol: str, scores: ImmutableMatrix, weights: ImmutableMatrix, row: int) -> list[Tex]:
    """Each visible weight of one row as e^{shifted}/Σ, looked up in the table."""
    visible = list(scores.row(row))[: row + 1]
    exponents = [s - max(visible) for s in visible]
    return [table_softmax_line(entry_label(symbol, row, j), exponents, j, weights[row, j]) for j in range(len(visible))]


def forward_problem(d: dict, n: int, heads: int, mean: bool, activation: str = "relu") -> Problem:
    """Every part, step and answer, exactly, from one clean draw."""
    e, pos, w_q, w_k, w_v = matrix(d["E"]), matrix(d["P"]), matrix(d["W_Q"]), matrix(d["W_K"]), matrix(d["W_V"])
    post = d.get("norm") == "post"  # Add & Norm after each sublayer (no LayerNorm on the embeddings)
    gamma, beta = (matrix([d["gamma_1"]]), matrix([d["beta_1"]])) if post else (matrix([d["gamma"]]), matrix([d["beta"]]))
    w_o, w1, b1 = matrix(d["W_O"]), matrix(d["W_1"]), matrix([d["b_1"]])
    w2, b2, w_out = matrix(d["W_2"]), matrix([d["b_2"]]), matrix(d["W_out"])
    ids, targets = d["ids"][:n], d["ids"][1:]
    looked_up = ImmutableMatrix([list(e.row(t)) for t in ids])
    x = looked_up + pos
    if post:
        y = x  # the heads read the embeddings themselves
    else:
        stats, mus, sigmas = layernorm_stats_step(x, list(range(n)), lambda i: f"_{i}")
        y = _layernorm(x, mus, sigmas, gamma, beta)
    q, k, v = y * w_q, y * w_k, y * w_v
    scores = [causal_mask(q.col(h) * k.col(h).T) for h in range(heads)]
    weights = [softmax_rows(s) for s in scores]
    simple = [_causal_weights(rows, n) for rows in d["weights"]]
    o = ImmutableMatrix.hstack(*(a * v.col(h) for h, a in enumerate(simple)))
    attn = o * w_o
    h1 = y + attn
    if post:  # Add & Norm: H₁ = LayerNorm(X + O·W_O)
        r1 = h1
        stats, mus, sigmas = layernorm_stats_step(r1, list(range(n)), lambda i: f"_{i}")
        h1 = _layernorm(r1, mus, sigmas, gamma, beta)
    u = h1 * w1 + ImmutableMatrix.vstack(*([b1] * n))
    r = relu(u)
    f = r * w2 + ImmutableMatrix.vstack(*([b2] * n))
    h2 = h1 + f
    if post:  # Add & Norm: H₂ = LayerNorm(H₁ + FFN(H₁))
        r2 = h2
        gamma2, beta2 = matrix([d["gamma_2"]]), matrix([d["beta_2"]])
        stats2, mus2, sigmas2 = layernorm_stats_step(r2, list(range(n)), lambda i: f"_{i}")
        h2 = _layernorm(r2, mus2, sigmas2, gamma2, beta2)
    z = h2 * w_out
    # Only each target's probability is asked: e^{z_t − max} / Σ_j e^{z_j − max}, exactly.
    p_target = ImmutableMatrix(n, 1, [softmax_rows(z.row(i) - ImmutableMatrix([[max(z.row(i))] * z.cols]))[0, t]
                                      for i, t in enumerate(targets)])
    p_given = [Rational(v.numerator, v.denominator) for v in d["p_given"]]

    def quantity(name, symbol, value, reading=None):
        return Quantity(name, Tex(symbol), value, reading=reading)

    # The sheet's method for the 4-place parts: weights and target probabilities from the e^k table (each row
    # shifted by its largest visible score or logit); the losses' (loss_parts) from the ln k table and the Given p̃.
    weight_readings = [_table_softmax_rows(s) for s in scores]
    target_readings = tuple((row[t],) for row, t in zip(_table_softmax_rows(z), targets))

    head_names = [f"_{h + 1}" if heads > 1 else "" for h in range(heads)]
    q_x, q_mu, q_sigma = quantity("X", "X", x), quantity("mu", r"\mu", ImmutableMatrix(n, 1, mus)), \
        quantity("sigma", r"\sigma", ImmutableMatrix(n, 1, sigmas))
    q_y, q_q, q_k, q_v = (quantity(name, name, value) for name, value in (("Y", y), ("Q", q), ("K", k), ("V", v)))
    source = "X" if post else "Y"  # what the heads read
    q_s = [quantity(f"S{h + 1}", f"S{head_names[h]}", s) for h, s in enumerate(scores)]
    q_a = [quantity(f"A{h + 1}", f"A{head_names[h]}", a, weight_readings[h]) for h, a in enumerate(weights)]
    q_o, q_h1, q_u, q_r, q_h2, q_z = (quantity(name, symbol, value) for name, symbol, value in (
        ("O", "O", o), ("H1", "H_1", h1), ("u", "u", u), ("r", "r", r), ("H2", "H_2", h2), ("z", "z", z)))
    q_pt = quantity("p_target", r"p_{\text{target}}", p_target, target_readings)
    # The residual sums: with Add & Norm, R₁ and R₂ are answers of their own and H₁, H₂ their LayerNorms.
    sum1, sum2 = ("R_1", "R_2") if post else ("H_1", "H_2")
    added1, added2 = (quantity("R1", "R_1", r1), quantity("R2", "R_2", r2)) if post else (q_h1, q_h2)

    tokens = " ".join(VOCABULARY[t] for t in ids)
    target_text = ", ".join(f"position {i}: {VOCABULARY[t]}" for i, t in enumerate(targets))
    head_word = "each head" if heads > 1 else "the head"
    parts = [
        Part(Tex(f"Embed the input \\texttt{{{tokens}}}: compute $X = E[\\text{{tokens}}] + P$, one row per position."),
             (q_x,),
             (Step(text=Tex("Row $i$ of $X$ is the row of $E$ for the $i$-th token plus row $i$ of $P$."),
                   lines=tuple(Tex(f"\\text{{position {i}: token {VOCABULARY[t]}}} \\to E[{t},:] + P[{i},:]")
                               for i, t in enumerate(ids))),
              add_step(Tex("Add the positional embeddings."), looked_up, pos, Tex(r"X = E[\text{tokens}] + P"), q_x))),
    ] + ([] if post else [
        Part(Tex(r"LayerNorm: compute the mean $\mu$ and standard deviation $\sigma$ of each row of $X$."),
             (q_mu, q_sigma), (stats,)),
        Part(Tex(r"LayerNorm: compute $Y = \gamma \odot (X - \mu)/\sigma + \beta$, row by row."), (q_y,),
             (layernorm_output_step(x, list(range(n)), mus, sigmas, gamma, beta, q_y),)),
    ]) + [
        Part(Tex(f"Compute $Q = {source}\\,W_Q$, $K = {source}\\,W_K$ and $V = {source}\\,W_V$ "
                 + ("(column 0 of each belongs to head 1, column 1 to head 2)." if heads > 1
                    else "(one column each: the head has width 1).")),
             (q_q, q_k, q_v),
             tuple(product_step(Tex(f"Row $i$ of ${source}$ times column $j$ of $W_{name}$."), y, w,
                                Tex(f"{name} = {source}\\,W_{name}"),
                                qq, expand="first") for name, w, qq in (("Q", w_q, q_q), ("K", w_k, q_k), ("V", w_v, q_v)))),
        Part(Tex(f"Scores: for {head_word}, $S[i,j] = q_i\\,k_j$ (divided by $\\sqrt{{d_{{\\text{{head}}}}}} = 1$), "
                 r"with the causal mask: $S[i,j] = -\infty$ for $j > i$."),
             tuple(q_s),
             tuple(Step(text=Tex(f"Head {h + 1}: multiply the query of token $i$ by the key of token $j$, for $j \\le i$."),
                        formula=Tex(f"S{head_names[h]}[i,j] = Q[i,{h}]\\,K[j,{h}]"),
                        lines=tuple(Tex(f"{entry_label('S' + head_names[h], n - 1, j)} = "
                                        f"{factor_tex(q[n - 1, h])} \\cdot {factor_tex(k[j, h])} = {number_tex(scores[h][n - 1, j])}")
                                    for j in range(n)),
                        result=q_s[h]) for h in range(heads))),
        Part(Tex(f"Attention weights: softmax of each row of the scores, for {head_word}, to 4 decimal places "
                 r"(use the table of $e^k$; masked entries get weight 0)."),
             tuple(q_a),
             tuple(Step(text=Tex(f"Head {h + 1}: row 0 sees only itself (weight 1); in each later row subtract the row's "
                                 "largest visible score and use the table."),
                        formula=Tex(f"A{head_names[h]}[i,j] = \\frac{{e^{{S[i,j]}}}}{{\\sum_{{m \\le i}} e^{{S[i,m]}}}}"),
                        lines=tuple(line for i in range(1, n) for line in _softmax_lines(f"A{head_names[h]}", scores[h], weights[h], i)),
                        result=q_a[h], checks=(Tex(r"\text{Each row sums to 1 (also at 4 decimal places).}"),))
                   for h in range(heads)),
             decimals=True),
        Part(Tex(r"Head outputs: compute $O$, whose column 0 is $\tilde A_1$ times column 0 of $V$ (head 1) and column 1 is "
                 r"$\tilde A_2$ times column 1 of $V$ (head 2)." if heads > 1 else r"Head output: compute $O = \tilde A\,V$."),
             (q_o,),
             tuple(_head_output_step(h, head_names[h], simple[h], v, o) for h in range(heads)),
             given=Tex(f"From here on, use these simple weights, each within {_decimal(WEIGHT_TOLERANCE)} of the true weight, so that one slip above does not spoil the rest: $"
                       + r" \qquad ".join(f"\\tilde A{head_names[h]} = {matrix_tex(s)}" for h, s in enumerate(simple)) + "$")),
        Part(Tex(f"Project the heads and add the residual: ${sum1} = {source} + O\\,W_O$."), (added1,),
             (product_step(Tex(r"Row $i$ of $O$ times column $j$ of $W_O$."), o, w_o, Tex(r"O\,W_O"),
                           quantity("OW", r"O\,W_O", attn), expand="row"),
              add_step(Tex("Add the heads' input back (the residual connection)." if post
                           else "Add the LayerNorm output back (the residual connection)."), y, attn,
                       Tex(f"{sum1} = {source} + O\\,W_O"), added1))),
    ] + (_add_norm_parts(1, r1, stats, mus, sigmas, gamma, beta, q_h1, q_mu, q_sigma) if post else []) + [
        Part(Tex(r"Feed-forward: compute $u = H_1\,W_1 + b_1$ and $r = \operatorname{ReLU}(u)$."), (q_u, q_r),
             (affine_step(Tex(r"Row $i$ of $H_1$ times column $j$ of $W_1$, plus $b_1[j]$."), h1, w1, b1,
                          Tex(r"u = H_1\,W_1 + b_1"), q_u),
              relu_step(u, q_r, pre_symbol="u"))) if activation != "gelu" else
        Part(Tex(r"Feed-forward: compute $u = H_1\,W_1 + b_1$ and the GELU's output $\tilde r$ as the chain uses it: "
                 r"$\operatorname{GELU}(u) = u\,\Phi(u)$ where it is exact, and the Given simple value elsewhere."),
             (q_u, quantity("r", r"\tilde r", r)),
             (affine_step(Tex(r"Row $i$ of $H_1$ times column $j$ of $W_1$, plus $b_1[j]$."), h1, w1, b1,
                          Tex(r"u = H_1\,W_1 + b_1"), q_u),
              Step(text=Tex(r"GELU of each pre-activation from the table: exact at 0, within 0.005 of ReLU at $|u| \ge 3$."),
                   formula=Tex(r"\operatorname{GELU}(x) = x\,\Phi(x)"), lines=gelu_value_lines(u),
                   result=quantity("r", r"\tilde r", r))),
             given=Tex(GELU_VALUES_GIVEN + r"The table: \[" + phi_table_tex(GELU_TABLE) + r"\]")),
        Part(Tex(f"Feed-forward output and residual: compute ${sum2} = H_1 + r\\,W_2 + b_2$."
                 if activation != "gelu" else f"Feed-forward output and residual: compute ${sum2} = H_1 + \\tilde r\\,W_2 + b_2$."), (added2,),
             (affine_step(Tex(r"Row $i$ of $r$ times column $j$ of $W_2$, plus $b_2[j]$."
                              if activation != "gelu" else r"Row $i$ of $\tilde r$ times column $j$ of $W_2$, plus $b_2[j]$."), r, w2, b2,
                          Tex(r"f = r\,W_2 + b_2" if activation != "gelu" else r"f = \tilde r\,W_2 + b_2"), quantity("f", "f", f)),
              add_step(Tex("Add the feed-forward layer's input back."), h1, f, Tex(f"{sum2} = H_1 + f"), added2))),
    ] + (_add_norm_parts(2, r2, stats2, mus2, sigmas2, gamma2, beta2, q_h2, quantity("mu2", r"\mu", ImmutableMatrix(n, 1, mus2)),
                         quantity("sigma2", r"\sigma", ImmutableMatrix(n, 1, sigmas2))) if post else []) + [
        Part(Tex(r"Logits: compute $z = H_2\,W_{\text{out}}$ (row $i$: position $i$'s score for each vocabulary token)."),
             (q_z,),
             (product_step(Tex(r"Row $i$ of $H_2$ times column $j$ of $W_{\text{out}}$."), h2, w_out,
                           Tex(r"z = H_2\,W_{\text{out}}"), q_z, expand="row"),)),
        Part(Tex(r"For each position $i$, compute the probability $p_{\text{target}}[i]$ that softmax of row $i$ of $z$ "
                 r"gives the target token, to 4 decimal places."),
             (q_pt,),
             (Step(text=Tex("Subtract the row's largest logit, use the table, and divide the target's term by the sum."),
                   formula=Tex(r"p_{\text{target}}[i] = \frac{e^{z[i,t_i]}}{\sum_j e^{z[i,j]}}"),
                   lines=tuple(_target_line(z, i, t, p_target[i, 0]) for i, t in enumerate(targets)),
                   result=q_pt),),
             decimals=True),
    ] + loss_parts(
        d["p_given"], mean, r"\ell_i = -\ln \tilde p_i", [f"-\\ln {number_tex(p)}" for p in p_given],
        given=Tex(f"From here on, use these simple target probabilities, each within {_decimal(PROBABILITY_TOLERANCE)} "
                  "of the true one: $" + r",\ ".join(f"\\tilde p_{i} = {number_tex(v)}" for i, v in enumerate(p_given))
                  + "$, and this table: \\[" + ln_table_tex() + "\\]"),
        checks=(Tex(r"\text{With the exact probabilities the loss would be } \approx " + _true_loss(d["p_true"], mean)),))
    given = [quantity("E", "E", e), quantity("P", "P", pos), quantity("gamma", r"\gamma", gamma),
             quantity("beta", r"\beta", beta), quantity("W_Q", "W_Q", w_q), quantity("W_K", "W_K", w_k),
             quantity("W_V", "W_V", w_v), quantity("W_O", "W_O", w_o), quantity("W_1", "W_1", w1),
             quantity("b_1", "b_1", b1), quantity("W_2", "W_2", w2), quantity("b_2", "b_2", b2),
             quantity("W_out", r"W_{\text{out}}", w_out)]
    if post:  # each LayerNorm its own γ and β, listed where the chain meets them
        given = given[:2] + given[4:8] + [quantity("gamma_1", r"\gamma_1", gamma), quantity("beta_1", r"\beta_1", beta)] \
            + given[8:12] + [quantity("gamma_2", r"\gamma_2", gamma2), quantity("beta_2", r"\beta_2", beta2)] + given[12:]
    facts = {
        "token_ids": ImmutableMatrix([ids]),
        "targets": ImmutableMatrix([targets]),
        "sequence": Tex(r"\texttt{" + tokens + "}"),
        "targets_text": target_text,
        "E_table": labelled_table(VOCABULARY, e, "E"),
        "P_table": labelled_table([f"position {i}" for i in range(n)], pos, "P"),
        "given_weights": ImmutableMatrix.vstack(*simple),
        "given_p": ImmutableMatrix(n, 1, p_given),
        "heads": Rational(heads),
        "reduction": "mean" if mean else "sum",
        "e_table": exp_table_tex(),
    }
    if post:
        facts["norm"] = "post"
    return Problem.draft(given=given, parts=parts, facts=facts, needs_calculator=True)


def _layernorm(x: ImmutableMatrix, mus, sigmas, gamma: ImmutableMatrix, beta: ImmutableMatrix) -> ImmutableMatrix:
    """γ ⊙ (x − μ)/σ + β, row by row (exact)."""
    return ImmutableMatrix([[gamma[0, j] * (x[i, j] - mus[i]) / sigmas[i] + beta[0, j] for j in range(x.cols)]
                            for i in range(x.rows)])


def _add_norm_parts(k: int, r: ImmutableMatrix, stats: Step, mus, sigmas, gamma: ImmutableMatrix, beta: ImmutableMatrix,
                    q_h: Quantity, q_mu: Quantity, q_sigma: Quantity) -> list[Part]:
    """The Norm of Add & Norm k: μ and σ of each row of R_k, then H_k = γ_k ⊙ (R_k − μ)/σ + β_k."""
    return [
        Part(Tex(f"LayerNorm {k}: compute the mean $\\mu$ and standard deviation $\\sigma$ of each row of $R_{k}$."),
             (q_mu, q_sigma), (stats,)),
        Part(Tex(f"LayerNorm {k}: compute $H_{k} = \\gamma_{k} \\odot (R_{k} - \\mu)/\\sigma + \\beta_{k}$, row by row."), (q_h,),
             (layernorm_output_step(r, list(range(r.rows)), mus, sigmas, gamma, beta, q_h),)),
    ]


def _head_output_step(h: int, name: str, weights: ImmutableMatrix, v: ImmutableMatrix, o: ImmutableMatrix) -> Step:
    """Column h of O: each token's Given weights times column h of V, every entry written out as O[i,h]."""
    expansions = tuple(dot_expansion(entry_label("O", i, h), weights.row(i), v.col(h)) for i in range(v.rows))
    if tuple(e.value for e in expansions) != tuple(o.col(h)):
        raise ValueError(f"head {h + 1}'s output does not match its expansion")
    return Step(text=Tex(f"Head {h + 1}: a weighted average of its values, with the Given weights."),
                formula=Tex(f"O[i,{h}] = \\sum_j \\tilde A{name}[i,j]\\,V[j,{h}]"),
                shapes=Tex(f"{shape_text(weights)} \\cdot {shape_text(v.col(h))} \\to {shape_text(o.col(h))}"),
                expansions=expansions)


def _decimal(value: Fraction) -> str:
    """A tolerance as the sheet prints it (0.05): exact, since its denominator divides a power of 10."""
    return str(Decimal(value.numerator) / Decimal(value.denominator))


def _target_line(z: ImmutableMatrix, i: int, t: int, value) -> Tex:
    """The target's probability at position i, looked up in the table."""
    exponents = [s - max(z.row(i)) for s in z.row(i)]
    return table_softmax_line(f"p_{{\\text{{target}}}}[{i}]", exponents, t, value)


def _true_loss(p_true: list[Decimal], mean: bool) -> str:
    """The loss the exact probabilities would give, to 4 places (printed beside the Given-based answer)."""
    with localcontext() as context:
        context.prec = 30
        total = sum(-p.ln() for p in p_true)
        value = total / len(p_true) if mean else total
        return str(value.quantize(Decimal(1).scaleb(-PLACES), rounding=ROUND_HALF_UP))


def _table_softmax_rows(scores: ImmutableMatrix) -> tuple[tuple[Reading, ...], ...]:
    """Softmax of each row from the e^k table, shifted by the row's largest visible entry (masked: 0 exactly)."""
    rows = []
    for row in scores.tolist():  # plain Fractions from here: sympy arithmetic per entry is slow
        exact = [Fraction(int(s.p), int(s.q)) if s.is_finite else NEG_INF for s in row]
        top = max(s for s in exact if s is not NEG_INF)
        rows.append(_table_softmax_of(tuple(s - top if s is not NEG_INF else s for s in exact)))
    return tuple(rows)


@lru_cache(maxsize=4096)  # every row of up to 4 exponents in 0…−5 or −∞: the same few rows recur across draws
def _table_softmax_of(exponents: tuple) -> tuple[Reading, ...]:
    """table_softmax of one shifted row, kept for the next draw."""
    return table_softmax(list(exponents))


LOSS_PARTS = 2  # the forward pass's last parts (loss_parts): ℓ and L exactly, then L to 4 places


def loss_parts(p_given: list[Fraction], mean: bool, definition: str, minus_logs: list[str], given: Tex,
               checks: tuple[Tex, ...] = (), aside: str = "") -> list[Part]:
    """The loss from the Given target probabilities, one form per blank: each ℓᵢ and L exactly, L as one simplified
    logarithm (ln(20)/3, not ln(4/3)/3 + ln 3/3 + ln 5/3); then, a part of its own, L to 4 places from the ln k table.

    definition is ℓᵢ's formula as the prompt writes it (aside follows it); minus_logs each ℓᵢ's −ln p̃ as the key writes
    it; checks close the 4-place part. Shared with the training step, whose sheet starts with these parts (two, not
    cross_entropy's three: with forward=compute its parts already run from a to z)."""
    n, divisor = len(p_given), len(p_given) if mean else 1
    losses = [sympy.log(Rational(p.denominator, p.numerator)) for p in p_given]  # ln(5/2), not −ln(2/5)
    ratio = reduce(mul, (1 / p for p in p_given), Fraction(1))  # Σ ln(1/p̃ᵢ) = ln Π(1/p̃ᵢ)
    loss = one_log_value(ratio, divisor)
    loss_readings, total_reading = table_losses(p_given, mean)
    q_l = Quantity("L_pos", Tex(r"\ell"), ImmutableMatrix(n, 1, losses), reading=tuple((r,) for r in loss_readings))
    q_exact = Quantity("L_exact", Tex("L"), loss)
    q_loss = Quantity("L", Tex("L"), loss, reading=total_reading)
    combine = f"\\frac{{1}}{{{n}}}\\sum_i \\ell_i" if mean else r"\sum_i \ell_i"
    summed = " + ".join(number_tex(x) for x in losses)
    if mean:
        summed = f"\\frac{{1}}{{{n}}}\\left({summed}\\right)"
    return [
        Part(Tex(f"Loss: compute each position's loss ${definition}${aside} exactly, and the {'mean' if mean else 'total'} "
                 f"loss $L = {combine}$ exactly, as one logarithm"
                 + (" (or a logarithm divided by a whole number)." if mean else ".")),
             (q_l, q_exact),
             (Step(text=Tex(r"$-\ln \frac{a}{b} = \ln \frac{b}{a} = \ln b - \ln a$."), formula=Tex(definition),
                   lines=tuple(Tex(f"\\ell_{i} = {minus_log} = {number_tex(ell)}" + log_from_table(p))
                               for i, (minus_log, p, ell) in enumerate(zip(minus_logs, p_given, losses)))),
              Step(text=Tex(r"Combine the positions' losses into one logarithm: $\ln a + \ln b = \ln ab$."),
                   formula=Tex(f"L = {combine}"), lines=(Tex(f"L = {summed} = {one_log_tex(ratio, divisor)}"),),
                   result=q_exact)),
             given=given),
        Part(Tex(r"Give $L$ to 4 decimal places, using the table of $\ln k$."), (q_loss,),
             (Step(text=Tex(f"{'Average' if mean else 'Add'} the positions' losses from the table (or look up the "
                            "logarithm of $L$'s fraction)."),
                   formula=Tex(f"L = {combine}"), lines=(loss_line(loss, loss_readings, total_reading, mean),),
                   checks=checks, result=q_loss),),
             decimals=True),
    ]


def table_losses(p_given: list[Fraction], mean: bool) -> tuple[list[Reading], Reading]:
    """ℓ_i = −ln p̃_i = ln b − ln a (p̃_i = a/b) from the ln k table, and L from the ℓ_i, whole or to 4 places."""
    losses = [table_log_ratio(p.denominator, p.numerator) for p in p_given]
    divisor = len(losses) if mean else 1
    # Also L asked exactly and simplified first, ln Π(1/p̃_i) worked by primes or, where the table prints it, read
    # directly (as cross_entropy); merged losses read directly (ln 2 + ln 3 = ln 6) lie inside too:
    # tests/test_table_routes_chains.py.
    ratio = reduce(mul, (1 / p for p in p_given), Fraction(1))
    return losses, (total_of(losses) / divisor).hull(total_of(r.rounded() for r in losses) / divisor,
                                                    table_one_log(ratio, divisor))


def log_from_table(p: Fraction) -> str:
    """' = ln b − ln a ≈ x − y = ℓ' for ℓ = −ln(a/b), with the printed table's values."""
    value = format_places(table_log_ratio(p.denominator, p.numerator).route)
    if p.numerator == 1:
        return f" \\approx {value}"
    return (f" = \\ln {p.denominator} - \\ln {p.numerator} \\approx {format_places(table_log(p.denominator).route)} - "
            f"{format_places(table_log(p.numerator).route)} = {value}")


def loss_line(loss, losses: list[Reading], total: Reading, mean: bool) -> Tex:
    """L = exact = (ℓ_0 + …)/n ≈ (the ℓ's table values)/n ≈ the route's 4-place value."""
    n = len(losses)
    over = (lambda text: f"\\frac{{{text}}}{{{n}}}") if mean else (lambda text: text)
    names = " + ".join(f"\\ell_{i}" for i in range(n))
    routes = " + ".join(format_places(r.route) for r in losses)
    return Tex(f"L = {number_tex(loss)} = {over(names)} \\approx {over(routes)} "
               f"\\approx {format_places(total.rounded().route)}")
