"""Numbers and small matrices for marking: Fractions where a value is rational, 40-digit mpmath values where not."""

from __future__ import annotations

from fractions import Fraction
from math import isqrt
from typing import Union

import mpmath

# A private context: marking never changes the precision sympy's own mpmath use relies on.
CTX = mpmath.MPContext()
CTX.dps = 40
Num = Union[Fraction, "mpmath.mpf"]
NEG_INF = CTX.ninf
# Two irrational values this close (relative) are the same number: 40 digits leave ten for rounding.
EXACT_SLACK = CTX.mpf(10) ** -30

Matrix = tuple[tuple[Num, ...], ...]


class Undefined(ArithmeticError):
    """An operation has no value here (division by zero, a root of a negative, −∞ in a sum)."""


def is_neg_inf(x) -> bool:
    return not isinstance(x, Fraction) and x == NEG_INF


def to_mpf(x: Num):
    """x as a 40-digit mpmath number."""
    if isinstance(x, Fraction):
        return CTX.mpf(x.numerator) / x.denominator
    return x


def add(a: Num, b: Num) -> Num:
    if isinstance(a, Fraction) and isinstance(b, Fraction):
        return a + b
    if is_neg_inf(a) or is_neg_inf(b):
        raise Undefined("−∞ in a sum")
    return to_mpf(a) + to_mpf(b)


def sub(a: Num, b: Num) -> Num:
    return add(a, mul(Fraction(-1), b))


def mul(a: Num, b: Num) -> Num:
    if isinstance(a, Fraction) and isinstance(b, Fraction):
        return a * b
    if is_neg_inf(a) or is_neg_inf(b):
        raise Undefined("−∞ in a product")
    return to_mpf(a) * to_mpf(b)


def div(a: Num, b: Num) -> Num:
    if is_zero(b):
        raise Undefined("division by zero")
    if isinstance(a, Fraction) and isinstance(b, Fraction):
        return a / b
    if is_neg_inf(a) or is_neg_inf(b):
        raise Undefined("−∞ in a quotient")
    return to_mpf(a) / to_mpf(b)


def is_zero(x: Num) -> bool:
    if isinstance(x, Fraction):
        return x == 0
    return not is_neg_inf(x) and abs(x) <= EXACT_SLACK


def sqrt(x: Num) -> Num:
    """√x, exact when x is the square of a fraction."""
    if isinstance(x, Fraction):
        if x < 0:
            raise Undefined("root of a negative number")
        p, q = isqrt(x.numerator), isqrt(x.denominator)
        if p * p == x.numerator and q * q == x.denominator:
            return Fraction(p, q)
    if to_mpf(x) < 0:
        raise Undefined("root of a negative number")
    return CTX.sqrt(to_mpf(x))


def exp(x: Num) -> Num:
    if isinstance(x, Fraction) and x == 0:
        return Fraction(1)
    return CTX.exp(to_mpf(x))


def same(a: Num, b: Num, tolerance: Fraction | None = None) -> bool:
    """Equal exactly (rationals), to 30 digits (irrational values), or within an absolute tolerance."""
    if is_neg_inf(a) or is_neg_inf(b):
        return is_neg_inf(a) and is_neg_inf(b)
    if isinstance(a, Fraction) and isinstance(b, Fraction):
        return a == b if tolerance is None else abs(a - b) <= tolerance
    difference = abs(to_mpf(a) - to_mpf(b))
    if tolerance is not None:
        return difference <= to_mpf(tolerance)
    return difference <= EXACT_SLACK * max(1, abs(to_mpf(b)))


# ----- matrices (tuples of rows) -------------------------------------------------------------------


def shape(m: Matrix) -> tuple[int, int]:
    return len(m), len(m[0]) if m else 0


def entries(m: Matrix):
    return (x for row in m for x in row)


def transpose(m: Matrix) -> Matrix:
    return tuple(zip(*m))


def matmul(a: Matrix, b: Matrix) -> Matrix:
    columns = list(zip(*b))
    return tuple(tuple(_sum(mul(x, y) for x, y in zip(row, col)) for col in columns) for row in a)


def scale(c: Num, m: Matrix) -> Matrix:
    return tuple(tuple(mul(c, x) for x in row) for row in m)


