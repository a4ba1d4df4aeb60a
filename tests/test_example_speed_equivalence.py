"""The training searches of example2 and example3 decide as the rules worked straight through would: their cheap
tests, decided once per logit shape or per δ, refuse exactly what the full computation refuses."""

from __future__ import annotations

import itertools
import random
from fractions import Fraction

import pytest

from generator.core.rng import Rng
from generator.problems import example2, example3


def test_example2_simple_probabilities_worked_in_sorted_order_are_those_of_the_logits_themselves():
    # Every logit row within the e^k table and beyond it: the sorted, shifted route decides as softmax(z) itself does.
    for z in itertools.product(range(-7, 2), repeat=4):
        direct = example2._simple_probabilities.__wrapped__(z)
        assert example2.simple_probabilities(list(z)) == (None if direct is None else list(direct)), z


def _clean_step_reference(z: list[int], c: list[int], target: int, eta: Fraction, visible) -> list[Fraction] | None:
    """training_accept's rule for one logit row, worked on z itself (not its shape z − max z), uncached."""
    if max(z) == z[target] or 0 in c:
        return None
    p_given = example2._simple_probabilities.__wrapped__(tuple(z))  # softmax of z itself, not of its shift
    if p_given is None:
        return None
    dz, z_new = example2.sgd_on_output(z, c, target, eta, list(p_given))
    if any(v.denominator > example2.UPDATE_DENOMINATOR or abs(v) > 10 for v in z_new):
        return None
    if any((eta * ci * d).denominator > example2.UPDATE_DENOMINATOR for ci in c for d in dz):
        return None
    return dz if visible(z, z_new, target) else None


@pytest.mark.parametrize("visible", [example2.target_rise_visible, example2.likeliest_wrong_visible])
def test_example2_training_accept_decides_per_shape_as_per_logit_row(visible):
    pick = random.Random(3)
    shifts = example2.usable_shifts()
    contexts = [(a, b) for a in range(-4, 5) for b in range(-4, 5)]
    found: list[list[Fraction]] = []  # the dL/dz each accepted row passes on to a further chain's test
    accepts = {(t, eta): example2.training_accept(t, eta, extra=lambda dz, w, m: found.append(dz) or True, visible=visible)
               for t in range(4) for eta in (Fraction(1, 2), Fraction(1))}
    clean = 0
    for _ in range(3000):
        target, eta = pick.randrange(4), pick.choice((Fraction(1, 2), Fraction(1)))
        top, shift, c = pick.randrange(-6, 7), pick.choice(shifts), pick.choice(contexts)
        z = [top + s for s in shift]
        found.clear()
        accepted = accepts[target, eta](z, list(c), [[0] * 4] * 2, {})
        expected = _clean_step_reference(z, list(c), target, eta, visible)
        assert accepted == (expected is not None), (z, c, target, eta)
        assert found == ([expected] if accepted else []), (z, c, target, eta)
        clean += accepted
    assert clean > 100  # the comparison covered clean steps, not only refusals


def _query_side_reference(dz: list[Fraction], w_out: list[list[int]], model: dict, root: int) -> bool:
    """_ModelScreen.query_side_clean's demands on the full backward pass and new forward pass: dS ≠ 0, and some learning
    rate keeps the steps of W_Q and W_K, q', K' and S' clean."""
    values = example3.backward_values(dz, w_out, model, root)
    if not any(values["dS"][0]):
        return False
    for eta in example3.UPDATE_RATES:
        if example3.step_is_clean(eta, [values["dW_Q"], values["dW_K"]]):
            new = example3.new_forward(values, dz, w_out, model, root, eta)
            if (example3._clean([e for n in ("q", "K") for row in new[n] for e in row])
                    and example3._clean(new["S"][0], example3.SCORE_DENOMINATOR)):
                return True
    return False


@pytest.mark.parametrize("d_k,data", [("1", "drawn"), ("4", "drawn"), ("4", "book")])
def test_example3_query_side_screen_decides_as_the_full_backward_pass(d_k, data):
    root = {"1": 1, "4": 2}[d_k]
    accept = example3.clean_update(root)
    seen = {"clean": 0, "refused": 0}

    def checking(dz, w_out, model) -> bool:
        screen = example3._ModelScreen(model, root)
        dc = [sum((d * w for d, w in zip(dz, row)), Fraction(0)) for row in w_out]
        delta = sum((d * g for d, g in zip(dc, screen.value_gap)), Fraction(0))
        verdict = screen.query_side_clean(delta.numerator, delta.denominator)
        assert verdict == _query_side_reference(dz, w_out, model, root), (dz, w_out, model)
        seen["clean" if verdict else "refused"] += 1
        return accept(dz, w_out, model)

    for seed in range(20):
        example2.draw_training(Rng(f"speed/{d_k}/{data}/{seed}"), {"d_k": d_k, "data": data}, checking)
    assert seen["clean"] > 20 and seen["refused"] > 20, seen  # both verdicts were compared
