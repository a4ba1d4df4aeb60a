"""A class set: one variant per student, from the class secret, the assignment and the student's id alone."""

from __future__ import annotations

import hashlib
import itertools
import json
import pickle
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from fractions import Fraction

from sympy import ImmutableMatrix

from generator import __version__
from generator.classes.assignment import Assignment
from generator.core.problem import Choice, Quantity, Tex, matrix_rows
from generator.classes.qr import payload, qr_tex, spec_text, student_link
from generator.classes.names import name_tex
from generator.classes.secret import keyed_digest
from generator.core.readings import answer_interval, answer_reading, format_places
from generator.documents.render import (accepted_places, decimal_tex, entry_tex, environment, escape_tex, number_tex, pdf_string,
                     prose_tex, terminating_decimal, typographic_quotes, user_text_tex)
from generator.classes.roster import Student
from generator.web.codes import access_code
from generator.documents.sheet import (DEFAULT_AUTHOR, MAX_SEED, Sheet, build, exact_string, indented_json, key_data,
                                      part_letter, render_key, render_worksheet, with_checksum)

SEED_DERIVATION = "transformer-worksheets/student-seed/v1"  # open seeds: SHA-256 of public values
SECRET_SEED_DERIVATION = "transformer-worksheets/student-seed/v2"  # the default: an HMAC under the class secret
QR_WIDTH_MM = 26
# The grading sheet puts up to 4 blanks side by side, fewer when the answers are long: a blank takes about
# GRADING_CHAR_PT per character of its label and answer plus GRADING_CELL_PT (gaps, score box), in a table
# GRADING_WIDTH_PT wide (the narrower text width of A4 and Letter at 14 mm margins, 10pt type).
GRADING_COLUMNS = 4
GRADING_CHAR_PT, GRADING_CELL_PT, GRADING_WIDTH_PT = 3.8, 36, 510
CLASS_FORMAT = "transformer-worksheets/class"
CLASS_FORMAT_VERSION = 2  # 2: seeds from the class secret, none in class.json; open_seeds and url


def student_seed(assignment_seed: int, student_id: str, reroll: int = 0) -> int:
    """An open seed (open_seeds = true): SHA-256 of the assignment seed, the re-roll number and the id, nothing else.

    Anyone who knows the assignment seed can rebuild every sheet of the class, so this is for handouts whose keys
    may be rebuilt (and for class folders made before the class secret)."""
    text = f"{SEED_DERIVATION}\n{assignment_seed}\n{reroll}\n{student_id}"
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big") & MAX_SEED


def secret_seed(secret: bytes, assignment: Assignment, student_id: str, reroll: int = 0) -> int:
    """A student's sheet seed: HMAC-SHA256 of the assignment's name and seed, the id and the re-roll number under
    the class secret, as a 63-bit number. Nothing printed on a sheet gives it: rebuilding needs the class folder.

    It does not depend on the roster's order or on who else is in the class: any student's sheet can be rebuilt
    alone from the same folder, later, byte for byte."""
    digest = keyed_digest(secret, SECRET_SEED_DERIVATION, assignment.name, assignment.seed, student_id, reroll)
    return int.from_bytes(digest[:8], "big") & MAX_SEED


def sheet_seed(assignment: Assignment, student: Student, secret: bytes) -> int:
    """The seed of the student's sheet: from the class secret, or the open derivation when the assignment asks."""
    if assignment.open_seeds:
        return student_seed(assignment.seed, student.id, student.reroll)
    return secret_seed(secret, assignment, student.id, student.reroll)


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
    author: str  # the PDF's author: the course, or empty
    access_code: str  # what the student types on the web page (or what the QR code's link carries)
    url: Tex  # the class's web page, printed (empty without a url)
    seed: str  # open seeds only: the sheet's seed, printed so anyone can rebuild it (else empty)


