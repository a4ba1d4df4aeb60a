"""A marking run: answers files and keys (one key per variant, or a class folder) in, every student's marks and every input problem out."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from generator.marking.answerfile import Issue, Row, read_answers
from generator.classes.classbuild import MANIFEST, STUDENTS_DIR
from generator.classes.classset import CLASS_FORMAT
from generator.marking.marker import DUPLICATED, UNREADABLE, Cell, Policy, StudentMark, mark_student
from generator.marking.markkey import KeyFileError, SheetKey, load_key

MAX_LISTED = 5  # labels named in one message before "…"


class MarkingError(ValueError):
    """The keys cannot be used at all (no class folder, an unreadable key): one line, nothing marked."""


@dataclass
class Roster:
    """Who may hand in answers, and each one's key: a class folder's students, or anyone for the given keys."""

    keys_by_variant: dict[str, SheetKey] = field(default_factory=dict)
    students: dict[str, dict] = field(default_factory=dict)  # class mode: id → {name, variant, stem}
    folder: Path | None = None
    name: str = ""

    def key_for(self, student_id: str) -> SheetKey:
        """A class student's own key, read on first use."""
        entry = self.students[student_id]
        key = self.keys_by_variant.get(entry["variant"])
        if key is None:
            key = load_key(self.folder / STUDENTS_DIR / f"{entry['stem']}-key.json")
            self.keys_by_variant[key.variant] = key
        return key


def class_roster(folder: Path) -> Roster:
    """The students of a class folder written by `class` (its class.json)."""
    try:
        data = json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))
    except OSError as error:
        raise MarkingError(f"{folder}: not a class folder ({MANIFEST}: {error.strerror or error}); "
                           "pass the folder that `transformer-worksheets class` wrote") from error
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise MarkingError(f"{Path(folder) / MANIFEST}: not readable JSON ({error})") from error
    if data.get("format") != CLASS_FORMAT:
        raise MarkingError(f"{Path(folder) / MANIFEST}: not a class manifest (format is not {CLASS_FORMAT!r})")
    students = {s["id"]: s for s in data["students"]}
    return Roster(students=students, folder=Path(folder), name=data["assignment"]["name"])


def key_roster(paths: list[Path]) -> Roster:
    """Anyone may answer any of these keys; the variant column says which."""
    roster = Roster()
    for path in paths:
        try:
            key = load_key(path)
        except KeyFileError as error:
            raise MarkingError(str(error)) from error
        roster.keys_by_variant[key.variant] = key
    roster.name = Path(paths[0]).name.removesuffix(".json").removesuffix("-key") if paths else "marks"
    return roster


@dataclass
class Run:
    """What a marking run found: every marked student, every input problem, and the class students with no answers."""

    students: list[StudentMark] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)
    unmarked: list[str] = field(default_factory=list)  # answered, but nothing of it could be marked


def mark_files(paths: list[Path], roster: Roster, policy: Policy = Policy()) -> Run:
    """Read every answers file and mark every student who can be marked; the rest become issues."""
    run = Run()
    rows: list[Row] = []
    for path in paths:
        found, issues = read_answers(Path(path))
        rows += found
        run.issues += issues
    by_student: dict[str, list[Row]] = {}
    for row in rows:
        by_student.setdefault(row.student_id, []).append(row)
    for student_id, student_rows in by_student.items():
        marked = _mark_one(student_id, student_rows, roster, policy, run.issues)
        if marked is not None:
            run.students.append(marked)
        else:
            run.unmarked.append(student_id)
    if roster.students:
        order = {sid: i for i, sid in enumerate(roster.students)}
        run.students.sort(key=lambda m: order.get(m.student_id, len(order)))
        run.absent = [sid for sid in roster.students if sid not in by_student]
    return run


def _mark_one(student_id: str, rows: list[Row], roster: Roster, policy: Policy, issues: list[Issue]) -> StudentMark | None:
    first = rows[0]
    if roster.students:
        if student_id not in roster.students:
            issues.append(Issue(first.file, first.row, f"unknown student id {student_id!r} (not in the class); "
                                f"{len(rows)} row(s) not marked", student_id))
            return None
        try:
            key = roster.key_for(student_id)
        except KeyFileError as error:
            issues.append(Issue(first.file, first.row, str(error), student_id))
            return None
        name = roster.students[student_id].get("name", "")
    else:
        variants = {r.variant for r in rows if r.variant}
        if not variants and len(roster.keys_by_variant) == 1:
            variants = set(roster.keys_by_variant)
        known = [v for v in variants if v in roster.keys_by_variant]
        if len(known) != 1:
            accepted = ", ".join(roster.keys_by_variant)
            reason = (f"answers for variant {', '.join(sorted(variants))}, for which no key was given" if not known
                      else f"answers for several variants ({', '.join(sorted(known))})") if variants else "no variant"
            issues.append(Issue(first.file, first.row, f"student {student_id!r}: {reason}; accepted: {accepted}; "
                                "not marked", student_id))
            return None
        key = roster.keys_by_variant[known[0]]
        name = ""
    cells: dict[str, Cell] = {}
    labels = {b.label for b in key.blanks}
    other_variant: list[Row] = []
    for row in rows:
        if row.variant and row.variant != key.variant:
            other_variant.append(row)
            continue
        if row.label not in labels:
            issues.append(Issue(row.file, row.row, f"student {student_id!r}: no blank labelled {row.label[:40]!r} on "
                                f"variant {key.variant}; row ignored", student_id))
            continue
        old = cells.get(row.label)
        if old is not None:
            cells[row.label] = Cell(old.text, old.file, old.row, old.duplicate_rows + (row.row,))
        else:
            cells[row.label] = Cell(row.answer, row.file, row.row)
    if other_variant:
        wrong = other_variant[0]
        issues.append(Issue(wrong.file, wrong.row, f"student {student_id!r}: {len(other_variant)} row(s) answer variant "
                            f"{wrong.variant!r}, but this student's key is variant {key.variant}; those rows ignored",
                            student_id))
    if not cells:
        return None
    marked = mark_student(key, cells, student_id, name, policy)
    missing = [m.blank.label for m in marked.marks if m.answer is None]
    if missing:
        listed = ", ".join(missing[:MAX_LISTED]) + (", …" if len(missing) > MAX_LISTED else "")
        issues.append(Issue(first.file, 0, f"student {student_id!r}: {len(missing)} blank(s) have no row ({listed}); "
                            "marked as not answered", student_id))
    for mark in marked.marks:
        cell = cells.get(mark.blank.label)
        if mark.status == UNREADABLE:
            issues.append(Issue(cell.file, cell.row, f"student {student_id!r}: {mark.blank.label}: cannot read "
                                f"{mark.answer[:30]!r}: {mark.note}", student_id))
        elif mark.status == DUPLICATED:
            issues.append(Issue(cell.file, cell.row, f"student {student_id!r}: {mark.blank.label} is {mark.note}; "
                                "not marked", student_id))
    return marked
