"""Backward through one causal attention head: dV, dA, dS through the softmax, dR, dQ, dK and the weights' gradients."""

from __future__ import annotations

import itertools
from fractions import Fraction
from functools import cache
from math import gcd

import sympy
from sympy import ImmutableMatrix, Rational

from generator.core.draws import all_zero
from generator.core.forward import causal_mask, causal_mask_step, plain_product, plain_transpose, scale_step, softmax_rows
from generator.core.problem import Bounds, Contract, Expansion, Part, Problem, Quantity, Step, Term, Tex, matrix
from generator.core.registry import Option
from generator.documents.render import factor_tex, number_tex
from generator.core.rng import Rng
from generator.core.slips import plain_product_rule, plain_slip_hidden, plain_values, plain_zero
from generator.core.worked import check_result, dot_expansion, entry_label, product_step, shape_text, transpose_step

TITLE = "Backward through one attention head"
OPTIONS = [
    Option("tokens", ("2", "3"), "2", "rows of X (d_model = 2); a causal mask"),
    # d_k = 1 cannot work: with one-number queries and keys, a query (never 0) scores all its visible keys alike
    # only if those keys are equal, and then the last query sees equal keys and dQ is all 0.
    Option("d_k", ("4",), "4", "width of queries and keys, √d_k = 2 (d_k = 1 would force equal keys and dQ = 0)"),
]
D_MODEL = 2
LIMIT = 2  # X, the weights and dO are whole numbers in −2…2
X_ENTRIES = (-2, -1, 1, 2)  # no 0 in X: with two tokens dW_Q = x_1ᵀ·dQ[1,:], and a 0 would blank a whole row
QK_LIMIT = 4  # |Q|, |K|, |V| ≤ 4, so the scores stay within ±8 and dA within ±16
SCORE_LIMIT = 8
VALUE_LIMIT, NUMERATOR_LIMIT = 16, 48  # every value of the pass; without them a few dW of three tokens reach 28 or 101/6
DS_LIMIT = 2  # |dS| ≤ 2, so |dR| ≤ 1: dQ, dK and the weights' gradients stay within reach of a pencil
PRODUCT_LIMIT = 4  # entries of M = W_Q·W_Kᵀ: larger ones hardly ever keep the scores within ±8
VALUE_TRIES = 20  # W_Q drawn per (X, W_K) before both are redrawn
UPSTREAM_TRIES = 20  # (W_V, dO) drawn per head before the head is redrawn
_ROOTS = {4: 2}
_CANDIDATE_ROWS = [list(row) for row in itertools.product(range(-LIMIT, LIMIT + 1), repeat=D_MODEL)]
_NONZERO_ROWS = [row for row in _CANDIDATE_ROWS if any(row)]



def _zero_score_rows(p: Problem) -> int:
    """How many queries score all their visible keys 0."""
    r = plain_values(p)["R"]
    return sum(1 for i, row in enumerate(r) if all(v == 0 for v in row[:i + 1]))


def _zero_row(rows: list[list]) -> bool:
    return any(not any(row) for row in rows)


def _rows_repeat(rows: list[list]) -> bool:
    return len({tuple(row) for row in rows}) < len(rows)


def _symmetric(rows: list[list]) -> bool:
    return rows == plain_transpose(rows)


def _singular(w: list[list]) -> bool:
    """A zero determinant of a D_MODEL × D_MODEL (2 × 2) weight."""
    return w[0][0] * w[1][1] == w[0][1] * w[1][0]


