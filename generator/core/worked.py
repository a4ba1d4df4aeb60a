"""Builders for worked steps that many problem types share: products, shapes, entries."""

from __future__ import annotations

import sympy
from sympy import ImmutableMatrix

from generator.core.problem import Expansion, Quantity, Step, Term, Tex, matrix_rows, rational_rows
from generator.documents.render import number_tex


def shape_text(value: ImmutableMatrix) -> Tex:
    """A matrix shape as printed in math mode, e.g. (2 \\times 1)."""
    rows, cols = value.shape
    return Tex(f"({rows} \\times {cols})")


def entry_label(symbol: str, i: int, j: int) -> Tex:
    """How one entry is named in a key and in answer labels: C[0,1]."""
    return Tex(f"{symbol}[{i},{j}]")


def cells_to_expand(value: ImmutableMatrix, expand: str) -> list[tuple[int, int]]:
    """Which entries a key writes out in full: all, the first row, or only the first."""
    cells = [(i, j) for i in range(value.rows) for j in range(value.cols)]
    if expand == "first":
        return cells[:1]
    if expand == "row":
        return [c for c in cells if c[0] == 0]
    return cells


def check_result(name: str, expected: ImmutableMatrix, result: Quantity) -> None:
    # Guard the key: a step's stated result must be what its own formula gives.
    if expected != result.value:
        raise ValueError(f"{name} step for {result.name}: result does not match the formula")


def _plain_product(left: ImmutableMatrix, right: ImmutableMatrix, result) -> bool | None:
    """Does left·right equal `result`, worked on plain ints and Fractions? None where an entry is no Rational or the
    result is no matrix (sympy decides). A sympy product and comparison of two 2×2 matrices cost about 60 µs."""
    a, b, expected = rational_rows(left), rational_rows(right), rational_rows(result)
    if a is None or b is None or expected is None:
        return None
    return [[sum(x * y for x, y in zip(row, column)) for column in zip(*b)] for row in a] == expected


def dot_expansion(label: Tex, left, right) -> Expansion:
    """label = l0·r0 + l1·r1 + … = value, for two equal-length sequences."""
    terms = tuple(Term((a, b)) for a, b in zip(left, right, strict=True))
    if all(isinstance(x, sympy.Integer) for x in (*left, *right)):
        # Whole numbers (most draws): the same Integer from Python's ints, for a tenth of sympy's Mul and Add.
        return Expansion(label, terms, sympy.Integer(sum(int(a.p) * int(b.p) for a, b in zip(left, right))))
    return Expansion(label, terms, sympy.Add(*(a * b for a, b in zip(left, right))))


def product_step(
    text: str | Tex,
    left: ImmutableMatrix,
    right: ImmutableMatrix,
    formula: Tex,
    result: Quantity,
    expand: str = "all",
    checks: tuple[Tex, ...] = (),
) -> Step:
    """A matrix product step: shapes, the entries worked out ('all', the first 'row', or the 'first'), the result."""
    # Rows and columns as plain lists, taken once: sympy's row()/col() build a new matrix on every call.
    rows, right_rows = matrix_rows(left), matrix_rows(right)
    columns = [list(column) for column in zip(*right_rows)]
    plain = _plain_product(left, right, result.value) if left.cols == right.rows else None
    if plain is None:  # −∞ or irrational entries: sympy's arithmetic (and its errors) decide
        value = left * right
        check_result("product", value, result)
    elif not plain:
        raise ValueError(f"product step for {result.name}: result does not match the formula")
    expansions = tuple(
        dot_expansion(entry_label(result.symbol, i, j), rows[i], columns[j])
        for i, j in cells_to_expand(result.value, expand)
    )
    return Step(
        text=text,
        formula=formula,
        shapes=Tex(f"{shape_text(left)} \\cdot {shape_text(right)} \\to ({left.rows} \\times {right.cols})"),
        expansions=expansions,
        result=result,
        checks=checks,
    )


def transpose_step(name: str, symbol: str, value: ImmutableMatrix, result: Quantity) -> Step:
    """Rows become columns: (Mᵀ)[i,j] = M[j,i]."""
    if value.T != result.value:
        raise ValueError(f"transpose step for {name}: result is not the transpose")
    return Step(
        text=Tex(f"Write each row of ${symbol}$ as a column."),
        formula=Tex(f"{symbol}^{{\\mathsf T}}[i,j] = {symbol}[j,i]"),
        shapes=Tex(f"{shape_text(value)} \\to {shape_text(value.T)}"),
        result=result,
    )


def determinant_step(symbol: str, value: ImmutableMatrix, result: Quantity, checks: tuple[Tex, ...] = ()) -> Step:
    """det of a 2×2 matrix: main diagonal product minus the other diagonal's product."""
    m = value
    det = m[0, 0] * m[1, 1] - m[0, 1] * m[1, 0]
    if det != result.value:
        raise ValueError(f"determinant step for {symbol}: result is not the determinant")
    return Step(
        text=Tex("Main diagonal product minus the other diagonal's product."),
        formula=Tex(f"\\det {symbol} = {symbol}[0,0]\\,{symbol}[1,1] - {symbol}[0,1]\\,{symbol}[1,0]"),
        expansions=(Expansion(Tex(f"\\det {symbol}"), (Term((m[0, 0], m[1, 1])), Term((m[0, 1], m[1, 0]), sign=-1)), det),),
        result=result,
        checks=checks,
    )


def sum_rows_step(text: Tex, m: ImmutableMatrix, symbol: str, result: Quantity) -> Step:
    """A bias's (or β's) gradient: the column sums of the upstream gradient."""
    value = ImmutableMatrix([[sum(m.col(j)) for j in range(m.cols)]])
    if value != result.value:
        raise ValueError(f"column sums for {result.name} do not match")
    return Step(text=text, formula=Tex(f"{result.symbol}[j] = \\sum_i {symbol}[i,j]"),
                shapes=Tex(f"{shape_text(m)} \\to {shape_text(value)}"),
                expansions=tuple(Expansion(entry_label(result.symbol, 0, j), tuple(Term((m[i, j],)) for i in range(m.rows)),
                                           value[0, j]) for j in range(m.cols)),
                result=result,
                checks=(Tex(f"\\textstyle\\sum_j {result.symbol}[j] = {number_tex(sum(value))} = \\text{{the sum of every entry of }} {symbol}."),
                        Tex(f"\\text{{Its shape }} {shape_text(value)} \\text{{ is the shape of the parameter.}}")))


def shape_check(gradient: ImmutableMatrix, symbol: str) -> Tex:
    """The check under a gradient: it has the shape of its parameter."""
    return Tex(f"\\text{{Its shape }} {shape_text(gradient)} \\text{{ is the shape of }} {symbol}\\text{{.}}")
