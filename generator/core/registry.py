"""Finds problem types by module name in generator/problems and makes problems from specs."""

from __future__ import annotations

import importlib
import pkgutil
import re
from dataclasses import dataclass, replace
from fractions import Fraction
from functools import cache
from types import ModuleType
from typing import Callable

from generator import problems as problems_package
from generator.core.problem import Contract, Problem
from generator.core.readings import NotInTable
from generator.core.rng import Rng

MAX_ATTEMPTS = 1000  # redraws allowed before a type is declared broken


class SpecError(ValueError):
    """A user's request that cannot be met; the message is one line that says what is accepted."""


@dataclass(frozen=True)
class Option:
    """One option of a problem type: its accepted values (as strings) and default."""

    name: str
    choices: tuple[str, ...]  # the accepted values; for a free option, examples that tests try
    default: str
    help: str
    free: bool = False  # any text is accepted here, and the type's check_options decides


@dataclass(frozen=True)
class ProblemType:
    """A problem type as found in its module."""

    name: str
    title: str
    summary: str
    options: tuple[Option, ...]
    contract: Contract
    generate: Callable[[Rng, dict[str, str]], Problem]
    chained: bool  # a multi-part worksheet where later parts use earlier results
    # Raises SpecError for option values that are each accepted but do not work together.
    check: Callable[[dict[str, str]], None] | None = None

    def option_sets(self) -> list[dict[str, str]]:
        """Every combination of option values that works together (for tests and benchmarks)."""
        combos: list[dict[str, str]] = [{}]
        for option in self.options:
            values = (option.default,) if option.free else option.choices
            combos = [{**combo, option.name: value} for combo in combos for value in values]
        # A free option's examples are tried once each, the other options at their defaults.
        defaults = {option.name: option.default for option in self.options}
        combos += [{**defaults, option.name: example} for option in self.options if option.free
                   for example in option.choices if example != option.default]
        return [combo for combo in combos if self._works(combo)]

    def _works(self, options: dict[str, str]) -> bool:
        try:
            if self.check is not None:
                self.check(options)
        except SpecError:
            return False
        return True

    def resolve(self, given: dict[str, str]) -> dict[str, str]:
        """The full option dict: defaults filled in, unknown names or values refused."""
        known = {option.name: option for option in self.options}
        for name in given:
            if name not in known:
                accepted = ", ".join(known) or "none"
                raise SpecError(f"problem type '{self.name}' has no option '{name}'; accepted: {accepted}")
        resolved = {}
        for option in self.options:
            value = _spelled_as_choice(given.get(option.name, option.default), option.choices)
            if value not in option.choices and not option.free:
                # The option's help says why the range is what it is (e.g. √d_k must be whole).
                raise SpecError(
                    f"problem type '{self.name}': {option.name}={value!r} is not accepted; "
                    f"accepted: {', '.join(option.choices)} ({option.help})"
                )
            resolved[option.name] = value
        if self.check is not None:
            self.check(resolved)  # sizes that each look fine but cannot work together
        return resolved


_SHORT_NUMBER = re.compile(r"-?\d{1,6}(\.\d{1,6})?|-?\d{1,6}/\d{1,6}")


def _spelled_as_choice(value: str, choices: tuple[str, ...]) -> str:
    """The choice a number was meant as ('0.1' for '1/10', '0.50' for '1/2'); other text unchanged."""
    # Only short plain decimals and fractions: '1e99999999' would build a huge integer before failing.
    if value in choices or not _SHORT_NUMBER.fullmatch(value.strip()):
        return value
    try:
        number = Fraction(value.strip())
    except (ValueError, ZeroDivisionError):
        return value
    for choice in choices:
        try:
            if Fraction(choice) == number:
                return choice
        except (ValueError, ZeroDivisionError):
            continue
    return value


def _load(module: ModuleType) -> ProblemType:
    doc = (module.__doc__ or "").strip().splitlines()
    return ProblemType(
        name=module.__name__.rsplit(".", 1)[1],
        title=module.TITLE,
        summary=doc[0] if doc else module.TITLE,
        options=tuple(module.OPTIONS),
        contract=module.CONTRACT,
        generate=module.generate,
        chained=getattr(module, "CHAINED", False),
        check=getattr(module, "check_options", None),
    )


@cache
def problem_types() -> dict[str, ProblemType]:
    """Every problem type, by name, sorted; a module in generator/problems is a type unless it starts with _."""
    found = {}
    for info in sorted(pkgutil.iter_modules(problems_package.__path__), key=lambda i: i.name):
        if not info.name.startswith("_"):
            module = importlib.import_module(f"{problems_package.__name__}.{info.name}")
            found[info.name] = _load(module)
    return found


def get_type(name: str) -> ProblemType:
    """The problem type called `name`, or a SpecError listing the accepted names."""
    types = problem_types()
    if name not in types:
        raise SpecError(f"unknown problem type '{name}'; accepted: {', '.join(types)}")
    return types[name]


def make_problem(type_name: str, options: dict[str, str], seed: str) -> Problem:
    """Generate one exact problem, redrawing until no forbidden (degenerate) condition holds."""
    kind = get_type(type_name)
    resolved = kind.resolve(options)
    rng = Rng(seed)
    for _ in range(MAX_ATTEMPTS):
        try:
            draft = kind.generate(rng, dict(resolved))
        except NotInTable:
            continue  # a step would need a table value the sheet does not print: that draw is not made
        problem = replace(draft, type=kind.name, title=kind.title, options=resolved, seed=seed)
        if not kind.contract.degeneracies(problem):
            return problem
    raise RuntimeError(f"{type_name} drew only degenerate problems for seed {seed!r}")
