"""A class set: one variant per student, from the assignment seed and the student's id alone."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass

from . import __version__
from .assignment import Assignment
from .problem import Tex
from .qr import payload, qr_tex, spec_text
from .render import environment, escape_tex, user_text_tex
from .roster import Student
from .sheet import MAX_SEED, build, key_data, render_key, render_worksheet

SEED_DERIVATION = "transformer-worksheets/student-seed/v1"
QR_WIDTH_MM = 26
GRADING_COLUMNS = 4
CLASS_FORMAT = "transformer-worksheets/class"


def student_seed(assignment_seed: int, student_id: str, reroll: int = 0) -> int:
    """A student's sheet seed: SHA-256 of the assignment seed, the re-roll number and the id, nothing else.

    So a sheet does not depend on the roster's order or on who else is in the class, and can be
    rebuilt alone, later, byte for byte."""
    text = f"{SEED_DERIVATION}\n{assignment_seed}\n{reroll}\n{student_id}"
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big") & MAX_SEED


@dataclass(frozen=True)
class StudentHeader:
    """What a student's worksheet or key prints beyond the problems (the templates' `student`)."""

    name: Tex
    id: Tex
    course_line: Tex
    head_left: Tex
    head_right: Tex
    point_labels: tuple[str, ...]
    total_label: str
    qr: Tex
    qr_width: str
    key: bool


@dataclass(frozen=True)
class StudentSheet:
    """One student's documents, rendered: the worksheet and key .tex, the JSON key, and what the class needs."""

    student: Student
    seed: int
    variant: str
    qr_text: str
    worksheet: str
    key: str
    json: str
    grading_rows: tuple[Tex, ...]
    givens: tuple[str, ...]  # each problem's given values, as canonical text (to find students who share numbers)


def _points_label(points: int) -> str:
    return f"({points} point{'' if points == 1 else 's'})"


def course_line(assignment: Assignment) -> Tex:
    """The course and the date as one header line (either may be empty)."""
    return Tex(r"\enspace\textbullet\enspace ".join(escape_tex(t) for t in (assignment.course, assignment.date) if t))


def student_sheet(assignment: Assignment, student: Student) -> StudentSheet:
    """Generate and render one student's sheet, key and JSON key (depends on nothing but these two)."""
    seed = student_seed(assignment.seed, student.id, student.reroll)
    sheet = build(assignment.sheet_spec(seed))
    qr_text = payload(assignment.name, seed, sheet.variant, assignment.problems)
    ident = user_text_tex(student.id)
    total = sum(assignment.points)
    common = {
        "name": user_text_tex(student.name), "id": ident, "course_line": course_line(assignment),
        "head_right": Tex(f"ID {ident}\\quad Variant \\texttt{{{sheet.variant}}}"),
        "point_labels": tuple(_points_label(p) for p in assignment.points),
        "total_label": f"Total: {total} point{'' if total == 1 else 's'}",
        "qr": qr_tex(qr_text, QR_WIDTH_MM), "qr_width": f"{QR_WIDTH_MM}mm",
    }
    title = escape_tex(assignment.title)
    worksheet = render_worksheet(sheet, StudentHeader(head_left=Tex(title), key=False, **common))
    key = render_key(sheet, StudentHeader(head_left=Tex(f"{title} --- answer key"), key=True, **common))
    data = key_data(sheet)
    data["assignment"] = {"name": assignment.name, "title": assignment.title, "course": assignment.course,
                          "date": assignment.date, "seed": assignment.seed}
    data["student"] = {"id": student.id, "name": student.name, "reroll": student.reroll}
    data["points"] = list(assignment.points)
    data["qr"] = qr_text
    return StudentSheet(
        student=student, seed=seed, variant=sheet.variant, qr_text=qr_text, worksheet=worksheet, key=key,
        json=json.dumps(data, indent=2, ensure_ascii=False) + "\n",
        grading_rows=_grading_rows(data["problems"]),
        givens=tuple(json.dumps(p["given"], sort_keys=True) for p in data["problems"]),
    )


def _grading_rows(problems: list[dict]) -> tuple[Tex, ...]:
    """Every blank as 'label & answer', filled down GRADING_COLUMNS columns, one tabular row per line."""
    cells = []
    for problem in problems:
        for blank in problem["blanks"]:
            value = blank["value"]
            if blank["kind"] == "number" and not blank["rational"]:
                value = f"{value} = {blank['decimal']}"
            cells.append(f"\\texttt{{{escape_tex(blank['label'])}}} & \\textbf{{{escape_tex(value)}}}")
    height = -(-len(cells) // GRADING_COLUMNS)
    rows = []
    for r in range(height):
        line = [cells[c * height + r] if c * height + r < len(cells) else "&" for c in range(GRADING_COLUMNS)]
        rows.append(Tex(" & ".join(line)))
    return tuple(rows)


# ----- class documents --------------------------------------------------------------------------


def split_document(text: str) -> tuple[str, str]:
    """A standalone document's preamble and its body (what lies between \\begin{document} and \\end{document})."""
    preamble, begin, rest = text.partition("\\begin{document}\n")
    body, end, _ = rest.rpartition("\\end{document}")
    if not begin or not end:
        raise ValueError("not a standalone LaTeX document")
    return preamble, body


def class_document(documents: Iterable[str]) -> str:
    """Standalone student documents (one shared preamble) joined into one, each student from an odd page."""
    preambles, bodies = set(), []
    for text in documents:
        preamble, body = split_document(text)
        preambles.add(preamble)
        bodies.append(Tex(body))
    if len(preambles) != 1:
        raise ValueError("the students' documents do not share one preamble")
    return environment().get_template("class.tex.j2").render(preamble=Tex(preambles.pop()), bodies=bodies)


def grading_document(assignment: Assignment, sheets: Iterable[StudentSheet]) -> str:
    """One compact block per variant: the student, the variant code, and every blank's answer."""
    variants = [
        {"name": user_text_tex(s.student.name), "id": user_text_tex(s.student.id), "variant": s.variant,
         "rows": s.grading_rows, "columns": range(GRADING_COLUMNS)}
        for s in sheets
    ]
    return environment().get_template("grading.tex.j2").render(
        title=assignment.title, course_line=course_line(assignment), paper=assignment.paper, variants=variants)


def shared_numbers(sheets: list[StudentSheet]) -> list[tuple[int, list[str]]]:
    """Problems whose given values two or more students share: (problem number, the ids that share them)."""
    found = []
    for number in range(1, len(sheets[0].givens) + 1 if sheets else 1):
        groups: dict[str, list[str]] = {}
        for s in sheets:
            groups.setdefault(s.givens[number - 1], []).append(s.student.id)
        for ids in groups.values():
            if len(ids) > 1:
                found.append((number, ids))
    return found


def manifest(assignment: Assignment, sheets: list[StudentSheet]) -> str:
    """The class at a glance, for machines: the assignment, and every student's seed, variant and files."""
    data = {
        "format": CLASS_FORMAT,
        "format_version": 1,
        "generator_version": __version__,
        "assignment": {
            "name": assignment.name, "title": assignment.title, "course": assignment.course, "date": assignment.date,
            "seed": assignment.seed, "paper": assignment.paper, "calculator": assignment.calculator,
            "problems": [spec_text(p) for p in assignment.problems], "points": list(assignment.points),
        },
        "students": [
            {"id": s.student.id, "name": s.student.name, "reroll": s.student.reroll, "seed": s.seed,
             "variant": s.variant, "stem": s.student.stem}
            for s in sheets
        ],
    }
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
