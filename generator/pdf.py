"""Compile a .tex file to PDF with latexmk: no shell escape, private build folder, atomic result."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

LATEXMK_FLAGS = (
    "-pdf",
    "-interaction=nonstopmode",
    "-halt-on-error",
    "-file-line-error",
    "-no-shell-escape",
    "-norc",
)


class TexError(RuntimeError):
    """pdflatex failed; the message is the first TeX error with its file and line."""


def first_tex_error(log: str, tex_path: Path) -> str:
    """The first error in a TeX log as 'file:line: message' (or the first '!' line)."""
    match = re.search(r"^(?P<file>[^\s:]+\.tex):(?P<line>\d+): (?P<msg>.+)$", log, re.MULTILINE)
    if match:
        return f"{tex_path}:{match['line']}: {match['msg'].strip()}"
    match = re.search(r"^! (?P<msg>.+)$", log, re.MULTILINE)
    if match:
        line = re.search(r"^l\.(\d+)", log[match.end():], re.MULTILINE)
        return f"{tex_path}:{line.group(1) if line else '?'}: {match['msg'].strip()}"
    return f"{tex_path}: TeX failed (see the log)"


def compile_pdf(tex_path: Path, out_dir: Path | None = None, build_root: Path = Path("build/tex")) -> Path:
    """Build tex_path into out_dir/<stem>.pdf; on failure remove any old PDF and raise TexError."""
    tex_path = Path(tex_path)
    out_dir = Path(out_dir) if out_dir else tex_path.parent
    target = out_dir / f"{tex_path.stem}.pdf"
    if shutil.which("latexmk") is None:
        raise TexError("latexmk is not installed; run `make` (or apt-get install latexmk texlive-latex-recommended lmodern)")
    # One build folder per document, so parallel `make -j` jobs never share aux files.
    build_dir = (build_root / out_dir.name / tex_path.stem).resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["latexmk", *LATEXMK_FLAGS, f"-outdir={build_dir}", tex_path.name],
        cwd=tex_path.parent,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        errors="replace",
    )
    built = build_dir / f"{tex_path.stem}.pdf"
    if result.returncode != 0 or not built.exists():
        target.unlink(missing_ok=True)  # never leave a stale PDF that looks like the new one
        log_path = build_dir / f"{tex_path.stem}.log"
        log = log_path.read_text(errors="replace") if log_path.exists() else result.stdout + result.stderr
        built.unlink(missing_ok=True)
        raise TexError(first_tex_error(log, tex_path))
    out_dir.mkdir(parents=True, exist_ok=True)
    partial = out_dir / f".{target.name}.part"
    shutil.copyfile(built, partial)
    os.replace(partial, target)
    return target
