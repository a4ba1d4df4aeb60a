"""Draws that teach: over 1,000 seeds per type, each classic slip gives a visibly different answer and no choice's
answer is fixed, checked with plain arithmetic apart from the types' own forbidden predicates."""

from __future__ import annotations

import math
from collections import Counter
from fractions import Fraction

import pytest
import sympy
from sympy import ImmutableMatrix, Rational

from generator.core import slips
from generator.core.registry import make_problem, problem_types
from generator.documents.sheet import problem_seed

from .draws import by_type, draws

SEEDS = 1000


def _problems(type_name: str, seeds: int = SEEDS, **fixed):
    """(options, problem) for the contract's first `seeds` draws (matching `fixed`): every option set takes its turn."""
    return draws(type_name, seeds, **fixed)


def _rows(m) -> list[list[Fraction]]:
    """A sympy matrix as rows of plain Fractions (−∞ kept as None)."""
    return [[None if v == -sympy.oo else Fraction(int(v.p), int(v.q)) for v in m.row(i)] for i in range(m.rows)]


def _mul(a: list[list], b: list[list]) -> list[list]:
    return [[sum((x * y for x, y in zip(row, col)), Fraction(0)) for col in zip(*b)] for row in a]


def _t(a: list[list]) -> list[list]:
    return [list(col) for col in zip(*a)]


# ----- the shared helpers ----------------------------------------------------------------------------------------


def test_product_slips_are_the_shapes_that_fit():
    a, b = ImmutableMatrix([[1, 2], [3, 4]]), ImmutableMatrix([[0, 1], [1, 0]])
    assert set(slips.product_slips(a, b)) == {"A·Bᵀ", "Aᵀ·B", "B·A", "(A·B)ᵀ"}
    # B symmetric: A·Bᵀ is A·B, so that slip cannot be seen.
    assert slips.hidden_product_slips(a, b) == ["A·Bᵀ"]
    row, m = ImmutableMatrix([[1, 2]]), ImmutableMatrix([[1, 2], [3, 4]])
    assert set(slips.product_slips(row, m)) == {"A·Bᵀ"}  # the others have the wrong shape
    assert slips.hidden_product_slips(row, m) == []


def test_softmax_axis_agrees_with_floats():
    """The exact test (sums of e^q compared as multisets) against float softmax both ways."""
    def floats(s):
        e = [[0.0 if v == -sympy.oo else math.exp(float(v)) for v in s.row(i)] for i in range(s.rows)]
        rows = [[x / sum(r) for x in r] for r in e]
        cols = [[e[i][j] / sum(e[k][j] for k in range(s.rows)) for j in range(s.cols)] for i in range(s.rows)]
        return all(math.isclose(x, y, abs_tol=1e-12) for r, c in zip(rows, cols) for x, y in zip(r, c))

    cases = [ImmutableMatrix([[1, 2], [2, 1]]), ImmutableMatrix([[0, 1], [1, 0]]), ImmutableMatrix([[1, 2], [3, 4]]),
             ImmutableMatrix([[Rational(1, 2), 1], [1, Rational(1, 2)]]), ImmutableMatrix([[2, -sympy.oo], [1, 2]]),
             ImmutableMatrix([[0, 0], [0, 0]]), ImmutableMatrix([[1, 2, 3], [2, 3, 1], [3, 1, 2]])]
    for s in cases:
        assert slips.softmax_axis_hidden(s) == floats(s), s


# ----- the brief's cases -----------------------------------------------------------------------------------------


def test_attention_scores_keys_differ_and_no_query_scores_alike():
    for options, p in _problems("attention_scores"):
        q, k = _rows(p.given_value("Q")), _rows(p.given_value("K"))
        assert len({tuple(r) for r in k}) == len(k), options
        raw = _mul(q, _t(k))
        assert raw != _t(raw), options  # K·Qᵀ (the scores transposed) must differ
        causal = options["mask"] == "causal"
        for i, row in enumerate(raw):
            visible = row[: i + 1] if causal else row
            assert len(visible) == 1 or len(set(visible)) > 1, (options, raw)
        if options["d_k"] == "4":
            assert any(raw_v != 0 for row in raw for raw_v in row)  # so the missing /2 shows


