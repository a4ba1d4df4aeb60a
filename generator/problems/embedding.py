"""Token embedding lookup, plus positional embeddings from a given integer table."""

from __future__ import annotations

from sympy import ImmutableMatrix, Rational

from generator.core.draws import has_zero_row, int_matrix
from generator.core.forward import add_step
from generator.core.problem import Bounds, Contract, Part, Problem, Quantity, Step, Tex, matrix_rows
from generator.core.registry import Option
from generator.documents.render import labelled_table
from generator.core.rng import Rng
from generator.core.slips import equal_rows

TITLE = "Token and position embeddings"
OPTIONS = [
    Option("tokens", ("2", "3"), "3", "length of the input sequence"),
    Option("d_model", ("2", "3", "4"), "2", "embedding width"),
    Option("positions", ("yes", "no"), "yes", "yes: add the positional embedding of each position"),
]
VOCABULARY = ("A", "B", "C", "D")

CONTRACT = Contract(
    given=Bounds(3, 1, Rational(3)),
    intermediate=Bounds(5, 1, Rational(5)),
    answer=Bounds(5, 1, Rational(5)),
    forbidden={
        "two tokens share an embedding": lambda p: len(set(matrix_rows(p.given_value("E"))[:4])) < 4,
        "a token's embedding is zero": lambda p: has_zero_row(p.given_value("E")),
        "a position's embedding is zero": lambda p: "P" in p.facts and has_zero_row(p.facts["P"]),
        # Rows of E looked up by position instead of by token id must give another X_tok.
        "every token's id is its position": lambda p: all(t == i for i, t in enumerate(p.facts["token_ids"])),
        # Equal rows of P would hide adding them to the wrong positions.
        "two positions share an embedding": lambda p: "P" in p.facts and equal_rows(p.facts["P"]),
    },
)



def generate(rng: Rng, options: dict[str, str]) -> Problem:
    """Draw E (one row per vocabulary token), P (one row per position) and an input sequence."""
    n, d = int(options["tokens"]), int(options["d_model"])
    e = int_matrix(rng, len(VOCABULARY), d, -3, 3)
    ids = [rng.below(len(VOCABULARY)) for _ in range(n)]
    if n == 3 and rng.below(2):
        ids[2] = ids[0]  # a repeated token shows that position, not identity, tells the copies apart
    words = " ".join(VOCABULARY[t] for t in ids)
    x_tok = ImmutableMatrix([list(e.row(t)) for t in ids])
    tok = Quantity("X_tok", Tex(r"X_{\text{tok}}"), x_tok)
    lookup = Step(
        text=Tex("Row $i$ of $X_{\\text{tok}}$ is the row of $E$ for the $i$-th input token."),
        lines=tuple(Tex(f"\\text{{position {i}: token {VOCABULARY[t]}}} \\to E[{t},:]") for i, t in enumerate(ids)),
        result=tok,
    )
    facts = {
        "token_ids": ImmutableMatrix([ids]),
        "sequence": Tex(r"\texttt{" + words + "}"),
        "E_table": labelled_table(VOCABULARY, e, "E"),
    }
    parts = [Part(prompt=Tex(f"Write down $X_{{\\text{{tok}}}}$, the embeddings of the input ({n} rows)."),
                  answers=(tok,), steps=(lookup,))]
    if options["positions"] == "yes":
        p = int_matrix(rng, n, d, -2, 2)
        facts["P"] = p
        facts["P_table"] = labelled_table([f"pos {i}" for i in range(n)], p, "P")
        x = Quantity("X", Tex("X"), x_tok + p)
        parts.append(Part(
            prompt=Tex(r"Add the positional embeddings: compute $X = X_{\text{tok}} + P$."),
            answers=(x,),
            steps=(add_step(Tex("Add row $i$ of $P$ to row $i$ of $X_{\\text{tok}}$."), x_tok, p, Tex(r"X = X_{\text{tok}} + P"), x),),
        ))
    return Problem.draft(given=[Quantity("E", Tex("E"), e)], parts=parts, facts=facts)
