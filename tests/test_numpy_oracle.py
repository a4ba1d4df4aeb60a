"""Every key agrees with an independent float computation in numpy, read from the JSON key."""

from __future__ import annotations

import numpy as np
import pytest

from generator.core.registry import problem_types

from .conftest import as_array, as_float, blanks_by_name, key_json

SEEDS = range(200)


def _angle(dot: float) -> str:
    return "acute" if dot > 1e-12 else "obtuse" if dot < -1e-12 else "right"


def matmul(given, facts):
    a = as_array(given["A"])
    if "x" in given:
        return {"y": a @ as_array(given["x"])}
    b = as_array(given["B"])
    return {"C": a @ b, "D": b @ a}


def transpose(given, facts):
    q, k = as_array(given["Q"]), as_array(given["K"])
    return {"KT": k.T, "S": q @ k.T}


def dot_product(given, facts):
    a = as_array(given["a"]).ravel()
    expected = {}
    for name in "bcd":
        dot = float(np.dot(a, as_array(given[name]).ravel()))
        expected[f"a.{name}"] = dot
        expected[f"angle(a,{name})"] = _angle(dot)
    return expected


def linear_map(given, facts):
    if "cos_theta" in facts:
        c, s = as_float(facts["cos_theta"]), as_float(facts["sin_theta"])
        m = np.array([[c, -s], [s, c]])
    else:
        m = np.diag([as_float(facts["scale_x"]), as_float(facts["scale_y"])])
    det = float(np.linalg.det(m))
    return {"M": m, "w": m @ as_array(given["v"]), "det": det, "area": abs(det)}


def inverse(given, facts):
    a = as_array(given["A"])
    return {"det": float(np.linalg.det(a)), "Ainv": np.linalg.inv(a)}


def matmul_gradient(given, facts):
    a, b, dc = as_array(given["A"]), as_array(given["B"]), as_array(given["dC"])
    return {"dA": dc @ b.T, "dB": a.T @ dc}


# One independent oracle per problem type, written without the generator's code.
ORACLES = {f.__name__: f for f in (matmul, transpose, dot_product, linear_map, inverse, matmul_gradient)}


def test_every_type_has_an_oracle():
    from .test_torch_oracle import ORACLES as TORCH_ORACLES

    assert set(ORACLES) | set(TORCH_ORACLES) == set(problem_types())


def _specs(kind) -> list[str]:
    return [kind.name + (":" + ",".join(f"{k}={v}" for k, v in options.items()) if options else "")
            for options in kind.option_sets()]


@pytest.mark.parametrize("type_name", sorted(ORACLES))
def test_key_matches_numpy(type_name):
    kind = problem_types()[type_name]
    specs = _specs(kind)
    for seed in SEEDS:
        key = key_json(specs, seed)
        for problem in key["problems"]:
            expected = ORACLES[type_name](problem["given"], problem["facts"])
            answers = blanks_by_name(problem)
            assert set(answers) == set(expected), f"{problem['type']} seed {seed}: blanks {sorted(answers)}"
            for name, value in expected.items():
                if isinstance(value, str):
                    assert answers[name] == value, f"{type_name} seed {seed} {name}"
                else:
                    np.testing.assert_allclose(answers[name], value, rtol=1e-12, atol=1e-12,
                                               err_msg=f"{type_name} seed {seed} {name}")


def test_oracle_can_disagree():
    """The comparison is real: a key with one wrong entry fails it."""
    key = key_json(["matmul"], 3)
    problem = key["problems"][0]
    problem["blanks"][0]["value"] = str(as_float(problem["blanks"][0]["value"]) + 1)
    answers = blanks_by_name(problem)
    expected = matmul(problem["given"], problem["facts"])
    with pytest.raises(AssertionError):
        np.testing.assert_allclose(answers["C"], expected["C"])
