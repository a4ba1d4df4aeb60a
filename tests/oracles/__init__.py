"""One PyTorch oracle per newer problem type, one module each (tests/oracles/<type>.py defines `oracle`)."""

from __future__ import annotations

import importlib
import pkgutil


def collected() -> dict:
    """Each module's `oracle(given, facts, options)` under its module's name, which is the type's name."""
    found = {}
    for module in pkgutil.iter_modules(__path__):
        found[module.name] = importlib.import_module(f"{__name__}.{module.name}").oracle
    return found
