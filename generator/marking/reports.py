"""Reports of a marking run: marks per student (CSV), every blank (CSV), a class summary and per-student feedback."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from pathlib import Path

from generator.marking import exactnum as xn
from generator.csvfile import csv_text
from generator.files import atomic_write
from generator.marking.markkey import BlankKey
from generator.marking.marker import (DUPLICATED, FOLLOW_THROUGH, MISSING, RIGHT, UNANSWERED, UNREADABLE, UNREDUCED, WRONG, BlankMark,
                      StudentMark)
from generator.marking.markrun import Run
from generator.core.readings import format_places, round_places
from generator.classes.roster import Student

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


def apportion(values: list[Fraction], total: int) -> list[int]:
    """Whole numbers adding up to total, each value rounded down or up: largest remainders up, ties to the earlier."""
    shares = [value.__floor__() for value in values]
    order = sorted(range(len(values)), key=lambda i: (shares[i] - values[i], i))
    for i in order[:total - sum(shares)]:
        shares[i] += 1
    return shares


@dataclass(frozen=True)
class Printed:
    """A student's points as printed, in cents that add up: the blanks to their problem, the problems to the total."""

    total: str
    problems: dict[int, str]
    blanks: dict[str, str]


def printed_points(marks: list[BlankMark], worth: Callable[[BlankMark], Fraction]) -> Printed:
    """worth(mark) per blank, per problem and in total, in cents: the total rounded half up, then apportioned down."""
    by_problem: dict[int, list[BlankMark]] = {}
    for mark in marks:
        by_problem.setdefault(mark.blank.problem, []).append(mark)
    exact = {number: [100 * worth(m) for m in group] for number, group in by_problem.items()}
    sums = [sum(values, Fraction(0)) for values in exact.values()]
    total = (sum(sums, Fraction(0)) + Fraction(1, 2)).__floor__()
    problems = dict(zip(exact, apportion(sums, total)))
    blanks = {}
    for number, group in by_problem.items():
        blanks.update(zip((m.blank.label for m in group), apportion(exact[number], problems[number])))
    return Printed(_cents(total), {n: _cents(c) for n, c in problems.items()},
                   {label: _cents(c) for label, c in blanks.items()})


def _cents(cents: int) -> str:
    return points_text(Fraction(cents, 100))


def expected_text(blank: BlankKey) -> str:
    """The key's value as the sheet asks for it: a 4-place blank's table value (else its value rounded to 4 places)."""
    if not blank.decimals or blank.kind != "number" or xn.is_neg_inf(blank.number):
        return blank.text
    if blank.table_value:
        return blank.table_value
    value = blank.number
    if not isinstance(value, Fraction):  # a 40-digit mpmath value: man·2^exp exactly, with its sign
        value = Fraction(value.man) * Fraction(2) ** value.exp * (-1 if value < 0 else 1)
    return format_places(round_places(value))


def _problem_numbers(run: Run) -> list[int]:
    return sorted({m.blank.problem for student in run.students for m in student.marks})


def marks_csv(run: Run) -> str:
    """One row per student: id, name, variant, score, out of, percent, each problem's points, then each blank's."""
    labels: list[str] = []
    seen = set()
    for student in run.students:
        for mark in student.marks:
            if mark.blank.label not in seen:
                seen.add(mark.blank.label)
                labels.append(mark.blank.label)
    numbers = _problem_numbers(run)
    header = ["student_id", "name", "variant", "score", "out_of", "percent"]
    rows = [header + [f"problem {n}" for n in numbers] + labels]
    for student in run.students:
        earned = printed_points(student.marks, lambda m: m.points)
        out_of = printed_points(student.marks, lambda m: m.blank.points).total
        rows.append([student.student_id, student.name, student.key.variant, earned.total, out_of, percent(student)]
                    + [earned.problems.get(n, "") for n in numbers]
                    + [earned.blanks.get(label, "") for label in labels])
    return csv_text(rows)


def details_csv(run: Run) -> str:
    """One row per student and blank: the answer, the verdict, the points and the reason or mistake."""
    rows = [["student_id", "variant", "blank", "answer", "status", "points", "out_of", "expected", "note"]]
    for student in run.students:
        earned = printed_points(student.marks, lambda m: m.points)
        full = printed_points(student.marks, lambda m: m.blank.points)
        for m in student.marks:
            label = m.blank.label
            rows.append([student.student_id, student.key.variant, label, _printable(m.answer or ""), m.status,
                         earned.blanks[label], full.blanks[label], expected_text(m.blank), m.note])
    return csv_text(rows)


