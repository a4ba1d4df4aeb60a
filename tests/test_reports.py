"""Reports a grader can trust: printed points that add up, wrong apart from not answered, the key as the sheet asks,
and no cell a spreadsheet would run."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from pathlib import Path

import pytest

from generator.cli import main
from generator.csvfile import FORMULA_START, TableReader, csv_text, safe_cell
from generator.marking.markkey import key_from_data
from generator.marking.reports import apportion, expected_text

from .conftest import key_json

ASSIGNMENT = """name = "trust"
title = "Trust"
seed = 11
calculator = "basic"

[[problems]]
type = "example1"
points = 24

[[problems]]
type = "transpose"
points = 7

[[problems]]
type = "dot_product"
points = 3
"""
POINTS = {1: 24, 2: 7, 3: 3}
# Student ids a spreadsheet would run as formulas, and one it would not.
IDS = ['=HYPERLINK("http://x","y")', "@A1", "-1+2", "s4"]
PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def _rows(path: Path) -> list[dict]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))


def _cells(path: Path) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(path.read_text(encoding="utf-8"))) for cell in row]


def _problem(label: str) -> int:
    return int(re.match(r"\d+", label).group())


@pytest.fixture()
def klass(tmp_cwd, capsys):
    """A class of four (formula-like ids) with 24 points over 29 blanks, 7 over 8 and 3 over 6; the fill-in file."""
    (tmp_cwd / "a.toml").write_text(ASSIGNMENT, encoding="utf-8")
    (tmp_cwd / "roster.csv").write_text(csv_text([["id", "name"]] + [[i, f"Student {n}"] for n, i in enumerate(IDS)]),
                                        encoding="utf-8")
    assert main(["class", "a.toml", "roster.csv", "--out", "cls"]) == 0
    assert main(["fillin", "--class", "cls", "--out", "fill.csv"]) == 0
    manifest = json.loads((tmp_cwd / "cls" / "class.json").read_text())
    keys = {s["id"]: json.loads((tmp_cwd / "cls" / "students" / f"{s['stem']}-key.json").read_text())
            for s in manifest["students"]}
    capsys.readouterr()
    return keys


def _fill(tmp_cwd: Path, keys: dict, answer) -> Path:
    """The fill-in file as a student returns it, as read raw (ids keep the quote the writer put before them)."""
    rows = list(csv.reader(io.StringIO((tmp_cwd / "fill.csv").read_text(encoding="utf-8"))))
    filled = [rows[0]]
    for cells in rows[1:]:
        student = cells[0][1:] if cells[0].startswith("'") else cells[0]  # the writer's quote before a formula
        blank = next(b for p in keys[student]["problems"] for b in p["blanks"] if b["label"] == cells[2])
        filled.append(cells[:3] + [answer(student, blank)] + cells[4:])
    path = tmp_cwd / "answers.csv"
    with path.open("w", encoding="utf-8", newline="") as out:
        csv.writer(out).writerows(filled)
    return path


def test_apportion_shares_the_cents_by_largest_remainder():
    # 24 points over 31 blanks: 77.42 cents each; rounded each they would print 23.22 in all.
    shares = apportion([Fraction(2400, 31)] * 31, 2400)
    assert sum(shares) == 2400 and shares == [78] * 13 + [77] * 18
    assert apportion([Fraction(10), Fraction(205, 10), Fraction(265, 10), Fraction(0)], 57) == [10, 21, 26, 0]  # a tie: the earlier


def test_a_perfect_paper_adds_up_per_problem_and_in_total(klass, tmp_cwd):
    wrong_one = IDS[1]  # one blank of problem 1 wrong, one left empty, one answer a choice's printed label

    def answer(student, blank):
        if student == wrong_one and blank["label"] == "1a X[0,0]":
            return str(Fraction(blank["value"]) + 1)
        if student == wrong_one and blank["label"] == "2a T[0,0]":
            return ""
        return blank["value"]

    _fill(tmp_cwd, klass, answer)
    assert main(["mark", "answers.csv", "--class", "cls", "--out", "rep"]) == 0
    marks = {r["student_id"]: r for r in _rows(tmp_cwd / "rep" / "marks.csv")}
    assert len(marks) == len(IDS)
    for row in marks.values():
        blanks = {label: Fraction(v) for label, v in row.items() if re.match(r"\d+[a-z] ", label)}
        for number in POINTS:
            assert sum(v for label, v in blanks.items() if _problem(label) == number) == Fraction(row[f"problem {number}"])
        assert sum(Fraction(row[f"problem {n}"]) for n in POINTS) == Fraction(row["score"])
        assert all(Fraction(v).denominator in (1, 2, 4, 5, 10, 20, 25, 50, 100) for v in blanks.values())
    perfect = marks["s4"]
    assert perfect["score"] == perfect["out_of"] == "34" and perfect["percent"] == "100"
    assert {n: perfect[f"problem {n}"] for n in POINTS} == {n: str(p) for n, p in POINTS.items()}
    problem_1 = [v for label, v in perfect.items() if re.match(r"1[a-z] ", label)]
    assert len(problem_1) == 29 and set(problem_1) == {"0.83", "0.82"}  # 24/29 = 0.8276 each
    # details.csv prints the same points, and each problem's out_of column sums to its points.
    details = [r for r in _rows(tmp_cwd / "rep" / "details.csv") if r["student_id"] == "s4"]
    for number, points in POINTS.items():
        mine = [r for r in details if _problem(r["blank"]) == number]
        assert sum(Fraction(r["out_of"]) for r in mine) == sum(Fraction(r["points"]) for r in mine) == points
        assert {r["blank"]: r["points"] for r in mine} == {k: v for k, v in perfect.items() if k in {r["blank"] for r in mine}}


def test_wrong_is_counted_apart_from_not_answered(klass, tmp_cwd):
    student = IDS[3]
    labels = [b["label"] for b in klass[student]["problems"][1]["blanks"][:3]]

    def answer(who, blank):
        if who != student:
            return blank["value"]
        if blank["label"] == labels[0]:
            return str(Fraction(blank["value"]) + 1)
        return "" if blank["label"] in labels[1:] else blank["value"]

    _fill(tmp_cwd, klass, answer)
    assert main(["mark", "answers.csv", "--class", "cls", "--out", "rep"]) == 0
    feedback = (tmp_cwd / "rep" / "feedback" / "s4.txt").read_text()
    total = sum(len(p["blanks"]) for p in klass[student]["problems"])
    assert f"{total - 3} of {total} blanks right; 1 wrong, 2 not answered." in feedback
    summary = (tmp_cwd / "rep" / "summary.txt").read_text()
    assert f"blanks: {4 * total - 3} right, 0 part credit, 1 wrong, 2 not answered, 0 unreadable" in summary
    assert re.search(re.escape(labels[0]) + r" +1 wrong\n", summary)
    assert re.search(re.escape(labels[1]) + r" +1 not answered\n", summary)
    # The blank marked wrong ranks above the ones left empty.
    assert summary.index(labels[0]) < summary.index(labels[1])


def test_every_csv_written_has_no_formula_cells(klass, tmp_cwd):
    hostile = ['=HYPERLINK("http://x","y")', "@A1", "-1+2", "+cmd"]
    signed = {"2a KT[0,0]": "-3/4", "2a KT[0,1]": "-0.5", "2a KT[1,0]": "-3"}

    def answer(student, blank):
        if student == IDS[0] and blank["label"].startswith("1a "):
            index = int(blank["index"][0]) * 2 + int(blank["index"][1])
            return hostile[index] if index < len(hostile) else blank["value"]
        return signed.get(blank["label"], blank["value"]) if student == "s4" else blank["value"]

    _fill(tmp_cwd, klass, answer)
    assert main(["mark", "answers.csv", "--class", "cls", "--out", "rep"]) == 0
    assert main(["sheet", "-p", "softmax", "-p", "matmul", "--seed", "3", "--fill-in", "--calculator", "basic"]) == 0
    written = [tmp_cwd / "fill.csv", tmp_cwd / "rep" / "marks.csv", tmp_cwd / "rep" / "details.csv",
               tmp_cwd / "worksheets" / "sheet-answers.csv"]
    for path in written:
        for cell in _cells(path):
            assert not cell.startswith(FORMULA_START) or PLAIN_NUMBER.fullmatch(cell), (path.name, cell)
    marks = {r["student_id"] for r in _rows(tmp_cwd / "rep" / "marks.csv")}
    assert marks == {"'" + i if i[0] in "=@-" else i for i in IDS}  # every student marked, each id neutralised
    details = _cells(tmp_cwd / "rep" / "details.csv")
    assert "'=HYPERLINK(\"http://x\",\"y\")" in details and "'@A1" in details and "'+cmd" in details
    # Negative numbers stay numbers; a negative fraction is text, as a spreadsheet would work it out.
    written = {r["blank"]: r["answer"] for r in _rows(tmp_cwd / "rep" / "details.csv") if r["student_id"] == "s4"}
    assert {label: written[label] for label in signed} == {"2a KT[0,0]": "'-3/4", "2a KT[0,1]": "-0.5", "2a KT[1,0]": "-3"}


@pytest.mark.parametrize("text, cell", [("-0.5", "-0.5"), ("-3", "-3"), ("+2.5e-3", "+2.5e-3"), ("3/4", "3/4"),
                                        ("-3/4", "'-3/4"), ("=1+2", "'=1+2"), ("@A1", "'@A1"), ("-1+2", "'-1+2"),
                                        ("+cmd", "'+cmd"), ("\t1", "'\t1"), ("\r=1", "'\r=1"), ("-inf", "'-inf"),
                                        ("O'Brien", "O'Brien"), ("", "")])
def test_safe_cell_and_back(text, cell):
    assert safe_cell(text) == cell
    assert next(TableReader(csv_text([[text, "x"]]))) == [text, "x"]


def test_the_key_column_shows_the_four_place_value_the_sheet_asks_for(tmp_cwd, capsys):
    assert main(["sheet", "-p", "softmax:form=table", "--seed", "2", "--name", "w", "--calculator", "basic"]) == 0
    data = json.loads((tmp_cwd / "answer_keys" / "w-key.json").read_text())
    blanks = data["problems"][0]["blanks"]
    lines = ["student_id,variant,blank,answer"] + [f"s1,{data['variant']},\"{b['label']}\",0" for b in blanks]
    (tmp_cwd / "a.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert main(["mark", "a.csv", "--key", "answer_keys/w-key.json", "--out", "rep"]) == 0
    expected = {r["blank"]: r["expected"] for r in _rows(tmp_cwd / "rep" / "details.csv")}
    four = [b for b in blanks if b.get("table_value")]
    assert four and all(expected[b["label"]] == b["table_value"] for b in four)
    assert all(re.fullmatch(r"-?\d\.\d{4}", expected[b["label"]]) for b in four)
    feedback = next((tmp_cwd / "rep" / "feedback").iterdir()).read_text()
    assert f"the key: {four[-1]['table_value']}" in feedback
    # A key without the table value shows the exact value rounded half up to 4 places.
    key = key_from_data(data)
    for blank in (b for b in key.blanks if b.table_value):
        rounded = Decimal(next(b["decimal"] for b in blanks if b["label"] == blank.label)).quantize(
            Decimal("0.0001"), ROUND_HALF_UP)
        assert expected_text(dataclasses.replace(blank, table_value="")) == str(rounded)
    exact = next(b for b in key.blanks if not b.decimals)
    assert expected_text(exact) == exact.text


def test_key_json_lists_choice_labels():
    blank = next(b for b in key_json(["dot_product"])["problems"][0]["blanks"] if b["kind"] == "choice")
    assert blank["choices"] == ["acute", "right", "obtuse"]
    assert blank["labels"] == ["less than 90 degrees", "exactly 90 degrees", "more than 90 degrees"]