def test_dot_product_angles_are_drawn_slot_by_slot():
    multisets, slots = Counter(), Counter()
    for options, p in _problems("dot_product"):
        a = list(p.given_value("a"))
        classes = []
        for name in "bcd":
            v = list(p.given_value(name))
            dot = a[0] * v[0] + a[1] * v[1]
            assert a[0] * v[1] + a[1] * v[0] != dot, (options, a, v)  # crossed pairs give another number
            classes.append("acute" if dot > 0 else "right" if dot == 0 else "obtuse")
        assert [part.answers[1].value.value for part in p.parts] == classes
        multisets[tuple(sorted(classes))] += 1
        slots.update(enumerate(classes))
    # Every class in every slot, and no fixed mix: the third answer never follows from the first two.
    assert all(slots[(i, c)] > 200 for i in range(3) for c in ("acute", "right", "obtuse")), slots
    assert len(multisets) >= 9 and max(multisets.values()) < SEEDS / 3, multisets


def test_lr_experiment_verdict_is_drawn_and_true():
    verdicts = Counter()
    for options, p in _problems("lr_experiment"):
        a, c, w0 = (Fraction(str(p.given_value(n))) for n in ("a", "c", "w0"))
        runs = []
        for name in ("eta1", "eta2"):
            eta, w = Fraction(str(p.facts[name])), w0
            for _ in range(int(options["steps"])):
                w -= eta * a * (w - c)
            runs.append(abs(w - c) > abs(w0 - c))
            assert (eta > 2 / a) == runs[-1]
        verdict = {(True, False): "eta1", (False, True): "eta2", (True, True): "both", (False, False): "neither"}[tuple(runs)]
        assert p.answer("diverges").value == verdict
        verdicts[(options["steps"], verdict)] += 1
    assert all(verdicts[(s, v)] > 60 for s in ("2", "3") for v in ("eta1", "eta2", "both", "neither")), verdicts


def test_grad_clip_asks_the_comparison_and_draws_both_cases():
    cases = Counter()
    for options, p in _problems("grad_clip"):
        c = Fraction(options["max_norm"])
        g = [Fraction(str(v)) for name in ("g_W", "g_b") for v in p.given_value(name)]
        square = sum(v * v for v in g)
        clips = square > c * c
        assert square != c * c  # at ‖g‖ = c both readings of "exceeds" agree
        assert p.answer("exceeds").value == ("yes" if clips else "no")
        s = Fraction(str(p.answer("scale")))
        assert s ** 2 == (c * c / square if clips else 1)
        cases[(options["max_norm"], clips)] += 1
        assert not any("the norm exceeds" in part.prompt for part in p.parts)  # a question, not a given
    assert all(cases[(m, k)] > 100 for m in ("1", "2", "5") for k in (True, False)), cases


SIMPLE = [Fraction(1, 4), Fraction(1, 3), Fraction(1, 2), Fraction(2, 3), Fraction(3, 4)]


