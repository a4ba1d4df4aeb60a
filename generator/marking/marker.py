"""Mark one student's answers against a key: exact forms, 4-place intervals, partial credit, follow-through, named mistakes."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache

from generator.marking import exactnum as xn
from generator.marking import mistakes
from generator.marking.answers import FULL_PRECISION, AnswerError, Parsed, normalise, parse_answer, stands_for
from generator.marking.followthrough import SELF, apply, choose, take, valid_choice_recipes, valid_recipes
from generator.marking.intervalnum import Intervals, interval, low_high
from generator.marking.markkey import BlankKey, ProblemKey, SheetKey
from generator.core.readings import HALF

RIGHT, UNREDUCED, FOLLOW_THROUGH = "right", "unreduced", "follow-through"
WRONG, UNANSWERED, MISSING, UNREADABLE, DUPLICATED = "wrong", "not answered", "missing", "unreadable", "duplicated"


@dataclass(frozen=True)
class Policy:
    """Shares of a blank's points: follow-through and unreduced fractions."""

    follow_through: Fraction = Fraction(1)
    unreduced: Fraction = Fraction(1, 2)


@dataclass(frozen=True)
class Cell:
    """What a student wrote in one blank, and where (file and row) for messages."""

    text: str
    file: str = ""
    row: int = 0
    duplicate_rows: tuple[int, ...] = ()  # other rows that answered the same blank


@dataclass
class BlankMark:
    """One blank, marked: what was written, the verdict, the points and why."""

    blank: BlankKey
    answer: str | None
    status: str
    points: Fraction = Fraction(0)
    note: str = ""
    number: xn.Num | None = None
    form: str = ""  # how the answer was written (integer, fraction, decimal, expression)


@dataclass
class StudentMark:
    """A student's marked sheet."""

    student_id: str
    name: str
    key: SheetKey
    marks: list[BlankMark] = field(default_factory=list)

    @property
    def score(self) -> Fraction:
        return sum((m.points for m in self.marks), Fraction(0))

    @property
    def out_of(self) -> Fraction:
        return sum((m.blank.points for m in self.marks), Fraction(0))


def mark_student(key: SheetKey, cells: dict[str, Cell], student_id: str, name: str = "",
                 policy: Policy = Policy()) -> StudentMark:
    """Mark every blank of the key from the student's cells (by label); absent labels are 'missing'."""
    result = StudentMark(student_id, name, key)
    for problem in key.problems:
        marks = [_first_look(blank, cells.get(blank.label), policy) for blank in problem.blanks]
        _follow_through(problem, marks, policy)
        result.marks += marks
    return result


def _first_look(blank: BlankKey, cell: Cell | None, policy: Policy) -> BlankMark:
    """The verdict from this blank alone: right, unreduced, wrong, or why it could not be marked."""
    if cell is None:
        return BlankMark(blank, None, MISSING, note="no row for this blank")
    if cell.duplicate_rows:
        return BlankMark(blank, cell.text, DUPLICATED,
                         note=f"answered in rows {', '.join(map(str, (cell.row,) + cell.duplicate_rows))}")
    if not cell.text.strip():
        return BlankMark(blank, cell.text, UNANSWERED)
    if blank.kind == "choice":
        chosen = blank.choice_of(cell.text)  # a key or its printed label, in any letter case
        if chosen is None:
            return BlankMark(blank, cell.text, UNREADABLE, note=f"accepted: {', '.join(blank.choices)} "
                             "(or the label printed beside it)")
        right = chosen == blank.text
        return BlankMark(blank, cell.text, RIGHT if right else WRONG, blank.points if right else Fraction(0))
    try:
        parsed = parse_answer(cell.text)
    except AnswerError as error:
        return BlankMark(blank, cell.text[:60], UNREADABLE, note=str(error))
    number, key = parsed.number, blank.number
    if stands_for(parsed, key):
        number = key  # a spreadsheet's 15 digits (0,666666666666667) are its exact value (2/3)
    if xn.same(number, key) or (blank.decimals and blank.accepts(number)):
        if parsed.unreduced and not blank.decimals:
            return BlankMark(blank, cell.text, UNREDUCED, blank.points * policy.unreduced, mistakes.UNREDUCED, number,
                             parsed.form)
        return BlankMark(blank, cell.text, RIGHT, blank.points, number=number, form=parsed.form)
    note = ""
    if not blank.decimals and parsed.form == "decimal" and xn.same(number, key, last_place(cell.text)):
        note = mistakes.ROUNDED
    return BlankMark(blank, cell.text, WRONG, note=note, number=number, form=parsed.form)


