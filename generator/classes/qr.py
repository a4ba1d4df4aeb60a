"""The QR code on a student's sheet: what it holds, and its modules drawn as one PDF path by pdfTeX."""

from __future__ import annotations

import re
from dataclasses import dataclass

import segno

from generator import __version__
from generator.core.problem import Tex
from generator.core.registry import get_type
from generator.documents.sheet import GIVEN_OPTION, ProblemSpec

HEADER = "transformer-worksheets"
QUIET_ZONE = 4  # modules of white around the code, as the QR standard asks
ERROR_LEVEL = "m"  # survives a fold or a pencil mark (15% of the code)
# A fixed mask: segno would score all eight to pick one, which is 80% of the time a class set spends on QR codes;
# every mask is valid and decoders read them all (the tests decode printed codes).
MASK = 0
DARK_RUN = re.compile("1+")


def spec_text(spec: ProblemSpec) -> str:
    """A problem as the command line's -p takes it, with only the options that differ from the defaults."""
    defaults = {option.name: option.default for option in get_type(spec.type).options}
    options = [f"{k}={v}" for k, v in spec.options.items() if defaults.get(k) != v]
    if spec.given_parts:
        options.append(f"{GIVEN_OPTION}={''.join(spec.given_parts)}")
    return spec.type + (":" + ",".join(options) if options else "")


def student_link(url: str, code: str) -> str:
    """The address that signs the student in and opens their page: the class's url + /s/ + their access code."""
    return f"{url.rstrip('/')}/s/{code}"


def payload(assignment: str, student_id: str, variant: str, link: str = "", seed: int | None = None,
            problems: tuple[ProblemSpec, ...] = ()) -> str:
    """The text in a sheet's QR code: nothing from which its numbers (and so its key) can be rebuilt.

    With a link (the assignment has a url) the code holds the link alone, so a phone's camera opens the student's
    page. Otherwise it names the sheet: the generator version, the assignment, the student and the variant code.
    The seed and the problems are added only for an assignment with open seeds, whose keys anyone may rebuild."""
    if link:
        return link
    lines = [f"{HEADER} {__version__}", f"assignment {assignment}", f"student {student_id}", f"variant {variant}"]
    if seed is not None:
        lines += [f"seed {seed}", "problems " + " ".join(spec_text(p) for p in problems)]
    return "\n".join(lines)


@dataclass(frozen=True)
class Payload:
    """A QR code's text read back: a link (with the access code in it), or the sheet's names."""

    version: str = ""
    assignment: str = ""
    student: str = ""
    variant: str = ""
    link: str = ""
    code: str = ""  # the access code in the link
    seed: int | None = None  # open seeds only
    problems: tuple[str, ...] = ()  # as -p takes them; open seeds only


def read_payload(text: str) -> Payload:
    """Parse the text of a sheet's QR code (ValueError when it is not one)."""
    if text.startswith(("http://", "https://")):
        base, marker, code = text.rpartition("/s/")
        if not marker or not base or not code:
            raise ValueError("a link, but not to a student's page")
        return Payload(link=text, code=code)
    fields = dict(line.partition(" ")[::2] for line in text.strip().split("\n"))
    names = {HEADER, "assignment", "student", "variant"}
    if set(fields) not in (names, names | {"seed", "problems"}):
        raise ValueError("not a transformer-worksheets QR code")
    seed = int(fields["seed"]) if "seed" in fields else None
    return Payload(fields[HEADER], fields["assignment"], fields["student"], fields["variant"], seed=seed,
                   problems=tuple(fields.get("problems", "").split()))


def matrix(text: str) -> tuple[tuple[bool, ...], ...]:
    """The QR code's modules, row by row from the top, True for dark (no quiet zone)."""
    return tuple(tuple(bool(m) for m in row) for row in _code_rows(text))


def _code_rows(text: str) -> tuple[bytes, ...]:
    """segno's modules, row by row from the top: a byte per module, 0 for light, anything else dark."""
    return segno.make(text, error=ERROR_LEVEL, micro=False, boost_error=False, mask=MASK).matrix


# A row of modules as text: "1" for each dark module (any byte but 0), "0" for each light one, by bytes.translate.
_MODULE_DIGITS = bytes([ord("0")] + [ord("1")] * 255)


def qr_tex(text: str, width_mm: int = 26) -> Tex:
    """The QR code, `width_mm` wide with its quiet zone, as one filled PDF path: no TeX package, nothing to install.

    A box of the code's size holds a \\pdfliteral (a pdfTeX primitive) that scales the unit to one module and
    fills one rectangle per run of dark modules in a row: TeX only copies the text (a class set prints hundreds
    of codes; \\rule per run costs TeX ten times as much), and one path has no seams between modules."""
    modules = _code_rows(text)
    size = len(modules) + 2 * QUIET_ZONE
    width_bp = width_mm * 72 / 25.4
    rects = []
    for r, row in enumerate(modules):
        y = size - QUIET_ZONE - 1 - r  # PDF coordinates grow upwards
        # Each run of dark modules, found by a regular expression in the row's digits (made by one translate, not
        # a module at a time): a loop over modules was a third of the QR time.
        for run in DARK_RUN.finditer(bytes(row).translate(_MODULE_DIGITS).decode("ascii")):
            rects.append(f"{run.start() + QUIET_ZONE} {y} {run.end() - run.start()} 1 re")
    scale = f"{width_bp / size:.5f}"  # fixed digits: the same text always gives the same TeX
    return Tex(f"\\hbox to {width_bp:.3f}bp{{\\vrule width 0pt height {width_bp:.3f}bp depth 0pt"
               f"\\pdfliteral{{q {scale} 0 0 {scale} 0 0 cm 0 g\n" + "\n".join(rects) + "\nf Q}\\hfil}")