class Spool:
    """Texts kept on disk instead of in memory (a large class's sheets): an unnamed temporary file, gone when
    closed or when the process ends. put() gives a text's place, get() reads it back."""

    def __init__(self) -> None:
        self.file = tempfile.TemporaryFile()
        self.end = 0

    def put(self, text: str | bytes) -> tuple[int, int]:
        data = text.encode("utf-8") if isinstance(text, str) else text
        self.file.seek(self.end)
        self.file.write(data)
        place = (self.end, len(data))
        self.end += len(data)
        return place

    def get(self, place: tuple[int, int]) -> str:
        return self.get_bytes(place).decode("utf-8")

    def get_bytes(self, place: tuple[int, int]) -> bytes:
        self.file.seek(place[0])
        return self.file.read(place[1])

    def grading(self, place: tuple[int, int]) -> tuple["GradingProblem", ...]:
        """Grading rows put as their pickle (StudentSheet.spooled)."""
        return pickle.loads(self.get_bytes(place))  # written by this process

    def close(self) -> None:
        self.file.close()


@dataclass(frozen=True)
class StudentSheet:
    """One student's documents, rendered: the worksheet and key .tex, the JSON key, and what the class needs.

    The three texts and the grading rows are held as they are, or (spooled, `spool` set) as their places in a
    Spool on disk, or in the class folder (studentcache.OnDisk), read back when asked for: a class of thousands
    keeps only the small parts in memory."""

    student: Student
    seed: int  # in memory only: no file the build writes holds it, but the student's key JSON
    variant: str
    qr_text: str
    access_code: str
    texts: tuple  # (worksheet, key, json): strings, or places in `spool`
    grading_rows: tuple  # tuple[GradingProblem, ...], or (spooled) the place of its pickle in `spool`
    givens: tuple[str, ...]  # each problem's given values, as canonical text (to find students who share numbers)
    spool: Spool | None = field(default=None, compare=False, repr=False)
    cache_key: str = field(default="", compare=False, repr=False)  # set: the build keeps its record (studentcache)
    cached: bool = field(default=False, compare=False)  # read back from its record and files, not generated
    written: bool | None = field(default=None, compare=False)  # None: files not written yet; else: whether changed

    def _text(self, index: int) -> str:
        return self.spool.get(self.texts[index]) if self.spool is not None else self.texts[index]

    @property
    def worksheet(self) -> str:
        return self._text(0)

    @property
    def key(self) -> str:
        return self._text(1)

    @property
    def json(self) -> str:
        return self._text(2)

    @property
    def grading(self) -> tuple["GradingProblem", ...]:
        """Each problem's block on the grading sheet."""
        if self.spool is None:
            return self.grading_rows
        return self.spool.grading(self.grading_rows)

    def spooled(self, spool: Spool) -> "StudentSheet":
        """This sheet with its texts and grading rows moved to `spool`."""
        if self.spool is not None:
            return self
        return replace(self, texts=tuple(spool.put(text) for text in self.texts),
                       grading_rows=spool.put(pickle.dumps(self.grading_rows)), spool=spool)


def _points_label(points: int) -> str:
    return f"({points} point{'' if points == 1 else 's'})"


def course_line(assignment: Assignment) -> Tex:
    """The course and the date as one header line (either may be empty)."""
    return Tex(r"\enspace\textbullet\enspace ".join(prose_tex(t) for t in (assignment.course, assignment.date) if t))


def url_tex(url: str) -> Tex:
    """A web address in typewriter type that may break after '/', '.' or '-' (and nowhere else)."""
    return Tex(r"\texttt{" + "".join(escape_tex(ch) + (r"\allowbreak{}" if ch in "/.-" else "") for ch in url) + "}")


def printed_name(name: str, style: str) -> Tex:
    """A student's name as the class documents print it (style "sheet" or "grading"): by pdflatex where it prints
    the name exactly, else the page LuaLaTeX set it on (names.py), with pdflatex's boxed ? as the fallback."""
    text = typographic_quotes(name)
    return name_tex(text, style, user_text_tex(text))


def printed_names(names: Iterable[str]) -> list[tuple[str, str]]:
    """Every (style, name as printed) the class documents show for these roster names, for names.tex."""
    return [(style, typographic_quotes(name)) for name in names for style in ("sheet", "grading")]


def sheet_qr_text(assignment: Assignment, student: Student, variant: str, seed: int, code: str) -> str:
    """The text of the student's QR code: the link with the access code, or the sheet's names (qr.payload)."""
    link = student_link(assignment.url, code) if assignment.url else ""
    if assignment.open_seeds:
        return payload(assignment.name, student.id, variant, link, seed, assignment.problems)
    return payload(assignment.name, student.id, variant, link)