def combine(a: Num, x: Matrix, b: Num, y: Matrix) -> Matrix:
    """a·x + b·y, entry by entry."""
    return tuple(tuple(add(mul(a, p), mul(b, q)) for p, q in zip(rx, ry)) for rx, ry in zip(x, y))


def hadamard(x: Matrix, y: Matrix) -> Matrix:
    return tuple(tuple(mul(p, q) for p, q in zip(rx, ry)) for rx, ry in zip(x, y))


def broadcast_row(row: Matrix, rows: int) -> Matrix:
    return tuple(row[0] for _ in range(rows))


def divide(x: Matrix, y: Matrix) -> Matrix:
    """x / y, entry by entry (Adam's m̂ / √v̂)."""
    return tuple(tuple(div(p, q) for p, q in zip(rx, ry)) for rx, ry in zip(x, y))


def row_scale(m: Matrix, column: Matrix) -> Matrix:
    """Row i of m times the i-th entry of an n×1 column (a per-row statistic)."""
    return tuple(tuple(mul(c, x) for x in row) for row, (c,) in zip(m, column))


def columns(m: Matrix, start: int, stop: int) -> Matrix:
    """Columns start…stop−1 (one head's block)."""
    return tuple(row[start:stop] for row in m)


def hstack(blocks) -> Matrix:
    """Blocks of the same height side by side."""
    return tuple(sum(rows, ()) for rows in zip(*blocks))


def absolute(m: Matrix) -> Matrix:
    return tuple(tuple(x if to_mpf(x) >= 0 else mul(Fraction(-1), x) for x in row) for row in m)


def reciprocal(m: Matrix) -> Matrix:
    """1/x entry by entry (clipping's c/‖g‖, with c a fitted constant)."""
    return tuple(tuple(div(Fraction(1), x) for x in row) for row in m)


def cap(m: Matrix) -> Matrix:
    """min(1, x) entry by entry (clipping's s = min(1, c/‖g‖))."""
    return tuple(tuple(x if to_mpf(x) < 1 else Fraction(1) for x in row) for row in m)


def sqrt_entries(m: Matrix) -> Matrix:
    return tuple(tuple(sqrt(x) for x in row) for row in m)


def gelu(m: Matrix) -> Matrix:
    """x·Φ(x) entry by entry, Φ the standard normal CDF (exact to 40 digits, not from a 4-place table)."""
    return tuple(tuple(mul(x, (1 + CTX.erf(to_mpf(x) / CTX.sqrt(2))) / 2) for x in row) for row in m)


def relu(m: Matrix) -> Matrix:
    return tuple(tuple(x if to_mpf(x) > 0 else Fraction(0) for x in row) for row in m)


def indicator(m: Matrix) -> Matrix:
    """1 where an entry is positive, else 0 (ReLU's mask)."""
    return tuple(tuple(Fraction(1) if to_mpf(x) > 0 else Fraction(0) for x in row) for row in m)


def ones_like(m: Matrix) -> Matrix:
    return tuple(tuple(Fraction(1) for _ in row) for row in m)


def lower_part(m: Matrix) -> Matrix:
    """The entries on and below the diagonal, as one row (what a causal mask keeps)."""
    return (tuple(x for i, row in enumerate(m) for j, x in enumerate(row) if j <= i),)


def zero_mask(m: Matrix) -> Matrix:
    """0 above the diagonal: a gradient through masked weights (∂Ã is 0 where Ã was masked)."""
    return tuple(tuple(Fraction(0) if j > i else x for j, x in enumerate(row)) for i, row in enumerate(m))


def exp_entries(m: Matrix) -> Matrix:
    return tuple(tuple(exp(x) for x in row) for row in m)


def log(x: Num) -> Num:
    if is_neg_inf(x) or to_mpf(x) <= 0:
        raise Undefined("logarithm of a number that is not positive")
    if isinstance(x, Fraction) and x == 1:
        return Fraction(0)
    return CTX.log(to_mpf(x))


def log_entries(m: Matrix) -> Matrix:
    return tuple(tuple(log(x) for x in row) for row in m)


def det(m: Matrix) -> Matrix:
    """The determinant of a 2×2 matrix, as 1×1."""
    if shape(m) != (2, 2):
        raise ValueError("a determinant by hand is of a 2×2 matrix")
    return ((sub(mul(m[0][0], m[1][1]), mul(m[0][1], m[1][0])),),)


