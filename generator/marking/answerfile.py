"""Answers files (CSV: student_id, variant, blank, answer) read row by row, and the fill-in file written for a key."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from generator.csvfile import TableReader, csv_text
from generator.marking.answers import MAX_READ
from generator.marking.markkey import answer_forms, part_decimals
from generator.classes.roster import column_key

MAX_FILE_BYTES = 16 * 2**20  # a class of 1,000 students with 100 blanks each is about 5 MB
MAX_CELL = MAX_READ  # longer cells are cut (the answer is refused as too long anyway)
# Header names accepted for each column, compared without case, spaces, '_' or '-'.
COLUMNS = {
    "student": ("studentid", "id", "student", "studentnumber"),
    "variant": ("variant", "variantcode"),
    "blank": ("blank", "label", "blanklabel"),
    "answer": ("answer", "value", "response"),
}
FILL_IN_HEADER = ("student_id", "variant", "blank", "answer", "hint")
_LABEL_START = re.compile(r".*\[\d+$")
_LABEL_END = re.compile(r"\d+\].*")


@dataclass(frozen=True)
class Row:
    """One answer as written: who, which variant, which blank, what, and where it came from."""

    file: str
    row: int
    student_id: str
    variant: str
    label: str
    answer: str


@dataclass(frozen=True)
class Issue:
    """A problem with the input, for the report: file, row (0 for the whole file), student, reason."""

    file: str
    row: int
    reason: str
    student_id: str = ""

    def __str__(self) -> str:
        where = f"{self.file}:{self.row}" if self.row else self.file
        return f"{where}: {self.reason}"


def read_answers(path: Path) -> tuple[list[Row], list[Issue]]:
    """Every readable row of an answers file, and an Issue for every row (or the whole file) that is not."""
    name = str(path)
    try:
        size = Path(path).stat().st_size
        if size > MAX_FILE_BYTES:
            return [], [Issue(name, 0, f"the file is {size} bytes; accepted: at most {MAX_FILE_BYTES}")]
        raw = Path(path).read_bytes()
    except OSError as error:
        return [], [Issue(name, 0, f"cannot read the file: {error.strerror or error}")]
    if not raw.strip():
        return [], [Issue(name, 0, "the file is empty; accepted: a CSV file with a header (student_id,variant,blank,answer)")]
    head = raw[:4096]
    if head.count(b"\0") * 100 > len(head):
        # Many NUL bytes: an image, a spreadsheet's own format, or UTF-16 text; a stray NUL in a cell is the answer's problem.
        return [], [Issue(name, 0, "a binary file (it contains NUL bytes); accepted: a CSV text file saved as UTF-8")]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        # error.object is the text after a byte-order mark, if any (error.start counts from there, not from raw).
        row = error.object[:error.start].count(b"\n") + 1
        return [], [Issue(name, row, f"not UTF-8 text (byte 0x{error.object[error.start]:02x}); "
                          "save the file as CSV UTF-8")]
    return parse_answers(text, name)


def parse_answers(text: str, name: str) -> tuple[list[Row], list[Issue]]:
    """Rows from the text of an answers file: a header, then one answer per row."""
    reader = TableReader(text)
    rows: list[Row] = []
    issues: list[Issue] = []
    limit = csv.field_size_limit()
    csv.field_size_limit(max(limit, MAX_FILE_BYTES))  # one huge cell is refused as an answer, not as a file
    try:
        header = None
        while header is None:
            cells = next(reader, None)
            if cells is None:
                return [], [Issue(name, 0, "no header row; accepted: student_id,variant,blank,answer")]
            if any(c.strip() for c in cells):
                header = cells
        keys = [column_key(c) for c in header]
        columns = {}
        for column, accepted in COLUMNS.items():
            found = next((keys.index(a) for a in accepted if a in keys), None)
            if found is None:
                return [], [Issue(name, reader.line_num, f"no {column} column in the header (found: "
                                  f"{', '.join(repr(c.strip()[:20]) for c in header)}); accepted: "
                                  "student_id,variant,blank,answer")]
            columns[column] = found
        student = variant = ""
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                break
            except csv.Error as error:
                issues.append(Issue(name, reader.line_num, f"not readable as CSV ({error})"))
                continue
            line = reader.line_num
            if not any(c.strip() for c in cells):
                continue
            cells = _repair(cells, len(header), columns)
            if cells is None:
                issues.append(Issue(name, line, "more cells than the header has columns; put a value that contains "
                                    "a comma in double quotes (\"0,75\")"))
                continue
            # An answer keeps one character more than MAX_CELL: cut, it stays longer than MAX_READ ("more than").
            get = {column: (cells[i] if i < len(cells) else "")[:MAX_CELL + (column == "answer")]
                   for column, i in columns.items()}
            # An empty student id or variant repeats the one above, as a filled-in sheet writes them once.
            student = get["student"].strip() or student
            variant = get["variant"].strip() or variant
            label = " ".join(get["blank"].split())
            if not student:
                issues.append(Issue(name, line, "no student id (in this row or above)"))
                continue
            if not label:
                issues.append(Issue(name, line, "the blank label is empty", student))
                continue
            rows.append(Row(name, line, student, variant, label, get["answer"]))
    finally:
        csv.field_size_limit(limit)
    if not rows and not issues:
        issues.append(Issue(name, 0, "a header but no answers"))
    return rows, issues


def _repair(cells: list[str], width: int, columns: dict[str, int]) -> list[str] | None:
    """A row with more cells than the header, mended where it is unambiguous: an unquoted label such as
    1a C[0,1], and an unquoted decimal comma in a last answer column."""
    cells = list(cells)
    b = columns["blank"]
    if len(cells) > width and b + 1 < len(cells) and _LABEL_START.fullmatch(cells[b]) and _LABEL_END.fullmatch(cells[b + 1]):
        cells[b:b + 2] = [cells[b] + "," + cells[b + 1]]
    a = columns["answer"]
    if len(cells) > width and a == width - 1:
        cells[a:] = [",".join(cells[a:])]
    return cells if len(cells) <= width else None


def fill_in_text(key_data: dict, student_id: str = "", header: bool = True) -> str:
    """The fill-in file of one key: a row per blank, labelled as printed, the variant filled in, answers empty."""
    rows = [FILL_IN_HEADER] if header else []
    for problem in key_data["problems"]:
        decimals = _decimal_parts(problem)
        forms_of = answer_forms(problem["type"], tuple(sorted(problem["options"].items())))
        for blank in problem["blanks"]:
            forms = forms_of.get(blank["name"], frozenset())
            if blank["kind"] == "choice":
                hint = "one of: " + " | ".join(blank["choices"])
            elif blank["part"] in decimals:
                hint = "4 decimal places (or an exact form)"
            elif "in full" in forms:
                hint = "exact: a decimal written in full, such as -0.029549 (or a fraction)"
            elif "irrational" in forms:  # by the type and options, never this variant's value
                hint = "exact: a number or an expression such as ln(4)/2 or sqrt(2), no decimals"
            else:
                hint = "exact: whole number or fraction such as -3/4"
            if "masked" in forms:
                hint += "; -oo for a masked entry"
            rows.append((student_id, key_data["variant"], blank["label"], "", hint))
    return csv_text(rows)


def _decimal_parts(problem: dict) -> set[str]:
    flags = part_decimals(problem["type"], tuple(sorted(problem["options"].items())))
    return {letter for letter, flag in flags.items() if flag}
