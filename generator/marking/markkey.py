"""A JSON key read for marking: every blank and every known quantity as exact marking numbers, checked against its variant."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cache
from pathlib import Path

import sympy

from generator.marking import exactnum as xn
from generator.marking.answers import AnswerError, parse_exact
from generator.core.problem import Choice
from generator.core.readings import HALF as HALF_UNIT
from generator.core.registry import SpecError, make_problem
from generator.documents.sheet import KEY_FORMAT, ProblemSpec, SheetSpec, key_checksum, part_letter, variant_code



class KeyFileError(ValueError):
    """A key file that cannot be used for marking; the message names the file and the reason."""


@dataclass(frozen=True)
class BlankKey:
    """One box on the sheet: its label, where it sits in its quantity, its exact value and its points."""

    label: str
    problem: int
    part: str
    name: str
    index: tuple[int, int] | None
    kind: str  # number or choice
    text: str  # the exact value as the key writes it
    number: xn.Num | None  # None for a choice
    choices: tuple[str, ...]
    decimals: bool  # the part asks for 4 decimal places
    points: Fraction
    # A 4-place blank: the value the sheet's method gives, and every value a reading of the statement allows.
    table_value: str = ""
    accepted: tuple[Fraction, Fraction] | None = None
    labels: tuple[str, ...] = ()  # a choice's printed labels, one per key in choices

    def choice_of(self, text: str) -> str | None:
        """The choice's key that text names, by its key or its printed label, in any letter case."""
        wanted = " ".join(text.split()).casefold()
        for names in (self.choices, self.labels):
            for key, name in zip(self.choices, names):
                if " ".join(name.split()).casefold() == wanted:
                    return key
        return None

    def accepts(self, number: xn.Num) -> bool:
        """A 4-place answer inside the accepted interval (a key without one: within ½ unit of the exact value)."""
        if xn.is_neg_inf(number):
            return False
        if self.accepted is None:
            return xn.same(number, self.number, HALF_UNIT)
        low, high = self.accepted
        return xn.to_mpf(low) <= xn.to_mpf(number) <= xn.to_mpf(high) if not isinstance(number, Fraction) \
            else low <= number <= high


@dataclass
class Quantity:
    """A named value a later step may use: a given, a stated fact or an answer (then with its blanks)."""

    name: str
    source: str  # given, fact, shown (a part printed with its values) or answer
    values: xn.Matrix  # scalars are 1×1
    order: int  # position in the problem: givens and facts first, then answers in printed order
    part: str = ""
    decimals: bool = False
    blanks: dict[tuple[int, int], BlankKey] = field(default_factory=dict)

    def grid(self, value_of) -> xn.Matrix:
        """A matrix shaped like the quantity's blanks, value_of(index, blank) in each cell."""
        rows = 1 + max(i for i, _ in self.blanks)
        cols = 1 + max(j for _, j in self.blanks)
        return tuple(tuple(value_of((i, j), self.blanks[(i, j)]) for j in range(cols)) for i in range(rows))


@dataclass
class ProblemKey:
    """One problem of a key: its spec, its quantities by name (in order) and its blanks."""

    number: int
    type: str
    options: dict[str, str]
    given_parts: tuple[str, ...]
    quantities: dict[str, Quantity]
    blanks: list[BlankKey]
    points: Fraction

    @property
    def spec_key(self) -> tuple:
        """What decides the problem's shapes and steps (not its numbers): recipes are shared across it."""
        return (self.type, tuple(sorted(self.options.items())), self.given_parts)


@dataclass
class SheetKey:
    """A whole key: variant, problems and blanks in printed order."""

    path: str
    variant: str
    title: str
    problems: list[ProblemKey]
    student_id: str | None = None
    student_name: str | None = None

    @property
    def blanks(self) -> list[BlankKey]:
        return [b for p in self.problems for b in p.blanks]

    @property
    def total(self) -> Fraction:
        return sum((p.points for p in self.problems), Fraction(0))


