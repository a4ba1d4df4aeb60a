"""Classic slips as forbidden draws: where a slip gives the right answer, the key cannot tell the slip from the skill.

Each helper answers one question about a draw — does this slip give the same answer? — so a type's Contract can
name the slips it guards against in one line each (see `rule`). Slips whose result has another shape are not
checked: a student sees the wrong shape.
"""

from __future__ import annotations

from collections import Counter
from typing import Callable

import sympy
from sympy import ImmutableMatrix, Rational

from generator.core.forward import plain_product, plain_transpose
from generator.core.problem import Problem, rational_rows

NEG_INF = -sympy.oo


def product_slips(a: ImmutableMatrix, b: ImmutableMatrix) -> dict[str, ImmutableMatrix]:
    """What a student's A·B becomes under each classic slip the shapes allow: a forgotten or extra transpose of
    either factor, the order swapped, or the answer written transposed (row and column mixed up)."""
    slips = {}
    # A 1×1 factor is a number: its transpose is itself and it commutes, so those are no slips.
    if a.cols == b.cols and b.shape != (1, 1):
        slips["A·Bᵀ"] = a * b.T
    if a.rows == b.rows and a.shape != (1, 1):
        slips["Aᵀ·B"] = a.T * b
    if b.cols == a.rows and (1, 1) not in (a.shape, b.shape):
        slips["B·A"] = b * a
    if a.rows == b.cols and a.rows > 1:
        slips["(A·B)ᵀ"] = (a * b).T
    return slips


def hidden_product_slips(a: ImmutableMatrix, b: ImmutableMatrix, answer: ImmutableMatrix | None = None) -> list[str]:
    """The slips in A·B that give the right answer: A·B itself, or `answer` = A·B + (a bias, a residual), where the
    slipped product carries the same addition and a transposed answer is the whole answer transposed."""
    plain = _plain_hidden(a, b, answer)
    if plain is not None:
        return plain
    product = a * b
    answer = product if answer is None else answer
    extra = answer - product
    hidden = []
    for name, value in product_slips(a, b).items():
        if name == "(A·B)ᵀ":
            value = answer.T
        elif value.shape == answer.shape:
            value = value + extra
        if value.shape == answer.shape and value == answer:
            hidden.append(name)
    return hidden


def _plain_hidden(a: ImmutableMatrix, b: ImmutableMatrix, answer: ImmutableMatrix | None) -> list[str] | None:
    """hidden_product_slips on plain Fractions, the same names in the same order, where every entry is rational
    (else None: sympy decides). Sympy's matrix arithmetic was half of a class set's generation time."""
    rows = [rational_rows(m) for m in ((a, b) if answer is None else (a, b, answer))]
    if any(r is None for r in rows):
        return None
    return _plain_hidden_rows(*rows)


def _plain_hidden_rows(a_rows: list[list], b_rows: list[list], answer_rows: list[list] | None = None) -> list[str] | None:
    """_plain_hidden on rows of plain numbers (non-empty); None where the answer's shape is not the product's."""
    product = plain_product(a_rows, b_rows)
    answer_rows = product if answer_rows is None else answer_rows
    shape = (len(answer_rows), len(answer_rows[0]))
    if shape != (len(product), len(product[0])):
        return None  # sympy raises its own error on the difference
    extra = [[x - y for x, y in zip(r, s)] for r, s in zip(answer_rows, product)]
    hidden = []
    for name, value in _plain_product_slips(a_rows, b_rows).items():
        if name == "(A·B)ᵀ":
            value = plain_transpose(answer_rows)
        elif (len(value), len(value[0])) == shape:
            value = [[x + y for x, y in zip(r, s)] for r, s in zip(value, extra)]
        if (len(value), len(value[0])) == shape and value == answer_rows:
            hidden.append(name)
    return hidden


def _plain_product_slips(a: list[list], b: list[list]) -> dict[str, list[list]]:
    """product_slips on plain rows (the same slips, under the same conditions)."""
    a_shape, b_shape = (len(a), len(a[0])), (len(b), len(b[0]))
    slips = {}
    if a_shape[1] == b_shape[1] and b_shape != (1, 1):
        slips["A·Bᵀ"] = plain_product(a, plain_transpose(b))
    if a_shape[0] == b_shape[0] and a_shape != (1, 1):
        slips["Aᵀ·B"] = plain_product(plain_transpose(a), b)
    if b_shape[1] == a_shape[0] and (1, 1) not in (a_shape, b_shape):
        slips["B·A"] = plain_product(b, a)
    if a_shape[0] == b_shape[1] and a_shape[0] > 1:
        slips["(A·B)ᵀ"] = []  # the whole answer transposed: made by the caller
    return slips


def plain_slip_hidden(a: list[list], b: list[list], answer: list[list] | None = None) -> bool:
    """hidden_product_slips for plain rows of numbers (ints, Fractions): for a search's inner loop, before sympy."""
    product = plain_product(a, b)
    answer = product if answer is None else answer
    extra = [[x - y for x, y in zip(r, s)] for r, s in zip(answer, product)]
    rows_a, cols_a, rows_b, cols_b = len(a), len(a[0]), len(b), len(b[0])
    scalar = (rows_a, cols_a) == (1, 1) or (rows_b, cols_b) == (1, 1)
    candidates = []
    if cols_a == cols_b and (rows_b, cols_b) != (1, 1):
        candidates.append(plain_product(a, plain_transpose(b)))
    if rows_a == rows_b and (rows_a, cols_a) != (1, 1):
        candidates.append(plain_product(plain_transpose(a), b))
    if cols_b == rows_a and not scalar:
        candidates.append(plain_product(b, a))
    same_shape = [[[x + y for x, y in zip(r, s)] for r, s in zip(c, extra)] for c in candidates
                  if (len(c), len(c[0])) == (len(answer), len(answer[0]))]
    transposed = [plain_transpose(answer)] if rows_a == cols_b and rows_a > 1 else []
    return any(c == answer for c in same_shape + transposed)


