"""Softmax backward for one row: the Jacobian s_i(δ_ij − s_j), and dz = s ⊙ (ds − ds·s) from an upstream gradient."""

from __future__ import annotations

import sympy
from sympy import ImmutableMatrix, Rational

from generator.core.problem import Bounds, Contract, Expansion, Part, Problem, Quantity, Step, Term, Tex
from generator.core.registry import Option
from generator.documents.render import ln_matrix_tex
from generator.core.rng import Rng
from generator.core.worked import dot_expansion

TITLE = "Backward through softmax"
OPTIONS = [
    Option("length", ("2", "3"), "3", "number of scores in the row"),
    Option("jacobian", ("yes", "no"), "yes", "yes: also write the Jacobian ∂s/∂z"),
]

CONTRACT = Contract(
    given=Bounds(6, 1, Rational(6)),
    intermediate=Bounds(40, 36, Rational(4)),
    answer=Bounds(40, 36, Rational(4)),
    rational_only=False,  # the logits are given as ln k
    forbidden={
        "the upstream gradient is constant (softmax would pass back 0)": lambda p: len(set(p.given_value("ds"))) == 1,
        # ḡ = 0 would let a student who drops it from s ⊙ (∂L/∂s − ḡ) get ∂L/∂z right.
        "ḡ is 0 (dropping it gives the same ∂L/∂z)": lambda p: p.answer("dot") == 0,
    },
)


def generate(rng: Rng, options: dict[str, str]) -> Problem:
    """Logits ln k make s = k/Σk rational; the upstream gradient is small whole numbers."""
    n = int(options["length"])
    while True:
        ks = [rng.integer(1, 4) for _ in range(n)]
        if len(set(ks)) > 1 and sum(ks) <= 6:
            break
    total = sum(ks)
    z = ImmutableMatrix([[sympy.log(k) for k in ks]])
    s = ImmutableMatrix([[Rational(k, total) for k in ks]])
    ds = ImmutableMatrix([[rng.integer(-2, 2) for _ in range(n)]])
    dot = sum((ds[j] * s[j] for j in range(n)), Rational(0))
    dz = ImmutableMatrix([[s[j] * (ds[j] - dot) for j in range(n)]])
    jac = ImmutableMatrix(n, n, lambda i, j: s[i] * ((1 if i == j else 0) - s[j]))
    s_q, dot_q, dz_q = Quantity("s", Tex("s"), s), Quantity("dot", Tex(r"\bar g"), dot), Quantity("dz", Tex(r"\frac{\partial L}{\partial z}"), dz)
    parts = [
        Part(Tex(r"Compute $s = \operatorname{softmax}(z)$ as fractions."), (s_q,),
             (Step(text=Tex(r"$e^{\ln k} = k$, so $s$ is the $k$'s divided by their sum."),
                   lines=(Tex(r"\textstyle\sum_j e^{z_j} = " + " + ".join(map(str, ks)) + f" = {total}"),), result=s_q),)),
    ]
    if options["jacobian"] == "yes":
        jac_q = Quantity("J", Tex(r"\frac{\partial s}{\partial z}"), jac)
        parts.append(Part(Tex(r"Write the Jacobian $J[i,j] = \partial s_i/\partial z_j = s_i(\delta_{ij} - s_j)$."), (jac_q,),
                          (Step(text=Tex(r"On the diagonal $s_i(1 - s_i)$; off it $-s_i s_j$."),
                                formula=Tex(r"J = \operatorname{diag}(s) - s^{\mathsf T} s"), result=jac_q,
                                checks=(Tex(r"\text{Each row of } J \text{ sums to 0 (the weights always sum to 1), and } J \text{ is symmetric.}"),)),)))
    parts += [
        Part(Tex(r"Compute $\bar g = \sum_j \frac{\partial L}{\partial s_j}\,s_j$, the upstream gradient averaged with the weights $s$."),
             (dot_q,), (Step(text=Tex("A weighted average of the upstream gradient."), formula=Tex(r"\bar g = \frac{\partial L}{\partial s} \cdot s"),
                             expansions=(dot_expansion(Tex(r"\bar g"), list(ds), list(s)),), result=dot_q),)),
        Part(Tex(r"Compute $\partial L/\partial z = s \odot (\partial L/\partial s - \bar g)$."), (dz_q,),
             (Step(text=Tex(r"Each score's gradient is its weight times how far its upstream gradient is above the average."),
                   formula=Tex(r"\frac{\partial L}{\partial z_j} = s_j\left(\frac{\partial L}{\partial s_j} - \bar g\right)"),
                   expansions=tuple(Expansion(Tex(f"\\partial z_{j}"), (Term((s[j], ds[j])), Term((s[j], dot), sign=-1)), dz[j])
                                    for j in range(n)),
                   result=dz_q,
                   checks=(Tex(r"\text{The entries of } \partial L/\partial z \text{ sum to 0.}"),)),)),
    ]
    z_tex = Tex(ln_matrix_tex([ks]))
    return Problem.draft(given=[Quantity("z", Tex("z"), z), Quantity("ds", Tex(r"\frac{\partial L}{\partial s}"), ds)],
                         parts=parts, facts={"z_tex": z_tex})
