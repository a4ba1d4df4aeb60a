"""pdfcut: the PDFs it assembles from another PDF's pages hold exactly those pages (every object they use, and
nothing else), are well formed by qpdf's own check, and are the same bytes for the same pages."""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

import pikepdf
import pytest

from generator.classes import classset, pdfcut
from generator.classes.assignment import load_assignment
from generator.classes.classpdf import compile_class_documents
from generator.classes.roster import Student
from generator.documents.sheet import ProblemSpec

from .test_classset import EXAMPLE, SECRET


def _canonical(obj, seen=()):
    """An object with every reference followed (except a page's /Parent), streams as their raw bytes: what a page
    is, whatever the object numbers."""
    if isinstance(obj, pikepdf.Stream):
        entries = {k: _canonical(v, seen) for k, v in obj.stream_dict.items() if k != "/Length"}
        return ("stream", entries, obj.read_raw_bytes())
    if isinstance(obj, pikepdf.Dictionary):
        return {k: _canonical(v, seen) for k, v in obj.items() if k != "/Parent"}
    if isinstance(obj, pikepdf.Array):
        return [_canonical(v, seen) for v in obj]
    return repr(obj)


def _page(pdf: pikepdf.Pdf, index: int):
    """A page as _canonical gives it, with what it inherits from the page tree (as a reader resolves it)."""
    page = pdf.pages[index].obj
    canonical = _canonical(page)
    node = page.get("/Parent")
    while node is not None:
        for name in ("/Resources", "/MediaBox", "/CropBox", "/Rotate"):
            if name in node and name not in canonical:
                canonical[name] = _canonical(node[name])
        node = node.get("/Parent")
    return canonical


def _check(path: Path) -> pikepdf.Pdf:
    pdf = pikepdf.open(path)
    assert pdf.check_pdf_syntax() == [], path
    assert pdf.get_warnings() == [], path
    return pdf


