"""A student's sheet as HTML for the web page: statements, givens and prompts with KaTeX-ready math, and the blanks.

The statements are the worksheet's own: each type's fragment (generator/problems/<type>.tex.j2) is rendered through
the one Jinja environment with the context the worksheet uses (sheet.worksheet_problems), and the LaTeX it gives is
converted here. The converter knows exactly the subset of LaTeX the fragments, prompts and Given boxes use:

* text: paragraphs (\\par, a blank line), \\textbf, \\texttt, \\emph, \\textit, \\mbox, {groups}, \\centering,
  \\hskip glue, \\enspace \\quad \\qquad, ~, -- and ---, TeX quotes, and every escape render.escape_tex writes
  (\\%, \\&, \\_, \\textless{} ...); a text-mode tabular becomes an HTML table;
* math ($...$, \\(...\\), \\[...\\]) keeps its TeX for KaTeX, with the sheet's own macros mapped to KaTeX's
  (fracmatrix → bmatrix, \\fracstyle → \\displaystyle, \\fracrows → a wider \\arraystretch) and every other
  command checked against a list KaTeX knows.

Anything else raises TexConversionError naming the command: no TeX and no text reaches the HTML unescaped. Math is
emitted as <span class="math inline">\\(TeX\\)</span> or <span class="math display">\\[TeX\\]</span>, the TeX
HTML-escaped; the page renders each such span with KaTeX's auto-render (docs/web.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from markupsafe import Markup, escape

from generator.core.problem import Choice
from generator.documents.render import environment, typographic_quotes
from generator.documents.sheet import Sheet, worksheet_problems


class TexConversionError(ValueError):
    """LaTeX the web page cannot show: a command or construct outside the supported subset (named in the message)."""


# ----- the view ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BlankView:
    """One answer of a part, as inputs: a choice (one radio group), one box, or a grid of boxes laid out as the matrix.

    `cells` holds the label of every input, row by row, exactly as answers files and the marker name blanks:
    [["1a C[0,0]", "1a C[0,1]"], ...] for a matrix, [["1b det"]] for a scalar or a choice."""

    label_prefix: str  # "1a C": problem number and part letter, a space, the answer's name
    symbol_html: Markup  # the answer's symbol as a KaTeX-ready math span
    shape: tuple[int, int] | None  # (rows, columns) of a matrix, else None
    options: tuple[tuple[str, Markup], ...] | None  # a choice's (value, label as HTML), in printed order
    cells: tuple[tuple[str, ...], ...]
    decimals: bool  # the part asks for 4 decimal places (the paper gives wider boxes)


@dataclass(frozen=True)
class PartView:
    """One lettered part. The inline HTML pieces go after "(a)", "Given." and "Given, not asked:" as on paper."""

    letter: str
    prompt_html: Markup
    given_html: Markup  # the Given box printed before the part, or ""
    shown_html: Markup  # a part the teacher gives: its values (the paper prints these instead of the prompt), or ""
    blanks: tuple[BlankView, ...]  # empty for a part that is given


@dataclass(frozen=True)
class ProblemView:
    """One problem: its number, title, statement (block HTML: paragraphs) and parts."""

    number: int
    title_html: Markup
    statement_html: Markup
    parts: tuple[PartView, ...]


def blank_label(number: int, letter: str, name: str, index: tuple[int, int] | None = None) -> str:
    """A blank's label as the JSON key, answers files and the marker write it: '1a C[0,1]', '2b det'."""
    prefix = f"{number}{letter} {name}"
    return f"{prefix}[{index[0]},{index[1]}]" if index is not None else prefix


