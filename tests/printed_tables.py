"""The 4-place tables a worksheet prints, read back from its TeX as a student reads them off the page."""

from __future__ import annotations

import re
from decimal import Decimal
from fractions import Fraction

# Row labels as the templates print them, and the name the generator's readings give each table.
LABELS = {r"e^{k}": "e^k", r"\ln k": "ln k", r"\Phi(x)": "Phi", r"\varphi(x)": "phi"}
_ARRAY = re.compile(r"\\begin\{array\}\{[^}]*\}(.*?)\\end\{array\}", re.S)
_FRACTION = re.compile(r"^(-?)\s*\\frac\{(\d+)\}\{(\d+)\}$")


def key_of(text: str) -> Fraction:
    """A table's header entry: '-2', '\\frac{1}{2}', '- \\frac{3}{2}'."""
    text = text.strip()
    m = _FRACTION.match(text)
    if m:
        return Fraction(int(m.group(2)), int(m.group(3))) * (-1 if m.group(1) else 1)
    return Fraction(text.replace(" ", ""))


def printed_tables(tex: str) -> dict[str, dict[Fraction, Decimal]]:
    """Every e^k, ln k, Φ and φ table in a document: name → {x: printed 4-place value}."""
    tables: dict[str, dict[Fraction, Decimal]] = {}
    for body in _ARRAY.findall(tex):
        rows = [row.replace(r"\hline", "").strip() for row in body.split(r"\\")]
        header = [cell.strip() for cell in rows[0].split("&")]
        if header[0] not in ("k", "x"):
            continue
        keys = [key_of(cell) for cell in header[1:]]
        for row in rows[1:]:
            cells = [cell.strip() for cell in row.split("&")]
            name = LABELS.get(cells[0])
            if name is None:
                continue
            values = dict(zip(keys, (Decimal(cell) for cell in cells[1:])))
            if tables.setdefault(name, values) != values:
                raise AssertionError(f"two different {name} tables on one sheet")
    return tables


def problem_tables(problem) -> dict[str, dict[Fraction, Decimal]]:
    """The tables one problem prints: in its facts, or in a part's Given box or prompt."""
    texts = [v for v in problem.facts.values() if isinstance(v, str)]
    texts += [part.given for part in problem.parts] + [part.prompt for part in problem.parts]
    return printed_tables("\n".join(texts))


def table_lookups(problem) -> set[tuple]:
    """(table, x, value) of every table value the key's 4-place answers were worked from."""
    found = set()
    for part in problem.parts:
        for answer in part.answers:
            reading = answer.reading
            if reading is None:
                continue
            cells = [r for row in reading for r in row] if isinstance(reading, tuple) else [reading]
            for cell in cells:
                found |= cell.entries
    return found


def unprinted_lookups(problem) -> list[tuple]:
    """Table values a key used that its sheet does not print as used (empty when the sheet is answerable)."""
    tables = problem_tables(problem)
    return [(name, key, value) for name, key, value in sorted(table_lookups(problem), key=str)
            if tables.get(name, {}).get(Fraction(key)) != _decimal(value)]


def _decimal(value: Fraction) -> Decimal:
    return Decimal(value.numerator) / Decimal(value.denominator)
