"""The per-student cache of a class folder: a rebuild generates only students whose inputs changed, and what it
reads back is byte for byte what a fresh build writes; any change of inputs, code or files invalidates a record."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from generator.classes import classbuild, studentcache
from generator.classes.assignment import load_assignment
from generator.classes.classbuild import generate, write_class
from generator.classes.roster import Student
from generator.classes.secret import SECRET_FILE

from .test_classset import EXAMPLE, SECRET

ROSTER = tuple(Student(f"s{i}", f"Student {i}", 0, i) for i in range(1, 5))


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def made(monkeypatch) -> list[str]:
    """The ids of the students generated (not read back from a record), in order."""
    ids: list[str] = []
    real = classbuild.student_sheet

    def counted(assignment, student, secret):
        ids.append(student.id)
        return real(assignment, student, secret)

    monkeypatch.setattr(classbuild, "student_sheet", counted)
    return ids


def _build(assignment, roster, out: Path) -> list:
    sheets = generate(assignment, roster, SECRET, workers=1, cache=out)
    write_class(assignment, sheets, out, SECRET, pdf=False)
    return sheets


def _fresh(assignment, roster, out: Path) -> dict[str, bytes]:
    """The files of a build into a new folder (no records to read)."""
    _build(assignment, roster, out)
    return _files(out)


@pytest.mark.parametrize("extra", [{}, {"url": "https://worksheets.example.org/w3"},
                                   {"url": "https://worksheets.example.org/w3", "open_seeds": True}])
def test_a_rebuild_reads_every_unchanged_student_back_byte_identical(tmp_path, made, extra):
    assignment = replace(load_assignment(EXAMPLE), **extra)  # the QR code holds a link with the access code, a seed
    first = _fresh(assignment, ROSTER, tmp_path / "a")
    assert made == ["s1", "s2", "s3", "s4"] and sorted(n for n in first if n.startswith("cache/")) == \
        [f"cache/s{i}.json" for i in range(1, 5)]
    made.clear()
    again = _build(assignment, ROSTER, tmp_path / "a")
    assert made == [] and all(s.cached for s in again)
    assert _files(tmp_path / "a") == first
    # What is read back is what generating gives: texts, grading rows, givens, variant, QR text, seed, access code.
    fresh = generate(assignment, ROSTER, SECRET, workers=1)
    for got, want in zip(again, fresh):
        assert (got.worksheet, got.key, got.json, got.grading, got.givens) == \
            (want.worksheet, want.key, want.json, want.grading, want.givens)
        assert (got.variant, got.qr_text, got.seed, got.access_code) == \
            (want.variant, want.qr_text, want.seed, want.access_code)
        assert all(type(row) is type(w) for g, wg in zip(got.grading, want.grading) for row, w in zip(g.rows, wg.rows))


def test_a_changed_name_generates_that_student_alone_and_gives_a_fresh_builds_files(tmp_path, made):
    assignment = load_assignment(EXAMPLE)
    _build(assignment, ROSTER, tmp_path / "a")
    renamed = (ROSTER[0], replace(ROSTER[1], name="Student 2 Jr."), *ROSTER[2:])
    made.clear()
    _build(assignment, renamed, tmp_path / "a")
    assert made == ["s2"]
    (tmp_path / "b").mkdir()
    shutil.copy(tmp_path / "a" / SECRET_FILE, tmp_path / "b" / SECRET_FILE)
    assert _files(tmp_path / "a") == _fresh(assignment, renamed, tmp_path / "b")
    # A changed re-roll number changes the numbers: that student again, alone.
    made.clear()
    _build(assignment, (ROSTER[0], replace(renamed[1], reroll=1), *ROSTER[2:]), tmp_path / "a")
    assert made == ["s2"]


@pytest.mark.parametrize("change", [
    lambda a: replace(a, title=a.title + " (again)"),
    lambda a: replace(a, seed=a.seed + 1),
    lambda a: replace(a, points=(a.points[0] + 1, *a.points[1:])),
    lambda a: replace(a, problems=(replace(a.problems[0], options={**a.problems[0].options, "shape": "2x1"}),
                                   *a.problems[1:])),
])
def test_a_changed_assignment_generates_every_student(tmp_path, made, change):
    assignment = load_assignment(EXAMPLE)
    _build(assignment, ROSTER, tmp_path / "a")
    made.clear()
    changed = change(assignment)
    _build(changed, ROSTER, tmp_path / "a")
    assert made == ["s1", "s2", "s3", "s4"]
    (tmp_path / "b").mkdir()
    shutil.copy(tmp_path / "a" / SECRET_FILE, tmp_path / "b" / SECRET_FILE)
    assert _files(tmp_path / "a") == _fresh(changed, ROSTER, tmp_path / "b")


def test_other_code_generates_every_student(tmp_path, made, monkeypatch):
    assignment = load_assignment(EXAMPLE)
    _build(assignment, ROSTER, tmp_path / "a")
    made.clear()
    monkeypatch.setattr(studentcache, "code_fingerprint", lambda: "another version of the generator")
    _build(assignment, ROSTER, tmp_path / "a")
    assert made == ["s1", "s2", "s3", "s4"]


def test_the_code_fingerprint_follows_every_file_of_the_package(tmp_path, monkeypatch):
    package = tmp_path / "generator"
    (package / "documents" / "templates").mkdir(parents=True)
    (package / "sheet.py").write_text("x = 1\n")
    (package / "documents" / "templates" / "key.tex.j2").write_text("\\VAR{x}\n")
    monkeypatch.setattr(studentcache, "PACKAGE", package)

    def fingerprint() -> str:
        studentcache.code_fingerprint.cache_clear()
        return studentcache.code_fingerprint()

    prints = [fingerprint()]
    (package / "documents" / "templates" / "key.tex.j2").write_text("\\VAR{x} \n")  # a template
    prints.append(fingerprint())
    (package / "sheet.py").write_text("x = 2\n")  # the source
    prints.append(fingerprint())
    (package / "new.py").write_text("")  # a new, empty file
    prints.append(fingerprint())
    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "sheet.cpython.pyc").write_bytes(b"compiled")  # not the source: the same
    prints.append(fingerprint())
    studentcache.code_fingerprint.cache_clear()
    assert len(set(prints)) == 4 and prints[3] == prints[4]


def test_a_student_file_changed_by_hand_is_generated_again(tmp_path, made):
    assignment = load_assignment(EXAMPLE)
    first = _fresh(assignment, ROSTER, tmp_path / "a")
    (tmp_path / "a" / "students" / "s3-key.json").write_text("{}")
    (tmp_path / "a" / "students" / "s4.tex").unlink()
    made.clear()
    _build(assignment, ROSTER, tmp_path / "a")
    assert made == ["s3", "s4"]
    assert _files(tmp_path / "a") == first


def test_a_record_under_another_secret_or_edited_is_not_used(tmp_path, made):
    assignment = load_assignment(EXAMPLE)
    _build(assignment, ROSTER, tmp_path / "a")
    made.clear()
    generate(assignment, ROSTER, bytes(range(1, 33)), workers=1, cache=tmp_path / "a")
    assert made == ["s1", "s2", "s3", "s4"]
    record = tmp_path / "a" / "cache" / "s1.json"
    data = json.loads(record.read_text())
    data["variant"] = "ZZZZ"  # the key and the files' sums still match: the seal does not
    record.write_text(json.dumps(data))
    (tmp_path / "a" / "cache" / "s2.json").write_bytes((tmp_path / "a" / "cache" / "s3.json").read_bytes())
    made.clear()
    sheets = generate(assignment, ROSTER, SECRET, workers=1, cache=tmp_path / "a")
    assert made == ["s1", "s2"]
    assert sheets[0].variant != "ZZZZ"


def test_the_class_command_generates_only_the_student_whose_name_changed(tmp_path, made, capsys):
    from generator.cli import main

    from .test_classset import _roster
    roster = _roster(tmp_path, [("s1", "Ann"), ("s2", "Bo"), ("s3", "Cy")])
    out = tmp_path / "out"
    assert main(["class", str(EXAMPLE), str(roster), "--out", str(out)]) == 0
    _roster(tmp_path, [("s1", "Ann"), ("s2", "Bo Ek"), ("s3", "Cy")])
    made.clear()
    assert main(["class", str(EXAMPLE), str(roster), "--out", str(out)]) == 0
    assert made == ["s2"] and "1 written, 2 unchanged" in capsys.readouterr().out


def test_a_cached_rebuild_with_pdfs_gives_a_fresh_builds_bytes(tmp_path, made, monkeypatch):
    monkeypatch.setattr(classbuild, "CHUNK_STUDENTS", 2)  # chunks s1 s2 | s3 s4

    def build(roster, out: Path) -> None:
        write_class(assignment, generate(assignment, roster, SECRET, workers=1, cache=out), out, SECRET, pdf=True)

    assignment = load_assignment(EXAMPLE)
    build(ROSTER, tmp_path / "a")
    renamed = (*ROSTER[:2], replace(ROSTER[2], name="Student Three"), ROSTER[3])
    made.clear()
    build(renamed, tmp_path / "a")
    assert made == ["s3"]
    (tmp_path / "b").mkdir()
    shutil.copy(tmp_path / "a" / SECRET_FILE, tmp_path / "b" / SECRET_FILE)
    build(renamed, tmp_path / "b")
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    assert any(name.endswith(".pdf") for name in _files(tmp_path / "a"))
