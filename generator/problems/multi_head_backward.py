"""Backward through multi-head attention on its own: W_O, the concatenation, its split per head, each head's V and A."""

from __future__ import annotations

import itertools
from fractions import Fraction
from functools import cache

import numpy as np
from sympy import ImmutableMatrix, Rational

from generator.core.forward import plain_product, plain_rows, plain_transpose
from generator.core.problem import Bounds, Choice, Contract, Expansion, Part, Problem, Quantity, Step, Term, Tex, matrix
from generator.core.registry import Option
from generator.core.rng import Rng
from generator.core.slips import plain_slip_hidden
from generator.core.worked import dot_expansion, entry_label, product_step, shape_text
from generator.documents.render import factor_tex, matrix_tex

TITLE = "Backward through multi-head attention"
OPTIONS = [
    Option("d_model", ("2", "4"), "2", "width of the output O = H·W_O (each of the 2 heads has width d_head = 1)"),
    Option("softmax", ("yes", "no"), "yes", "yes: also take head 1 back through its softmax to dS_1"),
]
N_TOKENS, HEADS = 2, 2
# Attention rows of two tokens, one family per head: halves and quarters, or halves and thirds. A head never mixes
# thirds and quarters, so its gradients stay in quarters or sixths (dS_1 in 16ths or 9ths), never in twelfths.
WEIGHT_FAMILIES = tuple(tuple((Fraction(a, d), Fraction(d - a, d)) for a, d in family)
                        for family in (((1, 2), (1, 4), (3, 4)), ((1, 2), (1, 3), (2, 3))))
LIMIT = 2  # V, W_O and dO are whole numbers in −2…2
DH_LIMIT = 4  # |dH| ≤ 4
DENOMINATOR_LIMIT = 16  # dS in 16ths at worst (a row (1/4, 3/4): A[i,0]·A[i,1] = 3/16)
VALUE_LIMIT, NUMERATOR_LIMIT = 8, 24
CROSS_OPTIONS = (
    ("no", "no: the heads meet only in the concatenation and the output projection"),
    ("yes_wo", "yes: the output projection mixes the heads"),
    ("yes_softmax", "yes: the softmax couples the weights of both heads"),
)


def _head_products() -> dict:
    """A slip in each product on the sheet (transpose, order, a transposed answer) gives the same answer: the contract's
    product rules (slips.product_rule), checked in plain Fractions, as sympy's would cost most of a draw's time."""
    factors = {
        "dW_O = Hᵀ·dO": lambda p: (p.given_value("H").T, p.given_value("dO")),
        "dH = dO·W_Oᵀ": lambda p: (p.given_value("dO"), p.given_value("W_O").T),
        **{f"dV_{h} = A_{h}ᵀ·dH_{h}": (lambda h: lambda p: (p.given_value(f"A{h}").T, p.answer("dH")[:, h - 1]))(h)
           for h in (1, 2)},
        **{f"dA_{h} = dH_{h}·V_{h}ᵀ": (lambda h: lambda p: (p.answer("dH")[:, h - 1], p.given_value(f"V{h}").T))(h)
           for h in (1, 2)},
    }
    return {f"a slip in {label} (transpose, order) gives the same answer":
            (lambda f: lambda p: plain_slip_hidden(*(plain_rows(m) for m in f(p))))(f) for label, f in factors.items()}


def _weighted_means(p: Problem) -> list:
    a, da = p.given_value("A1"), p.answer("dA1")
    return [sum((a[i, j] * da[i, j] for j in range(a.cols)), Rational(0)) for i in range(a.rows)]


CONTRACT = Contract(
    given=Bounds(8, 4, Rational(4)),  # H = A·V: fractions such as 7/4; d_model = 4 is a stated fact
    intermediate=Bounds(64, DENOMINATOR_LIMIT, Rational(16)),  # products' terms too: a term such as 3/4·(−8)
    answer=Bounds(NUMERATOR_LIMIT, DENOMINATOR_LIMIT, Rational(VALUE_LIMIT)),
    forbidden={
        "two heads have the same weights (they could be swapped)": lambda p: p.given_value("A1") == p.given_value("A2"),
        # A symmetric A hides dV = A·dH for Aᵀ·dH.
        "a head's weights are symmetric": lambda p: any(p.given_value(f"A{h}") == p.given_value(f"A{h}").T for h in (1, 2)),
        "a head's two values are equal (dA's columns would be equal, dS 0)": lambda p: any(
            len(set(p.given_value(f"V{h}"))) < N_TOKENS for h in (1, 2)),
        "the two heads' values are equal": lambda p: p.given_value("V1") == p.given_value("V2"),
        "W_O has a zero row (a head with no say in the output)": lambda p: any(
            not any(p.given_value("W_O").row(i)) for i in range(HEADS)),
        "dO has a zero row": lambda p: any(not any(p.given_value("dO").row(i)) for i in range(N_TOKENS)),
        "an entry of dH is 0 (a head's token gets no gradient)": lambda p: 0 in p.answer("dH"),
        "dA is symmetric (a transposed answer looks right)": lambda p: any(
            p.answer(f"dA{h}") == p.answer(f"dA{h}").T for h in (1, 2)),
        "dW_O is all zeros": lambda p: not any(p.answer("dW_O")),
        # A head's weights can cancel its gradient (equal rows against dH_h = (2, −2)): a blank of zeros teaches nothing.
        "a head's dV is all zeros": lambda p: any(not any(p.answer(f"dV{h}")) for h in (1, 2)),
        "a row's weighted mean ḡ is 0 (dropping it gives the same dS)": lambda p: 0 in _weighted_means(p),
        **_head_products(),
    },
)