def _printable(text: str) -> str:
    """An answer as it can be shown: control characters as '?', at most 60 characters."""
    shown = "".join(ch if ch.isprintable() else "?" for ch in text)
    return shown if len(shown) <= 60 else shown[:59] + "…"


# What each status counts as in the reports: "wrong" is a value written and marked wrong, never an empty blank.
OUTCOMES = {RIGHT: "right", UNREDUCED: "part credit", FOLLOW_THROUGH: "part credit", WRONG: "wrong",
            UNANSWERED: "not answered", MISSING: "not answered", UNREADABLE: "unreadable", DUPLICATED: "unreadable"}
OUTCOME_ORDER = ("right", "part credit", "wrong", "not answered", "unreadable")


def _missed(counts: Counter) -> int:
    return counts["wrong"] + counts["not answered"] + counts["unreadable"]


def _outcomes_text(counts: Counter, shown: tuple[str, ...] = OUTCOME_ORDER, all_outcomes: bool = False) -> str:
    """'3 wrong, 1 not answered': the outcomes in shown (those with none left out unless all_outcomes)."""
    return ", ".join(f"{counts[o]} {o}" for o in shown if counts[o] or all_outcomes)


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
        named: dict[str, Counter] = {}
        by_blank: dict[str, Counter] = {}
        for s in students:
            for m in s.marks:
                by_blank.setdefault(m.blank.label, Counter())[OUTCOMES[m.status]] += 1
                if m.note and m.status == WRONG:
                    named.setdefault(m.blank.label, Counter())[m.note] += 1
        overall = sum(by_blank.values(), Counter())
        lines += ["", "blanks: " + _outcomes_text(overall, all_outcomes=True),
                  "", f"blanks most often wrong or not answered (of {len(students)} students):"]
        missed = [(label, counts) for label, counts in by_blank.items() if _missed(counts)]
        missed.sort(key=lambda item: (-item[1]["wrong"], -_missed(item[1]), item[0]))
        for label, counts in missed[:TOP_WRONG]:
            common = named.get(label)
            note = f"  most common: {common.most_common(1)[0][0]} ({common.most_common(1)[0][1]})" if common else ""
            lines.append(f"  {label:<20} {_outcomes_text(counts, ('wrong', 'not answered', 'unreadable'))}{note}")
        mistakes = Counter(m.note for s in students for m in s.marks if m.status == "wrong" and m.note)
        if mistakes:
            lines += ["", "named mistakes (blanks):"] + [f"  {count:>5}  {note}" for note, count in mistakes.most_common()]
        follow = sum(1 for s in students for m in s.marks if m.status == FOLLOW_THROUGH)
        lines += ["", f"blanks given follow-through credit: {follow}"]
    return "\n".join(lines) + "\n"


def feedback_text(student: StudentMark, title: str) -> str:
    """One student's feedback: the score, then every blank that was not simply right, with the reason."""
    earned = printed_points(student.marks, lambda m: m.points)
    full = printed_points(student.marks, lambda m: m.blank.points)
    counts = Counter(OUTCOMES[m.status] for m in student.marks)
    rest = _outcomes_text(counts, OUTCOME_ORDER[1:])
    lines = [f"{title}", f"Student: {student.student_id}" + (f" ({student.name})" if student.name else ""),
             f"Variant: {student.key.variant}",
             f"Score: {earned.total} of {full.total} ({percent(student)}%)", "",
             f"{counts['right']} of {len(student.marks)} blanks right" + (f"; {rest}" if rest else "") + "."]
    for m in student.marks:
        if m.status == RIGHT:
            continue
        label = m.blank.label
        answer = f"you wrote {_printable(m.answer)!s}" if m.answer not in (None, "") else "no answer"
        detail = f"; {m.note}" if m.note else ""
        expected = f"; the key: {expected_text(m.blank)}" if m.status != FOLLOW_THROUGH else ""
        points = f"{earned.blanks[label]} of {full.blanks[label]}"
        lines.append(f"  {label}: {m.status} ({points}): {answer}{detail}{expected}")
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
