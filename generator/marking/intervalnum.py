"""Interval twins of exactnum's matrix steps: what a recipe can give from inputs known only to their rounding.

A student who writes 0.1192 for a value knows it only to ±½·10⁻⁴; a recipe applied to such inputs has a set of
possible results, not one. Each matrix here holds [low, high] per entry (an array rows × cols × 2 of float64) and
every step returns an interval that holds every result its inputs allow: each float operation is rounded outwards
(IEEE +, −, ×, ÷ and √ by one ulp, library exp, log and erf by a few), so the bounds are rigorous. A value read from
a printed 4-place table (e^k, ln k, Φ, φ) is known to ±`table` more: the route a sheet with tables teaches.
The functions share exactnum's names, so followthrough.apply evaluates a recipe on intervals unchanged.
"""

from __future__ import annotations

from fractions import Fraction
from math import erf, pi, sqrt as _sqrt

import numpy as np

from generator.marking import exactnum as xn
from generator.marking.exactnum import Undefined

_INF = np.inf
# libm's exp, log and erf are within a few ulps, not correctly rounded: their results are widened by this much more.
_LIBM = 2.0 ** -44
_ROOT_2PI = _sqrt(2 * pi)
_SQRT2 = _sqrt(2)


def _down(x: np.ndarray) -> np.ndarray:
    return np.nextafter(x, -_INF)


def _up(x: np.ndarray) -> np.ndarray:
    """One ulp up; −∞ stays −∞ (a masked entry)."""
    return np.where(np.isneginf(x), x, np.nextafter(x, _INF))


def _pack(lo, hi) -> np.ndarray:
    return np.stack([np.asarray(lo, float), np.asarray(hi, float)], axis=-1)


def _rounded(lo, hi) -> np.ndarray:
    """A correctly rounded float result, widened by one ulp each way."""
    return _pack(_down(lo), _up(hi))


def _libm(lo, hi) -> np.ndarray:
    """A library function's result (a few ulps off at most), widened past that."""
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    return _pack(_down(lo - np.abs(lo) * _LIBM), _up(hi + np.abs(hi) * _LIBM))


def interval(m: xn.Matrix, radii: xn.Matrix | None = None) -> np.ndarray:
    """An exact matrix as intervals, each entry widened by its radius (a Fraction; None: every entry exact)."""
    rows, cols = xn.shape(m)
    lows, highs, ulps = [], [], []
    for i, row in enumerate(m):
        for j, x in enumerate(row):
            r = radii[i][j] if radii is not None else 0
            if xn.is_neg_inf(x):
                lows.append(-_INF), highs.append(-_INF), ulps.append(0)
            elif isinstance(x, Fraction):
                # A Fraction's float is the nearest one (½ ulp off at most); whole numbers (token ids) are exact.
                lows.append(float(x - r)), highs.append(float(x + r))
                ulps.append(0 if not r and x.denominator == 1 and abs(x.numerator) <= 2 ** 53 else 1)
            else:
                lows.append(float(x - r)), highs.append(float(x + r)), ulps.append(2)  # 40 digits, then rounded
    low, high, ulps = np.array(lows), np.array(highs), np.array(ulps)
    for step in (1, 2):
        low = np.where(ulps >= step, np.nextafter(low, -_INF), low)
        high = np.where(ulps >= step, _up(high), high)
    return _pack(low, high).reshape(rows, cols, 2)


def low_high(entry: np.ndarray) -> tuple[Fraction, Fraction]:
    """One entry's bounds as exact Fractions (a float is a dyadic rational)."""
    return Fraction(float(entry[0])), Fraction(float(entry[1]))


def _finite(*ms: np.ndarray) -> None:
    if any(np.isneginf(m).any() for m in ms):
        raise Undefined("−∞ in a sum or product")


def _others(values: np.ndarray) -> np.ndarray:
    """For each entry of the last axis, the sum of the other (non-negative) ones: unlike sum − self, no cancellation."""
    n = values.shape[-1]
    return values @ (np.ones((n, n)) - np.eye(n))


