"""CSV as spreadsheets save and open it: one reader for answers files and rosters, one writer for every CSV written."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable

SEPARATORS = (",", ";", "\t")  # comma first: it wins a tie, and a header with no separator is one column
# A cell starting with one of these is a formula to a spreadsheet (OWASP, "CSV injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
QUOTE = "'"


def safe_cell(value: object) -> str:
    """A cell a spreadsheet shows as text and never runs: formula-like text gets a leading ' (plain numbers stay)."""
    text = str(value)
    # -3/4 or -log(2) would be worked out (or run), so it is text too: the cell shows what was written.
    if text.startswith(FORMULA_START) and not _PLAIN_NUMBER.fullmatch(text):
        return QUOTE + text
    return text


def csv_text(rows: Iterable[Iterable[object]]) -> str:
    """Rows as CSV text (comma separated, LF line ends), every cell made safe by safe_cell."""
    out = io.StringIO()
    # With "\r\n" as its line end the writer quotes a cell holding a lone CR too (with "\n" it would not, and a
    # reader would break the row there); each row then ends in LF alone.
    writer = csv.writer(out, lineterminator="\r\n")
    lines = []
    for row in rows:
        out.seek(0)
        out.truncate()
        writer.writerow([safe_cell(cell) for cell in row])
        lines.append(out.getvalue()[:-2] + "\n")
    return "".join(lines)


def separator(text: str) -> str:
    """The separator a table uses: the one its header (first non-blank line) holds most, a comma on a tie."""
    header = next((line for line in text.splitlines() if line.strip()), "")
    return max(SEPARATORS, key=header.count)


class TableReader:
    """A CSV table's rows (comma, semicolon or tab separated) without trailing empty cells or safe_cell's quote."""

    def __init__(self, text: str) -> None:
        self._rows = csv.reader(io.StringIO(text, newline=""), delimiter=separator(text))

    @property
    def line_num(self) -> int:
        """The line the last row ended on, as csv.reader's."""
        return self._rows.line_num

    def __iter__(self) -> TableReader:
        return self

    def __next__(self) -> list[str]:
        cells = [_as_written(cell) for cell in next(self._rows)]
        # A spreadsheet saves a separator after every line's last cell: the empty cell it makes is no column.
        while cells and not cells[-1].strip():
            cells.pop()
        return cells


def _as_written(cell: str) -> str:
    """A cell without the quote safe_cell put before a formula-like start."""
    return cell[1:] if cell.startswith(QUOTE) and cell[1:].startswith(FORMULA_START) else cell