def epochs_steps(samples: Matrix, epoch: Matrix, batch: Matrix, per_epoch: Matrix) -> Matrix:
    """Steps until S samples, for 1×1 counts: ⌊S/N⌋ whole epochs of `per_epoch` steps, then the rest of S in full
    batches of B, as 1×1 (the whole epochs and the rest come from the printed S, N and B alone)."""
    (s,), (n,), (b,) = samples[0], epoch[0], batch[0]
    if not all(isinstance(x, Fraction) and x.denominator == 1 and x > 0 for x in (s, n, b)):
        raise Undefined("S, N and B are whole counts")
    whole = s // n
    return ((add(mul(whole, per_epoch[0][0]), (s - whole * n) / b),),)


def inverse_by(m: Matrix, determinant: Matrix) -> Matrix:
    """A 2×2 inverse from the adjugate and a determinant worked out before: adj(A)/det."""
    if shape(m) != (2, 2):
        raise ValueError("an inverse by hand is of a 2×2 matrix")
    d = determinant[0][0]
    minus = Fraction(-1)
    adjugate = ((m[1][1], mul(minus, m[0][1])), (mul(minus, m[1][0]), m[0][0]))
    return tuple(tuple(div(x, d) for x in row) for row in adjugate)


def softmax_jacobian(p: Matrix) -> Matrix:
    """diag(p) − pᵀp for one row of probabilities."""
    if len(p) != 1:
        raise ValueError("the Jacobian of one softmax row")
    row = p[0]
    return tuple(tuple(sub(pi if i == j else Fraction(0), mul(pi, pj)) for j, pj in enumerate(row))
                 for i, pi in enumerate(row))


def softmax_backward(da: Matrix, a: Matrix) -> Matrix:
    """∂s = a ⊙ (∂a − Σⱼ ∂aⱼ aⱼ), row by row."""
    weighted = tuple((_sum(mul(d, x) for d, x in zip(rd, ra)),) for rd, ra in zip(da, a))
    return tuple(tuple(mul(x, sub(d, w)) for d, x in zip(rd, ra))
                 for rd, ra, (w,) in zip(da, a, weighted))


def gelu_slope(m: Matrix) -> Matrix:
    """GELU′(x) = Φ(x) + x·φ(x) entry by entry."""
    def slope(x):
        v = to_mpf(x)
        return (1 + CTX.erf(v / CTX.sqrt(2))) / 2 + v * CTX.exp(-v * v / 2) / CTX.sqrt(2 * CTX.pi)
    return tuple(tuple(slope(x) for x in row) for row in m)


def indices(m: Matrix) -> list[int]:
    """Token ids or targets (one per row of what they index) as whole numbers."""
    values = [x for x in entries(m)]
    if any(not isinstance(x, Fraction) or x.denominator != 1 or x < 0 for x in values):
        raise ValueError("indices are whole numbers")
    return [int(x) for x in values]


def one_hot(like: Matrix, targets: Matrix) -> Matrix:
    """1 at (i, tᵢ), 0 elsewhere, shaped like a matrix of probabilities."""
    rows, cols = shape(like)
    ts = indices(targets)
    if len(ts) != rows or any(t >= cols for t in ts):
        raise ValueError("one target per row, within the row")
    return tuple(tuple(Fraction(int(j == t)) for j in range(cols)) for t in ts)


def pick(m: Matrix, targets: Matrix) -> Matrix:
    """The entry at each row's target, as a column."""
    ts = indices(targets)
    if len(ts) != len(m) or any(t >= len(m[0]) for t in ts):
        raise ValueError("one target per row, within the row")
    return tuple((row[t],) for row, t in zip(m, ts))


def gather_rows(m: Matrix, ids: Matrix) -> Matrix:
    """Rows of m picked by ids (an embedding lookup)."""
    picked = indices(ids)
    if any(i >= len(m) for i in picked):
        raise ValueError("an id beyond the table")
    return tuple(m[i] for i in picked)


def scatter_rows(d: Matrix, ids: Matrix, like: Matrix) -> Matrix:
    """The embedding gradient: row i of d added to row idsᵢ of a zero matrix shaped like the table."""
    picked = indices(ids)
    rows, cols = shape(like)
    if len(picked) != len(d) or any(i >= rows for i in picked) or shape(d)[1] != cols:
        raise ValueError("ids do not match the rows")
    out = [[Fraction(0)] * cols for _ in range(rows)]
    for i, row in zip(picked, d):
        out[i] = [add(a, b) for a, b in zip(out[i], row)]
    return tuple(tuple(r) for r in out)


