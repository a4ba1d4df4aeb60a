"""Marks a grader can trust: follow-through under the form rules of a right answer, tolerances from the student's own
rounding carried through each step, choices that follow from the student's numbers, named mistakes that explain."""

from __future__ import annotations

import math
import random
from fractions import Fraction

import numpy as np
import pytest

from generator.core.registry import problem_types
from generator.marking import exactnum as xn
from generator.marking import floatnum as fl
from generator.marking import mistakes
from generator.marking.followthrough import (_is_index_fact, apply, choice_recipes_for, choose, valid_choice_recipes,
                                             valid_recipes)
from generator.marking.intervalnum import Intervals, interval, low_high
from generator.marking.marker import FOLLOW_THROUGH, RIGHT, UNREDUCED, WRONG, Cell, Policy, mark_student
from generator.marking.markkey import key_from_data

from .conftest import key_json


def _key(spec: str, seed: int):
    return key_from_data(key_json([spec], seed))


def _marks(key, answers: dict[str, str], policy: Policy = Policy()):
    marked = mark_student(key, {label: Cell(text) for label, text in answers.items()}, "s1", policy=policy)
    return {m.blank.label: m for m in marked.marks}


def _perfect(key) -> dict[str, str]:
    return {b.label: b.text for b in key.blanks}


def _fraction(value: Fraction) -> str:
    return f"{value.numerator}/{value.denominator}" if value.denominator != 1 else str(value.numerator)


def _digits(x: float, significant: int = 12) -> str:
    """x as a plain decimal of `significant` significant digits, as a calculator kept at full precision shows it."""
    if abs(x) < 1e-13:
        return "0"
    return f"{x:.{max(significant - 1 - math.floor(math.log10(abs(x))), 0)}f}"


# ----- the form rules hold for follow-through as for a right answer ------------------------------------------------


def test_unreduced_and_rounded_forms_earn_on_follow_through_what_they_earn_on_a_right_answer():
    """batch_average: θ₁ = θ₀ − η·ḡ. A wrong ḡ in thirds makes the student's own θ₁ a non-terminating fraction."""
    key = _key("batch_average", 1)
    q = key.problems[0].quantities
    eta, theta0 = q["eta"].values[0][0], q["theta0"].values[0]
    g_mean = (q["g_mean"].values[0][0], q["g_mean"].values[0][1] + Fraction(1, 3))  # a slip: 5/3 for 4/3
    own = [t - eta * g for t, g in zip(theta0, g_mean)]
    right = q["theta1"].values[0]
    blank = q["theta1"].blanks[(0, 1)]
    assert own[1].denominator % 3 == 0 and right[1].denominator % 3 == 0  # neither has a finite decimal
    for policy in (Policy(), Policy(follow_through=Fraction(1, 2))):
        def earned(value: Fraction, form: str, slipped: bool):
            answers = _perfect(key)
            if slipped:
                answers[q["g_mean"].blanks[(0, 1)].label] = _fraction(g_mean[1])
                answers[q["theta1"].blanks[(0, 0)].label] = _fraction(own[0])
            answers[blank.label] = {"exact": _fraction(value), "4 places": f"{float(value):.4f}",
                                    "unreduced": f"{3 * value.numerator}/{3 * value.denominator}",
                                    "12 digits": _digits(float(value))}[form]
            mark = _marks(key, answers, policy)[blank.label]
            return mark.points, mark.status, mark.note

        share = policy.follow_through
        for form, on_right, on_follow in (("exact", 1, share), ("4 places", 0, 0), ("12 digits", 1, share),
                                          ("unreduced", policy.unreduced, share * policy.unreduced)):
            right_points, right_status, _ = earned(right[1], form, slipped=False)
            follow_points, follow_status, note = earned(own[1], form, slipped=True)
            assert (right_points, follow_points) == (on_right, on_follow), (form, policy)
            if form == "4 places":
                assert (right_status, follow_status, note) == (WRONG, WRONG, mistakes.ROUNDED)
            if form == "unreduced":
                assert right_status == UNREDUCED and follow_status == FOLLOW_THROUGH and mistakes.UNREDUCED in note


