"""given=LETTERS prints chosen parts with their values instead of blanks, without changing any number."""

from __future__ import annotations

import json

import pytest

from generator.core.registry import SpecError
from generator.documents.sheet import ProblemSpec, parse_part_letters, render_key_json, render_worksheet
from generator.documents.render import matrix_tex

from .conftest import sheet_for


def _blanks(sheet) -> dict[str, str]:
    return {b["label"]: b["value"] for p in json.loads(render_key_json(sheet))["problems"] for b in p["blanks"]}


def test_given_parts_keep_the_numbers_and_drop_their_blanks():
    plain = sheet_for(["tiny_transformer", "example6"], seed=5, calculator="basic")
    given = sheet_for(["tiny_transformer:given=a-c", "example6:given=b"], seed=5, calculator="basic")
    plain_blanks, given_blanks = _blanks(plain), _blanks(given)
    asked = {label: value for label, value in plain_blanks.items()
             if not label.startswith(("1a ", "1b ", "1c ", "2b "))}
    assert given_blanks == asked and len(asked) < len(plain_blanks)
    problems = json.loads(render_key_json(given))["problems"]
    assert [p["given_parts"] for p in problems] == [["a", "b", "c"], ["b"]]
    assert given.variant != plain.variant


def test_a_given_part_shows_its_values_on_the_worksheet():
    plain = sheet_for(["tiny_transformer"], seed=2, calculator="basic")
    given = sheet_for(["tiny_transformer:given=c"], seed=2, calculator="basic")
    y = matrix_tex(plain.problems[0].answer("Y"))
    assert y in render_worksheet(given) and y not in render_worksheet(plain)


@pytest.mark.parametrize("text, letters", [("a", ("a",)), ("a-c", ("a", "b", "c")), ("a-bd", ("a", "b", "d")),
                                           ("ba", ("a", "b"))])
def test_part_letters_are_read(text, letters):
    assert parse_part_letters(text) == letters


@pytest.mark.parametrize("spec, words", [
    ("tiny_transformer:given=z", ["no part z", "a to n"]),
    ("tiny_transformer:given=a-n", ["nothing to answer", "at least one part"]),
    ("matmul:given=1", ["given='1'", "given=a-c"]),
    ("matmul:given=c-a", ["runs backwards", "a-c"]),
])
def test_bad_given_parts_are_one_clear_line(spec, words):
    with pytest.raises(SpecError) as caught:
        sheet_for([spec], calculator="basic")
    message = str(caught.value)
    assert "\n" not in message and all(word in message for word in words), message


def test_given_is_not_a_type_option():
    assert ProblemSpec.parse("matmul:given=a").options == ProblemSpec.parse("matmul").options
