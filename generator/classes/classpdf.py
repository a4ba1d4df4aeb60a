"""Class documents to PDF: one pdflatex run each (run side by side), then per-student PDFs cut by page range."""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pikepdf

from generator.classes import pdfcut
from generator.documents.pdf import REPRODUCIBLE, TexError, first_tex_error

# As pdf.LATEXMK_FLAGS, for pdflatex itself. One run gives everything: the page map (class.tex.j2) and every
# student's "Page N of M" footers, whose totals are filled in as each student's sheet ends (page_total.tex.j2).
PDFLATEX_FLAGS = ("-interaction=nonstopmode", "-halt-on-error", "-file-line-error", "-no-shell-escape")
RUNS = ((),)
# The packages a class document loads (the lines between its first "\\ifdefined\\preloadedpreamble\\else" and "\\fi",
# base.tex.j2 and grading.tex.j2) are dumped once per machine into a format of their own, kept uncompressed: a
# pdflatex run then starts in a quarter of the instructions (pdfTeX inflates the gzipped latex format, 18 MB, at
# every start, and loads the packages again), a fifth of a chunk's TeX time. Without the format (none could be
# made) the document loads them itself, and the pages are the same.
PRELOADABLE = re.compile(r"\A\\ifdefined\\preloadedpreamble\\else\n(.*?\n)\\fi\n", re.DOTALL)
FORMAT_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "transformer-worksheets" / "tex-formats"
_format_lock = threading.Lock()
_formats: dict[str, Path | None] = {}


@functools.cache
def _tex_identity() -> str:
    """What a dumped format depends on besides its packages: the pdfTeX binary and the LaTeX format it starts from
    (a TeX update changes them, and the formats are made again); empty if either is not found."""
    try:
        base = subprocess.run(["kpsewhich", "-engine=pdftex", "pdflatex.fmt"], capture_output=True, text=True,
                              stdin=subprocess.DEVNULL).stdout.strip()
        parts = []
        for path in (shutil.which("pdftex"), base):
            if not path:
                return ""
            real = Path(path).resolve()
            stat = real.stat()
            parts.append(f"{real} {stat.st_size} {stat.st_mtime_ns}")
    except OSError:
        return ""
    return "\n".join(parts)


def preloaded_format(tex: Path) -> Path | None:
    """The uncompressed format with the document's packages loaded, made the first time it is asked for (in
    FORMAT_CACHE), or None: the document does not say which lines it may preload, or no format could be made."""
    with open(tex, encoding="utf-8", errors="replace") as file:
        found = PRELOADABLE.match(file.read(4096))
    if found is None:
        return None
    with _format_lock:  # the documents' threads: each format is made once
        identity = _tex_identity()
        if not identity:
            return None
        key = hashlib.sha256(f"{identity}\n{found.group(1)}".encode()).hexdigest()[:20]
        if key not in _formats:
            _formats[key] = _make_format(key, found.group(1))
        return _formats[key]


def _make_format(key: str, packages: str) -> Path | None:
    """FORMAT_CACHE/<key>.fmt: `packages` loaded and dumped by pdflatex -ini, stored uncompressed (pdfTeX reads an
    uncompressed format as it is). Made in a folder of its own and moved in whole: builds side by side may race."""
    target = FORMAT_CACHE / f"{key}.fmt"
    if target.exists():
        return target
    try:
        FORMAT_CACHE.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=FORMAT_CACHE) as work:
            (Path(work) / "preamble.ini").write_text(packages + "\\def\\preloadedpreamble{}\n\\dump\n", encoding="utf-8")
            done = subprocess.run(
                ["pdflatex", "-ini", "-jobname=preloaded", "-interaction=batchmode", "-no-shell-escape",
                 "&pdflatex", "preamble.ini"], cwd=work, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, env={**os.environ, **REPRODUCIBLE})
            dumped = Path(work) / "preloaded.fmt"
            if done.returncode != 0 or not dumped.exists():
                return None
            partial = Path(work) / "uncompressed.fmt"
            with gzip.open(dumped) as source, open(partial, "wb") as out:
                shutil.copyfileobj(source, out)
            os.replace(partial, target)
    except OSError:
        return None
    return target


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