def test_a_rounded_value_is_named_rounded_to_the_places_written():
    """0.333 for 1/3 is the exact value rounded to 3 places: 'rounded', by the student's own last place."""
    key = _key("batch_average", 1)
    blank = key.problems[0].quantities["g_mean"].blanks[(0, 1)]  # 4/3
    answers = _perfect(key)
    for text, note in (("1.333", mistakes.ROUNDED), ("1.3", mistakes.ROUNDED), ("1.334", ""), ("1.32", "")):
        answers[blank.label] = text
        mark = _marks(key, answers)[blank.label]
        assert (mark.status, mark.note) == (WRONG, note), text


# ----- full precision carried, rounded only when written ------------------------------------------------------------


def _full_precision_student(spec: str, seed: int, four_places: bool):
    """An early slip carried through every later step at float precision (the student's calculator); each value
    written with 12 significant digits, or 4 places where the part asks for 4. Returns the key, the answers and
    the quantities computed from the slip."""
    key = _key(spec, seed)
    problem = key.problems[0]
    q = problem.quantities
    recipes = valid_recipes(problem)
    values = {n: fl.array(v.values) for n, v in q.items() if v.values}
    names = [n for n, v in q.items() if v.source == "answer"]
    values[names[0]] = values[names[0]].copy()
    values[names[0]][0, 0] += 1
    dependent = [names[0]]
    for name in names[1:]:
        for recipe in recipes.get(name, ()):
            if not set(recipe.inputs) & set(dependent):
                continue
            values[name] = apply(recipe, values, fl)
            dependent.append(name)
            break
    answers = _perfect(key)
    for name in dependent:
        for (i, j), blank in q[name].blanks.items():
            x = values[name][i, j]
            answers[blank.label] = "-inf" if np.isneginf(x) else f"{x:.4f}" if four_places and blank.decimals \
                else _digits(x)
    for blank in key.blanks:  # the predicted token, from the student's own numbers
        for recipe in valid_choice_recipes(problem).get(blank.name, ()):
            if recipe.inputs[0] in dependent:
                exact = {n: tuple(tuple(xn.CTX.mpf(float(x)) for x in row) for row in m) for n, m in values.items()}
                answers[blank.label] = min(choose(recipe, exact, blank.choices))
                dependent.append(blank.name)
                break
    return key, answers, dependent


@pytest.mark.parametrize("spec, seeds", [("attention_backward", (2, 3, 4, 5)), ("attention_backward:tokens=3", (1, 2)),
                                         ("example3", (1, 3, 4, 6, 10))])
@pytest.mark.parametrize("four_places", [False, True])
def test_a_full_precision_student_gets_follow_through_on_every_dependent_blank(spec, seeds, four_places):
    for seed in seeds:
        key, answers, dependent = _full_precision_student(spec, seed, four_places)
        marks = _marks(key, answers)
        later = [m for m in marks.values() if m.blank.name in dependent[1:]]
        assert len(later) > 10
        assert {m.status for m in later} <= {RIGHT, FOLLOW_THROUGH}, \
            [(m.blank.label, m.answer, m.blank.text) for m in later if m.status not in (RIGHT, FOLLOW_THROUGH)]
        assert sum(m.status == FOLLOW_THROUGH for m in later) > len(later) // 2