def _follow_through(problem: ProblemKey, marks: list[BlankMark], policy: Policy) -> None:
    """Wrong blanks that agree with the student's own earlier values earn the follow-through share; slips get a name."""
    if not any(m.status == WRONG for m in marks):
        return
    by_label = {m.blank.label: m for m in marks}
    written: dict[str, xn.Matrix | None] = {}
    patched: dict[str, xn.Matrix] = {}  # what the student wrote, the key's value where they wrote nothing readable
    radii: dict[str, xn.Matrix] = {}  # how far the value a student meant may be from what they wrote (its rounding)
    for name, quantity in problem.quantities.items():
        if quantity.source != "answer":
            written[name] = quantity.values
            continue
        cells = {index: by_label[b.label] for index, b in quantity.blanks.items()}
        patched[name] = _patched(quantity, cells)
        radii[name] = quantity.grid(lambda index, blank: _rounding(cells[index]) if _readable(cells[index]) else _EXACT)
        written[name] = patched[name] if all(_readable(m) for m in cells.values()) else None
    key_values = {name: q.values for name, q in problem.quantities.items()}
    recipes = valid_recipes(problem)
    own = {n: v for n, v in written.items() if v is not None}  # the student's complete quantities, and the givens
    own_rounded = _Rounded(own, radii)  # the same as intervals, converted once for every recipe that needs them
    for name, quantity in problem.quantities.items():
        if quantity.source != "answer":
            continue
        wrong = [by_label[b.label] for b in quantity.blanks.values() if by_label[b.label].status == WRONG]
        if not wrong:
            continue
        steps = Intervals(_table_half(quantity))
        for recipe in recipes.get(name, ()):
            # A row of iterates (a table of steps) is worked entry by entry: an entry left blank only keeps its
            # successor from following, so the key's value stands in for it.
            inputs, rounded = ({**own, name: patched[name]}, None) if recipe.op in SELF else (own, own_rounded)
            changed = [n for n in recipe.inputs if problem.quantities[n].source == "answer"
                       and n in inputs and not _agrees(inputs[n], key_values[n])]
            if not changed or any(n not in inputs for n in recipe.inputs):
                continue
            if any(xn.is_trivial(inputs[n]) for n in changed):
                continue  # zeros or an identity would make every later step trivial: no credit for that
            try:
                # Inputs known only to their rounding give an interval per entry, exact inputs one exact value.
                bounds = _bounds(recipe.inputs, rounded or _Rounded(inputs, radii), radii,
                                 lambda values: apply(recipe, values, steps), reads_tables=steps.table > 0)
                value = apply(recipe, inputs) if bounds is None else None
            except (xn.Undefined, IndexError, ValueError, ZeroDivisionError):
                continue
            if (xn.is_trivial(value) if bounds is None else steps.is_trivial(bounds)) \
                    and not xn.is_trivial(quantity.values):
                continue
            for mark in wrong:
                if mark.status == WRONG:
                    i, j = mark.blank.index or (0, 0)
                    _carry(mark, None if value is None else value[i][j], None if bounds is None else bounds[i][j],
                           changed, policy)
        still = [m for m in wrong if m.status == WRONG]
        if still and written.get(name) is not None:
            cells = {index: by_label[b.label] for index, b in quantity.blanks.items()}
            sources = [(key_values, None)]
            if any(n in own and not _agrees(own[n], key_values[n]) for n in problem.quantities
                   if problem.quantities[n].source == "answer" and n != name):
                any_rounding = any(r for n in radii for r in xn.entries(radii[n]))
                sources.append((own, own_rounded if any_rounding else None))

            def reproduces(value: xn.Matrix, slip, intervals) -> bool:
                bounds = None if slip is None or intervals is None else slip(intervals, steps)
                return all(_within(mark.number, value[i][j], None if bounds is None else bounds[i][j],
                                   max(_allowance(mark), _rounding(mark)))
                           for (i, j), mark in cells.items())

            named = mistakes.name_mistake(problem, name, recipes, written[name], sources, reproduces)
            for mark in still:
                if named and not mark.note:  # a blank's own note (such as "rounded") is never replaced
                    mark.note = named
    _follow_choices(problem, marks, own, own_rounded, key_values, radii, policy)


