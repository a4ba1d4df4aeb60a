"""The single Jinja environment for LaTeX, and helpers that turn exact values into TeX."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from decimal import ROUND_HALF_UP, Decimal
from functools import cache, lru_cache

import jinja2
import sympy
from sympy import ImmutableMatrix
from sympy.printing.latex import LatexPrinter

from fractions import Fraction

from generator.core.problem import Choice, Expansion, PerMatrix, Tex, Term, matrix_rows
from generator.core.readings import PLACES, answer_interval, answer_reading, format_places

_TEX_SPECIALS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    # Break TeX's ligatures so text prints as typed: -- is not a dash, `` '' are not curly quotes.
    "-": "-{}",
    "`": r"\textasciigrave{}",
    "'": r"\textquotesingle{}",
    '"': r"\textquotedbl{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
}


# Characters pdflatex prints with T1 fonts and utf8 input: ASCII, Latin-1, Latin Extended-A, common punctuation.
_TEX_PRINTABLE = set(range(0x20, 0x7F)) | set(range(0xA0, 0x180)) | {0x2013, 0x2014, 0x2018, 0x2019, 0x201C, 0x201D, 0x2026, 0x20AC}


def printable_in_tex(ch: str) -> bool:
    """True when pdflatex (T1, utf8) can print this character."""
    return ord(ch) in _TEX_PRINTABLE


@lru_cache(maxsize=4096)  # titles, courses and words of statements repeat on every sheet of a class set
def escape_tex(text: str) -> str:
    """Plain text made safe for TeX: every special character prints as itself."""
    escaped = "".join(_TEX_SPECIALS.get(ch, ch) for ch in text)
    # A line break or tab in a title or name would end a paragraph or be lost; print a space.
    return " ".join(escaped.split()) if any(ch in text for ch in "\n\r\t") else escaped


# Prose quotes: a quote after one of these (or at the start) opens a quotation, anywhere else it closes one.
_OPENS_AFTER = "([{<\u2018\u201c\u2013\u2014-/"


@lru_cache(maxsize=4096)  # a class set's title, course and problem titles: twice a sheet, thousands of sheets
def typographic_quotes(text: str) -> str:
    """Straight quotes in prose (a title, a name) made typographic: O'Brien → O’Brien, "x" → “x”."""
    # A single quote opens (‘) only before a word, and never before a digit: there it elides one ('90s).
    out = []
    for i, ch in enumerate(text):
        before, after = text[i - 1:i], text[i + 1:i + 2]
        opens = (not before or before.isspace() or before in _OPENS_AFTER) and bool(after) and not after.isspace()
        if ch == "'":
            out.append("\u2018" if opens and not after.isdigit() else "\u2019")
        elif ch == '"':
            out.append("\u201c" if opens else "\u201d")
        else:
            out.append(ch)
    return "".join(out)


def prose_tex(text: str) -> Tex:
    """Plain prose (a title, a course) made safe for TeX, with typographic quotes instead of typewriter ones."""
    return Tex(escape_tex(typographic_quotes(text)))


def pdf_string(text: str) -> Tex:
    """Text as a PDF string for \\pdfinfo: UTF-16BE in hex, so no character of it means anything to TeX or PDF."""
    return Tex("<FEFF" + " ".join(text.split()).encode("utf-16-be").hex().upper() + ">")


class SheetLatexPrinter(LatexPrinter):
    """sympy's LaTeX printer, the log of a plain number spelled as the sheets write it: \\ln 3, \\ln \\frac{4}{3}."""

    def _print_log(self, expr, exp=None):
        argument = expr.args[0]
        if not (argument.is_Rational and argument.is_positive):
            return super()._print_log(expr, exp)
        tex = rf"\ln {self._print(argument)}"
        # ln 3 squared: parentheses, or \ln 3^{2} would read as ln 9.
        return tex if exp is None else rf"\left({tex}\right)^{{{exp}}}"


_PRINTER = SheetLatexPrinter({"ln_notation": True})


def number_tex(value: sympy.Expr) -> str:
    """An exact scalar in LaTeX (sympy's printer, with ln rather than log, and ln 3 rather than ln(3))."""
    if isinstance(value, sympy.Rational):
        # A class set prints the same few fractions thousands of times; keyed by the two integers, as hashing and
        # comparing sympy Rationals costs more than the lookup.
        return _fraction_tex(value.p, value.q)
    return _PRINTER.doprint(value)


