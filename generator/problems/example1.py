"""Example 1, a minimal forward pass: embeddings, Q/K/V, scores, weights, context, logits, next token."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache
from typing import Callable

from sympy import ImmutableMatrix, Rational

from generator.core.draws import has_zero_row
from generator.core.forward import (decimal_softmax, exp_table_tex, plain_product, plain_transpose, printed_sum_is_one, scale_step,
                       softmax_rows, table_softmax, table_softmax_line, whole_scores_print_to_one)
from generator.core.problem import Bounds, Choice, Contract, Part, Problem, Quantity, Step, Tex, matrix_rows
from generator.core.registry import Option
from generator.documents.render import labelled_table, matrix_tex, number_tex
from generator.core.rng import Rng
from generator.core.slips import product_rule
from generator.core.worked import product_step, shape_text

TITLE = "Example 1: a minimal forward pass"
CHAINED = True
DATA_OPTION = Option("data", ("drawn", "book"), "drawn",
                     "drawn: embeddings and input drawn; book: the book's embeddings A = [1,0], B = [0,1], "
                     "C = [1,1], D = [0,0] and its input A B (the book gives no weights: they are drawn)")
OPTIONS = [
    # √d_k must be whole on paper: 1 or 2.
    Option("d_k", ("1", "4"), "1", "width of queries and keys; √d_k = 1 or 2"),
    DATA_OPTION,
]
VOCABULARY = ("A", "B", "C", "D")
D_MODEL = 2
# The book's own data ("Understanding Transformers: From First Principles to Mastery", chapter 3 and Examples
# 1, 2 and 4): fixed embeddings, the input A B and the training target C. Its input gives X = I, so Q = W_Q,
# K = W_K and V = W_V: the rules that keep X from hiding a transposed or swapped X, and the one against a zero
# embedding (D = [0, 0], the book's origin, never an input here), do not apply to it.
BOOK_EMBEDDINGS = ((1, 0), (0, 1), (1, 1), (0, 0))
BOOK_INPUT = (0, 1)  # A B
BOOK_TARGET = 2  # C
BOOK_NOTE = Tex(r"The embeddings $E$ and the input are the book's own (\emph{Understanding Transformers}, chapter 3 and "
                r"Example 1); the book prints no weights, so these are drawn to keep every step clean. With $X = I$ each "
                r"projection simply reads off the rows of its weight matrix.")
# The weights the chain restarts from: of these, the one nearest the true weight (the sheet says so, and
# given_weights_are_nearest checks it).
SIMPLE_WEIGHTS = [Rational(1, 4), Rational(1, 3), Rational(1, 2), Rational(2, 3), Rational(3, 4)]


SIMPLE_WEIGHTS_TEXT = ", ".join(f"${number_tex(w)}$" for w in SIMPLE_WEIGHTS)


def _nearest_simple(weight: Decimal) -> Rational:
    """The simple weight nearest to `weight` (a 30-digit decimal; an exact tie cannot happen, e^k being irrational)."""
    return min(SIMPLE_WEIGHTS, key=lambda w: (abs(Decimal(int(w.p)) / int(w.q) - weight), w))


def given_weights_are_nearest(problem: Problem) -> bool:
    """Is each Given weight ã_j the simple weight nearest to the true a_j, as the sheet claims?"""
    last = tuple(int(v) for v in problem.answer("S").row(1))
    return all(_nearest_simple(a) == w for a, w in zip(decimal_softmax(last), problem.facts["given_weights"]))


def _x(p: Problem) -> ImmutableMatrix:
    return p.answer("X")


def is_book(p: Problem) -> bool:
    """Does the problem use the book's data (embeddings, input, target)?"""
    return p.options.get("data") == "book"


def book_data_used(p: Problem) -> bool:
    """Are E and the input exactly the book's?"""
    return (p.given_value("E") == ImmutableMatrix(BOOK_EMBEDDINGS)
            and tuple(int(v) for v in p.facts["token_ids"]) == BOOK_INPUT)


def drawn_only(rules: dict) -> dict:
    """Rules that hold for drawn data only (the book's data breaks them by design, see BOOK_EMBEDDINGS)."""
    return {name: (lambda p, test=test: not is_book(p) and test(p)) for name, test in rules.items()}


