"""Worksheets and keys compile with real pdflatex, fit A4 and US Letter, and TeX failures are reported."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from generator.documents.pdf import TexError, compile_pdf
from generator.core.registry import problem_types
from generator.documents.sheet import write_outputs

from .conftest import sheet_for

TITLE = r"Week 2 -- 50% & more_{fun} ~ #1 ^ \par Ünïcödé ``q''"
# As the title prints: every character as typed, but its quotes typographic (two apostrophes are a closing
# double quote, as the font joins them).
PRINTED_TITLE = r"Week 2 -- 50% & more_{fun} ~ #1 ^ \par Ünïcödé ``q”"
PAGE_SIZES = {"a4": "595.276 x 841.89 pts (A4)", "letter": "612 x 792 pts (letter)"}


def _pdf_text(pdf: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(pdf), "-"], check=True, capture_output=True, text=True).stdout


def _pdfinfo(pdf: Path) -> dict[str, str]:
    info = subprocess.run(["pdfinfo", str(pdf)], check=True, capture_output=True, text=True).stdout
    return dict((key, value.strip()) for key, _, value in (line.partition(":") for line in info.splitlines()))


def _page_size(pdf: Path) -> str:
    return _pdfinfo(pdf)["Page size"]


@pytest.mark.parametrize("paper", ["a4", "letter"])
def test_sheet_and_key_compile_and_fit(tmp_path, paper):
    sheet = sheet_for(sorted(problem_types()), seed=3, title=TITLE, paper=paper, calculator="basic")
    paths = write_outputs(sheet, "s", tmp_path / "worksheets", tmp_path / "answer_keys")
    for kind in ("worksheet", "key"):
        built = compile_pdf(paths[kind])
        pdf = built.pdf
        assert pdf == paths[kind].with_suffix(".pdf") and pdf.exists()
        assert _page_size(pdf) == PAGE_SIZES[paper]
        text = _pdf_text(pdf)
        # The title prints as typed, special characters included (its quotes typographic).
        assert PRINTED_TITLE in text
        assert sheet.variant in text
        # Nothing runs off the page: no overfull line wider than 1pt.
        widths = [float(w) for w in re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide\)", built.log)]
        assert not [w for w in widths if w > 1.0], widths
    worksheet_text = _pdf_text(paths["worksheet"].with_suffix(".pdf"))
    assert "Name:" in worksheet_text and "Answer" not in worksheet_text


def test_tex_error_names_file_and_line_and_leaves_no_pdf(tmp_path):
    tex = tmp_path / "broken.tex"
    tex.write_text("\\documentclass{article}\n\\begin{document}\n\\nosuchmacro\n\\end{document}\n")
    stale = tmp_path / "broken.pdf"
    stale.write_bytes(b"%PDF-old")
    with pytest.raises(TexError) as error:
        compile_pdf(tex)
    message = str(error.value)
    assert message.startswith(f"{tex}:3:") and "Undefined control sequence" in message
    assert not stale.exists()
    assert not list(tmp_path.glob("*.pdf"))


def test_shell_escape_is_off(tmp_path):
    tex = tmp_path / "escape.tex"
    marker = tmp_path / "ran"
    tex.write_text(
        "\\documentclass{article}\n\\begin{document}\n"
        f"\\immediate\\write18{{touch {marker}}}\nx\n\\end{{document}}\n"
    )
    compile_pdf(tex)
    assert not marker.exists()


@pytest.mark.slow  # pdflatex over every option set of every type
def test_every_option_of_every_type_compiles(tmp_path):
    """One sheet with every option set of every type, for a few seeds: no draw can break TeX."""
    specs = [kind.name + ":" + ",".join(f"{k}={v}" for k, v in options.items())
             for kind in problem_types().values() for options in kind.option_sets()]
    for seed in (8, 21):
        paths = write_outputs(sheet_for(specs, seed=seed, calculator="basic"), f"all{seed}", tmp_path, tmp_path)
        for kind in ("worksheet", "key"):
            built = compile_pdf(paths[kind])
            widths = [float(w) for w in re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide\)", built.log)]
            assert not [w for w in widths if w > 1.0], (seed, kind, widths)
            # A statement taller than 0.45 of the page (a chained problem's givens) may end its page.
            tall = set(re.findall(r"Tall statement: problem (\d+)", built.log))
            stranded = [s for s in _stranded_statements(built.pdf) if re.search(r"Problem (\d+)", s).group(1) not in tall]
            assert not stranded, (seed, kind, stranded)


def _stranded_statements(pdf: Path) -> list[str]:
    """Problems whose heading is on a page that does not also show their part (a)."""
    stranded = []
    for number, page in enumerate(_pdf_text(pdf).split("\f"), start=1):
        lines = [line.strip() for line in page.splitlines() if line.strip()]
        heads = [i for i, line in enumerate(lines) if re.match(r"Problem \d+\.", line)]
        if heads and not any(line.startswith("(a)") for line in lines[heads[-1]:]):
            stranded.append(f"page {number}: {lines[heads[-1]]}")
    return stranded


def test_same_tex_gives_the_same_pdf_bytes(tmp_path):
    paths = write_outputs(sheet_for(["matmul"], seed=4), "r", tmp_path / "one", tmp_path / "one")
    first = compile_pdf(paths["worksheet"]).pdf.read_bytes()
    second = compile_pdf(paths["worksheet"], tmp_path / "two").pdf.read_bytes()
    assert first == second


def test_missing_package_is_reported_before_the_emergency_stop(tmp_path):
    tex = tmp_path / "pkg.tex"
    tex.write_text("\\documentclass{article}\n\\usepackage{nosuchpackage}\n\\begin{document}\nx\n\\end{document}\n")
    with pytest.raises(TexError, match="nosuchpackage.sty' not found"):
        compile_pdf(tex)


def test_pdf_properties_page_totals_and_typographic_quotes(tmp_path):
    title = """Bob's "quiz" (it's ok) \\par 100%"""
    sheet = sheet_for(["matmul", "cross_entropy"], seed=2, title=title, calculator="basic")
    paths = write_outputs(sheet, "p", tmp_path, tmp_path)
    for kind, subject in (("worksheet", "Worksheet"), ("key", "Answer key")):
        pdf = compile_pdf(paths[kind]).pdf
        info = _pdfinfo(pdf)
        expected = "Bob\u2019s \u201cquiz\u201d (it\u2019s ok) \\par 100%"
        assert (info["Title"], info["Subject"], info["Author"]) == (expected, subject, "transformer-worksheets")
        pages = _pdf_text(pdf).split("\f")[:-1]
        assert len(pages) == int(info["Pages"]) > 1
        assert all(f"Page {n} of {len(pages)}" in page for n, page in enumerate(pages, start=1))
        assert expected in pages[0] and "'" not in pages[0].split("\n")[0]  # the header: no typewriter quote

