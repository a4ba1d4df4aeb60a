"""True words: what a sheet says about its own numbers holds for the numbers it prints."""

from __future__ import annotations

from generator.core.registry import make_problem
from generator.documents.sheet import ProblemSpec, SheetSpec, build, problem_seed, render_key, render_worksheet


def _sheet(*specs: str, seed: int = 3):
    return build(SheetSpec(title="Words", seed=seed, problems=tuple(ProblemSpec.parse(s) for s in specs),
                           calculator="basic"))


def test_the_paper_instructions_give_no_typing_advice():
    """'(write -3/4)' is how to type into an answer file; on paper a fraction is written as a fraction."""
    text = render_worksheet(_sheet("matmul"))
    assert r"\texttt{-3/4}" not in text and r"-\tfrac{3}{4}" in text


def test_example6_says_causal_and_is():
    sheet = _sheet("example6")
    assert "causal attention" in render_worksheet(sheet)
    for seed in range(50):
        a = make_problem("example6", {}, problem_seed(seed, 1, "example6")).given_value("A")
        assert a[0, 1] == 0  # the first token cannot see the last one


def test_grad_clip_states_no_comparison_it_asks():
    for seed in range(30):
        p = make_problem("grad_clip", {"max_norm": "2"}, problem_seed(seed, 1, "grad_clip"))
        assert all("exceeds $c$)" not in part.prompt for part in p.parts)
    key = render_key(_sheet("grad_clip"))
    assert "min" in key
