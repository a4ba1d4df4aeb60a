"""An assignment file (TOML): title, course, date, problems with points, policies and the assignment seed."""

from __future__ import annotations

import datetime
import re
import tomllib
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from generator.documents.presets import PRESETS, preset_problems
from generator.core.registry import SpecError, get_type
from generator.documents.render import printable_in_tex
from generator.documents.sheet import CALCULATOR_POLICIES, SAFE_STEM, CalculatorNeeded, MAX_SEED, PAPERS, ProblemSpec, SheetSpec, build, parse_part_letters

MAX_NAME = 64  # file names and the QR code
MAX_TEXT = 80  # title, course and date print on one line of the header
MAX_POINTS = 1000
MAX_URL = 200  # printed on the sheet and held by its QR code
URL_CHARS = re.compile(r"[A-Za-z0-9\-._~:/\[\]!$&'()*+,;=%]+")  # RFC 3986's, less '?', '#' and '@'
TOP_KEYS = ("name", "title", "course", "date", "seed", "paper", "calculator", "open_seeds", "url", "problems")
PROBLEM_KEYS = ("type", "preset", "options", "given", "points")


class AssignmentError(SpecError):
    """The assignment file cannot be used; the message names the file, the key and what is accepted."""


@dataclass(frozen=True)
class Assignment:
    """What every student's sheet shares: all but the numbers, which come from the seed and the student."""

    name: str  # file stem for the class's files, and the assignment's name in the QR code
    title: str
    course: str
    date: str
    seed: int
    paper: str
    calculator: str
    problems: tuple[ProblemSpec, ...]
    points: tuple[int, ...]  # one per problem
    # Seeds from the assignment seed alone (a worked-example handout: the QR code rebuilds the key), not the secret.
    open_seeds: bool = False
    url: str = ""  # the class's web page: each sheet prints it, and a QR code that opens the student's page

    def sheet_spec(self, seed: int) -> SheetSpec:
        """The sheet of one student, whose numbers come from `seed`."""
        return SheetSpec(title=self.title, seed=seed, problems=self.problems, paper=self.paper,
                         calculator=self.calculator)