def _carry(mark: BlankMark, value: xn.Num, bounds, changed: list[str], policy: Policy) -> None:
    """Credit a wrong blank that the student's own value explains, by the same form rules as a right answer."""
    source = f"follows from your {', '.join(changed)}"
    if _within(mark.number, value, bounds, _allowance(mark)):
        mark.status = FOLLOW_THROUGH
        mark.points = mark.blank.points * policy.follow_through
        mark.note = source
        if _parsed(mark).unreduced and not mark.blank.decimals:
            mark.points *= policy.unreduced
            mark.note = f"{source}; {mistakes.UNREDUCED}"
    elif not mark.blank.decimals and _rounding(mark) and not mark.note \
            and _within(mark.number, value, bounds, _rounding(mark)):
        mark.note = mistakes.ROUNDED  # the student's own value, rounded: it earns what a rounded right value earns


def _follow_choices(problem: ProblemKey, marks: list[BlankMark], own: dict, own_rounded: _Rounded,
                    key_values: dict, radii: dict, policy: Policy) -> None:
    """A wrong choice that the student's own earlier numbers lead to (their argmax, their sign) earns follow-through."""
    wrong = [m for m in marks if m.blank.kind == "choice" and m.status == WRONG]
    if not wrong:
        return
    recipes = valid_choice_recipes(problem)
    for mark in wrong:
        chosen = mark.blank.choice_of(mark.answer or "")
        for recipe in recipes.get(mark.blank.name, ()):
            name, form = recipe.inputs[0], recipe.forms[0]
            if name not in own or problem.quantities[name].source != "answer" \
                    or _agrees(take(own, name, form), take(key_values, name, form)):
                continue
            # An argmax of a row of equal values is any position; a sign of 0 is a class of its own.
            if recipe.op in ("argmax", "argmax_except") and xn.is_trivial(take(own, name, form)):
                continue
            try:
                options = _bounds(recipe.inputs, own_rounded, radii,
                                  lambda values: choose(recipe, values, mark.blank.choices, Intervals()))
                if options is None:
                    options = choose(recipe, own, mark.blank.choices)
            except (xn.Undefined, IndexError, ValueError, ZeroDivisionError):
                continue
            if chosen in options:
                mark.status = FOLLOW_THROUGH
                mark.points = mark.blank.points * policy.follow_through
                mark.note = f"follows from your {name}"
                break


def _agrees(a: xn.Matrix, b: xn.Matrix) -> bool:
    return all(xn.same(x, y) for x, y in zip(xn.entries(a), xn.entries(b)))


def _readable(mark: BlankMark) -> bool:
    """The cell holds a number the student wrote (right or not)."""
    return mark.number is not None and mark.status in (RIGHT, UNREDUCED, WRONG)


def _patched(quantity, cells) -> xn.Matrix:
    """The student's values, with the key's value wherever a cell holds no readable number."""
    return quantity.grid(lambda index, blank: cells[index].number if _readable(cells[index]) else blank.number)


# ----- what a written value stands for ----------------------------------------------------------------------------


