"""Seed → problems → worksheet .tex, key .tex and key .json, rendered from one problem list."""

from __future__ import annotations

import base64
import hashlib
import json
from json.encoder import encode_basestring as _json_string
import os
import re
from dataclasses import dataclass, field, replace
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import sympy
from sympy import ImmutableMatrix

from generator import __version__
from generator.files import temp_beside
from generator.core.problem import Choice, Problem, Quantity, Tex, matrix_rows
from generator.core.readings import PLACES, Reading, answer_interval, answer_reading, format_places
from generator.core.registry import SpecError, get_type, make_problem
from generator.core.transcendental import irrational_and_finite
from generator.documents.workspace import working_space_mm
from generator.documents.render import (environment, equals_tex, pdf_string, prose_tex, to_tex, typographic_quotes,
                                        written_tex)

PAPERS = ("a4", "letter")
CALCULATOR_POLICIES = ("none", "basic")
KEY_FORMAT = "transformer-worksheets/key"
KEY_FORMAT_VERSION = 3  # 2: 4-place blanks carry table_value and accepted; 3: a checksum over the whole key
MAX_SEED = 2**63 - 1
# A file name stem that is safe everywhere: no path, no leading dot or dash (sheet names, student ids, assignments).
SAFE_STEM = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


GIVEN_OPTION = "given"  # accepted by every type: parts printed with their values instead of blanks
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def parse_part_letters(text: str) -> tuple[str, ...]:
    """Part letters such as 'ab', 'a-c' or 'a-cf', as a sorted tuple; SpecError when unreadable."""
    if not re.fullmatch(r"(?:[a-z](?:-[a-z])?)+", text):
        raise SpecError(f"given={text!r} is not accepted; accepted: part letters such as given=ab or a range given=a-c")
    letters = set()
    for first, last in re.findall(r"([a-z])(?:-([a-z]))?", text):
        if last and last < first:
            raise SpecError(f"given={text!r}: the range {first}-{last} runs backwards; write it as {last}-{first}")
        letters.update(_LETTERS[_LETTERS.index(first):_LETTERS.index(last or first) + 1])
    return tuple(sorted(letters))


@dataclass(frozen=True)
class ProblemSpec:
    """One problem to generate: a type name, its options (strings, as typed) and the parts given, not asked."""

    type: str
    options: dict[str, str] = field(default_factory=dict)
    given_parts: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> "ProblemSpec":
        """Read 'type' or 'type:name=value,name=value' (given=LETTERS is every type's option)."""
        name, _, rest = text.strip().partition(":")
        options = {}
        for item in filter(None, (piece.strip() for piece in rest.split(","))):
            key, eq, value = item.partition("=")
            if not eq or not key.strip() or not value.strip():
                raise SpecError(f"cannot read option {item!r} in {text!r}; write TYPE:name=value,name=value")
            if key.strip() in options:
                raise SpecError(f"option '{key.strip()}' is given twice in {text!r}; give each option once")
            options[key.strip()] = value.strip()
        kind = get_type(name.strip())
        given = options.pop(GIVEN_OPTION, None)
        return cls(kind.name, kind.resolve(options), parse_part_letters(given) if given is not None else ())


@dataclass(frozen=True)
class SheetSpec:
    """Everything that decides a sheet: the numbers depend only on seed and problems."""

    title: str
    seed: int
    problems: tuple[ProblemSpec, ...]
    paper: str = "a4"
    calculator: str = "none"

    def __post_init__(self) -> None:
        if not self.problems:
            raise SpecError("a sheet needs at least one problem; name one with --problem TYPE")
        if not 0 <= self.seed <= MAX_SEED:
            raise SpecError(f"seed {self.seed} is out of range; accepted: whole numbers from 0 to {MAX_SEED}")
        if self.paper not in PAPERS:
            raise SpecError(f"paper {self.paper!r} is not accepted; accepted: {', '.join(PAPERS)}")
        if self.calculator not in CALCULATOR_POLICIES:
            raise SpecError(f"calculator {self.calculator!r} is not accepted; accepted: {', '.join(CALCULATOR_POLICIES)}")


@dataclass(frozen=True)
class Sheet:
    """A generated sheet: its spec, variant code and exact problems."""

    spec: SheetSpec
    variant: str
    problems: tuple[Problem, ...]


def problem_seed(sheet_seed: int, number: int, type_name: str) -> str:
    """The seed of problem `number` (1-based): one independent stream per position and type."""
    return f"{sheet_seed}/{number}/{type_name}"


