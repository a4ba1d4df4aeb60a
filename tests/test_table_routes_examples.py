"""Examples 2 and 4 worked the sheet's way by a simulated student written apart from the generator: Decimal
arithmetic over the e^k and ln k tables read back from the worksheet's TeX and the Givens of the JSON key. The key's
table value is what that student writes, every reading lies in the accepted interval, so does the exact value's
4-place rounding, and 2 units of the 4th place beyond the interval is marked wrong."""

from __future__ import annotations

import json
import re
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

import pytest
import sympy

from generator.marking.markkey import key_from_data
from generator.marking.marker import RIGHT, Cell, mark_student
from generator.problems.example2 import probability_after
from generator.core.registry import get_type
from generator.documents.sheet import render_key, render_key_json, render_worksheet

from .conftest import sheet_for
from .printed_tables import printed_tables

SEEDS_PER_TYPE = 200  # every option set its share: 50 each of 4 option sets, 25 each of 8
UNIT = Decimal("0.0001")  # Decimal's 28 digits lie far past it: a student's own rounding is the only one that counts


def r4(x: Decimal) -> Decimal:
    """Rounded to 4 places, half away from zero, as a student rounds."""
    return x.quantize(UNIT, rounding=ROUND_HALF_UP)


def fractions(value) -> list[list[Fraction]]:
    return [[Fraction(x) for x in row] for row in value]


def product(a, b):
    return [[sum((x * y for x, y in zip(row, col)), Fraction(0)) for col in zip(*b)] for row in a]


def softmax_from_table(scores, e_table) -> list[Decimal]:
    """Subtract the largest score, look every e^t up in the printed table, divide by their sum."""
    top = max(scores)
    exps = [e_table[s - top] for s in scores]
    return [x / sum(exps) for x in exps]


def ln_from_table(k: int, ln_table) -> Decimal:
    return Decimal(0) if k == 1 else ln_table[Fraction(k)]


def ln_by_primes(k: int, ln_table) -> Decimal:
    """ln k as the sum of the table's ln p over k's prime factors (ln 4 = 2 ln 2)."""
    result, p = Decimal(0), 2
    while k > 1:
        while k % p == 0:
            result, k = result + ln_table[Fraction(p)], k // p
        p += 1
    return result


def example2_student(problem, tables) -> dict[tuple, list[Decimal]]:
    """(name, index) → the values a reading of the statement gives, the sheet's own method first."""
    given, facts = problem["given"], problem["facts"]
    e_table, ln_table = tables["e^k"], tables["ln k"]
    x = [fractions(given["E"])[int(t)] for t in facts["token_ids"][0]]
    q, k = product(x, fractions(given["W_Q"])), product(x, fractions(given["W_K"]))
    root = {1: 1, 4: 2}[int(facts["d_k"])]
    last = [sum((a * b for a, b in zip(q[1], k[j])), Fraction(0)) / root for j in range(2)]
    values = {("a", (0, j)): [a] for j, a in enumerate(softmax_from_table(last, e_table))}
    c = product(fractions(facts["given_weights"]), product(x, fractions(given["W_V"])))
    z = product(c, fractions(given["W_out"]))[0]
    values.update({("p", (0, j)): [p] for j, p in enumerate(softmax_from_table(z, e_table))})
    # L = −ln p̃_target = ln b − ln a from the ln k table; splitting b and a into primes is a reading too.
    p_target = Fraction(facts["given_p"][0][int(facts["target_index"])])
    a, b = p_target.numerator, p_target.denominator
    values[("L", None)] = [ln_from_table(b, ln_table) - ln_from_table(a, ln_table),
                           ln_by_primes(b, ln_table) - ln_by_primes(a, ln_table)]
    return values