def symmetric(m: ImmutableMatrix) -> bool:
    """A square matrix (bigger than 1×1) equal to its transpose: a transposed answer or factor looks right."""
    return m.is_square and m.rows > 1 and m == m.T


def equal_rows(m: ImmutableMatrix) -> bool:
    """Two rows are equal (two tokens look the same to everything after them)."""
    rows = [tuple(m.row(i)) for i in range(m.rows)]
    return len(set(rows)) < len(rows)


def constant_row(scores: ImmutableMatrix) -> bool:
    """A row of scores (more than one visible, −∞ masked) is all equal: its softmax is uniform whatever the query."""
    for i in range(scores.rows):
        visible = [v for v in scores.row(i) if v != NEG_INF]
        if len(visible) > 1 and len(set(visible)) == 1:
            return True
    return False


def _exp_sum(values) -> Counter:
    """Σ e^v exactly, as {rational exponent: rational coefficient}; an entry ln k adds k·e^0, and −∞ adds nothing.

    By Lindemann–Weierstrass, e^q for distinct rationals q are linearly independent over the rationals,
    so two such sums are equal exactly when these counters are.
    """
    total: Counter = Counter()
    for v in values:
        if v == NEG_INF:
            continue
        if isinstance(v, sympy.log) and v.args[0].is_Rational:
            total[Rational(0)] += v.args[0]
        elif v.is_Rational:
            total[v] += 1
        else:
            raise ValueError(f"cannot compare sums of e^{v} exactly")
    return Counter({k: c for k, c in total.items() if c != 0})


def softmax_axis_hidden(scores: ImmutableMatrix) -> bool:
    """Does softmax down the columns give the same matrix as softmax along the rows?

    Entry [i,j] is e^{s_ij} over its row's sum or over its column's sum: the two agree exactly when every
    visible entry's row sum equals its column sum. A single row can never agree (its columns' softmax is all 1).
    """
    if scores.rows < 2 or scores.cols < 2:
        return False
    row_sums = [_exp_sum(scores.row(i)) for i in range(scores.rows)]
    col_sums = [_exp_sum(scores.col(j)) for j in range(scores.cols)]
    return all(row_sums[i] == col_sums[j] for i in range(scores.rows) for j in range(scores.cols)
               if scores[i, j] != NEG_INF)


def unscaled_hidden(raw: ImmutableMatrix, scale) -> bool:
    """Does forgetting to divide by `scale` (√d_k) give the same scores? Only zero scores do; a scale of 1 is the
    sheet's option (d_k = 1), not a draw, so it is not counted."""
    return scale != 1 and all(v == 0 for v in raw)


def sign_hidden(step: ImmutableMatrix) -> bool:
    """Does θ + step (the update's sign flipped) give the same θ − step? Only when the step is all zeros."""
    return all(v == 0 for v in step)


def dropped_hidden(before: ImmutableMatrix) -> bool:
    """Does −step alone (θ dropped from θ − step) give the same answer? Only when θ is all zeros."""
    return all(v == 0 for v in before)


def zero(m) -> bool:
    """Every entry 0: adding it (a bias, a residual) or forgetting it gives the same answer."""
    return all(v == 0 for v in (m if isinstance(m, ImmutableMatrix) else [m]))


def reduction_hidden(total, count: int) -> bool:
    """Does the sum give the same answer as the mean over `count` items (a forgotten 1/count)?"""
    values = list(total) if isinstance(total, ImmutableMatrix) else [total]
    return count > 1 and all(v == 0 for v in values)


Forbidden = Callable[[Problem], bool]

_last_plain: tuple = (None, {})  # (problem, its plain_values): a contract's rules ask of one problem in turn


def plain_values(problem: Problem) -> dict[str, list[list]]:
    """Every given and answer matrix of the problem whose entries are all rational, as rows of plain ints and
    Fractions by name (a given first where names repeat). Worked once per problem and kept until the next: each
    rule of a contract asks in turn, and a sympy product or transpose of a 2×2 matrix costs 25-30 µs."""
    global _last_plain
    last, values = _last_plain
    if last is problem:
        return values
    values = {}
    for quantity in (*problem.given, *(answer for part in problem.parts for answer in part.answers)):
        if quantity.name not in values and isinstance(quantity.value, ImmutableMatrix):
            rows = rational_rows(quantity.value)
            if rows is not None:
                values[quantity.name] = rows
    _last_plain = (problem, values)
    return values


def plain_zero(rows: list[list]) -> bool:
    """Every entry of plain rows is 0."""
    return all(v == 0 for row in rows for v in row)


def product_rule(label: str, factors: Callable[[Problem], tuple]) -> dict[str, Forbidden]:
    """A contract rule: a slip in the product `label` (e.g. 'Q = X·W_Q') gives the right answer.

    `factors(p)` gives (A, B) or (A, B, answer) — the answer when it is A·B plus something (a bias, a residual).
    """
    return {f"a slip in {label} (transpose, order) gives the same answer": lambda p: bool(hidden_product_slips(*factors(p)))}


def plain_product_rule(label: str, factors: Callable[[Problem], tuple]) -> dict[str, Forbidden]:
    """product_rule for factors given as plain rows of rationals (plain_values): the same rule, the same name."""
    def hidden(p: Problem) -> bool:
        found = _plain_hidden_rows(*factors(p))
        if found is None:
            raise ValueError(f"{label}: the answer's shape is not the product's")
        return bool(found)
    return {f"a slip in {label} (transpose, order) gives the same answer": hidden}
