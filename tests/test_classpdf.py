"""Class sets with real pdflatex: hostile names print literally, odd-page starts, splitting, QR codes decode."""

from __future__ import annotations

import csv
import json
import re
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from generator.classes import classset
from generator.classes.assignment import load_assignment
from generator.classes.classpdf import compile_class_documents, split_pages
from generator.cli import main
from generator.classes.qr import read_payload
from generator.documents.render import typographic_quotes
from generator.classes.roster import Student, load_roster
from generator.documents.sheet import ProblemSpec

from .test_classset import EXAMPLE, HOSTILE_NAMES


def _pdf_text(pdf: Path, first: int | None = None, last: int | None = None) -> str:
    pages = [*(["-f", str(first)] if first else []), *(["-l", str(last)] if last else [])]
    return subprocess.run(["pdftotext", *pages, str(pdf), "-"], check=True, capture_output=True, text=True).stdout


def _pages(pdf: Path) -> int:
    info = subprocess.run(["pdfinfo", str(pdf)], check=True, capture_output=True, text=True).stdout
    return int(re.search(r"Pages:\s+(\d+)", info).group(1))


def _write_roster(path: Path, rows: list[tuple[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8-sig") as out:  # as Excel saves it: BOM and CRLF
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(["Student ID", "Name", "Email"])
        writer.writerows((i, n, "ignored@example.org") for i, n in rows)
    return path


def _flat(text: str) -> str:
    """PDF text with line breaks and spaces removed (a 500-letter name wraps over several lines)."""
    return re.sub(r"\s+", "", text)


def test_hostile_names_print_literally_and_run_nothing(tmp_path, capsys):
    rows = [(f"h{i:02d}", name) for i, name in enumerate(HOSTILE_NAMES)] + [("a\\b{c}", "Id with TeX")]
    roster = _write_roster(tmp_path / "roster.csv", rows)
    out = tmp_path / "out"
    assert main(["class", str(EXAMPLE), str(roster), "--out", str(out), "--pdf"]) == 0
    assert not list(tmp_path.rglob("pwned"))
    for student in load_roster(roster):
        for suffix in ("", "-key"):
            text = _pdf_text(out / "students" / f"{student.stem}{suffix}.pdf", 1, 1)
            assert "root:x:0" not in text
            # What the fonts have prints as typed (quotes typographic); the rest is a boxed '?' (no hostile name
            # contains a '?').
            printable = re.sub(r"[^\x20-\x7e\u00a0-\u017f\u2018\u2019\u201c\u201d]", "",
                               typographic_quotes(student.name))
            assert _flat(printable) in _flat(text).replace("?", ""), (student.name, text[:300])
            assert _flat(student.id) in _flat(text)
    grading = _pdf_text(out / "grading.pdf")
    assert r"\input{/etc/passwd}" in grading and "Zoë O\u2019Brien-Łukasiewicz" in grading
    # Characters the fonts lack show a placeholder, one per character cluster (the family emoji is one).
    emoji_page = _pdf_text(out / "students" / "h07.pdf", 1, 1)
    assert re.search(r"Name: \? ?\? ?\?\n", emoji_page), emoji_page[:200]


def test_each_student_starts_on_an_odd_page_and_gets_their_own_pages(tmp_path, capsys):
    # One short problem: a one-page worksheet, so every student after the first needs a blank page before it.
    assignment = tmp_path / "one.toml"
    assignment.write_text('name = "one"\ntitle = "One page"\nseed = 5\n[[problems]]\ntype = "matmul"\n'
                          'options = { shape = "2x1" }\n', encoding="utf-8")
    roster = _write_roster(tmp_path / "roster.csv", [("s1", "Ann"), ("s2", "Bo"), ("s3", "Cy")])
    out = tmp_path / "out"
    assert main(["class", str(assignment), str(roster), "--out", str(out), "--pdf"]) == 0
    assert "worksheets.pdf 5 pages" in capsys.readouterr().out
    text = _pdf_text(out / "worksheets.pdf").split("\f")
    assert ["Ann" in text[0], text[1].strip(), "Bo" in text[2], text[3].strip(), "Cy" in text[4]] == [True, "", True, "", True]
    for stem, name in (("s1", "Ann"), ("s2", "Bo"), ("s3", "Cy")):
        pdf = out / "students" / f"{stem}.pdf"
        assert _pages(pdf) == 1 and f"Name: {name}" in _pdf_text(pdf)
        assert "Page 1 of 1" in _pdf_text(pdf)  # numbering restarts per student, and so does the total
        key = out / "students" / f"{stem}-key.pdf"
        assert f"Name: {name}" in _pdf_text(key) and "Answer key" in _pdf_text(key)


def test_a_changed_student_rebuilds_only_their_pdfs_and_pdfs_are_reproducible(tmp_path, capsys):
    roster = _write_roster(tmp_path / "roster.csv", [("s1", "Ann"), ("s2", "Bo")])
    out = tmp_path / "out"
    assert main(["class", str(EXAMPLE), str(roster), "--out", str(out), "--pdf"]) == 0
    capsys.readouterr()
    first = {p.name: p.read_bytes() for p in out.rglob("*.pdf")}
    (out / "students" / "s1.pdf").unlink()
    assert main(["class", str(EXAMPLE), str(roster), "--out", str(out), "--pdf"]) == 0
    assert "student PDFs: 1 written, 3 unchanged" in capsys.readouterr().out
    assert {p.name: p.read_bytes() for p in out.rglob("*.pdf")} == first  # the same .tex gives the same bytes
    _write_roster(roster, [("s1", "Ann"), ("s2", "Bo Ek")])
    assert main(["class", str(EXAMPLE), str(roster), "--out", str(out), "--pdf"]) == 0
    summary = capsys.readouterr().out
    assert "1 written, 1 unchanged" in summary and "student PDFs: 2 written, 2 unchanged" in summary
    assert (out / "students" / "s1.pdf").read_bytes() == first["s1.pdf"]
    assert "Bo Ek" in _pdf_text(out / "students" / "s2.pdf")


def test_footers_count_each_students_own_pages_in_one_run(tmp_path):
    # Three students with sheets of different lengths in one class document (one pdflatex run): every page of
    # each says "Page N of M" with M that student's own page count, in the class PDF and in the PDFs cut from it.
    example = load_assignment(EXAMPLE)
    problem_lists = (["matmul:shape=2x1"], ["matmul", "transpose", "dot_product"],
                     ["matmul", "transpose", "dot_product", "matmul_gradient", "matmul", "transpose", "dot_product"])
    sheets = [classset.student_sheet(replace(example, problems=tuple(map(ProblemSpec.parse, names)),
                                             points=(1,) * len(names)), Student(f"s{n}", f"Student {n}", 0, n))
              for n, names in enumerate(problem_lists, start=1)]
    tex = tmp_path / "worksheets.tex"
    tex.write_text(classset.class_document(s.worksheet for s in sheets), encoding="utf-8")
    result = compile_class_documents([tex])[tex]
    counts = [last - first + 1 for first, last in result.students]
    assert len(set(counts)) == 3, counts
    targets = {tmp_path / f"s{n}.pdf": pages for n, pages in enumerate(result.students, start=1)}
    split_pages(result.pdf, targets)
    for (first, last), target in zip(result.students, targets):
        for pdf, pages in ((result.pdf, (first, last)), (target, (1, last - first + 1))):
            done = subprocess.run(["pdftotext", "-f", str(pages[0]), "-l", str(pages[1]), str(pdf), "-"],
                                  check=True, capture_output=True, text=True)
            assert done.stderr == ""  # every footer's objects are there (none unknown, none missing)
            footers = re.findall(r"Page \d+(?: of \d+)?", done.stdout)
            total = last - first + 1
            assert footers == [f"Page {n} of {total}" for n in range(1, total + 1)], (pdf.name, footers)
    # M sits on the footer's baseline, and the footer is centred on the page as typeset text is (N and M have as
    # many digits here; see page_total.tex.j2).
    boxes = subprocess.run(["pdftotext", "-bbox", str(result.pdf), "-"], check=True, capture_output=True,
                           text=True).stdout
    for page in boxes.split("<page ")[1:]:
        words = [(float(x0), float(y0), float(x1), float(y1), word) for x0, y0, x1, y1, word in
                 re.findall(r'xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)<', page)]
        if not words:
            continue  # the blank page before a student who starts on an odd page
        footer = [w for w in words if w[3] == max(w[3] for w in words)]  # the page's lowest line
        assert [w[4] for w in footer][0::2] == ["Page", "of"] and len(footer) == 4, footer
        assert len({(w[1], w[3]) for w in footer}) == 1, footer
        centre = (footer[0][0] + footer[-1][2]) / 2
        assert abs(centre - float(re.search(r'width="([\d.]+)"', page).group(1)) / 2) < 0.05, footer


def test_the_printed_qr_code_decodes_to_the_sheets_seed(tmp_path):
    zxingcpp = pytest.importorskip("zxingcpp")
    roster = _write_roster(tmp_path / "roster.csv", [("s1", "Ann"), ("s2", "Bo")])
    out = tmp_path / "out"
    assert main(["class", str(EXAMPLE), str(roster), "--out", str(out), "--pdf"]) == 0
    for stem in ("s1", "s2-key"):
        # 150 dpi, grey: about what a phone sees of a printed page.
        subprocess.run(["pdftoppm", "-r", "150", "-gray", "-f", "1", "-l", "1", str(out / "students" / f"{stem}.pdf"),
                        str(tmp_path / stem)], check=True)
        raw = (tmp_path / f"{stem}-1.pgm").read_bytes()
        _magic, size, _depth, pixels = raw.split(b"\n", 3)
        width, height = map(int, size.split())
        image = np.frombuffer(pixels, dtype=np.uint8).reshape(height, width)
        found = zxingcpp.read_barcodes(image)
        assert len(found) == 1
        decoded = read_payload(found[0].text)
        key = json.loads((out / "students" / f"{stem.removesuffix('-key')}-key.json").read_text())
        assert (decoded.seed, decoded.variant) == (key["seed"], key["variant"])


def test_a_tex_failure_is_reported_and_leaves_no_class_pdf(tmp_path, capsys, monkeypatch):
    roster = _write_roster(tmp_path / "roster.csv", [("s1", "Ann")])
    out = tmp_path / "out"
    original = classset.class_document
    monkeypatch.setattr("generator.classes.classbuild.class_document",
                        lambda docs: original(docs).replace(r"\end{document}", r"\nosuchmacro\end{document}"))
    assert main(["class", str(EXAMPLE), str(roster), "--out", str(out), "--pdf"]) == 1
    err = capsys.readouterr().err
    assert "TeX error" in err and "Undefined control sequence" in err
    assert not (out / "worksheets.pdf").exists() and not (out / "keys.pdf").exists()


def test_a_pdf_whose_tex_changed_is_removed_when_not_rebuilt(tmp_path, capsys):
    roster = _write_roster(tmp_path / "roster.csv", [("s1", "Ann"), ("s2", "Bo")])
    out = tmp_path / "out"
    assert main(["class", str(EXAMPLE), str(roster), "--out", str(out), "--pdf"]) == 0
    _write_roster(roster, [("s1", "Ann"), ("s2", "Bo Ek")])
    assert main(["class", str(EXAMPLE), str(roster), "--out", str(out)]) == 0  # no --pdf this time
    pdfs = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.pdf"))
    # s2's PDFs and the class PDFs (grading too: it names s2) no longer match their .tex: gone, never stale.
    assert pdfs == ["students/s1-key.pdf", "students/s1.pdf"]


def test_every_students_footer_counts_their_own_pages_and_pdfs_carry_their_properties(tmp_path, capsys):
    roster = _write_roster(tmp_path / "roster.csv", [("s1", "Ann O'Hara"), ("s2", "Bo")])
    out = tmp_path / "out"
    assert main(["class", str(EXAMPLE), str(roster), "--out", str(out), "--pdf"]) == 0
    for stem in ("s1", "s1-key", "s2", "s2-key"):
        pdf = out / "students" / f"{stem}.pdf"
        pages = _pdf_text(pdf).split("\f")[:-1]
        assert len(pages) == _pages(pdf) > 1
        # Each student's pages numbered from 1, with their own total (one pdflatex run, see page_total.tex.j2).
        assert all(f"Page {n} of {len(pages)}" in page for n, page in enumerate(pages, start=1)), stem
        info = subprocess.run(["pdfinfo", str(pdf)], check=True, capture_output=True, text=True).stdout
        subject = "Answer key" if stem.endswith("-key") else "Worksheet"
        assert re.search(r"^Title:\s+Week 3 quiz: matrix products$", info, re.M)
        assert re.search(rf"^Subject:\s+{subject}$", info, re.M)
        assert re.search(r"^Author:\s+Transformers by hand$", info, re.M)
    grading = out / "grading.pdf"
    pages = _pdf_text(grading).split("\f")[:-1]
    assert all(f"Page {n} of {len(pages)}" in page for n, page in enumerate(pages, start=1))
    text = _pdf_text(grading)
    assert "Ann O\u2019Hara" in text and "Problem 1 4 points, 1/2 per blank" in text and "/ 14" in text
