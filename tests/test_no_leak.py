"""The worksheet shows no answer and no worked step; the key shows them all."""

from __future__ import annotations

from dataclasses import replace

from sympy import ImmutableMatrix, Symbol

from generator.core.problem import Choice, Expansion, Quantity, Step, Term, Tex
from generator.core.registry import problem_types
from generator.documents.sheet import render_key, render_worksheet

from .conftest import sheet_for

ALL_TYPES = [name for name in sorted(problem_types())]


def _sentinel(n: int) -> str:
    """A letters-only marker (sympy prints it verbatim), unique per n.

    Its letters never end in a name sympy's printer reads as a modifier (…bm is bold, …hat a hat).
    """
    letters = ""
    while True:
        n, r = divmod(n, 4)
        letters += "qwxz"[r]
        if n == 0:
            return "zqleak" + letters


def _tampered(sheet):
    """The same sheet with every answer and step replaced by markers (choices flipped to another option).

    The steps keep their amount of work only: the worksheet's room for a part grows with it (workspace.py).
    """
    counter = iter(range(10**6))
    markers = []

    def fake(answer: Quantity) -> Quantity:
        value = answer.value
        if isinstance(value, Choice):
            other = next(k for k in value.keys if k != value.value)
            return replace(answer, value=Choice(other, value.options))
        if isinstance(value, ImmutableMatrix):
            names = [_sentinel(next(counter)) for _ in range(len(value))]
            markers.extend(names)
            return replace(answer, value=ImmutableMatrix(value.rows, value.cols, [Symbol(n) for n in names]), reading=None,
                           exact_decimal=False)  # a marker has no decimals to print
        name = _sentinel(next(counter))
        markers.append(name)
        # The table route is an answer too: dropped; a marker has no decimals to print.
        return replace(answer, value=Symbol(name), reading=None, exact_decimal=False)

    def marker() -> str:
        name = _sentinel(next(counter))
        markers.append(name)
        return name

    def fake_step(step: Step) -> Step:
        # Only the amount of work survives (the sheet's room grows with it): as many expansions of as many terms,
        # and as many worked lines, every one of them a marker.
        expansions = []
        for expansion in step.expansions:
            terms = tuple(Term((Symbol(marker(), positive=True),)) for _ in expansion.terms)
            expansions.append(Expansion(Tex(marker()), terms, sum((t.value for t in terms), start=0)))
        return Step(text=Tex(marker()), expansions=tuple(expansions), lines=tuple(Tex(marker()) for _ in step.lines))

    problems = []
    for problem in sheet.problems:
        parts = []
        for part in problem.parts:
            parts.append(replace(part, answers=tuple(fake(a) for a in part.answers),
                                 steps=tuple(fake_step(step) for step in part.steps)))
        problems.append(replace(problem, parts=tuple(parts)))
    return replace(sheet, problems=tuple(problems)), markers


def test_worksheet_does_not_depend_on_answers_or_steps():
    sheet = sheet_for(ALL_TYPES, seed=11, calculator="basic")
    tampered, markers = _tampered(sheet)
    assert render_worksheet(tampered) == render_worksheet(sheet)
    worked = render_key(tampered)
    # The same substitution is visible in the key, so this test would catch a leak.
    assert render_key(sheet) != worked
    assert all(marker in worked for marker in markers)


def test_worksheet_text_has_no_key_vocabulary():
    text = render_worksheet(sheet_for(ALL_TYPES, seed=5, calculator="basic"))
    for word in ("Answer:", "Check:", "boxed", "align*", "{aligned}", "answer key"):
        assert word not in text
