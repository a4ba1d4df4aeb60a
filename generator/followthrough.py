"""Follow-through for any problem type: how each answer is computed from earlier quantities, found from exact key values.

No problem type declares its data flow. For every answer quantity the marker tries a small catalogue of the
steps the generators share (products with either side transposed or one column taken, scaling, sums a·X + b·Y,
affine maps x·W + b, ReLU and its mask, softmax of rows and dividing by row sums, the causal mask, row means,
variances and standard deviations, LayerNorm, totals and column sums) over the quantities printed before it (givens, stated facts,
earlier answers). A recipe is kept only when it reproduces the generator's exact values on three reference
variants of the same problem spec with the same constants, so a coincidence of one draw is never a recipe.
A student's later blank then earns follow-through credit when the recipe, applied to the student's own earlier
values, gives what the student wrote.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction
from functools import cache
from itertools import product as pairs

from . import exactnum as xn
from .markkey import ProblemKey, Quantity, key_from_data
from .sheet import ProblemSpec, SheetSpec, build, key_data

REFERENCE_SEEDS = (101, 202, 303)
MAX_RECIPES = 12  # per answer: enough for the few honest alternatives (S from Q·Kᵀ or from Q and K)
SCALED_OPS = ("scale", "product", "hadamard", "total", "colsum")


@dataclass(frozen=True)
class Recipe:
    """How one answer is computed: an operation on named inputs (each as is, transposed, squared or one column)."""

    op: str
    inputs: tuple[str, ...]
    # per input: "" as is, "T" transposed, "sq" squared entrywise, "c<j>" column j, "cT<j>" column j as a row
    forms: tuple[str, ...]
    constants: tuple = ()  # (a,) for a scaled op, (a, b) for a·X + b·Y
    masked: bool = False  # the causal mask is applied to the result

    def describe(self) -> str:
        names = [n + {"": "", "T": "ᵀ", "sq": "²"}.get(f, f"[:,{f[2:]}]ᵀ" if f.startswith("cT") else f"[:,{f[1:]}]")
                 for n, f in zip(self.inputs, self.forms)]
        constants = ", ".join(str(c) if isinstance(c, Fraction) else xn.CTX.nstr(c, 8) for c in self.constants)
        return f"{self.op}({', '.join(names)}{'; ' + constants if constants else ''}){' masked' if self.masked else ''}"


def take(values: dict[str, xn.Matrix], name: str, form: str) -> xn.Matrix:
    """One input of a recipe in its form."""
    m = values[name]
    if form == "T":
        return xn.transpose(m)
    if form == "sq":
        return xn.hadamard(m, m)
    if form.startswith("cT"):
        return (tuple(row[int(form[2:])] for row in m),)
    if form.startswith("c"):
        j = int(form[1:])
        return tuple((row[j],) for row in m)
    return m


def core(recipe: Recipe, values: dict[str, xn.Matrix]) -> xn.Matrix:
    """The recipe's value before its constants and mask."""
    ins = [take(values, n, f) for n, f in zip(recipe.inputs, recipe.forms)]
    op = recipe.op
    if op == "scale":
        return ins[0]
    if op == "product":
        return xn.matmul(ins[0], ins[1])
    if op == "hadamard":
        return xn.hadamard(ins[0], ins[1])
    if op == "total":
        return xn.total(ins[0])
    if op == "colsum":
        return xn.column_sums(ins[0])
    if op == "relu":
        return xn.relu(ins[0])
    if op == "indicator":
        return xn.indicator(ins[0])
    if op == "softmax":
        return xn.softmax_rows(ins[0])
    if op == "softmax_columns":
        return xn.softmax_columns(ins[0])
    if op == "rownorm":
        return xn.normalize_rows(ins[0])
    if op == "shift":
        return xn.shift_by_row_max(ins[0])
    if op == "rowmean":
        return xn.row_means(ins[0])
    if op == "rowvar":
        return xn.row_variances(ins[0])
    if op == "rowstd":
        return xn.row_deviations(ins[0])
    if op == "affine":  # x·W plus a row (a bias) or a whole matrix (a residual), or both
        value = xn.matmul(ins[0], ins[1])
        for extra in ins[2:]:
            value = xn.combine(Fraction(1), value, Fraction(1),
                               xn.broadcast_row(extra, len(value)) if len(extra) == 1 < len(value) else extra)
        return value
    if op == "standardize":
        return xn.standardize(ins[0], ins[1], ins[2])
    if op == "layernorm":
        x = ins[0]
        mus, sigmas = (ins[1], ins[2]) if len(ins) == 5 else (xn.row_means(x), xn.row_deviations(x))
        gamma, beta = ins[-2], ins[-1]
        normal = xn.standardize(x, mus, sigmas)
        return xn.combine(Fraction(1), xn.hadamard(normal, xn.broadcast_row(gamma, len(x))),
                          Fraction(1), xn.broadcast_row(beta, len(x)))
    if op == "combine":
        return ins[0]  # combined in apply: a·X + b·Y
    raise ValueError(f"unknown recipe operation {op!r}")