def sheet_view(sheet: Sheet) -> list[ProblemView]:
    """Every problem of a student's sheet as the page shows it: statements and blanks, never an answer's value."""
    env = environment()
    views = []
    for item, problem in zip(worksheet_problems(sheet), sheet.problems):
        number = item["number"]
        where = f"problem {number} ({item['type']})"
        statement = env.get_template(f"problems/{item['type']}.tex.j2").render(item=item)
        parts = []
        for part_item, part in zip(item["parts"], problem.parts):
            letter = part_item["letter"]
            blanks = []
            # worksheet_problems gives a part's blanks in the order of its answers (none for a given part); the
            # answers lend only their names, for the labels.
            for blank, answer in zip(part_item["blanks"], part.answers):
                prefix = blank_label(number, letter, answer.name)
                if blank.shape is not None and not isinstance(answer.value, Choice):
                    rows, cols = blank.shape
                    cells = tuple(tuple(blank_label(number, letter, answer.name, (i, j)) for j in range(cols))
                                  for i in range(rows))
                else:
                    cells = ((prefix,),)
                options = tuple((key, escape(label)) for key, label in blank.options) if blank.options else None
                blanks.append(BlankView(prefix, math_html(blank.symbol, where=f"{where} {letter} symbol"),
                                        blank.shape, options, cells, part.decimals))
            parts.append(PartView(
                letter=letter,
                prompt_html=tex_html(part_item["prompt"], inline=True, where=f"{where} part {letter}"),
                given_html=tex_html(part_item["given"], inline=True, where=f"{where} part {letter} Given")
                if part_item["given"] else Markup(""),
                shown_html=tex_html(part_item["shown"], inline=True, where=f"{where} part {letter} given values")
                if part_item["shown"] else Markup(""),
                blanks=tuple(blanks),
            ))
        views.append(ProblemView(number, user_text_html(problem.title), tex_html(statement, where=where), tuple(parts)))
    return views


def user_text_html(text: str) -> Markup:
    """Plain text a user typed (a name, a title) as HTML: typographic quotes, every character escaped, nothing kept
    as markup. Render math on the page only inside .math spans, so TeX-like text here is never typeset."""
    return escape(typographic_quotes(" ".join(str(text).split())))


# CSS for what the converter emits (a page may use its own): centred paragraphs, unbreakable boxes, wide displays
# that scroll instead of running off a narrow screen, and text-mode tables.
STATEMENT_CSS = """\
.tex-statement p { margin: 0.4em 0; }
.tex-center { text-align: center; }
.tex-nobreak { white-space: nowrap; }
.tex-tt { font-family: monospace; }
.math.display { display: block; }
/* An inline formula never breaks across lines, as on the sheet (its TeX forbids breaks at relations and
   operators): KaTeX would otherwise break after any top-level ':' or '+', leaving "]" of R[i,:] alone. */
.math:not(.display) > .katex { white-space: nowrap; }
.katex-display { margin: 0.6em 0; overflow-x: auto; overflow-y: hidden; padding: 0.1em 0; }
table.tex-table { border-collapse: collapse; margin: 0.4em auto; }
table.tex-table td { padding: 0.15em 0.6em; }
table.tex-table td.tex-rule-left { border-left: 1px solid currentColor; }
table.tex-table tr.tex-hline > td { border-top: 1px solid currentColor; }
table.tex-table tr.tex-hline-below > td { border-bottom: 1px solid currentColor; }
"""


# ----- math ----------------------------------------------------------------------------------------------------------

# Commands the sheets use in math, all of them KaTeX's (the browser test renders every one we emit).
_KATEX_MATH = frozenset("""
    alpha beta gamma delta epsilon varepsilon zeta eta theta vartheta iota kappa lambda mu nu xi pi rho sigma tau
    upsilon phi varphi chi psi omega Gamma Delta Theta Lambda Xi Pi Sigma Phi Psi Omega
    frac tfrac dfrac sqrt sum prod ln log exp min max det sin cos tan
    hat tilde bar overline vec
    text mathrm mathbf mathsf mathit texttt textbf textit operatorname
    cdot times div pm mp circ odot approx le ge leq geq ne neq lt gt mid to leftarrow rightarrow infty
    partial angle ell dots ldots cdots lVert rVert lvert rvert left right bigl bigr Bigl Bigr
    quad qquad displaystyle textstyle hline begin end
""".split())
# Escapes a \\text{} may hold (render.escape_tex), that KaTeX knows.
_KATEX_TEXT_ESCAPES = frozenset("textbackslash textasciitilde textasciicircum textless textgreater textbar".split())
_MATH_SYMBOLS = frozenset({"\\\\", "\\,", "\\;", "\\:", "\\!", "\\ ", "\\{", "\\}", "\\%", "\\&", "\\_", "\\#",
                           "\\$", "\\|"})
