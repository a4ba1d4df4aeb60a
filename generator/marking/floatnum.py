"""Float twins of exactnum's matrix steps: a cheap screen for follow-through recipes, never a verdict.

Recipe discovery tries tens of thousands of candidate steps; exact Fractions and 40-digit values make each try
cost milliseconds. Every candidate is first evaluated here in float64 and only the survivors are checked
exactly (followthrough._fit), so floats decide what is worth checking, never what is right. The functions
share exactnum's names, so one recipe evaluator (followthrough.core) runs on either.
"""

from __future__ import annotations

from math import erf, sqrt as _sqrt

import numpy as np

from generator.marking.exactnum import Undefined, to_mpf

# Hand values are small (|x| < 10⁴) and exact: float64 keeps 12+ digits, so these bounds only absorb rounding.
RTOL = 1e-9
ATOL = 1e-9


def array(m) -> np.ndarray:
    """An exact matrix (tuples of Fractions, mpf, −∞) as a float array."""
    return np.array([[float(to_mpf(x)) for x in row] for row in m], dtype=float)


def shape(m: np.ndarray) -> tuple[int, int]:
    return m.shape


def transpose(m: np.ndarray) -> np.ndarray:
    return m.T


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.shape[1] != b.shape[0]:
        raise ValueError("shapes do not chain")
    return a @ b


def scale(c, m: np.ndarray) -> np.ndarray:
    return float(c) * m


def combine(a, x: np.ndarray, b, y: np.ndarray) -> np.ndarray:
    return float(a) * x + float(b) * y


