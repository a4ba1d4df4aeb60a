"""True words: what a sheet says about its own numbers holds for the numbers it prints."""

from __future__ import annotations

from fractions import Fraction

import sympy

from generator.core.registry import make_problem, problem_types
from generator.documents.render import number_tex
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


def test_example2_says_why_its_likeliest_wrong_token_is_the_one_it_is():
    """Each wrong logit falls by η‖c‖²·p̃_j: the key names the prediction before the step, how far it and the token it
    is compared with fell, its lead, and says 'still' or 'overtook' as the new logits decide."""
    def tex(x: Fraction) -> str:
        return number_tex(sympy.Rational(x.numerator, x.denominator))

    def fr(v) -> Fraction:
        return Fraction(int(v.p), int(v.q))

    sets = problem_types()["example2"].option_sets()
    seen = set()
    for seed in range(80):
        p = make_problem("example2", sets[seed % len(sets)], problem_seed(seed, 1, "example2"))
        z, c = [fr(v) for v in p.answer("z")], [fr(v) for v in p.answer("c")]
        z_new, p_given = [fr(v) for v in p.answer("z_new")], [fr(v) for v in p.facts["given_p"]]
        target, k = int(p.facts["target_index"]), fr(p.facts["eta"]) * sum(v * v for v in c)
        wrong = [j for j in range(4) if j != target]
        assert all(z_new[j] == z[j] - k * p_given[j] for j in wrong)
        m = z.index(max(z))
        best = max(wrong, key=lambda j: z_new[j])
        assert sum(z_new[j] == z_new[best] for j in wrong) == 1
        assert p.answer("likeliest_wrong").value == "ABCD"[best]
        part = p.parts[-1]
        # The prompt names the target, never the prediction (part i asks for it).
        assert "which wrong token" in part.prompt and f"\\texttt{{{'ABCD'[m]}}}" not in part.prompt
        fell, decide = part.steps[:2]
        assert ("= \\tilde p_j$" if k == 1 else f"= {tex(k)}\\,\\tilde p_j$") in fell.text
        words = decide.text
        assert words.startswith(f"\\texttt{{{'ABCD'[m]}}}, the likeliest wrong token before the step, ")
        furthest = all(p_given[m] > p_given[j] for j in wrong if j != m)
        assert (f"fell the furthest, by ${tex(k * p_given[m])}$" in words) == furthest
        if best == m:
            runner = max((j for j in wrong if j != m), key=lambda j: z_new[j])
            assert f"it started ${tex(z[m] - z[runner])}$ ahead of \\texttt{{{'ABCD'[runner]}}}" in words
            extra = k * (p_given[m] - p_given[runner])
            assert z[m] - z[runner] > extra
            assert (f"more than the ${tex(extra)}$ it fell beyond" in words) == (extra != 0)
            assert "is still" not in words and "overtook" not in words
            assert f"so \\texttt{{{'ABCD'[m]}}} still has the largest new logit" in words
        else:
            lead, extra = z[m] - z[best], k * (p_given[m] - p_given[best])
            assert 0 < lead < extra
            assert (f"\\texttt{{{'ABCD'[best]}}} fell only ${tex(k * p_given[best])}$" in words
                    and f"started only ${tex(lead)}$ ahead of \\texttt{{{'ABCD'[best]}}}, less than the ${tex(extra)}$"
                    in words and f"so \\texttt{{{'ABCD'[best]}}} overtook it" in words and "still" not in words)
        seen.add(best == m)
    assert seen == {True, False}
