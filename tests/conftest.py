"""Shared helpers: build sheets and read JSON keys back as floats for independent checks."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from fractions import Fraction
from functools import lru_cache

import numpy as np
import sympy
import pytest

from generator.documents.sheet import ProblemSpec, SheetSpec, build, render_key_json

# The contract's draws are kept on disk for the session (tests/draws.py): xdist can run a type's contract, oracle and
# slip tests in different workers, and a chain's draw costs up to a second where reading it back costs 5 ms. The
# folder is made before the workers start (they inherit it through the environment) and removed at the end.
_DRAWS_OWNER = "TW_TEST_DRAWS" not in os.environ
if _DRAWS_OWNER:
    os.environ["TW_TEST_DRAWS"] = tempfile.mkdtemp(prefix="transformer-worksheets-draws-")


def pytest_unconfigure(config):
    if _DRAWS_OWNER:
        shutil.rmtree(os.environ.pop("TW_TEST_DRAWS"), ignore_errors=True)


def sheet_for(specs: list[str], seed: int = 1, **kwargs):
    """A built sheet from command-line style problem specs."""
    return build(SheetSpec(title=kwargs.pop("title", "Test"), seed=seed,
                           problems=tuple(ProblemSpec.parse(s) for s in specs), **kwargs))


def key_json(specs: list[str], seed: int = 1) -> dict:
    """The JSON key of a sheet (calculator allowed), parsed back from its text as a checker would read it."""
    return json.loads(render_key_json(sheet_for(specs, seed, calculator="basic")))


def as_float(text: str) -> float:
    """An exact string from the key as a float: rationals ('-3/4') without sympy, 'log(6)' or '-oo' with it."""
    try:
        return float(Fraction(text))
    except ValueError:
        return _symbolic_float(text)


@lru_cache(maxsize=4096)  # the same few logarithms recur across thousands of keys
def _symbolic_float(text: str) -> float:
    return float(sympy.N(sympy.sympify(text, rational=True), 30))


def as_array(value) -> np.ndarray:
    """A JSON matrix (nested lists of exact strings) or scalar string as a float array."""
    return np.vectorize(as_float, otypes=[float])(np.array(value, dtype=str))


def blanks_by_name(problem: dict) -> dict[str, np.ndarray | str]:
    """Answer blanks regrouped per answer name: matrices as float arrays, scalars as floats, choices as keys."""
    grouped: dict[str, list] = {}
    for blank in problem["blanks"]:
        grouped.setdefault(blank["name"], []).append(blank)
    result = {}
    for name, blanks in grouped.items():
        if blanks[0]["kind"] == "choice":
            result[name] = blanks[0]["value"]
        elif blanks[0]["index"] is None:
            result[name] = _blank_float(blanks[0])
        else:
            rows = 1 + max(b["index"][0] for b in blanks)
            cols = 1 + max(b["index"][1] for b in blanks)
            matrix = np.zeros((rows, cols))
            for b in blanks:
                matrix[b["index"][0], b["index"][1]] = _blank_float(b)
            result[name] = matrix
    return result


def _blank_float(blank: dict) -> float:
    """A blank's value: exact for rationals, its 15-digit decimal otherwise (checked against the exact form)."""
    if blank["rational"]:
        return float(Fraction(blank["value"]))
    decimal = float(blank["decimal"])
    assert abs(decimal - as_float(blank["value"])) <= 1e-13 * max(1.0, abs(decimal)) or decimal == as_float(blank["value"])
    return decimal


@pytest.fixture
def tmp_cwd(tmp_path, monkeypatch):
    """Run a test inside an empty folder."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(autouse=True)
def fixed_class_secret(monkeypatch):
    """A class folder a test builds in this process gets a fixed secret (`class` draws one at random), so its
    numbers are the same on every run; tests of the secret itself run `class` in a subprocess or undo this."""
    monkeypatch.setattr("generator.classes.classbuild.new_secret", lambda: bytes(range(32)))

