"""The norm=post W₂ search (numpy codes) finds exactly what a plain search over the halves finds, in the same order."""

from __future__ import annotations

import random
from itertools import product

from generator.problems._paired_rows import paired_columns
from generator.problems.tiny_transformer import FFN_COLUMN, paired_row


def _plain(h1, r):
    """Every (c₀, c₁, c₂, c₃) whose rows are paired by halves, by dictionaries of Python tuples."""
    n = len(h1)
    column = {(j, c): tuple(h1[i][j] + r[i][0] * c[0] + r[i][1] * c[1] + c[2] for i in range(n))
              for j in range(4) for c in FFN_COLUMN}
    right = {}
    for c2, c3 in product(FFN_COLUMN, repeat=2):
        a, b = column[2, c2], column[3, c3]
        right.setdefault(tuple("=" if a[i] == b[i] else (a[i], b[i]) for i in range(n)), []).append((c2, c3))
    found = []
    for c0, c1 in product(FFN_COLUMN, repeat=2):
        a, b = column[0, c0], column[1, c1]
        for key in product(*[("=",) if a[i] == b[i] else ((a[i], b[i]), (b[i], a[i])) for i in range(n)]):
            found += [(c0, c1, c2, c3) for c2, c3 in right.get(key, ())]
    return found


def test_the_search_matches_a_plain_search_in_order():
    rng = random.Random(5)
    for _ in range(120):
        n = rng.choice([2, 3])
        h1 = [[rng.randint(-3, 3) for _ in range(4)] for _ in range(n)]
        r = [[rng.choice([0, 0, 1, 2, 3, 5]) for _ in range(2)] for _ in range(n)]
        assert paired_columns(h1, r, FFN_COLUMN) == _plain(h1, r), (h1, r)


def test_every_row_found_is_two_pairs():
    """Each choice gives rows {a, a, b, b} (or one repeated value): LayerNorm's x̂ is ±1 where a ≠ b."""
    rng = random.Random(6)
    checked = 0
    for _ in range(40):
        h1 = [[rng.randint(-3, 3) for _ in range(4)] for _ in range(3)]
        r = [[rng.randint(0, 3) for _ in range(2)] for _ in range(3)]
        for chosen in paired_columns(h1, r, FFN_COLUMN)[:50]:
            for i in range(3):
                row = sorted(h1[i][j] + r[i][0] * c[0] + r[i][1] * c[1] + c[2] for j, c in enumerate(chosen))
                assert row[0] == row[1] and row[2] == row[3], (h1, r, chosen)
                checked += 1
                if row[0] != row[3] and row[3] - row[0] != 2 and row[0] + row[3] != 0:
                    assert paired_row(row)
    assert checked > 100
