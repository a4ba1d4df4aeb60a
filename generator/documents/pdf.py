"""Compile a .tex file to PDF with latexmk: no shell escape, private build folder, atomic result."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

LATEXMK_FLAGS = (
    "-pdf",
    "-interaction=nonstopmode",
    "-halt-on-error",
    "-file-line-error",
    "-no-shell-escape",
    "-norc",
)


# Fixed dates make the same .tex give the same PDF bytes (pdfTeX reads these variables).
REPRODUCIBLE = {"SOURCE_DATE_EPOCH": "1767225600", "FORCE_SOURCE_DATE": "1"}


class TexError(RuntimeError):
    """pdflatex failed; the message is the first TeX error with its file and line."""


def first_tex_error(log: str, tex_path: Path) -> str:
    """The earliest error in a TeX log as 'file:line: message' ('!' lines count, e.g. a missing package)."""
    located = re.search(r"^(?P<file>[^\s:]+\.tex):(?P<line>\d+): (?P<msg>.+)$", log, re.MULTILINE)
    bang = re.search(r"^! (?P<msg>.+)$", log, re.MULTILINE)
    if bang and (not located or bang.start() < located.start()):
        line = re.search(r"^l\.(\d+)", log[bang.end():], re.MULTILINE)
        return f"{tex_path}:{line.group(1) if line else '?'}: {bang['msg'].strip()}"
    if located:
        return f"{tex_path}:{located['line']}: {located['msg'].strip()}"
    return f"{tex_path}: TeX failed (see the log)"


@dataclass(frozen=True)
class Built:
    """A compiled PDF and the TeX log that made it."""

    pdf: Path
    log: str


def compile_pdf(tex_path: Path, out_dir: Path | None = None) -> Built:
    """Build tex_path into out_dir/<stem>.pdf; on failure remove any old PDF and raise TexError."""
    tex_path = Path(tex_path)
    out_dir = Path(out_dir) if out_dir else tex_path.parent
    target = out_dir / f"{tex_path.stem}.pdf"
    if shutil.which("latexmk") is None:
        raise TexError("latexmk is not installed; run `make` (or apt-get install latexmk texlive-latex-recommended lmodern)")
    # A fresh private build folder per document: parallel `make -j` jobs never share aux files,
    # and nothing is written outside the output folder.
    with tempfile.TemporaryDirectory(prefix="tex-") as build_dir:
        result = subprocess.run(
            ["latexmk", *LATEXMK_FLAGS, f"-outdir={build_dir}", tex_path.name],
            cwd=tex_path.parent,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            env={**os.environ, **REPRODUCIBLE},
        )
        built = Path(build_dir) / f"{tex_path.stem}.pdf"
        log_path = Path(build_dir) / f"{tex_path.stem}.log"
        log = log_path.read_text(errors="replace") if log_path.exists() else result.stdout + result.stderr
        if result.returncode != 0 or not built.exists():
            target.unlink(missing_ok=True)  # never leave a stale PDF that looks like the new one
            raise TexError(first_tex_error(log, tex_path))
        out_dir.mkdir(parents=True, exist_ok=True)
        partial = out_dir / f".{target.name}.part"
        shutil.copyfile(built, partial)
        os.replace(partial, target)
    return Built(target, log)
