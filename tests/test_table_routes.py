"""4-place answers the sheet's way: a simulated student who works from the printed tables, written apart from the
generator (Decimal arithmetic over the tables read back from the worksheet's TeX), is what the key prints and
what the marker accepts; so is a student who keeps full precision; 2 units beyond the accepted interval is not."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

import pytest

from generator.marking.markkey import key_from_data
from generator.marking.marker import RIGHT, Cell, mark_student
from generator.core.registry import get_type
from generator.documents.sheet import render_key_json, render_worksheet

from .conftest import sheet_for
from .printed_tables import printed_tables

SEEDS = 200
UNIT = Decimal("0.0001")


def r4(x: Decimal) -> Decimal:
    """Rounded to 4 places, half away from zero, as a student rounds."""
    return x.quantize(UNIT, rounding=ROUND_HALF_UP)


def d(x: Fraction) -> Decimal:
    return Decimal(x.numerator) / Decimal(x.denominator)


def fractions(value) -> list[list[Fraction]]:
    """A JSON matrix of exact strings (fractions only) as Fractions."""
    return [[Fraction(x) for x in row] for row in value] if isinstance(value, list) else [[Fraction(value)]]


def product(a, b):
    return [[sum((x * y for x, y in zip(row, col)), Fraction(0)) for col in zip(*b)] for row in a]


def softmax_from_table(scores, e_table) -> list[Decimal]:
    """Subtract the row's max, look each e^t up, divide by the sum: the unrounded values."""
    top = max(scores)
    exps = [e_table[Fraction(s - top)] for s in scores]
    total = sum(exps)
    return [x / total for x in exps]


# ----- one simulated student per type: label → the values a reading of the statement gives (sheet's method first)

def softmax_student(problem, tables):
    (z,) = fractions(problem["given"]["z"])
    return {f"1b p[0,{j}]": [p] for j, p in enumerate(softmax_from_table(z, tables["e^k"]))}


def output_logits_student(problem, tables):
    given = problem["given"]
    z = product(fractions(given["h"]), fractions(given["W_out"]))
    if "b" in given:
        z = [[v + b for v, b in zip(row, fractions(given["b"])[0])] for row in z]
    return {f"1b p[{i},{j}]": [p] for i, row in enumerate(z)
            for j, p in enumerate(softmax_from_table(row, tables["e^k"]))}


def gelu_backward_student(problem, tables):
    (h,), (dg,) = fractions(problem["given"]["h"]), fractions(problem["given"]["dg"])
    values = {}
    for j, (x, g) in enumerate(zip(h, dg)):
        slope = tables["Phi"][x] + d(x) * tables["phi"][x]
        values[f"1a slope[0,{j}]"] = [slope]
        values[f"1b dh[0,{j}]"] = [d(g) * r4(slope), d(g) * slope]  # the 4-place slope carried on, or the whole one
    return values


def ffn_gelu_student(problem, tables):
    given = problem["given"]
    pre = [[v + b for v, b in zip(row, fractions(given["b1"])[0])]
           for row in product(fractions(given["x"]), fractions(given["W1"]))]
    return {f"1b g[{i},{j}]": [d(x) * tables["Phi"][x]] for i, row in enumerate(pre) for j, x in enumerate(row)}


def _ln(k: int, table) -> Decimal:
    return Decimal(0) if k == 1 else table[Fraction(k)]


def _primes(n: int) -> list[int]:
    found, p = [], 2
    while n > 1:
        while n % p == 0:
            found, n = found + [p], n // p
        p += 1
    return found


