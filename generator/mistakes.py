"""Named mistakes: a wrong answer recomputed with one classic slip (from the key's or the student's own inputs)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from fractions import Fraction

from . import exactnum as xn
from .followthrough import Recipe, apply, matches
from .markkey import ProblemKey

MISSING_SCALE = "missing 1/√d_k scale"
TRANSPOSED_WEIGHT = "transposed weight matrix ({name}ᵀ used instead of {name})"
SOFTMAX_COLUMNS = "softmax over columns instead of rows"
MISSING_MASK = "missing causal mask"
WRONG_SIGN = "wrong gradient sign (the update was added instead of subtracted)"
SUM_NOT_MEAN = "sum instead of mean (the sheet asks for the mean over positions)"
MEAN_NOT_SUM = "mean instead of sum (the sheet asks for the sum over positions)"
MISSING_BIAS_CORRECTION = "missing Adam bias correction (divide by 1 − βᵗ)"
TRANSPOSED_RESULT = "the result is transposed"
UNREDUCED = "right value, but not in lowest terms"
ROUNDED = "rounded, but this part asks for an exact value"

Values = dict[str, xn.Matrix]


def slips(recipe: Recipe, problem: ProblemKey, name: str) -> Iterator[tuple[str, Recipe]]:
    """The recipe with one named slip each: the classic ways to get this step wrong."""
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
    if recipe.op == "softmax":
        yield SOFTMAX_COLUMNS, replace(recipe, op="softmax_columns")
    if recipe.masked:
        yield MISSING_MASK, replace(recipe, masked=False)
    if recipe.op == "combine":
        a, b = recipe.constants
        if a == 1 and b < 0:
            yield WRONG_SIGN, replace(recipe, constants=(a, -b))
        if b == 1 and a < 0:
            yield WRONG_SIGN, replace(recipe, constants=(-a, b))
    if recipe.op == "adam" and recipe.constants[1] < 0:  # θ(1 − ηλ) + η·m̂/√v̂: the step taken uphill
        yield WRONG_SIGN, replace(recipe, constants=(recipe.constants[0], -recipe.constants[1]))
    if recipe.op in ("total", "colsum") and a is not None:
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


def name_mistake(problem: ProblemKey, name: str, recipes: dict[str, tuple[Recipe, ...]], written: xn.Matrix,
                 sources: list[Values], same: Callable[[xn.Num, xn.Num], bool]) -> str | None:
    """The named slip that turns these inputs (the key's, then the student's own) into what the student wrote."""
    key = problem.quantities[name].values

    def fits(value: xn.Matrix) -> bool:
        return xn.shape(value) == xn.shape(written) and not matches(key, value) and all(
            same(w, v) for w, v in zip(xn.entries(written), xn.entries(value)))

    for values in sources:
        for recipe in recipes.get(name, ()):
            for mistake, slipped in slips(recipe, problem, name):
                if _fits_safely(fits, slipped, values):
                    return mistake
            if recipe.op == "softmax":
                # Weights from scores that should have been masked: undo the mask of the scores' own recipe.
                for source in recipes.get(recipe.inputs[0], ()):
                    if source.masked:
                        try:
                            scores = apply(replace(source, masked=False), values)
                            if fits(xn.softmax_rows(scores)):
                                return MISSING_MASK
                        except (xn.Undefined, KeyError, IndexError, ValueError, ZeroDivisionError):
                            pass
    return _by_value(problem, key, written, fits)


def _fits_safely(fits, recipe: Recipe, values: Values) -> bool:
    try:
        return fits(apply(recipe, values))
    except (xn.Undefined, KeyError, IndexError, ValueError, ZeroDivisionError):
        return False


def _by_value(problem: ProblemKey, key: xn.Matrix, written: xn.Matrix, fits) -> str | None:
    """Slips seen from the key's value alone: a mask left out, a sum for a mean, a transposed result."""
    rows, cols = xn.shape(key)
    if rows == cols > 1 and all(xn.is_neg_inf(key[i][j]) for i in range(rows) for j in range(cols) if j > i) \
            and any(not xn.is_neg_inf(written[i][j]) for i in range(rows) for j in range(cols) if j > i):
        return MISSING_MASK
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
                except xn.Undefined:
                    pass
    if rows == cols > 1 and fits(xn.transpose(key)):
        return TRANSPOSED_RESULT
    return None
