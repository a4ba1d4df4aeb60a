"""The whole-number first test of training_step's norm=post search gives backprop.post_backward's verdict exactly."""

from __future__ import annotations

from collections import Counter
from fractions import Fraction

import pytest

from generator.core.backprop import post_backward
from generator.core.backprop_scaled import BelowNorm, post_gradients_scaled, post_scale
from generator.core.rng import Rng
from generator.problems import training_step
from generator.problems.tiny_transformer import Restart, draw_post_front, layernorm_affine


def _candidates(heads: int, fronts: int, tries: int):
    """(model, p̃ rows, targets) as the search meets them: a drawn block, then output layers on it."""
    rng = Rng(f"scaled/{heads}")
    for _ in range(fronts):
        while True:
            try:
                model = training_step._post_extras(draw_post_front(rng, 2, heads, None))
                break
            except Restart:
                continue
        for _ in range(tries):
            gamma2, beta2, h2 = layernorm_affine(rng, model["Rhat2"])
            readout = training_step._readout(rng, h2, model["weights"])
            if readout is not None:
                w_out, z, p_rows = readout
                yield ({**model, "gamma_2": gamma2, "beta_2": beta2, "H2": h2, "W_out": w_out, "z": z, "p_rows": p_rows},
                       p_rows, model["ids"][1:3])


@pytest.mark.parametrize("heads", [1, 2])
@pytest.mark.parametrize("scale", [Fraction(1, 2), Fraction(1)])
def test_the_whole_number_pass_agrees_with_the_fraction_pass(heads, scale):
    verdicts = Counter()
    for model, p_rows, targets in _candidates(heads, fronts=30, tries=25):
        dz = [[scale * (p - (1 if j == t else 0)) for j, p in enumerate(row)] for row, t in zip(p_rows, targets)]
        scaled = post_gradients_scaled(model, dz, training_step._clean_fraction(scale))
        exact = post_backward(model, p_rows, targets, scale, training_step._small_fractions(scale))
        assert (scaled is None) == (exact is None), (heads, scale, model["ids"])
        # dR₁ and dW_O tested first from their linear forms (BelowNorm): the same gradients, or the same None
        assert post_gradients_scaled(model, dz, training_step._clean_fraction(scale), BelowNorm(model)) == scaled
        if scaled is not None:  # the same gradients, each S times the exact one
            s = post_scale(model, dz)
            assert scaled.keys() == exact.keys() and all(
                [[v * s for v in row] for row in exact[name]] == rows for name, rows in scaled.items())
        verdicts[scaled is not None] += 1
    assert verdicts[True] and verdicts[False], verdicts  # both verdicts met: the comparison can fail


def test_the_scale_makes_every_gradient_whole():
    """S times each gradient of the exact pass is a whole number (else the whole-number pass would round)."""
    for model, p_rows, targets in _candidates(2, fronts=4, tries=10):
        grads = post_backward(model, p_rows, targets, Fraction(1, 2))
        dz = grads["dz"]
        s = post_scale(model, dz)
        assert all((v * s).denominator == 1 for rows in grads.values() for row in rows for v in row)


def _below_norm_entries(grads: dict) -> dict[str, list]:
    """The gradients below the second LayerNorm, flattened per name (the generic pass's names)."""
    return {name: [v for row in rows for v in row] for name, rows in grads.items()
            if name not in ("dz", "dW_out", "dH2", "dgamma_2", "dbeta_2", "dRhat2", "dR2")}


@pytest.mark.parametrize("heads", [1, 2])
def test_the_generic_pass_finds_only_the_zeros_and_ties_every_output_layer_has(heads):
    """An entry 0 in the generic pass is 0 for every output layer, two entries equal there are equal for every one,
    and an entry not 0 there is not 0 for some output layer (of the few tried)."""
    generic_zeros = seen_nonzero = 0
    fronts: dict[int, tuple[dict, list[dict]]] = {}
    for model, p_rows, targets in _candidates(heads, fronts=25, tries=20):
        exact = post_backward(model, p_rows, targets, Fraction(1, 2))
        fronts.setdefault(id(model["R1"]), (model, []))[1].append(_below_norm_entries(exact))
    for model, layers in fronts.values():
        generic = _below_norm_entries(BelowNorm(model).generic())
        assert generic.keys() == layers[0].keys()
        flat = [(name, k) for name, values in generic.items() for k in range(len(values))]
        for name, k in flat:
            if generic[name][k] == 0:
                generic_zeros += 1
                assert all(layer[name][k] == 0 for layer in layers), (name, k)
            elif any(layer[name][k] != 0 for layer in layers):
                seen_nonzero += 1
        for (a, i), (b, j) in [(x, y) for x in flat for y in flat if x < y and generic[x[0]][x[1]] == generic[y[0]][y[1]]]:
            assert all(layer[a][i] == layer[b][j] for layer in layers), (a, i, b, j)
    assert generic_zeros and seen_nonzero  # both kinds met: the assertions can fail


def test_a_front_turned_away_gives_no_output_layer_that_teaches():
    """training_step's front check: where it says no, no output layer passes _moves (of the many tried)."""
    turned_away = 0
    for model, p_rows, targets in _candidates(2, fronts=40, tries=15):
        if training_step._below_norm_can_teach(model, BelowNorm(model), ["W_O", "gamma_2"]):
            continue
        turned_away += 1
        exact = post_backward(model, p_rows, targets, Fraction(1, 2))
        assert not training_step._moves(model, exact, ["W_O", "gamma_2"])
    assert turned_away


def test_the_second_norm_test_reads_dgamma_and_dbeta_as_the_whole_pass_does():
    """training_step's first test of an output layer (dγ₂ and dβ₂ from dz and W_out alone) says what _moves would
    say of those two gradients after the whole pass: none is all 0, and no updated entry is 0."""
    verdicts = Counter()
    for model, p_rows, targets in _candidates(2, fronts=20, tries=20):
        dz = [[Fraction(1, 2) * (p - (1 if j == t else 0)) for j, p in enumerate(row)] for row, t in zip(p_rows, targets)]
        grads = post_gradients_scaled(model, dz, lambda numerator, denominator: True)
        for updated in (["W_O", "gamma_2"], ["W_O", "beta_2"], ["W_O"]):
            expected = (all(any(grads[name][0]) for name in ("dgamma_2", "dbeta_2"))
                        and all(all(grads["d" + name][0]) for name in updated if name in ("gamma_2", "beta_2")))
            assert training_step._second_norm_test(dz, model["Rhat2"], updated)(model["W_out"]) == expected
            verdicts[expected] += 1
    assert verdicts[True] and verdicts[False], verdicts
