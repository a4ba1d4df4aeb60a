"""Class PDFs built in chunks of students: an unchanged chunk is not compiled again, the class PDFs hold every
student's pages in order (as one document compiled alone would), and names set by LuaTeX are placed in chunks."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from generator.classes import classbuild
from generator.classes.assignment import load_assignment
from generator.classes.classbuild import Summary, generate, write_class
from generator.classes.classpdf import compile_class_documents
from generator.classes.roster import Student
from generator.documents.pdf import TexError

from .test_classset import EXAMPLE, SECRET


def _pdf_pages(pdf: Path) -> list[str]:
    text = subprocess.run(["pdftotext", str(pdf), "-"], check=True, capture_output=True, text=True).stdout
    return text.split("\f")[:-1]


def _one_page_assignment(folder: Path) -> Path:
    path = folder / "one.toml"  # a one-page worksheet: every student but the last is followed by a blank page
    path.write_text('name = "one"\ntitle = "One page"\nseed = 5\n[[problems]]\ntype = "matmul"\n'
                    'options = { shape = "2x1" }\n', encoding="utf-8")
    return path


def _build(assignment, roster, out: Path) -> Summary:
    summary = Summary()
    write_class(assignment, generate(assignment, roster, SECRET, workers=1), out, SECRET, pdf=True, summary=summary)
    return summary


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(classbuild, "CHUNK_STUDENTS", 2)


def test_only_the_chunk_of_a_changed_name_is_compiled_again(tmp_path, small_chunks):
    assignment = load_assignment(EXAMPLE)
    roster = tuple(Student(f"s{i}", f"Student {i}", 0, i) for i in range(1, 6))  # chunks: s1 s2 | s3 s4 | s5
    out = tmp_path / "out"
    first = _build(assignment, roster, out)
    assert first.chunks_compiled == 6 and sorted(p.name for p in (out / "chunks").iterdir()) == ["001", "002", "003"]
    before = {p: p.stat().st_mtime_ns for p in (out / "chunks").rglob("*.pdf")}
    class_pdfs = {name: (out / name).read_bytes() for name in ("worksheets.pdf", "keys.pdf", "grading.pdf")}
    again = _build(assignment, roster, out)  # nothing changed: nothing compiled, nothing joined or cut
    assert again.chunks_compiled == 0 and again.pdfs_written == 0 and again.changed == []
    assert {p: p.stat().st_mtime_ns for p in (out / "chunks").rglob("*.pdf")} == before
    changed = roster[:3] + (Student("s4", "Student Four", 0, 4),) + roster[4:]
    summary = _build(assignment, changed, out)
    assert summary.chunks_compiled == 2 and summary.changed == ["s4"] and summary.pdfs_written == 2
    after = {p: p.stat().st_mtime_ns for p in (out / "chunks").rglob("*.pdf")}
    assert sorted(p.relative_to(out).as_posix() for p in after if after[p] != before[p]) == [
        "chunks/002/keys.pdf", "chunks/002/worksheets.pdf"]
    assert "Student Four" in "".join(_pdf_pages(out / "students" / "s4.pdf"))
    assert "Student Four" in "".join(_pdf_pages(out / "worksheets.pdf"))
    assert (out / "worksheets.pdf").read_bytes() != class_pdfs["worksheets.pdf"]
    # Back to the first names: the same .tex give the same bytes, the class PDFs too.
    _build(assignment, roster, out)
    assert {name: (out / name).read_bytes() for name in class_pdfs} == class_pdfs
    # A smaller class: the chunks it no longer has are removed.
    _build(assignment, roster[:2], out)
    assert [p.name for p in (out / "chunks").iterdir()] == ["001"]


def test_the_class_pdf_has_every_students_pages_in_order_as_one_document_would(tmp_path, small_chunks):
    assignment = load_assignment(_one_page_assignment(tmp_path))
    roster = tuple(Student(f"s{i}", f"Student {i}", 0, i) for i in range(1, 6))
    out = tmp_path / "out"
    summary = _build(assignment, roster, out)
    joined = _pdf_pages(out / "worksheets.pdf")
    assert summary.pages["worksheets.pdf"] == len(joined) == 9  # five one-page sheets, each from an odd page
    for n in range(1, 6):
        assert f"Student {n}" in joined[2 * (n - 1)] and "Page 1 of 1" in joined[2 * (n - 1)]
        if n < 5:
            assert joined[2 * n - 1].strip() == ""
    # The whole class's document compiled alone gives the same pages.
    alone = tmp_path / "alone"
    alone.mkdir()
    tex = alone / "worksheets.tex"
    tex.write_bytes((out / "worksheets.tex").read_bytes())
    compile_class_documents([tex])
    assert _pdf_pages(tex.with_suffix(".pdf")) == joined
    # Keys too, with longer sheets: the students' order and page counts are the one document's.
    keys = _pdf_pages(out / "keys.pdf")
    assert [i for i, page in enumerate(keys) if "Answer key" in page and "Page 1 of" in page] == \
        [keys.index(next(p for p in keys if f"Student {n}" in p)) for n in range(1, 6)]


def test_names_set_by_luatex_are_placed_in_every_chunk(tmp_path, small_chunks):
    assignment = load_assignment(EXAMPLE)
    names = ("Ann", "Ирина Петрова", "Bo", "Nguyễn Văn An")
    roster = tuple(Student(f"s{i}", name, 0, i) for i, name in enumerate(names, start=1))
    out = tmp_path / "out"
    _build(assignment, roster, out)
    for i, name in enumerate(names, start=1):
        printed = "".join(_pdf_pages(out / "students" / f"s{i}.pdf"))
        assert name.split()[0] in printed, name
    # Another name set by LuaTeX in the first chunk moves the others' pages in names.pdf: chunk 002 (its .tex
    # unchanged) is compiled again from the new names.dims.
    summary = _build(assignment, (Student("s1", "Ἀριστοτέλης", 0, 1),) + roster[1:], out)
    assert summary.chunks_compiled == 4
    assert "Nguyễn" in "".join(_pdf_pages(out / "students" / "s4.pdf"))


def test_the_same_class_in_another_folder_gives_the_same_pdfs(tmp_path, small_chunks):
    # A name set by LuaTeX is placed from names.pdf, whose name pdfTeX records in the PDF: found by a path
    # relative to the chunk, it is the same in every folder.
    assignment = load_assignment(EXAMPLE)
    names = ("Ann", "Bo", "Ирина Петрова")
    roster = tuple(Student(f"s{i}", name, 0, i) for i, name in enumerate(names, start=1))
    folders = [tmp_path / "one", tmp_path / "deeper" / "two"]
    for out in folders:
        _build(assignment, roster, out)
    pdfs = [{p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*.pdf")} for out in folders]
    assert "chunks/002/worksheets.pdf" in pdfs[0] and pdfs[0] == pdfs[1]
    assert str(tmp_path).encode() not in pdfs[0]["chunks/002/worksheets.pdf"]


def test_a_class_pdf_deleted_is_joined_again_and_a_failed_build_leaves_none_half_joined(tmp_path, small_chunks,
                                                                                         monkeypatch):
    assignment = load_assignment(EXAMPLE)
    roster = tuple(Student(f"s{i}", f"Student {i}", 0, i) for i in range(1, 6))
    out = tmp_path / "out"
    _build(assignment, roster, out)
    keys = (out / "keys.pdf").read_bytes()
    (out / "keys.pdf").unlink()
    again = _build(assignment, roster, out)  # no chunk compiled: joined from the chunks' PDFs, the same bytes
    assert again.chunks_compiled == 0 and (out / "keys.pdf").read_bytes() == keys
    assert again.pages["keys.pdf"] == len(_pdf_pages(out / "keys.pdf"))
    # A chunk's TeX fails after others were compiled and joining began: no class PDF and no part of one is left.
    real = classbuild.compile_class_documents

    def failing(tex_paths, **kwargs):
        real(tex_paths[:2], **kwargs)
        raise TexError("chunks/003/keys.tex:1: a failure")

    monkeypatch.setattr(classbuild, "compile_class_documents", failing)
    for pdf in (out / "chunks").rglob("*.pdf"):
        pdf.unlink()
    (out / "keys.pdf").unlink()
    with pytest.raises(TexError):
        _build(assignment, roster, out)
    assert not (out / "keys.pdf").exists() and not list(out.glob(".*.part"))