def test_rounded_inputs_carry_their_rounding_and_no_more():
    """attention_backward: A written to 4 places is only known to ±0.00005; ∂V = Aᵀ·∂O from it is known to the
    rounding carried through the product. An exact-looking ∂V inside that earns follow-through; one just outside
    (by more than the carried rounding) earns nothing."""
    key, answers, dependent = _full_precision_student("attention_backward", 3, four_places=False)
    q = key.problems[0].quantities
    for blank in q["A"].blanks.values():  # A rounded to 4 places (a 'rounded' A: the student loses A, not ∂V)
        answers[blank.label] = f"{float(answers[blank.label]):.4f}"
    a = [[float(answers[q["A"].blanks[(i, j)].label]) for j in range(2)] for i in range(2)]
    d_o = q["dO"].values
    column_total = [sum(abs(float(d_o[i][j])) for i in range(2)) for j in range(2)]
    for (i, j), blank in q["dV"].blanks.items():
        exact = sum(a[k][i] * float(d_o[k][j]) for k in range(2))
        slack = 0.00005 * column_total[j]  # each A entry ± ½ unit times |∂O|: the carried rounding
        answers[blank.label] = _digits(exact + 0.9 * slack)
        assert _marks(key, answers)[blank.label].status == FOLLOW_THROUGH
        answers[blank.label] = _digits(exact + 1.1 * slack + 1e-9)
        assert _marks(key, answers)[blank.label].status == WRONG
        answers[blank.label] = _digits(exact)


def test_a_student_reading_the_sheets_table_gets_follow_through():
    """output_logits: p = softmax(z) to 4 places from the sheet's e^k table. A student with a wrong z who reads the
    table (each e^k known to 4 places) earns follow-through, as the key accepts the table route for a right z."""
    tables = {k: round(math.exp(k), 4) for k in range(0, -6, -1)}
    checked = differs = 0
    for seed in range(1, 12):
        key = _key("output_logits", seed)
        q = key.problems[0].quantities
        z = [x for x in q["z"].values[0]]
        z[0] -= 1  # a slip
        shifted = [int(x - max(z)) for x in z]
        if any(k not in tables for k in shifted):
            continue
        answers = _perfect(key)
        answers[q["z"].blanks[(0, 0)].label] = _fraction(z[0])
        total = sum(tables[k] for k in shifted)
        for (_, j), blank in q["p"].blanks.items():
            route = tables[shifted[j]] / total
            exact = math.exp(shifted[j]) / sum(math.exp(k) for k in shifted)
            answers[blank.label] = f"{route:.4f}"
            differs += abs(round(route, 4) - exact) > 0.00005
        marks = _marks(key, answers)
        assert {marks[b.label].status for b in q["p"].blanks.values()} <= {FOLLOW_THROUGH, RIGHT}, seed
        checked += 1
    assert checked >= 3 and differs >= 1  # some table-route answer lies more than ½ unit from the exact value


# ----- the intervals are rigorous ------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", ["attention_backward:tokens=3", "example3", "training_step", "grad_clip",
                                  "layernorm_backward:rows=2", "adam_step:optimizer=adamw", "ffn_gelu", "gelu_backward",
                                  "softmax_backward", "inverse", "cross_entropy:positions=2", "lr_experiment",
                                  "tiny_transformer:heads=2", "two_layer_network:update=sgd", "mse:outputs=2"])
def test_every_recipe_on_intervals_holds_every_value_its_inputs_allow(spec):
    """Each input widened by ±1/1000; the exact recipe at random points of those boxes lies inside the interval."""
    problem = _key(spec, 4).problems[0]
    values = {n: q.values for n, q in problem.quantities.items() if q.values}
    fixed = {n for n, q in problem.quantities.items() if _is_index_fact(q)}  # token ids and targets are never rounded
    widths = {n: tuple(tuple(Fraction(0) if n in fixed or xn.is_neg_inf(x) else Fraction(1, 1000) for x in row)
                       for row in m) for n, m in values.items()}
    rng = random.Random(spec)
    checked = 0
    for name, recipes in valid_recipes(problem).items():
        for recipe in recipes:
            try:
                box = apply(recipe, {n: interval(values[n], widths[n]) for n in recipe.inputs}, Intervals())
            except (xn.Undefined, ValueError, ZeroDivisionError):
                continue
            for _ in range(3):
                moved = {n: tuple(tuple(x if w == 0 else x + w * Fraction(rng.randint(-1000, 1000), 1000)
                                        for x, w in zip(row, wrow)) for row, wrow in zip(values[n], widths[n]))
                         for n in recipe.inputs}
                try:
                    value = apply(recipe, moved)
                except (xn.Undefined, ValueError, ZeroDivisionError):
                    continue
                for i, row in enumerate(value):
                    for j, x in enumerate(row):
                        if xn.is_neg_inf(x):
                            assert np.isneginf(box[i, j, 1]), recipe.describe()
                            continue
                        low, high = low_high(box[i, j])
                        assert xn.to_mpf(low) <= xn.to_mpf(x) <= xn.to_mpf(high), (recipe.describe(), i, j)
                checked += 1
    assert checked >= 3


