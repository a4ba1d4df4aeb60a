"""Embedding gradient: each token's row of dL/dE adds up the gradients of every position where it appears."""

from __future__ import annotations

from sympy import ImmutableMatrix, Rational

from generator.core.problem import Bounds, Contract, Expansion, Part, Problem, Quantity, Step, Term, Tex
from generator.core.registry import Option
from generator.core.rng import Rng

TITLE = "Backward into the embedding table"
OPTIONS = [
    Option("tokens", ("3", "4"), "3", "length of the input sequence (at least one token appears more "
           "than once, so its gradient rows add up)"),
    Option("d_model", ("2", "3"), "2", "embedding width"),
]
VOCABULARY = ("A", "B", "C", "D")

CONTRACT = Contract(
    given=Bounds(3, 1, Rational(3)),
    intermediate=Bounds(10, 1, Rational(10)),  # a token seen in up to 4 positions sums up to 4 gradients
    answer=Bounds(10, 1, Rational(10)),
    forbidden={
        "no token repeats (nothing accumulates)": lambda p: len(set(p.facts["token_ids"])) == len(p.facts["token_ids"]),
        "a position's gradient is zero": lambda p: any(not any(p.given_value("dX").row(i)) for i in range(p.given_value("dX").rows)),
        "a repeated token's gradients cancel to 0": lambda p: any(
            not any(p.answer("dE").row(t)) for t in set(p.facts["token_ids"])),
        # Row i of ∂L/∂X put in row i of ∂L/∂E (positions for token ids) must give another ∂L/∂E.
        "every token's id is its position": lambda p: all(t == i for i, t in enumerate(p.facts["token_ids"])),
    },
)


def generate(rng: Rng, options: dict[str, str]) -> Problem:
    """Draw a sequence in which at least one token repeats (a forced pair; the other positions are drawn freely, so a
    token may appear three or four times, or fill the input) and the gradient dL/dX of each position."""
    n, d = int(options["tokens"]), int(options["d_model"])
    ids = [rng.below(len(VOCABULARY)) for _ in range(n)]
    first, second = sorted(rng.shuffled(range(n))[:2])
    ids[second] = ids[first]  # the repeated token: its row of dE is a sum
    dx = ImmutableMatrix(n, d, [rng.choice([-3, -2, -1, 1, 2, 3]) for _ in range(n * d)])  # no 0: every sum shows
    de = ImmutableMatrix([[sum((dx[i, j] for i in range(n) if ids[i] == t), Rational(0)) for j in range(d)]
                          for t in range(len(VOCABULARY))])
    de_q = Quantity("dE", Tex(r"\frac{\partial L}{\partial E}"), de)
    expansions = tuple(
        Expansion(Tex(f"\\partial E[{t},{j}]"), tuple(Term((dx[i, j],)) for i in range(n) if ids[i] == t), de[t, j])
        for t in sorted(set(ids)) for j in range(d)
    )
    lines = tuple(
        Tex(f"\\text{{token {VOCABULARY[t]}: position{'s' if ids.count(t) > 1 else ''} }} "
            + ", ".join(str(i) for i in range(n) if ids[i] == t))
        for t in sorted(set(ids)))
    parts = [Part(Tex(r"Compute $\partial L/\partial E$, one row per vocabulary token (rows of unused tokens are 0)."), (de_q,),
                  (Step(text=Tex("The lookup copied row $E[t]$ to every position holding token $t$, so the gradients of "
                                 "those positions add up in row $t$."),
                        formula=Tex(r"\frac{\partial L}{\partial E}[t,:] = \sum_{i:\ \text{token}_i = t} \frac{\partial L}{\partial X}[i,:]"),
                        lines=lines, expansions=expansions, result=de_q,
                        checks=(Tex(r"\text{The entries of } \partial L/\partial E \text{ add up to those of } \partial L/\partial X."),
                                Tex(r"\partial L/\partial E \text{ has the shape of } E\text{; rows of tokens not in the input are 0.}"))),))]
    words = " ".join(VOCABULARY[t] for t in ids)
    facts = {"token_ids": ImmutableMatrix([ids]), "sequence": Tex(r"\texttt{" + words + "}")}
    return Problem.draft(given=[Quantity("dX", Tex(r"\frac{\partial L}{\partial X}"), dx)], parts=parts, facts=facts)