# The rules read the problem's matrices as plain rows (slips.plain_values), worked once per problem: in sympy,
# each entry read, transpose and product of them cost 15-30 µs, and the rules were a fifth of a problem's time.
_V = plain_values
CONTRACT = Contract(
    # Measured over 2,000 seeds (1,000 per option set): givens and d_k reach 4; every other value reaches 16 and a
    # numerator 47 (in sixths), against the draw's own caps of 16 and 48 (VALUE_LIMIT, NUMERATOR_LIMIT).
    given=Bounds(4, 1, Rational(4)),
    intermediate=Bounds(48, 6, Rational(16)),
    answer=Bounds(48, 6, Rational(16)),
    always_masked=True,  # S always carries the causal mask's −∞
    forbidden={
        "a query is zero": lambda p: _zero_row(_V(p)["Q"]),
        "a dimension of Q or K is idle (a zero column)": lambda p: _idle_column(_V(p)["Q"]) or _idle_column(_V(p)["K"]),
        "X has a zero entry": lambda p: any(v == 0 for row in _V(p)["X"] for v in row),
        "the keys are not all different": lambda p: _rows_repeat(_V(p)["K"]),
        "a visible score differs from its row's first": lambda p: any(
            row[j] != row[0] for i, row in enumerate(_V(p)["R"]) for j in range(i + 1)),
        "two queries score every visible key 0": lambda p: _zero_score_rows(p) > 1,
        "W_Q equals W_K (dQ and dK could be swapped)": lambda p: _V(p)["W_Q"] == _V(p)["W_K"],
        # A symmetric W_V or X hides a forgotten transpose in V = X·W_V or in dW = Xᵀ·dQ.
        "W_V is symmetric": lambda p: _symmetric(_V(p)["W_V"]),
        "W_V is singular (every value row parallel)": lambda p: _singular(_V(p)["W_V"]),
        "two value rows are equal": lambda p: _rows_repeat(_V(p)["V"]),
        "a weight matrix has a zero row (an idle input feature)": lambda p: any(
            _zero_row(_V(p)[n]) for n in ("W_Q", "W_K", "W_V")),
        "X is square and symmetric": lambda p: len(_V(p)["X"]) == len(_V(p)["X"][0]) and _symmetric(_V(p)["X"]),
        "dO has a zero row": lambda p: _zero_row(_V(p)["dO"]),
        "dS is all zeros": lambda p: plain_zero(_V(p)["dS"]),
        "a later query gets no score gradient": lambda p: _zero_row(_V(p)["dS"][1:]),
        "a gradient is all zeros": lambda p: any(plain_zero(_V(p)[n]) for n in ("dV", "dQ", "dK", "dW_Q", "dW_K", "dW_V")),
        "dA is symmetric (V·dOᵀ looks right)": lambda p: _symmetric(_V(p)["dA"]),
        "A·dO (no transpose) gives the same dV": lambda p: plain_product(_V(p)["A"], _V(p)["dO"]) == _V(p)["dV"],
        "dRᵀ·K gives the same dQ": lambda p: plain_product(plain_transpose(_V(p)["dR"]), _V(p)["K"]) == _V(p)["dQ"],
        "dR·Q (no transpose) gives the same dK": lambda p: plain_product(_V(p)["dR"], _V(p)["Q"]) == _V(p)["dK"],
        "dW_V is symmetric (a transposed answer looks right)": lambda p: _symmetric(_V(p)["dW_V"]),
        # The generic slips of every product on the sheet (slips.product_slips), beyond the named ones above.
        **{name: rule for label, factors in (
            ("Q = X·W_Q", lambda p: (_V(p)["X"], _V(p)["W_Q"])),
            ("K = X·W_K", lambda p: (_V(p)["X"], _V(p)["W_K"])),
            ("V = X·W_V", lambda p: (_V(p)["X"], _V(p)["W_V"])),
            ("dV = Aᵀ·dO", lambda p: (plain_transpose(_V(p)["A"]), _V(p)["dO"])),
            ("dQ = dR·K", lambda p: (_V(p)["dR"], _V(p)["K"])),
            ("dK = dRᵀ·Q", lambda p: (plain_transpose(_V(p)["dR"]), _V(p)["Q"])),
            ("dW_Q = Xᵀ·dQ", lambda p: (plain_transpose(_V(p)["X"]), _V(p)["dQ"])),
            ("dW_K = Xᵀ·dK", lambda p: (plain_transpose(_V(p)["X"]), _V(p)["dK"])),
            ("dW_V = Xᵀ·dV", lambda p: (plain_transpose(_V(p)["X"]), _V(p)["dV"])),
        ) for name, rule in plain_product_rule(label, factors).items()},
    },
)


# ----- the search, in plain ints and Fractions (sympy is far too slow to try many draws) -----------------------


def _dot(a: list[int], b: list[int]) -> int:
    return sum(x * y for x, y in zip(a, b))


def _scores_are_clean(x: tuple[tuple[int, int], ...], m: tuple[tuple[int, int], tuple[int, int]]) -> bool:
    """R = X·M·Xᵀ is small and at most one query scores all its visible keys 0."""
    xm = [[row[0] * m[0][0] + row[1] * m[1][0], row[0] * m[0][1] + row[1] * m[1][1]] for row in x]
    r = [[_dot(a, b) for b in x] for a in xm]
    return _small(r, SCORE_LIMIT) and sum(1 for i, row in enumerate(r) if not any(row[:i + 1])) <= 1