def variant_code(spec: SheetSpec) -> str:
    """A short code that names the numbers on a sheet (seed and problems), e.g. 'K3QF-7ZDA'."""
    # Given parts change what a student answers, so they change the code (only when present: older codes stay).
    canonical = json.dumps(
        {"seed": spec.seed, "problems": [[p.type, sorted(p.options.items())] + ([list(p.given_parts)] if p.given_parts else [])
                                         for p in spec.problems]},
        sort_keys=True,
        separators=(",", ":"),
    )
    code = base64.b32encode(hashlib.sha256(canonical.encode()).digest()).decode()[:8]
    return f"{code[:4]}-{code[4:]}"


class CalculatorNeeded(SpecError):
    """A problem needs a calculator the sheet does not allow; the message names the setting that allows one."""

    def __init__(self, need: str):
        self.need = need
        super().__init__(self.advice("--calculator basic"))

    def __reduce__(self):  # rebuilt from need in another process (class sets build in worker processes)
        return CalculatorNeeded, (self.need,)

    def advice(self, setting: str) -> str:
        """The message, naming the setting as the reader writes it (a command-line flag or an assignment key)."""
        return f"{self.need}; accepted: {setting}, or options that keep it pencil-only"


def build(spec: SheetSpec) -> Sheet:
    """Generate every problem of a sheet."""
    problems = tuple(
        _with_given_parts(number, p, make_problem(p.type, p.options, problem_seed(spec.seed, number, p.type)))
        for number, p in enumerate(spec.problems, start=1)
    )
    if spec.calculator == "none":
        for number, (problem_spec, problem) in enumerate(zip(spec.problems, problems), start=1):
            if problem.needs_calculator:
                options = ",".join(f"{k}={v}" for k, v in problem_spec.options.items())
                raise CalculatorNeeded(f"problem {number} ({problem_spec.type}:{options}) needs a basic calculator")
    return Sheet(spec, variant_code(spec), problems)


def _with_given_parts(number: int, spec: ProblemSpec, problem: Problem) -> Problem:
    """The problem with the parts the teacher chose printed as given (same numbers: the seed ignores them)."""
    if not spec.given_parts:
        return problem
    letters = _LETTERS[:len(problem.parts)]
    unknown = [letter for letter in spec.given_parts if letter not in letters]
    if unknown:
        raise SpecError(f"problem {number} ({spec.type}) has no part {', '.join(unknown)}; "
                        f"accepted: given= letters from a to {letters[-1]}")
    if len(spec.given_parts) == len(problem.parts):
        raise SpecError(f"problem {number} ({spec.type}): given={''.join(spec.given_parts)} leaves nothing to answer; "
                        f"accepted: at least one part left blank")
    parts = tuple(replace(part, shown=letter in spec.given_parts) for letter, part in zip(letters, problem.parts))
    return replace(problem, parts=parts)


def _shown_tex(part) -> Tex:
    """A given part's values as the sheets print them: 'Q = […]  K = […]', a choice as its printed label."""
    return Tex(r" \qquad ".join(f"${answer.symbol}$: {to_tex(answer.value)}" if isinstance(answer.value, Choice)
                                   else f"${answer.symbol} = {written_tex(answer)}$" if answer.exact_decimal
                                   else f"${answer.symbol} {equals_tex(answer.value)}$" for answer in part.answers))


# ----- what each document may see -------------------------------------------------------------


@dataclass(frozen=True)
class Blank:
    """An answer blank as the worksheet sees it: label, symbol and shape or choices, never a value."""

    symbol: Tex
    shape: tuple[int, int] | None
    options: tuple[tuple[str, str], ...] | None
    cell_width: str  # room for a fraction, or for a 4-place decimal such as -0.1587


def _blank(answer: Quantity, decimals: bool) -> Blank:
    options = answer.value.options if isinstance(answer.value, Choice) else None
    return Blank(answer.symbol, answer.shape, options, "6.2em" if decimals else "4.2em")


def part_letter(index: int) -> str:
    return _LETTERS[index]


def _statement_context(number: int, problem: Problem) -> dict:
    return {
        "number": number,
        "title": prose_tex(problem.title),
        "type": problem.type,
        "given": {q.name: q.value for q in problem.given},
        "symbols": {q.name: q.symbol for q in problem.given},
        "facts": problem.facts,
    }


def _wide_answers(part) -> bool:
    """The part's answer boxes take most of a line: several matrices, wide matrices, or tick boxes."""
    return (any(isinstance(a.value, Choice) for a in part.answers)
            or any(a.shape and a.shape[1] >= (2 if part.decimals else 3) for a in part.answers)
            or sum(1 for a in part.answers if a.shape) > 1)