def compile_class_documents(tex_paths: list[Path], jobs: int | None = None, inputs: Path | None = None,
                            on_compiled: Callable[[ClassPdf], None] | None = None) -> dict[Path, ClassPdf]:
    """Compile each .tex beside itself with one pdflatex run, `jobs` at a time (default: one per core), in order;
    TeX looks for files in the document's folder, then in `inputs` (the class folder's names.dims for a chunk).
    `on_compiled` is called with each PDF as soon as it is in place, one call at a time, while others compile: in
    a thread of its own, so that the pdflatex that made the PDF hands its core to the next document at once.

    On a TeX error no PDF of that document is left (not even an old one) and TexError names the first error."""
    if shutil.which("pdflatex") is None:
        raise TexError("pdflatex is not installed; run `make` (or apt-get install texlive-latex-recommended lmodern)")
    jobs = max(1, jobs or os.cpu_count() or 1)
    results: dict[Path, ClassPdf] = {}
    with ExitStack() as stack:
        build_root = stack.enter_context(tempfile.TemporaryDirectory(prefix="class-tex-"))
        builds = [(tex, Path(build_root) / str(number)) for number, tex in enumerate(tex_paths)]
        for _, build_dir in builds:
            build_dir.mkdir()
        returncodes = {tex: 0 for tex in tex_paths}
        env = {**os.environ, **REPRODUCIBLE}

        def env_for(tex: Path) -> dict[str, str]:
            """The document's own folder first, then `inputs`, then what TEXINPUTS was (empty: TeX's own).

            `inputs` as a path relative to the document: pdfTeX records an included PDF's name (names.pdf) in the
            PDF, and the same class in another folder gives the same bytes."""
            if inputs is None:
                return env
            relative = os.path.relpath(inputs.resolve(), tex.parent.resolve())
            return {**env, "TEXINPUTS": os.pathsep.join([".", relative, env.get("TEXINPUTS", "")])}
        errors: dict[Path, str] = {}

        def finish(tex: Path, build_dir: Path) -> None:
            """The document's PDF moved beside its .tex (or, on an error, none there), then `on_compiled`."""
            built = build_dir / f"{tex.stem}.pdf"
            target = tex.with_suffix(".pdf")
            if returncodes[tex] != 0 or not built.exists():
                log = build_dir / f"{tex.stem}.log"
                errors[tex] = first_tex_error(log.read_text(errors="replace") if log.exists() else "", tex)
                target.unlink(missing_ok=True)
                return
            page_map = build_dir / f"{tex.stem}.pages"  # only class documents write one
            students = read_page_map(page_map.read_text()) if page_map.exists() else ()
            with pikepdf.open(built) as document:
                pages = len(document.pages)
            partial = target.with_name(f".{target.name}.part")
            shutil.copyfile(built, partial)
            os.replace(partial, target)
            results[tex] = ClassPdf(target, pages, students)
            if on_compiled is not None:  # one at a time, in order, while the other documents compile
                callbacks.append(after.submit(on_compiled, results[tex]))

        after = stack.enter_context(ThreadPoolExecutor(1))
        callbacks: list = []
        for number, extra in enumerate(RUNS):
            def run(tex: Path, build_dir: Path, extra: tuple[str, ...] = extra, last: bool = number == len(RUNS) - 1):
                preloaded = preloaded_format(tex)
                for fmt in ([f"-fmt={preloaded}"], []) if preloaded else ([],):
                    returncodes[tex] = subprocess.run(
                        ["pdflatex", *fmt, *PDFLATEX_FLAGS, *extra, f"-output-directory={build_dir}",
                         f"./{tex.name}" if inputs else tex.name],
                        cwd=tex.parent, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL, env=env_for(tex)).returncode
                    if returncodes[tex] == 0:  # else again without the format: the error is the document's own
                        break
                if last or returncodes[tex] != 0:
                    finish(tex, build_dir)

            # A thread per core, each waiting on its pdflatex in turn: the first to finish starts the next.
            with ThreadPoolExecutor(jobs) as pool:
                for future in [pool.submit(run, tex, build_dir) for tex, build_dir in builds
                               if returncodes[tex] == 0]:  # a document that failed is not run again
                    future.result()
        for callback in callbacks:
            callback.result()
        if errors:
            raise TexError(next(errors[tex] for tex in tex_paths if tex in errors))
    return results


def split_pages(source: Path, ranges: dict[Path, tuple[int, int]]) -> None:
    """Write each target PDF with its page range (first, last; 1-based) of `source`, atomically, with the class
    document's title, subject, author and fixed dates, and a content-derived /ID: the same pages give the same bytes."""
    pdfcut.cut_pages(pdfcut.PdfObjects.read(source), ranges)
