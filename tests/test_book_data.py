"""The book's own data (data=book): its embeddings, task and Example 4's patterns, every number recomputed.

The book ("Understanding Transformers: From First Principles to Mastery") fixes A = [1,0], B = [0,1], C = [1,1],
D = [0,0], the task A B → C and Example 4's patterns A B → C, A A → D, B A → C; it prints no weights, so those are
drawn. Checked here with plain floats, numpy and torch, independently of the generator's exact arithmetic, and
against the known wrong numbers of the seed material (shared/conventions.md, known traps) where they apply.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from generator.core.registry import make_problem, problem_types
from generator.documents.presets import PRESETS, preset_problems
from generator.documents.sheet import SheetSpec, build, problem_seed

BOOK_E = [[1, 0], [0, 1], [1, 1], [0, 0]]
BOOK_PATTERNS = [("A B", "C"), ("A A", "D"), ("B A", "C")]
SEEDS = range(40)


def _f(m) -> np.ndarray:
    return np.array(m.tolist(), dtype=float)


def _book_problems(type_name: str):
    """Problems of every option set with data=book, SEEDS each."""
    for options in problem_types()[type_name].option_sets():
        if options["data"] == "book":
            for seed in SEEDS:
                yield options, make_problem(type_name, options, problem_seed(seed, 1, type_name))


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max())
    return e / e.sum()


@pytest.mark.parametrize("type_name", ["example1", "example2", "example3", "example4"])
def test_data_is_an_option_whose_default_is_drawn(type_name):
    option = {o.name: o for o in problem_types()[type_name].options}["data"]
    assert option.default == "drawn" and set(option.choices) == {"drawn", "book"}


@pytest.mark.parametrize("type_name", ["example1", "example2", "example3"])
def test_book_embeddings_and_input(type_name):
    for options, p in _book_problems(type_name):
        assert p.given_value("E").tolist() == BOOK_E, options
        ids = [int(v) for v in p.facts["token_ids"]]
        assert ids == [0, 1] and "A B" in p.facts["sequence"]
        assert _f(p.answer("X")).tolist() == [BOOK_E[0], BOOK_E[1]]  # X = I: the book's A and B
        # Recomputed in floats: Q, K, V, the scaled scores and the logits from the printed weights.
        x = np.array([BOOK_E[i] for i in ids], dtype=float)
        q, k, v = (x @ _f(p.given_value(n)) for n in ("W_Q", "W_K", "W_V"))
        assert np.allclose(q, _f(p.answer("Q"))) and np.allclose(k, _f(p.answer("K"))) and np.allclose(v, _f(p.answer("V")))
        s = q @ k.T / math.sqrt(int(options["d_k"]))
        assert np.allclose(s, _f(p.answer("S")))
        c = _f(p.facts["given_weights"]) @ v
        assert np.allclose(c @ _f(p.given_value("W_out")), _f(p.answer("z")))


@pytest.mark.parametrize("type_name", ["example2", "example3"])
def test_book_task_is_a_b_to_c(type_name):
    for options, p in _book_problems(type_name):
        assert p.facts["target"] == "C" and int(p.facts["target_index"]) == 2, options
        assert p.answer("next").value != "C"  # the untrained model does not already predict it: there is a step to learn


def test_book_example_3_backpropagates_through_x_equal_to_i():
    """With the book's X = I the weight gradients are the gradients of Q's last row, K and V themselves (autograd),
    and the statement says the data are the book's."""
    for options, p in _book_problems("example3"):
        x = torch.eye(2, dtype=torch.float64)
        w_k = torch.tensor(_f(p.given_value("W_K")), requires_grad=True)
        w_v = torch.tensor(_f(p.given_value("W_V")), requires_grad=True)
        k, v = x @ w_k, x @ w_v
        dk, dv = torch.tensor(_f(p.answer("dK"))), torch.tensor(_f(p.answer("dV")))
        ((k * dk).sum() + (v * dv).sum()).backward()  # the chain rule from dK and dV back to W_K and W_V
        assert torch.allclose(w_k.grad, torch.tensor(_f(p.answer("dW_K")))), options
        assert torch.allclose(w_v.grad, torch.tensor(_f(p.answer("dW_V")))), options
        assert "book" in str(p.facts["book_note"])


def test_book_patterns_of_example_4_and_their_contexts():
    """Targets C, D, C for A B, A A, B A; each context is ã·X_b·W_V from the book's embeddings (numpy)."""
    a = np.array([1 / 3, 2 / 3])
    for options, p in _book_problems("example4"):
        assert p.facts["targets_text"] == ", ".join(t for _, t in BOOK_PATTERNS), options
        assert [int(t) for t in p.facts["targets"]] == [2, 3, 2]
        w_v = _f(p.facts["W_V"])
        for b, (words, _) in enumerate(BOOK_PATTERNS):
            x = np.array([BOOK_E["ABCD".index(w)] for w in words.split()], dtype=float)
            assert np.allclose(a @ x @ w_v, _f(p.given_value("C").row(b))), (options, b)
        assert "A B" in p.facts["book_note"] and "A A" in p.facts["book_note"] and "B A" in p.facts["book_note"]