def hadamard(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    if x.shape != y.shape:
        raise ValueError("shapes differ")
    return x * y


def divide(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    if np.any(y == 0):
        raise Undefined("division by zero")
    return x / y


def broadcast_row(row: np.ndarray, rows: int) -> np.ndarray:
    return np.repeat(row[:1], rows, axis=0)


def row_scale(m: np.ndarray, column: np.ndarray) -> np.ndarray:
    return m * column


def columns(m: np.ndarray, start: int, stop: int) -> np.ndarray:
    return m[:, start:stop]


def hstack(blocks) -> np.ndarray:
    return np.hstack(blocks)


def relu(m: np.ndarray) -> np.ndarray:
    return np.where(m > 0, m, 0.0)


def indicator(m: np.ndarray) -> np.ndarray:
    return (m > 0).astype(float)


def absolute(m: np.ndarray) -> np.ndarray:
    return np.abs(m)


def reciprocal(m: np.ndarray) -> np.ndarray:
    return divide(np.ones_like(m), m)


def cap(m: np.ndarray) -> np.ndarray:
    return np.minimum(m, 1.0)


def sqrt_entries(m: np.ndarray) -> np.ndarray:
    if np.any(m < 0):
        raise Undefined("root of a negative number")
    return np.sqrt(m)


def gelu(m: np.ndarray) -> np.ndarray:
    return np.vectorize(lambda x: x * (1 + erf(x / _sqrt(2))) / 2, otypes=[float])(m)


def ones_like(m: np.ndarray) -> np.ndarray:
    return np.ones_like(m, dtype=float)


def lower_part(m: np.ndarray) -> np.ndarray:
    """The entries on and below the diagonal, as one row (what a causal mask keeps)."""
    return m[np.tril_indices(len(m))][None, :]


def zero_mask(m: np.ndarray) -> np.ndarray:
    return np.tril(m)


def exp_entries(m: np.ndarray) -> np.ndarray:
    return np.exp(m)


def log_entries(m: np.ndarray) -> np.ndarray:
    if np.any(~(m > 0)):
        raise Undefined("logarithm of a number that is not positive")
    return np.log(m)


def det(m: np.ndarray) -> np.ndarray:
    if m.shape != (2, 2):
        raise ValueError("a determinant by hand is of a 2×2 matrix")
    return np.array([[m[0, 0] * m[1, 1] - m[0, 1] * m[1, 0]]])


def epochs_steps(samples: np.ndarray, epoch: np.ndarray, batch: np.ndarray, per_epoch: np.ndarray) -> np.ndarray:
    if (samples.shape, epoch.shape, batch.shape, per_epoch.shape) != ((1, 1),) * 4:
        raise ValueError("steps until S samples are counted from numbers")
    whole = np.floor(samples / epoch)
    return whole * per_epoch + (samples - whole * epoch) / batch


def inverse_by(m: np.ndarray, determinant: np.ndarray) -> np.ndarray:
    if m.shape != (2, 2) or determinant.shape != (1, 1):
        raise ValueError("an inverse by hand is of a 2×2 matrix")
    if determinant[0, 0] == 0:
        raise Undefined("division by zero")
    return np.array([[m[1, 1], -m[0, 1]], [-m[1, 0], m[0, 0]]]) / determinant[0, 0]


def softmax_jacobian(p: np.ndarray) -> np.ndarray:
    if p.shape[0] != 1:
        raise ValueError("the Jacobian of one softmax row")
    return np.diag(p[0]) - p.T @ p


def softmax_backward(da: np.ndarray, a: np.ndarray) -> np.ndarray:
    if da.shape != a.shape:
        raise ValueError("shapes differ")
    return a * (da - (da * a).sum(axis=1, keepdims=True))


def gelu_slope(m: np.ndarray) -> np.ndarray:
    return np.vectorize(lambda x: (1 + erf(x / _sqrt(2))) / 2 + x * np.exp(-x * x / 2) / _sqrt(2 * np.pi),
                        otypes=[float])(m)


def indices(m: np.ndarray) -> list[int]:
    values = m.ravel()
    if not np.all(np.isfinite(values)) or np.any(values < 0) or np.any(values != np.round(values)):
        raise ValueError("indices are whole numbers")
    return [int(x) for x in values]


def one_hot(like: np.ndarray, targets: np.ndarray) -> np.ndarray:
    ts = indices(targets)
    rows, cols = like.shape
    if len(ts) != rows or any(t >= cols for t in ts):
        raise ValueError("one target per row, within the row")
    out = np.zeros((rows, cols))
    out[np.arange(rows), ts] = 1.0
    return out


def pick(m: np.ndarray, targets: np.ndarray) -> np.ndarray:
    ts = indices(targets)
    if len(ts) != m.shape[0] or any(t >= m.shape[1] for t in ts):
        raise ValueError("one target per row, within the row")
    return m[np.arange(len(ts)), ts][:, None]


def gather_rows(m: np.ndarray, ids: np.ndarray) -> np.ndarray:
    picked = indices(ids)
    if any(i >= m.shape[0] for i in picked):
        raise ValueError("an id beyond the table")
    return m[picked]


def scatter_rows(d: np.ndarray, ids: np.ndarray, like: np.ndarray) -> np.ndarray:
    picked = indices(ids)
    if len(picked) != d.shape[0] or any(i >= like.shape[0] for i in picked) or d.shape[1] != like.shape[1]:
        raise ValueError("ids do not match the rows")
    out = np.zeros(like.shape)
    np.add.at(out, picked, d)
    return out


def causal_mask(m: np.ndarray) -> np.ndarray:
    out = np.array(m, dtype=float)
    out[np.triu_indices(out.shape[0], 1, out.shape[1])] = -np.inf
    return out


def softmax_rows(m: np.ndarray) -> np.ndarray:
    if np.any(np.all(np.isneginf(m), axis=1)):
        raise Undefined("a row with every entry −∞")
    exps = np.exp(m - np.max(m, axis=1, keepdims=True))
    return exps / exps.sum(axis=1, keepdims=True)


def softmax_columns(m: np.ndarray) -> np.ndarray:
    return softmax_rows(m.T).T


def normalize_rows(m: np.ndarray) -> np.ndarray:
    return divide(m, np.repeat(m.sum(axis=1, keepdims=True), m.shape[1], axis=1))


def shift_by_row_max(m: np.ndarray) -> np.ndarray:
    return m - np.max(m, axis=1, keepdims=True)


def row_means(m: np.ndarray) -> np.ndarray:
    return m.mean(axis=1, keepdims=True)


def row_variances(m: np.ndarray) -> np.ndarray:
    return ((m - row_means(m)) ** 2).mean(axis=1, keepdims=True)


def row_deviations(m: np.ndarray) -> np.ndarray:
    return np.sqrt(row_variances(m))


def standardize(m: np.ndarray, mus: np.ndarray, sigmas: np.ndarray) -> np.ndarray:
    if np.any(sigmas == 0):
        raise Undefined("division by zero")
    return (m - mus) / sigmas


def column_sums(m: np.ndarray) -> np.ndarray:
    return m.sum(axis=0, keepdims=True)


def total(m: np.ndarray) -> np.ndarray:
    return np.array([[m.sum()]])


def close(a: np.ndarray, b: np.ndarray) -> bool:
    """Entry by entry equal up to float rounding (NaN and ±∞ never are); cheaper than np.allclose on tiny arrays."""
    return bool((np.abs(a - b) <= ATOL + RTOL * np.abs(b)).all())


def matches(target: np.ndarray, value: np.ndarray) -> bool:
    """The same shape, −∞ in the same places and every finite entry equal up to float rounding."""
    if target.shape != value.shape:
        return False
    masked = np.isneginf(target)
    if masked.any():
        if not np.array_equal(masked, np.isneginf(value)):
            return False
        target, value = target[~masked], value[~masked]
    return close(value, target)


def ratio(target: np.ndarray, source: np.ndarray) -> float | None:
    """The one constant c ≠ 0 with target ≈ c·source, or None (float twin of exactnum.ratio)."""
    if target.shape != source.shape or not (np.isfinite(target).all() and np.isfinite(source).all()):
        return None
    nonzero = np.abs(source) > ATOL
    if not nonzero.any() or (np.abs(target[~nonzero]) > ATOL).any():
        return None
    ratios = target[nonzero] / source[nonzero]
    c = float(ratios[0])
    if abs(c) <= ATOL or not close(ratios, np.full_like(ratios, c)):
        return None
    return c