_MATH_ENVIRONMENTS = frozenset({"bmatrix", "pmatrix", "matrix", "array", "aligned"})
# The sheet's own macros (base.tex.j2), for a student reading them: \bigfractionstrue holds in statements, Given
# boxes and given parts, so \fracstyle is \displaystyle and \fracrows widens the rows (paper: \arraystretch 1.9;
# KaTeX's rows of display-style fractions need 2.3 to keep a fraction's bar clear of the one below).
_ROWS = r"\def\arraystretch{2.3}"
_MATH_TOKEN = re.compile(r"\\[A-Za-z]+|\\.|.", re.S)
_ENVIRONMENT = re.compile(r"\s*\{([A-Za-z*]+)\}")


def math_tex(tex: str, where: str = "math") -> str:
    """Math-mode TeX as KaTeX reads it: the sheet's macros mapped, every command checked (TexConversionError)."""
    out = []
    pos = 0
    while pos < len(tex):
        token = _MATH_TOKEN.match(tex, pos).group(0)
        pos += len(token)
        if token in (r"\begin", r"\end"):
            found = _ENVIRONMENT.match(tex, pos)
            if not found:
                raise TexConversionError(f"{where}: {token} without an environment name")
            pos = found.end()
            name = found.group(1)
            if name == "fracmatrix":  # base.tex.j2: \fracrows\begin{bmatrix} ... \end{bmatrix}
                out.append(rf"{{{_ROWS}\begin{{bmatrix}}" if token == r"\begin" else r"\end{bmatrix}}")
            elif name in _MATH_ENVIRONMENTS:
                out.append(f"{token}{{{name}}}")
            else:
                raise TexConversionError(f"{where}: unsupported environment {{{name}}} in math")
        elif token == r"\fracstyle":
            out.append(r"\displaystyle")
        elif token == r"\fracrows":
            out.append(_ROWS)
        elif token.startswith("\\") and token[1:].isalpha():
            if token[1:] not in _KATEX_MATH and token[1:] not in _KATEX_TEXT_ESCAPES:
                raise TexConversionError(f"{where}: unsupported command {token} in math")
            out.append(token)
        elif token.startswith("\\"):
            if token not in _MATH_SYMBOLS:
                raise TexConversionError(f"{where}: unsupported command {token!r} in math")
            out.append(token)
        elif token == "$":
            raise TexConversionError(f"{where}: a stray $ in math")
        else:
            out.append(token)
    return "".join(out).strip()


def math_html(tex: str, display: bool = False, where: str = "math") -> Markup:
    """A KaTeX-ready span: the TeX (mapped and checked) between \\( \\) or \\[ \\], HTML-escaped."""
    body = escape(math_tex(tex, where))
    if display:
        return Markup('<span class="math display">\\[') + body + Markup("\\]</span>")
    return Markup('<span class="math inline">\\(') + body + Markup("\\)</span>")


# ----- text ----------------------------------------------------------------------------------------------------------

# Text-mode escapes (render.escape_tex) and symbols: what each prints.
_TEXT_SYMBOLS = {"%": "%", "&": "&", "$": "$", "#": "#", "_": "_", "{": "{", "}": "}", " ": " ", ",": "\u2009"}
_TEXT_WORDS = {
    "textbackslash": "\\", "textasciitilde": "~", "textasciicircum": "^", "textasciigrave": "`",
    "textquotesingle": "'", "textquotedbl": '"', "textless": "<", "textgreater": ">", "textbar": "|",
    "enspace": "\u2002", "quad": "\u2003", "qquad": "\u2003\u2003", "ldots": "\u2026", "dots": "\u2026",
    "textendash": "\u2013", "textemdash": "\u2014", "relax": "",
}
_STYLES = {"textbf": ("<strong>", "</strong>"), "texttt": ('<code class="tex-tt">', "</code>"),
           "emph": ("<em>", "</em>"), "textit": ("<em>", "</em>"), "mbox": ('<span class="tex-nobreak">', "</span>")}