@pytest.mark.parametrize("type_name", by_type(["example1", "example2", "example3"]))
def test_the_forward_pass_shows_every_slip(type_name):
    """Example 1's draw, in every chain built on it: no transposed or swapped factor, no symmetric scores, the first
    row's softmax differs from the last's, and the Given weights are what the sheet says they are."""
    seeds = SEEDS if type_name == "example1" else 300  # the chains take ~25 ms each; their draw is example1's
    for options, p in _problems(type_name, seeds):
        x, w_q, w_k, w_v = (_rows(p.answer("X")), *(_rows(p.given_value(n)) for n in ("W_Q", "W_K", "W_V")))
        assert w_q != w_k
        assert w_v[0][0] * w_v[1][1] != w_v[0][1] * w_v[1][0]  # invertible: value rows distinct, none zero
        v = _mul(x, w_v)
        # The book's input A B (data=book) is X = I by the book's design: there a slip of X cannot show, by any draw.
        book = options.get("data") == "book"
        assert not book or x == [[1, 0], [0, 1]]
        assert v not in ((_mul(x, _t(w_v)), _t(v)) if book else (_mul(x, _t(w_v)), _mul(_t(x), w_v), _mul(w_v, x), _t(v)))
        for w in (w_q, w_k):
            assert book or _mul(x, w) != _mul(_t(x), w)
        s = _mul(_mul(x, w_q), _t(_mul(x, w_k)))
        assert s != _t(s)
        assert s[0][0] - s[0][1] != s[1][0] - s[1][1]
        # The Given weights: of the five simple fractions, the nearest to each true weight (floats are plenty here).
        root = 2 if options["d_k"] == "4" else 1
        a0 = 1 / (1 + math.exp(float(s[1][1] - s[1][0]) / root))
        given = [Fraction(str(w)) for w in p.facts["given_weights"]]
        assert given[0] == min(SIMPLE, key=lambda f: abs(float(f) - a0))
        assert given[1] == 1 - given[0] == min(SIMPLE, key=lambda f: abs(float(f) - (1 - a0)))
        assert _mul([given], v) != _mul([given], _t(v))
        if type_name == "example3":
            da = [Fraction(str(d)) for d in p.answer("da")]
            assert sum(g * d for g, d in zip(given, da)) != 0  # dropping ḡ from dS would show
            dv, dw_v = _rows(p.answer("dV")), _rows(p.answer("dW_V"))
            if book:  # X = I: dW_V = dV whatever is done to X; only a transposed dV can show
                assert dw_v == dv and dv != _t(dv)
            else:
                assert dw_v not in (_mul(_t(x), _t(dv)), _mul(x, dv), _mul(dv, _t(x)), _t(dw_v))


@pytest.mark.xdist_group("example2")  # the contract's draws (tests/draws.py)
def test_example2_likeliest_wrong_token_is_drawn_both_ways():
    """One SGD step always raises the target's probability, so example2 asks which wrong token is now the likeliest:
    each wrong logit falls by η‖c‖²·p̃_j, so the prediction before the step falls at least as far as any other
    and may or may not keep its place. Over 1,000 seeds both happen in at least 20% of each option set's draws, with no tie for the answer."""
    cases, per_set = Counter(), Counter()
    for options, p in _problems("example2"):
        z, z_new = (_rows(p.answer(n))[0] for n in ("z", "z_new"))
        target = int(p.facts["target_index"])
        wrong = [j for j in range(4) if j != target]
        best = max(wrong, key=lambda j: z_new[j])
        assert [z_new[j] for j in wrong].count(z_new[best]) == 1, (options, z_new)
        choice = p.answer("likeliest_wrong")
        assert choice.value == "ABCD"[best] and choice.keys == tuple("ABCD"[j] for j in wrong)
        stays = best == z.index(max(z))  # the prediction before the step (never the target) kept its place
        key = tuple(sorted(options.items()))
        cases[(key, stays)] += 1
        per_set[key] += 1
    assert all(cases[(key, stays)] >= per_set[key] / 5 for key in per_set for stays in (True, False)), cases


def test_the_given_weights_sentence_is_true():
    """The Given box names the set the weights come from, and no longer calls them 'the fractions nearest to a'."""
    for _, p in _problems("example1", 20):
        given = next(part.given for part in p.parts if part.given)
        assert "nearest to $a$" in given and "the ones nearest" in given
        assert all(f"\\frac{{{w.numerator}}}{{{w.denominator}}}" in given for w in SIMPLE)


