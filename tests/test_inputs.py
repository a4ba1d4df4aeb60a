"""Files and input: written with the umask's permissions, rosters and answers files read alike, a spreadsheet's
15 digits taken as the exact value, choices by their printed labels, given choices on the sheet and in the key."""

from __future__ import annotations

import dataclasses
import json
import os
import stat
from decimal import Context, Decimal
from fractions import Fraction
from pathlib import Path

import pytest

from generator.marking import mistakes
from generator.cli import main
from generator.marking.marker import RIGHT, UNREADABLE, WRONG, Cell, mark_student
from generator.marking.markkey import key_from_data
from generator.documents.pdf import compile_pdf
from generator.classes.roster import load_roster
from generator.documents.sheet import with_checksum, write_outputs

from .conftest import key_json, sheet_for

ASSIGNMENT = Path(__file__).resolve().parent.parent / "examples" / "assignment.toml"


@pytest.fixture()
def umask():
    """Set the process umask for a test, and put the old one back."""
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


def _modes(folder: Path) -> dict[str, int]:
    return {p.relative_to(folder).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o027, 0o640)])
def test_every_file_written_has_the_umasks_mode(tmp_cwd, umask, capsys, mask, mode):
    umask(mask)
    (tmp_cwd / "roster.csv").write_text("id,name\na1,Ann\na2,Bo\n", encoding="utf-8")
    assert main(["sheet", "-p", "matmul", "--seed", "2", "--name", "w", "--fill-in"]) == 0
    assert main(["class", str(ASSIGNMENT), "roster.csv", "--out", "cls"]) == 0
    assert main(["fillin", "--class", "cls", "--out", "fill.csv"]) == 0
    assert main(["mark", "fill.csv", "--class", "cls", "--out", "rep"]) == 0
    modes = _modes(tmp_cwd)
    for written in ("worksheets/w.tex", "answer_keys/w-key.json", "worksheets/w-answers.csv", "cls/class.json",
                    "cls/grading.tex", "cls/students/a1-key.json", "fill.csv", "rep/marks.csv", "rep/feedback/a1.txt"):
        assert written in modes
    assert modes.pop("cls/secret.key") == 0o600  # the class secret: its owner's only, whatever the umask
    assert modes == {path: mode for path in modes}, modes
    assert not any(name.startswith(".") for name in modes)  # no temporary file left behind


# ----- one reader for rosters and answers files --------------------------------------------------------


@pytest.mark.parametrize("text", ["id;name\na1;Ann\nb2;Núñez, José\n", "id\tname\na1\tAnn\nb2\tNúñez, José\n",
                                  "id,name,\na1,Ann,\nb2,\"Núñez, José\",\n", "id;name;\r\na1;Ann;\r\nb2;Núñez, José;\r\n"])
def test_a_roster_reads_with_any_separator_and_a_trailing_empty_column(tmp_path, text):
    path = tmp_path / "roster.csv"
    path.write_text(text, encoding="utf-8")
    assert [(s.id, s.name, s.row) for s in load_roster(path)] == [("a1", "Ann", 2), ("b2", "Núñez, José", 3)]


@pytest.mark.parametrize("separator", [",", ";", "\t"])
def test_an_answers_file_with_a_trailing_separator_keeps_every_row(tmp_cwd, capsys, separator):
    """A spreadsheet writes a separator after every line's last cell; with commas, decimal commas stay unquoted."""
    assert main(["sheet", "-p", "softmax:form=table", "-p", "matmul", "--seed", "2", "--name", "w",
                 "--calculator", "basic"]) == 0
    key = json.loads((tmp_cwd / "answer_keys" / "w-key.json").read_text())
    blanks = [b for p in key["problems"] for b in p["blanks"]]
    lines = [separator.join(["student_id", "variant", "blank", "answer", ""])]
    for n, blank in enumerate(blanks):
        value = (blank.get("table_value") or blank["value"]).replace(".", ",")
        lines.append(separator.join(["s1" if n == 0 else "", key["variant"] if n == 0 else "", blank["label"], value, ""]))
    (tmp_cwd / "a.csv").write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    assert main(["mark", "a.csv", "--key", "answer_keys/w-key.json", "--out", "rep"]) == 0
    assert capsys.readouterr().err == ""
    marks = (tmp_cwd / "rep" / "marks.csv").read_text().splitlines()
    assert len(marks) == 2 and marks[1].split(",")[3:5] == [str(len(blanks))] * 2  # score = out of: every row read