def example4_student(problem, tables) -> dict[tuple, list[Decimal]]:
    """Epoch 0: every loss −ln(1/4) = ln 4 − ln 1, and their mean (the probabilities, all 1/4, are asked exactly)."""
    ln_table = tables["ln k"]
    batch, vocabulary = len(problem["given"]["C"]), 4
    values = {}
    as_ln4 = [ln_from_table(vocabulary, ln_table) - ln_from_table(1, ln_table)] * batch
    by_primes = [ln_by_primes(vocabulary, ln_table)] * batch
    values[("L0", None)] = [sum(as_ln4) / batch, sum(by_primes) / batch]
    return values


STUDENTS = {"example2": example2_student, "example4": example4_student}


def _exact_decimal(text: str) -> Decimal:
    """A blank's exact value ('log(10)', '1/4') to 40 digits."""
    return Decimal(str(sympy.N(sympy.sympify(text, rational=True), 40)))


def _mark(key, answers: dict[str, str]) -> dict:
    marked = mark_student(key, {label: Cell(text) for label, text in answers.items()}, "s")
    return {m.blank.label: m for m in marked.marks}


def _seeds(type_name: str) -> range:
    """The seeds each option set of the type is checked on: together SEEDS_PER_TYPE (or a few more)."""
    return range(-(-SEEDS_PER_TYPE // len(get_type(type_name).option_sets())))


def _cases():
    for type_name in sorted(STUDENTS):
        for options in get_type(type_name).option_sets():
            yield type_name, ",".join(f"{k}={v}" for k, v in options.items())


@pytest.mark.parametrize("type_name,options", list(_cases()))
def test_a_student_who_follows_the_sheet_gets_the_keys_table_value(type_name, options):
    checked = 0
    for seed in _seeds(type_name):
        sheet = sheet_for([f"{type_name}:{options}"], seed, calculator="basic")
        tables = printed_tables(render_worksheet(sheet))  # as the student reads them off the page
        data = json.loads(render_key_json(sheet))
        problem = data["problems"][0]
        readings = STUDENTS[type_name](problem, tables)
        four_place = [b for b in problem["blanks"] if "table_value" in b]
        by_name = {(b["name"], tuple(b["index"]) if b["index"] else None): b for b in four_place}
        assert set(by_name) == set(readings), (seed, sorted(by_name, key=str))
        key = key_from_data(data)
        perfect = {b.label: b.text for b in key.blanks}
        by_sheet, above, below = dict(perfect), dict(perfect), dict(perfect)
        for name_index, blank in by_name.items():
            label, values = blank["label"], readings[name_index]
            low, high = (Decimal(x) for x in blank["accepted"])
            # (1) the key prints what the student who follows the sheet writes
            assert Decimal(blank["table_value"]) == r4(values[0]), (seed, label, values[0], blank["table_value"])
            # (2) every reading, kept whole or rounded, is accepted
            for value in values:
                assert low <= value <= high and low <= r4(value) <= high, (seed, label, value, low, high)
            # (3) so is the exact value to 4 places (a calculator's answer)
            assert low <= r4(_exact_decimal(blank["value"])) <= high, (seed, label, blank["value"], low, high)
            by_sheet[label] = str(r4(values[0]))
            above[label] = str(r4(high) + 2 * UNIT)
            below[label] = str(r4(low) - 2 * UNIT)
            checked += 1
        # (4) the marker agrees: the sheet's values are right, 2 units beyond the interval (either side) is wrong
        for answers, right in ((by_sheet, True), (above, False), (below, False)):
            marks = _mark(key, answers)
            for blank in by_name.values():
                mark = marks[blank["label"]]
                assert (mark.status == RIGHT) == right, (seed, blank["label"], answers[blank["label"]], mark.status)
                assert right or mark.points == 0, (seed, blank["label"], mark.points)
    assert checked >= len(_seeds(type_name))


_RISEN = re.compile(r"The logits? of (.*?) fell too, yet")
_BEFORE_AFTER = re.compile(r"p_\{\\text\{([A-D])\}\} \\approx (\d\.\d{4}) \\;\\to\\; p'_\{\\text\{\1\}\} \\approx (\d\.\d{4})")


def _probability_after(scores: list[Fraction], j: int, e_table) -> Decimal:
    """From the e^k table where every shifted score is printed in it, else as a calculator gives it."""
    top = max(scores)
    if all(s - top in e_table for s in scores):
        return softmax_from_table(scores, e_table)[j]
    return _calculator(scores, j)


@pytest.mark.parametrize("options", [o for t, o in _cases() if t == "example2"])
def test_example2_likeliest_wrong_token_holds_for_the_numbers_its_key_prints(options):
    """The key's choice is the wrong token whose new probability, to 4 places as the key prints it, is above every
    other wrong token's (a near-tie that prints alike is never drawn); each 'before' is p's table value."""
    notes = 0
    for seed in _seeds("example2"):
        sheet = sheet_for([f"example2:{options}"], seed, calculator="basic")
        problem = json.loads(render_key_json(sheet))["problems"][0]
        e_table = printed_tables(render_worksheet(sheet))["e^k"]
        target = int(problem["facts"]["target_index"])
        p_printed = {b["index"][1]: Decimal(b["table_value"]) for b in problem["blanks"] if b["name"] == "p"}
        z_new = [Fraction(b["value"]) for b in problem["blanks"] if b["name"] == "z_new"]
        printed = {token: (Decimal(before), Decimal(after))
                   for token, before, after in _BEFORE_AFTER.findall(render_key(sheet))}
        wrong = [j for j in range(4) if j != target]
        assert sorted(printed) == ["ABCD"[j] for j in wrong], (seed, sorted(printed))
        for j in wrong:
            before, after = printed["ABCD"[j]]
            assert before == p_printed[j], (seed, j, before, p_printed[j])
            assert after == r4(_probability_after(z_new, j, e_table)), (seed, j, after)
        # A wrong token said to have gained probability (its logit fell too) shows it in print and in fact.
        note = _RISEN.search(render_key(sheet))
        risen = re.findall(r"\\texttt\{([A-D])\}", note.group(1)) if note else []
        z = [Fraction(b["value"]) for b in problem["blanks"] if b["name"] == "z"]
        for token in risen:
            j = "ABCD".index(token)
            assert printed[token][0] < printed[token][1] and _calculator(z, j) < _calculator(z_new, j), (seed, token)
        notes += bool(risen)
        choice = next(b for b in problem["blanks"] if b["name"] == "likeliest_wrong")
        assert choice["choices"] == ["ABCD"[j] for j in wrong]
        chosen = printed.pop(choice["value"])[1]
        assert all(chosen > after for _, after in printed.values()), (seed, choice["value"], chosen, printed)
    # With η = 1/2 the step is small enough, now and then, for a wrong token to gain probability (η = 1: never seen).
    assert notes > 0 or "lr=1/2" not in options


def test_example2_probability_after_reads_the_table_only_where_it_prints_every_exponent():
    """Whole shifted logits in the table: the table route (as the key's softmax lines print it); else the exact value."""
    e_table = {Fraction(k): Decimal(v) for k, v in ((0, "1.0000"), (-1, "0.3679"), (-2, "0.1353"), (-5, "0.0067"))}
    whole = [Fraction(3), Fraction(2), Fraction(1), Fraction(-2)]
    reading = probability_after(whole, 1)
    by_table = softmax_from_table(whole, e_table)[1]
    assert Decimal(reading.route.numerator) / reading.route.denominator == by_table
    assert reading.low < Fraction(str(_calculator(whole, 1))) < reading.high
    halves = [Fraction(1, 2), Fraction(-3, 2), Fraction(0), Fraction(-7, 2)]
    reading = probability_after(halves, 0)
    assert abs(Decimal(reading.route.numerator) / reading.route.denominator - _calculator(halves, 0)) < Decimal("1e-20")
    assert reading.width < Fraction(1, 10**20)


def _calculator(scores: list[Fraction], j: int) -> Decimal:
    """softmax(scores)[j] as a calculator gives it (28 digits)."""
    exps = [(Decimal(s.numerator) / s.denominator).exp() for s in scores]
    return exps[j] / sum(exps)