@pytest.mark.xdist_group("example6")
def test_example6_is_causal_and_shows_its_slips():
    for _, p in _problems("example6"):
        a, v, x = (_rows(p.given_value(n)) for n in ("A", "V", "X"))
        assert a[0] == [1, 0]  # the first token sees only itself: the last token is the one that predicts
        o = _mul(a, v)
        assert _mul(_t(a), v) != o
        assert all(any(row) for row in x)  # forgetting the residual would show for every token
        for n in ("b1", "b2"):
            assert any(_rows(p.given_value(n))[0])
        for gamma, beta in (("gamma1", "beta1"), ("gamma2", "beta2")):
            assert any(g != 1 for g in _rows(p.given_value(gamma))[0]) or any(_rows(p.given_value(beta))[0])
        h, r = _rows(p.answer("h")), _rows(p.answer("r"))
        assert h != _t(h) and r != _t(r)
        for row in _rows(p.answer("r1")) + [_rows(p.answer("r2"))[1]]:  # the rows each LayerNorm normalises
            mu = sum(row) / len(row)
            assert mu != 0 and sum((v - mu) ** 2 for v in row) / len(row) != 1


def test_linear_map_rotations_are_what_the_option_says():
    """The option's help names 90° and 270° (and the 3-4-5 angles); a transposed rotation matrix always shows."""
    help_text = next(o.help for o in problem_types()["linear_map"].options if o.name == "kind")
    assert "90° or 270°" in help_text and "quarter" not in help_text
    for options, p in _problems("linear_map", kind="rotation"):
        m, v = _rows(p.answer("M")), _rows(p.given_value("v"))
        assert (m[0][0], m[1][0]) not in ((1, 0), (-1, 0))  # no 0° or 180°: M = ±I is its own transpose
        assert _mul(_t(m), v) != _mul(m, v)


# ----- every product on a sheet: a transposed or swapped factor, or a transposed answer, gives another answer ------


def _slip_values(a, b, answer):
    """What A·B (+ whatever `answer` adds) becomes under each slip whose shape matches, computed here from scratch."""
    extra = [[x - y for x, y in zip(r, s)] for r, s in zip(answer, _mul(a, b))]
    shape = (len(answer), len(answer[0]))
    scalar = (len(a), len(a[0])) == (1, 1) or (len(b), len(b[0])) == (1, 1)
    found = []
    for left, right, allowed in ((a, _t(b), len(b) * len(b[0]) > 1), (_t(a), b, len(a) * len(a[0]) > 1), (b, a, not scalar)):
        if allowed and len(left[0]) == len(right):
            value = _mul(left, right)
            if (len(value), len(value[0])) == shape:
                found.append([[x + y for x, y in zip(r, s)] for r, s in zip(value, extra)])
    if shape[0] == shape[1] > 1:
        found.append(_t(answer))
    return found


def _given(p, name):
    return _rows(p.given_value(name))


def _ans(p, name):
    return _rows(p.answer(name))


