"""Named mistakes: a wrong answer recomputed with one classic slip (from the key's or the student's own inputs)."""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Callable, Iterator
from dataclasses import replace
from fractions import Fraction

from generator.marking import exactnum as xn
from generator.marking.followthrough import Recipe, apply, matches
from generator.marking.markkey import ProblemKey

MISSING_SCALE = "missing 1/√d_k scale"
TRANSPOSED_WEIGHT = "transposed weight matrix ({name}ᵀ used instead of {name})"
SOFTMAX_COLUMNS = "softmax over columns instead of rows"
MISSING_MASK = "missing causal mask"
WRONG_SIGN = "wrong gradient sign (the update was added instead of subtracted)"
WRONG_RULE_SIGN = "wrong sign in the perceptron rule (η(y − ŷ) was subtracted instead of added)"
SUM_NOT_MEAN = "sum instead of mean (the sheet asks for the mean)"
MEAN_NOT_SUM = "mean instead of sum (the sheet asks for the sum)"
MISSING_BIAS_CORRECTION = "missing Adam bias correction (divide by 1 − βᵗ)"
TRANSPOSED_RESULT = "the result is transposed"
UNREDUCED = "right value, but not in lowest terms"
ROUNDED = "rounded, but this part asks for an exact value"

Values = dict[str, xn.Matrix]
# A slip applied to inputs: (values, number module: exactnum, or an intervalnum.Intervals) → the slipped value.
Slip = Callable[[Values, object], xn.Matrix]


def slips(recipe: Recipe, problem: ProblemKey, name: str,
          recipes: dict[str, tuple[Recipe, ...]]) -> Iterator[tuple[str, Slip]]:
    """The recipe with one named slip each: the classic ways to get this step wrong."""
    for mistake, slipped in _slipped_recipes(recipe, problem, name):
        yield mistake, lambda values, B, r=slipped: apply(r, values, B)
    if recipe.op == "softmax" and recipe.forms[0] == "rl":
        # The last token's weights (a = softmax(S[-1,:])) normalised down the columns: the last row of the column
        # softmax of the whole matrix, or the softmax of the last column.
        scores = recipe.inputs[0]
        yield SOFTMAX_COLUMNS, lambda values, B: B.softmax_columns(values[scores])[-1:]
        yield SOFTMAX_COLUMNS, lambda values, B: B.softmax_rows(B.transpose(B.columns(values[scores], -1, None)))
    if recipe.op == "softmax":
        # Weights from scores that should have been masked: the scores' own recipe without its mask.
        for source in recipes.get(recipe.inputs[0], ()):
            if source.masked:
                unmasked = replace(source, masked=False)
                yield MISSING_MASK, lambda values, B, u=unmasked: apply(
                    recipe, ChainMap({recipe.inputs[0]: apply(u, values, B)}, values), B)