# ----- what an answer may be ------------------------------------------------------------------------------


def _significant(value: Fraction, digits: int, comma: bool = True) -> str:
    """value to `digits` significant digits, as a spreadsheet writes it (a decimal comma)."""
    text = str(Context(prec=digits).divide(Decimal(value.numerator), Decimal(value.denominator)))
    return text.replace(".", ",") if comma else text


def _mark(key, label: str, text: str):
    answers = {b.label: b.text for b in key.blanks}
    answers[label] = text
    marked = mark_student(key, {k: Cell(v) for k, v in answers.items()}, "s1")
    return next(m for m in marked.marks if m.blank.label == label)


def test_a_spreadsheets_fifteen_digits_are_the_exact_value():
    key = key_from_data(key_json(["dlogits:positions=2,reduction=mean"], 2))
    blank = next(b for b in key.blanks if isinstance(b.number, Fraction) and b.number.denominator % 3 == 0)
    for text in (_significant(blank.number, 15), _significant(blank.number, 10, comma=False),
                 f"{_significant(blank.number, 15, comma=False)}E+00"):
        mark = _mark(key, blank.label, text)
        assert (mark.status, mark.points, mark.note, mark.number) == (RIGHT, blank.points, "", blank.number), text
    # Fewer digits are still rounded, and 15 digits of another value are still wrong.
    mark = _mark(key, blank.label, _significant(blank.number, 9))
    assert (mark.status, mark.note) == (WRONG, mistakes.ROUNDED)
    assert _mark(key, blank.label, _significant(blank.number + Fraction(1, 10**8), 15)).status == WRONG


def test_fifteen_digits_of_an_irrational_value():
    key = key_from_data(key_json(["cross_entropy:positions=2,reduction=mean"], 2))
    blanks = key.problems[0].blanks
    # A loss as an exact part (not its 4 places): only the digits can make it right.
    position = next(i for i, b in enumerate(blanks) if not isinstance(b.number, Fraction))
    blank = blanks[position] = dataclasses.replace(blanks[position], decimals=False, accepted=None)
    exact = Decimal(str(blank.number))  # 40 digits
    assert _mark(key, blank.label, format(exact, ".15g")).status == RIGHT
    assert _mark(key, blank.label, format(exact, ".8g")).status == WRONG


def test_a_choice_is_accepted_by_its_printed_label():
    key = key_from_data(key_json(["dot_product"], 3))
    blank = next(b for b in key.blanks if b.kind == "choice")
    label = dict(zip(blank.choices, blank.labels))
    other = next(k for k in blank.choices if k != blank.text)
    assert _mark(key, blank.label, f"  {label[blank.text].upper()} ").status == RIGHT
    assert _mark(key, blank.label, blank.text.upper()).status == RIGHT
    assert _mark(key, blank.label, label[other]).status == WRONG
    unreadable = _mark(key, blank.label, "sideways")
    assert unreadable.status == UNREADABLE and "label" in unreadable.note


# ----- a choice printed as given ---------------------------------------------------------------------------


def test_a_given_choice_compiles_and_is_in_the_key(tmp_path):
    sheet = sheet_for(["dot_product:given=a"], seed=3)
    paths = write_outputs(sheet, "g", tmp_path, tmp_path)
    for kind in ("worksheet", "key"):
        assert compile_pdf(paths[kind]).pdf.exists()
    data = json.loads(paths["json"].read_text())
    problem = data["problems"][0]
    angle = sheet.problems[0].parts[0].answers[1].value
    assert problem["given_part_values"]["a"] == {"a.b": str(sheet.problems[0].parts[0].answers[0].value),
                                                 "angle(a,b)": angle.value}
    assert dict(angle.options)[angle.value] in paths["worksheet"].read_text()
    # Marking reads the given product as a number and leaves the choice out, even one that reads as a number (e).
    for value in (angle.value, "e"):
        problem["given_part_values"]["a"]["angle(a,b)"] = value
        key = key_from_data(with_checksum(data))  # sealed again: a key written so, not one edited by hand
        quantities = key.problems[0].quantities
        assert quantities["a.b"].source == "shown" and "angle(a,b)" not in quantities
        marked = mark_student(key, {b.label: Cell(b.text) for b in key.blanks}, "s1")
        assert marked.score == marked.out_of == len(key.blanks)