def _parsed(mark: BlankMark) -> Parsed:
    return parse_answer(mark.answer or "")


_EXACT = Fraction(0)


def _rounding(mark: BlankMark) -> Fraction:
    """Half a unit of the last decimal place written (0.1192: ±0.00005); 0 for an exact form."""
    return last_place(mark.answer or "")


@lru_cache(maxsize=65536)
def last_place(text: str) -> Fraction:
    """Half a unit of the last decimal place of a written decimal (0.1192, 1,192E-1), else 0 (an exact form)."""
    digits = _DECIMAL_PLACES.fullmatch(normalise(text))
    if not digits:
        return _EXACT
    return Fraction(1, 2) * Fraction(10) ** (int(digits.group(2) or 0) - len(digits.group(1)))


def _allowance(mark: BlankMark) -> Fraction:
    """How far from the student's own value the written one may be, as on a right answer (see answers.stands_for)."""
    # ½ unit of the 4th place on a 4-place blank; half a unit of the FULL_PRECISION-th significant digit for a decimal
    # that long (a spreadsheet's digits stand for the value); nothing for an exact form or a shorter decimal.
    if mark.blank.decimals:
        return HALF
    return _full_precision(mark.answer or "") if _rounding(mark) else _EXACT


@lru_cache(maxsize=65536)
def _full_precision(text: str) -> Fraction:
    """Half a unit of the FULL_PRECISION-th significant digit of a decimal that long, else 0."""
    written = Decimal(normalise(text).replace(",", ".").replace(" ", ""))
    if written.is_zero() or len(written.as_tuple().digits) < FULL_PRECISION:
        return _EXACT
    return Fraction(1, 2) * Fraction(10) ** (written.adjusted() - FULL_PRECISION + 1)


_DECIMAL_PLACES = re.compile(r"[+-]?\s*\d*[.,](\d*)(?:[eE]([+-]?\d+))?")


def _within(number: xn.Num, value: xn.Num | None, bounds, allowance: Fraction) -> bool:
    """number within allowance of value, or of the interval [low, high] the student's rounded inputs allow."""
    if bounds is None:
        return xn.same(number, value) if allowance == 0 else xn.same(number, value, allowance)
    if xn.is_neg_inf(number) or bounds[1] == -float("inf"):
        return xn.is_neg_inf(number) and bounds[1] == -float("inf")
    low, high = low_high(bounds)
    if isinstance(number, Fraction):
        return low - allowance <= number <= high + allowance
    return xn.to_mpf(low - allowance) <= number <= xn.to_mpf(high + allowance)


def _bounds(names, rounded: _Rounded, radii: dict, evaluate, reads_tables: bool = False):
    """evaluate(the inputs as intervals, each ± its rounding); None when they are exact and read no table."""
    if not reads_tables and not any(n in radii and any(xn.entries(radii[n])) for n in names):
        return None
    return evaluate(rounded)


class _Rounded(Mapping):
    """The student's values as intervals (each entry ± its rounding), converted only when a step asks for one."""

    def __init__(self, values: dict, radii: dict):
        self.values, self.radii, self.done = values, radii, {}

    def __getitem__(self, name: str):
        if name not in self.done:
            self.done[name] = interval(self.values[name], self.radii.get(name))
        return self.done[name]

    def __iter__(self):
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)


# A key without tables accepts ½ unit around its exact value known to 12 places (readings.fallback_reading).
_KEY_DIGITS = Fraction(1, 10**9)


def _table_half(quantity) -> Fraction:
    """½ unit of the 4th place where the key's 4-place intervals show that the sheet's route reads printed tables."""
    if not quantity.decimals:
        return _EXACT
    for blank in quantity.blanks.values():
        if blank.decimals and blank.accepted is not None:
            exact, (low, high) = xn.to_mpf(blank.number), blank.accepted
            if max(exact - xn.to_mpf(low), xn.to_mpf(high) - exact) > xn.to_mpf(HALF + _KEY_DIGITS):
                return HALF
    return Fraction(0)
