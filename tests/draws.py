"""The contract's draws of a type, made once per test process and shared by every test that checks them.

Draws are also kept on disk for the session (conftest.py), so a test in another worker reads them back.

Draw i of a type takes option set i mod K (every option set its share) and the seed of problem 1 of sheet i, as
`transformer-worksheets sheet --seed i` draws it. The contract, the oracles and the slip tests of a type check
the same draws; the tests of one type carry the same xdist group (`by_type`), so with `--dist loadgroup` (make test)
one process draws them once instead of each test drawing its own.
"""

from __future__ import annotations

import json
import os
import pickle
import time
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

import pytest

from generator.core.problem import Problem
from generator.core.registry import make_problem, problem_types
from generator.documents.sheet import ProblemSpec, Sheet, SheetSpec, problem_seed, render_key_json, variant_code

SEEDS_PER_TYPE = 1000
CLAIM_WAIT_S = 60  # a chain's slowest draw takes a few seconds; past this, the draw is made here too
_KEPT_TYPES = 2  # a chain's 1,000 draws hold about 400 MB: keep the type being tested and the one before it

_drawn: OrderedDict[str, dict[int, Problem]] = OrderedDict()


def option_set(type_name: str, seed: int) -> dict[str, str]:
    """The option set draw `seed` of this type uses."""
    sets = problem_types()[type_name].option_sets()
    return sets[seed % len(sets)]


def draw(type_name: str, seed: int) -> Problem:
    """Draw `seed` of a type (its option set: option_set), made once per process."""
    problems = _drawn.setdefault(type_name, {})
    _drawn.move_to_end(type_name)
    while len(_drawn) > _KEPT_TYPES:
        _drawn.popitem(last=False)
    if seed not in problems:
        problems[seed] = _stored(type_name, seed)
    return problems[seed]


def _stored(type_name: str, seed: int) -> Problem:
    """Draw `seed`, read back from the session's folder (conftest.py) when another process made it, or is making it
    (its claim file is there: wait for it, up to CLAIM_WAIT_S, rather than draw it twice)."""
    folder = os.environ.get("TW_TEST_DRAWS")
    if not folder:
        return _drawn_now(type_name, seed)
    path = Path(folder) / f"{type_name}-{seed}.pickle"
    try:
        os.close(os.open(path.with_suffix(".claim"), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:  # another worker draws it
        deadline = time.monotonic() + CLAIM_WAIT_S
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        if path.exists():
            return pickle.loads(path.read_bytes())
        return _drawn_now(type_name, seed)
    problem = _drawn_now(type_name, seed)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_bytes(pickle.dumps(problem, protocol=pickle.HIGHEST_PROTOCOL))
    os.replace(partial, path)  # whole or not there: a reader in another worker never sees half a file
    return problem


def _drawn_now(type_name: str, seed: int) -> Problem:
    return make_problem(type_name, option_set(type_name, seed), problem_seed(seed, 1, type_name))


def draws(type_name: str, count: int = SEEDS_PER_TYPE, **fixed: str) -> Iterator[tuple[dict[str, str], Problem]]:
    """(options, problem) for the first `count` draws whose option set matches `fixed` (all draws without it)."""
    if not any(all(o.get(k) == v for k, v in fixed.items()) for o in problem_types()[type_name].option_sets()):
        raise ValueError(f"no option set of {type_name} has {fixed}")
    seed = 0
    while count > 0:
        options = option_set(type_name, seed)
        if all(options.get(k) == v for k, v in fixed.items()):
            yield options, draw(type_name, seed)
            count -= 1
        seed += 1


def key_json_of(type_name: str, seed: int) -> dict:
    """The JSON key of draw `seed` (a one-problem sheet, calculator allowed), parsed back from its text."""
    spec = SheetSpec(title="Test", seed=seed, calculator="basic",
                     problems=(ProblemSpec(type_name, dict(option_set(type_name, seed))),))
    return json.loads(render_key_json(Sheet(spec, variant_code(spec), (draw(type_name, seed),))))


def by_type(type_names) -> list:
    """Parameters for a per-type test, each in its type's xdist group (see the module's docstring)."""
    return [pytest.param(name, marks=pytest.mark.xdist_group(name)) for name in type_names]