PRODUCTS = {
    "matmul": lambda p: [(_given(p, "A"), _rows(p.given[1].value), _rows(p.parts[0].answers[0].value))]
    + ([(_rows(p.given[1].value), _given(p, "A"), _ans(p, "D"))] if len(p.parts) > 1 else []),
    "transpose": lambda p: [(_given(p, "Q"), _t(_given(p, "K")), _ans(p, "S"))],
    "matmul_gradient": lambda p: [(_given(p, "dC"), _t(_given(p, "B")), _ans(p, "dA")),
                                  (_t(_given(p, "A")), _given(p, "dC"), _ans(p, "dB"))],
    "qkv_projection": lambda p: [(_given(p, "X"), _given(p, f"W_{n}"), _ans(p, n)) for n in "QKV"],
    "attention_output": lambda p: [(_given(p, "A"), _given(p, "V"), _ans(p, "O"))],
    "multi_head": lambda p: [(_ans(p, "H"), _given(p, "W_O"), _ans(p, "O"))],
    "ffn": lambda p: [(_given(p, "x"), _given(p, "W1"), _ans(p, "h")), (_ans(p, "r"), _given(p, "W2"), _ans(p, "f"))],
    "ffn_gelu": lambda p: [(_given(p, "x"), _given(p, "W1"), _ans(p, "h"))],
    "example5": lambda p: [(_given(p, "A"), _given(p, "V"), _ans(p, "O")), (_ans(p, "O"), _given(p, "W1"), _ans(p, "h")),
                           (_ans(p, "r"), _given(p, "W2"), _ans(p, "f"))],
    "output_logits": lambda p: [(_given(p, "h"), _given(p, "W_out"), _ans(p, "z"))],
    "output_backward": lambda p: [(_t(_given(p, "h")), _given(p, "dz"), _ans(p, "dW")),
                                  (_given(p, "dz"), _t(_given(p, "W_out")), _ans(p, "dh"))],
    "residual_backward": lambda p: [
        (_t(_given(p, "x")), _ans(p, "du") if p.options["sublayer"] == "relu" else _given(p, "dh"), _ans(p, "dW")),
        (_ans(p, "du") if p.options["sublayer"] == "relu" else _given(p, "dh"), _t(_given(p, "W")), _ans(p, "dx_branch"))],
    "attention_backward": lambda p: [
        (_given(p, "X"), _given(p, "W_Q"), _ans(p, "Q")), (_given(p, "X"), _given(p, "W_K"), _ans(p, "K")),
        (_given(p, "X"), _given(p, "W_V"), _ans(p, "V")), (_t(_ans(p, "A")), _given(p, "dO"), _ans(p, "dV")),
        (_ans(p, "dR"), _ans(p, "K"), _ans(p, "dQ")), (_t(_ans(p, "dR")), _ans(p, "Q"), _ans(p, "dK")),
        (_t(_given(p, "X")), _ans(p, "dQ"), _ans(p, "dW_Q")), (_t(_given(p, "X")), _ans(p, "dK"), _ans(p, "dW_K")),
        (_t(_given(p, "X")), _ans(p, "dV"), _ans(p, "dW_V"))],
}


@pytest.mark.parametrize("type_name", by_type(sorted(PRODUCTS)))
def test_no_product_slip_gives_the_answer(type_name):
    for options, p in _problems(type_name):
        for a, b, answer in PRODUCTS[type_name](p):
            assert answer not in _slip_values(a, b, answer), (options, a, b, answer)


def _float_softmax_axes_agree(z) -> bool:
    rows = [[math.exp(float(v)) for v in z.row(i)] for i in range(z.rows)]
    by_row = [[x / sum(r) for x in r] for r in rows]
    by_col = [[rows[i][j] / sum(rows[k][j] for k in range(z.rows)) for j in range(z.cols)] for i in range(z.rows)]
    return all(math.isclose(x, y, rel_tol=1e-12) for r, c in zip(by_row, by_col) for x, y in zip(r, c))


@pytest.mark.parametrize("type_name, logits", [("cross_entropy", "z"), ("dlogits", "z"), ("output_logits", "z")])
def test_softmax_down_the_columns_gives_other_probabilities(type_name, logits):
    for options, p in _problems(type_name):
        z = p.answer(logits) if type_name == "output_logits" else p.given_value(logits)
        if z.rows > 1:
            assert not _float_softmax_axes_agree(z), (options, z)


def test_single_step_slips_show():
    """The other slips, one type each: a missing division, a dropped term, a dropped θ, ReLU on the gradient."""
    for _, p in _problems("inverse"):
        assert p.given_value("A").det() != 1  # adj A alone would be A⁻¹
    for _, p in _problems("layernorm"):
        for row in _given(p, "x"):
            mu = sum(row) / len(row)
            assert mu != 0 and sum((v - mu) ** 2 for v in row) / len(row) != 1
    for _, p in _problems("layernorm_backward"):
        assert any(g != 1 for g in _given(p, "gamma")[0])
        for row in _given(p, "x"):
            mu = sum(row) / len(row)
            assert mu != 0 and sum((v - mu) ** 2 for v in row) / len(row) != 1
    for _, p in _problems("relu_backward"):
        h, dr, dh = _given(p, "h"), _given(p, "dr"), _ans(p, "dh")
        assert [[max(g, 0) for g in row] for row in dr] != dh
        assert [[g if v > 0 else 0 for g, v in zip(gr, hr)] for gr, hr in zip(dr, h)] == dh
    for _, p in _problems("softmax_backward"):
        s, ds = _ans(p, "s")[0], _given(p, "ds")[0]
        assert sum(a * b for a, b in zip(s, ds)) != 0  # dropping ḡ would show
    for name in ("sgd_step", "adam_step", "batch_average"):
        for _, p in _problems(name):
            assert any(_given(p, "theta0")[0]), name
    for _, p in _problems("batch_average", batch="2"):
        g = _given(p, "G")
        assert [sum(row) / 2 for row in g] != _ans(p, "g_mean")[0]
    for _, p in _problems("embedding"):
        assert [int(t) for t in p.facts["token_ids"]] != list(range(len(p.facts["token_ids"])))