def load_key(path: Path) -> SheetKey:
    """Read a JSON key file; KeyFileError names the file and what is wrong."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise KeyFileError(f"{path}: cannot read the key: {error.strerror or error}") from error
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise KeyFileError(f"{path}: not a JSON key ({error}); pass a *-key.json file written by the generator") from error
    key = key_from_data(data, str(path))
    # A file a teacher can edit: since format 3 it carries a checksum of its content, and a value edited by hand is
    # refused, not marked with (keys built in memory, as the marker's reference draws, need none).
    version = data.get("format_version")
    if ((isinstance(version, int) and version >= 3) or "checksum" in data) and data.get("checksum") != key_checksum(data):
        raise KeyFileError(f"{path}: the key's content does not match its checksum; the key was edited (make it "
                           "again with the same seed and problems, or rebuild the class folder)")
    return key


def key_from_data(data: dict, path: str = "<key>") -> SheetKey:
    """A key from its parsed JSON; the variant code must match its seed and problems (so answers meet the right key)."""
    if not isinstance(data, dict) or data.get("format") != KEY_FORMAT:
        raise KeyFileError(f"{path}: not a key (format is not {KEY_FORMAT!r}); pass a *-key.json file")
    try:
        specs = tuple(ProblemSpec(p["type"], dict(p["options"]), tuple(p.get("given_parts", ())))
                      for p in data["problems"])
        expected = variant_code(SheetSpec(title="x", seed=int(data["seed"]), problems=specs))
    except (KeyError, TypeError, ValueError, SpecError) as error:
        raise KeyFileError(f"{path}: the key's problems cannot be read ({error})") from error
    if expected != data.get("variant"):
        raise KeyFileError(f"{path}: the variant code {data.get('variant')!r} does not match the key's seed and problems "
                        f"({expected}); the key was edited")
    points = data.get("points")
    problems = []
    for position, problem in enumerate(data["problems"]):
        worth = Fraction(points[position]) if isinstance(points, list) and position < len(points) else None
        problems.append(_problem(problem, worth, path))
    student = data.get("student") or {}
    return SheetKey(path, data["variant"], data.get("title", ""), problems, student.get("id"), student.get("name"))


def _problem(problem: dict, worth: Fraction | None, path: str) -> ProblemKey:
    number = int(problem["number"])
    decimals = part_decimals(problem["type"], tuple(sorted(problem["options"].items())))
    quantities: dict[str, Quantity] = {}
    try:
        for source in ("given", "facts"):
            for name, value in problem.get(source, {}).items():
                quantities[name] = Quantity(name, "given" if source == "given" else "fact", _matrix(value),
                                            len(quantities))
    except AnswerError as error:
        raise KeyFileError(f"{path}: problem {number}: a given value cannot be read ({error})") from error
    blanks_data = problem["blanks"]
    worth = worth if worth is not None else Fraction(len(blanks_data))
    each = worth / len(blanks_data) if blanks_data else Fraction(0)
    blanks = []
    # Parts printed with their values (given=) are givens of the later parts, filed where they stand in the problem.
    shown = sorted((problem.get("given_part_values") or {}).items())
    choices = part_choices(problem["type"], tuple(sorted(problem["options"].items())))
    for blank in blanks_data:
        while shown and shown[0][0] < blank["part"]:
            _add_shown(quantities, *shown.pop(0), choices, path, number)
        index = tuple(blank["index"]) if blank.get("index") else None
        if blank["kind"] == "choice":
            number_value = None
        else:
            try:
                number_value = parse_exact(blank["value"])
            except AnswerError as error:
                raise KeyFileError(f"{path}: blank {blank['label']!r}: the value cannot be read ({error})") from error
        try:
            accepted = tuple(Fraction(x) for x in blank["accepted"]) if blank.get("accepted") else None
        except (TypeError, ValueError, ZeroDivisionError) as error:
            raise KeyFileError(f"{path}: blank {blank['label']!r}: the accepted interval cannot be read") from error
        key = BlankKey(blank["label"], number, blank["part"], blank["name"], index, blank["kind"], blank["value"],
                       number_value, tuple(blank.get("choices", ())), decimals.get(blank["part"], False), each,
                       blank.get("table_value", ""), accepted, tuple(blank.get("labels", ())))
        blanks.append(key)
        if key.kind == "number":
            name = key.name
            if name in quantities and (quantities[name].source != "answer" or quantities[name].part != key.part):
                # A given and an answer (or answers of two parts) with one name: the later one is told apart.
                name = f"{key.name}@{key.part}"
            quantity = quantities.get(name)
            if quantity is None:
                quantity = quantities[name] = Quantity(name, "answer", (), len(quantities), key.part, key.decimals)
            quantity.blanks[index or (0, 0)] = key
    for letter, values in shown:
        _add_shown(quantities, letter, values, choices, path, number)
    for quantity in quantities.values():
        if quantity.source == "answer":
            quantity.values = quantity.grid(lambda index, blank: blank.number)
    return ProblemKey(number, problem["type"], dict(problem["options"]), tuple(problem.get("given_parts", ())),
                      quantities, blanks, worth)


def _add_shown(quantities: dict[str, Quantity], letter: str, values: dict, choices: dict[str, frozenset[str]],
               path: str, number: int) -> None:
    """A given part's printed values: fixed like givens, computed like answers (a choice is no number: left out)."""
    for name, value in values.items():
        if name in choices.get(letter, ()):
            continue  # a choice's key such as "acute" (or "e") is a word, never a value
        try:
            matrix = _matrix(value)
        except AnswerError as error:
            raise KeyFileError(f"{path}: problem {number}: given part {letter} {name}: the value cannot be read "
                               f"({error})") from error
        if name in quantities:
            name = f"{name}@{letter}"
        quantities[name] = Quantity(name, "shown", matrix, len(quantities), letter)