# What every chain built on Example 1's forward pass forbids (examples 2 and 3 add these to their own rules).
FORWARD_FORBIDDEN = {
    "two tokens share an embedding": lambda p: len(set(matrix_rows(p.given_value("E"))[:4])) < 4,
    **drawn_only({"an embedding is zero": lambda p: has_zero_row(p.given_value("E"))}),
    "the printed probabilities do not sum to 1 at 4 places": lambda p: not printed_sum_is_one(p.reading("p")[0]),
    "the query and key projections are equal": lambda p: p.given_value("W_Q") == p.given_value("W_K"),
    "Q, K or V has a zero row": lambda p: any(has_zero_row(p.answer(n)) for n in "QKV"),
    # Equal value rows make the context the same whatever the weights: attention would do nothing.
    "the two value rows are equal": lambda p: p.answer("V").row(0) == p.answer("V").row(1),
    "W_V is singular (the value rows are parallel)": lambda p: p.given_value("W_V").det() == 0,
    # Xᵀ·W = X·W for every W when X is symmetric: a transposed X would go unseen in Q, K and V.
    **drawn_only(product_rule("Q = X·W_Q", lambda p: (_x(p), p.given_value("W_Q")))),
    **drawn_only(product_rule("K = X·W_K", lambda p: (_x(p), p.given_value("W_K")))),
    **drawn_only(product_rule("V = X·W_V", lambda p: (_x(p), p.given_value("W_V")))),
    # The book's X = I: V = W_V, and a symmetric W_V would hide Xᵀ·W_Vᵀ and a context ã·Vᵀ.
    "the book's W_V is symmetric": lambda p: is_book(p) and p.given_value("W_V") == p.given_value("W_V").T,
    "the book's data are not the book's": lambda p: is_book(p) and not book_data_used(p),
    # (Q·Kᵀ)ᵀ = K·Qᵀ: a symmetric S hides swapped queries and keys, and a softmax down the last column.
    **product_rule("Q·Kᵀ", lambda p: (p.answer("Q"), p.answer("K").T)),
    "the first row's softmax gives the last row's weights": lambda p: (
        p.answer("S")[0, 0] - p.answer("S")[0, 1] == p.answer("S")[1, 0] - p.answer("S")[1, 1]),
    **product_rule("c = ã·V", lambda p: (p.facts["given_weights"], p.answer("V"))),
    "the Given weights are not the simple weights nearest to a": lambda p: not given_weights_are_nearest(p),
}

CONTRACT = Contract(
    given=Bounds(4, 4, Rational(4)),
    intermediate=Bounds(80, 4, Rational(20)),
    answer=Bounds(80, 4, Rational(20)),
    rational_only=False,
    forbidden=FORWARD_FORBIDDEN,
)


ATTEMPTS = 200  # per constrained draw; past that the whole model is drawn again
CANDIDATES_TRIED = 24
COLUMN_TRIES = 4  # column choices tried per candidate logit row (they differ in what flows back through W_out)


class _Restart(Exception):
    """This draw cannot be completed cleanly: draw the model again."""


def _int_rows(rng: Rng, rows: int, cols: int) -> list[list[int]]:
    return [[rng.integer(-2, 2) for _ in range(cols)] for _ in range(rows)]



@lru_cache(maxsize=1024)
def _small_columns(x: tuple[tuple[int, int], ...]) -> tuple[tuple[tuple[int, int], tuple[int, ...]], ...]:
    """Each weight column w (entries −2…2) with its projection X·w, non-zero and within ±4 (products stay ≤ 16)."""
    found = []
    for w in itertools.product(range(-2, 3), repeat=D_MODEL):
        projected = tuple(sum(a * b for a, b in zip(row, w)) for row in x)
        if any(projected) and max(map(abs, projected)) <= 4:
            found.append((w, projected))
    return tuple(found)


def _scores_teach(q_cols, k_cols, root: int) -> bool:
    """Queries and keys (given by columns) with non-zero rows, scores within ±20, last-row scores whole and 1 or 2
    apart after scaling, S not symmetric (K·Qᵀ would look right) and the rows' differences unequal (the first
    row's softmax would give the last row's weights)."""
    n = len(q_cols[0])
    if any(not any(col[i] for col in q_cols) or not any(col[i] for col in k_cols) for i in range(n)):
        return False
    raw = [[sum(qc[i] * kc[j] for qc, kc in zip(q_cols, k_cols)) for j in range(n)] for i in range(n)]
    last = raw[1]
    return (all(abs(v) <= 20 for row in raw for v in row) and raw[0][1] != raw[1][0]
            and raw[0][0] - raw[0][1] != raw[1][0] - raw[1][1]
            and all(v % root == 0 for v in last) and 0 < abs(last[0] - last[1]) <= 2 * root)