def student_sheet(assignment: Assignment, student: Student, secret: bytes) -> StudentSheet:
    """Generate and render one student's sheet, key and JSON key (depends on nothing but these and the secret)."""
    seed = sheet_seed(assignment, student, secret)
    sheet = build(assignment.sheet_spec(seed))
    code = access_code(secret, assignment.name, student.id)
    qr_text = sheet_qr_text(assignment, student, sheet.variant, seed, code)
    ident = user_text_tex(student.id)
    total = sum(assignment.points)
    common = {
        "name": printed_name(student.name, "sheet"), "id": ident, "course_line": course_line(assignment),
        "head_right": Tex(f"ID {ident}\\quad Variant \\texttt{{{sheet.variant}}}"),
        "point_labels": tuple(_points_label(p) for p in assignment.points),
        "total_label": f"Total: {total} point{'' if total == 1 else 's'}",
        "qr": qr_tex(qr_text, QR_WIDTH_MM), "qr_width": f"{QR_WIDTH_MM}mm", "author": assignment.course,
        "access_code": code, "url": url_tex(assignment.url) if assignment.url else Tex(""),
        "seed": str(seed) if assignment.open_seeds else "",
    }
    title = prose_tex(assignment.title)
    worksheet = render_worksheet(sheet, StudentHeader(head_left=Tex(title), key=False, **common))
    key = render_key(sheet, StudentHeader(head_left=Tex(f"{title} --- answer key"), key=True, **common))
    data = key_data(sheet)
    data["assignment"] = {"name": assignment.name, "title": assignment.title, "course": assignment.course,
                          "date": assignment.date, "seed": assignment.seed}
    data["student"] = {"id": student.id, "name": student.name, "reroll": student.reroll}
    data["points"] = list(assignment.points)
    return StudentSheet(
        student=student, seed=seed, variant=sheet.variant, qr_text=qr_text, access_code=code,
        texts=(worksheet, key, indented_json(with_checksum(data)) + "\n"),
        grading_rows=grading_table(sheet, assignment.points),
        givens=tuple(json.dumps(p["given"], sort_keys=True) for p in data["problems"]),
    )


@dataclass(frozen=True)
class GradingProblem:
    """One problem on the grading sheet: its heading (points, score box), blanks side by side, its table's rows."""

    heading: Tex
    groups: int
    rows: tuple[Tex, ...]


def _points_tex(points: Fraction) -> str:
    return str(points.numerator) if points.denominator == 1 else f"{points.numerator}/{points.denominator}"


def _answer_tex(answer: Quantity, index: tuple[int, int] | None, decimals: bool) -> tuple[str, int]:
    """One blank's answer as the grading sheet prints it, and its length in characters (to fit the columns)."""
    if isinstance(answer.value, Choice):
        label = dict(answer.value.options)[answer.value.value]
        return rf"\textbf{{{escape_tex(label)}}}", len(label)
    value = matrix_rows(answer.value)[index[0]][index[1]] if index is not None else answer.value
    if not value.is_finite:  # a masked score, −∞
        return f"${number_tex(value)}$", 3
    if decimals:  # what the sheet's tables give, and every 4-place value their roundings allow
        reading = answer_reading(answer, index)
        printed, (first, last) = format_places(answer_interval(reading)[0]), accepted_places(reading)
        if first == last == printed:
            return rf"{{\boldmath${printed}$}}", len(printed)
        return rf"{{\boldmath${printed}$}} (${first}$ to ${last}$)", len(printed) + len(first) + len(last) + 7
    if answer.exact_decimal:  # asked as an exact decimal in full: -0.029549, not -29549/1000000
        return rf"{{\boldmath${terminating_decimal(value)}$}}", len(terminating_decimal(value))
    if value.is_Rational:  # as the student writes it: -3/4
        return rf"{{\boldmath${exact_string(value)}$}}", len(exact_string(value))
    return rf"{{\boldmath${number_tex(value)}$}} $\approx {decimal_tex(value)}$", len(exact_string(value)) + 9


def _grading_cells(number: int, letter: str, answer: Quantity, decimals: bool) -> list[tuple[str, int]]:
    """Each blank of one answer as 'label & answer & score box', labelled with the symbol the sheet prints."""
    if isinstance(answer.value, ImmutableMatrix):
        indices = [(i, j) for i in range(answer.value.rows) for j in range(answer.value.cols)]
    else:
        indices = [None]
    cells = []
    for index in indices:
        symbol = entry_tex(answer.symbol, index) if index else answer.symbol
        text, length = _answer_tex(answer, index, decimals)
        cells.append((rf"{number}{letter}\enspace ${symbol}$ & {text} & \scorebox",
                      length + len(f"{number}{letter} {answer.name}[0,0]")))
    return cells


