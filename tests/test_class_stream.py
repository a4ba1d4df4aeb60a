"""A large class streams: generated sheets wait on disk (a spool), not in memory, and the class documents are
written a student at a time; the files are the same bytes as a small class's in-memory build."""

from __future__ import annotations

from pathlib import Path

from generator.classes import classbuild, classset
from generator.classes.assignment import load_assignment
from generator.classes.classbuild import generate, write_class
from generator.classes.roster import Student

from .test_classset import EXAMPLE, SECRET


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_a_spooled_class_keeps_no_texts_in_memory_and_writes_the_same_files(tmp_path, monkeypatch):
    assignment = load_assignment(EXAMPLE)
    roster = tuple(Student(f"s{i}", f"Student {i}", 0, i) for i in range(1, 5))
    in_memory = generate(assignment, roster, SECRET, workers=1)
    assert all(isinstance(text, str) for s in in_memory for text in s.texts)
    monkeypatch.setattr(classbuild, "SPOOL_FROM", 1)
    spooled = generate(assignment, roster, SECRET, workers=2)
    # By design: each sheet holds only the places of its texts in one spool file, no text.
    assert all(s.spool is spooled[0].spool is not None for s in spooled)
    assert all(isinstance(place, tuple) and all(isinstance(n, int) for n in place)
               for s in spooled for place in s.texts)
    assert all(isinstance(s.grading_rows, tuple) and all(isinstance(n, int) for n in s.grading_rows) for s in spooled)
    assert [(s.worksheet, s.key, s.json, s.grading) for s in spooled] == \
        [(s.worksheet, s.key, s.json, s.grading) for s in in_memory]
    write_class(assignment, in_memory, tmp_path / "a", SECRET, pdf=False)
    write_class(assignment, spooled, tmp_path / "b", SECRET, pdf=False)
    assert _files(tmp_path / "a") == _files(tmp_path / "b")


def test_the_class_document_reads_one_student_at_a_time():
    assignment = load_assignment(EXAMPLE)
    sheets = [classset.student_sheet(assignment, Student(f"s{i}", f"Student {i}", 0, i), SECRET) for i in range(1, 6)]
    pulled = []

    def documents():
        for s in sheets:
            pulled.append(s.student.id)
            yield s.worksheet

    made = ""
    for piece in classset.class_document_parts(documents()):
        made += piece
        # Never more than one student ahead of what has been made: the documents are not gathered first.
        assert len(pulled) <= made.count(r"\studentstart{") + 1
    assert made == classset.class_document(s.worksheet for s in sheets)
    assert len(pulled) == 5


def test_a_large_class_with_its_folder_is_written_by_the_workers_and_kept_on_disk(tmp_path, monkeypatch):
    from generator.classes import studentcache
    from generator.classes.classbuild import Summary
    from generator.classes.secret import SECRET_FILE

    assignment = load_assignment(EXAMPLE)
    roster = tuple(Student(f"s{i}", f"Student {i}", 0, i) for i in range(1, 6))
    in_memory = generate(assignment, roster, SECRET, workers=1)
    write_class(assignment, in_memory, tmp_path / "a", SECRET, pdf=False)
    monkeypatch.setattr(classbuild, "SPOOL_FROM", 1)
    for workers in (2, 1):
        out = tmp_path / f"b{workers}"
        direct = generate(assignment, roster, SECRET, workers=workers, cache=out)
        # Written before write_class, by whichever process made the sheet; no text crossed back in memory.
        assert (out / SECRET_FILE).exists() and all(s.written and s.spool is studentcache.ON_DISK for s in direct)
        assert all(isinstance(place, str) and Path(place).exists() for s in direct for place in s.texts)
        assert [(s.worksheet, s.key, s.json, s.grading, s.givens, s.variant) for s in direct] == \
            [(s.worksheet, s.key, s.json, s.grading, s.givens, s.variant) for s in in_memory]
        summary = write_class(assignment, direct, out, SECRET, pdf=False)
        assert summary.changed == [s.id for s in roster]
        assert {k: v for k, v in _files(out).items() if not k.startswith("cache/")} == _files(tmp_path / "a")
        # Built again: every student read back (kept on disk), nothing written, the same files.
        before = _files(out)
        again = generate(assignment, roster, SECRET, workers=workers, cache=out)
        assert all(s.cached and s.spool is studentcache.ON_DISK for s in again)
        assert write_class(assignment, again, out, SECRET, pdf=False, summary=Summary()).changed == []
        assert _files(out) == before
