"""Worksheet pages as a teacher prints them: no problem split that fits a page, continued pages that say so, full pages.

Real pdflatex runs (about 2 s a sheet): layout is only true of the compiled pages.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from generator.classes import classset
from generator.classes.assignment import load_assignment
from generator.classes.classpdf import compile_class_documents
from generator.documents.pdf import compile_pdf
from generator.documents.presets import preset_problems
from generator.classes.roster import Student
from generator.documents.sheet import ProblemSpec, SheetSpec, build, write_outputs
from generator.documents.workspace import working_space_mm

from .page_fill import natural_fills, page_fills
from .test_classset import EXAMPLE, SECRET

HEADING = re.compile(r"^Problem (\d+)\. ", re.MULTILINE)
PART = re.compile(r"^\(([a-z]+)\)\s", re.MULTILINE)
CONTINUED = re.compile(r"Problem (\d+) \(continued\) — its statement is on page (\d+)")
KEPT_WHOLE = re.compile(r"^Problem (\d+): [\d.]+pt +kept whole", re.MULTILINE)


def _pages_text(pdf: Path) -> list[str]:
    """pdftotext of every page (the last form feed ends the last page)."""
    text = subprocess.run(["pdftotext", str(pdf), "-"], check=True, capture_output=True, text=True).stdout
    return text.split("\f")[:-1]


def _layout(pages: list[str]) -> tuple[dict[int, int], dict[tuple[int, str], int], list[tuple[int, object]]]:
    """Where each problem's heading and each of its parts fall, and each page's continued line (or None)."""
    heading_page, part_page, continued = {}, {}, []
    problem = None
    for number, text in enumerate(pages, start=1):
        line = CONTINUED.search(text)
        continued.append((number, (int(line[1]), int(line[2])) if line else None))
        events = sorted([(m.start(), "heading", int(m[1])) for m in HEADING.finditer(text)]
                        + [(m.start(), "part", m[1]) for m in PART.finditer(text)])
        for _, kind, value in events:
            if kind == "heading":
                problem = value
                heading_page[problem] = number
            else:
                part_page[(problem, value)] = number
    return heading_page, part_page, continued


def _first_item_is_a_part(text: str) -> bool:
    """The page's body starts with a part of a problem begun earlier, not with a problem's heading."""
    heading, part = HEADING.search(text), PART.search(text)
    return part is not None and (heading is None or part.start() < heading.start())


# A chain whose statement is taller than the rest of the first page below the header (on letter paper, shorter
# than A4): it goes on over the page instead of leaving the instructions alone on page 1.
TALL_FIRST = ("Add & Norm on letter", "basic", ("tiny_transformer:norm=post,tokens=3,heads=2", "softmax:form=table"), "letter")


@pytest.fixture(scope="module", params=["matrix-core", "backward-steps", "example3", "training-step", "tall-first"])
def preset_sheet(request, tmp_path_factory):
    """A preset's worksheet compiled: its pages' text, its PDF and its TeX log."""
    if request.param == "tall-first":
        title, calculator, texts, paper = TALL_FIRST
        specs = tuple(ProblemSpec.parse(text) for text in texts)
    else:
        (title, calculator, specs), paper = preset_problems(request.param), "a4"
    folder = tmp_path_factory.mktemp(request.param)
    paths = write_outputs(build(SheetSpec(title, 5, specs, calculator=calculator, paper=paper)), request.param, folder,
                          folder)
    built = compile_pdf(paths["worksheet"])
    return request.param, _pages_text(built.pdf), built.pdf, built.log


def test_a_problem_that_fits_a_page_is_never_split(preset_sheet):
    name, pages, _, log = preset_sheet
    heading_page, part_page, _ = _layout(pages)
    whole = {int(n) for n in KEPT_WHOLE.findall(log)}
    assert whole or len(heading_page) == 1, f"{name}: the log names no problem kept whole"
    for (problem, letter), page in part_page.items():
        if problem in whole:
            assert page == heading_page[problem], f"{name}: problem {problem} ({letter}) is on page {page}"


def test_every_page_that_continues_a_problem_says_so_and_names_the_statements_page(preset_sheet):
    name, pages, _, _ = preset_sheet
    heading_page, part_page, continued = _layout(pages)
    for (number, line), text in zip(continued, pages):
        if _first_item_is_a_part(text):
            problem = max(p for p, page in heading_page.items() if page < number)
            assert line == (problem, heading_page[problem]), f"{name} page {number}: {line}"
        else:
            assert line is None, f"{name} page {number} starts a problem but says {line}"


def test_pages_are_full_and_the_room_goes_to_working(preset_sheet):
    # A page's fill is how far down its body the ink goes: the spare room of a page is shared out as working
    # room above each part's answer boxes, so every page but the last reaches its foot.
    name, _, pdf, log = preset_sheet
    ink = page_fills(pdf)
    # (A statement taller than half a page may end its page alone: training-step's givens fill 90 % of page 1.)
    assert min(ink[:-1], default=1) >= 0.85, (name, ink)
    assert np.mean(ink) >= 0.75, (name, ink)
    # Before the room is shared out, the content itself fills the pages too (figures for the record).
    natural = natural_fills(log)
    assert len(natural) == len(ink) and np.mean(natural) >= 0.6, (name, natural)


def test_the_first_page_never_holds_the_instructions_alone(preset_sheet):
    name, pages, _, _ = preset_sheet
    assert HEADING.search(pages[0]), (name, pages[0][:300])


def test_the_instructions_describe_this_layout(preset_sheet):
    _, pages, _, _ = preset_sheet
    first = " ".join(pages[0].split())
    assert "space below it" in first and "beside each answer" not in first


def test_room_grows_with_the_work_a_part_asks_for():
    # Writing down a transpose asks for less room than a 2×2 product, and that less than attention's backward
    # pass through the scores (dÃ = dO·Vᵀ, and dV, each entry a sum of products).
    def room(spec, part):
        sheet = build(SheetSpec("t", 3, (ProblemSpec.parse(spec),), calculator="basic"))
        return working_space_mm(sheet.problems[0].parts[part])
    assert room("transpose", 0) < room("matmul:shape=2x2", 0) < room("attention_backward", 1)


def test_continued_pages_of_each_student_in_a_class_document_in_one_run(tmp_path):
    # One pdflatex run for the whole class: every student's continued pages name that student's own pages.
    example = load_assignment(EXAMPLE)
    long = replace(example, calculator="basic", problems=(ProblemSpec.parse("matmul"), ProblemSpec.parse("example1")), points=(1, 1))
    sheets = [classset.student_sheet(long, Student(f"s{n}", f"Student {n}", 0, n), SECRET) for n in (1, 2)]
    tex = tmp_path / "worksheets.tex"
    tex.write_text(classset.class_document(s.worksheet for s in sheets), encoding="utf-8")
    result = compile_class_documents([tex])[tex]
    pages = _pages_text(result.pdf)
    for first, last in result.students:
        own = pages[first - 1:last]
        heading_page, _, continued = _layout(own)
        lines = [line for _, line in continued if line]
        assert lines and all(line == (2, heading_page[2]) for line in lines), lines