_GLUE = re.compile(r"\s*[-+]?(?:\d+\.?\d*|\.\d+)\s*(?:em|ex|pt|mm|cm|in|fil{1,3})"
                   r"(?:\s+plus\s*[-+]?(?:\d+\.?\d*|\.\d+)\s*(?:em|ex|pt|mm|cm|in|fil{1,3}))?"
                   r"(?:\s+minus\s*[-+]?(?:\d+\.?\d*|\.\d+)\s*(?:em|ex|pt|mm|cm|in|fil{1,3}))?")
_WORD = re.compile(r"[A-Za-z]+")
_BLANK_LINE = re.compile(r"[ \t]*\n[ \t]*\n\s*")
_SPACE = re.compile(r"\s+")


class _Blocks:
    """Output being built: paragraphs of inline HTML (each maybe centred) and tables between them."""

    def __init__(self) -> None:
        self.blocks: list[tuple[str, list[Markup], bool]] = [("p", [], False)]

    def add(self, html: Markup | str) -> None:
        self.blocks[-1][1].append(html if isinstance(html, Markup) else escape(html))

    def paragraph(self) -> None:
        if self.blocks[-1][0] != "p" or _has_content(self.blocks[-1][1]):
            self.blocks.append(("p", [], False))

    def center(self) -> None:
        kind, pieces, _ = self.blocks[-1]
        self.blocks[-1] = (kind, pieces, True)

    def table(self, html: Markup) -> None:
        self.paragraph()
        self.blocks[-1] = ("table", [html], False)
        self.blocks.append(("p", [], False))

    def block_html(self) -> Markup:
        out = []
        for kind, pieces, centred in self.blocks:
            if kind == "table":
                out.append(pieces[0])
            elif _has_content(pieces):
                body = _strip(Markup("").join(pieces))
                out.append(Markup('<p class="tex-center">' if centred else "<p>") + body + Markup("</p>"))
        return Markup("\n").join(out)

    def inline_html(self, where: str) -> Markup:
        kept = [pieces for kind, pieces, _ in self.blocks if kind == "table" or _has_content(pieces)]
        if any(kind == "table" for kind, _, _ in self.blocks):
            raise TexConversionError(f"{where}: a table where only a line of text may stand")
        return Markup("<br>").join(_strip(Markup("").join(pieces)) for pieces in kept)


# A run of inline formulas and the text that touches them with no space between ('(' before, ',' or '):' after, or
# '$a$,$b$' in a row).
_INLINE_MATH = r'<span class="math inline">.*?</span>'
_NOBREAK = '<span class="tex-nobreak">'
_MATH_WITH_NEIGHBOURS = re.compile(rf'([^\s<>]*)((?:{_INLINE_MATH}[^\s<>]*)+)', re.DOTALL)


def _glued(html: Markup) -> Markup:
    """Each inline formula in one unbreakable span with the text that touches it: TeX breaks a line only at a space,
    but a browser may break at the edge of KaTeX's box, leaving '(' at a line's end or ',' at the next one's start."""
    def glue(found: re.Match) -> str:
        before, run = found.groups()
        alone = not before and run.count('class="math inline"') == 1 and run.endswith("</span>")
        whole = found.string.endswith(_NOBREAK, 0, found.start()) and found.string.startswith("</span>", found.end())
        return found.group(0) if alone or whole else f'{_NOBREAK}{before}{run}</span>'
    return Markup(_MATH_WITH_NEIGHBOURS.sub(glue, str(html)))


def _has_content(pieces: list[Markup]) -> bool:
    return any(str(piece).strip() for piece in pieces)


def _strip(html: Markup) -> Markup:
    return Markup(str(html).strip())


