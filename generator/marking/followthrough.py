"""Follow-through for any problem type: how each answer is computed from earlier quantities, found from exact key values.

No problem type declares its data flow. For every answer quantity the marker tries a small catalogue of the
steps the generators share (products with either side transposed, one column, the last row or one head's block
taken, scaling, sums a·X + b·Y, affine maps x·W + b, a gradient summed over several paths, ReLU, its mask and its
backward, |x|, GELU and its slope, σ's slope σ(1 − σ) and tanh's 1 − tanh² from their values, e^x and ln x,
softmax of rows, its backward and its Jacobian, dividing by row sums, the causal mask, row means, variances and
standard deviations, LayerNorm, totals and column sums, squared errors, steps with token ids and targets (embedding
rows, one-hot rows, a target's probability and loss, ∂E), a 2×2 determinant and inverse, and composites: the Adam
update, LayerNorm's backward pieces, per-head columns, clipping, the perceptron rule θ + η(y − ŷ)x, once or over a
pass through a data set) over the quantities printed before it (givens, stated facts, parts printed with their values, earlier answers). A
recipe is kept only when it reproduces the generator's exact values on at least seven draws of the same problem spec (three
reference variants and four or more further draws) with the same constants, so a coincidence of the draws is never
a recipe: a relation that holds only while two losses are equal or a product happens to be 0 fails on a draw where
they are not. It also needs evidence that each part of it does work (_inert), more equations than fitted constants,
and no other recipe of the answer may do with fewer of its inputs. An answer counts as drawn when it changes in any
draw (a loss that is ln 6 in the three references still gets its recipe). Candidates are screened in floats first
(floatnum) and only survivors are checked exactly. A student's later blank then earns follow-through credit when
the recipe, applied to the student's own earlier values, gives what the student wrote. A choice follows the same
way from a number printed before it (the argmax of a row, the sign of a value, the entry a ReLU cuts).
"""
from __future__ import annotations

import weakref
from collections.abc import Mapping
from types import MappingProxyType

from dataclasses import dataclass, replace
from fractions import Fraction
from functools import cache
from itertools import chain, combinations, product as pairs

import numpy as np

from generator.marking import exactnum as xn
from generator.marking import floatnum as fl
from generator.marking.markkey import ProblemKey, Quantity, key_from_data
from generator.documents.sheet import ProblemSpec, SheetSpec, build, key_data

REFERENCE_SEEDS = (101, 202, 303)
# Further draws every recipe must hold on too. Degenerate draws are common (both targets at 1/6, so ℓ₀ = ℓ₁; a
# product of printed values that is 0): three draws can share one, and a relation that holds only there (L = −½·Qᵀ·ℓ,
# m̂ = db₁ + ℓᵀ·drᵀ) would credit a student's wrong value worked from their own ℓ or dr. A relation that is no step
# fails on some draw: every recipe of every type and option set holds on fresh draws (tests/test_marking.py).
EXTRA_SEEDS = (404, 505, 606, 707)
# A spec with few answer entries per draw (a determinant, a limit, three probabilities) draws from small sets, so a
# coincidence can last through seven draws (det < 0 in all seven: |det| = −det); its draws take a millisecond. Such a
# spec draws more of these until its draws hold EVIDENCE_ENTRIES answer entries; a chain's seven hold hundreds.
MORE_SEEDS = (808, 909, 1010, 1111, 1212, 1313, 1414, 1515)
EVIDENCE_ENTRIES = 120
MAX_RECIPES = 12  # per answer: enough for the few honest alternatives (S from Q·Kᵀ or from Q and K)
MAX_HEADS = 3  # separate per-head weight matrices tried in every order: 3 heads from 6 answers is already 120
SCALED_OPS = ("scale", "product", "hadamard", "hadamard_row", "colsum_hadamard", "total", "colsum", "reciprocal",
              "smul", "softmax_back", "minus_onehot", "log", "logpick", "nll", "sqerr")
MAX_PATHS = 4  # a gradient summed over this many paths at most (Y feeds Q, K, V and the residual)


@dataclass(frozen=True)
class Recipe:
    """How one answer is computed: an operation on named inputs (each as is, transposed, squared or one column)."""

    op: str
    inputs: tuple[str, ...]
    # per input: "" as is, "T" transposed, "sq" squared entrywise, "rt" its entrywise root, "std" each row
    # standardized ((x − μ)/σ, LayerNorm's x̂), "c<j>" column j, "cT<j>" column j as a row, "rl" the last row
    # (the last token's query), "rlT" the last row as a column, "b<h>" head h's square block of weights stacked
    # one head under the other, "row<i>" row i (a choice's row)
    forms: tuple[str, ...]
    constants: tuple = ()  # (a,) for a scaled op, (a, b) for a·X + b·Y and the Adam update
    masked: bool = False  # the causal mask is applied to the result
    zeroed: bool = False  # 0 above the diagonal (a gradient through masked weights)
    groups: tuple[int, ...] = ()  # paths: how many inputs each summed term takes (2: d·Wᵀ, 1: a residual)

    def describe(self) -> str:
        names = [n + _FORM_MARKS.get(f, f"[{f[3:]},:]" if f.startswith("row") else
                                     f"[:,{f[2:]}]ᵀ" if f.startswith("cT") else f"[:,{f[1:]}]")
                 for n, f in zip(self.inputs, self.forms)]
        constants = ", ".join(str(c) if isinstance(c, Fraction) else xn.CTX.nstr(c, 8) for c in self.constants)
        return (f"{self.op}({', '.join(names)}{'; ' + constants if constants else ''})"
                f"{' masked' if self.masked else ''}{' zeroed above the diagonal' if self.zeroed else ''}")


_FORM_MARKS = {"": "", "T": "ᵀ", "sq": "²", "rt": "^½", "std": "̂", "rl": "[-1,:]", "rlT": "[-1,:]ᵀ",
               **{f"b{h}": f" (head {h + 1}'s block)" for h in range(MAX_HEADS)}}
UNARY = {"relu": "relu", "indicator": "indicator", "softmax": "softmax_rows", "softmax_columns": "softmax_columns",
         "rownorm": "normalize_rows", "shift": "shift_by_row_max", "rowmean": "row_means", "rowvar": "row_variances",
         "rowstd": "row_deviations", "total": "total", "colsum": "column_sums", "abs": "absolute", "gelu": "gelu",
         "reciprocal": "reciprocal", "cap": "cap", "exp": "exp_entries", "log": "log_entries", "det": "det",
         "jacobian": "softmax_jacobian", "gelu_slope": "gelu_slope"}
# Steps that take token ids or targets: the index picks rows or entries, it is never multiplied.
INDEXED = {"onehot": "one_hot", "pick": "pick", "gather": "gather_rows"}
# a·X + b·Y, with Y an input (combine), m̂ ⊘ √v̂ (adam), 1 (recurrence) or (y − ŷ)·x (delta: the perceptron rule)
PAIRED = ("combine", "adam", "recurrence", "delta")
# Recipes that take the answer itself: each entry is worked from the student's own entries before it (a row of
# iterates, a table of perceptron steps), so a slip is carried along the row or down the table.
SELF = ("recurrence", "pass")
# A row of iterates xₜ = α·xₜ₋₁ + β (descent on a parabola): α and β belong to the variant (they hang on its givens),
# so they are solved from each variant's own key, and the row must have more entries than unknowns to be one.
MIN_ITERATES = 3


def take(values: dict, name: str, form: str, B=xn):
    """One input of a recipe in its form (B: exactnum for verdicts, floatnum for the screen)."""
    m = values[name]
    if form == "T":
        return B.transpose(m)
    if form == "sq":
        return B.hadamard(m, m)
    if form == "rt":
        return B.sqrt_entries(m)
    if form == "std":
        return B.standardize(m, B.row_means(m), B.row_deviations(m))
    if form == "rl":
        return m[-1:]
    if form == "rlT":
        return B.transpose(m[-1:])
    if form.startswith("row"):
        return m[int(form[3:]):int(form[3:]) + 1]
    if form.startswith("b"):
        size = len(m[0])
        return m[int(form[1:]) * size:(int(form[1:]) + 1) * size]
    if form.startswith("cT"):
        return B.transpose(B.columns(m, int(form[2:]), int(form[2:]) + 1))
    if form.startswith("c"):
        return B.columns(m, int(form[1:]), int(form[1:]) + 1)
    return m


