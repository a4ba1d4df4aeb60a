"""Mark one student's answers against a key: exact forms, 4-place tolerance, partial credit, follow-through, named mistakes."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

from . import exactnum as xn
from . import mistakes
from .answers import AnswerError, parse_answer, stands_for
from .followthrough import apply, valid_recipes
from .markkey import BlankKey, ProblemKey, SheetKey

# A 4-place answer is right within half a unit in the 4th place of the exact value, plus one unit of slack: the
# sheets say a result worked from their 4-place tables may differ from the exact value in the last place.
DECIMAL_TOLERANCE = Fraction(1, 20000) + Fraction(1, 10000)

RIGHT, UNREDUCED, FOLLOW_THROUGH = "right", "unreduced", "follow-through"
WRONG, UNANSWERED, MISSING, UNREADABLE, DUPLICATED = "wrong", "not answered", "missing", "unreadable", "duplicated"


@dataclass(frozen=True)
class Policy:
    """Shares of a blank's points: follow-through and unreduced fractions; the tolerance of 4-place parts."""

    follow_through: Fraction = Fraction(1)
    unreduced: Fraction = Fraction(1, 2)
    decimal_tolerance: Fraction = DECIMAL_TOLERANCE


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
    if not blank.decimals and parsed.form == "decimal" and xn.same(number, key, policy.decimal_tolerance):
        note = mistakes.ROUNDED
    return BlankMark(blank, cell.text, WRONG, note=note, number=number, form=parsed.form)


def _follow_through(problem: ProblemKey, marks: list[BlankMark], policy: Policy) -> None:
    """Wrong blanks that agree with the student's own earlier values earn the follow-through share; slips get a name."""
    if not any(m.status == WRONG for m in marks):
        return
    by_label = {m.blank.label: m for m in marks}
    written: dict[str, xn.Matrix | None] = {}
    patched: dict[str, xn.Matrix] = {}  # what the student wrote, the key's value where they wrote nothing readable
    for name, quantity in problem.quantities.items():
        if quantity.source != "answer":
            written[name] = quantity.values
            continue
        cells = {index: by_label[b.label] for index, b in quantity.blanks.items()}
        patched[name] = _patched(quantity, cells)
        written[name] = patched[name] if all(_readable(m) for m in cells.values()) else None
    key_values = {name: q.values for name, q in problem.quantities.items()}
    recipes = valid_recipes(problem)
    decimal_names = {n for n, q in problem.quantities.items() if q.decimals}
    own = {n: v for n, v in written.items() if v is not None}  # the student's complete quantities, and the givens
    for name, quantity in problem.quantities.items():
        if quantity.source != "answer":
            continue
        wrong = [by_label[b.label] for b in quantity.blanks.values() if by_label[b.label].status == WRONG]
        if not wrong:
            continue
        # Decimals written for a value that is not a terminating decimal are compared to 4 places, as on a 4-place part.
        rounded = quantity.decimals or any(m.form == "decimal" for m in wrong)
        for recipe in recipes.get(name, ()):
            # A row of iterates is worked entry by entry: an entry left blank only keeps its successor from
            # following, so the key's value stands in for it.
            inputs = {**own, name: patched[name]} if recipe.op == "recurrence" else own
            changed = [n for n in recipe.inputs if problem.quantities[n].source == "answer"
                       and n in inputs and not _agrees(inputs[n], key_values[n])]
            if not changed or any(n not in inputs for n in recipe.inputs):
                continue
            if any(xn.is_trivial(inputs[n]) for n in changed):
                continue  # zeros or an identity would make every later step trivial: no credit for that
            try:
                value = apply(recipe, inputs)
            except (xn.Undefined, IndexError, ValueError, ZeroDivisionError):
                continue
            if xn.is_trivial(value) and not xn.is_trivial(quantity.values):
                continue
            tolerance = policy.decimal_tolerance if rounded or decimal_names & set(changed) else None
            for mark in wrong:
                i, j = mark.blank.index or (0, 0)
                if mark.status == WRONG and xn.same(mark.number, value[i][j], tolerance):
                    mark.status = FOLLOW_THROUGH
                    mark.points = mark.blank.points * policy.follow_through
                    mark.note = f"follows from your {', '.join(changed)}"
        still = [m for m in wrong if m.status == WRONG]
        if still and written.get(name) is not None:
            tolerance = policy.decimal_tolerance if rounded else None
            sources = [key_values] + ([own] if any(n in own and not _agrees(own[n], key_values[n])
                                                   for n in problem.quantities if problem.quantities[n].source == "answer"
                                                   and n != name) else [])
            named = mistakes.name_mistake(problem, name, recipes, written[name], sources,
                                          lambda a, b: xn.same(a, b, tolerance))
            if named:
                for mark in still:
                    mark.note = named


def _agrees(a: xn.Matrix, b: xn.Matrix) -> bool:
    return all(xn.same(x, y) for x, y in zip(xn.entries(a), xn.entries(b)))


def _readable(mark: BlankMark) -> bool:
    """The cell holds a number the student wrote (right or not)."""
    return mark.number is not None and mark.status in (RIGHT, UNREDUCED, WRONG)


def _patched(quantity, cells) -> xn.Matrix:
    """The student's values, with the key's value wherever a cell holds no readable number."""
    return quantity.grid(lambda index, blank: cells[index].number if _readable(cells[index]) else blank.number)
