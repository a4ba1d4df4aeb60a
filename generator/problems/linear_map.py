"""A linear transformation of a column vector: a rotation or a scaling, and how it scales area."""

from __future__ import annotations

from sympy import ImmutableMatrix, Rational, latex

from generator.core.draws import DIFFICULTY, entry
from generator.core.problem import Bounds, Contract, Part, Problem, Quantity, Step, Tex
from generator.core.registry import Option
from generator.core.rng import Rng
from generator.core.slips import hidden_product_slips
from generator.core.worked import determinant_step, product_step

TITLE = "Linear transformations"
OPTIONS = [
    Option("kind", ("rotation", "scaling"), "rotation", "rotation: counterclockwise by 90° or 270°, or (medium, hard) by a 3-4-5 angle, where v uses multiples of 5 so M·v stays whole; scaling: stretch each axis"),
    DIFFICULTY,
]

# Quarter turns by name, then the 3-4-5 angles, whose cos and sin are exact fifths. No 180°: M = −I is its own
# transpose, so a rotation matrix written the wrong way round (−sin θ in the lower corner) would go unseen.
_QUARTER_TURNS = {(0, 1): 90, (0, -1): 270}
_PYTHAGOREAN = [("3/5", "4/5"), ("4/5", "3/5"), ("-3/5", "4/5"), ("4/5", "-3/5")]
_SCALES = {"easy": [2, 3, -1], "medium": [2, 3, -2, -1, Rational(1, 2)], "hard": [Rational(1, 2), Rational(3, 2), -2, 3, Rational(-1, 2)]}

CONTRACT = Contract(
    given=Bounds(10, 5, Rational(10)),  # cos θ and sin θ may be fifths
    # cos²θ and sin²θ of a 3-4-5 angle are in 25ths (9/25 + 16/25 = 1).
    intermediate=Bounds(30, 25, Rational(30)),
    answer=Bounds(30, 5, Rational(30)),
    forbidden={
        "v lies on an axis": lambda p: any(x == 0 for x in p.given_value("v")),
        "M leaves v where it is": lambda p: p.parts[1].answers[0].value == p.given_value("v"),
        # A diagonal M (a scaling) has nothing to transpose; any other M must show Mᵀ·v ≠ M·v.
        "Mᵀ·v gives the same w": lambda p: not p.answer("M").is_diagonal()
        and bool(hidden_product_slips(p.answer("M"), p.given_value("v"))),
    },
)


def _rotation(rng: Rng, difficulty: str) -> tuple[ImmutableMatrix, dict, ImmutableMatrix]:
    """M, its exact facts (cos θ, sin θ), and a vector v that M maps to small clean numbers."""
    angles = list(_QUARTER_TURNS) + ([] if difficulty == "easy" else _PYTHAGOREAN)
    cos, sin = (Rational(x) for x in rng.choice(angles))
    m = ImmutableMatrix([[cos, -sin], [sin, cos]])
    if cos.q == 5:
        # cos and sin are fifths: entries that are multiples of 5 keep M·v whole.
        v = ImmutableMatrix(2, 1, [Rational(rng.choice([-10, -5, 5, 10])) for _ in range(2)])
        named = f"\\theta$, where $\\cos\\theta = {latex(cos)}$ and $\\sin\\theta = {latex(sin)}"
    else:
        v = ImmutableMatrix(2, 1, [entry(rng, difficulty, nonzero=True) for _ in range(2)])
        named = f"{_QUARTER_TURNS[(int(cos), int(sin))]}^\\circ"
    facts = {"cos_theta": cos, "sin_theta": sin, "description": Tex(f"rotates vectors counterclockwise by ${named}$")}
    return m, facts, v


def _scaling(rng: Rng, difficulty: str) -> tuple[ImmutableMatrix, dict, ImmutableMatrix]:
    """M = diag(sx, sy) with sx ≠ sy, its exact facts, and a vector v."""
    sx, sy = (Rational(s) for s in rng.shuffled(_SCALES[difficulty])[:2])
    m = ImmutableMatrix([[sx, 0], [0, sy]])
    description = f"scales the $x$-coordinate by ${latex(sx)}$ and the $y$-coordinate by ${latex(sy)}$"
    v = ImmutableMatrix(2, 1, [entry(rng, difficulty, nonzero=True) for _ in range(2)])
    return m, {"scale_x": sx, "scale_y": sy, "description": Tex(description)}, v


def generate(rng: Rng, options: dict[str, str]) -> Problem:
    """Draw a map M and a vector v; ask for M, M·v and det M (the area scale factor)."""
    difficulty = options["difficulty"]
    m, facts, v = (_rotation if options["kind"] == "rotation" else _scaling)(rng, difficulty)
    mq = Quantity("M", Tex("M"), m)
    w = Quantity("w", Tex("w"), m * v)
    det = m.det()
    det_q = Quantity("det", Tex(r"\det M"), det)
    area_q = Quantity("area", Tex(r"|\det M|"), abs(det))
    orientation = "flips orientation (a mirror image)" if det < 0 else "keeps orientation"
    # Math stays outside \text{}: a fraction such as 3/2 cannot be typeset inside it.
    area_check = Tex(
        f"\\det M {'<' if det < 0 else '>'} 0\\text{{, so $M$ {orientation}.}}"
    )
    length_check = (
        Tex(f"|w|^2 = {latex(sum(x**2 for x in m * v))} = |v|^2\\text{{: the length is unchanged.}}")
        if options["kind"] == "rotation"
        else None
    )
    return Problem.draft(
        given=[Quantity("v", Tex("v"), v)],
        facts=facts,
        parts=[
            Part(
                prompt=Tex("Write down the $2 \\times 2$ matrix $M$ of this map."),
                answers=(mq,),
                steps=(
                    Step(
                        text=Tex("Column $j$ of $M$ is where $M$ sends the unit vector $e_j$."),
                        formula=Tex(
                            r"M = \begin{bmatrix} \cos\theta & -\sin\theta \\ \sin\theta & \cos\theta \end{bmatrix}"
                            if options["kind"] == "rotation"
                            else r"M = \begin{bmatrix} s_x & 0 \\ 0 & s_y \end{bmatrix}"
                        ),
                        result=mq,
                    ),
                ),
            ),
            Part(
                prompt=Tex("Compute $w = M\\,v$."),
                answers=(w,),
                steps=(
                    product_step(
                        Tex("Row $i$ of $M$ times the column $v$ gives $w_i$."),
                        m,
                        v,
                        Tex(r"w = M\,v"),
                        w,
                        checks=(length_check,) if length_check else (),
                    ),
                ),
            ),
            Part(
                prompt=Tex("Compute $\\det M$, and the factor $|\\det M|$ by which $M$ scales areas."),
                answers=(det_q, area_q),
                steps=(
                    determinant_step("M", m, det_q, checks=(area_check,)),
                    Step(text=Tex("Areas are multiplied by the size of the determinant; its sign only tells orientation."),
                         formula=Tex(r"\text{area factor} = |\det M|"), result=area_q),
                ),
            ),
        ],
    )
