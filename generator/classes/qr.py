"""The QR code on a student's sheet: what it holds, and its modules drawn as one PDF path by pdfTeX."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

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
    if segno.__version__ == _LAID_OUT_SEGNO:
        return _laid_out_rows(text)
    return segno.make(text, error=ERROR_LEVEL, micro=False, boost_error=False, mask=MASK).matrix


# segno.make places the codewords and applies the mask module by module, through a function call per module: two
# thirds of a code's time. _laid_out_rows does what segno's encoder._encode does for this module's settings (a QR
# code, not micro, no ECI, no structured append, no error boost, a fixed mask) with segno's own steps, except that
# where each bit goes and which modules the mask flips are worked out once per version. Only for the segno release
# it was checked against, module for module (tests/test_qr_layout.py); any other release takes segno.make.
_LAID_OUT_SEGNO = "1.6.6"


@dataclass(frozen=True)
class _Layout:
    """One QR version's modules before the codewords, where the codewords' bits go, and the modules the mask flips."""

    template: tuple[bytes, ...]
    places: tuple[tuple[int, int], ...]  # (row, column) of each bit, in segno's placement order
    flipped: tuple[tuple[int, int], ...]


@cache
def _layout(version: int) -> _Layout:
    """The layout of a QR code of this version, as segno's add_codewords and apply_mask would make it."""
    from segno import encoder

    width = encoder.calc_matrix_size(version)
    matrix = encoder.make_matrix(width, width)
    encoder.add_finder_patterns(matrix, width, width)
    encoder.add_alignment_patterns(matrix, width, width)
    # add_codewords' walk: two-module columns from the right, up and down in turn, skipping the timing column.
    places: list[tuple[int, int]] = []
    taken = set()  # the walk passes the last column twice (its right <= 6 shift reaches j = -1): placed once
    for right in range(width - 1, 0, -2):
        if right <= 6:
            right -= 1
        for vertical in range(width):
            for z in range(2):
                j = right - z
                upwards = ((right & 2) == 0) ^ (j < 6)
                i = (width - 1 - vertical) if upwards else vertical
                if matrix[i][j] == 0x2 and (i, j % width) not in taken:
                    taken.add((i, j % width))
                    places.append((i, j))
    # apply_mask's region: the modules no pattern holds (the dark module is one), where the mask pattern is 1.
    function = [bytearray(row) for row in matrix]  # the patterns alone: the walk above only read the matrix
    function[-8][8] = 0x1
    pattern = encoder.get_data_mask_functions(False)[MASK]
    flipped = tuple((i, j) for i in range(width) for j in range(width) if function[i][j] > 0x1 and pattern(i, j))
    return _Layout(tuple(bytes(row) for row in matrix), tuple(places), flipped)


def _laid_out_rows(text: str) -> tuple[bytearray, ...]:
    """segno.make(text, ...).matrix for this module's settings, with the bits placed and masked by _layout."""
    from segno import consts, encoder

    error = encoder.normalize_errorlevel(ERROR_LEVEL)
    segments = encoder.prepare_data(text, None, None)
    version = encoder.find_version(segments, error, eci=False, micro=False)
    buff = encoder.Buffer()
    for segment in segments:
        encoder.write_segment(buff, segment, None, encoder.version_range(version), False)
    capacity = consts.SYMBOL_CAPACITY[version][error]
    encoder.write_terminator(buff, capacity, None, len(buff))
    encoder.write_padding_bits(buff, version, len(buff))
    encoder.write_pad_codewords(buff, version, capacity, len(buff))
    bits = encoder.make_final_message(version, error, buff)
    layout = _layout(version)
    matrix = tuple(bytearray(row) for row in layout.template)
    for (i, j), bit in zip(layout.places, bits):
        matrix[i][j] = bit
    for i, j in layout.flipped:
        matrix[i][j] ^= 1
    encoder.add_format_info(matrix, version, error, MASK)
    encoder.add_version_info(matrix, version)
    return matrix


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