def worksheet_problems(sheet: Sheet) -> list[dict]:
    """The blank view: statements and blanks only, so no answer can reach the worksheet."""
    return [
        {
            **_statement_context(number, problem),
            "parts": [
                {
                    "letter": part_letter(i),
                    "prompt": part.prompt,
                    "given": part.given,
                    # A part the teacher gives shows its values on purpose, and no blanks.
                    "shown": _shown_tex(part) if part.shown else None,
                    "blanks": [] if part.shown else [_blank(a, part.decimals) for a in part.answers],
                    # Room to work, in mm, growing with the work the part asks for; a given part needs none.
                    "room": 0 if part.shown else working_space_mm(part),
                    # Boxes that leave most of the line free (one or two narrow ones, flush right): the room
                    # beside them is working room too. Three or more columns of boxes (two of decimals), several
                    # matrices or tick boxes take the line.
                    "beside": not part.shown and not _wide_answers(part),
                }
                for i, part in enumerate(problem.parts)
            ],
        }
        for number, problem in enumerate(sheet.problems, start=1)
    ]


def key_problems(sheet: Sheet) -> list[dict]:
    """The worked view: statements, every step and every answer."""
    return [
        {
            **_statement_context(number, problem),
            "parts": [
                {"letter": part_letter(i), "prompt": part.prompt, "given": part.given, "answers": part.answers,
                 "decimals": part.decimals,
                 "steps": part.steps, "shown": _shown_tex(part) if part.shown else None}
                for i, part in enumerate(problem.parts)
            ],
        }
        for number, problem in enumerate(sheet.problems, start=1)
    ]


# The PDF's author when no course names one.
DEFAULT_AUTHOR = "transformer-worksheets"


def _document_context(sheet: Sheet, student) -> dict:
    author = student.author if student and student.author else DEFAULT_AUTHOR
    return {
        "title": prose_tex(sheet.spec.title),
        # The PDF's properties (title, author), in hex: user text that nothing in it can end.
        "pdf": {"title": pdf_string(typographic_quotes(sheet.spec.title)),
                "author": pdf_string(typographic_quotes(author))},
        "variant": sheet.variant,
        "paper": sheet.spec.paper,
        "calculator": sheet.spec.calculator,
        "student": student,  # a class set's classset.StudentHeader (name, id, points, QR), else None
        # Said once per sheet: 4-place answers worked from the printed tables may differ from the exact ones.
        "four_places": any(part.decimals and not part.shown for problem in sheet.problems for part in problem.parts),
    }


def render_worksheet(sheet: Sheet, student=None) -> str:
    """The blank worksheet as LaTeX (a named student's, when `student` is given)."""
    return environment().get_template("worksheet.tex.j2").render(**_document_context(sheet, student),
                                                                 problems=worksheet_problems(sheet))


def render_key(sheet: Sheet, student=None) -> str:
    """The worked answer key as LaTeX (a named student's, when `student` is given)."""
    return environment().get_template("key.tex.j2").render(**_document_context(sheet, student),
                                                           problems=key_problems(sheet))


# ----- the machine-readable key -------------------------------------------------------------------


def exact_string(value: sympy.Expr) -> str:
    """An exact value as a string sympy and the checker read back: '3/4', '-2', 'log(6)'."""
    if isinstance(value, sympy.Rational):
        # sympy's printer writes a Rational as p or p/q; formatting the two integers costs a tenth of a lookup.
        return str(value.p) if value.q == 1 else f"{value.p}/{value.q}"
    return _expr_string(value)


@lru_cache(maxsize=4096)  # softmax weights recur across the parts and examples of a sheet; printing one takes 0.3 ms
def _expr_string(value: sympy.Expr) -> str:
    return sympy.sstr(value)


def decimal_string(value: sympy.Expr, digits: int = 15) -> str:
    """The value to `digits` significant digits, trailing zeros dropped, computed exactly by sympy."""
    if isinstance(value, sympy.Rational):
        return _rational_decimal(value.p, value.q, digits)  # keyed by integers: hashing a Rational costs more
    return _expr_decimal(value, digits)


@lru_cache(maxsize=8192)  # a class set writes the same few fractions thousands of times
def _rational_decimal(p: int, q: int, digits: int) -> str:
    return _decimal_string(sympy.Rational(p, q), digits)


@lru_cache(maxsize=4096)
def _expr_decimal(value: sympy.Expr, digits: int) -> str:
    return _decimal_string(value, digits)


