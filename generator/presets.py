"""Named sheets that `make` builds by default and teachers can start from."""

from __future__ import annotations

from .sheet import ProblemSpec

PRESETS: dict[str, tuple[str, tuple[str, ...]]] = {
    # name: (title, problem specs as on the command line)
    "matrix-core": (
        "The 2x2 matrix core",
        (
            "matmul:shape=2x2",
            "matmul:shape=2x1",
            "transpose",
            "dot_product",
            "linear_map:kind=rotation",
            "linear_map:kind=scaling",
            "inverse",
            "matmul_gradient",
        ),
    ),
}


def preset_problems(name: str) -> tuple[str, tuple[ProblemSpec, ...]]:
    """A preset's title and its problem specs."""
    title, specs = PRESETS[name]
    return title, tuple(ProblemSpec.parse(s) for s in specs)
