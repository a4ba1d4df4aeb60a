"""The norm=post feed-forward search: every W₂ and b₂ (columns of −1, 0, 1) that make each row of R₂ = H₁ + r·W₂ + b₂
of the form {a, a, b, b}, so that LayerNorm's x̂ is ±1 and its σ exact.

A meet in the middle over the columns (0, 1) and (2, 3): a row is paired when its two halves are the same pair,
or each half repeats one value. Each half is keyed per row ("=" or its ordered pair); a left half meets every
right half whose key equals one of its own (each row's pair read either way). Integer codes in numpy arrays:
the search runs thousands of times per class set and a Python loop over its 729 × 729 halves cost 3 ms a call.
"""

from __future__ import annotations

import numpy as np

_OFFSET, _BASE = 64, 128  # a row's pair (a, b) → 1 + (a + 64)·128 + (b + 64); "=" → 0; entries stay within ±63
_ROW = 1 << 15  # one row's code in 15 bits: a key of up to 4 rows fits an int64


def paired_columns(h1: list[list[int]], r: list[list[int]], columns: tuple[tuple[int, int, int], ...]
                   ) -> list[tuple[tuple[int, int, int], ...]]:
    """Every (c₀, c₁, c₂, c₃), cⱼ = (W₂[0,j], W₂[1,j], b₂[j]) from `columns`, whose R₂ rows are paired by halves, in
    the order of the left halves (c₀, c₁), then of each left key read row by row (a row's pair as is before it
    swapped), then of the right halves (c₂, c₃)."""
    n = len(h1)
    cols = np.array(columns, dtype=np.int64)  # k × 3
    h = np.array(h1, dtype=np.int64)  # n × 4
    rr = np.array(r, dtype=np.int64)  # n × 2
    # values[j] (k × n): column j of R₂ for each choice of (W₂[0,j], W₂[1,j], b₂[j]).
    moved = cols[:, :2] @ rr.T + cols[:, 2:3]
    values = [h[:, j][None, :] + moved for j in range(4)]
    if max(int(np.abs(v).max()) for v in values) >= _OFFSET:
        raise ValueError("R₂ entries out of the search's range")
    k = len(columns)
    weights = _ROW ** np.arange(n - 1, -1, -1, dtype=np.int64)  # row 0 most significant

    def codes(a, b):
        """Per (first, second) choice and row: 0 where equal, else the pair's code read as is and swapped; and
        where equal."""
        first, second = a[:, None, :] + _OFFSET, b[None, :, :] + _OFFSET
        equal = first == second
        as_is = np.where(equal, 0, 1 + first * _BASE + second).reshape(k * k, n)
        swapped = np.where(equal, 0, 1 + second * _BASE + first).reshape(k * k, n)
        return as_is, swapped, equal.reshape(k * k, n)

    right_code, _, _ = codes(values[2], values[3])
    right_key = right_code @ weights
    as_is, swapped, equal = codes(values[0], values[1])
    variants = 1 << n
    left_key = np.full((k * k, variants), -1, dtype=np.int64)
    for s in range(variants):
        bits = np.array([(s >> (n - 1 - i)) & 1 for i in range(n)], dtype=bool)  # which rows read their pair swapped
        valid = ~(equal & bits).any(axis=1)  # a row of one repeated value has one reading only
        key = np.where(bits, swapped, as_is) @ weights
        left_key[:, s] = np.where(valid, key, -1)
    order = np.argsort(right_key, kind="stable")  # equal keys keep the right halves' own order
    ranked = right_key[order]
    low = np.searchsorted(ranked, left_key, side="left")
    high = np.searchsorted(ranked, left_key, side="right")
    found = []
    for left, s in zip(*np.nonzero((high > low) & (left_key >= 0))):  # row-major: left halves, then their keys
        c0, c1 = columns[left // k], columns[left % k]
        for right in order[low[left, s]:high[left, s]]:
            found.append((c0, c1, columns[right // k], columns[right % k]))
    return found