def _decimal_string(value: sympy.Expr, digits: int) -> str:
    if value in (sympy.oo, -sympy.oo):
        return "inf" if value == sympy.oo else "-inf"  # a mask; Python's float() reads these
    # Positional, never sympy's scientific form ('1.00000000000000e-5'): a grader reads it as printed.
    text = format(Decimal(str(sympy.N(value, digits))), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _is_rational(value: sympy.Expr) -> bool:
    """True for a fraction; for any other form, what transcendental's proof or else sympy's assumptions prove."""
    return isinstance(value, sympy.Rational) or _proved_rational(value)


@lru_cache(maxsize=4096)  # sympy's assumptions on a softmax weight or ln 6/2 cost a millisecond
def _proved_rational(value: sympy.Expr) -> bool:
    verdict = _exact_verdict(value)
    return not verdict[0] if verdict else bool(value.is_rational)


def _is_finite(value: sympy.Expr) -> bool:
    """True for a fraction (sympy's infinities are no Rationals); for any other form, what transcendental's proof or
    else sympy proves."""
    return isinstance(value, sympy.Rational) or _proved_finite(value)


@lru_cache(maxsize=4096)
def _proved_finite(value: sympy.Expr) -> bool:
    verdict = _exact_verdict(value)
    return verdict[1] if verdict else bool(value.is_finite)


@lru_cache(maxsize=4096)  # asked for both verdicts of a 4-place value
def _exact_verdict(value: sympy.Expr) -> tuple[bool, bool] | None:
    """(irrational, finite) proved at once for softmax weights in e^k and logarithms, else None (sympy decides)."""
    return irrational_and_finite(value)


def _json_value(value):
    if isinstance(value, ImmutableMatrix):
        return [[exact_string(x) for x in row] for row in matrix_rows(value)]
    if isinstance(value, Choice):
        return value.value
    return exact_string(value)


def _json_blanks(number: int, letter: str, answer: Quantity, decimals: bool = False) -> list[dict]:
    prefix = f"{number}{letter} {answer.name}"
    if isinstance(answer.value, Choice):
        return [{"label": prefix, "part": letter, "name": answer.name, "index": None, "kind": "choice",
                 "value": answer.value.value, "choices": list(answer.value.keys),
                 "labels": [label for _, label in answer.value.options]}]
    if isinstance(answer.value, ImmutableMatrix):
        cells = [((i, j), value) for i, row in enumerate(matrix_rows(answer.value)) for j, value in enumerate(row)]
    else:
        cells = [(None, answer.value)]
    return [
        {
            "label": f"{prefix}[{index[0]},{index[1]}]" if index else prefix,
            "part": letter,
            "name": answer.name,
            "index": list(index) if index else None,
            "kind": "number",
            "value": exact_string(value),
            "rational": _is_rational(value),
            "decimal": decimal_string(value),
            **(_four_places(answer_reading(answer, index)) if decimals and _is_finite(value) else {}),
        }
        for index, value in cells
    ]


def _four_places(reading: Reading) -> dict:
    """A 4-place blank's table route and accepted interval (outward to 10 places, so the file stays readable)."""
    value, low, high = answer_interval(reading)
    return {"table_value": format_places(value, PLACES), "accepted": [_outward(low, -1), _outward(high, 1)]}


def _outward(value: Fraction, direction: int, places: int = 10) -> str:
    """value rounded away from the interval's inside to `places` decimals: the stored interval only widens."""
    scaled = value * 10**places
    whole = scaled.__floor__() if direction < 0 else scaled.__ceil__()
    text = format_places(Fraction(whole, 10**places), places).rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def key_data(sheet: Sheet) -> dict:
    """The key as plain data: per problem its type, options, givens and every answer blank."""
    return {
        "format": KEY_FORMAT,
        "format_version": KEY_FORMAT_VERSION,
        "generator_version": __version__,
        "title": sheet.spec.title,
        "variant": sheet.variant,
        "seed": sheet.spec.seed,
        "paper": sheet.spec.paper,
        "calculator": sheet.spec.calculator,
        "problems": [
            {
                "number": number,
                "type": problem.type,
                "title": problem.title,
                "options": problem.options,
                "seed": problem.seed,
                "given": {q.name: _json_value(q.value) for q in problem.given},
                # Exact numbers the statement gives in words (e.g. cos θ); text-only facts are left out.
                "facts": {k: _json_value(v) for k, v in problem.facts.items() if not isinstance(v, str)},
                "key_facts": {k: _json_value(v) for k, v in problem.key_facts.items()},
                "given_parts": [part_letter(i) for i, part in enumerate(problem.parts) if part.shown],
                # What those parts print: later steps use them, so follow-through marking must see them too.
                "given_part_values": {
                    part_letter(i): {a.name: _json_value(a.value) for a in part.answers}  # a choice as its key
                    for i, part in enumerate(problem.parts) if part.shown
                },
                "blanks": [
                    blank
                    for i, part in enumerate(problem.parts) if not part.shown
                    for answer in part.answers
                    for blank in _json_blanks(number, part_letter(i), answer, part.decimals)
                ],
            }
            for number, problem in enumerate(sheet.problems, start=1)
        ],
    }


def render_key_json(sheet: Sheet) -> str:
    """The key as JSON text, stable byte for byte."""
    return indented_json(with_checksum(key_data(sheet))) + "\n"


def key_checksum(data: dict) -> str:
    """SHA-256 of the key's content (everything but the checksum itself), canonical JSON: a value edited by hand
    no longer matches it, and the marker refuses the key."""
    body = {name: value for name, value in data.items() if name != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
                          .encode("utf-8")).hexdigest()


def with_checksum(data: dict) -> dict:
    """The key's data with its checksum last."""
    return {**data, "checksum": key_checksum(data)}


class _NotPlain(TypeError):
    """A value indented_json leaves to the json module."""


def indented_json(data) -> str:
    """json.dumps(data, indent=2, ensure_ascii=False), byte for byte, made faster for plain data (str, int, bool,
    None, lists, dicts keyed by str): the json module indents in pure Python, generator by generator (0.5 ms of a
    class set's student). Anything else (a float, another key) is left to json.dumps."""
    out: list[str] = []
    try:
        _json_pieces(data, "\n", out)
    except _NotPlain:
        return json.dumps(data, indent=2, ensure_ascii=False)
    return "".join(out)


def _json_pieces(value, newline: str, out: list[str]) -> None:
    """The pieces of value's indented JSON appended to out; `newline` is a line break and the current indent."""
    if isinstance(value, str):
        out.append(_json_string(value))
    elif value is None:
        out.append("null")
    elif value is True or value is False:
        out.append("true" if value else "false")
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    elif isinstance(value, dict):
        if not value:
            out.append("{}")
            return
        inner, opening = newline + "  ", "{"
        for key, item in value.items():
            if not isinstance(key, str):
                raise _NotPlain(key)
            out.append(opening + inner + _json_string(key) + ": ")
            _json_pieces(item, inner, out)
            opening = ","
        out.append(newline + "}")
    elif isinstance(value, (list, tuple)):
        if not value:
            out.append("[]")
            return
        inner, opening = newline + "  ", "["
        for item in value:
            out.append(opening + inner)
            _json_pieces(item, inner, out)
            opening = ","
        out.append(newline + "]")
    else:
        raise _NotPlain(value)


# ----- writing -------------------------------------------------------------------------------------


def output_paths(stem: str, sheet_dir: Path, key_dir: Path) -> dict[str, Path]:
    """Where a sheet's three files go."""
    return {
        "worksheet": sheet_dir / f"{stem}.tex",
        "key": key_dir / f"{stem}-key.tex",
        "json": key_dir / f"{stem}-key.json",
    }


class OutputError(OSError):
    """An output folder or file could not be written; nothing was left behind."""


def _make_folders(folder: Path) -> list[Path]:
    """Create `folder` and its missing parents; return the ones created, outermost first."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        path.mkdir()
    return list(reversed(missing))


def write_outputs(sheet: Sheet, stem: str, sheet_dir: Path, key_dir: Path) -> dict[str, Path]:
    """Render all three documents in memory, then write them all or nothing (folders included)."""
    texts = {"worksheet": render_worksheet(sheet), "key": render_key(sheet), "json": render_key_json(sheet)}
    paths = output_paths(stem, sheet_dir, key_dir)
    created: list[Path] = []
    staged: list[tuple[str, Path]] = []
    folder = sheet_dir
    try:
        for folder in sorted({path.parent for path in paths.values()}):
            created += _make_folders(folder)
        for kind, path in paths.items():
            folder = path.parent
            handle, temp = temp_beside(path)
            staged.append((temp, path))
            with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as out:
                out.write(texts[kind])
        for temp, path in staged:
            os.replace(temp, path)
    except OSError as error:
        for temp, _ in staged:
            Path(temp).unlink(missing_ok=True)
        for path in reversed(created):
            path.rmdir()
        raise OutputError(f"cannot write to folder '{folder}': {error.strerror or error}; choose a writable folder") from error
    return paths