@lru_cache(maxsize=1024)
def _one_column_pairs(x: tuple[tuple[int, int], ...], root: int) -> tuple[tuple[tuple[int, int], tuple[int, int]], ...]:
    """d_k = 1: every (w_Q, w_K) whose scores teach, W_Q ≠ W_K (625 pairs at most, listed once per X)."""
    columns = _small_columns(x)
    return tuple((wq, wk) for wq, q in columns for wk, k in columns if wq != wk and _scores_teach((q,), (k,), root))


def _last_row_scores(rng: Rng, x: list[list[int]], dk: int, root: int) -> tuple[list[list[int]], list[list[int]]]:
    """W_Q ≠ W_K (plain rows) with no zero query or key, whose last-row scores are whole numbers 1 or 2 apart (see
    _scores_teach)."""
    key = tuple(map(tuple, x))
    if dk == 1:
        pairs = _one_column_pairs(key, root)
        if not pairs:
            raise _Restart
        wq, wk = rng.choice(pairs)
        return [[v] for v in wq], [[v] for v in wk]
    columns = _small_columns(key)
    for _ in range(ATTEMPTS):
        q_pick, k_pick = ([rng.choice(columns) for _ in range(dk)] for _ in range(2))
        if [w for w, _ in q_pick] != [w for w, _ in k_pick] and _scores_teach([c for _, c in q_pick], [c for _, c in k_pick], root):
            return tuple([[w[i] for w, _ in pick] for i in range(D_MODEL)] for pick in (q_pick, k_pick))
    raise _Restart


def _value_weights(rng: Rng, ax: list[Fraction], x: list[list[int]], book: bool = False) -> list[list[int]]:
    """W_V (plain rows) whose columns make the context ã·X·W_V whole numbers, invertible, and with no slip in
    V = X·W_V giving V (the book's X = I hides every slip of X by design: there W_V only must not be symmetric)."""
    whole = _whole_columns(*ax, book)
    if len(whole) < 2:
        raise _Restart
    for _ in range(ATTEMPTS):
        columns = [rng.choice(whole) for _ in range(D_MODEL)]
        w = [[col[i] for col in columns] for i in range(D_MODEL)]
        # Invertible: distinct, non-zero rows of X then give distinct, non-zero value rows.
        hidden = w == plain_transpose(w) if book else _value_slip_hidden(x, w)
        if w[0][0] * w[1][1] != w[0][1] * w[1][0] and not hidden:
            return w
    raise _Restart


@lru_cache(maxsize=256)  # ã·X takes few values: each model draw of the training chains asks again
def _whole_columns(f0: Fraction, f1: Fraction, book: bool) -> tuple[tuple[int, int], ...]:
    """The columns (a, b) of W_V, not both 0, with f0·a + f1·b whole (ã·X = (f0, f1)): a whole context."""
    # The book's X = I makes V = W_V and keeps the context small (‖c‖² of 2 or 5 with entries −2…2, too little for a
    # step of η = 1/2 to ever move example2's prediction): its W_V takes entries −3…3.
    span = range(-3, 4) if book else range(-2, 3)
    return tuple((a, b) for a in span for b in span if (a or b) and (f0 * a + f1 * b).denominator == 1)


def _value_slip_hidden(x: list[list[int]], w: list[list[int]]) -> bool:
    """Does X·W_Vᵀ, Xᵀ·W_V, W_V·X or Vᵀ equal V = X·W_V? (Vᵀ = V would also hide ã·Vᵀ in the context.)"""
    v = plain_product(x, w)
    return v in (plain_product(x, plain_transpose(w)), plain_product(plain_transpose(x), w), plain_product(w, x),
                 plain_transpose(v))


# A later chain's extra demand on a candidate output layer: called with the logits z, the context c, W_out
# (whole numbers) and the model so far as plain numbers (see plain_model), it says whether to keep it.
LogitTest = Callable[[list[int], list[int], list[list[int]], dict], bool]


def plain_model(x, q, k, v, given_weights) -> dict:
    """X, Q, K, V as whole numbers and ã as Fractions: cheap to compute with inside a search."""
    whole = lambda m: [[int(m[i, j]) for j in range(m.cols)] for i in range(m.rows)]  # noqa: E731
    return {"x": whole(x), "q": whole(q), "k": whole(k), "v": whole(v),
            "weights": [Fraction(int(w.p), int(w.q)) for w in given_weights]}