@pytest.mark.xdist_group("example4")
def test_example4_predictions_are_not_the_targets_copied():
    for _, p in _problems("example4", 300):
        assert [p.answer(f"next{b}").value for b in range(3)] != p.facts["targets_text"].split(", ")


def _layernorm_rows_teach(x_rows):
    for row in x_rows:
        mu = sum(row) / len(row)
        assert mu != 0 and sum((v - mu) ** 2 for v in row) / len(row) != 1, row


@pytest.mark.xdist_group("tiny_transformer")
def test_tiny_transformer_shows_its_slips():
    for options, p in _problems("tiny_transformer", 300, norm="embeddings"):
        heads = int(options["heads"])
        q, k, y = _ans(p, "Q"), _ans(p, "K"), _ans(p, "Y")
        for h in range(heads):
            qh, kh = [row[h] for row in q], [row[h] for row in k]
            assert kh[0] != kh[1]  # row 1 (and so every later row) does not weigh its keys alike
            assert any(qh[i] * kh[j] != qh[j] * kh[i] for i in range(len(qh)) for j in range(i))  # K·Qᵀ differs
        _layernorm_rows_teach(_ans(p, "X"))
        assert any(g != 1 for g in _given(p, "gamma")[0]) or any(_given(p, "beta")[0])
        assert all(any(row) for row in y) and any(_given(p, "b_1")[0]) and any(_given(p, "b_2")[0])
        h1, h2, r = _ans(p, "H1"), _ans(p, "H2"), _ans(p, "r")
        f = [[a - b for a, b in zip(r2, r1)] for r2, r1 in zip(h2, h1)]
        for a, b, answer in ((y, _given(p, "W_Q"), q), (y, _given(p, "W_K"), k), (y, _given(p, "W_V"), _ans(p, "V")),
                             (_ans(p, "O"), _given(p, "W_O"), h1), (h1, _given(p, "W_1"), _ans(p, "u")),
                             (r, _given(p, "W_2"), f), (h2, _given(p, "W_out"), _ans(p, "z"))):
            assert answer not in _slip_values(a, b, answer), options


