"""`mark` and `fillin` end to end: answers files, bad and hostile input, reports and their protection."""

from __future__ import annotations

import csv
import io
import json
from fractions import Fraction
from pathlib import Path

import pytest

from generator.cli import main

ASSIGNMENT = Path(__file__).resolve().parent.parent / "examples" / "assignment.toml"


@pytest.fixture()
def tmp_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _rows(path: Path) -> list[dict]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))


def _write(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as out:
        csv.writer(out).writerows([["student_id", "variant", "blank", "answer"]] + rows)
    return path


@pytest.fixture()
def klass(tmp_cwd, capsys):
    """A class of five built by `class` (no PDFs), and every student's key by id."""
    (tmp_cwd / "roster.csv").write_text("id,name\n" + "".join(f"a{i},Student {i}\n" for i in range(1, 6)), encoding="utf-8")
    assert main(["class", str(ASSIGNMENT), "roster.csv", "--out", "cls"]) == 0
    manifest = json.loads((tmp_cwd / "cls" / "class.json").read_text())
    keys = {s["id"]: json.loads((tmp_cwd / "cls" / "students" / f"{s['stem']}-key.json").read_text())
            for s in manifest["students"]}
    capsys.readouterr()
    return keys


def _answers(key: dict, student: str, change=None) -> list[list[str]]:
    rows = []
    for problem in key["problems"]:
        for blank in problem["blanks"]:
            value = blank["value"]
            if change:
                value = change(blank, value)
            rows.append([student, key["variant"], blank["label"], value])
    return rows


def test_sheet_fill_in_file_has_every_blank_as_labelled(tmp_cwd, capsys):
    assert main(["sheet", "-p", "matmul", "-p", "attention_scores:mask=causal", "--seed", "4", "--name", "q",
                 "--fill-in"]) == 0
    key = json.loads((tmp_cwd / "answer_keys" / "q-key.json").read_text())
    rows = _rows(tmp_cwd / "worksheets" / "q-answers.csv")
    assert [r["blank"] for r in rows] == [b["label"] for p in key["problems"] for b in p["blanks"]]
    assert {r["variant"] for r in rows} == {key["variant"]} and all(r["answer"] == "" for r in rows)
    # A filled-in file is never overwritten by another run.
    assert main(["sheet", "-p", "matmul", "--name", "q", "--fill-in"]) == 2
    assert "already exists" in capsys.readouterr().err


def test_fillin_for_a_class_has_each_students_variant(klass, tmp_cwd, capsys):
    assert main(["fillin", "--class", "cls", "--out", "blank.csv"]) == 0
    rows = _rows(tmp_cwd / "blank.csv")
    for student, key in klass.items():
        mine = [r for r in rows if r["student_id"] == student]
        assert {r["variant"] for r in mine} == {key["variant"]}
        assert len(mine) == sum(len(p["blanks"]) for p in key["problems"])


def test_a_class_is_marked_despite_bad_input(klass, tmp_cwd, capsys):
    a1, a2, a3, _, a5 = (klass[f"a{i}"] for i in range(1, 6))
    rows = _answers(a1, "a1")
    # a2: every product entry off by one (C), so D is right and the rest is right.
    rows += _answers(a2, "a2", lambda b, v: str(Fraction(v) + 1) if b["label"].startswith("1a") else v)
    # a3: an unreadable value, a blank given twice, a blank left out.
    a3_rows = _answers(a3, "a3")
    a3_rows[0][3] = "three quarters"
    a3_rows.append(list(a3_rows[1]))
    del a3_rows[5]
    rows += a3_rows
    rows += [["zz9", a1["variant"], "1a C[0,0]", "1"]]  # not in the class
    rows += _answers(a1, "a4")  # a1's variant, not a4's own
    hostile = _answers(a5, "a5")
    payloads = ["__import__('os').system('touch PWNED')", "9^9^9^9", "1e999999", "x" * 1_000_000, "1\x002",
                "eval('1')"]
    for row, payload in zip(hostile, payloads):
        row[3] = payload
    rows += hostile
    _write(tmp_cwd / "answers.csv", rows)
    (tmp_cwd / "empty.csv").write_text("")
    (tmp_cwd / "binary.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    assert main(["mark", "answers.csv", "empty.csv", "binary.csv", "--class", "cls", "--out", "rep"]) == 0
    captured = capsys.readouterr()
    err = captured.err
    assert "empty.csv: the file is empty" in err
    assert "binary.csv: a binary file" in err
    assert "unknown student id 'zz9'" in err
    assert "student 'a4'" in err and "a4's key" not in err and "variant" in err
    assert "cannot read 'three quarters'" in err
    assert "given twice" not in err and "answered in rows" in err
    assert "have no row" in err
    for reason in ("unexpected character", "too large", "power of ten", "too long", "control character"):
        assert reason in err
    assert all(line.split(": ", 1)[1].startswith(("answers.csv:", "empty.csv", "binary.csv"))
               for line in err.splitlines())
    assert not (tmp_cwd / "PWNED").exists()
    marks = {r["student_id"]: r for r in _rows(tmp_cwd / "rep" / "marks.csv")}
    assert set(marks) == {"a1", "a2", "a3", "a5"}  # a4 answered someone else's variant only
    labels = [b["label"] for p in a1["problems"] for b in p["blanks"]]
    problems = [f"problem {p['number']}" for p in a1["problems"]]
    assert list(marks["a1"])[6:] == problems + labels  # a subtotal per problem, then one column per blank
    assert marks["a1"]["score"] == marks["a1"]["out_of"] == str(sum(json.loads(json.dumps(a1["points"]))))
    assert marks["a1"]["1a C[0,0]"] == "0.5"  # matmul: 4 points over 8 blanks
    assert float(marks["a2"]["score"]) == float(marks["a1"]["score"]) - 2
    summary = (tmp_cwd / "rep" / "summary.txt").read_text()
    assert "students marked: 4" in summary and "distribution" in summary and "1a C[0,0]" in summary
    assert "a4" in summary  # a class student with no answers is named
    feedback = (tmp_cwd / "rep" / "feedback" / "a3.txt").read_text()
    assert "three quarters" in feedback and "unreadable" in feedback and "duplicated" in feedback
    details = _rows(tmp_cwd / "rep" / "details.csv")
    assert all(len(r["answer"]) <= 60 and "\x00" not in r["answer"] for r in details)


def test_nothing_marked_exits_non_zero_and_writes_nothing(klass, tmp_cwd, capsys):
    (tmp_cwd / "empty.csv").write_text("")
    _write(tmp_cwd / "other.csv", [["nobody", "AAAA-AAAA", "1a C[0,0]", "1"]])
    assert main(["mark", "empty.csv", "other.csv", "--class", "cls", "--out", "rep"]) == 2
    assert "nothing could be marked" in capsys.readouterr().err
    assert not (tmp_cwd / "rep").exists()


def test_reports_are_not_overwritten_without_force(klass, tmp_cwd, capsys):
    _write(tmp_cwd / "answers.csv", _answers(klass["a1"], "a1"))
    assert main(["mark", "answers.csv", "--class", "cls", "--out", "rep"]) == 0
    before = (tmp_cwd / "rep" / "marks.csv").read_text()
    _write(tmp_cwd / "answers.csv", _answers(klass["a1"], "a1", lambda b, v: "0"))
    capsys.readouterr()
    assert main(["mark", "answers.csv", "--class", "cls", "--out", "rep"]) == 2
    assert "--force" in capsys.readouterr().err
    assert (tmp_cwd / "rep" / "marks.csv").read_text() == before
    assert main(["mark", "answers.csv", "--class", "cls", "--out", "rep", "--force"]) == 0
    assert (tmp_cwd / "rep" / "marks.csv").read_text() != before


def test_key_mode_reads_spreadsheet_csv_forms(tmp_cwd, capsys):
    """Semicolons, decimal commas, unquoted labels with a comma, a byte-order mark, ids written once."""
    assert main(["sheet", "-p", "softmax:form=table", "-p", "matmul", "--seed", "2", "--name", "w",
                 "--calculator", "basic"]) == 0
    key = json.loads((tmp_cwd / "answer_keys" / "w-key.json").read_text())
    lines = ["student_id;variant;blank;answer"]
    for n, (problem, blank) in enumerate((p, b) for p in key["problems"] for b in p["blanks"]):
        value = (blank.get("table_value") or blank["decimal"][:6]).replace(".", ",") if blank["kind"] == "number" else blank["value"]
        lines.append(f"{'s1' if n == 0 else ''};{key['variant'] if n == 0 else ''};{blank['label']};{value}")
    (tmp_cwd / "semi.csv").write_text("\ufeff" + "\r\n".join(lines) + "\r\n", encoding="utf-8")
    comma = ["student_id,variant,blank,answer"] + [f"s2,{key['variant']},{b['label']},{b['value']}"
                                                   for p in key["problems"] for b in p["blanks"]]
    (tmp_cwd / "comma.csv").write_text("\n".join(comma) + "\n", encoding="utf-8")
    assert main(["mark", "semi.csv", "comma.csv", "--key", "answer_keys/w-key.json", "--out", "rep"]) == 0
    assert capsys.readouterr().err == ""
    marks = {r["student_id"]: r for r in _rows(tmp_cwd / "rep" / "marks.csv")}
    assert marks["s1"]["score"] == marks["s1"]["out_of"] == marks["s2"]["score"]


def test_answers_for_a_variant_with_no_key(tmp_cwd, capsys):
    assert main(["sheet", "-p", "matmul", "--seed", "2", "--name", "w"]) == 0
    _write(tmp_cwd / "a.csv", [["s1", "ZZZZ-ZZZZ", "1a C[0,0]", "1"]])
    assert main(["mark", "a.csv", "--key", "answer_keys/w-key.json", "--out", "rep"]) == 2
    err = capsys.readouterr().err
    assert "a.csv:2: student 's1': answers for variant ZZZZ-ZZZZ, for which no key was given" in err


def test_a_key_with_a_value_edited_by_hand_is_refused(klass, tmp_cwd, capsys):
    """One blank's value changed in a key file (a sheet's --key, a class folder's student key): nothing is marked
    against it, the error names the file, and no report is written."""
    assert main(["sheet", "-p", "matmul", "--seed", "2", "--name", "w"]) == 0
    sheet_key = tmp_cwd / "answer_keys" / "w-key.json"
    class_key = next((tmp_cwd / "cls" / "students").glob("*-key.json"))
    for path in (sheet_key, class_key):
        data = json.loads(path.read_text(encoding="utf-8"))
        blank = data["problems"][0]["blanks"][0]
        _write(tmp_cwd / "a.csv", [[data.get("student", {}).get("id", "s1"), data["variant"], blank["label"], "999"]])
        blank.update(value="999", decimal="999", text="999")
        path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        capsys.readouterr()
        where = ["--key", str(sheet_key)] if path == sheet_key else ["--class", "cls"]
        assert main(["mark", "a.csv", *where, "--out", "rep"]) == 2
        err = capsys.readouterr().err
        assert "does not match its checksum; the key was edited" in err and path.name in err, err
        assert not (tmp_cwd / "rep").exists()


def test_fill_in_hints_name_the_form_by_the_type_never_by_the_value(tmp_cwd):
    """A loss is ln of a probability in every variant: its hint asks for an expression; a masked score's hint
    says -oo; a product's hint asks for a fraction. The same hints for every seed (they come from the type)."""
    hints = []
    for seed in (4, 5):
        assert main(["sheet", "-p", "matmul", "-p", "attention_scores:mask=causal", "-p", "cross_entropy",
                     "--seed", str(seed), "--name", f"h{seed}", "--fill-in"]) == 0
        rows = _rows(tmp_cwd / "worksheets" / f"h{seed}-answers.csv")
        hints.append([r["hint"] for r in rows])
        by_label = {r["blank"]: r["hint"] for r in rows}
        assert by_label["1a C[0,0]"] == "exact: whole number or fraction such as -3/4"
        masked = [h for label, h in by_label.items() if label.startswith("2") and "S[" in label]
        assert masked and all(h.endswith("; -oo for a masked entry") for h in masked)
        losses = [h for label, h in by_label.items() if label.startswith("3")]
        assert any("expression such as ln(4)/2" in h for h in losses), losses
    assert hints[0] == hints[1]


def test_fill_in_hints_ask_for_a_decimal_in_full_where_the_statement_does(tmp_cwd):
    assert main(["sheet", "-p", "optimizer_race:steps=3", "--seed", "2", "--name", "r", "--fill-in",
                 "--calculator", "basic"]) == 0
    hints = {r["blank"]: r["hint"] for r in _rows(tmp_cwd / "worksheets" / "r-answers.csv")}
    in_full = [label for label, hint in hints.items() if hint.startswith("exact: a decimal written in full")]
    assert {"1a sgd1[0,0]", "1b mom1[0,0]", "1c m1[0,0]"} <= set(in_full)
