"""Determinant and inverse of a 2×2 matrix built with a small integer determinant."""

from __future__ import annotations

from sympy import ImmutableMatrix, Rational

from generator.core.problem import Bounds, Contract, Expansion, Part, Problem, Quantity, Step, Term, Tex
from generator.core.registry import Option
from generator.core.rng import Rng
from generator.core.worked import determinant_step

TITLE = "Determinant and inverse"
OPTIONS = [
    Option(
        "difficulty",
        ("easy", "medium", "hard"),
        "medium",
        "easy: determinant -1, entries -3..3; medium: determinant -1 or ±2, entries -5..5; hard: determinant ±2, ±3 or ±4, entries -6..6",
    )
]

# Allowed determinants: never 1, where adj A is already A⁻¹ and a forgotten division by det A would go unseen.
_LEVELS = {"easy": (3, (-1,)), "medium": (5, (-1, 2, -2)), "hard": (6, (2, -2, 3, -3, 4, -4))}

CONTRACT = Contract(
    given=Bounds(6, 1, Rational(6)),
    intermediate=Bounds(36, 4, Rational(36)),
    answer=Bounds(6, 4, Rational(6)),
    forbidden={
        "A is singular": lambda p: p.given_value("A").det() == 0,
        # A zero off-diagonal entry hides a forgotten sign change; a == d hides a forgotten swap.
        "A has a zero entry": lambda p: any(x == 0 for x in p.given_value("A")),
        "A[0,0] equals A[1,1]": lambda p: p.given_value("A")[0, 0] == p.given_value("A")[1, 1],
        # A symmetric A has a symmetric inverse, which hides a transposed adjugate.
        "A is symmetric": lambda p: p.given_value("A") == p.given_value("A").T,
        "det A is 1 (forgetting to divide by it would not show)": lambda p: p.given_value("A").det() == 1,
    },
)


def generate(rng: Rng, options: dict[str, str]) -> Problem:
    """Draw integer entries until the determinant is one of the allowed small values."""
    bound, dets = _LEVELS[options["difficulty"]]
    while True:
        a, b, c, d = (rng.integer(-bound, bound) for _ in range(4))
        if a * d - b * c in dets:
            break
    m = ImmutableMatrix([[a, b], [c, d]])
    det = m.det()
    adjugate = ImmutableMatrix([[d, -b], [-c, a]])
    inverse = adjugate / det
    det_q = Quantity("det", Tex(r"\det A"), det)
    adj_q = Quantity("adj", Tex(r"\operatorname{adj} A"), adjugate)
    inv_q = Quantity("Ainv", Tex("A^{-1}"), ImmutableMatrix(inverse))
    if m * inverse != ImmutableMatrix.eye(2):
        raise AssertionError("the inverse does not invert A")
    return Problem.draft(
        given=[Quantity("A", Tex("A"), m)],
        parts=[
            Part(
                prompt=Tex(r"Compute $\det A$."),
                answers=(det_q,),
                steps=(
                    determinant_step("A", m, det_q, checks=(Tex(r"\det A \ne 0\text{, so } A \text{ has an inverse.}"),)),
                ),
            ),
            Part(
                prompt=Tex(r"Compute $A^{-1}$ and check that $A\,A^{-1} = I$."),
                answers=(inv_q,),
                steps=(
                    Step(
                        text=Tex(r"Swap the diagonal entries and change the sign of the other two."),
                        formula=Tex(r"\operatorname{adj} A = \begin{bmatrix} A[1,1] & -A[0,1] \\ -A[1,0] & A[0,0] \end{bmatrix}"),
                        result=adj_q,
                    ),
                    Step(
                        text=Tex(r"Divide every entry by $\det A$."),
                        formula=Tex(r"A^{-1} = \frac{1}{\det A}\,\operatorname{adj} A"),
                        expansions=tuple(
                            Expansion(Tex(f"A^{{-1}}[{i},{j}]"), (Term((Rational(1) / det, adjugate[i, j])),), inverse[i, j])
                            for i in range(2)
                            for j in range(2)
                        ),
                        result=inv_q,
                        checks=(Tex(r"A\,A^{-1} = \begin{bmatrix} 1 & 0 \\ 0 & 1 \end{bmatrix} = I"),),
                    ),
                ),
            ),
        ],
    )