def _small(m, limit=VALUE_LIMIT) -> bool:
    return all(abs(v) <= limit and abs(v.numerator) <= NUMERATOR_LIMIT and v.denominator <= DENOMINATOR_LIMIT
               for row in m for v in row)


def _column(m: list[list], h: int) -> list[list]:
    return [[row[h]] for row in m]


def _softmax_back(a: list[list[Fraction]], da: list[list[Fraction]]) -> tuple[list[Fraction], list[list[Fraction]]]:
    means = [sum((x * d for x, d in zip(ra, rd)), Fraction(0)) for ra, rd in zip(a, da)]
    return means, [[x * (d - g) for x, d in zip(ra, rd)] for ra, rd, g in zip(a, da, means)]


@cache
def _nonzero_rows(d_model: int) -> tuple[tuple[int, ...], ...]:
    return tuple(row for row in itertools.product(range(-LIMIT, LIMIT + 1), repeat=d_model) if any(row))


@cache
def _rows_array(d_model: int) -> np.ndarray:
    return np.array(_nonzero_rows(d_model), dtype=np.int64)


@cache
def _clean_mask(w: tuple[int, ...]) -> np.ndarray:
    """Which rows r of _nonzero_rows have r·w ≠ 0 and |r·w| ≤ DH_LIMIT (whole numbers: numpy's integers are exact)."""
    dots = np.abs(_rows_array(len(w)) @ np.array(w, dtype=np.int64))
    return (dots > 0) & (dots <= DH_LIMIT)


def _upstream_rows(w_o: tuple[tuple[int, ...], ...]) -> list[tuple[int, ...]]:
    """Rows of dO whose row of dH = dO·W_Oᵀ has no 0 and stays within ±DH_LIMIT."""
    candidates = _nonzero_rows(len(w_o[0]))
    keep = np.logical_and.reduce([_clean_mask(w) for w in w_o])
    return [candidates[i] for i in np.flatnonzero(keep)]


def _draw(rng: Rng, d_model: int) -> dict:
    """Every given and the plain backward pass, redrawn until every value is small and no slip hides."""
    values_pool = [v for v in range(-LIMIT, LIMIT + 1) if v]
    while True:
        # W_O and dO first, in whole numbers: dH = dO·W_Oᵀ must be small with no 0 before anything else is drawn.
        # dO's rows are drawn among those that give it (a row of dO is one row of dH): the same as redrawing dO
        # until dH is clean, with far fewer draws.
        w_o = tuple(rng.choice(_nonzero_rows(d_model)) for _ in range(HEADS))
        rows = _upstream_rows(w_o)
        if not rows:
            continue
        d_o = [list(rng.choice(rows)) for _ in range(N_TOKENS)]
        w_o = [list(row) for row in w_o]
        d_h = [[sum(a * b for a, b in zip(row, w)) for w in w_o] for row in d_o]
        families = [rng.choice(WEIGHT_FAMILIES) for _ in range(HEADS)]
        weights = [[list(rng.choice(family)) for _ in range(N_TOKENS)] for family in families]
        if weights[0] == weights[1] or any(w[0][1] == w[1][0] for w in weights):
            continue
        v = [[[rng.choice(values_pool)] for _ in range(N_TOKENS)] for _ in range(HEADS)]
        if any(col[0] == col[1] for col in v) or v[0] == v[1]:
            continue
        heads_out = [plain_product(weights[h], v[h]) for h in range(HEADS)]
        h_cat = [[heads_out[0][i][0], heads_out[1][i][0]] for i in range(N_TOKENS)]
        d_wo = plain_product(plain_transpose(h_cat), d_o)
        if not any(x for row in d_wo for x in row):
            continue
        d_v = [plain_product(plain_transpose(weights[h]), _column(d_h, h)) for h in range(HEADS)]
        d_a = [plain_product(_column(d_h, h), plain_transpose(v[h])) for h in range(HEADS)]
        if any(m == plain_transpose(m) for m in d_a) or any(not any(row[0] for row in m) for m in d_v):
            continue
        means, d_s = _softmax_back(weights[0], d_a[0])
        if 0 in means:
            continue
        if not all(_small(m) for m in (h_cat, d_wo, d_h, *d_v, *d_a, d_s, [means])):
            continue
        products = [(plain_transpose(h_cat), d_o), (d_o, plain_transpose(w_o))]
        products += [(plain_transpose(weights[h]), _column(d_h, h)) for h in range(HEADS)]
        products += [(_column(d_h, h), plain_transpose(v[h])) for h in range(HEADS)]
        if any(plain_slip_hidden(a, b) for a, b in products):
            continue
        return {"A": weights, "V": v, "H": h_cat, "W_O": w_o, "dO": d_o, "dH": d_h, "dW_O": d_wo, "dV": d_v, "dA": d_a,
                "means": means, "dS": d_s}