def grading_table(sheet: Sheet, points: tuple[int, ...]) -> tuple[GradingProblem, ...]:
    """Per problem its points and score box, then every blank (printed symbol, answer, score box) in the key's order."""
    problems = []
    for number, (problem, worth) in enumerate(zip(sheet.problems, points), start=1):
        cells = [cell for i, part in enumerate(problem.parts) if not part.shown for answer in part.answers
                 for cell in _grading_cells(number, part_letter(i), answer, part.decimals)]
        each = Fraction(worth, len(cells))  # markkey shares a problem's points equally among its blanks
        heading = Tex(rf"\problemscore{{{number}}}{{{worth}}}{{{'point' if worth == 1 else 'points'}}}"
                      rf"{{{_points_tex(each)}}}")
        # Each problem is its own table: one long answer (a choice's label) widens only its own problem's columns.
        cell_width = max(length for _, length in cells) * GRADING_CHAR_PT + GRADING_CELL_PT
        groups = max(1, min(GRADING_COLUMNS, int(GRADING_WIDTH_PT // cell_width), len(cells)))
        rows = []
        for start in range(0, len(cells), groups):
            line = [text for text, _ in cells[start:start + groups]]
            rows.append(Tex(" & ".join(line + ["& &"] * (groups - len(line)))))
        problems.append(GradingProblem(heading, groups, tuple(rows)))
    return tuple(problems)


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
    return "".join(class_document_parts(documents))


def class_document_parts(documents: Iterable[str]) -> Iterator[str]:
    """class_document in pieces, reading the documents one at a time as the pieces are taken (a large class's
    document is written as it is made, never held whole)."""
    documents = iter(documents)
    first = next(documents, None)
    if first is None:
        raise ValueError("the students' documents do not share one preamble")
    preamble = split_document(first)[0]

    def bodies() -> Iterator[Tex]:
        for text in itertools.chain([first], documents):
            own, body = split_document(text)
            if own != preamble:
                raise ValueError("the students' documents do not share one preamble")
            yield Tex(body)

    return environment().get_template("class.tex.j2").generate(preamble=Tex(preamble), bodies=bodies())


def grading_document(assignment: Assignment, sheets: Iterable[StudentSheet]) -> str:
    """One compact block per variant: the student, the variant code, the total, and every blank's answer."""
    return "".join(grading_document_parts(assignment, sheets))


def grading_document_parts(assignment: Assignment, sheets: Iterable[StudentSheet]) -> Iterator[str]:
    """grading_document in pieces, made as they are taken."""
    total = sum(assignment.points)
    variants = (
        {"name": printed_name(s.student.name, "grading"), "id": user_text_tex(s.student.id),
         "variant": s.variant, "problems": s.grading}
        for s in sheets
    )
    pdf = {"title": pdf_string(typographic_quotes(assignment.title)),
           "author": pdf_string(typographic_quotes(assignment.course or DEFAULT_AUTHOR))}
    return environment().get_template("grading.tex.j2").generate(
        title=prose_tex(assignment.title), course_line=course_line(assignment), paper=assignment.paper,
        variants=variants, total=total, pdf=pdf)


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
    """The class at a glance, for machines: the assignment, and every student's variant and files.

    No seeds and no access codes: the server and `class` recompute them from the class secret."""
    data = {
        "format": CLASS_FORMAT,
        "format_version": CLASS_FORMAT_VERSION,
        "generator_version": __version__,
        "assignment": {
            "name": assignment.name, "title": assignment.title, "course": assignment.course, "date": assignment.date,
            "seed": assignment.seed, "paper": assignment.paper, "calculator": assignment.calculator,
            "problems": [spec_text(p) for p in assignment.problems], "points": list(assignment.points),
            "open_seeds": assignment.open_seeds, "url": assignment.url,
        },
        "students": [
            {"id": s.student.id, "name": s.student.name, "reroll": s.student.reroll, "variant": s.variant,
             "stem": s.student.stem}
            for s in sheets
        ],
    }
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
