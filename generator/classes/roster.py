"""A class roster (CSV with a header): each student's id, name and optional re-roll number."""

from __future__ import annotations

import csv
import hashlib
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from generator.csvfile import TableReader
from generator.core.registry import SpecError
from generator.documents.sheet import SAFE_STEM

# Header names accepted for each column, compared without case, spaces, '_' or '-'.
ID_COLUMNS = ("id", "studentid", "studentnumber")
NAME_COLUMNS = ("name", "studentname", "fullname")
REROLL_COLUMN = "reroll"
MAX_ID = 32  # ids print in every page header
MAX_NAME = 1000
MAX_REROLL = 9999


class RosterError(SpecError):
    """The roster cannot be used; the message names the file, the row or column and what is accepted."""


@dataclass(frozen=True)
class Student:
    """One row of the roster: the id (fixes the numbers, with the assignment seed), the name as written, the re-roll."""

    id: str
    name: str
    reroll: int
    row: int  # the line of the CSV file it came from, for messages

    @property
    def stem(self) -> str:
        """The student's file name stem: the id where it is a safe file name, else a safe form plus a hash of it."""
        if SAFE_STEM.fullmatch(self.id):
            return self.id
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", unicodedata.normalize("NFKD", self.id).encode("ascii", "ignore").decode())
        digest = hashlib.sha256(self.id.encode()).hexdigest()[:8]
        return f"{safe.strip('._-')[:20] or 'id'}-{digest}"


def column_key(header: str) -> str:
    return re.sub(r"[\s_-]+", "", header.strip().lower())


def load_roster(path: Path) -> tuple[Student, ...]:
    """Read and check a roster; RosterError names the file and the row."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise RosterError(f"cannot read roster '{path}': {error.strerror or error}") from error
    try:
        text = raw.decode("utf-8-sig")  # Excel writes a byte-order mark; it is not part of the first header
    except UnicodeDecodeError as error:
        # error.object is the text after a byte-order mark, if any (error.start counts from there, not from raw).
        line = error.object[:error.start].count(b"\n") + 1
        raise RosterError(f"{path}: row {line} is not UTF-8 text (byte 0x{error.object[error.start]:02x}); "
                          "save the roster as CSV UTF-8") from error
    return parse_roster(text, path)


def parse_roster(text: str, path: Path) -> tuple[Student, ...]:
    """Check the text of a roster: a header with an id and a name column, then one student per row."""
    if "\0" in text:
        raise RosterError(f"{path}: contains a NUL byte; accepted: a CSV text file with a header row")
    reader = TableReader(text)
    try:
        header = next(reader, None)
        while header is not None and not any(cell.strip() for cell in header):
            header = next(reader, None)  # blank lines before the header
        if header is None:
            raise RosterError(f"{path}: the roster is empty; accepted: a header row (id,name) and one row per student")
        keys = [column_key(cell) for cell in header]
        id_col = _find(keys, ID_COLUMNS, "id", header, path)
        name_col = _find(keys, NAME_COLUMNS, "name", header, path)
        reroll_col = keys.index(REROLL_COLUMN) if REROLL_COLUMN in keys else None
        students: list[Student] = []
        seen: dict[str, int] = {}
        stems: dict[str, Student] = {}
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue  # blank lines (a trailing CRLF, a spreadsheet's empty rows)
            student = _student(row, line, id_col, name_col, reroll_col, path)
            if student.id in seen:
                raise RosterError(f"{path}: row {line}: id {student.id!r} is already used in row {seen[student.id]}; "
                                  "accepted: a different id for every student")
            seen[student.id] = line
            other = stems.get(student.stem.casefold())
            if other is not None:
                raise RosterError(f"{path}: row {line}: id {student.id!r} and id {other.id!r} (row {other.row}) would "
                                  "share a file name; accepted: ids that differ in more than letter case")
            stems[student.stem.casefold()] = student
            students.append(student)
    except csv.Error as error:
        raise RosterError(f"{path}: row {reader.line_num}: not readable as CSV ({error})") from error
    if not students:
        raise RosterError(f"{path}: the roster has a header but no students; accepted: one row per student")
    return tuple(students)


def _find(keys: list[str], accepted: tuple[str, ...], what: str, header: list[str], path: Path) -> int:
    for key in accepted:
        if key in keys:
            return keys.index(key)
    found = ", ".join(repr(cell.strip()) for cell in header)
    raise RosterError(f"{path}: row 1: no {what} column in the header (found: {found}); "
                      f"accepted: a column named {what} or student_{what}")


def _student(row: list[str], line: int, id_col: int, name_col: int, reroll_col: int | None, path: Path) -> Student:
    def cell(index: int | None) -> str:
        return row[index] if index is not None and index < len(row) else ""

    # NFC: the same id typed with a composed or a decomposed accent is the same student, with the same numbers.
    student_id = unicodedata.normalize("NFC", cell(id_col).strip())
    name = cell(name_col).strip()
    if not student_id:
        raise RosterError(f"{path}: row {line}: the id is empty; accepted: 1 to {MAX_ID} characters, unique per student")
    if len(student_id) > MAX_ID:
        raise RosterError(f"{path}: row {line}: the id is {len(student_id)} characters long; accepted: at most {MAX_ID}")
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in student_id):
        raise RosterError(f"{path}: row {line}: the id contains a control character; accepted: printable text")
    if not name:
        raise RosterError(f"{path}: row {line}: the name is empty; accepted: the student's name as it should print")
    if len(name) > MAX_NAME:
        raise RosterError(f"{path}: row {line}: the name is {len(name)} characters long; accepted: at most {MAX_NAME}")
    reroll_text = cell(reroll_col).strip()
    if reroll_text and (not re.fullmatch(r"[0-9]+", reroll_text) or int(reroll_text) > MAX_REROLL):
        raise RosterError(f"{path}: row {line}: reroll {reroll_text!r} is not accepted; "
                          f"accepted: empty (0) or a whole number from 0 to {MAX_REROLL}")
    return Student(student_id, name, int(reroll_text or 0), line)
