"""Class documents to PDF: one pdflatex run each (run side by side), then per-student PDFs cut by page range."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pikepdf

from generator.documents.pdf import REPRODUCIBLE, TexError, first_tex_error

# As pdf.LATEXMK_FLAGS, for pdflatex itself. One run gives everything: the page map (class.tex.j2) and every
# student's "Page N of M" footers, whose totals are filled in as each student's sheet ends (page_total.tex.j2).
PDFLATEX_FLAGS = ("-interaction=nonstopmode", "-halt-on-error", "-file-line-error", "-no-shell-escape")
RUNS = ((),)


@dataclass(frozen=True)
class ClassPdf:
    """A compiled class document: the PDF, its page count, and each student's (first, last) page, 1-based."""

    pdf: Path
    pages: int
    students: tuple[tuple[int, int], ...]


def read_page_map(text: str) -> tuple[tuple[int, int], ...]:
    """The 'start N page' / 'end N page' lines class.tex.j2 writes, as one (first, last) pair per student."""
    starts, ends = {}, {}
    for kind, index, page in re.findall(r"^(start|end) (\d+) (\d+)$", text, re.MULTILINE):
        (starts if kind == "start" else ends)[int(index)] = int(page)
    return tuple((starts[i], ends[i]) for i in range(1, len(starts) + 1))


def compile_class_documents(tex_paths: list[Path]) -> dict[Path, ClassPdf]:
    """Compile each .tex beside itself with one pdflatex run, all at once (the machine's cores share them).

    On a TeX error no PDF of that document is left (not even an old one) and TexError names the first error."""
    if shutil.which("pdflatex") is None:
        raise TexError("pdflatex is not installed; run `make` (or apt-get install texlive-latex-recommended lmodern)")
    results: dict[Path, ClassPdf] = {}
    with tempfile.TemporaryDirectory(prefix="class-tex-") as build_root:
        builds = [(tex, Path(build_root) / str(number)) for number, tex in enumerate(tex_paths)]
        for _, build_dir in builds:
            build_dir.mkdir()
        returncodes = {tex: 0 for tex in tex_paths}
        for extra in RUNS:
            running = [(tex, subprocess.Popen(
                ["pdflatex", *PDFLATEX_FLAGS, *extra, f"-output-directory={build_dir}", tex.name],
                cwd=tex.parent, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                env={**os.environ, **REPRODUCIBLE},
            )) for tex, build_dir in builds if returncodes[tex] == 0]  # a document that failed is not run again
            for tex, process in running:
                returncodes[tex] = process.wait()
        errors = []
        for tex, build_dir in builds:
            built = build_dir / f"{tex.stem}.pdf"
            target = tex.with_suffix(".pdf")
            if returncodes[tex] != 0 or not built.exists():
                log = build_dir / f"{tex.stem}.log"
                errors.append(first_tex_error(log.read_text(errors="replace") if log.exists() else "", tex))
                target.unlink(missing_ok=True)
                continue
            page_map = build_dir / f"{tex.stem}.pages"  # only class documents write one
            students = read_page_map(page_map.read_text()) if page_map.exists() else ()
            with pikepdf.open(built) as document:
                pages = len(document.pages)
            partial = target.with_name(f".{target.name}.part")
            shutil.copyfile(built, partial)
            os.replace(partial, target)
            results[tex] = ClassPdf(target, pages, students)
        if errors:
            raise TexError(errors[0])
    return results


def split_pages(source: Path, ranges: dict[Path, tuple[int, int]]) -> None:
    """Write each target PDF with its page range (first, last; 1-based) of `source`, atomically."""
    with pikepdf.open(source) as document:
        for target, (first, last) in ranges.items():
            with pikepdf.new() as part:
                part.pages.extend(document.pages[first - 1:last])
                # The class document's title, subject and author (and fixed dates) are the student's PDF's too.
                part.docinfo = part.copy_foreign(document.docinfo)
                partial = target.with_name(f".{target.name}.part")
                # A content-derived /ID and no timestamps: the same pages give the same bytes.
                part.save(partial, deterministic_id=True)
            os.replace(partial, target)