def _split_step(dh: ImmutableMatrix, h: int) -> Step:
    """dH_h: head h's own column of dH (d_head = 1)."""
    column = dh[:, h - 1]
    return Step(text=Tex(f"Head {h} produced column {h - 1} of $H$, so its output's gradient is column {h - 1} of $dH$."),
                formula=Tex(f"dH_{h} = dH[:,{h - 1}]"),
                lines=(Tex(f"dH_{h} = {matrix_tex(column)}"),))


def _head_part(given: dict, q: dict, h: int) -> Part:
    """Head h: the split, dV_h = A_hᵀ·dH_h and dA_h = dH_h·V_hᵀ."""
    a, v, dh = given[f"A{h}"], given[f"V{h}"], q["dH"].value[:, h - 1]
    return Part(
        Tex(f"Head {h}: split off its gradient $dH_{h}$ (its column of $dH$), then backpropagate through "
            f"$H_{h} = A_{h}\\,V_{h}$: compute $dV_{h} = A_{h}^{{\\mathsf T}}\\,dH_{h}$ and $dA_{h} = dH_{h}\\,V_{h}^{{\\mathsf T}}$."),
        (q[f"dV{h}"], q[f"dA{h}"]),
        (_split_step(q["dH"].value, h),
         product_step(Tex(f"Row $i$ of $A_{h}^{{\\mathsf T}}$ (column $i$ of $A_{h}$) times $dH_{h}$: value $i$ collects the "
                          f"gradient of every output row that used it, weighted by $A_{h}$."),
                      a.T, dh, Tex(f"dV_{h} = A_{h}^{{\\mathsf T}}\\,dH_{h}"), q[f"dV{h}"],
                      checks=(Tex(f"\\text{{Its shape }} {shape_text(v)} \\text{{ is the shape of }} V_{h}."),)),
         product_step(Tex(f"Entry $[i,j]$ is $dH_{h}[i]$ times $V_{h}[j]$: weight $A_{h}[i,j]$ scaled value $j$ into output $i$."),
                      dh, v.T, Tex(f"dA_{h} = dH_{h}\\,V_{h}^{{\\mathsf T}}"), q[f"dA{h}"],
                      checks=(Tex(f"\\text{{Its shape }} {shape_text(a)} \\text{{ is the shape of }} A_{h}."),))))


def _cross_part(q: dict) -> Part:
    """The understanding check: head 1's gradient never passes through head 2's weights."""
    return Part(
        Tex(r"Does head 1 get any gradient through head 2's weights $A_2$ (or values $V_2$)? Choose the answer with the "
            r"right reason."),
        (q["cross"],),
        (Step(text=Tex(r"$dH = dO\,W_O^{\mathsf T}$ gives every column of $dH$ at once; from there head 1 uses only column 0 "
                       r"($dV_1$ and $dA_1$ come from $dH_1$, $A_1$ and $V_1$ alone). $A_2$ and $V_2$ never appear in head 1's "
                       r"formulas: the heads meet only in the concatenation $H$ and in $W_O$, and each softmax normalizes "
                       r"its own head's rows."),
              checks=(Tex(r"\text{Changing } A_2 \text{ or } V_2 \text{ leaves } dH_1,\ dV_1 \text{ and } dA_1 "
                          r"\text{ unchanged.}"),)),))


