"""The marker behind the page: how an input was read, a student's blanks marked, the class's reports."""

from __future__ import annotations

import threading
from fractions import Fraction

from generator.documents.render import number_tex
from generator.marking.answers import ACCEPTED, AnswerError, parse_answer
from generator.marking.followthrough import choice_recipes_for, recipes_for
from generator.marking.markkey import BlankKey, SheetKey
from generator.marking.marker import (DUPLICATED, FOLLOW_THROUGH, MISSING, RIGHT, UNANSWERED, UNREADABLE, UNREDUCED,
                                      WRONG, Cell, StudentMark, mark_student)
from generator.marking.markrun import Run
from generator.marking.reports import details_csv, expected_text, marks_csv, summary_text
# A score as marks.csv prints it: whole, or to 2 decimal places (12.94, not 207/16).
from generator.marking.reports import points_text as total_text

# What the student sees for each verdict (practice mode, or exam mode once marks are released).
VERDICT_WORDS = {RIGHT: "right", UNREDUCED: "right, but not in lowest terms", FOLLOW_THROUGH: "follow-through",
                 WRONG: "wrong", UNANSWERED: "not answered", MISSING: "not answered", UNREADABLE: "cannot be read",
                 DUPLICATED: "cannot be read"}


def reading(blank: BlankKey | None, text: str) -> dict:
    """How the marker's own parser reads one input: {"ok": True, "tex": …} or {"ok": False, "reason": …}.

    Only the student's own text is described: nothing here depends on the key's value.
    """
    if not text.strip():
        return {"ok": True, "empty": True}
    if blank is not None and blank.kind == "choice":
        chosen = blank.choice_of(text)
        if chosen is None:
            return {"ok": False, "reason": "not one of the choices"}
        return {"ok": True, "text": blank.labels[blank.choices.index(chosen)] if blank.labels else chosen}
    try:
        parsed = parse_answer(text)
    except AnswerError as error:
        # The cell shows what is wrong; what the marker accepts is long (the whole list of symbols) and is said once
        # on the page (ACCEPTED), so the cell keeps it only as its tooltip ("full").
        reason, _, accepted = str(error).partition("; accepted: ")
        if accepted != ACCEPTED:
            return {"ok": False, "reason": str(error)}
        return {"ok": False, "reason": reason, "full": str(error)}
    return {"ok": True, "tex": number_tex(parsed.value), "form": parsed.form}


# The follow-through recipes of each problem spec are found once per process (a fraction of a second each, cached by
# the marker). The first Checks of a class come together: without this lock every thread of the pool found the same
# recipes at once, each as slowly as all of them shared the one interpreter (seconds, under make bench-web).
_RECIPES_LOCK = threading.Lock()
_RECIPES_FOUND: set[tuple] = set()


def find_recipes(key: SheetKey) -> None:
    """Find the follow-through recipes of the key's problems, one thread at a time; the others wait for them."""
    for problem in key.problems:
        if problem.spec_key in _RECIPES_FOUND:
            continue
        with _RECIPES_LOCK:
            if problem.spec_key not in _RECIPES_FOUND:
                recipes_for(problem.spec_key)
                if any(blank.kind == "choice" for blank in problem.blanks):
                    choice_recipes_for(problem.spec_key)
                _RECIPES_FOUND.add(problem.spec_key)


def mark(key: SheetKey, answers: dict[str, str], student_id: str, name: str = "") -> StudentMark:
    """The student's blanks marked from what they typed (a blank with nothing typed is 'not answered')."""
    find_recipes(key)
    cells = {blank.label: Cell(answers.get(blank.label, ""), file="web") for blank in key.blanks}
    return mark_student(key, cells, student_id, name)


def verdicts(student: StudentMark) -> dict[str, dict]:
    """Each blank's verdict for the student's page: the word, the points and the named mistake, never the key's value."""
    result = {}
    for m in student.marks:
        result[m.blank.label] = {"status": m.status, "words": VERDICT_WORDS.get(m.status, m.status),
                                 "points": points_text(m.points), "out_of": points_text(m.blank.points),
                                 "note": _safe_note(m.note, m.blank)}
    return result


def _safe_note(note: str, blank: BlankKey) -> str:
    """The marker's note, unless it would name the key's value (a note never should; this is the guard)."""
    if not note:
        return ""
    values = {blank.text, blank.table_value} - {""}
    return "" if any(v in note for v in values) else note


def points_text(value: Fraction) -> str:
    """Points as the page prints them: 3/8, 1."""
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


def reports(students: list[StudentMark], title: str) -> dict[str, str]:
    """marks.csv, details.csv and the summary of the class's current answers."""
    run = Run(students=students)
    return {"marks.csv": marks_csv(run), "details.csv": details_csv(run), "summary.txt": summary_text(run, title)}


def most_missed(students: list[StudentMark], limit: int = 10) -> list[dict]:
    """The blanks most often wrong, unreadable or not answered, each with its most common named mistake.

    An answer the marker cannot read (typed, but not a number) is counted apart from a blank left empty: they call
    for different lessons (how to write an answer, against not getting that far).
    """
    by_blank: dict[str, dict] = {}
    for student in students:
        for m in student.marks:
            entry = by_blank.setdefault(m.blank.label, {"label": m.blank.label, "wrong": 0, "unreadable": 0,
                                                        "missing": 0, "notes": {}})
            if m.status == WRONG:
                entry["wrong"] += 1
                if m.note:
                    entry["notes"][m.note] = entry["notes"].get(m.note, 0) + 1
            elif m.status in (UNREADABLE, DUPLICATED):
                entry["unreadable"] += 1
            elif m.status in (UNANSWERED, MISSING):
                entry["missing"] += 1
    missed = [e for e in by_blank.values() if e["wrong"] or e["unreadable"] or e["missing"]]
    missed.sort(key=lambda e: (-e["wrong"], -e["unreadable"], -e["missing"], e["label"]))
    for entry in missed:
        notes = sorted(entry.pop("notes").items(), key=lambda item: -item[1])
        entry["mistake"] = f"{notes[0][0]} ({notes[0][1]})" if notes else ""
    return missed[:limit]