def test_book_option_still_draws_across_seeds():
    """The book fixes the data, not the weights: the drawn parts differ from seed to seed."""
    for type_name, name in (("example1", "W_Q"), ("example2", "W_out"), ("example3", "W_K"), ("example4", "C")):
        seen = {str(p.given_value(name)) for _, p in _book_problems(type_name)}
        assert len(seen) > 3, (type_name, seen)


# Known traps (shared/conventions.md) that the book's Examples 1, 2 and 4 could repeat.

def test_trap_w_out_is_2_by_4_and_its_gradient_lands_in_the_right_elements():
    """Not a 2×2 W_O "adapted" to 4 tokens: W_out is (d_model × vocabulary) = (2 × 4), and ∂L/∂W_out = cᵀ·(p̃ − y)
    as torch's autograd gives it, entry by entry."""
    for options, p in _book_problems("example2"):
        assert p.given_value("W_out").shape == (2, 4) and p.answer("dW_out").shape == (2, 4)
        c = torch.tensor(_f(p.answer("c")))
        w = torch.tensor(_f(p.given_value("W_out")), requires_grad=True)
        z = c @ w
        pinned = z + (torch.tensor(_f(p.facts["given_p"])).log() - z).detach()
        torch.nn.functional.cross_entropy(pinned, torch.tensor([2])).backward()
        assert np.allclose(w.grad.numpy(), _f(p.answer("dW_out"))), options


def test_trap_dlogits_has_exactly_one_negative_entry_at_the_target():
    for _, p in _book_problems("example2"):
        dz = _f(p.answer("dz"))[0]
        assert [j for j, v in enumerate(dz) if v < 0] == [2] and abs(dz.sum()) < 1e-12
    for _, p in _book_problems("example4"):
        dz = _f(p.answer("dZ"))
        targets = [int(t) for t in p.facts["targets"]]
        assert all([j for j, v in enumerate(row) if v < 0] == [t] for row, t in zip(dz, targets))


def test_trap_printed_probabilities_are_the_softmax_of_the_logits():
    """Not a softmax of near-equal logits printed as [0.9975, …]: every 4-place probability the key prints is the
    float softmax of the logits, to within its rounding (and within the spread of the table's printed values)."""
    for _, p in _book_problems("example1"):
        exact = _softmax(_f(p.answer("z"))[0])
        printed = [float(r.rounded().route) for r in p.reading("p")[0]]
        assert np.allclose(printed, exact, atol=1.5e-4), (printed, exact)
        assert abs(sum(printed) - 1) < 1e-9


def test_trap_the_step_visibly_raises_the_targets_probability_at_the_places_shown():
    """Rounding must not make an improved probability look worse (0.25063 → 0.25067 printed as 0.251 → 0.2506): the
    target's probability before and after the step, each to 4 places, rises."""
    for _, p in _book_problems("example2"):
        before = _softmax(_f(p.answer("z"))[0])[2]
        after = _softmax(_f(p.answer("z_new"))[0])[2]
        assert round(after, 4) > round(before, 4), (before, after)
    for _, p in _book_problems("example4"):
        curve = [float(v) for v in p.key_facts["loss_curve"]]
        assert all(b < a for a, b in zip(curve, curve[1:])), curve


def test_book_preset_follows_the_chapter_order():
    title, calculator, specs = preset_problems("book")
    types = [s.type for s in specs]
    assert types[:5] == ["matmul", "linear_map", "dot_product", "transpose", "matmul_gradient"]  # chapter 2
    assert types[5] == "embedding" and specs[5].options["positions"] == "no"  # chapter 3: fixed, no positions
    assert types[6:10] == ["qkv_projection", "attention_scores", "softmax", "attention_output"]  # chapter 4
    assert types[10:] == [f"example{i}" for i in range(1, 7)]
    assert specs[14].options == {"tokens": "2", "d_ff": "2"}  # the book's 2×2 W₁ and W₂
    book = {s.type: s.options.get("data") for s in specs}
    assert book["example1"] == book["example2"] == book["example3"] == book["example4"] == "book"
    assert calculator == "basic" and "book" in PRESETS


def test_book_preset_builds():
    title, calculator, specs = preset_problems("book")
    sheet = build(SheetSpec(title, 1, specs, calculator=calculator))
    assert [p.type for p in sheet.problems] == [s.type for s in specs]
    assert sheet.problems[10].given_value("E").tolist() == BOOK_E