@lru_cache(maxsize=8192)
def _fraction_tex(p: int, q: int) -> str:
    return _PRINTER.doprint(sympy.Rational(p, q))


def factor_tex(value) -> str:
    """A number as printed after an operator: negatives in parentheses, so 3 + (−1) never reads as 3 + −1."""
    if isinstance(value, sympy.Rational):
        # Every worked product prints its factors: the same few, thousands of times.
        return _fraction_factor_tex(value.p, value.q)
    return f"\\left({number_tex(value)}\\right)" if value < 0 else number_tex(value)


@lru_cache(maxsize=8192)
def _fraction_factor_tex(p: int, q: int) -> str:
    return f"\\left({_fraction_tex(p, q)}\\right)" if p < 0 else _fraction_tex(p, q)


def ln_matrix_tex(ks: list[list[int]]) -> str:
    """Logits given as logarithms, printed as ln k (sympy would print log(k) and simplify ln 1 to 0)."""
    return r"\begin{bmatrix} " + r" \\ ".join(" & ".join(rf"\ln {k}" for k in row) for row in ks) + r" \end{bmatrix}"


@lru_cache(maxsize=4096)  # softmax weights repeat across rows and checks; evaluating one costs ~0.5 ms
def decimal_tex(value: sympy.Expr, places: int = 4) -> str:
    """A decimal rounded half-up to `places`, computed with sympy's exact arithmetic (no floats)."""
    digits = Decimal(str(sympy.N(value, 40))).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    return str(digits).replace("-", "-" if digits != 0 else "")


def approx_tex(value) -> Tex:
    """' \\approx 0.6652' after an irrational exact value (or a matrix with one); nothing for rationals."""
    if isinstance(value, ImmutableMatrix):
        if _rational_matrix(value) or not any(_needs_decimal(x) for x in value):
            return Tex("")
        cells = [[decimal_tex(x) if _needs_decimal(x) else number_tex(x) for x in row] for row in matrix_rows(value)]
        return Tex(r" \approx " + bmatrix_tex(cells))
    if _needs_decimal(value):
        return Tex(rf" \approx {decimal_tex(value)}")
    return Tex("")


def equals_tex(value) -> Tex:
    """The right-hand side after a symbol: '= 3/4', '= ln 6 ≈ 1.7918', or for a matrix with
    irrational entries only '≈ [decimals]' (its exact entries are written out in the step's lines)."""
    if isinstance(value, ImmutableMatrix) and not _rational_matrix(value) and any(_needs_decimal(x) for x in value):
        return approx_tex(value)
    return Tex(f"= {to_tex(value)}{approx_tex(value)}")


