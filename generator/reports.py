"""Reports of a marking run: marks per student (CSV), every blank (CSV), a class summary and per-student feedback."""

from __future__ import annotations

import csv
import io
import statistics
from collections import Counter
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from pathlib import Path

from .files import atomic_write
from .marking import FOLLOW_THROUGH, RIGHT, UNREDUCED, StudentMark
from .markrun import Run
from .roster import Student

MARKS, DETAILS, SUMMARY, ISSUES, FEEDBACK_DIR = "marks.csv", "details.csv", "summary.txt", "issues.txt", "feedback"
TOP_WRONG = 10
BINS = 10  # score distribution in tenths of the total


class ReportExists(FileExistsError):
    """A report would be overwritten; the message names it and the flag that allows it."""


def points_text(value: Fraction) -> str:
    """Points as a teacher reads them: whole, or to 2 decimal places (exact fractions round half up)."""
    if value.denominator == 1:
        return str(value.numerator)
    text = str((Decimal(value.numerator) / Decimal(value.denominator)).quantize(Decimal("0.01"), ROUND_HALF_UP))
    return text.rstrip("0").rstrip(".")


def percent(student: StudentMark) -> str:
    return points_text(100 * student.score / student.out_of) if student.out_of else "0"


def marks_csv(run: Run) -> str:
    """One row per student: id, name, variant, score, out of, percent, then the points of every blank."""
    labels: list[str] = []
    seen = set()
    for student in run.students:
        for mark in student.marks:
            if mark.blank.label not in seen:
                seen.add(mark.blank.label)
                labels.append(mark.blank.label)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["student_id", "name", "variant", "score", "out_of", "percent"] + labels)
    for student in run.students:
        points = {m.blank.label: points_text(m.points) for m in student.marks}
        writer.writerow([student.student_id, student.name, student.key.variant, points_text(student.score),
                         points_text(student.out_of), percent(student)] + [points.get(label, "") for label in labels])
    return out.getvalue()


def details_csv(run: Run) -> str:
    """One row per student and blank: the answer, the verdict, the points and the reason or mistake."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["student_id", "variant", "blank", "answer", "status", "points", "out_of", "expected", "note"])
    for student in run.students:
        for m in student.marks:
            writer.writerow([student.student_id, student.key.variant, m.blank.label, _printable(m.answer or ""), m.status,
                             points_text(m.points), points_text(m.blank.points), m.blank.text, m.note])
    return out.getvalue()


def _printable(text: str) -> str:
    """An answer as it can be shown: control characters as '?', at most 60 characters."""
    shown = "".join(ch if ch.isprintable() else "?" for ch in text)
    return shown if len(shown) <= 60 else shown[:59] + "…"


def summary_text(run: Run, title: str) -> str:
    """The class at a glance: how many were marked, the score distribution and the blanks most often wrong."""
    lines = [f"Marking summary: {title}", ""]
    students = run.students
    lines.append(f"students marked: {len(students)}" + (f"; no answers from {len(run.absent)}: "
                                                         f"{', '.join(run.absent[:20])}{' …' if len(run.absent) > 20 else ''}"
                                                         if run.absent else ""))
    if run.unmarked:
        lines.append(f"not marked (see {ISSUES}): {', '.join(run.unmarked[:20])}{' …' if len(run.unmarked) > 20 else ''}")
    lines.append(f"input problems: {len(run.issues)} (see {ISSUES})")
    if students:
        scores = [100 * s.score / s.out_of if s.out_of else Fraction(0) for s in students]
        lines += ["", "scores (percent of the total):",
                  f"  mean {points_text(sum(scores, Fraction(0)) / len(scores))}, median {points_text(Fraction(statistics.median(scores)))}, "
                  f"lowest {points_text(min(scores))}, highest {points_text(max(scores))}", "", "distribution:"]
        counts = Counter(min(BINS - 1, int(score * BINS // 100)) for score in scores)
        widest = max(counts.values())
        for b in range(BINS):
            low, high = 100 * b // BINS, 100 * (b + 1) // BINS
            bar = "#" * round(40 * counts[b] / widest) if counts[b] else ""
            lines.append(f"  {low:>3}–{high:>3}% {counts[b]:>5}  {bar}")
        wrong: Counter = Counter()
        named: dict[str, Counter] = {}
        answered: Counter = Counter()
        for s in students:
            for m in s.marks:
                answered[m.blank.label] += 1
                if m.status not in (RIGHT, UNREDUCED, FOLLOW_THROUGH):
                    wrong[m.blank.label] += 1
                    if m.note and m.status == "wrong":
                        named.setdefault(m.blank.label, Counter())[m.note] += 1
        lines += ["", f"blanks most often wrong (of {len(students)} students):"]
        for label, count in sorted(wrong.items(), key=lambda item: (-item[1], item[0]))[:TOP_WRONG]:
            common = named.get(label)
            note = f"  most common: {common.most_common(1)[0][0]} ({common.most_common(1)[0][1]})" if common else ""
            lines.append(f"  {label:<20} {count:>5} wrong{note}")
        mistakes = Counter(m.note for s in students for m in s.marks if m.status == "wrong" and m.note)
        if mistakes:
            lines += ["", "named mistakes (blanks):"] + [f"  {count:>5}  {note}" for note, count in mistakes.most_common()]
        follow = sum(1 for s in students for m in s.marks if m.status == FOLLOW_THROUGH)
        lines += ["", f"blanks given follow-through credit: {follow}"]
    return "\n".join(lines) + "\n"


def feedback_text(student: StudentMark, title: str) -> str:
    """One student's feedback: the score, then every blank that was not simply right, with the reason."""
    lines = [f"{title}", f"Student: {student.student_id}" + (f" ({student.name})" if student.name else ""),
             f"Variant: {student.key.variant}",
             f"Score: {points_text(student.score)} of {points_text(student.out_of)} ({percent(student)}%)", ""]
    right = sum(1 for m in student.marks if m.status == RIGHT)
    lines.append(f"{right} of {len(student.marks)} blanks right.")
    for m in student.marks:
        if m.status == RIGHT:
            continue
        answer = f"you wrote {_printable(m.answer)!s}" if m.answer not in (None, "") else "no answer"
        detail = f"; {m.note}" if m.note else ""
        expected = f"; the key: {m.blank.text}" if m.status not in (FOLLOW_THROUGH,) else ""
        lines.append(f"  {m.blank.label}: {m.status} ({points_text(m.points)} of {points_text(m.blank.points)}): "
                     f"{answer}{detail}{expected}")
    return "\n".join(lines) + "\n"


def issues_text(run: Run) -> str:
    return "".join(f"{issue}\n" for issue in run.issues)


def report_files(run: Run, title: str) -> dict[str, str]:
    """Every report file's relative path and text."""
    files = {MARKS: marks_csv(run), DETAILS: details_csv(run), SUMMARY: summary_text(run, title), ISSUES: issues_text(run)}
    for student in run.students:
        stem = Student(student.student_id, "", 0, 0).stem  # the class set's safe file name for the id
        files[f"{FEEDBACK_DIR}/{stem}.txt"] = feedback_text(student, title)
    return files


def write_reports(files: dict[str, str], folder: Path, force: bool = False) -> list[Path]:
    """Write the reports; refuse (before writing anything) when one exists and force is not set."""
    folder = Path(folder)
    paths = {name: folder / name for name in files}
    if not force:
        existing = [p for p in paths.values() if p.exists()]
        if existing:
            raise ReportExists(f"report '{existing[0]}' already exists; pass --force to replace it, or choose --out")
    for name, path in paths.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, files[name].encode("utf-8"))
    return list(paths.values())