def apply(recipe: Recipe, values: dict[str, xn.Matrix]) -> xn.Matrix:
    """The recipe's value from these inputs (the key's, or a student's own)."""
    if recipe.op == "combine":
        x, y = (take(values, n, f) for n, f in zip(recipe.inputs, recipe.forms))
        value = xn.combine(recipe.constants[0], x, recipe.constants[1], y)
    else:
        value = core(recipe, values)
        if recipe.constants and not _is_one(recipe.constants[0]):
            value = xn.scale(recipe.constants[0], value)
    return xn.causal_mask(value) if recipe.masked else value


def _is_one(c) -> bool:
    return isinstance(c, Fraction) and c == 1


def matches(target: xn.Matrix, value: xn.Matrix) -> bool:
    """Entry by entry the same number (exact for fractions, 30 digits otherwise)."""
    return xn.shape(target) == xn.shape(value) and all(
        xn.same(a, b) for a, b in zip(xn.entries(value), xn.entries(target)))


# ----- discovery ----------------------------------------------------------------------------------------------


@cache
def recipes_for(spec_key: tuple) -> dict[str, tuple[Recipe, ...]]:
    """Every answer's recipes for one problem spec (type, options, given parts), from the reference variants."""
    type_name, options, given_parts = spec_key
    samples = []
    for seed in REFERENCE_SEEDS:
        spec = SheetSpec(title="marking", seed=seed, calculator="basic",
                         problems=(ProblemSpec(type_name, dict(options), tuple(given_parts)),))
        samples.append(key_from_data(key_data(build(spec))).problems[0])
    return discover(samples)


def discover(samples: list[ProblemKey]) -> dict[str, tuple[Recipe, ...]]:
    """Recipes that hold on every sample (the same problem spec drawn with different numbers)."""
    first = samples[0]
    values = [{q.name: q.values for q in s.quantities.values()} for s in samples]
    names = [name for name in first.quantities if all(name in v for v in values)]
    # A number that is the same in every sample is a constant of the spec (d_k, η): it folds into a recipe's constants.
    varying = {n for n in names if xn.shape(values[0][n]) != (1, 1) or any(not matches(v[n], values[0][n]) for v in values)}
    found: dict[str, tuple[Recipe, ...]] = {}
    for name in names:
        quantity = first.quantities[name]
        if quantity.source != "answer" or name not in varying:
            continue
        pool = [first.quantities[n] for n in names
                if first.quantities[n].order < quantity.order and first.quantities[n].values and n in varying
                and not _is_index_fact(first.quantities[n])]
        candidates: list[Recipe] = []
        for recipe in _candidates(quantity, pool, values[0]):
            fitted = _fit(recipe, name, values)
            if fitted is not None and fitted not in candidates:
                candidates.append(fitted)
                if len(candidates) >= MAX_RECIPES:
                    break
        if candidates:
            found[name] = tuple(candidates)
    return found


def _is_index_fact(quantity: Quantity) -> bool:
    """Token ids and target positions: stated as numbers, but they pick rows; no step multiplies by them."""
    return quantity.source == "fact" and any(word in quantity.name for word in ("token", "target", "index", "ids"))


def valid_recipes(problem: ProblemKey) -> dict[str, tuple[Recipe, ...]]:
    """The spec's recipes that also hold on this variant's own key values."""
    values = {name: q.values for name, q in problem.quantities.items()}
    result = {}
    for name, recipes in recipes_for(problem.spec_key).items():
        if name not in values:
            continue
        kept = tuple(r for r in recipes if all(n in values for n in r.inputs) and _holds(r, values, name))
        if kept:
            result[name] = kept
    return result


def _holds(recipe: Recipe, values: dict[str, xn.Matrix], name: str) -> bool:
    try:
        return matches(values[name], apply(recipe, values))
    except (xn.Undefined, IndexError, ValueError, ZeroDivisionError):
        return False


def _masked_like(target: xn.Matrix) -> bool:
    """The target carries a causal mask: −∞ exactly above the diagonal."""
    rows, cols = xn.shape(target)
    return rows > 1 and rows == cols and all(xn.is_neg_inf(target[i][j]) == (j > i) for i in range(rows) for j in range(cols))


def _forms(quantity: Quantity) -> list[str]:
    rows, cols = xn.shape(quantity.values)
    forms = ["", "T"] if (rows, cols) != (1, 1) else [""]
    if quantity.source == "answer" and 2 <= cols <= 4 and rows > 1:
        forms += [f"c{j}" for j in range(cols)] + [f"cT{j}" for j in range(cols)]  # one head's column of Q, K or V
    return forms