@cache
def _product_rows() -> tuple[tuple[int, int], ...]:
    """Every row M = W_Q·W_Kᵀ may have (entries within ±PRODUCT_LIMIT)."""
    return tuple(itertools.product(range(-PRODUCT_LIMIT, PRODUCT_LIMIT + 1), repeat=D_MODEL))


@cache
def _clean_products(x: tuple[tuple[int, int], ...]) -> tuple[tuple[tuple[int, int], tuple[int, int]], ...]:
    """Every M = W_Q·W_Kᵀ (entries within ±4) that gives equal visible scores in each row and clean scores R = X·M·Xᵀ."""
    # The scores depend on M alone. Query i scores key j like key 0 when x_i·M·d_jᵀ = x_i0·(m_0·d_j) + x_i1·(m_1·d_j)
    # = 0 (d_j = x_j − x_0, m_a = row a of M). The last query's conditions fix the profile (m_1·d_j)_j from m_0's, as
    # x_{n−1,1} ≠ 0: rows indexed by profile need one look-up per m_0. Cached per X: 2,912 inputs with three tokens.
    n = len(x)
    diffs = [(row[0] - x[0][0], row[1] - x[0][1]) for row in x[1:]]
    profiles = {m: tuple(m[0] * d0 + m[1] * d1 for d0, d1 in diffs) for m in _product_rows()}
    by_profile: dict[tuple[int, ...], list[tuple[int, int]]] = {}
    for m, profile in profiles.items():
        by_profile.setdefault(profile, []).append(m)
    x0, x1 = x[-1]
    conditions = [(i, j) for i in range(1, n - 1) for j in range(1, i + 1)]  # the last query's are met by the look-up
    found = []
    for m0, u in profiles.items():
        if any(x0 * v % x1 for v in u):
            continue
        for m1 in by_profile.get(tuple(-x0 * v // x1 for v in u), ()):
            v = profiles[m1]
            if all(x[i][0] * u[j - 1] + x[i][1] * v[j - 1] == 0 for i, j in conditions) and _scores_are_clean(x, (m0, m1)):
                found.append((m0, m1))
    return tuple(found)


def _half_rows(wk: list[list[int]], columns: range) -> dict[tuple[int, int], list[tuple[int, ...]]]:
    """Every choice of a W_Q row's entries at these columns, grouped by their part of that row of M = W_Q·W_Kᵀ."""
    table: dict[tuple[int, int], list[tuple[int, ...]]] = {}
    for part in itertools.product(range(-LIMIT, LIMIT + 1), repeat=len(columns)):
        key = tuple(sum(a * wk[b][c] for a, c in zip(part, columns)) for b in range(D_MODEL))
        table.setdefault(key, []).append(part)
    return table


def _rows_giving(m: tuple[int, int], left: dict, right: dict) -> list[tuple[int, ...]]:
    """Every W_Q row a (entries in −2…2) with a·W_Kᵀ = m, met in the middle from its two halves."""
    found = []
    for key, firsts in left.items():
        seconds = right.get((m[0] - key[0], m[1] - key[1]), ())
        found += [first + second for first in firsts for second in seconds]
    return found


def _query_weights(rng: Rng, x: tuple[tuple[int, int], ...], wk: list[list[int]]) -> list[list[int]] | None:
    """A W_Q drawn uniformly among those giving a clean M (and redrawn until Q is clean), or None."""
    # Row a of M is a·W_Kᵀ, from W_Q's row a alone: a W_Q is a clean M plus, for each of its rows, a row giving it.
    # Counting them exactly (no draw-and-reject) matters: equal visible scores are rare among random W_Q.
    dk = len(wk[0])
    left, right = _half_rows(wk, range(dk // 2)), _half_rows(wk, range(dk // 2, dk))
    rows: dict[tuple[int, int], list[tuple[int, ...]]] = {}
    choices, sizes = [], []
    for m in _clean_products(x):
        for row in m:
            if row not in rows:
                rows[row] = _rows_giving(row, left, right)
        if rows[m[0]] and rows[m[1]]:
            choices.append(m)
            sizes.append(len(rows[m[0]]) * len(rows[m[1]]))
    for _ in range(VALUE_TRIES if choices else 0):
        index = rng.below(sum(sizes))
        for m, size in zip(choices, sizes):
            if index < size:
                break
            index -= size
        second = rows[m[1]]
        wq = [list(rows[m[0]][index // len(second)]), list(second[index % len(second)])]
        q = plain_product(x, wq)
        if all(any(row) for row in q) and all(any(row) for row in wq) and _small(q, QK_LIMIT) and not _idle_column(q):
            return wq
    return None


def _idle_column(m: list[list[int]]) -> bool:
    """A column of all zeros: that dimension of the head does nothing, and its gradients are 0 too."""
    return any(not any(col) for col in zip(*m))


def _small(m: list[list], limit: int) -> bool:
    return all(abs(v) <= limit for row in m for v in row)


@cache
def _inputs(n: int) -> tuple[tuple[tuple[int, int], ...], ...]:
    """Every X worth drawing: entries ±1, ±2, rows all different, not symmetric when square."""
    # With three tokens the last two rows must not be parallel: x_1·M and x_2·M would be too (M = W_Q·W_Kᵀ), and
    # equal visible scores would force both of those queries to score every key 0.
    found = []
    for flat in itertools.product(X_ENTRIES, repeat=n * D_MODEL):
        x = tuple(flat[i * D_MODEL:(i + 1) * D_MODEL] for i in range(n))
        if len(set(x)) < n or (n == D_MODEL and x == tuple(zip(*x))):
            continue
        if n == 3 and x[1][0] * x[2][1] == x[1][1] * x[2][0]:
            continue
        found.append(x)
    return tuple(found)


def _columns(x: list[list[int]], limit: int) -> list[list[int]]:
    """Weight columns (2 entries in −2…2) whose image X·w is not all 0 and stays within ±limit."""
    images = [(w, [a * w[0] + b * w[1] for a, b in x]) for w in _CANDIDATE_ROWS]
    return [w for w, image in images if any(image) and all(abs(v) <= limit for v in image)]


def _weight_from_columns(rng: Rng, columns: list[list[int]], count: int) -> list[list[int]]:
    """A 2×count weight matrix whose columns are drawn from `columns`."""
    return plain_transpose([rng.choice(columns) for _ in range(count)])


def _forward_draw(rng: Rng, n: int, dk: int) -> tuple[tuple, list[list[int]], list[list[int]]]:
    """X, W_Q, W_K with every query scoring its visible keys alike, keys all different, no query zero."""
    # W_K is drawn column by column among the columns that keep K small: the same as redrawing the whole matrix
    # until K is small, with far fewer draws.
    while True:
        x = rng.choice(_inputs(n))
        if not _clean_products(x):
            continue
        columns = _columns(x, QK_LIMIT)
        wk = _weight_from_columns(rng, columns, dk)
        k = plain_product(x, wk)
        if len({tuple(row) for row in k}) < n or any(not any(row) for row in wk):
            continue
        wq = _query_weights(rng, x, wk)
        if wq is not None and wq != wk:
            return x, wq, wk


def _clean_row(da: list[int]) -> bool:
    """A later query's upstream row, by dA[i, :i+1] = d·v_j for j ≤ i: ḡ whole, dS in wholes or thirds, within
    ±DS_LIMIT and not all 0 (dR in sixths)."""
    # Row i has weights 1/(i+1) on j ≤ i, so ḡ is the mean of dA[i, :i+1] and dS[i,j] = (dA[i,j] − ḡ)/(i+1); whole
    # numbers only, since this runs for every candidate row of every draw.
    count = len(da)
    total = sum(da)
    if total % count:
        return False
    spread = [a - total // count for a in da]  # (i+1)·dS[i,j]
    return (any(spread) and all(abs(s) <= DS_LIMIT * count for s in spread)
            and all(count // gcd(s, count) in (1, 3) for s in spread))


def _upstream_draw(rng: Rng, v: list[list[int]]) -> list[list[int]] | None:
    """dO row by row: row 0 any non-zero row; later rows chosen among the clean ones (None if a row has none)."""
    rows = [rng.choice(_NONZERO_ROWS)]
    products = [[d[0] * a + d[1] * b for a, b in v] for d in _CANDIDATE_ROWS]  # d·v_j, every candidate d and j
    for i in range(1, len(v)):
        clean = [d for d, da in zip(_CANDIDATE_ROWS, products) if _clean_row(da[:i + 1])]
        if not clean:
            return None
        rows.append(rng.choice(clean))
    return rows


def _plain_pass(x, wq, wk, wv, do, root: int) -> tuple[dict[str, list[list]], list[Fraction]]:
    """Every matrix of the forward and backward pass in plain ints and Fractions (all but S), and each row's ḡ."""
    n = len(x)
    q, k, v = plain_product(x, wq), plain_product(x, wk), plain_product(x, wv)
    a = [[Fraction(1, i + 1) if j <= i else Fraction(0) for j in range(n)] for i in range(n)]
    da = plain_product(do, plain_transpose(v))
    means = [sum((a[i][m] * da[i][m] for m in range(n)), Fraction(0)) for i in range(n)]
    ds = [[a[i][j] * (da[i][j] - means[i]) for j in range(n)] for i in range(n)]
    dr = [[value / root for value in row] for row in ds]
    dq, dk, dv = plain_product(dr, k), plain_product(plain_transpose(dr), q), plain_product(plain_transpose(a), do)
    xt = plain_transpose(x)
    return {"Q": q, "K": k, "V": v, "R": plain_product(q, plain_transpose(k)), "A": a, "dV": dv, "dA": da, "dS": ds,
            "dR": dr, "dQ": dq, "dK": dk, "dW_Q": plain_product(xt, dq), "dW_K": plain_product(xt, dk),
            "dW_V": plain_product(xt, dv)}, means


def _slips_show(values: dict[str, list[list]], x, wq, wk, wv, do) -> bool:
    """No slip in any product of the sheet gives its answer (the contract's generic product rules, in plain numbers)."""
    xt, dr = plain_transpose(x), values["dR"]
    products = ((x, wq, values["Q"]), (x, wk, values["K"]), (x, wv, values["V"]), (plain_transpose(values["A"]), do, values["dV"]),
                (dr, values["K"], values["dQ"]), (plain_transpose(dr), values["Q"], values["dK"]),
                (xt, values["dQ"], values["dW_Q"]), (xt, values["dK"], values["dW_K"]), (xt, values["dV"], values["dW_V"]))
    return not any(plain_slip_hidden(a, b, answer) for a, b, answer in products)


def _backward_is_clean(values: dict[str, list[list]], do: list[list[int]]) -> bool:
    """No degenerate gradient of the contract's, and no value beyond ±16 or with a numerator beyond 48."""
    # Checked here, before any sympy is built: a registry redraw costs a whole key.
    zero = any(not any(v for row in values[name] for v in row) for name in ("dV", "dQ", "dK", "dW_Q", "dW_K", "dW_V"))
    dr_t = plain_transpose(values["dR"])
    no_transpose = (plain_product(values["A"], do) == values["dV"] or plain_product(dr_t, values["K"]) == values["dQ"]
                    or plain_product(values["dR"], values["Q"]) == values["dK"])
    symmetric = values["dA"] == plain_transpose(values["dA"]) or values["dW_V"] == plain_transpose(values["dW_V"])
    flat = [v for matrix_ in values.values() for row in matrix_ for v in row]  # ints and Fractions: both have .numerator
    large = any(abs(v) > VALUE_LIMIT or abs(v.numerator) > NUMERATOR_LIMIT for v in flat)
    return not (zero or no_transpose or symmetric or large)


def _draw(rng: Rng, n: int, dk: int, root: int) -> tuple[tuple[list[list[int]], ...], dict[str, list[list]], list[Fraction]]:
    """Every given (X, W_Q, W_K with equal visible scores; W_V not symmetric, V small; a clean dO) and the plain pass."""
    # Some heads admit no W_V with a clean upstream row (row 1 needs dO·(v_0 − v_1) = ±4 or ±8), so after
    # UPSTREAM_TRIES the whole head is drawn again.
    while True:
        x, wq, wk = _forward_draw(rng, n, dk)
        columns = _columns(x, QK_LIMIT)
        for _ in range(UPSTREAM_TRIES):
            wv = _weight_from_columns(rng, columns, D_MODEL)
            v = plain_product(x, wv)
            # Singular W_V would make every value row parallel; equal value rows would make columns of dA equal.
            if _symmetric(wv) or _singular(wv) or _rows_repeat(v):
                continue
            do = _upstream_draw(rng, v)
            if do is None:
                continue
            values, means = _plain_pass(x, wq, wk, wv, do, root)
            if _backward_is_clean(values, do) and _slips_show(values, x, wq, wk, wv, do):
                return (x, wq, wk, wv, do), values, means


# ----- the worked key ----------------------------------------------------------------------------------------


def _rows_product_step(text, left, right, formula, result, rows, checks=()) -> Step:
    """A product step that writes out the chosen rows (where a first row of zeros would teach nothing)."""
    value = left * right
    check_result("product", value, result)
    expansions = tuple(dot_expansion(entry_label(result.symbol, i, j), left.row(i), right.col(j))
                       for i in rows for j in range(value.cols))
    return Step(text=text, formula=formula, shapes=Tex(f"{shape_text(left)} \\cdot {shape_text(right)} \\to {shape_text(value)}"),
                expansions=expansions, result=result, checks=checks)


def _row_sum_checks(symbol: str, m: ImmutableMatrix) -> tuple[Tex, ...]:
    """One check per row from row 1 on: its entries add up to 0 (row 0 is all 0 and gets its own check)."""
    checks = []
    for i in range(1, m.rows):
        row = list(m.row(i))
        if sympy.Add(*row) != 0:
            raise ValueError(f"row {i} of {symbol} does not sum to 0")
        checks.append(Tex(f"\\text{{row {i}: }} " + " + ".join(factor_tex(v) for v in row) + " = 0"))
    return tuple(checks)


def _projection_step(given: dict, q: dict, name: str) -> Step:
    """Q, K or V = X·W, the first row written out."""
    return product_step(Tex(f"Row $i$ of $X$ times column $j$ of $W_{name}$."), given["X"], given[f"W_{name}"],
                        Tex(f"{name} = X\\,W_{name}"), q[name], expand="row")


def _key_value_part(given: dict, q: dict) -> Part:
    """(a) K = X·W_K and V = X·W_V: two blank grids that fit one row, so the first part shares page 1 with the statement."""
    return Part(Tex(r"Forward pass: compute the keys $K = X\,W_K$ and the values $V = X\,W_V$."), (q["K"], q["V"]),
                (_projection_step(given, q, "K"), _projection_step(given, q, "V")))


def _attention_part(given: dict, q: dict, root: int) -> Part:
    """(b) Q = X·W_Q, R = Q·Kᵀ, the scaled and masked S, and the weights A (equal visible scores)."""
    n = q["R"].value.rows
    scaled = q["R"].value / root
    s, a = q["S"].value, q["A"].value
    if softmax_rows(s) != a:
        raise ValueError("the weights are not the softmax of the scores")
    lines = tuple(Tex(" = ".join(entry_label("S", i, j) for j in range(i + 1)) + f" = {number_tex(s[i, 0])}"
                      + r" \;\Rightarrow\; "
                      + (f"A[{i},j] = {number_tex(a[i, 0])} \\text{{ for }} j \\le {i}" if i else
                         r"A[0,0] = 1 \text{ (its only visible score)}"))
                  for i in range(n))
    steps = (
        _projection_step(given, q, "Q"),
        product_step(Tex(r"Row $i$ of $Q$ dotted with row $j$ of $K$ gives entry $[i,j]$."), q["Q"].value, q["K"].value.T,
                     Tex(r"R = Q\,K^{\mathsf T}"), q["R"], expand="row",
                     checks=(Tex(r"\text{In each row } i \text{ the entries } R[i,0], \dots, R[i,i] \text{ are equal.}"),)),
        scale_step(q["R"].value, root, Quantity("S", Tex("S"), scaled)),
        causal_mask_step(scaled, q["S"]),
        Step(text=Tex(r"In each row the visible scores are equal, so softmax shares the weight equally among them: "
                      r"$e^{s}/(e^{s} + \dots + e^{s}) = 1/(i+1)$ in row $i$; a masked score gets $e^{-\infty} = 0$."),
             formula=Tex(r"A[i,j] = \frac{e^{S[i,j]}}{\sum_m e^{S[i,m]}}"), lines=lines, result=q["A"],
             checks=(Tex(r"\text{Each row of } A \text{ sums to 1; row 0 is } [1, 0, \dots]\text{: token 0 sees only itself.}"),)),
    )
    return Part(Tex(r"Compute the queries $Q = X\,W_Q$, the raw scores $R = Q\,K^{\mathsf T}$, the scaled scores "
                    r"$S = R/\sqrt{d_k}$ with the causal mask, and the weights $A$."),
                (q["Q"], q["R"], q["S"], q["A"]), steps)


def _output_part(do: ImmutableMatrix, q: dict) -> Part:
    """(c) dV = Aᵀ·dO and dA = dO·Vᵀ, the gradient rules of O = A·V."""
    a, v = q["A"].value, q["V"].value
    at_q, vt_q = Quantity("AT", Tex(r"A^{\mathsf T}"), a.T), Quantity("VT", Tex(r"V^{\mathsf T}"), v.T)
    return Part(
        Tex(r"Backpropagate through $O = A\,V$: compute $dV = A^{\mathsf T}\,dO$ and $dA = dO\,V^{\mathsf T}$ (the whole "
            r"product; part (d) shows why its entries above the diagonal do not matter)."),
        (q["dV"], q["dA"]),
        (transpose_step("A", "A", a, at_q),
         product_step(Tex(r"Row $i$ of $A^{\mathsf T}$ times column $j$ of $dO$: value $j$ collects the gradient of every "
                          r"output that used it, weighted by $A$."), a.T, do, Tex(r"dV = A^{\mathsf T}\,dO"), q["dV"], expand="row",
                      checks=(Tex(r"\text{Its shape is the shape of } V."),)),
         transpose_step("V", "V", v, vt_q),
         product_step(Tex(r"Row $i$ of $dO$ dotted with row $j$ of $V$. Entries with $j > i$ are computed too, but "
                          r"$A[i,j] = 0$ there, so part (d) multiplies them by 0."), do, v.T, Tex(r"dA = dO\,V^{\mathsf T}"),
                      q["dA"], expand="row", checks=(Tex(r"\text{Its shape is the shape of } A."),))))


def _softmax_part(q: dict, means: list) -> Part:
    """(d) dS row by row: dS[i,j] = A[i,j](dA[i,j] − ḡ_i), with ḡ_i = Σ_m A[i,m]·dA[i,m]; 0 where masked."""
    a, da, ds = q["A"].value, q["dA"].value, q["dS"].value
    n = a.rows
    mean_step = Step(
        text=Tex(r"In each row, the upstream gradient averaged with the weights (masked weights are 0, so only $m \le i$ count)."),
        formula=Tex(r"\bar g_i = \sum_m A[i,m]\,dA[i,m]"),
        expansions=tuple(Expansion(Tex(f"\\bar g_{i}"), tuple(Term((a[i, m], da[i, m])) for m in range(i + 1)), means[i])
                         for i in range(n)))
    entries = tuple(Expansion(entry_label("dS", i, j), (Term((a[i, j], da[i, j])), Term((a[i, j], means[i]), sign=-1)), ds[i, j])
                    for i in range(n) for j in range(i + 1))
    checks = (Tex(r"\text{Row 0 is all 0: token 0 sees only itself, so its weight is 1 whatever its score.}"),
              Tex(r"\text{Masked entries } (j > i) \text{ are 0: } A[i,j] = 0 \text{ there, so the mask blocks the gradient.}"),
              *_row_sum_checks("dS", ds))
    ds_step = Step(text=Tex(r"Each visible score's gradient is its weight times how far its $dA$ is above the row's average."),
                   formula=Tex(r"dS[i,j] = A[i,j]\,\bigl(dA[i,j] - \bar g_i\bigr)"), expansions=entries, result=q["dS"],
                   checks=checks)
    return Part(Tex(r"Backpropagate through the softmax, row by row: with $\bar g_i = \sum_m A[i,m]\,dA[i,m]$, the weighted "
                    r"mean of row $i$ of $dA$, compute $dS[i,j] = A[i,j]\,\bigl(dA[i,j] - \bar g_i\bigr)$ for every entry, "
                    r"masked ones included."),
                (q["dS"],), (mean_step, ds_step))


def _scale_part(q: dict, root: int) -> Part:
    """(e) dR = dS/√d_k: the scale passes the gradient on, divided by the same number."""
    ds, dr = q["dS"].value, q["dR"].value
    check_result("scale", ds / root, q["dR"])
    lines = tuple(Tex(f"{entry_label('dR', i, j)} = \\frac{{{number_tex(ds[i, j])}}}{{{root}}} = {number_tex(dr[i, j])}")
                  for i in range(1, ds.rows) for j in range(i + 1))
    step = Step(text=Tex(f"On and below the diagonal $S = R/{root}$, so each gradient is divided by $\\sqrt{{d_k}} = {root}$; "
                         r"above it $S = -\infty$ whatever $R$ is, so those entries of $R$ get gradient 0."),
                formula=Tex(r"dR = \frac{dS}{\sqrt{d_k}}"), lines=lines, result=q["dR"],
                checks=_row_sum_checks("dR", dr))
    return Part(Tex(r"Backpropagate through the scaling: $dR = dS/\sqrt{d_k}$."), (q["dR"],), (step,))


def _query_key_part(q: dict) -> Part:
    """(f) dQ = dR·K and dK = dRᵀ·Q, the gradient rules of R = Q·Kᵀ."""
    dr, k, qv, dq, dk = q["dR"].value, q["K"].value, q["Q"].value, q["dQ"].value, q["dK"].value
    n = dr.rows
    if not all_zero(dq.row(0)) or any(sympy.Add(*dk.col(c)) != 0 for c in range(dk.cols)):
        raise ValueError("dQ's first row is not 0 or dK's rows do not add up to 0")
    drt_q = Quantity("dRT", Tex(r"dR^{\mathsf T}"), dr.T)
    return Part(
        Tex(r"Backpropagate through $R = Q\,K^{\mathsf T}$: compute $dQ = dR\,K$ and $dK = dR^{\mathsf T}\,Q$."),
        (q["dQ"], q["dK"]),
        (_rows_product_step(Tex(r"Row $i$ of $dR$ times column $j$ of $K$ (the last row written out; row 0 of $dR$ is 0)."),
                            dr, k, Tex(r"dQ = dR\,K"), q["dQ"], [n - 1],
                            checks=(Tex(r"\text{Row 0 of } dQ \text{ is 0: query 0's only score does not matter.}"),
                                    Tex(r"\text{Its shape } " + shape_text(dq) + r" \text{ is the shape of } Q."))),
         transpose_step("dR", "dR", dr, drt_q),
         product_step(Tex(r"Row $i$ of $dR^{\mathsf T}$ times column $j$ of $Q$: key $i$ collects the gradient of every score "
                          r"it took part in."), dr.T, qv, Tex(r"dK = dR^{\mathsf T}\,Q"), q["dK"], expand="row",
                      checks=(Tex(r"\text{The rows of } dK \text{ add up to 0 (every row of } dR \text{ sums to 0).}"),
                              Tex(r"\text{Its shape } " + shape_text(dk) + r" \text{ is the shape of } K.")))))


def _weight_part(x: ImmutableMatrix, q: dict) -> Part:
    """(g) dW = Xᵀ·(the projection's gradient), for W_Q, W_K and W_V."""
    xt_q = Quantity("XT", Tex(r"X^{\mathsf T}"), x.T)
    steps = [transpose_step("X", "X", x, xt_q)]
    for name, grad in (("Q", "dQ"), ("K", "dK"), ("V", "dV")):
        result = q[f"dW_{name}"]
        shape_check = Tex(f"\\text{{Its shape }} {shape_text(result.value)} \\text{{ is the shape of }} W_{name}.")
        steps.append(product_step(Tex(f"Row $i$ of $X^{{\\mathsf T}}$ times column $j$ of ${grad}$."), x.T, q[grad].value,
                                  Tex(f"dW_{name} = X^{{\\mathsf T}}\\,{grad}"), result, expand="row", checks=(shape_check,)))
    return Part(Tex(r"Compute the weights' gradients: $dW_Q = X^{\mathsf T}\,dQ$, $dW_K = X^{\mathsf T}\,dK$ and "
                    r"$dW_V = X^{\mathsf T}\,dV$."),
                (q["dW_Q"], q["dW_K"], q["dW_V"]), tuple(steps))


def generate(rng: Rng, options: dict[str, str]) -> Problem:
    """Draw a head whose visible scores are equal in every row (exact weights 1, 1/2, 1/3) and a clean dO."""
    n, dk = int(options["tokens"]), int(options["d_k"])
    root = _ROOTS[dk]
    (x, wq, wk, wv, do), plain, plain_means = _draw(rng, n, dk, root)
    given = {"X": matrix(x), "W_Q": matrix(wq), "W_K": matrix(wk), "W_V": matrix(wv), "dO": matrix(do)}
    means = [Rational(m.numerator, m.denominator) for m in plain_means]
    values = {name: matrix(value) for name, value in plain.items()}
    values["S"] = causal_mask(values["R"] / root)
    q = {name: Quantity(name, Tex(name), value) for name, value in values.items()}  # names print as they read: dW_Q
    parts = [_key_value_part(given, q), _attention_part(given, q, root), _output_part(given["dO"], q),
             _softmax_part(q, means), _scale_part(q, root), _query_key_part(q), _weight_part(given["X"], q)]
    return Problem.draft(given=[Quantity(name, Tex(name), value) for name, value in given.items()], parts=parts,
                         facts={"d_k": Rational(dk), "root": Rational(root)})