@pytest.mark.xdist_group("tiny_transformer")
def test_tiny_transformer_add_and_norm_shows_its_slips():
    """norm=post: each LayerNorm's input has rows {a, a, b, b} (x̂ of ±1), μ ≠ 0 and σ ≠ 1; normalising X instead of
    R₁ (a forgotten attention term) gives no such row; and every product's slips show."""
    for options, p in _problems("tiny_transformer", 100, norm="post"):  # the contract checks 421 norm=post draws
        heads = int(options["heads"])
        x, q, k = _ans(p, "X"), _ans(p, "Q"), _ans(p, "K")
        for h in range(heads):
            qh, kh = [row[h] for row in q], [row[h] for row in k]
            assert kh[0] != kh[1]
            assert any(qh[i] * kh[j] != qh[j] * kh[i] for i in range(len(qh)) for j in range(i))
        for name in ("R1", "R2"):
            rows = _ans(p, name)
            _layernorm_rows_teach(rows)
            for row in rows:
                mu = sum(row) / len(row)
                assert sorted(v > mu for v in row) == [False, False, True, True], (name, row)  # x̂ = ±1
        # A student who forgets the attention's term normalises X: no row of X normalises to R₁'s row.
        for row, row1 in zip(x, _ans(p, "R1")):
            mu, mu1 = sum(row) / len(row), sum(row1) / len(row1)
            sigma = (sum((v - mu) ** 2 for v in row) / len(row)) ** Fraction(1, 2)  # a float when irrational
            sigma1 = (sum((v - mu1) ** 2 for v in row1) / len(row1)) ** Fraction(1, 2)
            assert sigma == 0 or [(v - mu) / sigma for v in row] != [(v - mu1) / sigma1 for v in row1], (row, row1)
        for which in ("1", "2"):
            assert any(g != 1 for g in _given(p, f"gamma_{which}")[0]) or any(_given(p, f"beta_{which}")[0])
        assert all(any(row) for row in x) and any(_given(p, "b_1")[0]) and any(_given(p, "b_2")[0])
        r1, h1, r2, h2, r = _ans(p, "R1"), _ans(p, "H1"), _ans(p, "R2"), _ans(p, "H2"), _ans(p, "r")
        f = [[a - b for a, b in zip(s2, s1)] for s2, s1 in zip(r2, h1)]
        for a, b, answer in ((x, _given(p, "W_Q"), q), (x, _given(p, "W_K"), k), (x, _given(p, "W_V"), _ans(p, "V")),
                             (_ans(p, "O"), _given(p, "W_O"), r1), (h1, _given(p, "W_1"), _ans(p, "u")),
                             (r, _given(p, "W_2"), f), (h2, _given(p, "W_out"), _ans(p, "z"))):
            assert answer not in _slip_values(a, b, answer), options


def test_tiny_transformer_names_head_columns_plainly():
    """Heads are named 1 and 2 while columns and rows count from 0: the prompts say which column is whose."""
    for heads in ("1", "2"):
        p = make_problem("tiny_transformer", {"heads": heads}, problem_seed(1, 1, "tiny_transformer"))
        prompts = " ".join(part.prompt for part in p.parts)
        assert "column $h$" not in prompts and "column h" not in prompts
        if heads == "2":
            assert "column 0 of each belongs to head 1, column 1 to head 2" in prompts
            assert "column 0 is $\\tilde A_1$ times column 0 of $V$" in prompts


@pytest.mark.xdist_group("training_step")
def test_training_step_shows_its_slips():
    for options, p in _problems("training_step", 200):
        forward = (lambda n: _rows(p.facts[n])) if "H2" in p.facts else (lambda n: _ans(p, n))
        post = options.get("norm") == "post"
        # The LayerNorms' inputs: X, or with Add & Norm the residual sums R₁ and R₂ (rows {a, a, b, b}, σ drawn
        # with them); without it σ is ½ or 2, chosen last so that dX = (…)/σ stays in the sheet's fractions.
        for rows in ((forward("R1"), forward("R2")) if post else (forward("X"),)):
            _layernorm_rows_teach(rows)
            for row in rows:
                mu = sum(row) / len(row)
                assert post or sum((v - mu) ** 2 for v in row) / len(row) in (Fraction(1, 4), 4)
        assert all(v != 0 for row in _ans(p, "dO") for v in row)  # every head output learns something
        second, first = ("dR2", "dR1") if post else ("dH2", "dH1")  # the residual sums' gradients
        for a, b, name in ((_t(forward("H2")), _ans(p, "dz"), "dW_out"), (_ans(p, "dz"), _t(_given(p, "W_out")), "dH2"),
                           (_t(forward("r")), _ans(p, second), "dW_2"), (_t(forward("H1")), _ans(p, "du"), "dW_1"),
                           (_t(forward("O")), _ans(p, first), "dW_O"), (_ans(p, first), _t(_given(p, "W_O")), "dO")):
            answer = _ans(p, name)
            assert answer == _mul(a, b) and answer not in _slip_values(a, b, answer), (options, name)