def core(recipe: Recipe, values: dict, B=xn):
    """The recipe's value before its constants and mask."""
    ins = [take(values, n, f, B) for n, f in zip(recipe.inputs, recipe.forms)]
    op = recipe.op
    if op in UNARY:
        return getattr(B, UNARY[op])(ins[0])
    if op in INDEXED:
        return getattr(B, INDEXED[op])(ins[0], ins[1])
    if op == "minus_onehot":  # ∂z = p − y, y one-hot at the targets (scaled by 1/n for a mean)
        return B.combine(Fraction(1), ins[0], Fraction(-1), B.one_hot(ins[0], ins[1]))
    if op == "logpick":  # ln p at each row's target (scaled by −1: the per-position loss)
        return B.log_entries(B.pick(ins[0], ins[1]))
    if op == "nll":  # Σ ln p at the targets (scaled by −1 or −1/n: the loss)
        return B.total(B.log_entries(B.pick(ins[0], ins[1])))
    if op == "softmax_pick":  # the target's probability straight from the logits
        return B.pick(B.softmax_rows(ins[0]), ins[1])
    if op == "embed":  # X = E[ids] + P
        return B.combine(Fraction(1), B.gather_rows(ins[0], ins[1]), Fraction(1), ins[2])
    if op == "scatter":  # ∂E: each position's row added to its token's row
        return B.scatter_rows(ins[0], ins[1], ins[2])
    if op == "logistic_slope":  # σ′ = σ ⊙ (1 − σ), from the σ the student wrote
        return B.hadamard(ins[0], B.combine(Fraction(1), B.ones_like(ins[0]), Fraction(-1), ins[0]))
    if op == "tanh_slope":  # tanh′ = 1 − tanh², from the tanh the student wrote
        return B.combine(Fraction(1), B.ones_like(ins[0]), Fraction(-1), B.hadamard(ins[0], ins[0]))
    if op == "relu_back":  # ∂u = ∂r ⊙ 1[u > 0]
        return B.hadamard(ins[0], B.indicator(ins[1]))
    if op == "softmax_back":  # ∂s = a ⊙ (∂a − Σ ∂a ⊙ a), row by row
        return B.softmax_backward(ins[0], ins[1])
    if op == "inverse_by":  # adj(A)/det with the student's own det
        return B.inverse_by(ins[0], ins[1])
    if op == "hstack":
        return B.hstack(ins)
    if op == "paths":  # a gradient summed over the paths it flows back from: Σ ∂out·Wᵀ (+ a residual)
        return _paths(recipe.groups, ins, B)
    if op == "scale":
        return ins[0]
    if op == "product":
        return B.matmul(ins[0], ins[1])
    if op == "hadamard":
        return B.hadamard(ins[0], ins[1])
    if op == "hadamard_row":  # each row times one row (∂x̂ = ∂y ⊙ γ)
        return B.hadamard(ins[0], B.broadcast_row(ins[1], len(ins[0])))
    if op == "colsum_hadamard":  # ∂γ = Σ_i ∂y ⊙ x̂
        return B.column_sums(B.hadamard(ins[0], ins[1]))
    if op == "smul":  # a computed number times a matrix (clipping's s·g)
        return B.scale(ins[0][0][0], ins[1])
    if op == "sqerr":  # Σ (X − Y)², or Σ X² of errors already taken (scaled by ½, 1/N or 1: a squared-error loss)
        error = ins[0] if len(ins) == 1 else B.combine(Fraction(1), ins[0], Fraction(-1), ins[1])
        return B.total(B.hadamard(error, error))
    if op == "norm":  # √(Σ a² + Σ b² …): one norm over several gradients
        squares = [B.total(B.hadamard(m, m)) for m in ins]
        summed = squares[0]
        for extra in squares[1:]:
            summed = B.combine(Fraction(1), summed, Fraction(1), extra)
        return B.sqrt_entries(summed)
    if op == "affine":  # x·W plus a row (a bias) or a whole matrix (a residual), or both
        value = B.matmul(ins[0], ins[1])
        for extra in ins[2:]:
            value = B.combine(Fraction(1), value, Fraction(1),
                              B.broadcast_row(extra, len(value)) if len(extra) == 1 < len(value) else extra)
        return value
    if op == "standardize":
        return B.standardize(ins[0], ins[1], ins[2])
    if op == "layernorm":
        x = ins[0]
        mus, sigmas = (ins[1], ins[2]) if len(ins) == 5 else (B.row_means(x), B.row_deviations(x))
        gamma, beta = ins[-2], ins[-1]
        normal = B.standardize(x, mus, sigmas)
        return B.combine(Fraction(1), B.hadamard(normal, B.broadcast_row(gamma, len(x))),
                         Fraction(1), B.broadcast_row(beta, len(x)))
    if op == "scale_shift":  # γ ⊙ x̂ + β, from an x̂ already normalised
        x, gamma, beta = ins
        return B.combine(Fraction(1), B.hadamard(x, B.broadcast_row(gamma, len(x))),
                         Fraction(1), B.broadcast_row(beta, len(x)))
    if op == "lnback":  # LayerNorm's ∂x from ∂x̂, x̂ and σ
        return _layernorm_backward(ins[0], ins[1], ins[2], B)
    if op == "lnback_x":  # the same from ∂y, x and γ, when x̂ and σ are not printed
        dy, x, gamma = ins
        xhat = B.standardize(x, B.row_means(x), B.row_deviations(x))
        return _layernorm_backward(B.hadamard(dy, B.broadcast_row(gamma, len(dy))), xhat, B.row_deviations(x), B)
    if op == "heads":  # O[:, head h] = A_h · V[:, head h]; the weights stacked (k·n × n) or one matrix per head
        return _head_columns(ins[:-1], ins[-1], B)
    if op == "heads_t":  # ∂V[:, head h] = A_hᵀ · ∂O[:, head h], ∂K[:, h] = ∂S_hᵀ · Q[:, h]
        return _head_columns(ins[:-1], ins[-1], B, transposed=True)
    if op == "epochs":  # steps until S samples: ⌊S/N⌋ epochs of the student's batches per epoch, then full batches
        return B.epochs_steps(*ins)
    if op == "pass":  # one pass of the perceptron rule, each row from the table's own row above (η: the constant)
        return _perceptron_pass(*ins, recipe.constants[0], B)
    if op in PAIRED:
        return ins[0]  # combined in apply: a·X + b·Y
    raise ValueError(f"unknown recipe operation {op!r}")


def _perceptron_pass(w, b, xs, ys, table, eta, B):
    """Row t of (z, ŷ, w, b): z from the weights and bias of row t − 1 (w₀ and b₀ first), ŷ = 1[z > 0] from the row's
    own z, and w + η(y − ŷ)x, b + η(y − ŷ) from its own ŷ."""
    width = len(w[0])
    rows = []
    for t in range(len(xs)):
        if t:
            w, b = B.columns(table[t - 1:t], 2, 2 + width), B.columns(table[t - 1:t], 2 + width, 3 + width)
        x, own = xs[t:t + 1], table[t:t + 1]
        z = B.combine(Fraction(1), B.matmul(w, B.transpose(x)), Fraction(1), b)
        error = B.combine(Fraction(1), ys[t:t + 1], Fraction(-1), B.columns(own, 1, 2))
        step = B.scale(eta, error)
        rows.append(B.hstack([z, B.indicator(B.columns(own, 0, 1)), B.combine(Fraction(1), w, Fraction(1),
                                                                           B.scale(step[0][0], x)),
                              B.combine(Fraction(1), b, Fraction(1), step)]))
    return B.transpose(B.hstack([B.transpose(row) for row in rows]))


def _pass_rate(w, b, ys, table) -> Fraction | None:
    """η of a pass, from the key's first step that updates: the bias moved by η(y − ŷ)."""
    width = len(w[0])
    before = b[0][0]
    for t, row in enumerate(table):
        error = xn.sub(ys[t][0], row[1])
        if not xn.is_zero(error):
            eta = xn.div(xn.sub(row[2 + width], before), error)
            return eta if isinstance(eta, Fraction) and eta > 0 else None
        before = row[2 + width]
    return None


def _paths(groups: tuple[int, ...], ins: list, B):
    """The sum of the terms: a pair is a product, a single input is added as is."""
    value, at = None, 0
    for size in groups:
        term = B.matmul(ins[at], ins[at + 1]) if size == 2 else ins[at]
        value = term if value is None else B.combine(Fraction(1), value, Fraction(1), term)
        at += size
    return value


def _layernorm_backward(dxhat, xhat, sigma, B):
    """∂x = (∂x̂ − mean(∂x̂) − x̂ ⊙ mean(∂x̂ ⊙ x̂)) / σ, row by row."""
    tail = B.row_scale(xhat, B.row_means(B.hadamard(dxhat, xhat)))
    return B.standardize(B.combine(Fraction(1), dxhat, Fraction(-1), tail), B.row_means(dxhat), sigma)