def _point(c) -> np.ndarray:
    """A constant (Fraction, mpf, or an interval entry) as an interval."""
    if isinstance(c, np.ndarray):
        return c
    return interval(((c,),))[0, 0]


class Intervals:
    """The interval steps; `table` is how far a value read from a printed 4-place table may be from the exact one."""

    def __init__(self, table: Fraction = Fraction(0)):
        self.table = float(np.nextafter(float(table), _INF)) if table else 0.0  # never below the Fraction

    # ----- shapes and parts ------------------------------------------------------------------------------------

    @staticmethod
    def shape(m: np.ndarray) -> tuple[int, int]:
        return m.shape[0], m.shape[1]

    @staticmethod
    def transpose(m: np.ndarray) -> np.ndarray:
        return m.transpose(1, 0, 2)

    @staticmethod
    def columns(m: np.ndarray, start: int, stop: int) -> np.ndarray:
        return m[:, start:stop]

    @staticmethod
    def hstack(blocks) -> np.ndarray:
        return np.concatenate(list(blocks), axis=1)

    @staticmethod
    def broadcast_row(row: np.ndarray, rows: int) -> np.ndarray:
        return np.repeat(row[:1], rows, axis=0)

    @staticmethod
    def ones_like(m: np.ndarray) -> np.ndarray:
        return np.ones(m.shape)

    @staticmethod
    def zero_mask(m: np.ndarray) -> np.ndarray:
        out = m.copy()
        out[np.triu_indices(m.shape[0], 1, m.shape[1])] = 0.0
        return out

    @staticmethod
    def causal_mask(m: np.ndarray) -> np.ndarray:
        out = m.copy()
        out[np.triu_indices(m.shape[0], 1, m.shape[1])] = -_INF
        return out

    @staticmethod
    def lower_part(m: np.ndarray) -> np.ndarray:
        return m[np.tril_indices(m.shape[0], 0, m.shape[1])][None, :]

    # ----- arithmetic ------------------------------------------------------------------------------------------

    @staticmethod
    def add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        _finite(a, b)
        return _rounded(a[..., 0] + b[..., 0], a[..., 1] + b[..., 1])

    @staticmethod
    def negate(a: np.ndarray) -> np.ndarray:
        return _pack(-a[..., 1], -a[..., 0])

    @staticmethod
    def hadamard(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        if x is y:  # x ⊙ x: a square is never negative (the product bound would say it may be)
            return Intervals.square(x)
        if x.shape != y.shape:
            raise ValueError("shapes differ")
        _finite(x, y)
        corners = np.stack([x[..., i] * y[..., k] for i in (0, 1) for k in (0, 1)])
        return _rounded(corners.min(axis=0), corners.max(axis=0))

    @staticmethod
    def square(x: np.ndarray) -> np.ndarray:
        _finite(x)
        lo, hi = x[..., 0], x[..., 1]
        low = np.where(lo > 0, lo * lo, np.where(hi < 0, hi * hi, 0.0))
        return _rounded(low, np.maximum(lo * lo, hi * hi))

    def scale(self, c, m: np.ndarray) -> np.ndarray:
        return self.hadamard(np.broadcast_to(_point(c), m.shape), m)

    def combine(self, a, x: np.ndarray, b, y: np.ndarray) -> np.ndarray:
        return self.add(self.scale(a, x), self.scale(b, y))

    def matmul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if a.shape[1] != b.shape[0]:
            raise ValueError("shapes do not chain")
        _finite(a, b)
        # Every product's bounds at once (n × k × m), then each sum widened by the classic bound on a float sum of
        # k terms: |error| ≤ k·2⁻⁵³·Σ|term| (each product itself rounded outwards first).
        corners = np.stack([a[:, :, None, i] * b[None, :, :, j] for i in (0, 1) for j in (0, 1)])
        lo, hi = _down(corners.min(axis=0)), _up(corners.max(axis=0))
        k = a.shape[1]
        slack_lo, slack_hi = np.abs(lo).sum(axis=1) * (k * 2.0 ** -52), np.abs(hi).sum(axis=1) * (k * 2.0 ** -52)
        return _rounded(lo.sum(axis=1) - slack_lo, hi.sum(axis=1) + slack_hi)

    @staticmethod
    def reciprocal(m: np.ndarray) -> np.ndarray:
        _finite(m)
        lo, hi = m[..., 0], m[..., 1]
        if np.any((lo <= 0) & (hi >= 0)):
            raise Undefined("division by an interval that holds 0")
        return _rounded(1.0 / hi, 1.0 / lo)

    def divide(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return self.hadamard(x, self.reciprocal(y))

    def row_scale(self, m: np.ndarray, column: np.ndarray) -> np.ndarray:
        return self.hadamard(m, np.repeat(column, m.shape[1], axis=1))

    def _sum_along(self, m: np.ndarray, axis: int) -> np.ndarray:
        parts = np.moveaxis(m, axis, 0)
        total = parts[0]
        for part in parts[1:]:
            total = self.add(total, part)
        return np.expand_dims(total, axis)

    def column_sums(self, m: np.ndarray) -> np.ndarray:
        return self._sum_along(m, 0)

    def total(self, m: np.ndarray) -> np.ndarray:
        return self._sum_along(self._sum_along(m, 0), 1)

    def row_means(self, m: np.ndarray) -> np.ndarray:
        return self.scale(Fraction(1, m.shape[1]), self._sum_along(m, 1))

    def row_variances(self, m: np.ndarray) -> np.ndarray:
        deviations = self.add(m, self.negate(np.repeat(self.row_means(m), m.shape[1], axis=1)))
        return self.row_means(self.square(deviations))

    def row_deviations(self, m: np.ndarray) -> np.ndarray:
        return self.sqrt_entries(self.row_variances(m))

    def standardize(self, m: np.ndarray, mus: np.ndarray, sigmas: np.ndarray) -> np.ndarray:
        centred = self.add(m, self.negate(np.repeat(mus, m.shape[1], axis=1)))
        return self.divide(centred, np.repeat(sigmas, m.shape[1], axis=1))

    def shift_by_row_max(self, m: np.ndarray) -> np.ndarray:
        _finite(m)
        top = _pack(m[..., 0].max(axis=1, keepdims=True), m[..., 1].max(axis=1, keepdims=True))
        return self.add(m, self.negate(np.repeat(top, m.shape[1], axis=1)))

    # ----- steps with a shape of their own ---------------------------------------------------------------------

    @staticmethod
    def relu(m: np.ndarray) -> np.ndarray:
        return np.maximum(m, 0.0)

    @staticmethod
    def indicator(m: np.ndarray) -> np.ndarray:
        """1 where surely positive, 0 where surely not, [0, 1] where the rounding leaves it open."""
        return _pack((m[..., 0] > 0).astype(float), (m[..., 1] > 0).astype(float))

    @staticmethod
    def cap(m: np.ndarray) -> np.ndarray:
        """min(1, x): monotone, so each bound is capped on its own."""
        return np.minimum(m, 1.0)

    @staticmethod
    def absolute(m: np.ndarray) -> np.ndarray:
        lo, hi = m[..., 0], m[..., 1]
        return _pack(np.where(lo >= 0, lo, np.where(hi <= 0, -hi, 0.0)), np.maximum(np.abs(lo), np.abs(hi)))

    def sqrt_entries(self, m: np.ndarray) -> np.ndarray:
        _finite(m)
        if np.any(m[..., 1] < 0):
            raise Undefined("root of a negative number")
        # A bound below 0 comes from rounding a value the student meant to be ≥ 0: its root starts at 0.
        return _rounded(np.sqrt(np.maximum(m[..., 0], 0.0)), np.sqrt(m[..., 1]))

    def _read(self, lo, hi, floor: float | None = None) -> np.ndarray:
        """A library function's bounds, widened by a table value's half unit (not below floor)."""
        out = _libm(lo, hi)
        out[..., 0] -= self.table
        out[..., 1] += self.table
        if floor is not None:
            out[..., 0] = np.maximum(out[..., 0], floor)
        return _rounded(out[..., 0], out[..., 1])

    def exp_entries(self, m: np.ndarray) -> np.ndarray:
        _finite(m)
        return self._read(np.exp(m[..., 0]), np.exp(m[..., 1]), floor=0.0)

    def log_entries(self, m: np.ndarray) -> np.ndarray:
        _finite(m)
        if np.any(m[..., 0] <= 0):
            raise Undefined("logarithm of a number that may not be positive")
        return self._read(np.log(m[..., 0]), np.log(m[..., 1]))

    def _phi_cdf(self, m: np.ndarray) -> np.ndarray:
        """Φ(x), rising with x."""
        cdf = np.vectorize(lambda x: (1 + erf(x / _SQRT2)) / 2, otypes=[float])
        return self._read(cdf(m[..., 0]), cdf(m[..., 1]), floor=0.0)

    def _phi_pdf(self, m: np.ndarray) -> np.ndarray:
        """φ(x), largest where |x| is smallest."""
        near = np.where((m[..., 0] <= 0) & (m[..., 1] >= 0), 0.0, np.minimum(np.abs(m[..., 0]), np.abs(m[..., 1])))
        far = np.maximum(np.abs(m[..., 0]), np.abs(m[..., 1]))
        return self._read(np.exp(-far * far / 2) / _ROOT_2PI, np.exp(-near * near / 2) / _ROOT_2PI, floor=0.0)

    def gelu(self, m: np.ndarray) -> np.ndarray:
        _finite(m)
        return self.hadamard(m, self._phi_cdf(m))

    def gelu_slope(self, m: np.ndarray) -> np.ndarray:
        _finite(m)
        return self.add(self._phi_cdf(m), self.hadamard(m, self._phi_pdf(m)))

    def softmax_rows(self, m: np.ndarray) -> np.ndarray:
        """Each weight bounded tightly: it rises with its own score and falls with every other (−∞ weighs 0)."""
        rows = []
        for row in m:
            masked = np.isneginf(row[:, 0])
            if masked.all():
                raise Undefined("a row with every entry −∞")
            lo, hi = row[~masked, 0], row[~masked, 1]
            # e^(s − max), as by hand; the max is only known to [max lo, max hi], so each bound takes the worse shift.
            exps = self._read(np.exp(lo - hi.max()), np.exp(hi - lo.max()), floor=0.0)
            small, big = exps[:, 0], exps[:, 1]
            # A handful of float sums and one quotient each: _libm's widening covers their rounding.
            with np.errstate(invalid="ignore", divide="ignore"):
                low = np.nan_to_num(small / (small + _others(big)))
                high = np.nan_to_num(big / (big + _others(small)), nan=1.0)
            out = np.zeros((len(row), 2))
            out[~masked] = _libm(low, np.minimum(high, 1.0))
            rows.append(out)
        return np.stack(rows)

    def softmax_columns(self, m: np.ndarray) -> np.ndarray:
        return self.transpose(self.softmax_rows(self.transpose(m)))

    def normalize_rows(self, m: np.ndarray) -> np.ndarray:
        _finite(m)
        if np.all(m[..., 0] >= 0):  # positive entries: each share bounded tightly, as softmax's
            lo, hi = m[..., 0], m[..., 1]
            if np.any(lo.sum(axis=1) <= 0):
                raise Undefined("a row that may sum to 0")
            return _libm(lo / (lo + _others(hi)), hi / (hi + _others(lo)))
        return self.divide(m, np.repeat(self._sum_along(m, 1), m.shape[1], axis=1))

    def det(self, m: np.ndarray) -> np.ndarray:
        if self.shape(m) != (2, 2):
            raise ValueError("a determinant by hand is of a 2×2 matrix")
        return self.add(self.hadamard(m[0:1, 0:1], m[1:2, 1:2]), self.negate(self.hadamard(m[0:1, 1:2], m[1:2, 0:1])))

    def inverse_by(self, m: np.ndarray, determinant: np.ndarray) -> np.ndarray:
        if self.shape(m) != (2, 2):
            raise ValueError("an inverse by hand is of a 2×2 matrix")
        adjugate = np.array([[m[1, 1], self.negate(m[0, 1])], [self.negate(m[1, 0]), m[0, 0]]])
        return self.scale(self.reciprocal(determinant)[0, 0], adjugate)

    def softmax_jacobian(self, p: np.ndarray) -> np.ndarray:
        if p.shape[0] != 1:
            raise ValueError("the Jacobian of one softmax row")
        outer = self.matmul(self.transpose(p), p)
        diagonal = np.zeros(outer.shape)
        for i in range(p.shape[1]):
            diagonal[i, i] = p[0, i]
        return self.add(diagonal, self.negate(outer))

    def softmax_backward(self, da: np.ndarray, a: np.ndarray) -> np.ndarray:
        if da.shape != a.shape:
            raise ValueError("shapes differ")
        weighted = self._sum_along(self.hadamard(da, a), 1)
        return self.hadamard(a, self.add(da, self.negate(np.repeat(weighted, da.shape[1], axis=1))))

    # ----- token ids and targets (exact numbers: they pick, they are never rounded) --------------------------------

    @staticmethod
    def indices(m: np.ndarray) -> list[int]:
        lo, hi = m[..., 0].ravel(), m[..., 1].ravel()
        if np.any(lo != hi) or not np.all(np.isfinite(lo)) or np.any(lo < 0) or np.any(lo != np.round(lo)):
            raise ValueError("indices are whole numbers")
        return [int(x) for x in lo]

    def one_hot(self, like: np.ndarray, targets: np.ndarray) -> np.ndarray:
        rows, cols = self.shape(like)
        ts = self.indices(targets)
        if len(ts) != rows or any(t >= cols for t in ts):
            raise ValueError("one target per row, within the row")
        out = np.zeros((rows, cols, 2))
        out[np.arange(rows), ts] = 1.0
        return out

    def pick(self, m: np.ndarray, targets: np.ndarray) -> np.ndarray:
        ts = self.indices(targets)
        if len(ts) != m.shape[0] or any(t >= m.shape[1] for t in ts):
            raise ValueError("one target per row, within the row")
        return m[np.arange(len(ts)), ts][:, None]

    def gather_rows(self, m: np.ndarray, ids: np.ndarray) -> np.ndarray:
        picked = self.indices(ids)
        if any(i >= m.shape[0] for i in picked):
            raise ValueError("an id beyond the table")
        return m[picked]

    def scatter_rows(self, d: np.ndarray, ids: np.ndarray, like: np.ndarray) -> np.ndarray:
        picked = self.indices(ids)
        if len(picked) != d.shape[0] or any(i >= like.shape[0] for i in picked) or d.shape[1] != like.shape[1]:
            raise ValueError("ids do not match the rows")
        out = np.zeros(like.shape)
        for i, row in zip(picked, d):
            out[i] = self.add(out[i], row)
        return out

    @staticmethod
    def is_trivial(m: np.ndarray) -> bool:
        """The intervals leave room for a trivial value (exactnum.is_trivial): one value everywhere, 0, an identity."""
        if np.isneginf(m).any():
            return False
        lo, hi = m[..., 0], m[..., 1]
        if lo.size > 1 and lo.max() <= hi.min():
            return True
        if lo.size == 1:
            return bool(lo[0, 0] <= 0 <= hi[0, 0])
        rows, cols = lo.shape
        eye = np.eye(rows)
        return rows == cols and bool(((lo <= eye) & (eye <= hi)).all())

    # ----- choices ---------------------------------------------------------------------------------------------

    @staticmethod
    def maxima(row: np.ndarray) -> set[int]:
        """Every position that may hold the row's largest entry."""
        if row.shape[0] != 1:
            raise ValueError("the largest entry of one row")
        lo, hi = row[0, :, 0], row[0, :, 1]
        return {j for j in range(len(lo)) if hi[j] >= lo.max()}

    @staticmethod
    def signs(m: np.ndarray) -> set[int]:
        """Every sign the 1×1 value may have."""
        lo, hi = float(m[0, 0, 0]), float(m[0, 0, 1])
        return {s for s, possible in ((-1, lo < 0), (0, lo <= 0 <= hi), (1, hi > 0)) if possible}