# ----- choices -------------------------------------------------------------------------------------------------


def test_the_predicted_token_follows_from_the_students_own_probabilities():
    """output_logits: a wrong z, p = softmax of it, and the argmax of that p: the choice follows; another does not."""
    key = _key("output_logits", 1)
    q = key.problems[0].quantities
    z = list(q["z"].values[0])
    top = max(range(len(z)), key=lambda j: z[j])
    other = min(range(len(z)), key=lambda j: z[j])
    z[other] = z[top] + 2  # the slip makes another logit the largest
    answers = _perfect(key)
    _set_row(answers, q["z"], z)
    p = xn.softmax_rows((tuple(z),))[0]
    _set_row(answers, q["p"], [f"{float(x):.4f}" for x in p])
    choice = next(b for b in key.blanks if b.kind == "choice")
    answers[choice.label] = choice.choices[other].lower()
    mark = _marks(key, answers)[choice.label]
    assert (mark.status, mark.points) == (FOLLOW_THROUGH, 1) and mark.note in ("follows from your z",
                                                                                "follows from your p")
    answers[choice.label] = next(c for j, c in enumerate(choice.choices) if j not in (other, top))
    assert _marks(key, answers)[choice.label].status == WRONG
    # The student's p and z agree with the key: a wrong choice follows from nothing.
    answers = _perfect(key)
    answers[choice.label] = choice.choices[other]
    assert _marks(key, answers)[choice.label].status == WRONG


def test_an_angle_class_follows_from_the_students_own_dot_product():
    """dot_product: acute, right or obtuse by the sign of the student's own a·b, even a wrong one."""
    key = next(k for k in (_key("dot_product", seed) for seed in range(1, 20))
               if k.problems[0].quantities["a.b"].values[0][0] != 0)
    q = key.problems[0].quantities
    angle = next(b for b in key.blanks if b.kind == "choice" and b.name == "angle(a,b)")
    dot = q["a.b"].values[0][0]
    by_sign = {1: "acute", 0: "right", -1: "obtuse"}
    for wrong in (-dot, Fraction(0)):
        answers = _perfect(key)
        answers[q["a.b"].blanks[(0, 0)].label] = _fraction(wrong)
        answers[angle.label] = by_sign[(wrong > 0) - (wrong < 0)]
        mark = _marks(key, answers)[angle.label]
        assert (mark.status, mark.note) == (FOLLOW_THROUGH, "follows from your a.b"), wrong
    # A wrong a·b of the key's own sign leads to the key's class: another class follows from nothing.
    answers = _perfect(key)
    answers[q["a.b"].blanks[(0, 0)].label] = _fraction(2 * dot)
    answers[angle.label] = by_sign[-1 if dot > 0 else 1]
    assert _marks(key, answers)[angle.label].status == WRONG