def _slipped_recipes(recipe: Recipe, problem: ProblemKey, name: str) -> Iterator[tuple[str, Recipe]]:
    """The slips that are the recipe with one constant, form, operation or mask changed."""
    a = recipe.constants[0] if recipe.constants else None
    if recipe.op in ("scale", "product", "hadamard") and a is not None and a != 1:
        d_k = _fact(problem, "d_k")
        if d_k is not None and a * a * d_k == 1:
            yield MISSING_SCALE, replace(recipe, constants=(Fraction(1),))
        if "hat" in name:
            yield MISSING_BIAS_CORRECTION, replace(recipe, constants=(Fraction(1),))
    if recipe.op in ("product", "affine"):
        for i in (0, 1):
            quantity = problem.quantities[recipe.inputs[i]]
            rows, cols = xn.shape(quantity.values)
            if quantity.source == "given" and quantity.name.upper().startswith("W") and rows == cols > 1 \
                    and recipe.forms[i] in ("", "T"):
                forms = list(recipe.forms)
                forms[i] = "T" if forms[i] == "" else ""
                yield TRANSPOSED_WEIGHT.format(name=quantity.name), replace(recipe, forms=tuple(forms))
    if recipe.op == "softmax" and recipe.forms[0] == "":
        yield SOFTMAX_COLUMNS, replace(recipe, op="softmax_columns")
    if recipe.masked:
        yield MISSING_MASK, replace(recipe, masked=False)
    if recipe.op == "combine":
        a, b = recipe.constants
        if a == 1 and b < 0:
            yield WRONG_SIGN, replace(recipe, constants=(a, -b))
        if b == 1 and a < 0:
            yield WRONG_SIGN, replace(recipe, constants=(-a, b))
    if recipe.op == "delta" and recipe.constants[1] > 0:  # w − η(y − ŷ)x: the perceptron's step taken backwards
        yield WRONG_RULE_SIGN, replace(recipe, constants=(recipe.constants[0], -recipe.constants[1]))
    if recipe.op == "adam" and recipe.constants[1] < 0:  # θ(1 − ηλ) + η·m̂/√v̂: the step taken uphill
        yield WRONG_SIGN, replace(recipe, constants=(recipe.constants[0], -recipe.constants[1]))
    if recipe.op in ("total", "colsum", "sqerr") and a is not None:
        reduction = problem.options.get("reduction")
        n = len(list(xn.entries(problem.quantities[recipe.inputs[0]].values)))
        if reduction == "mean" and a * n == 1:
            yield SUM_NOT_MEAN, replace(recipe, constants=(Fraction(1),))
        if reduction == "sum" and a == 1:
            yield MEAN_NOT_SUM, replace(recipe, constants=(Fraction(1, n),))


def _fact(problem: ProblemKey, name: str) -> Fraction | None:
    quantity = problem.quantities.get(name)
    if quantity is None or xn.shape(quantity.values) != (1, 1):
        return None
    value = quantity.values[0][0]
    return value if isinstance(value, Fraction) else None


_FAILS = (xn.Undefined, KeyError, IndexError, ValueError, ZeroDivisionError)
# What a reproduces check is given: the slipped value (exact), the slip (None for one seen from the key's value
# alone) and the source's second form (opaque here: the marker's intervals over the student's rounding, or None).
Reproduces = Callable[[xn.Matrix, "Slip | None", object], bool]


def name_mistake(problem: ProblemKey, name: str, recipes: dict[str, tuple[Recipe, ...]], written: xn.Matrix,
                 sources: list[tuple[Values, object]], reproduces: Reproduces) -> str | None:
    """The named slip that changes what these inputs (the key's, then the student's own) give into what was written."""
    key = problem.quantities[name].values
    for values, extra in sources:
        for recipe in recipes.get(name, ()):
            for mistake, slip in slips(recipe, problem, name, recipes):
                try:
                    slipped = slip(values, xn)
                    if xn.shape(slipped) != xn.shape(key) or matches(key, slipped) \
                            or not reproduces(slipped, slip, extra):
                        continue
                    # A slip that changes nothing on these inputs (zeros unscaled are zeros) explains nothing.
                    if matches(apply(recipe, values), slipped):
                        continue
                except _FAILS:
                    continue
                return mistake
    return _by_value(problem, key, written, lambda value: not matches(key, value) and reproduces(value, None, None))


def _by_value(problem: ProblemKey, key: xn.Matrix, written: xn.Matrix, fits) -> str | None:
    """Slips seen from the key's value alone: a sum for a mean, a transposed result. (A mask left out is named only by
    the recipe's own slip, which checks the unmasked values: any number above the diagonal is not that slip.)"""
    rows, cols = xn.shape(key)
    reduction = problem.options.get("reduction")
    if reduction in ("mean", "sum"):
        for option in ("positions", "tokens", "batch"):
            n = problem.options.get(option)
            if n and n.isdigit() and int(n) > 1:
                try:
                    if reduction == "mean" and fits(xn.scale(Fraction(int(n)), key)):
                        return SUM_NOT_MEAN
                    if reduction == "sum" and fits(xn.scale(Fraction(1, int(n)), key)):
                        return MEAN_NOT_SUM
                except _FAILS:
                    pass
    if rows == cols > 1 and fits(xn.transpose(key)):
        return TRANSPOSED_RESULT
    return None