def cross_entropy_student(problem, tables):
    ln = tables["ln k"]
    ks = [[1 if x == "0" else int(re.fullmatch(r"log\((\d+)\)", x).group(1)) for x in row] for row in problem["given"]["z"]]
    targets = [int(t) for t in problem["facts"]["targets"][0]]
    positions = len(ks)
    losses, ratio = [], Fraction(1)
    for row, t in zip(ks, targets):
        g = Fraction(sum(row), row[t])  # ℓ = −ln(k/S) = ln S − ln k, the fraction reduced first
        losses.append(_ln(g.numerator, ln) - _ln(g.denominator, ln))
        ratio *= g
    divisor = positions if problem["options"]["reduction"] == "mean" else 1
    by_primes = sum((ln[Fraction(p)] for p in _primes(ratio.numerator)), Decimal(0)) \
        - sum((ln[Fraction(p)] for p in _primes(ratio.denominator)), Decimal(0))
    readings = [sum(losses) / divisor, sum(r4(x) for x in losses) / divisor, by_primes / divisor]
    # The key's exact L is ln(ratio)/divisor with the largest root taken (ln(36)/2 = ln 6): read from the table
    # where it prints that fraction's numerator and denominator.
    for k in range(divisor, 0, -1):
        top, bottom = (round(x ** (1 / k)) for x in (ratio.numerator, ratio.denominator))
        if divisor % k == 0 and top**k == ratio.numerator and bottom**k == ratio.denominator:
            if top <= 12 and bottom <= 12:
                readings.append((_ln(top, ln) - _ln(bottom, ln)) / (divisor // k))
            break
    # L from the positions' losses (kept whole, or first written to 4 places), or from one simplified logarithm.
    return {"1d L": readings}


def example1_student(problem, tables):
    given, facts = problem["given"], problem["facts"]
    e = fractions(given["E"])
    x = [e[int(t)] for t in facts["token_ids"][0]]
    q, k = product(x, fractions(given["W_Q"])), product(x, fractions(given["W_K"]))
    root = {1: 1, 4: 2, 16: 4}[int(facts["d_k"])]
    scores = [sum((a * b for a, b in zip(q[1], k[j])), Fraction(0)) / root for j in range(2)]
    values = {f"1e a[0,{j}]": [a] for j, a in enumerate(softmax_from_table(scores, tables["e^k"]))}
    c = product(fractions(facts["given_weights"]), product(x, fractions(given["W_V"])))
    z = product(c, fractions(given["W_out"]))[0]
    values.update({f"1h p[0,{j}]": [p] for j, p in enumerate(softmax_from_table(z, tables["e^k"]))})
    return values


STUDENTS = {
    "softmax": (softmax_student, ["form=table,length=3", "form=table,length=4"]),
    "output_logits": (output_logits_student, None),
    "gelu_backward": (gelu_backward_student, None),
    "ffn_gelu": (ffn_gelu_student, None),
    "cross_entropy": (cross_entropy_student, None),
    "example1": (example1_student, None),
}


def _specs(type_name: str, options) -> list[str]:
    if options:
        return [f"{type_name}:{o}" for o in options]
    sets = get_type(type_name).option_sets()
    return [f"{type_name}:" + ",".join(f"{k}={v}" for k, v in o.items()) if o else type_name for o in sets]


@pytest.mark.parametrize("type_name", sorted(STUDENTS))
def test_a_student_who_follows_the_sheet_is_marked_right(type_name):
    """Over 200 seeds: the key prints the sheet's table route; it, every other reading and full precision are
    accepted; 2 units of the 4th place beyond the accepted interval are not."""
    student, options = STUDENTS[type_name]
    specs = _specs(type_name, options)
    checked = 0
    for seed in range(SEEDS):
        sheet = sheet_for([specs[seed % len(specs)]], seed, calculator="basic")
        tables = printed_tables(render_worksheet(sheet))
        data = __import__("json").loads(render_key_json(sheet))
        problem = data["problems"][0]
        readings = student(problem, tables)
        decimal_blanks = [b for b in problem["blanks"] if "table_value" in b]
        assert {b["label"] for b in decimal_blanks} == set(readings), (seed, sorted(readings))
        key = key_from_data(data)
        exact_answers = {b.label: b.text for b in key.blanks}
        by_sheet = dict(exact_answers)
        full_precision = dict(exact_answers)
        beyond = dict(exact_answers)
        for blank in decimal_blanks:
            label, values = blank["label"], readings[blank["label"]]
            low, high = (Decimal(x) for x in blank["accepted"])
            assert Decimal(blank["table_value"]) == r4(values[0]), (seed, label, values[0], blank["table_value"])
            for value in values:
                assert low <= r4(value) <= high and low <= value <= high, (seed, label, value, low, high)
            exact = Decimal(blank["decimal"])
            assert low <= r4(exact) <= high, (seed, label, exact)
            by_sheet[label] = str(r4(values[0]))
            full_precision[label] = str(r4(exact))
            beyond[label] = str(r4(high) + 2 * UNIT) if seed % 2 else str(r4(low) - 2 * UNIT)
            checked += 1
        for answers, right in ((by_sheet, True), (full_precision, True), (beyond, False)):
            marks = mark_student(key, {label: Cell(text) for label, text in answers.items()}, "s")
            for mark in marks.marks:
                if mark.blank.label in readings:
                    assert (mark.status == RIGHT) == right, (seed, mark.blank.label, answers[mark.blank.label], mark.status)
    assert checked >= SEEDS