def _shape(quantity: Quantity, form: str) -> tuple[int, int]:
    rows, cols = xn.shape(quantity.values)
    if form.startswith("cT"):
        return (1, rows)
    return (cols, rows) if form == "T" else (rows, 1) if form.startswith("c") else (rows, cols)


def _candidates(target: Quantity, pool: list[Quantity], values: dict[str, xn.Matrix]):
    """Every recipe whose shapes fit the target, simplest first; constants are fitted afterwards.

    Recipes with a row added (affine maps, LayerNorm's β) are proposed only when the first sample's values
    leave exactly a row of the pool over: a pool of forty quantities would otherwise give thousands."""
    shape = xn.shape(target.values)
    goal = values[target.name]
    masked = _masked_like(target.values)
    rows, cols = shape
    finite = [q for q in pool if not any(xn.is_neg_inf(x) for x in xn.entries(q.values))]
    for q in finite:
        for form in ("", "T"):
            if _shape(q, form) == shape and (form == "" or shape != (1, 1)):
                yield Recipe("scale", (q.name,), (form,), masked=masked)
    for q in pool:
        if xn.shape(q.values) == shape:
            for op in ("relu", "indicator", "softmax", "rownorm", "shift"):
                yield Recipe(op, (q.name,), ("",), masked=masked and op != "softmax")
    for q in finite:
        q_rows, q_cols = xn.shape(q.values)
        if q_rows == rows and cols == 1 and q_cols > 1:
            for op in ("rowmean", "rowvar", "rowstd"):
                yield Recipe(op, (q.name,), ("",))
        if shape == (1, 1) and q_rows * q_cols > 1:
            yield Recipe("total", (q.name,), ("",))
        if rows == 1 and q_cols == cols and q_rows > 1:
            yield Recipe("colsum", (q.name,), ("",))
    products = []
    for (a, fa), (b, fb) in pairs([(q, f) for q in finite for f in _forms(q)], repeat=2):
        sa, sb = _shape(a, fa), _shape(b, fb)
        # A 1×1 factor is a scaling (found as such), and a 1×1 outer product is just a product of numbers.
        if sa[1] == sb[0] and (sa[0], sb[1]) == shape and (1, 1) not in (sa, sb) and (sa[1] > 1 or shape != (1, 1)):
            products.append(((a.name, b.name), (fa, fb)))
            yield Recipe("product", (a.name, b.name), (fa, fb), masked=masked)
    same = [q for q in finite if xn.shape(q.values) == shape]
    for a, b in pairs(same, repeat=2):
        if a.order <= b.order:
            yield Recipe("hadamard", (a.name, b.name), ("", ""), masked=masked)
    for a, b in pairs(same, repeat=2):
        if a.name != b.name:
            yield Recipe("combine", (a.name, b.name), ("", ""))
            yield Recipe("combine", (a.name, b.name), ("", "sq"))
    if masked or any(xn.is_neg_inf(x) for x in xn.entries(goal)):
        return
    rows_1xd = [q for q in finite if xn.shape(q.values) == (1, cols)]
    sources = {q.name: q.source for q in pool}
    answers_same = [q for q in same if q.source == "answer"]
    for names, forms in products:
        # x·W + b from givens alone needs no follow-through: only a residual the student computed is looked for.
        from_answers = any(sources[n] == "answer" for n in names)
        if not from_answers and not answers_same:
            continue
        try:
            left = xn.matmul(take(values, names[0], forms[0]), take(values, names[1], forms[1]))
        except xn.Undefined:
            continue
        for extra in _leftovers(goal, left, rows_1xd if from_answers else [], same if from_answers else answers_same,
                                values):
            yield Recipe("affine", names + extra, forms + ("",) * len(extra))
    columns = [q for q in finite if xn.shape(q.values) == (rows, 1) and q.source == "answer"]
    for x in same:
        stats = [(m.name, s.name) for m, s in pairs(columns, repeat=2) if m.name != s.name] + [None]
        for pair in stats:
            try:
                if pair is None:
                    normal = xn.standardize(values[x.name], xn.row_means(values[x.name]), xn.row_deviations(values[x.name]))
                else:
                    normal = xn.standardize(values[x.name], values[pair[0]], values[pair[1]])
                    yield Recipe("standardize", (x.name,) + pair, ("", "", ""))
            except xn.Undefined:
                continue
            for g in rows_1xd:
                scaled = xn.hadamard(normal, xn.broadcast_row(values[g.name], rows))
                for (b,) in _leftovers(goal, scaled, rows_1xd, [], values):
                    if b != g.name:
                        inputs = (x.name,) + (pair or ()) + (g.name, b)
                        yield Recipe("layernorm", inputs, ("",) * len(inputs))