def _matrix(value) -> xn.Matrix:
    if isinstance(value, list):
        return tuple(tuple(parse_exact(x) for x in row) for row in value)
    return ((parse_exact(value),),)


@cache
def _sample(type_name: str, options: tuple):
    """One problem of the spec, for what its type and options decide (the parts' shapes and kinds, not numbers)."""
    return make_problem(type_name, dict(options), "marking/decimals")


def part_choices(type_name: str, options: tuple) -> dict[str, frozenset[str]]:
    """The names of each part's choice answers."""
    return {part_letter(i): frozenset(a.name for a in part.answers if isinstance(a.value, Choice))
            for i, part in enumerate(_sample(type_name, options).parts)}


@cache
def answer_forms(type_name: str, options: tuple) -> dict[str, frozenset[str]]:
    """Per answer name, the forms its exact value takes beyond a fraction: "in full" (an exact decimal the statement
    asks for written out, Quantity.exact_decimal), "irrational" (a loss −ln p, a root), "masked" (−∞ above a causal
    mask's diagonal). Decided by the type and its options, never by a variant's numbers (the fill-in file's hint
    tells a student no more than the sheet does)."""
    forms: dict[str, frozenset[str]] = {}
    for part in _sample(type_name, options).parts:
        for answer in part.answers:
            if isinstance(answer.value, Choice):
                continue
            entries = _entries(answer.value)
            forms[answer.name] = frozenset(
                [form for form, holds in (("in full", answer.exact_decimal),
                                          ("irrational", any(v.is_rational is False and v.is_finite for v in entries)),
                                          ("masked", any(v == -sympy.oo for v in entries))) if holds])
    return forms


def _entries(value) -> list:
    """A sympy matrix's entries, or the one value."""
    return list(value) if isinstance(value, sympy.MatrixBase) else [value]


@cache
def part_decimals(type_name: str, options: tuple) -> dict[str, bool]:
    """Which parts ask for 4 decimal places: decided by the type and its options, never by the numbers."""
    return {part_letter(i): part.decimals for i, part in enumerate(_sample(type_name, options).parts)}