def _output_weights(rng: Rng, context: list[int]) -> list[list[int]]:
    """W_out (plain rows) whose logits have one clear maximum and lie within 5 of it (inside the e^k table)."""
    for _ in range(ATTEMPTS):
        w_out = _int_rows(rng, D_MODEL, len(VOCABULARY))
        z = plain_product([context], w_out)[0]
        top = max(z)
        if z.count(top) == 1 and top - min(z) <= 5 and max(map(abs, z)) <= 20 and whole_scores_print_to_one(z):
            return w_out
    raise _Restart


def _output_weights_for_shifts(rng: Rng, context: list[int], accept: LogitTest, model: dict,
                               shifts: tuple[tuple[int, ...], ...]) -> list[list[int]]:
    """W_out (plain rows) built from logits z = top + shift for an allowed shift: each column is a pair
    c·(a, b) = z_j."""
    columns, candidates = _logit_candidates(tuple(context), shifts)
    # A context that suits none of them would be tried at length: past a few candidates, redraw the model.
    for z in rng.shuffled(candidates)[:CANDIDATES_TRIED]:
        for _ in range(COLUMN_TRIES):
            chosen = [rng.choice(columns[v]) for v in z]
            w_out = [[col[i] for col in chosen] for i in range(D_MODEL)]
            if accept(z, context, w_out, model):
                return w_out
    raise _Restart


@lru_cache(maxsize=1024)  # contexts recur: 200 draws of example2's book data meet 44 in 1,125 output-layer searches
def _logit_candidates(context: tuple[int, ...], shifts: tuple[tuple[int, ...], ...]) -> tuple[dict, tuple]:
    """The columns (a, b) of entries −2…2 giving each logit c·(a, b), and every logit row top + shift (for an allowed
    shift) that they reach, small and printing to one: the search draws W_out from these (read, never changed)."""
    columns: dict[int, list[list[int]]] = {}
    for a in range(-2, 3):
        for b in range(-2, 3):
            columns.setdefault(context[0] * a + context[1] * b, []).append([a, b])
    candidates = [[top + d for d in shift] for top in sorted(columns) for shift in _printing_shifts(shifts)
                  if all(top + d in columns for d in shift)]
    return columns, tuple(z for z in candidates if max(map(abs, z)) <= 20)


@lru_cache(maxsize=8)
def _printing_shifts(shifts: tuple[tuple[int, ...], ...]) -> tuple[tuple[int, ...], ...]:
    """The shifts whose 4-place softmax prints to one, in their order: z = top + shift prints to one exactly when its
    shift does, since z − max z = shift − max shift."""
    return tuple(shift for shift in shifts if whole_scores_print_to_one(shift))


@dataclass(frozen=True)
class Forward:
    """Example 1's drawn model, its exact values and its worked parts: the start of the training chains."""

    x: ImmutableMatrix
    w_q: ImmutableMatrix
    w_k: ImmutableMatrix
    w_v: ImmutableMatrix
    w_out: ImmutableMatrix
    q: ImmutableMatrix
    k: ImmutableMatrix
    v: ImmutableMatrix
    given_weights: ImmutableMatrix  # ã, the simple weights the chain continues from
    c: ImmutableMatrix
    z: ImmutableMatrix
    p: ImmutableMatrix
    parts: list[Part]
    given: list[Quantity]
    facts: dict


def generate(rng: Rng, options: dict[str, str]) -> Problem:
    """Draw the model so every step stays clean; the sheet is its forward pass."""
    forward = draw_forward(rng, int(options["d_k"]), book=options.get("data") == "book")
    return Problem.draft(given=forward.given, parts=forward.parts, facts=forward.facts, needs_calculator=True)


def draw_forward(rng: Rng, dk: int, accept: LogitTest | None = None,
                 shifts: tuple[tuple[int, ...], ...] = (), book: bool = False) -> Forward:
    """The forward pass, redrawing the whole model while a step cannot be clean (or `accept` refuses the logits).

    A demanding chain also lists `shifts`, every z − max z it can use: its output layer is built from them
    instead of drawn at random and mostly refused. `book` fixes E and the input to the book's (the weights are drawn).
    """
    while True:
        try:
            return _forward(rng, dk, accept, shifts, book)
        except _Restart:
            continue