def _softmax_part(given: dict, q: dict, means: list) -> Part:
    """Head 1 back through its softmax: dS_1 = A_1 ⊙ (dA_1 − ḡ) row by row."""
    a, da, ds = given["A1"], q["dA1"].value, q["dS1"].value
    mean_step = Step(
        text=Tex(r"In each row, the upstream gradient averaged with the weights."),
        formula=Tex(r"\bar g_i = \sum_j A_1[i,j]\,dA_1[i,j]"),
        expansions=tuple(dot_expansion(Tex(f"\\bar g_{i}"), list(a.row(i)), list(da.row(i))) for i in range(a.rows)))
    entries = tuple(Expansion(entry_label("dS_1", i, j), (Term((a[i, j], da[i, j])), Term((a[i, j], means[i]), sign=-1)),
                              ds[i, j]) for i in range(a.rows) for j in range(a.cols))
    checks = tuple(Tex(f"\\text{{row {i}: }} " + " + ".join(factor_tex(x) for x in ds.row(i)) + " = 0")
                   for i in range(ds.rows))
    return Part(
        Tex(r"Take head 1 back through its softmax $A_1 = \operatorname{softmax}(S_1)$ (row by row): with "
            r"$\bar g_i = \sum_j A_1[i,j]\,dA_1[i,j]$, compute $dS_1[i,j] = A_1[i,j]\,\bigl(dA_1[i,j] - \bar g_i\bigr)$."),
        (q["dS1"],),
        (mean_step,
         Step(text=Tex(r"Each score's gradient is its weight times how far its $dA_1$ is above the row's average."),
              formula=Tex(r"dS_1[i,j] = A_1[i,j]\,\bigl(dA_1[i,j] - \bar g_i\bigr)"), expansions=entries, result=q["dS1"],
              checks=checks + (Tex(r"\text{Every row sums to 0: adding one number to a row of scores changes no weight.}"),))))


def generate(rng: Rng, options: dict[str, str]) -> Problem:
    """Draw two heads' weights and values, W_O and dO; work backward to each head's dV and dA (and dS_1)."""
    d = _draw(rng, int(options["d_model"]))
    given = {"A1": matrix(d["A"][0]), "A2": matrix(d["A"][1]), "V1": matrix(d["V"][0]), "V2": matrix(d["V"][1]),
             "H": matrix(d["H"]), "W_O": matrix(d["W_O"]), "dO": matrix(d["dO"])}
    symbols = {"A1": "A_1", "A2": "A_2", "V1": "V_1", "V2": "V_2", "H": "H", "W_O": "W_O", "dO": "dO"}
    q = {name: Quantity(name, Tex(symbol), matrix(d[key]) if index is None else matrix(d[key][index]))
         for name, symbol, key, index in (("dW_O", "dW_O", "dW_O", None), ("dH", "dH", "dH", None),
                                          ("dV1", "dV_1", "dV", 0), ("dV2", "dV_2", "dV", 1),
                                          ("dA1", "dA_1", "dA", 0), ("dA2", "dA_2", "dA", 1), ("dS1", "dS_1", "dS", None))}
    q["cross"] = Quantity("cross", Tex(r"\text{answer}"), Choice("no", CROSS_OPTIONS))
    h, w_o, d_o = given["H"], given["W_O"], given["dO"]
    parts = [
        Part(Tex(r"Backpropagate through the output projection $O = H\,W_O$ to its weights: compute "
                 r"$dW_O = H^{\mathsf T}\,dO$."), (q["dW_O"],),
             (product_step(Tex(r"Row $i$ of $H^{\mathsf T}$ (column $i$ of $H$, head $i+1$'s output) times column $j$ of $dO$."),
                           h.T, d_o, Tex(r"dW_O = H^{\mathsf T}\,dO"), q["dW_O"], expand="row",
                           checks=(Tex(f"\\text{{Its shape }} {shape_text(w_o)} \\text{{ is the shape of }} W_O."),)),)),
        Part(Tex(r"Backpropagate to the concatenation: compute $dH = dO\,W_O^{\mathsf T}$."), (q["dH"],),
             (product_step(Tex(r"Row $i$ of $dO$ dotted with row $j$ of $W_O$."), d_o, w_o.T, Tex(r"dH = dO\,W_O^{\mathsf T}"),
                           q["dH"], checks=(Tex(f"\\text{{Its shape }} {shape_text(h)} \\text{{ is the shape of }} H"
                                                r"\text{; column } h \text{ belongs to head } h+1."),)),)),
        _head_part(given, q, 1),
        _head_part(given, q, 2),
        _cross_part(q),
    ]
    if options["softmax"] == "yes":
        parts.append(_softmax_part(given, q, [Rational(m.numerator, m.denominator) for m in d["means"]]))
    return Problem.draft(given=[Quantity(name, Tex(symbols[name]), value) for name, value in given.items()], parts=parts,
                         facts={"d_model": Rational(int(options["d_model"]))})