def _inherited_source(path: Path) -> Path:
    """Three pages whose resources and media box are the page tree's (written by hand: qpdf's writer moves them
    onto the pages)."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               b"<< /Type /Pages /Kids [ 3 0 R 4 0 R 5 0 R ] /Count 3 /Resources 6 0 R /MediaBox [ 0 0 500 700 ] >>"]
    objects += [b"<< /Type /Page /Parent 2 0 R /Contents %d 0 R >>" % (7 + n) for n in range(3)]
    objects.append(b"<< /Font << /F1 10 0 R >> >>")
    for n in range(3):
        content = b"BT /F1 12 Tf 72 600 Td (Page %d) Tj ET" % (n + 1)
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content))
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    data, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(data))
        data += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(data)
    data += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    data += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    data += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    path.write_bytes(bytes(data))
    return path


def _source(path: Path, inherited: bool = False, link_to: int | None = None) -> Path:
    """Four pages drawing with one shared font and one shared form; one page's dictionary holds a string that
    reads like a reference. `inherited`: three pages, their resources and media box on the page tree."""
    if inherited:
        return _inherited_source(path)
    pdf = pikepdf.new()
    font = pdf.make_indirect(pikepdf.Dictionary(Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1,
                                                BaseFont=pikepdf.Name.Helvetica))
    form = pikepdf.Stream(pdf, b"0 0 10 10 re f")
    form.Type, form.Subtype, form.BBox = pikepdf.Name.XObject, pikepdf.Name.Form, [0, 0, 10, 10]
    resources = pdf.make_indirect(pikepdf.Dictionary(Font={"/F1": font}, XObject={"/Fm1": pdf.make_indirect(form)}))
    for n in range(4):
        content = pikepdf.Stream(pdf, f"BT /F1 12 Tf 72 720 Td (Page {n + 1}) Tj ET /Fm1 Do".encode())
        entries = {"/Type": pikepdf.Name.Page, "/Contents": pdf.make_indirect(content), "/Resources": resources,
                   "/MediaBox": [0, 0, 595, 842 + n]}
        if n == 2:
            entries["/Note"] = pikepdf.String("see 1 0 R (and) 2 0 R")
        pdf.pages.append(pikepdf.Page(pikepdf.Dictionary(entries)))
    if link_to is not None:
        pdf.pages[0].obj.Annots = pdf.make_indirect(pikepdf.Array([pikepdf.Dictionary(
            Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.Link, Rect=[0, 0, 10, 10],
            Dest=[pdf.pages[link_to].obj, pikepdf.Name.Fit])]))
    pdf.docinfo.Title = pikepdf.String("A (title) with 3 0 R in it")
    pdf.save(path, deterministic_id=True)
    return path


@pytest.mark.parametrize("inherited", [False, True])
def test_cut_pages_hold_exactly_their_pages(tmp_path, inherited):
    source = _source(tmp_path / "source.pdf", inherited)
    if inherited:  # in the file, on the page tree alone (pikepdf.open copies them onto the pages)
        assert source.read_bytes().count(b"/Resources") == 1
    ranges = {tmp_path / "a.pdf": (1, 1), tmp_path / "b.pdf": (2, 3), tmp_path / "c.pdf": (3, 3)}
    pdfcut.cut_pages(pdfcut.PdfObjects.read(source), ranges)
    with pikepdf.open(source) as original:
        for target, (first, last) in ranges.items():
            with _check(target) as cut:
                assert [_page(cut, i) for i in range(len(cut.pages))] == \
                       [_page(original, i) for i in range(first - 1, last)]
                assert "/Resources" in cut.pages[0].obj  # on the page itself: the new page tree has none
                if not inherited:
                    assert str(cut.docinfo.Title) == "A (title) with 3 0 R in it"
                    assert str(cut.pages[-1].obj.get("/Note", "")) in ("", "see 1 0 R (and) 2 0 R")
                # Only what the pages use: the form once (with the font), the contents of these pages, no others.
                streams = [o for o in cut.objects if isinstance(o, pikepdf.Stream)]
                assert len(streams) == (last - first + 1) + (not inherited)
    assert (tmp_path / "c.pdf").read_bytes() != (tmp_path / "a.pdf").read_bytes()


def test_the_same_pages_give_the_same_bytes_and_another_page_another_id(tmp_path):
    source = _source(tmp_path / "source.pdf")
    pdfcut.cut_pages(pdfcut.PdfObjects.read(source), {tmp_path / "one.pdf": (2, 2), tmp_path / "two.pdf": (3, 3)})
    first = (tmp_path / "one.pdf").read_bytes()
    pdfcut.cut_pages(pdfcut.PdfObjects.read(source), {tmp_path / "one.pdf": (2, 2)})
    assert (tmp_path / "one.pdf").read_bytes() == first
    ids = [bytes(pikepdf.open(tmp_path / name).trailer.ID[0]) for name in ("one.pdf", "two.pdf")]
    assert ids[0] != ids[1]
    assert not list(tmp_path.glob(".*.part"))


def test_a_link_to_a_page_outside_the_cut_is_refused(tmp_path):
    source = _source(tmp_path / "source.pdf", link_to=3)
    with pytest.raises(ValueError, match="refers to a page outside the pages cut"):
        pdfcut.cut_pages(pdfcut.PdfObjects.read(source), {tmp_path / "a.pdf": (1, 2)})
    assert not (tmp_path / "a.pdf").exists()
    # The page linked to is among the pages cut: nothing outside.
    pdfcut.cut_pages(pdfcut.PdfObjects.read(source), {tmp_path / "b.pdf": (1, 4)})
    with _check(tmp_path / "b.pdf") as cut:
        assert cut.pages[0].obj.Annots[0].Dest[0].objgen == cut.pages[3].obj.objgen


def test_join_puts_parts_in_order_with_blank_pages_between(tmp_path):
    one = _source(tmp_path / "one.pdf")
    two = _source(tmp_path / "two.pdf", inherited=True)
    pdfcut.cut_pages(pdfcut.PdfObjects.read(one), {tmp_path / "odd.pdf": (1, 3)})
    joiner = pdfcut.Joiner(tmp_path / "whole.pdf")
    for part, blank in ((tmp_path / "odd.pdf", True), (two, False), (one, False)):
        joiner.append(pdfcut.PdfObjects.read(part), blank_after=blank)
    assert not (tmp_path / "whole.pdf").exists()  # written beside it, moved into place whole
    assert joiner.finish() == 3 + 1 + 3 + 4
    with _check(tmp_path / "whole.pdf") as whole, pikepdf.open(one) as first, pikepdf.open(two) as second:
        expected = [_page(first, i) for i in range(3)] + [None] + [_page(second, i) for i in range(3)] + \
            [_page(first, i) for i in range(4)]
        got = [_page(whole, i) for i in range(len(whole.pages))]
        blank = whole.pages[3].obj  # the size of the part's last page, nothing on it
        assert [float(v) for v in blank.MediaBox] == [0, 0, 595, 844] and "/Contents" not in blank
        assert got[:3] + got[4:] == expected[:3] + expected[4:]
        assert str(whole.docinfo.Title) == "A (title) with 3 0 R in it"


def test_students_cut_from_a_real_class_document(tmp_path):
    # pdfTeX's own output (object streams, fonts, the footers' forms): each student's pages, checked by qpdf,
    # read by poppler with no error, the text of the class document's pages.
    example = load_assignment(EXAMPLE)
    spec = replace(example, problems=(ProblemSpec.parse("matmul"), ProblemSpec.parse("dot_product")), points=(1, 1))
    sheets = [classset.student_sheet(spec, Student(f"s{n}", f"Student {n}", 0, n), SECRET) for n in (1, 2, 3)]
    tex = tmp_path / "keys.tex"
    tex.write_text(classset.class_document(s.key for s in sheets), encoding="utf-8")
    result = compile_class_documents([tex])[tex]
    targets = {tmp_path / f"s{n}.pdf": pages for n, pages in enumerate(result.students, start=1)}
    pdfcut.cut_pages(pdfcut.PdfObjects.read(result.pdf), targets)
    with pikepdf.open(result.pdf) as whole:
        for target, (first, last) in targets.items():
            with _check(target) as cut:
                assert [_page(cut, i) for i in range(len(cut.pages))] == \
                       [_page(whole, i) for i in range(first - 1, last)]
            text = subprocess.run(["pdftotext", str(target), "-"], capture_output=True, text=True, check=True)
            assert text.stderr == ""
            assert text.stdout == subprocess.run(["pdftotext", "-f", str(first), "-l", str(last), str(result.pdf), "-"],
                                                 capture_output=True, text=True, check=True).stdout


def test_a_join_given_up_leaves_nothing_and_a_newer_part_sets_the_catalogs_version(tmp_path):
    one = _source(tmp_path / "one.pdf")
    newer = tmp_path / "newer.pdf"
    with pikepdf.open(one) as pdf:
        pdf.save(newer, min_version="1.7", deterministic_id=True)
    joiner = pdfcut.Joiner(tmp_path / "given-up.pdf")
    joiner.append(pdfcut.PdfObjects.read(one))
    joiner.abort()
    assert list(tmp_path.glob("*given-up*")) == []
    joiner = pdfcut.Joiner(tmp_path / "whole.pdf")
    for part in (one, newer):
        joiner.append(pdfcut.PdfObjects.read(part))
    assert joiner.finish() == 8
    with _check(tmp_path / "whole.pdf") as whole, pikepdf.open(one) as first:
        assert first.pdf_version < "1.7" and whole.pdf_version == first.pdf_version  # the header: the first part's
        assert whole.Root.Version == pikepdf.Name("/1.7")