def _forward(rng: Rng, dk: int, accept: LogitTest | None, shifts: tuple[tuple[int, ...], ...],
             book: bool = False) -> Forward:
    """One attempt at the whole chain."""
    root = {1: 1, 4: 2}[dk]
    if book:
        e, ids = ImmutableMatrix(BOOK_EMBEDDINGS), list(BOOK_INPUT)
    else:
        rows: list[tuple[int, int]] = []
        while len(rows) < len(VOCABULARY):  # distinct, non-zero embeddings by construction
            row = (rng.integer(-2, 2), rng.integer(-2, 2))
            if any(row) and row not in rows:
                rows.append(row)
        e = ImmutableMatrix(rows)
        ids = rng.shuffled(range(len(VOCABULARY)))[:2]
    plain_x = [[int(v) for v in e.row(t)] for t in ids]
    if plain_x[0][1] == plain_x[1][0] and not book:
        raise _Restart  # a symmetric X: Xᵀ·W = X·W for every W, so a transposed X would go unseen
    # Until the output layer is found, the attempt works in plain numbers: most attempts of the training chains are
    # turned away there, and sympy's matrices are built once, for the draw that is kept.
    plain_wq, plain_wk = _last_row_scores(rng, plain_x, dk, root)
    plain_q, plain_k = plain_product(plain_x, plain_wq), plain_product(plain_x, plain_wk)
    last_scores = tuple(sum(a * b for a, b in zip(plain_q[1], row)) // root for row in plain_k)  # whole (_scores_teach)
    # The nearest simple weight, decided in 30-digit decimals (the last-row scores are whole): sympy's evalf of
    # each distance cost a millisecond per draw, and the training chains redraw often.
    first = _nearest_simple(decimal_softmax(last_scores)[0])
    # 1 − w is in SIMPLE_WEIGHTS whenever w is, and |(1 − w) − a₁| = |w − a₀|: ã₁ is nearest to a₁ too.
    first_weight = Fraction(int(first.p), int(first.q))
    weights = [first_weight, 1 - first_weight]
    ax = [sum((a * row[j] for a, row in zip(weights, plain_x)), Fraction(0)) for j in range(D_MODEL)]
    plain_wv = _value_weights(rng, ax, plain_x, book)
    plain_v = plain_product(plain_x, plain_wv)
    context = [int(sum((a * row[j] for a, row in zip(weights, plain_v)), Fraction(0))) for j in range(D_MODEL)]
    if accept is None:
        plain_out = _output_weights(rng, context)
    else:
        model = {"x": plain_x, "q": plain_q, "k": plain_k, "v": plain_v, "weights": weights}
        plain_out = _output_weights_for_shifts(rng, context, accept, model, shifts)
    x = ImmutableMatrix(plain_x)
    w_q, w_k, w_v, w_out = (ImmutableMatrix(m) for m in (plain_wq, plain_wk, plain_wv, plain_out))
    q, k = x * w_q, x * w_k
    s = q * k.T / root
    given_weights = ImmutableMatrix([[first, 1 - first]])
    v = x * w_v
    c = given_weights * v
    z = c * w_out
    a = softmax_rows(ImmutableMatrix([list(s.row(1))]))  # exact forms, built once the draw is known to be clean
    top = max(z)
    t = z - ImmutableMatrix([[top] * len(VOCABULARY)])
    p = softmax_rows(t)
    predicted = VOCABULARY[list(z).index(top)]

    x_q = Quantity("X", Tex("X"), x)
    q_q, k_q, v_q = (Quantity(n, Tex(n), m) for n, m in (("Q", q), ("K", k), ("V", v)))
    s_q = Quantity("S", Tex("S"), s)
    s0, s1 = s[1, 0], s[1, 1]
    m = max(s0, s1)
    a_q = Quantity("a", Tex("a"), a, reading=(table_softmax([s0 - m, s1 - m]),))
    c_q = Quantity("c", Tex("c"), c)
    z_q = Quantity("z", Tex("z"), z)
    p_q = Quantity("p", Tex("p"), p, reading=(table_softmax(list(t)),))
    next_q = Quantity("next", Tex(r"\text{next}"), Choice(predicted, tuple((v, v) for v in VOCABULARY)))
    words = " ".join(VOCABULARY[i] for i in ids)

    parts = [
        Part(Tex(f"Write down $X$: the embeddings of the input \\texttt{{{words}}}, one row per token."), (x_q,),
             (Step(text=Tex("Row $i$ of $X$ is the row of $E$ for the $i$-th input token."),
                   lines=tuple(Tex(f"\\text{{token {VOCABULARY[t]}}} \\to E[{t},:]") for t in ids), result=x_q),)),
        Part(Tex(r"Compute the queries $Q = X\,W_Q$ and keys $K = X\,W_K$."), (q_q, k_q),
             (product_step(Tex(r"Row $i$ of $X$ times column $j$ of $W_Q$."), x, w_q, Tex(r"Q = X\,W_Q"), q_q, expand="row"),
              product_step(Tex(r"Row $i$ of $X$ times column $j$ of $W_K$."), x, w_k, Tex(r"K = X\,W_K"), k_q, expand="row"))),
        Part(Tex(r"Compute the values $V = X\,W_V$."), (v_q,),
             (product_step(Tex(r"Row $i$ of $X$ times column $j$ of $W_V$."), x, w_v, Tex(r"V = X\,W_V"), v_q),)),
        Part(Tex(r"Compute the scaled scores $S = Q\,K^{\mathsf T} / \sqrt{d_k}$."), (s_q,),
             (product_step(Tex(r"Row $i$ of $Q$ dotted with row $j$ of $K$."), q, k.T, Tex(r"Q\,K^{\mathsf T}"),
                           Quantity("QKT", Tex(r"Q\,K^{\mathsf T}"), q * k.T)),
              scale_step(q * k.T, root, s_q))),
        Part(Tex(r"The last token predicts the next one. Compute its attention weights "
                 r"$a = \operatorname{softmax}(S[1,:])$ to 4 decimal places."), (a_q,),
             (Step(text=Tex(f"Subtract the larger score, ${number_tex(m)}$, then use the table."),
                   formula=Tex(r"a_j = \frac{e^{S[1,j]}}{\sum_m e^{S[1,m]}}"),
                   lines=tuple(table_softmax_line(f"a_{j}", [s0 - m, s1 - m], j, a[j]) for j in range(2)),
                   result=a_q, checks=(Tex(r"a_0 + a_1 = 1"),)),),
             decimals=True),
        Part(Tex(r"Compute the context $c = \tilde a\,V$."), (c_q,),
             (product_step(Tex(r"A weighted average of the rows of $V$."), given_weights, v, Tex(r"c = \tilde a\,V"), c_q),),
             given=Tex(f"From here on, use the simple weights $\\tilde a = {matrix_tex(given_weights)}$ (of "
                       f"{SIMPLE_WEIGHTS_TEXT}, the ones nearest to $a$), so that one slip above does not spoil the rest.")),
        Part(Tex(r"Compute the logits $z = c\,W_{\text{out}}$, one per vocabulary token."), (z_q,),
             (product_step(Tex(r"$c$ times column $j$ of $W_{\text{out}}$ gives the logit of token $j$."),
                           c, w_out, Tex(r"z = c\,W_{\text{out}}"), z_q),)),
        Part(Tex(r"Compute the probabilities $p = \operatorname{softmax}(z)$ to 4 decimal places."), (p_q,),
             (Step(text=Tex(f"Subtract the largest logit, ${number_tex(top)}$, and use the table."),
                   formula=Tex(r"p_j = \frac{e^{z_j - \max z}}{\sum_m e^{z_m - \max z}}"),
                   lines=tuple(table_softmax_line(f"p_{j}", [zv - top for zv in z], j, p[j]) for j in range(len(z))),
                   result=p_q, checks=(Tex(r"\textstyle\sum_j p_j = 1 \text{ (also at 4 decimal places)}"),)),),
             decimals=True),
        Part(Tex("Which token does the model predict next?"), (next_q,),
             (Step(text=Tex(f"The largest probability belongs to the largest logit: token {predicted}.")),)),
    ]
    e_table = exp_table_tex()
    facts = {
        "token_ids": ImmutableMatrix([ids]),
        "sequence": Tex(r"\texttt{" + words + "}"),
        "E_table": labelled_table(VOCABULARY, e, "E"),
        "d_k": Rational(dk),
        "given_weights": given_weights,
        "e_table": e_table,
        "shapes": Tex(f"W_Q, W_K: {shape_text(w_q)},\\ W_V: {shape_text(w_v)},\\ W_{{\\text{{out}}}}: {shape_text(w_out)}"),
    }
    if book:
        facts["book_note"] = BOOK_NOTE
    given = [Quantity("E", Tex("E"), e), Quantity("W_Q", Tex("W_Q"), w_q), Quantity("W_K", Tex("W_K"), w_k),
             Quantity("W_V", Tex("W_V"), w_v), Quantity("W_out", Tex(r"W_{\text{out}}"), w_out)]
    return Forward(x, w_q, w_k, w_v, w_out, q, k, v, given_weights, c, z, p, parts, given, facts)