def causal_mask(m: Matrix) -> Matrix:
    return tuple(tuple(NEG_INF if j > i else x for j, x in enumerate(row)) for i, row in enumerate(m))


def softmax_rows(m: Matrix) -> Matrix:
    """Softmax of each row; −∞ gets weight 0. Shifted by the row's maximum, as by hand."""
    result = []
    for row in m:
        finite = [x for x in row if not is_neg_inf(x)]
        if not finite:
            raise Undefined("a row with every entry −∞")
        top = max(finite, key=to_mpf)
        exps = [Fraction(0) if is_neg_inf(x) else exp(sub(x, top)) for x in row]
        total = _sum(exps)
        result.append(tuple(div(e, total) for e in exps))
    return tuple(result)


def softmax_columns(m: Matrix) -> Matrix:
    return transpose(softmax_rows(transpose(m)))


def normalize_rows(m: Matrix) -> Matrix:
    """Each entry over its row's sum (softmax's last step, from the exponentials)."""
    return tuple(tuple(div(x, _sum(row)) for x in row) for row in m)


def shift_by_row_max(m: Matrix) -> Matrix:
    """x − max of its row."""
    return tuple(tuple(sub(x, max(row, key=to_mpf)) for x in row) for row in m)


def row_means(m: Matrix) -> Matrix:
    return tuple((div(_sum(row), Fraction(len(row))),) for row in m)


def row_variances(m: Matrix) -> Matrix:
    out = []
    for row, (mu,) in zip(m, row_means(m)):
        deviations = [sub(x, mu) for x in row]
        out.append((div(_sum(mul(d, d) for d in deviations), Fraction(len(row))),))
    return tuple(out)


def row_deviations(m: Matrix) -> Matrix:
    return tuple((sqrt(v),) for (v,) in row_variances(m))


def standardize(m: Matrix, mus: Matrix, sigmas: Matrix) -> Matrix:
    """(x − μ)/σ row by row, with μ and σ one per row (n×1)."""
    return tuple(tuple(div(sub(x, mu), sigma) for x in row)
                 for row, (mu,), (sigma,) in zip(m, mus, sigmas))


def column_sums(m: Matrix) -> Matrix:
    return (tuple(_sum(col) for col in zip(*m)),)


def total(m: Matrix) -> Matrix:
    return ((_sum(entries(m)),),)


def _sum(values) -> Num:
    result: Num = Fraction(0)
    for v in values:
        result = add(result, v)
    return result


def ratio(target: Matrix, source: Matrix) -> Num | None:
    """The one constant c with target = c·source (c ≠ 0), or None."""
    c = None
    for t, s in zip(entries(target), entries(source)):
        if is_neg_inf(t) or is_neg_inf(s):
            return None
        if is_zero(s):
            if not is_zero(t):
                return None
            continue
        value = div(t, s)
        if c is None:
            c = value
        elif not same(value, c):
            return None
    if c is None or is_zero(c):
        return None
    return c


def maxima(row: Matrix) -> set[int]:
    """The positions of a row's largest entry (several when it is tied)."""
    if len(row) != 1:
        raise ValueError("the largest entry of one row")
    values = [to_mpf(x) for x in row[0]]
    top = max(values)
    return {j for j, x in enumerate(row[0]) if same(x, top)}


def signs(m: Matrix) -> set[int]:
    """The sign of a 1×1 value, as a set (as intervalnum's, which may hold several)."""
    x = m[0][0]
    return {-1} if is_neg_inf(x) or to_mpf(x) < 0 and not is_zero(x) else {0} if is_zero(x) else {1}


def is_trivial(m: Matrix) -> bool:
    """All zeros, all one value, or an identity matrix: values that make later steps trivial."""
    values = list(entries(m))
    if any(is_neg_inf(x) for x in values):
        return False
    if len(values) > 1 and all(same(x, values[0]) for x in values):
        return True
    if len(values) == 1:
        return is_zero(values[0])
    rows, cols = shape(m)
    if rows == cols and all(same(m[i][j], Fraction(int(i == j))) for i in range(rows) for j in range(cols)):
        return True
    return False