class _TextParser:
    """Reads text-mode LaTeX into _Blocks; math is handed to math_html."""

    def __init__(self, source: str, where: str) -> None:
        self.src = source
        self.where = where

    def fail(self, message: str) -> TexConversionError:
        return TexConversionError(f"{self.where}: {message}")

    def parse(self, pos: int, out: _Blocks, closing: bool) -> int:
        """Read from pos into out up to the end (or, when closing, the '}' that closes the group); return its end."""
        src = self.src
        while pos < len(src):
            ch = src[pos]
            if ch == "}":
                if not closing:
                    raise self.fail("a '}' that closes no group")
                return pos + 1
            if ch == "{":
                pos = self.parse(pos + 1, out, closing=True)
            elif ch == "\\":
                pos = self.command(pos, out)
            elif ch == "$":
                display = src.startswith("$$", pos)
                delimiter = "$$" if display else "$"
                end = self.math_end(pos + len(delimiter), delimiter)
                out.add(math_html(src[pos + len(delimiter):end], display, self.where))
                pos = end + len(delimiter)
            elif ch.isspace():
                blank = _BLANK_LINE.match(src, pos)
                if blank:
                    out.paragraph()
                    pos = blank.end()
                else:
                    pos = _SPACE.match(src, pos).end()
                    out.add(" ")
            elif ch == "~":
                out.add("\u00a0")
                pos += 1
            elif ch == "-":
                run = len(src[pos:pos + 3]) - len(src[pos:pos + 3].lstrip("-"))
                out.add({1: "-", 2: "\u2013", 3: "\u2014"}[run])
                pos += run
            elif ch in "`'":
                double = src.startswith(ch * 2, pos)
                out.add({("`", False): "\u2018", ("`", True): "\u201c",
                         ("'", False): "\u2019", ("'", True): "\u201d"}[ch, double])
                pos += 2 if double else 1
            elif ch in "%&#^_":
                raise self.fail(f"a bare {ch!r} in text (write \\{ch} for the character)")
            else:
                end = pos + 1
                while end < len(src) and src[end] not in "{}\\$~-`'%&#^_" and not src[end].isspace():
                    end += 1
                out.add(src[pos:end])
                pos = end
        if closing:
            raise self.fail("a '{' that is never closed")
        return pos

    def math_end(self, pos: int, delimiter: str) -> int:
        """Where math that started before pos ends: the next unescaped delimiter."""
        src = self.src
        while pos < len(src):
            if src.startswith(delimiter, pos):
                return pos
            pos += 2 if src[pos] == "\\" else 1  # \$ or \\ is no delimiter
        raise self.fail(f"math opened with {delimiter} is never closed")

    def command(self, pos: int, out: _Blocks) -> int:
        src = self.src
        word = _WORD.match(src, pos + 1)
        if not word:
            symbol = src[pos + 1:pos + 2]
            if symbol in ("[", "("):
                closer = "\\]" if symbol == "[" else "\\)"
                end = self.math_end(pos + 2, closer)
                out.add(math_html(src[pos + 2:end], symbol == "[", self.where))
                return end + 2
            if symbol == "\\":
                out.add(Markup("<br>"))
                return pos + 2
            if symbol in _TEXT_SYMBOLS:
                out.add(_TEXT_SYMBOLS[symbol])
                return pos + 2
            raise self.fail(f"unsupported command \\{symbol} in text")
        name = word.group(0)
        pos = word.end()
        after = _SPACE.match(src, pos)
        pos_after_space = after.end() if after else pos  # TeX skips the spaces after a control word
        if name in _TEXT_WORDS:
            pos = pos_after_space
            if src.startswith("{}", pos):  # \textless{} : the empty group only ends the name
                pos += 2
            out.add(_TEXT_WORDS[name])
            return pos
        if name == "par":
            out.paragraph()
            return pos_after_space
        if name == "centering":
            out.center()
            return pos_after_space
        if name == "hskip":
            glue = _GLUE.match(src, pos)
            if not glue:
                raise self.fail("\\hskip without a length")
            out.add(" \u2003")  # a gap that may break, as the glue between the paper's boxes
            return glue.end()
        if name in _STYLES:
            opening, closing = _STYLES[name]
            inner = _Blocks()
            pos = self.argument(pos_after_space, inner, name)
            out.add(Markup(opening) + inner.inline_html(f"{self.where} (\\{name})") + Markup(closing))
            return pos
        if name == "begin":
            return self.environment(pos, out)
        raise self.fail(f"unsupported command \\{name} in text")

    def argument(self, pos: int, out: _Blocks, name: str) -> int:
        if not self.src.startswith("{", pos):
            raise self.fail(f"\\{name} without a {{braced}} argument")
        return self.parse(pos + 1, out, closing=True)

    def environment(self, pos: int, out: _Blocks) -> int:
        found = _ENVIRONMENT.match(self.src, pos)
        name = found.group(1) if found else "?"
        if name != "tabular":
            raise self.fail(f"unsupported environment {{{name}}} in text")
        spec_end = self.group_end(found.end())
        spec = self.src[found.end() + 1:spec_end - 1]
        end = self.src.find(r"\end{tabular}", spec_end)
        if end < 0:
            raise self.fail("\\begin{tabular} without \\end{tabular}")
        out.table(self.tabular(spec, self.src[spec_end:end]))
        return end + len(r"\end{tabular}")

    def group_end(self, pos: int) -> int:
        if not self.src.startswith("{", pos):
            raise self.fail("a tabular without a {column spec}")
        depth = 0
        while pos < len(self.src):
            ch = self.src[pos]
            if ch == "\\":
                pos += 2
                continue
            depth += {"{": 1, "}": -1}.get(ch, 0)
            pos += 1
            if depth == 0:
                return pos
        raise self.fail("a '{' that is never closed")

    def tabular(self, spec: str, body: str) -> Markup:
        """A text-mode tabular as an HTML table: columns l, c, r; | rules between columns; \\hline over a row."""
        columns, rules, bar = [], [], False
        for ch in spec.replace(" ", ""):
            if ch == "|":
                bar = True
            elif ch in "lcr":
                columns.append({"l": "left", "c": "center", "r": "right"}[ch])
                rules.append(bar)
                bar = False
            else:
                raise self.fail(f"unsupported tabular column {ch!r} (accepted: l c r |)")
        rows = []
        for row in _split_top(body, "\\\\"):
            hline = False
            row = row.strip()
            while row.startswith(r"\hline"):
                hline, row = True, row[len(r"\hline"):].strip()
            if not row:
                if hline and rows:
                    rows[-1] = (rows[-1][0], rows[-1][1], True)  # \hline after the last row: a rule under it
                continue
            cells = _split_top(row, "&")
            if len(cells) > len(columns):
                raise self.fail(f"a tabular row with {len(cells)} cells for {len(columns)} columns")
            html = []
            for index, cell in enumerate(cells):
                inner = _Blocks()
                _TextParser(cell, self.where).parse(0, inner, closing=False)
                classes = " tex-rule-left" if rules[index] and index else ""
                html.append(Markup(f'<td style="text-align: {columns[index]}" class="tex-cell{classes}">')
                            + inner.inline_html(self.where) + Markup("</td>"))
            rows.append((hline, Markup("").join(html), False))
        lines = []
        for hline, cells, rule_below in rows:
            classes = " ".join(name for name, on in (("tex-hline", hline), ("tex-hline-below", rule_below)) if on)
            lines.append(Markup(f'<tr class="{classes}">' if classes else "<tr>") + cells + Markup("</tr>"))
        return Markup('<table class="tex-table">') + Markup("").join(lines) + Markup("</table>")


def _split_top(text: str, separator: str) -> list[str]:
    """text split at separator outside braces and math."""
    pieces, depth, math, start, pos = [], 0, False, 0, 0
    while pos < len(text):
        if text.startswith(separator, pos) and depth == 0 and not math:
            pieces.append(text[start:pos])
            pos += len(separator)
            start = pos
            continue
        ch = text[pos]
        if ch == "\\":
            pos += 2
            continue
        if ch == "$":
            math = not math
        depth += {"{": 1, "}": -1}.get(ch, 0)
        pos += 1
    pieces.append(text[start:])
    return pieces


def tex_html(tex: str, inline: bool = False, where: str = "text") -> Markup:
    """LaTeX text (a statement, a prompt, a Given box) as HTML: paragraphs (or, inline, lines joined by <br>)
    with KaTeX-ready math spans; TexConversionError names anything outside the supported subset."""
    blocks = _Blocks()
    _TextParser(str(tex), where).parse(0, blocks, closing=False)
    return _glued(blocks.inline_html(where) if inline else blocks.block_html())