def _head_columns(weights, v, B, transposed: bool = False):
    """Each head's weights (or their transposes) times its own block of V's columns, the blocks side by side."""
    rows, width = len(v), len(v[0])
    if len(weights) == 1:  # stacked: head h's weights are rows h·n … (h+1)·n − 1
        weights = [weights[0][h * rows:(h + 1) * rows] for h in range(len(weights[0]) // rows)]
    heads = len(weights)
    if heads < 2 or width % heads or any(len(w) != rows for w in weights):
        raise ValueError("the weights do not split into heads")
    if transposed:
        weights = [B.transpose(w) for w in weights]
    size = width // heads
    return B.hstack([B.matmul(w, B.columns(v, h * size, (h + 1) * size)) for h, w in enumerate(weights)])


def paired(recipe: Recipe, values: dict, B=xn):
    """X and Y of a·X + b·Y: two inputs (combine), or θ and m̂ ⊘ √v̂ (the Adam update)."""
    ins = [take(values, n, f, B) for n, f in zip(recipe.inputs, recipe.forms)]
    if recipe.op == "adam":
        return ins[0], B.divide(ins[1], ins[2])
    if recipe.op == "delta":  # θ and (y − ŷ)·x, a label and a prediction (numbers) times an input row; a bias has no x
        theta, label, prediction, *x = ins
        error = B.combine(Fraction(1), label, Fraction(-1), prediction)
        return theta, B.scale(error[0][0], x[0]) if x else error
    if recipe.op == "recurrence":  # (the start, then every entry but the last) and a row of ones
        start, row = ins
        previous = B.hstack([start, B.columns(row, 0, len(row[0]) - 1)])
        return previous, B.ones_like(previous)
    return ins[0], ins[1]


def apply(recipe: Recipe, values: dict, B=xn):
    """The recipe's value from these inputs (the key's, or a student's own)."""
    if recipe.op in PAIRED:
        x, y = paired(recipe, values, B)
        value = B.combine(recipe.constants[0], x, recipe.constants[1], y)
    else:
        value = core(recipe, values, B)
        if recipe.constants and recipe.op != "pass" and not _is_one(recipe.constants[0]):
            value = B.scale(recipe.constants[0], value)
    if recipe.zeroed:
        value = B.zero_mask(value)
    return B.causal_mask(value) if recipe.masked else value


def _is_one(c) -> bool:
    return isinstance(c, Fraction) and c == 1


def matches(target: xn.Matrix, value: xn.Matrix) -> bool:
    """Entry by entry the same number (exact for fractions, 30 digits otherwise)."""
    return xn.shape(target) == xn.shape(value) and all(
        xn.same(a, b) for a, b in zip(xn.entries(value), xn.entries(target)))


# ----- discovery ----------------------------------------------------------------------------------------------


@cache
def reference_samples(spec_key: tuple, seeds: tuple[int, ...] = REFERENCE_SEEDS) -> tuple[ProblemKey, ...]:
    """The spec drawn at the reference seeds: the same shapes and steps with different numbers."""
    type_name, options, given_parts = spec_key
    samples = []
    for seed in seeds:
        spec = SheetSpec(title="marking", seed=seed, calculator="basic",
                         problems=(ProblemSpec(type_name, dict(options), tuple(given_parts)),))
        samples.append(key_from_data(key_data(build(spec))).problems[0])
    return tuple(samples)


@cache
def confirming_seeds(spec_key: tuple) -> tuple[int, ...]:
    """The draws a recipe must hold on besides the references: EXTRA_SEEDS, and MORE_SEEDS for a small spec."""
    first = reference_samples(spec_key)[0]
    per_draw = sum(len(list(xn.entries(q.values))) for q in first.quantities.values() if q.source == "answer")
    wanted = -(-EVIDENCE_ENTRIES // max(per_draw, 1)) - len(REFERENCE_SEEDS) - len(EXTRA_SEEDS)
    return EXTRA_SEEDS + MORE_SEEDS[:max(wanted, 0)]


@cache
def recipes_for(spec_key: tuple) -> dict[str, tuple[Recipe, ...]]:
    """Every answer's recipes for one problem spec (type, options, given parts), from the reference variants and the
    confirming draws."""
    return discover(list(reference_samples(spec_key)), list(reference_samples(spec_key, confirming_seeds(spec_key))))


def unexplained(spec_key: tuple) -> list[str]:
    """The answers no recipe explains, though their values change with the draw: no follow-through for them.

    Answers worked from the givens alone need none (no earlier answer of the student's can be carried into them);
    any other is a step the catalogue lacks."""
    samples = reference_samples(spec_key)
    varying = _varying([_values_of(s) for s in samples],
                       [_values_of(s) for s in reference_samples(spec_key, confirming_seeds(spec_key))])
    found = recipes_for(spec_key)
    return [name for name, q in samples[0].quantities.items()
            if q.source == "answer" and name in varying and name not in found]


def _values_of(sample: ProblemKey) -> dict[str, xn.Matrix]:
    return {q.name: q.values for q in sample.quantities.values()}


def _common(values: list[dict]) -> list[str]:
    """The names every sample has, in the first sample's order."""
    return [name for name in values[0] if all(name in v for v in values)]


def _varying(values: list[dict], more: list[dict] = ()) -> set[str]:
    """The names (common to values) whose value changes between samples, the further ones (more) where they have it
    too (any matrix counts: its entries are drawn)."""
    return {n for n in _common(values)
            if xn.shape(values[0][n]) != (1, 1)
            or any(n in v and not matches(v[n], values[0][n]) for v in chain(values, more))}


def discover(samples: list[ProblemKey], confirming: list[ProblemKey] = ()) -> dict[str, tuple[Recipe, ...]]:
    """Recipes that hold on every sample (the same problem spec drawn with different numbers).

    Candidates are proposed from the samples; a recipe must also hold on every confirming draw (a relation that only a
    coincidence of the samples makes true fails on one of them)."""
    first = samples[0]
    values = [_values_of(s) for s in samples]
    names = _common(values)
    # A draw is evidence for every quantity (every spec's draws have the same quantities; one that did not is left out).
    more = [v for v in map(_values_of, confirming) if all(n in v for n in names)]
    # A number that is the same in every draw is a constant of the spec (d_k, η): it folds into a recipe's constants.
    varying = _varying(values, more)
    evidence = values + more
    # Float copies screen the candidates: only the few that pass there are checked exactly (see floatnum).
    floats = [{n: fl.array(v[n]) for n in names if v[n]} for v in evidence]
    references = floats[:len(values)]
    found: dict[str, tuple[Recipe, ...]] = {}
    with np.errstate(all="ignore"):
        for name in names:
            quantity = first.quantities[name]
            if quantity.source != "answer" or name not in varying:
                continue
            earlier = [first.quantities[n] for n in names
                       if first.quantities[n].order < quantity.order and first.quantities[n].values]
            pool = [q for q in earlier if q.name in varying and not _is_index_fact(q)]
            indices = [q for q in earlier if _is_index_fact(q)]
            candidates: list[Recipe] = []
            # A sum over several paths is looked for last, and only when no simpler step explains the answer.
            paths = _path_candidates(quantity, pool, floats[0], wanted=lambda: not candidates)
            for recipe in chain(_candidates(quantity, pool, references, indices), paths):
                # The references first: most candidates fail there, and a paired op's fit grows with the samples.
                if not _screen(recipe, name, references) or not _screen(recipe, name, floats):
                    continue
                fitted = _fit(recipe, name, evidence)
                if fitted is not None and fitted not in candidates:
                    candidates.append(fitted)
                    if len(candidates) >= MAX_RECIPES:
                        break
            candidates = [r for r in candidates if not _outdone(r, candidates, found)]
            if candidates:
                found[name] = tuple(candidates)
    return found


def _outdone(recipe: Recipe, others: list[Recipe], found: dict[str, tuple[Recipe, ...]]) -> bool:
    """Another recipe of the answer needs only some of this one's inputs, and the rest are not worked from those.

    Both hold on every draw, so they agree there: the other inputs never changed the value (Σ dU ⊙ û over a ReLU,
    û = ±1 for two columns, is Σ dU while dU is 0 wherever û = −1; ¼·ℓᵀ·σ is the mean loss while σ = (2, 2)ᵀ in
    every draw). Inputs worked from the other recipe's (μ and σ from x) are another route to the same step:
    LayerNorm from the student's own μ and σ stays beside LayerNorm from x."""
    inputs = set(recipe.inputs)
    for other in others:
        base = set(other.inputs)
        if base < inputs and not all(_worked_from(extra, base, found, set()) for extra in inputs - base):
            return True
    return False


def _worked_from(name: str, base: set[str], found: dict[str, tuple[Recipe, ...]], seen: set[str]) -> bool:
    """Whether a recipe of name, or of a quantity it is worked from (and so on back), takes one of base."""
    for recipe in found.get(name, ()):
        for source in recipe.inputs:
            if source in base:
                return True
            if source not in seen:
                seen.add(source)
                if _worked_from(source, base, found, seen):
                    return True
    return False


def _is_index_fact(quantity: Quantity) -> bool:
    """Token ids and target positions: stated as numbers, but they pick rows; no step multiplies by them."""
    return quantity.source == "fact" and any(word in quantity.name for word in ("token", "target", "index", "ids"))


# valid_recipes of each key loaded, kept while the key lives: the web page marks one student's key at every Check,
# and which recipes hold on it (a third of a Check's marking) does not change. Keys are not changed once loaded.
_valid: dict[int, tuple[weakref.ref, Mapping[str, tuple[Recipe, ...]]]] = {}


def valid_recipes(problem: ProblemKey) -> Mapping[str, tuple[Recipe, ...]]:
    """The spec's recipes that also hold on this variant's own key values (worked once per key object)."""
    kept = _valid.get(id(problem))
    if kept is not None and kept[0]() is problem:
        return kept[1]
    result = MappingProxyType(_valid_recipes(problem))  # read-only: every Check shares it
    key = id(problem)
    _valid[key] = (weakref.ref(problem, lambda _, key=key: _valid.pop(key, None)), result)
    return result


def _valid_recipes(problem: ProblemKey) -> dict[str, tuple[Recipe, ...]]:
    """valid_recipes, worked."""
    values = {name: q.values for name, q in problem.quantities.items()}
    result = {}
    for name, recipes in recipes_for(problem.spec_key).items():
        if name not in values:
            continue
        bound = (_bound(r, values, name) if r.op == "recurrence" else r for r in recipes
                 if all(n in values for n in r.inputs))
        kept = tuple(r for r in bound if r is not None and _holds(r, values, name))
        if kept:
            result[name] = kept
    return result


# ----- choices ------------------------------------------------------------------------------------------------

# A choice follows from a number printed before it: the largest entry of a row (the predicted token is the argmax of
# the probabilities or the logits), the largest entry but the one at a target (the likeliest wrong token: the row
# without that entry holds one entry per choice), the sign of one value (acute, right or obtuse from a dot
# product) or the one entry of a row that is ≤ 0 (the hidden unit a ReLU cuts, whose gradients are 0; the logit whose
# gradient p − y is negative, which descent raises). The choices are taken in
# their printed order: position j for the argmax; for a sign, three choices ordered by sign (+, 0, −: constants (1,),
# or −, 0, +: (−1,)); for a cut, "none" first, then one per entry. A choice names one of a few options, so one draw is
# weak evidence: a recipe must give the key's choice, and no other, on the reference variants and on the extra draws.
CHOICE_OPS = ("argmax", "argmax_except", "sign", "cut")


def choose(recipe: Recipe, values: dict, choices: tuple[str, ...], B=xn) -> set[str]:
    """The choices these values lead to (several where a tie, or the width of intervals, leaves it open)."""
    value = take(values, recipe.inputs[0], recipe.forms[0], B)
    if recipe.op == "argmax":
        return {choices[j] for j in B.maxima(value)}
    if recipe.op == "argmax_except":
        return {choices[j] for j in B.maxima(_without(value, values[recipe.inputs[1]], B))}
    if recipe.op == "cut":
        return _cut(value, choices, B)
    return {choices[1 - int(recipe.constants[0]) * s] for s in B.signs(value)}


def _cut(row, choices: tuple[str, ...], B=xn) -> set[str]:
    """The one entry of a row a ReLU cuts (≤ 0), or the first choice (none) where it cuts nothing; with intervals every
    reading that leaves at most one entry cut (an interval about 0 may or may not be cut)."""
    rows, cols = B.shape(row)
    if rows != 1 or len(choices) != cols + 1:
        raise ValueError("a cut names one entry of one row, or none")
    signs = [B.signs(B.columns(row, j, j + 1)) for j in range(cols)]
    maybe = {j for j in range(cols) if signs[j] & {-1, 0}}
    sure = {j for j in maybe if signs[j] <= {-1, 0}}
    return ({choices[0]} if not sure else set()) | {choices[1 + j] for j in maybe if sure <= {j}}


def _without(row, index, B=xn):
    """A row without the entry at a (target) index."""
    (skip,) = B.indices(index)
    cols = B.shape(row)[1]
    if skip >= cols:
        raise IndexError("the index lies beyond the row")
    return B.hstack([B.columns(row, start, stop) for start, stop in ((0, skip), (skip + 1, cols)) if start < stop])


@cache
def choice_recipes_for(spec_key: tuple) -> dict[str, tuple[Recipe, ...]]:
    """Every choice's recipes for one problem spec, from the reference variants and the extra draws."""
    samples = reference_samples(spec_key)
    values = [_values_of(s) for s in samples]
    varying = _varying(values, [_values_of(s) for s in reference_samples(spec_key, EXTRA_SEEDS)])
    found: dict[str, tuple[Recipe, ...]] = {}
    for name, (blank, earlier) in _choice_blanks(samples[0]).items():
        keys = [_choice_key(s, name) for s in samples]
        extra = ()
        if None not in keys and len(set(keys)) == 1:
            # A drawn choice (an angle class, a verdict) can repeat by chance over three draws: the extra draws
            # decide whether it is a constant of the spec.
            extra = reference_samples(spec_key, EXTRA_SEEDS)
            keys_seen = set(keys) | {_choice_key(s, name) for s in extra}
            if None in keys_seen or len(keys_seen) == 1:
                continue  # the same choice in every draw is a constant: nothing shows what it follows from
        elif None in keys:
            continue
        quantities = samples[0].quantities
        pool = [quantities[n] for n in earlier if n in varying and not _is_index_fact(quantities[n])]
        indices = [quantities[n] for n in earlier if _is_index_fact(quantities[n])]
        # Each draw's own choices: which tokens are offered can change with the draw (every token but the target).
        kept = [r for r in _choice_candidates(blank, pool, indices)
                if all(_chooses(r, v, _choices_of(s, name), k) for s, v, k in zip(samples, values, keys))]
        if kept:
            extra = extra or reference_samples(spec_key, EXTRA_SEEDS)
            kept = [r for r in kept
                    if all(_chooses(r, _values_of(s), _choices_of(s, name), _choice_key(s, name)) for s in extra)]
        if kept:
            found[name] = tuple(kept[:MAX_RECIPES])
    return found


def valid_choice_recipes(problem: ProblemKey) -> dict[str, tuple[Recipe, ...]]:
    """The spec's choice recipes that also give this variant's own key."""
    values = {name: q.values for name, q in problem.quantities.items()}
    blanks = {b.name: b for b in problem.blanks if b.kind == "choice"}
    result = {}
    for name, recipes in choice_recipes_for(problem.spec_key).items():
        blank = blanks.get(name)
        kept = tuple(r for r in recipes if blank is not None and _chooses(r, values, blank.choices, blank.text))
        if kept:
            result[name] = kept
    return result


def _choice_blanks(sample: ProblemKey) -> dict:
    """Each choice blank by name, with the names of the quantities printed before it."""
    first = {}
    for position, blank in enumerate(sample.blanks):
        first.setdefault(blank.name, position)
    result = {}
    for position, blank in enumerate(sample.blanks):
        if blank.kind != "choice":
            continue
        earlier = [q.name for q in sample.quantities.values()
                   if q.source in ("given", "fact") or (q.source == "shown" and q.part < blank.part)
                   or (q.source == "answer" and min(first[b.name] for b in q.blanks.values()) < position)]
        result[blank.name] = (blank, earlier)
    return result


def _choice_key(sample: ProblemKey, name: str) -> str | None:
    return next((b.text for b in sample.blanks if b.kind == "choice" and b.name == name), None)


def _choices_of(sample: ProblemKey, name: str) -> tuple[str, ...]:
    return next((b.choices for b in sample.blanks if b.kind == "choice" and b.name == name), ())


def _choice_candidates(blank, pool: list[Quantity], indices: list[Quantity] = ()):
    """The argmax of each row with one entry per choice, or one more and an index to leave out; the sign of each
    number, for three choices; the entry ≤ 0 of each row with one entry fewer than the choices (none first)."""
    count = len(blank.choices)
    single = [i for i in indices if xn.shape(i.values) == (1, 1)]
    for q in pool:
        rows, cols = xn.shape(q.values)
        if cols == count > 1:
            for form in [""] if rows == 1 else [f"row{i}" for i in range(rows)]:
                yield Recipe("argmax", (q.name,), (form,))
        if cols == count + 1 and count > 1:
            for form in [""] if rows == 1 else [f"row{i}" for i in range(rows)]:
                for index in single:
                    yield Recipe("argmax_except", (q.name, index.name), (form, ""))
        if (rows, cols) == (1, 1) and count == 3:
            for orientation in (Fraction(1), Fraction(-1)):
                yield Recipe("sign", (q.name,), ("",), constants=(orientation,))
        if cols == count - 1 > 1:  # a row of several (∂L/∂z per position): the question names which
            for form in [""] if rows == 1 else [f"row{i}" for i in range(rows)]:
                yield Recipe("cut", (q.name,), (form,))


def _chooses(recipe: Recipe, values: dict, choices: tuple[str, ...], key: str | None) -> bool:
    """The recipe gives exactly this choice on these values."""
    try:
        return recipe.inputs[0] in values and choose(recipe, values, choices) == {key}
    except (xn.Undefined, IndexError, ValueError):
        return False


def _bound(recipe: Recipe, values: dict[str, xn.Matrix], name: str) -> Recipe | None:
    """A recurrence with this variant's own α and β, solved from its key (None when the key's row is no such row)."""
    try:
        constants = _solve_combination(recipe, name, [values], nonzero=False)
    except (xn.Undefined, IndexError, ValueError, ZeroDivisionError):
        return None
    return None if constants is None else replace(recipe, constants=constants)


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
    if _computed(quantity) and 2 <= cols <= 4 and rows > 1:
        forms += [f"c{j}" for j in range(cols)] + [f"cT{j}" for j in range(cols)]  # one head's column of Q, K or V
    if _computed(quantity) and 1 < rows <= 4:
        forms += ["rl", "rlT"] if cols > 1 else ["rl"]  # the last token's row (its query, its scores)
    if cols > 1 and rows % cols == 0 and 2 <= rows // cols <= MAX_HEADS:
        forms += [f"b{h}" for h in range(rows // cols)]  # one head's weights of several stacked
    return forms


def _computed(quantity: Quantity) -> bool:
    """An answer, or a part printed with its values: a matrix of per-token rows and per-head columns."""
    return quantity.source in ("answer", "shown")


def _shape(quantity: Quantity, form: str) -> tuple[int, int]:
    rows, cols = xn.shape(quantity.values)
    if form == "rl":
        return (1, cols)
    if form == "rlT":
        return (cols, 1)
    if form.startswith("cT"):
        return (1, rows)
    if form.startswith("b"):
        return (cols, cols)
    return (cols, rows) if form == "T" else (rows, 1) if form.startswith("c") else (rows, cols)


def _zeroed_like(target: xn.Matrix) -> bool:
    """The target is 0 exactly above the diagonal and not only there (∂Ã through a causal mask)."""
    rows, cols = xn.shape(target)
    return (rows > 1 and rows == cols and all(xn.is_zero(target[i][j]) for i in range(rows) for j in range(i + 1, cols))
            and not all(xn.is_zero(target[i][j]) for i in range(rows) for j in range(i + 1)))


def _candidates(target: Quantity, pool: list[Quantity], samples: list[dict[str, np.ndarray]], indices: list[Quantity]):
    """Every recipe whose shapes fit the target, simplest first; constants are fitted afterwards.

    samples are the reference samples' floats, values the first one's. Recipes with a row added (affine maps,
    LayerNorm's β) are proposed only when those values leave exactly a row of the pool over: a pool of forty
    quantities would otherwise give thousands. Products and sums a·X + b·Y are proposed only when one constant (or
    pair) could fit every sample: one number per sample fits any product or pair of the first sample alone."""
    values = samples[0]
    shape = xn.shape(target.values)
    goal = values[target.name]
    masked = _masked_like(target.values)
    rows, cols = shape
    zeroed = _zeroed_like(target.values)
    finite = [q for q in pool if np.all(np.isfinite(values[q.name]))]
    for q in finite:
        for form in ("", "T"):
            if _shape(q, form) == shape and (form == "" or shape != (1, 1)):
                yield Recipe("scale", (q.name,), (form,), masked=masked)
        if rows == 1 and cols >= MIN_ITERATES and xn.shape(q.values) == (1, 1):
            yield Recipe("recurrence", (q.name, target.name), ("", ""))
    yield from _pass_candidates(target, pool)
    for q in pool:
        for form in ("", "rl") if _computed(q) else ("",):
            if _shape(q, form) == shape and form in _forms(q):
                for op in ("relu", "indicator", "softmax", "rownorm", "shift", "abs", "gelu", "exp", "log",
                           "gelu_slope", "cap", "logistic_slope", "tanh_slope"):
                    yield Recipe(op, (q.name,), (form,), masked=masked and op != "softmax")
    yield from _reshaping_candidates(shape, pool)
    for q in finite:
        q_rows, q_cols = xn.shape(q.values)
        for form in ("", "rl") if _computed(q) else ("",):
            if (q_rows if form == "" else 1) == rows and cols == 1 and q_cols > 1 and form in _forms(q):
                for op in ("rowmean", "rowvar", "rowstd"):
                    yield Recipe(op, (q.name,), (form,))
        if shape == (1, 1) and q_rows * q_cols > 1:
            yield Recipe("total", (q.name,), ("",))
            yield Recipe("sqerr", (q.name,), ("",))  # a sum of squared errors the student wrote out
        if rows == 1 and q_cols == cols and q_rows > 1:
            yield Recipe("colsum", (q.name,), ("",))
    if shape == (1, 1):  # a squared error Σ (X − Y)² of an answer and what it should have been (½(out − t)²)
        for a, b in combinations(finite, 2):
            if xn.shape(a.values) == xn.shape(b.values) and "answer" in (a.source, b.source):
                yield Recipe("sqerr", (a.name, b.name), ("", ""))
    products = []
    items = [(q, f, _shape(q, f)) for q in finite for f in _forms(q)]
    by_rows: dict[int, list] = {}
    for item in items:
        by_rows.setdefault(item[2][0], []).append(item)
    lefts = []  # each product's value on the first sample, for the affine maps below
    for a, fa, sa in items:
        if sa[0] != rows or sa == (1, 1):
            continue
        # A 1×1 factor is a scaling (found as such), and a 1×1 outer product is just a product of numbers.
        partners = [(b, fb) for b, fb, sb in by_rows.get(sa[1], ())
                    if sb[1] == cols and sb != (1, 1) and (sa[1] > 1 or shape != (1, 1))]
        if not partners:
            continue
        values_a = take(values, a.name, fa, fl)
        group = np.matmul(values_a, np.stack([take(values, b.name, fb, fl) for b, fb in partners]))
        fitting = _proportional(goal, group)
        # Through masked weights the gradient is 0 above the diagonal: compare the rest.
        zero_fitting = _proportional(goal, np.tril(group)) if zeroed else np.zeros(len(group), bool)
        if len(samples) > 1 and (fitting.any() or zero_fitting.any()):
            fitting, zero_fitting = _proportional_everywhere(target.name, (a.name, fa), partners, samples,
                                                             fitting, zero_fitting)
        for (b, fb), left, fits, fits_zeroed in zip(partners, group, fitting, zero_fitting):
            products.append(((a.name, b.name), (fa, fb)))
            lefts.append(left)
            if fits:
                yield Recipe("product", (a.name, b.name), (fa, fb), masked=masked)
            elif fits_zeroed:
                yield Recipe("product", (a.name, b.name), (fa, fb), zeroed=True)
    same = [q for q in finite if xn.shape(q.values) == shape]
    for a, b in pairs(same, repeat=2):
        if a.order <= b.order:
            yield Recipe("hadamard", (a.name, b.name), ("", ""), masked=masked)
    spans = _spans(target.name, same, samples)
    for (i, a), (j, b) in pairs(enumerate(same), repeat=2):
        if a.name != b.name:
            for k, form in enumerate(("", "sq")):
                if spans[k][i, j]:
                    yield Recipe("combine", (a.name, b.name), ("", form))
            yield Recipe("relu_back", (a.name, b.name), ("", ""))
    # Through a softmax: ∂s = a ⊙ (∂a − Σ ∂a ⊙ a), with a one head's block of the stacked weights too.
    weights = [(q, f) for q in finite for f in _forms(q) if (f == "" or f.startswith("b")) and _shape(q, f) == shape]
    for d in same:
        for a, form in weights:
            if a.name != d.name:
                yield Recipe("softmax_back", (d.name, a.name), ("", form))
    yield from _index_candidates(target, finite, indices, values)
    if masked or np.any(np.isneginf(goal)):
        return
    rows_1xd = [q for q in finite if xn.shape(q.values) == (1, cols)]
    yield from _composite_candidates(target, finite, same, rows_1xd, values)
    sources = {q.name: q.source for q in pool}
    answers_same = [q for q in same if q.source == "answer"]
    row_stack, no_rows = _Stack(rows_1xd, values), _Stack([], values)
    same_stack, answer_stack = _Stack(same, values), _Stack(answers_same, values)
    hopeful = _may_be_affine(goal - np.stack(lefts), row_stack, same_stack) if lefts else []
    for (names, forms), left, hope in zip(products, lefts, hopeful):
        # x·W + b from givens alone needs no follow-through: only a residual the student computed is looked for.
        from_answers = any(sources[n] == "answer" for n in names)
        if not hope or (not from_answers and not answers_same):
            continue
        for extra in _leftovers(goal - left, row_stack if from_answers else no_rows,
                                same_stack if from_answers else answer_stack):
            yield Recipe("affine", names + extra, forms + ("",) * len(extra))
    if cols < 2:  # LayerNorm normalises a row of features: of one entry it is 0/0, and any match an identity's chance
        return
    columns = [q for q in finite if xn.shape(q.values) == (rows, 1) and q.source == "answer"]
    # LayerNorm of a whole matrix, or of the last row alone (the one position the next step needs).
    normed = [(q, "") for q in same] + [(q, "rl") for q in finite if "rl" in _forms(q) and _shape(q, "rl") == shape]
    for x, form in normed:
        stats = [(m.name, s.name) for m, s in pairs(columns, repeat=2) if m.name != s.name] + [None]
        for pair in stats:
            try:
                if pair is None:
                    normal = take({x.name: take(values, x.name, form, fl)}, x.name, "std", fl)
                else:
                    normal = fl.standardize(take(values, x.name, form, fl), values[pair[0]], values[pair[1]])
                    yield Recipe("standardize", (x.name,) + pair, (form, "", ""))
            except xn.Undefined:
                continue
            # A row normalised already (x̂ itself) is scaled and shifted, not normalised again: on a student's
            # rounded x̂ a second normalisation is another number, and its interval (x̂ in the mean, σ and the
            # numerator at once) far wider than the rounding.
            op = "scale_shift" if pair is None and fl.close(normal, take(values, x.name, form, fl)) else "layernorm"
            for g in rows_1xd:
                for (b,) in _leftovers(goal - normal * values[g.name], row_stack, no_rows):
                    if b != g.name:
                        inputs = (x.name,) + (pair or ()) + (g.name, b)
                        yield Recipe(op, inputs, (form,) + ("",) * (len(inputs) - 1))


def _proportional_everywhere(target: str, left: tuple[str, str], partners: list, samples: list[dict[str, np.ndarray]],
                             fitting: np.ndarray, zero_fitting: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The products that fit the first sample (fitting, zero_fitting) kept where one constant fits every sample."""
    chosen = np.flatnonzero(fitting | zero_fitting)
    try:
        goals, groups = [], []
        for values in samples:
            a = take(values, left[0], left[1], fl)
            goals.append(values[target])
            rights = [take(values, partners[i][0].name, partners[i][1], fl) for i in chosen]
            groups.append(np.matmul(a, np.stack(rights)))
    except (KeyError, IndexError, ValueError):
        return fitting, zero_fitting  # a sample without these quantities: the first sample's verdict stands

    def everywhere(parts) -> np.ndarray:
        goal = np.concatenate([g.ravel() for g in goals])[None, :]
        group = np.concatenate([p.reshape(len(chosen), -1) for p in parts], axis=1)[:, None, :]
        return _proportional(goal, group)

    fitting, zero_fitting = fitting.copy(), zero_fitting.copy()
    fitting[chosen] &= everywhere(groups)
    if zero_fitting.any():
        zero_fitting[chosen] &= everywhere([np.tril(g) for g in groups])
    return fitting, zero_fitting


def _spans(target: str, same: list[Quantity], samples: list[dict[str, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Per pair (i, j) of same, for Y = same[j] and for Y = same[j]²: could target = a·same[i] + b·Y with a, b ≠ 0 on
    every sample? A loose float test (normal equations, every sample's entries in one vector) that only spares the
    screen the pairs that clearly cannot (the screen's least squares decides the rest)."""
    count = len(same)
    try:
        goal = np.concatenate([values[target].ravel() for values in samples])
        xs = np.stack([np.concatenate([values[q.name].ravel() for values in samples]) for q in same]) if same \
            else np.zeros((0, len(goal)))
    except (KeyError, ValueError):
        return np.ones((count, count), bool), np.ones((count, count), bool)  # unsure: every pair is screened
    usable = np.isfinite(xs).all(axis=1) & bool(np.isfinite(goal).all())
    xs = np.where(np.isfinite(xs), xs, 0.0)
    goal = np.where(np.isfinite(goal), goal, 0.0)
    tolerance = 1e-6 * (1.0 + np.abs(goal))
    result = []
    for ys in (xs, xs * xs):
        gxx, gyy, gxy = (xs * xs).sum(axis=1), (ys * ys).sum(axis=1), xs @ ys.T
        hx, hy = xs @ goal, ys @ goal
        det = gxx[:, None] * gyy[None, :] - gxy * gxy
        independent = np.abs(det) > 1e-12 * gxx[:, None] * gyy[None, :]
        safe = np.where(independent, det, 1.0)
        a = (hx[:, None] * gyy[None, :] - hy[None, :] * gxy) / safe
        b = (hy[None, :] * gxx[:, None] - hx[:, None] * gxy) / safe
        rest = goal[None, None, :] - a[:, :, None] * xs[:, None, :] - b[:, :, None] * ys[None, :, :]
        fits = (np.abs(rest) <= tolerance).all(axis=2)
        result.append(fits & independent & (np.abs(a) > fl.ATOL) & (np.abs(b) > fl.ATOL)
                      & usable[:, None] & usable[None, :])
    return result[0], result[1]


def _composite_candidates(target: Quantity, finite: list[Quantity], same: list[Quantity], rows_1xd: list[Quantity],
                          values: dict[str, np.ndarray]):
    """Steps made of several shared ones: LayerNorm's backward pieces, the Adam update, per-head columns, clipping."""
    rows, cols = xn.shape(target.values)
    answers_same = [q for q in same if q.source == "answer"]
    if rows > 1:
        for m in same:
            for g in rows_1xd:
                yield Recipe("hadamard_row", (m.name, g.name), ("", ""))  # ∂x̂ = ∂y ⊙ γ
    if rows == 1 and cols > 1:
        tall = [q for q in finite if xn.shape(q.values)[1] == cols and xn.shape(q.values)[0] > 1]
        for a, b in pairs(tall, repeat=2):
            if xn.shape(a.values) == xn.shape(b.values):
                if a.order <= b.order:
                    yield Recipe("colsum_hadamard", (a.name, b.name), ("", ""))  # ∂γ from x̂
                if a.name != b.name:
                    yield Recipe("colsum_hadamard", (a.name, b.name), ("", "std"))  # ∂γ from x
    goal = values[target.name]
    if cols > 1 and fl.close(goal.sum(axis=1), np.zeros(rows)):
        # LayerNorm's ∂x: every row sums to 0 (and is orthogonal to x̂), which few other answers do.
        sigmas = [q for q in finite if xn.shape(q.values) == (rows, 1) and q.source == "answer"]
        for d, x in pairs(same, repeat=2):
            if d.name == x.name:
                continue
            for s in sigmas:
                yield Recipe("lnback", (d.name, x.name, s.name), ("", "", ""))
            if d.source == "answer":  # from ∂y, x and γ alone there is nothing to follow through
                for g in rows_1xd:
                    yield Recipe("lnback_x", (d.name, x.name, g.name), ("", "", ""))
    # The Adam update a·θ + b·m̂/√v̂: m̂ and the root (or v̂) are the student's answers, the root positive.
    positive = [q for q in answers_same if np.all(values[q.name] > 0)]
    for m in answers_same:
        for v in positive:
            if v.name == m.name:
                continue
            for theta in same:
                if theta.name not in (m.name, v.name):
                    for form in ("", "rt"):
                        yield Recipe("adam", (theta.name, m.name, v.name), ("", "", form))
    if cols > 1:
        yield from _head_candidates(target, finite, values)
    if rows == 1:
        # The perceptron rule θ + η(y − ŷ)x (and b + η(y − ŷ) for the bias): θ, y and x printed, ŷ the student's own
        # prediction.
        givens = [q for q in same if q.source == "given"]
        labels = [q for q in finite if xn.shape(q.values) == (1, 1) and q.source == "given"
                  and np.all((values[q.name] == 0) | (values[q.name] == 1))]  # a class, 0 or 1
        predictions = [q for q in finite if xn.shape(q.values) == (1, 1) and q.source == "answer"]
        for theta, y, yhat in pairs(givens, labels, predictions):
            if theta.name == y.name:
                continue
            if cols == 1:
                yield Recipe("delta", (theta.name, y.name, yhat.name), ("",) * 3)
            for x in givens:
                if x.name not in (theta.name, y.name):
                    yield Recipe("delta", (theta.name, y.name, yhat.name, x.name), ("",) * 4)
    if (rows, cols) != (1, 1):
        # A computed number times a matrix: clipping's s·g, a one-token query times ∂s (∂k = ∂sᵀ·q), a gradient
        # through a one-output layer (∂L/∂h = ∂L/∂out·W₂ᵀ).
        numbers = [(s, f) for s in finite if s.source == "answer" for f in _forms(s) if _shape(s, f) == (1, 1)]
        matrices = [(m, f) for m in finite for f in _forms(m) if _shape(m, f) == (rows, cols)
                    and (f in ("", "T") or _computed(m))]
        for (s, fs), (m, fm) in pairs(numbers, matrices):
            if s.name != m.name:
                yield Recipe("smul", (s.name, m.name), (fs, fm))
    if (rows, cols) == (1, 1):
        for q in finite:
            if xn.shape(q.values) == (1, 1):
                yield Recipe("reciprocal", (q.name,), ("",))  # c/‖g‖
        # Steps until S samples: the printed counts S > N > B and the student's own batches per epoch.
        counts = [q for q in finite if xn.shape(q.values) == (1, 1) and q.source == "given"
                  and values[q.name][0, 0] >= 1 and float(values[q.name][0, 0]).is_integer()]
        per_epoch = [q for q in finite if xn.shape(q.values) == (1, 1) and q.source == "answer"]
        for s, n, b in pairs(counts, repeat=3):
            if values[s.name][0, 0] > values[n.name][0, 0] > values[b.name][0, 0]:
                for batches in per_epoch:
                    yield Recipe("epochs", (s.name, n.name, b.name, batches.name), ("",) * 4)
        wide = [q for q in finite if xn.shape(q.values) != (1, 1)]
        for q in wide:
            yield Recipe("norm", (q.name,), ("",))
        for a, b in pairs(wide, repeat=2):
            if a.order < b.order:
                yield Recipe("norm", (a.name, b.name), ("", ""))


def _pass_candidates(target: Quantity, pool: list[Quantity]):
    """A table of perceptron steps (z, ŷ, w, b per row) from the printed w₀, b₀, data X and labels y; η from the key."""
    rows, cols = xn.shape(target.values)
    if rows < 2 or cols < 4:
        return
    givens = [q for q in pool if q.source == "given"]
    shaped = lambda shape: [q for q in givens if xn.shape(q.values) == shape]  # noqa: E731
    for w, b, x, y in pairs(shaped((1, cols - 3)), shaped((1, 1)), shaped((rows, cols - 3)), shaped((rows, 1))):
        if w.name != x.name:
            eta = _pass_rate(w.values, b.values, y.values, target.values)
            if eta is not None:
                yield Recipe("pass", (w.name, b.name, x.name, y.name, target.name), ("",) * 5, constants=(eta,))


def _reshaping_candidates(shape: tuple[int, int], pool: list[Quantity]):
    """Steps that change the shape: a 2×2 determinant and inverse, a softmax Jacobian, blocks side by side."""
    rows, cols = shape
    shapes = {q.name: xn.shape(q.values) for q in pool}
    for q in pool:
        if shape == (1, 1) and shapes[q.name] == (2, 2):
            yield Recipe("det", (q.name,), ("",))
        if shapes[q.name] == (1, rows) and rows == cols > 1:
            yield Recipe("jacobian", (q.name,), ("",))
    if shape == (2, 2):
        for a, d in pairs(pool, repeat=2):
            if shapes[a.name] == (2, 2) and shapes[d.name] == (1, 1):
                yield Recipe("inverse_by", (a.name, d.name), ("", ""))
    for a, b in pairs(pool, repeat=2):
        (ra, ca), (rb, cb) = shapes[a.name], shapes[b.name]
        if a.name != b.name and ra == rb == rows and ca + cb == cols:
            yield Recipe("hstack", (a.name, b.name), ("", ""))


def _index_candidates(target: Quantity, finite: list[Quantity], indices: list[Quantity], values: dict[str, np.ndarray]):
    """Steps that use token ids or targets: one-hot rows, the target's probability and loss, embedding rows."""
    rows, cols = xn.shape(target.values)
    goal = values[target.name]
    for t in indices:
        count = len(list(xn.entries(t.values)))
        for q in finite:
            q_rows, q_cols = xn.shape(q.values)
            if q_rows != count:
                continue
            if (q_rows, q_cols) == (rows, cols) and q_cols > 1:
                yield Recipe("minus_onehot", (q.name, t.name), ("", ""))
                if np.isin(goal, (0.0, 1.0)).all():
                    yield Recipe("onehot", (q.name, t.name), ("", ""))
            if (rows, cols) == (count, 1) and q_cols > 1:
                for op in ("pick", "logpick", "softmax_pick"):
                    yield Recipe(op, (q.name, t.name), ("", ""))
            if (rows, cols) == (1, 1) and count > 1 and q_cols > 1:
                yield Recipe("nll", (q.name, t.name), ("", ""))
        for table in finite:
            if table.source == "answer":
                continue  # an embedding table is given
            t_rows, t_cols = xn.shape(table.values)
            if (rows, cols) == (count, t_cols) and t_rows > 1:
                yield Recipe("gather", (table.name, t.name), ("", ""))
                for p in finite:
                    if xn.shape(p.values) == (rows, cols) and p.source == "given":
                        yield Recipe("embed", (table.name, t.name, p.name), ("", "", ""))
            if (t_rows, t_cols) == (rows, cols) and rows > 1:
                for d in finite:
                    if d.source == "answer" and xn.shape(d.values) == (count, cols):
                        yield Recipe("scatter", (d.name, t.name, table.name), ("", "", ""))


def _path_candidates(target: Quantity, pool: list[Quantity], values: dict[str, np.ndarray], wanted=lambda: True):
    """A gradient that flows back along several paths: Σ ∂outₖ·Wₖᵀ over two or more products, maybe plus a residual.

    Each term is a student's gradient times a weight transposed (or an earlier gradient as is); the subsets of
    terms whose sum is the target on the first sample are proposed (the screen then checks every sample)."""
    if not wanted():
        return
    rows, cols = xn.shape(target.values)
    goal = values[target.name]
    if not np.all(np.isfinite(goal)):
        return
    finite = [q for q in pool if np.all(np.isfinite(values[q.name]))]
    terms, arrays = [], []
    for d in finite:
        d_rows, d_cols = xn.shape(d.values)
        if d.source != "answer" or d_rows != rows:
            continue
        if (d_rows, d_cols) == (rows, cols):
            terms.append(((d.name,), ("",)))
            arrays.append(values[d.name])
        for w in finite:
            if w.name != d.name and xn.shape(w.values) == (cols, d_cols) and w.source != "answer":
                terms.append(((d.name, w.name), ("", "T")))
                arrays.append(values[d.name] @ values[w.name].T)
    if sum(len(names) == 2 for names, _ in terms) < 2:
        return
    for chosen in _subset_sums(np.stack(arrays).reshape(len(arrays), -1), goal.ravel()):
        picked = [terms[i] for i in chosen]
        if sum(len(names) == 2 for names, _ in picked) < 2:
            continue  # one product and a residual is an affine step, found as such
        yield Recipe("paths", sum((names for names, _ in picked), ()), sum((forms for _, forms in picked), ()),
                     groups=tuple(len(names) for names, _ in picked))


def _subset_sums(stack: np.ndarray, goal: np.ndarray) -> list[tuple[int, ...]]:
    """The sets of 2 … MAX_PATHS distinct rows of stack that sum to goal (floats), by meeting in the middle.

    Sums of one or two rows are filed under their rounded values; a set is found by looking up goal − (a sum of
    one or two rows), so the work grows with the square of the terms, not their fourth power."""
    def rounded(v):
        # Hand values are fractions with small denominators: shifted by an irrational offset, no sum of them sits
        # within float rounding of a bucket's edge.
        return tuple(np.floor(v * 1e6 + 0.2718281828).astype(np.int64))

    count = len(stack)
    halves: dict[tuple, list[tuple[int, ...]]] = {}
    for i in range(count):
        halves.setdefault(rounded(stack[i]), []).append((i,))
    if MAX_PATHS >= 3:
        for i, j in combinations(range(count), 2):
            halves.setdefault(rounded(stack[i] + stack[j]), []).append((i, j))
    found = set()
    firsts = [(i,) for i in range(count)] + (list(combinations(range(count), 2)) if MAX_PATHS >= 4 else [])
    for first in firsts:
        for second in halves.get(rounded(goal - stack[list(first)].sum(axis=0)), ()):
            chosen = tuple(sorted(first + second))
            if len(set(chosen)) == len(chosen) and len(chosen) <= MAX_PATHS:
                found.add(chosen)
    return sorted(found)


def _head_candidates(target: Quantity, finite: list[Quantity], values: dict[str, np.ndarray]):
    """O built from per-head columns: V (an answer) and the weights, stacked or one n×n matrix per head.

    With one matrix per head, each head's block of columns is matched on its own (first sample's floats), so only
    the weights that fit their head are combined, not every ordering of every square answer."""
    rows, cols = xn.shape(target.values)
    goal = values[target.name]
    vs = [q for q in finite if xn.shape(q.values) == (rows, cols) and _computed(q)]
    squares = [q for q in finite if xn.shape(q.values) == (rows, rows) and q.source == "answer"]
    for v in vs:
        for w in finite:
            w_rows, w_cols = xn.shape(w.values)
            if w_cols == rows and w_rows % rows == 0 and 2 <= w_rows // rows <= cols and cols % (w_rows // rows) == 0:
                for op in ("heads", "heads_t"):
                    yield Recipe(op, (w.name, v.name), ("", ""))
        for heads in range(2, min(cols, MAX_HEADS) + 1):  # one weight matrix per head
            if cols % heads or len(squares) < heads:
                continue
            size = cols // heads
            for op in ("heads", "heads_t"):
                fitting = []
                for h in range(heads):
                    block, want = values[v.name][:, h * size:(h + 1) * size], goal[:, h * size:(h + 1) * size]
                    fitting.append([w.name for w in squares if w.name != v.name and fl.close(
                        (values[w.name].T if op == "heads_t" else values[w.name]) @ block, want)])
                for chosen in pairs(*fitting):
                    if len(set(chosen)) == heads:
                        yield Recipe(op, chosen + (v.name,), ("",) * (heads + 1))


class _Stack:
    """Same-shaped quantities of the first sample stacked in one array, to test them all against a remainder at once."""

    def __init__(self, quantities: list[Quantity], values: dict[str, np.ndarray]):
        self.names = [q.name for q in quantities]
        self.array = np.stack([values[n] for n in self.names]) if self.names else None

    def equal_to(self, rest: np.ndarray) -> list[str]:
        """The names whose matrix equals rest (for 1×d rows: rest's row)."""
        if self.array is None:
            return []
        close = (np.abs(self.array - rest) <= fl.ATOL + fl.RTOL * np.abs(rest)).all(axis=(1, 2))
        return [self.names[i] for i in np.flatnonzero(close)]


def _proportional(goal: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Per product of the group (k × rows × cols): goal ≈ c·product for one c ≠ 0 (−∞ entries of goal aside)."""
    keep = np.isfinite(goal)
    g, values = goal[keep], group[:, keep]
    norms = (values * values).sum(axis=1)
    c = (values @ g) / np.where(norms > 0, norms, 1)
    fits = (np.abs(g - c[:, None] * values) <= fl.ATOL + fl.RTOL * np.abs(g)).all(axis=1)
    return fits & (norms > 0) & (np.abs(c) > fl.ATOL) & np.isfinite(values).all(axis=1)


def _may_be_affine(rests: np.ndarray, rows_1xd: "_Stack", same: "_Stack") -> np.ndarray:
    """Per remainder goal − product (P × rows × cols): could a row, a matrix of the pool, or both make it up?

    A cheap, vectorised test over every product at once; _leftovers then names the pieces for the few that pass."""
    hope = np.zeros(len(rests), bool)
    tolerance = fl.ATOL + fl.RTOL * np.abs(rests)
    if rows_1xd.array is not None:  # rest = b in every row
        hope |= (np.abs(rests[:, None] - rows_1xd.array[None]) <= tolerance[:, None]).all(axis=(2, 3)).any(axis=1)
    if same.array is not None:
        after = rests[:, None] - same.array[None]  # P × Z × rows × cols
        zero = (np.abs(after) <= tolerance[:, None]).all(axis=(2, 3))
        hope |= zero.any(axis=1)
        if rests.shape[1] > 1:  # rest − Z the same in every row: Z and a row b
            hope |= (np.abs(after - after[:, :, :1]) <= tolerance[:, None]).all(axis=(2, 3)).any(axis=1)
    return hope


def _leftovers(rest: np.ndarray, rows_1xd: _Stack, same: _Stack) -> list[tuple]:
    """What of the pool makes up the remainder goal − part (first sample's floats): a row b, a matrix Z, or both."""
    if not np.isfinite(rest).all():
        return []
    found = [(b,) for b in _equal_rows(rest, rows_1xd)]
    if same.array is None:
        return found
    after = rest - same.array  # one remainder per Z
    scale = fl.ATOL + fl.RTOL * np.abs(rest)
    zero = (np.abs(after) <= scale).all(axis=(1, 2))
    flat = (np.abs(after - after[:, :1, :]) <= scale).all(axis=(1, 2)) if len(rest) > 1 else np.zeros(len(zero), bool)
    for i in np.flatnonzero(zero | flat):
        if zero[i]:
            found.append((same.names[i],))
        # With a bias of zeros in this draw, Z alone fits and Z plus the bias too (other draws tell them apart).
        found += [(same.names[i], b) for b in _equal_rows(after[i], rows_1xd)]
    return found


def _equal_rows(rest: np.ndarray, rows_1xd: _Stack) -> list[str]:
    """The pool's rows b with rest = b in every row."""
    if rows_1xd.array is None or not fl.close(rest, np.broadcast_to(rest[:1], rest.shape)):
        return []
    return rows_1xd.equal_to(rest[:1])


def _screen(recipe: Recipe, name: str, samples: list[dict[str, np.ndarray]]) -> bool:
    """Whether the recipe could hold on every sample, judged in floats: cheap, and never the last word."""
    try:
        if recipe.op == "recurrence":  # α and β of each sample's own
            for values in samples:
                constants = _solve_floats(recipe, name, [values], nonzero=False)
                if constants is None or not fl.matches(values[name], apply(replace(recipe, constants=constants),
                                                                                 values, fl)):
                    return False
            return True
        if recipe.op in PAIRED:
            constants = _solve_floats(recipe, name, samples)
            if constants is None:
                return False
            trial = replace(recipe, constants=constants)
            return all(fl.matches(values[name], apply(trial, values, fl)) for values in samples)
        if recipe.op in SCALED_OPS:
            first = None
            for values in samples:
                target, value = _compared(recipe, values, name, fl)
                if _both_zero(target, value, fl):
                    continue  # 0 = c·0 for every c: no say in c (a dot product of perpendicular vectors)
                c = fl.ratio(target, value)
                if c is None or (first is not None and not np.isclose(c, first, rtol=fl.RTOL, atol=fl.ATOL)):
                    return False
                first = c if first is None else first
            return first is not None
        return all(fl.matches(values[name], apply(recipe, values, fl)) for values in samples)
    except (xn.Undefined, IndexError, ValueError, ZeroDivisionError):
        return False


def _solve_floats(recipe: Recipe, name: str, samples, nonzero: bool = True) -> tuple[float, float] | None:
    """(a, b) with target ≈ a·X + b·Y on every sample, by least squares; None unless X and Y are independent."""
    xs, ys, ts = [], [], []
    for values in samples:
        x, y = paired(recipe, values, fl)
        if x.shape != values[name].shape or y.shape != x.shape:
            return None
        xs.append(x.ravel()), ys.append(y.ravel()), ts.append(values[name].ravel())
    a = np.column_stack([np.concatenate(xs), np.concatenate(ys)])
    t = np.concatenate(ts)
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(t))):
        return None
    solution, _, rank, _ = np.linalg.lstsq(a, t, rcond=None)
    if rank < 2 or (nonzero and np.any(np.abs(solution) <= fl.ATOL)) or abs(solution[0]) <= fl.ATOL:
        return None
    return float(solution[0]), float(solution[1])


def _fit(recipe: Recipe, name: str, samples: list[dict[str, xn.Matrix]]) -> Recipe | None:
    """The recipe with its constants, when it reproduces the target on every sample; else None."""
    try:
        if recipe.op == "recurrence":  # a row of iterates in every sample, each with its own α and β
            bound = [_bound(recipe, values, name) for values in samples]
            return recipe if all(b is not None and _holds(b, values, name) for b, values in zip(bound, samples)) \
                else None
        if recipe.op in PAIRED:
            constants = _solve_combination(recipe, name, samples)
            if constants is None or _equations(recipe, name, samples) <= 2:
                return None
            fitted = replace(recipe, constants=constants)
        elif recipe.op in SCALED_OPS:
            ratios = []
            for values in samples:
                target, value = _compared(recipe, values, name)
                if _both_zero(target, value):
                    continue
                c = xn.ratio(target, value)
                if c is None:
                    return None
                ratios.append(c)
            if not ratios or any(not xn.same(c, ratios[0]) for c in ratios):
                return None
            if any(f.startswith("c") for f in recipe.forms) and ratios[0] != 1:
                return None  # one head's column scaled by a fitted constant: a coincidence, not a step
            if _equations(recipe, name, samples) <= 1:
                return None
            fitted = replace(recipe, constants=(_snap(ratios[0]),))
        else:
            fitted = recipe
        if _inert(fitted, name, samples):
            return None
        if all(matches(values[name], apply(fitted, values)) for values in samples):
            return fitted
    except (xn.Undefined, IndexError, ValueError, ZeroDivisionError):
        return None
    return None


# Forms that take a part of a matrix: the part may be the same in every sample though the matrix is not.
_PART_FORMS = ("rl", "c", "b")


def _inert(recipe: Recipe, target: str, samples: list[dict[str, xn.Matrix]]) -> bool:
    """The recipe holds on every sample only because an input never did its work there: no evidence of the step.

    |x|, ReLU and its mask on values never negative are the identity (they would credit a sign a student dropped);
    a ReLU backward whose mask never cuts a non-zero entry never used its mask; a part of an answer (its last row,
    a column, one head's block) that is the same in every sample acts as a constant, so the answer it came from
    was never tested (σ's last entry 1 everywhere would credit a wrong σ); inputs that are all one value everywhere
    (or 0) in every sample show nothing of the step (p = z/Σz fits as well as softmax(z) for equal z); a term of a
    sum (x·W + b, a gradient over paths) that is 0 in every sample was never added (L = L_exact + r[:,0]ᵀ·r[:,1]
    where the columns are orthogonal would credit a wrong L from a wrong r); σ(1 − σ) and 1 − tanh² of values that are
    all 0 or ±1 are an indicator, no slope."""
    op, inputs = recipe.op, recipe.inputs

    def entries(name):
        return [xn.to_mpf(x) for values in samples for x in xn.entries(values[name])]

    if op == "abs" and not any(x < 0 for x in entries(inputs[0])):
        return True
    if op == "relu" and not any(x < 0 for x in entries(inputs[0])):
        return True
    if op == "cap" and not any(x > 1 for x in entries(inputs[0])):
        return True  # min(1, x) of values never above 1 is the identity
    if op == "indicator" and not any(x <= 0 for x in entries(inputs[0])):
        return True
    if op in ("logistic_slope", "tanh_slope") and all(x in (-1, 0, 1) for x in entries(inputs[0])):
        return True  # on 0 and ±1 both are 0 or 1, an indicator: 1 − y² is ŷ for a label y = 1 − ŷ
    if op == "relu_back" and not any(xn.to_mpf(x) <= 0 and not xn.is_zero(d) for values in samples
                                     for d, x in zip(xn.entries(values[inputs[0]]), xn.entries(values[inputs[1]]))):
        return True
    for name, form in zip(inputs, recipe.forms):
        if form.startswith(_PART_FORMS):
            parts = [take(values, name, form) for values in samples]
            if all(matches(part, parts[0]) for part in parts[1:]):
                return True
    others = [name for name in inputs if name != target]
    if others and all(xn.is_trivial(values[name]) for name in others for values in samples):
        return True  # one value everywhere in every sample: any normalisation of equal scores is uniform
    if op in ("affine", "paths"):
        terms = [_terms(recipe, values) for values in samples]
        if any(all(xn.is_zero(x) for sample in terms for x in xn.entries(sample[k])) for k in range(len(terms[0]))):
            return True  # a term that is 0 in every sample: any product that vanishes there would fit as well
    return False


def _terms(recipe: Recipe, values: dict) -> list:
    """The summed terms of an affine map (x·W, then each row or matrix added) or of a sum over paths."""
    ins = [take(values, n, f) for n, f in zip(recipe.inputs, recipe.forms)]
    if recipe.op == "affine":
        return [xn.matmul(ins[0], ins[1])] + ins[2:]
    terms, at = [], 0
    for size in recipe.groups:
        terms.append(xn.matmul(ins[at], ins[at + 1]) if size == 2 else ins[at])
        at += size
    return terms


def _compared(recipe: Recipe, values: dict, name: str, B=xn) -> tuple:
    """(target, the recipe's value before its constant): what a scaled op's constant is fitted between.
    A causal mask keeps only the entries on and below the diagonal; through masked weights those above are 0."""
    value, target = core(recipe, values, B), values[name]
    if recipe.zeroed:
        value = B.zero_mask(value)
    if recipe.masked:
        value, target = B.lower_part(value), B.lower_part(target)
    return target, value


def _both_zero(target, value, B=xn) -> bool:
    """The target and the recipe's value are 0 everywhere: the sample fits c·value for every constant c."""
    if B is xn:
        return all(xn.is_zero(x) for x in chain(xn.entries(target), xn.entries(value)))
    return bool(np.all(np.abs(target) <= fl.ATOL) and np.all(np.abs(value) <= fl.ATOL))


def _equations(recipe: Recipe, name: str, samples) -> int:
    """How many different equations the samples give for the recipe's constants: its value and the target, entry by
    entry (x, y and the target for a·X + b·Y), counted once however many draws repeat them and never where all are 0.

    Constants fitted to as many equations as they have meet them whatever the step: a ∈ {1, 2} and g₀² ∈ {1, 4} in
    every draw fit 7a/2 − 3g₀²/2 to the limit, so a recipe needs one more equation than constants."""
    rows = set()
    for values in samples:
        if recipe.op in PAIRED:
            x, y = paired(recipe, values)
            columns = (xn.entries(x), xn.entries(y), xn.entries(values[name]))
        else:
            target, value = _compared(recipe, values, name)
            columns = (xn.entries(value), xn.entries(target))
        for row in zip(*columns):
            if not all(xn.is_zero(v) for v in row):
                rows.add(tuple(xn.CTX.nstr(xn.to_mpf(v), 25) for v in row))
    return len(rows)


def _solve_combination(recipe: Recipe, name: str, samples, nonzero: bool = True) -> tuple | None:
    """(a, b) with target = a·X + b·Y on every entry of every sample (a non-zero, and b unless a zero b is allowed),
    from two independent entries."""
    rows = []
    for values in samples:
        x, y = paired(recipe, values)
        rows += list(zip(xn.entries(x), xn.entries(y), xn.entries(values[name])))
    if any(xn.is_neg_inf(v) for row in rows for v in row):
        return None
    for i, (x1, y1, r1) in enumerate(rows):
        for x2, y2, r2 in rows[i + 1:]:
            det = xn.sub(xn.mul(x1, y2), xn.mul(x2, y1))
            if not xn.is_zero(det):
                a = xn.div(xn.sub(xn.mul(r1, y2), xn.mul(r2, y1)), det)
                b = xn.div(xn.sub(xn.mul(x1, r2), xn.mul(x2, r1)), det)
                if xn.is_zero(a) or (nonzero and xn.is_zero(b)):
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