def test_the_likeliest_wrong_token_follows_from_the_students_own_new_logits():
    """example2: a wrong z' whose largest entry but the target's is another wrong token: that token follows (the
    choices are the wrong tokens only); another does not, nor does a wrong choice from the key's own z'."""
    key = _key("example2", 1)
    problem = key.problems[0]
    q = problem.quantities
    target = int(q["target_index"].values[0][0])
    choice = next(b for b in key.blanks if b.name == "likeliest_wrong")
    assert choice.choices == tuple(v for j, v in enumerate("ABCD") if j != target)
    z_new = list(q["z_new"].values[0])
    other = next(c for c in choice.choices if c != choice.text)
    j = "ABCD".index(other)
    z_new[j] = max(z_new) + 1  # the slip lifts another wrong token above every logit, the target's too
    answers = _perfect(key)
    _set_row(answers, q["z_new"], z_new)
    answers[choice.label] = other
    mark = _marks(key, answers)[choice.label]
    assert (mark.status, mark.note) == (FOLLOW_THROUGH, "follows from your z_new")
    answers[choice.label] = next(c for c in choice.choices if c not in (other, choice.text))
    assert _marks(key, answers)[choice.label].status == WRONG
    answers = _perfect(key)
    answers[choice.label] = other
    assert _marks(key, answers)[choice.label].status == WRONG
    # The recipe is found for every option set, and it is the only one (no constant choice, no other row).
    for options in problem_types()["example2"].option_sets():
        spec_key = ("example2", tuple(sorted(options.items())), ())
        recipes = choice_recipes_for(spec_key)["likeliest_wrong"]
        assert [r.describe() for r in recipes] == ["argmax_except(z_new, target_index)"], options


def _set_row(answers, quantity, row):
    for (_, j), blank in quantity.blanks.items():
        answers[blank.label] = row[j] if isinstance(row[j], str) else _fraction(row[j])


# ----- named mistakes explain something ------------------------------------------------------------------------


def test_no_named_mistake_for_all_zero_values():
    """attention_backward: ∂S all zeros, then ∂R = 0: unscaled zeros are zeros, so no slip is named."""
    key = _key("attention_backward", 2)
    q = key.problems[0].quantities
    assert any(x != 0 for x in xn.entries(q["dR"].values))
    answers = _perfect(key)
    for name in ("dS", "dR"):
        for blank in q[name].blanks.values():
            answers[blank.label] = "0"
    marks = _marks(key, answers)
    notes = {marks[b.label].note for b in q["dR"].blanks.values() if marks[b.label].status == WRONG}
    assert notes == {""}, notes


def test_softmax_over_columns_is_named_on_a_last_row_softmax():
    """example3: a = softmax(S[-1,:]); a student who normalises down the columns writes the last row of the column
    softmax."""
    for seed in range(1, 20):
        key = _key("example3", seed)
        q = key.problems[0].quantities
        slipped = xn.softmax_columns(q["S"].values)[-1]
        if not all(xn.same(x, y, Fraction(1, 1000)) for x, y in zip(slipped, q["a"].values[0])):
            break
    answers = _perfect(key)
    _set_row(answers, q["a"], [f"{float(x):.4f}" for x in slipped])
    marks = _marks(key, answers)
    assert {marks[b.label].note for b in q["a"].blanks.values() if marks[b.label].status == WRONG} \
        == {mistakes.SOFTMAX_COLUMNS}


def test_a_blanks_own_rounded_note_survives_a_whole_matrix_mistake():
    """example6: h written transposed (its diagonal stays), with h[0,0] in thirds (such as −7/3) rounded: the matrix
    is named 'transposed', the rounded entry keeps its own note."""
    key = next(k for k in (_key("example6", seed) for seed in range(1, 40))
               if k.problems[0].quantities["h"].values[0][0].denominator == 3)
    q = key.problems[0].quantities
    h = q["h"].values
    assert h[0][1] != h[1][0]  # the draw never makes h symmetric: a transposed h always shows
    answers = _perfect(key)
    for (i, j), blank in q["h"].blanks.items():
        answers[blank.label] = _fraction(h[j][i])
    answers[q["h"].blanks[(0, 0)].label] = f"{float(h[0][0]):.4f}"
    marks = _marks(key, answers)
    notes = {(i, j): marks[b.label].note for (i, j), b in q["h"].blanks.items()}
    assert notes[(0, 0)] == mistakes.ROUNDED
    assert notes[(0, 1)] == notes[(1, 0)] == mistakes.TRANSPOSED_RESULT