def load_assignment(path: Path) -> Assignment:
    """Read and check an assignment file; AssignmentError names the file and the bad key."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        data = tomllib.loads(raw.decode("utf-8-sig"))
    except OSError as error:
        raise AssignmentError(f"cannot read assignment file '{path}': {error.strerror or error}") from error
    except UnicodeDecodeError as error:
        # error.object is the text after a byte-order mark, if any: error.start counts from there, not from raw.
        text, start = error.object, error.start
        line = text[:start].count(b"\n") + 1
        raise AssignmentError(f"{path}: line {line} is not UTF-8 text (byte 0x{text[start]:02x} at offset "
                              f"{start + len(raw) - len(text)}); save the assignment as UTF-8") from error
    except tomllib.TOMLDecodeError as error:
        raise AssignmentError(f"{path}: not valid TOML ({error}); see examples/assignment.toml") from error
    return parse_assignment(data, path)


def parse_assignment(data: dict, path: Path) -> Assignment:
    """Check the parsed TOML table of an assignment file."""
    def fail(key: str, message: str) -> AssignmentError:
        return AssignmentError(f"{path}: {key}: {message}")

    unknown = [key for key in data if key not in TOP_KEYS]
    if unknown:
        raise fail(unknown[0], f"unknown key; accepted: {', '.join(TOP_KEYS)}")
    for key in ("title", "seed", "problems"):
        if key not in data:
            raise AssignmentError(f"{path}: missing key '{key}'; an assignment needs title, seed and problems")
    name = data.get("name", path.stem)
    if not isinstance(name, str) or not SAFE_STEM.fullmatch(name) or len(name) > MAX_NAME:
        given = f"{name!r} is" if "name" in data else f"no name is given and the file's name {name!r} is"
        raise fail("name", f"{given} not accepted; accepted: name = \"...\" with 1 to 64 letters, digits, "
                           "'.', '_' and '-' (not first)")
    texts = {key: _text(data.get(key, ""), key, fail) for key in ("title", "course", "date")}
    if not texts["title"]:
        raise fail("title", "is empty; accepted: 1 to 80 characters of text")
    seed = data["seed"]
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise fail("seed", f"{seed!r} is not accepted; accepted: a whole number from 0 to {MAX_SEED}")
    paper = data.get("paper", "a4")
    if paper not in PAPERS:
        raise fail("paper", f"{paper!r} is not accepted; accepted: {', '.join(PAPERS)}")
    calculator = data.get("calculator", "none")
    if calculator not in CALCULATOR_POLICIES:
        raise fail("calculator", f"{calculator!r} is not accepted; accepted: {', '.join(CALCULATOR_POLICIES)}")
    open_seeds = data.get("open_seeds", False)
    if not isinstance(open_seeds, bool):
        raise fail("open_seeds", f"{open_seeds!r} is not accepted; accepted: true or false (without quotes)")
    url = _url(data.get("url", ""), fail)
    problems = data["problems"]
    if not isinstance(problems, list) or not problems or not all(isinstance(p, dict) for p in problems):
        raise fail("problems", "accepted: one or more [[problems]] tables, each with type = \"...\" or preset = \"...\"")
    specs: list[ProblemSpec] = []
    points: list[int] = []
    for index, entry in enumerate(problems, start=1):
        entry_specs = _problem_entry(entry, f"problems[{index}]", fail)
        specs += entry_specs
        points += [_points(entry, f"problems[{index}]", fail)] * len(entry_specs)
    assignment = Assignment(name=name, seed=seed, paper=paper, calculator=calculator, problems=tuple(specs),
                            points=tuple(points), open_seeds=open_seeds, url=url, **texts)
    try:
        build(assignment.sheet_spec(0))  # what no seed can fix (a problem that needs a calculator) fails here
    except CalculatorNeeded as error:
        raise fail("calculator", error.advice('calculator = "basic"')) from None
    except SpecError as error:
        raise fail("problems", str(error)) from None
    return assignment


def _text(value, key: str, fail) -> str:
    """A line of header text pdflatex can print (a TOML date is written as YYYY-MM-DD)."""
    if isinstance(value, datetime.date) and key == "date":
        value = value.isoformat()
    if not isinstance(value, str):
        raise fail(key, f"{value!r} is not accepted; accepted: text in quotes")
    value = " ".join(value.split())
    if len(value) > MAX_TEXT:
        raise fail(key, f"is {len(value)} characters long; accepted: at most {MAX_TEXT}")
    for ch in value:
        if not printable_in_tex(ch):
            raise fail(key, f"contains {ch!r} (U+{ord(ch):04X}), which pdflatex cannot print; "
                            "accepted: Latin letters with accents, digits, punctuation and spaces")
    return value


def _url(value, fail) -> str:
    """The class's web address: http or https, a host, a path; no user, password, query or fragment (the sheet adds
    /s/<code> to it). Returned without a trailing '/'."""
    accepted = f'accepted: url = "https://host/path", at most {MAX_URL} characters, no spaces, no ?, # or @'
    if not isinstance(value, str):
        raise fail("url", f"{value!r} is not accepted; {accepted}")
    if not value:
        return ""
    if len(value) > MAX_URL:
        raise fail("url", f"is {len(value)} characters long; {accepted}")
    bad = next((ch for ch in value if not URL_CHARS.fullmatch(ch)), None)
    if bad is not None:
        raise fail("url", f"contains {bad!r} (U+{ord(bad):04X}); {accepted} (percent-encode other characters)")
    parts = urllib.parse.urlsplit(value)
    try:
        parts.port  # a port that is no number fails here
    except ValueError:
        parts = None
    if parts is None or parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise fail("url", f"{value!r} is not accepted; {accepted}")
    return value.rstrip("/")


def _problem_entry(entry: dict, key: str, fail) -> list[ProblemSpec]:
    """The problems of one [[problems]] table: one type with its options, or every problem of a preset."""
    unknown = [k for k in entry if k not in PROBLEM_KEYS]
    if unknown:
        raise fail(f"{key}.{unknown[0]}", f"unknown key; accepted: {', '.join(PROBLEM_KEYS)}")
    if ("type" in entry) == ("preset" in entry):
        raise fail(key, "accepted: exactly one of type = \"TYPE\" or preset = \"NAME\"")
    if "preset" in entry:
        if set(entry) - {"preset", "points"}:
            raise fail(key, "a preset takes only points; accepted: preset, points (list types one by one for options)")
        if entry["preset"] not in PRESETS:
            raise fail(f"{key}.preset", f"unknown preset {entry['preset']!r}; accepted: {', '.join(PRESETS)}")
        return list(preset_problems(entry["preset"])[2])
    options = entry.get("options", {})
    if not isinstance(options, dict):
        raise fail(f"{key}.options", "accepted: a table such as options = { shape = \"2x1\" }")
    text_options = {}
    for name, value in options.items():
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise fail(f"{key}.options.{name}", f"{value!r} is not accepted; accepted: text or a whole number")
        text_options[name] = str(value)
    if not isinstance(entry["type"], str):
        raise fail(f"{key}.type", "accepted: a problem type's name in quotes (see `transformer-worksheets list`)")
    try:
        spec = ProblemSpec.parse(entry["type"])  # the type alone: options come from the table, never from text
        if ":" in entry["type"]:
            raise SpecError(f"write options in options = {{ ... }}, not in the type name {entry['type']!r}")
        given = entry.get("given")
        if given is not None and not isinstance(given, str):
            raise SpecError("given must be part letters in quotes, such as given = \"ab\"")
        spec = ProblemSpec(spec.type, get_type(spec.type).resolve(text_options),
                           parse_part_letters(given) if given is not None else ())
    except SpecError as error:
        raise fail(key, str(error)) from None
    return [spec]


def _points(entry: dict, key: str, fail) -> int:
    points = entry.get("points", 1)
    if isinstance(points, bool) or not isinstance(points, int) or not 0 <= points <= MAX_POINTS:
        raise fail(f"{key}.points", f"{points!r} is not accepted; accepted: a whole number from 0 to {MAX_POINTS}")
    return points