def terminating_decimal(value: sympy.Rational) -> str:
    """A fraction whose decimal ends, written in full: −29549/1000000 → -0.029549 (no exponent, no trailing zeros)."""
    numerator, denominator = int(value.p), int(value.q)
    places = 0
    while 10**places % denominator:
        places += 1
        if places > 10_000:
            raise ValueError(f"{value} has no terminating decimal")
    digits = str(abs(numerator) * (10**places // denominator)).rjust(places + 1, "0")
    whole, frac = digits[:len(digits) - places], digits[len(digits) - places:].rstrip("0")
    return ("-" if numerator < 0 else "") + whole + ("." + frac if frac else "")


def written_tex(answer) -> str:
    """An answer's value as the sheets print it: an exact-decimal answer (Quantity.exact_decimal) its terminating
    decimals in full, any other its exact value."""
    if not answer.exact_decimal:
        return to_tex(answer.value)
    if isinstance(answer.value, ImmutableMatrix):
        return bmatrix_tex([[terminating_decimal(x) for x in row] for row in matrix_rows(answer.value)])
    return terminating_decimal(answer.value)


def key_answer_tex(answer, decimals: bool) -> Tex:
    """What the key's answer box prints after the symbol: a 4-place part gives the sheet's table-route values, an exact
    part its exact values (a matrix of logarithms, ℓ = [ln 6; ln 5/2], then its decimals), an exact decimal asked in
    full its decimals (v₅ = [0.00005090399355361 …])."""
    if answer.exact_decimal and not decimals:
        return Tex(f"= {written_tex(answer)}")
    if isinstance(answer.value, ImmutableMatrix) and not decimals and approx_tex(answer.value):
        return Tex(f"= {to_tex(answer.value)}{approx_tex(answer.value)}")
    if not decimals or isinstance(answer.value, Choice):
        return equals_tex(answer.value)
    routes = _reading_grid(answer, lambda r: format_places(answer_interval(r)[0]))
    values = list(answer.value) if isinstance(answer.value, ImmutableMatrix) else [answer.value]
    # "=" only where every printed 4-place value is the exact value itself (P₀ = 0.2500), else "≈".
    relation = "=" if all(v.is_Rational and (v * 10**PLACES).is_Integer for v in values) else r"\approx"
    if not isinstance(answer.value, ImmutableMatrix):
        exact, route = number_tex(answer.value), routes[0][0]
        if relation == "=":  # a value that ends within 4 places: 1/4 = 0.2500
            return Tex(f"= {exact} = {route}")
        return Tex(f"\\approx {route} \\quad ({exact})")
    return Tex(f"{relation} \\begin{{bmatrix}} " + r" \\ ".join(" & ".join(row) for row in routes) + r" \end{bmatrix}")


def accepted_tex(answers) -> Tex:
    """The 4-place answers a grader accepts, per entry: every value the printed tables and roundings allow."""
    pieces = []
    for answer in answers:
        if isinstance(answer.value, Choice):
            continue
        grid = _reading_grid(answer, _accepted_range)
        body = grid[0][0] if len(grid) == 1 and len(grid[0]) == 1 else \
            r"\begin{bmatrix} " + r" \\ ".join(" & ".join(row) for row in grid) + r" \end{bmatrix}"
        pieces.append(f"${answer.symbol}\\colon {body}$")
    return Tex(r"\textit{Accepted to 4 places} (the tables' roundings allow these): " + r"\quad ".join(pieces))


def accepted_places(reading) -> tuple[str, str]:
    """The lowest and the highest 4-place value a grader accepts for one entry."""
    _, low, high = answer_interval(reading)
    first = Fraction((low * 10**PLACES).__ceil__(), 10**PLACES)
    last = Fraction((high * 10**PLACES).__floor__(), 10**PLACES)
    return format_places(first), format_places(last)


def _accepted_range(reading) -> str:
    first, last = accepted_places(reading)
    return first if first == last else f"{first}\\text{{ to }}{last}"


def _reading_grid(answer, show) -> list[list[str]]:
    """show(reading) per entry; an entry that is no finite number (a masked −∞) is printed as it is."""
    def cell(index, value):
        if answer.reading is None and not (value.is_number and value.is_finite):
            return number_tex(value)
        return show(answer_reading(answer, index))
    if isinstance(answer.value, ImmutableMatrix):
        return [[cell((i, j), answer.value[i, j]) for j in range(answer.value.cols)] for i in range(answer.value.rows)]
    return [[cell(None, answer.value)]]


def _rational_matrix(value: ImmutableMatrix) -> bool:
    """True when sympy holds the matrix over the integers or the rationals, so that no entry needs a decimal: known
    without reading the entries (3-4 µs each, and a key asks of each answer several times). Else False: look."""
    domain = getattr(getattr(value, "_rep", None), "domain", None)
    return bool(domain is not None and (domain.is_ZZ or domain.is_QQ))


def _needs_decimal(value) -> bool:
    """A finite exact number that is not a fraction (e.g. e^2/(1+e^2), ln 6)."""
    return isinstance(value, sympy.Basic) and bool(value.is_number) and not value.is_Rational and bool(value.is_finite)


# A sheet and its key print each given and answer matrix two to four times, and reading a sympy matrix's entries
# costs more than printing them.
_printed = PerMatrix(512)


def matrix_tex(value: ImmutableMatrix) -> str:
    """An exact matrix as a bmatrix (a fracmatrix when it has fractions)."""
    # Rows, not sympy's row(i), which builds a new matrix per row and costs more than printing it.
    return _printed.get(value, lambda m: bmatrix_tex([[number_tex(x) for x in row] for row in matrix_rows(m)]))


def bmatrix_tex(cells: list[list[str]]) -> str:
    """Printed cells as a bmatrix; with a fraction among them a fracmatrix, its fractions at text size."""
    if not any(r"\frac" in cell for row in cells for cell in row):
        return r"\begin{bmatrix} " + r" \\ ".join(" & ".join(row) for row in cells) + r" \end{bmatrix}"
    # A matrix cell is set in text style, where a fraction's digits shrink to script size; where a student reads
    # the matrix, \fracstyle is \displaystyle and keeps them at text size (base.tex.j2 defines fracmatrix and
    # \fracstyle, which give such rows the room they need).
    rows = [" & ".join(rf"\fracstyle {cell}" if r"\frac" in cell else cell for cell in row) for row in cells]
    return r"\begin{fracmatrix} " + r" \\ ".join(rows) + r" \end{fracmatrix}"


_TEX_TOKEN = re.compile(r"\\[A-Za-z]+ ?|\\.|.", re.S)


def entry_tex(symbol: str, index: tuple[int, int]) -> Tex:
    """One entry of a printed matrix symbol, as the sheet writes M[i,j]: K^T[0,1], or (Q K^T)[0,1] for a compound."""
    # Compound: more than one term, a fraction, or brackets of its own; Q K^T[0,1] would read as Q times an entry.
    depth, compound = 0, symbol.startswith(r"\frac") or symbol.endswith((")", "]"))
    # TeX's tokens: a control word takes the space after it (\hat m is one term), so a space left over, or a
    # thin space, outside braces separates terms.
    for token in _TEX_TOKEN.findall(symbol):
        depth += {"{": 1, "}": -1}.get(token, 0)
        compound = compound or (depth == 0 and token in (" ", r"\,"))
    body = rf"\left({symbol}\right)" if compound else symbol
    return Tex(f"{body}[{index[0]},{index[1]}]")


def labelled_table(labels, table: ImmutableMatrix, symbol: str) -> Tex:
    """symbol = a matrix with a label printed beside each row (the token or position it belongs to)."""
    names = r"\begin{matrix} " + r" \\ ".join(rf"\text{{{escape_tex(label)}}}" for label in labels) + r" \end{matrix}"
    printed = matrix_tex(table)
    if printed.startswith(r"\begin{fracmatrix}"):
        names = rf"{{\fracrows {names}}}"  # the labels' rows as tall as the table's rows of fractions
    return Tex(f"{symbol} = {names} {printed}")


def to_tex(value) -> str:
    """Jinja's finalize hook: Tex as is, text escaped, exact values printed; floats refused."""
    if isinstance(value, Tex):
        return value
    if isinstance(value, jinja2.Undefined):
        return str(value)  # StrictUndefined raises here, naming the missing variable
    if isinstance(value, str):
        return escape_tex(value)
    if isinstance(value, bool) or isinstance(value, float):
        raise TypeError(f"{type(value).__name__} {value!r} cannot be printed on a sheet; pass an exact value")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, ImmutableMatrix):
        return matrix_tex(value)
    if isinstance(value, sympy.Basic):
        return number_tex(value)
    if isinstance(value, Choice):
        return escape_tex(dict(value.options)[value.value])
    raise TypeError(f"cannot print {type(value).__name__} on a sheet")


def _term_tex(term: Term) -> str:
    return r" \cdot ".join(factor_tex(f) for f in term.factors)


def expansion_tex(expansion: Expansion) -> Tex:
    """One element in full: label = a·b + c·d = value (the first term carries its own − sign)."""
    pieces = []
    for position, term in enumerate(expansion.terms):
        if position == 0:
            pieces.append(("-" if term.sign < 0 else "") + _term_tex(term))
        else:
            pieces.append(("- " if term.sign < 0 else "+ ") + _term_tex(term))
    value = number_tex(expansion.value) + approx_tex(expansion.value)
    return Tex(f"{expansion.label} &= {' '.join(pieces)} = {value}")


# Up to this many rows, a step's expansions are one `aligned` block in a display: typeset once, where align*
# measures its rows and then sets them (a keys chunk's TeX 7 % faster), and under the step's formula with
# the short display skip that align* never takes. Longer ones stay align*, which a page may break between rows.
UNBROKEN_EXPANSIONS = 4


def expansions_tex(expansions: tuple[Expansion, ...]) -> Tex:
    """Every expansion of a step, aligned on '='."""
    lines = r" \\" + "\n"
    rows = lines.join(expansion_tex(e) for e in expansions)
    if len(expansions) <= UNBROKEN_EXPANSIONS:
        return Tex("\\[\\begin{aligned}\n" + rows + "\n\\end{aligned}\\]")
    return Tex("\\begin{align*}\n" + rows + "\n\\end{align*}")


def blank_matrix(shape: tuple[int, int], cell_width: str = "4.2em") -> Tex:
    """A bracketed grid of empty boxes, one per entry, big enough to write a fraction (or decimal) in."""
    rows, cols = shape
    row = " & ".join([rf"\anscell[{cell_width}]"] * cols)
    return Tex(r"\begin{bmatrix} " + r" \\ ".join([row] * rows) + r" \end{bmatrix}")


def choice_boxes(options: tuple[tuple[str, str], ...]) -> Tex:
    """One tick box per option, side by side; a line too short for them all breaks between two options."""
    return Tex(r"\hskip 1.2em plus 0.3em\relax ".join(rf"\mbox{{$\square$~{escape_tex(label)}}}" for _, label in options))


def memo_vbox(register: str, content: str) -> Tex:
    """\\memovbox (layout.tex.j2) setting box \\<register> to a \\vbox of `content`, keyed by a digest of the content:
    the same content gives the same key, so a class document sets each prompt and answer row once."""
    key = hashlib.sha256(content.encode("utf-8")).hexdigest()[:20]
    return Tex(f"\\memovbox\\{register}{{{key}}}{{{content}}}")


@cache
def environment() -> jinja2.Environment:
    """The one Jinja environment: TeX-friendly delimiters, strict undefined, exact values printed."""
    env = jinja2.Environment(
        # The documents' templates, and each problem type's statement fragment beside its module ("problems/x.tex.j2").
        loader=jinja2.ChoiceLoader([jinja2.PackageLoader("generator.documents", "templates"),
                                    jinja2.PrefixLoader({"problems": jinja2.PackageLoader("generator", "problems")})]),
        block_start_string=r"\BLOCK{",
        block_end_string="}",
        variable_start_string=r"\VAR{",
        variable_end_string="}",
        comment_start_string=r"\#{",
        comment_end_string="}",
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
        finalize=to_tex,
        # The templates are package files: no need to stat each one at every get_template (a class set asks
        # thousands of times).
        auto_reload=False,
    )
    env.globals.update(
        blank_matrix=blank_matrix,
        choice_boxes=choice_boxes,
        expansions_tex=expansions_tex,
        equals=equals_tex,
        key_answer=key_answer_tex,
        accepted=accepted_tex,
        memo_vbox=memo_vbox,
    )
    return env


# Marks that belong to the character before them (accents, emoji modifiers, joiners, variation selectors):
# after a character the fonts lack they join its placeholder instead of printing one of their own.
_JOINING_CATEGORIES = ("Mn", "Me", "Cf", "Sk")
# A word longer than this (a 500-letter name) may break after every 4th letter, or it would run off the page;
# the penalty keeps spaces the better place to break.
_LONG_WORD = 16
_LONG_WORD_BREAK = r"\penalty50{}"


def _joins_previous(ch: str) -> bool:
    code = ord(ch)
    return (unicodedata.category(ch) in _JOINING_CATEGORIES or 0x1F3FB <= code <= 0x1F3FF
            or 0xFE00 <= code <= 0xFE0F or 0xE0020 <= code <= 0xE007F)


def user_text_tex(text: str) -> Tex:
    """Any text a user typed (a name, an id) as TeX that prints it as written: characters the
    T1 fonts lack become one visible \\missingglyph per character cluster, never a TeX error.

    The document must define \\missingglyph (student sheets do). Whitespace runs print as one space."""
    pieces: list[str] = []
    placeholder = False  # the last piece is a placeholder a joining mark may extend
    after_joiner = False  # the last character was a zero-width joiner: the next one belongs to the same cluster
    run = 0
    for ch in unicodedata.normalize("NFC", text):
        if ch.isspace():
            if pieces and pieces[-1] != " ":
                pieces.append(" ")
            placeholder = after_joiner = False
            run = 0
            continue
        if printable_in_tex(ch) and ch != "\u00ad":
            piece = _TEX_SPECIALS.get(ch, ch)
            placeholder = after_joiner = False
        elif placeholder and (after_joiner or _joins_previous(ch)):
            after_joiner = ch == "\u200d"
            continue
        elif unicodedata.category(ch) == "Cf" or ch == "\u00ad":
            continue  # invisible formatting (direction marks, soft hyphens): nothing to print
        else:
            piece = r"\missingglyph{}"
            placeholder, after_joiner = True, False
        run += 1
        if run > _LONG_WORD and run % 4 == 1:
            pieces.append(_LONG_WORD_BREAK)
        pieces.append(piece)
    return Tex("".join(pieces).strip())
