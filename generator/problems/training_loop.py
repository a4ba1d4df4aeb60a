"""The training loop's counting: batches per epoch (⌈N/B⌉, or ⌊N/B⌋ with drop_last), steps, samples seen."""

from __future__ import annotations

from sympy import Integer, Rational

from generator.core.problem import Bounds, Contract, Part, Problem, Quantity, Step, Tex
from generator.core.registry import Option
from generator.core.rng import Rng

TITLE = "Batches, epochs and steps"
OPTIONS = [
    Option("drop_last", ("no", "yes", "both"), "both",
           "whether the DataLoader drops the last, smaller batch (no: PyTorch's default; both: compare the two)"),
    Option("sizes", ("small", "large"), "small", "data sets of tens of samples, or of thousands with batches of 32-128"),
]
SMALL_BATCHES = (4, 5, 6, 8, 10, 12, 16)
LARGE_BATCHES = (32, 64, 128)


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _given(p: Problem, name: str) -> int:
    return int(p.given_value(name))


def _one_long_epoch_hidden(p: Problem) -> bool:
    """The run's steps counted as one long epoch (⌈E·N/B⌉ or ⌊E·N/B⌋) give the key's steps."""
    n, b, e = (_given(p, k) for k in "NBE")
    mode = p.options["drop_last"]
    keep = mode in ("no", "both") and e * _ceil_div(n, b) == _ceil_div(e * n, b)
    drop = mode in ("yes", "both") and e * (n // b) == (e * n) // b
    return keep or drop


def _samples_over_batch_hidden(p: Problem) -> bool:
    """Steps until S samples as ⌈S/B⌉ (as if every batch were full) give the key's count."""
    if p.options["drop_last"] == "yes":
        return False
    return _ceil_div(_given(p, "S"), _given(p, "B")) == int(p.answer("steps_S"))


CONTRACT = Contract(
    given=Bounds(100000, 1, Rational(100000)),
    intermediate=Bounds(1000000, 1, Rational(1000000)),
    answer=Bounds(1000000, 1, Rational(1000000)),
    forbidden={
        # N a multiple of B: ⌈N/B⌉ = ⌊N/B⌋, so rounding the wrong way (or dropping the last batch) would not show.
        "the batch size divides the data set": lambda p: _given(p, "N") % _given(p, "B") == 0,
        "one long epoch gives the key's step count": _one_long_epoch_hidden,
        "S/B rounded up gives the key's steps until S": _samples_over_batch_hidden,
    },
)


def _draw_sizes(rng: Rng, sizes: str) -> tuple[int, int, int]:
    if sizes == "large":
        b = rng.choice(LARGE_BATCHES)
        n = 100 * rng.integer(10, 100)
        e = rng.choice((3, 4, 5, 10))
    else:
        b = rng.choice(SMALL_BATCHES)
        n = rng.integer(3 * b + 1, 100)
        e = rng.integer(3, 5)
    return n, b, e


def generate(rng: Rng, options: dict[str, str]) -> Problem:
    """Draw N (never a multiple of B), B and E; S lies q ≥ 2 whole epochs plus j full batches into the run."""
    mode = options["drop_last"]
    n, b, e = _draw_sizes(rng, options["sizes"])
    while n % b == 0:
        n, b, e = _draw_sizes(rng, options["sizes"])
    full, rest = n // b, n % b
    keep, drop = full + 1, full
    q = rng.integer(2, e - 1)
    j = rng.integer(1, full)
    s = q * n + j * b
    given = [Quantity("N", Tex("N"), Integer(n)), Quantity("B", Tex("B"), Integer(b)), Quantity("E", Tex("E"), Integer(e))]
    if mode != "yes":
        given.append(Quantity("S", Tex("S"), Integer(s)))
    division = Tex(f"N = {n} = {full} \\cdot {b} + {rest}")
    keep_q = Quantity("batches", Tex(r"\text{batches per epoch}" if mode == "no" else r"\text{batches (keep last)}"),
                      Integer(keep))
    drop_q = Quantity("batches_drop", Tex(r"\text{batches per epoch}" if mode == "yes" else r"\text{batches (drop last)}"),
                      Integer(drop))
    last_q = Quantity("last", Tex(r"\text{size of the last batch}" if mode != "yes" else r"\text{samples dropped per epoch}"),
                      Integer(rest))
    keep_step = Step(
        text=Tex(f"Divide with remainder: {full} full batches of {b}, and {rest} samples left over. With "
                 r"\texttt{drop\_last=False} the leftover samples form one more, smaller batch: round \emph{up}."),
        formula=Tex(r"\text{batches} = \left\lceil \frac{N}{B} \right\rceil"),
        lines=(division, Tex(f"\\left\\lceil \\frac{{{n}}}{{{b}}} \\right\\rceil = {full} + 1 = {keep}"),
               Tex(f"\\text{{last batch}} = N - {full} \\cdot B = {n} - {full * b} = {rest}")),
        result=keep_q, checks=(Tex(f"{full} \\cdot {b} + {rest} = {n}\\text{{: every sample is used once per epoch.}}"),))
    drop_step = Step(
        text=Tex(r"With \texttt{drop\_last=True} the incomplete last batch is skipped: round \emph{down}; "
                 f"its {rest} samples are not used in that epoch."),
        formula=Tex(r"\text{batches} = \left\lfloor \frac{N}{B} \right\rfloor"),
        lines=(division, Tex(f"\\left\\lfloor \\frac{{{n}}}{{{b}}} \\right\\rfloor = {drop}"),
               Tex(f"\\text{{dropped}} = N - {drop} \\cdot B = {n} - {drop * b} = {rest}")),
        result=drop_q)
    steps_keep = Quantity("steps", Tex(r"\text{steps (keep last)}" if mode == "both" else r"\text{optimizer steps}"),
                          Integer(e * keep))
    steps_drop = Quantity("steps_drop", Tex(r"\text{steps (drop last)}" if mode == "both" else r"\text{optimizer steps}"),
                          Integer(e * drop))
    seen_keep = Quantity("seen", Tex(r"\text{samples seen (keep last)}" if mode == "both" else r"\text{samples seen}"),
                         Integer(e * n))
    seen_drop = Quantity("seen_drop", Tex(r"\text{samples seen (drop last)}" if mode == "both" else r"\text{samples seen}"),
                         Integer(e * drop * b))

    def steps_step(batches: int, result: Quantity) -> Step:
        up = batches == keep
        whole = _ceil_div(e * n, b) if up else (e * n) // b
        bracket = ("\\lceil", "\\rceil") if up else ("\\lfloor", "\\rfloor")
        return Step(text=Tex("One optimizer step per batch, the same number of batches in every epoch."),
                    formula=Tex(r"\text{steps} = E \cdot \text{batches per epoch}"),
                    lines=(Tex(f"{e} \\cdot {batches} = {e * batches}"),), result=result,
                    checks=(Tex(f"\\left{bracket[0]} \\frac{{E N}}{{B}} \\right{bracket[1]} = \\left{bracket[0]} "
                                f"\\frac{{{e * n}}}{{{b}}} \\right{bracket[1]} = {whole} \\ne {e * batches}"
                                f"\\text{{: each epoch rounds on its own.}}"),))

    seen_keep_step = Step(text=Tex("Every sample is seen once per epoch."), formula=Tex(r"E \cdot N"),
                          lines=(Tex(f"{e} \\cdot {n} = {e * n}"),), result=seen_keep)
    seen_drop_step = Step(text=Tex("Only full batches are used: the batches times their size, every epoch."),
                          formula=Tex(r"E \cdot \left\lfloor \frac{N}{B} \right\rfloor \cdot B"),
                          lines=(Tex(f"{e} \\cdot {drop} \\cdot {b} = {e * drop * b}"),), result=seen_drop,
                          checks=(Tex(f"E N - {e * drop * b} = {e * n - e * drop * b} = {e} \\cdot {rest}"
                                      r"\text{: } E \text{ times the dropped batch.}"),))
    parts: list[Part] = []
    if mode == "no":
        parts.append(Part(Tex(r"How many batches does one epoch have, and how many samples are in the last one?"),
                          (keep_q, last_q), (keep_step,)))
        parts.append(Part(Tex(r"How many optimizer steps does the whole run take, and how many samples does the model see "
                              r"in all (counting repeats)?"), (steps_keep, seen_keep), (steps_step(keep, steps_keep), seen_keep_step)))
    elif mode == "yes":
        parts.append(Part(Tex(r"How many batches does one epoch have, and how many samples are left out of each epoch?"),
                          (drop_q, last_q), (drop_step,)))
        parts.append(Part(Tex(r"How many optimizer steps does the whole run take, and how many samples does the model see "
                              r"in all (counting repeats)?"), (steps_drop, seen_drop), (steps_step(drop, steps_drop), seen_drop_step)))
    else:
        parts.append(Part(Tex(r"How many batches does one epoch have with \texttt{drop\_last=False}, and with "
                              r"\texttt{drop\_last=True}? How many samples are in the last, smaller "
                              r"batch, the one that \texttt{drop\_last=True} leaves out?"),
                          (keep_q, drop_q, last_q), (keep_step, drop_step)))
        parts.append(Part(Tex(r"For each setting, how many optimizer steps does the whole run take?"),
                          (steps_keep, steps_drop), (steps_step(keep, steps_keep), steps_step(drop, steps_drop))))
        parts.append(Part(Tex(r"For each setting, how many samples does the model see in all (counting repeats)?"),
                          (seen_keep, seen_drop), (seen_keep_step, seen_drop_step)))
    if mode != "yes":
        steps_s = Quantity("steps_S", Tex(r"\text{steps until } S"), Integer(q * keep + j))
        parts.append(Part(
            Tex(r"With \texttt{drop\_last=False}: after how many optimizer steps has the model seen exactly $S$ samples "
                r"(counting repeats)?"),
            (steps_s,),
            (Step(text=Tex(f"Each whole epoch is {n} samples in {keep} steps; the rest of $S$ comes in full batches of {b} "
                           "at the start of the next epoch. Dividing $S$ by $B$ would count every batch as full."),
                  formula=Tex(r"S = q \cdot N + j \cdot B \;\Rightarrow\; \text{steps} = q \cdot \left\lceil \frac{N}{B} "
                              r"\right\rceil + j"),
                  lines=(Tex(f"S = {s} = {q} \\cdot {n} + {j} \\cdot {b}"),
                         Tex(f"\\text{{steps}} = {q} \\cdot {keep} + {j} = {q * keep + j}")),
                  result=steps_s,
                  checks=(Tex(f"\\left\\lceil \\frac{{S}}{{B}} \\right\\rceil = \\left\\lceil \\frac{{{s}}}{{{b}}} "
                              f"\\right\\rceil = {_ceil_div(s, b)} \\ne {q * keep + j}\\text{{: the short last batches "
                              f"count as steps too.}}"),)),)))
    facts = {"mode": mode}
    return Problem.draft(given=given, parts=parts, facts=facts)