def _leftovers(goal: xn.Matrix, part: xn.Matrix, rows_1xd: list[Quantity], same: list[Quantity], values) -> list[tuple]:
    """What of the pool makes up goal − part (on the first sample): a row b, a whole matrix Z, or Z and b."""
    try:
        rest = xn.combine(Fraction(1), goal, Fraction(-1), part)
    except xn.Undefined:
        return []
    found = [(b,) for b in _equal_rows(rest, rows_1xd, values)]
    first_column = [row[0] for row in rest]
    for z in same:
        # Cheap test on the first column before the whole matrix: most pairs fail here.
        column = [xn.add(r, xn.mul(Fraction(-1), zr[0])) for r, zr in zip(first_column, values[z.name])
                  if not (xn.is_neg_inf(r) or xn.is_neg_inf(zr[0]))]
        if len(column) < len(first_column) or any(not xn.same(c, column[0]) for c in column):
            continue
        try:
            after = xn.combine(Fraction(1), rest, Fraction(-1), values[z.name])
        except xn.Undefined:
            continue
        if all(xn.is_zero(x) for x in xn.entries(after)):
            found.append((z.name,))
        elif len(after) > 1:
            found += [(z.name, b) for b in _equal_rows(after, rows_1xd, values)]
    return found


def _equal_rows(rest: xn.Matrix, rows_1xd: list[Quantity], values) -> list[str]:
    """The pool's rows b with rest = b in every row."""
    if any(not matches((row,), (rest[0],)) for row in rest):
        return []
    return [q.name for q in rows_1xd if matches(values[q.name], (rest[0],))]


def _fit(recipe: Recipe, name: str, samples: list[dict[str, xn.Matrix]]) -> Recipe | None:
    """The recipe with its constants, when it reproduces the target on every sample; else None."""
    try:
        if recipe.op == "combine":
            constants = _solve_combination(recipe, name, samples)
            if constants is None:
                return None
            fitted = replace(recipe, constants=constants)
        elif recipe.op in SCALED_OPS:
            ratios = []
            for values in samples:
                value, target = core(recipe, values), values[name]
                if recipe.masked:
                    value, target = _unmasked_part(value), _unmasked_part(target)
                c = xn.ratio(target, value)
                if c is None:
                    return None
                ratios.append(c)
            if any(not xn.same(c, ratios[0]) for c in ratios):
                return None
            if any(f.startswith("c") for f in recipe.forms) and ratios[0] != 1:
                return None  # one head's column scaled by a fitted constant: a coincidence, not a step
            fitted = replace(recipe, constants=(_snap(ratios[0]),))
        else:
            fitted = recipe
        if all(matches(values[name], apply(fitted, values)) for values in samples):
            return fitted
    except (xn.Undefined, IndexError, ZeroDivisionError):
        return None
    return None


def _unmasked_part(m: xn.Matrix) -> xn.Matrix:
    """The entries on and below the diagonal, as one row (what a causal mask keeps)."""
    return (tuple(x for i, row in enumerate(m) for j, x in enumerate(row) if j <= i),)


def _solve_combination(recipe: Recipe, name: str, samples) -> tuple | None:
    """(a, b) with target = a·X + b·Y on every entry of every sample (both non-zero), from two independent entries."""
    rows = []
    for values in samples:
        x, y = (take(values, n, f) for n, f in zip(recipe.inputs, recipe.forms))
        rows += list(zip(xn.entries(x), xn.entries(y), xn.entries(values[name])))
    if any(xn.is_neg_inf(v) for row in rows for v in row):
        return None
    for i, (x1, y1, r1) in enumerate(rows):
        for x2, y2, r2 in rows[i + 1:]:
            det = xn.add(xn.mul(x1, y2), xn.mul(Fraction(-1), xn.mul(x2, y1)))
            if not xn.is_zero(det):
                a = xn.div(xn.add(xn.mul(r1, y2), xn.mul(Fraction(-1), xn.mul(r2, y1))), det)
                b = xn.div(xn.add(xn.mul(x1, r2), xn.mul(Fraction(-1), xn.mul(x2, r1))), det)
                if xn.is_zero(a) or xn.is_zero(b):
                    return None
                return _snap(a), _snap(b)
    return None


def _snap(c: xn.Num) -> Fraction:
    """A recipe's constant as a fraction (η, β, 1/√d_k, 1/n are); an irrational one is a coincidence: Undefined."""
    if isinstance(c, Fraction):
        return c
    guess = Fraction(str(xn.CTX.nstr(c, 35))).limit_denominator(10000)
    if not xn.same(c, guess):
        raise xn.Undefined("not a simple constant")
    return guess
