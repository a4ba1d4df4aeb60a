"""How much room a part's working needs on the worksheet: the lines of handwriting its key's steps take."""

from __future__ import annotations

from math import ceil

from generator.core.problem import Part

# A handwritten line holds about three products of fractions (a/b)(c/d) with their signs, or one worked line of the
# key (a softmax entry, a mean, a root); a line of handwriting with fractions takes about 7 mm.
TERMS_PER_LINE = 3
LINE_MM = 5
# Even a one-step part gets room for a line or two of working; no part asks for more than a page can give
# (the sheet's TeX caps it at what is left of the page beside the part's prompt and boxes).
MIN_MM = 12
MAX_MM = 160


def working_lines(part: Part) -> int:
    """Lines of working a student writes for the part: every expansion's terms and every worked line of its steps."""
    lines = 0
    for step in part.steps:
        lines += sum(ceil(len(expansion.terms) / TERMS_PER_LINE) for expansion in step.expansions)
        lines += len(step.lines)
    return lines


def working_space_mm(part: Part) -> int:
    """The part's working space on the sheet, in millimetres, before the page's spare room is shared out."""
    return min(MAX_MM, max(MIN_MM, LINE_MM * working_lines(part)))
