"""statement_html: every type's statement, prompts and Given boxes as HTML with KaTeX-ready math, one input per
blank labelled as the answers files label it; user text escaped; KaTeX (Debian's libjs-katex) reads all our math."""

from __future__ import annotations

import html
import re
from collections import Counter
from dataclasses import replace
from functools import cache
from pathlib import Path

import pytest
from markupsafe import Markup, escape

from generator.core.registry import problem_types
from generator.documents.render import escape_tex
from generator.documents.sheet import ProblemSpec, SheetSpec, build, key_data
from generator.web.statement_html import (STATEMENT_CSS, TexConversionError, math_html, sheet_view, tex_html,
                                          user_text_html)

KATEX_DIR = Path("/usr/share/javascript/katex")
# Debian's libjs-katex ships contrib/auto-render.js (and .mjs), no auto-render.min.js.
AUTO_RENDER = ("contrib/auto-render.min.js", "contrib/auto-render.js")
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
MATH_SPAN = re.compile(r'<span class="math (?:inline|display)">.*?</span>', re.S)
HOSTILE = ('</span><script>alert(1)</script><img src=x onerror=alert(2)> \\(\\href{javascript:alert(3)}{x}\\) '
           '$\\textbf{x}$ \\[x\\] & "quoted" \'single\' \\textbf{bold} {}%#_^~')


def _sheet(type_name: str, options: dict[str, str], seed: int, given_parts: tuple[str, ...] = (), title: str = "Test"):
    """A one-problem sheet (built once per test run: the conversion and the browser tests share them)."""
    return _built(type_name, tuple(sorted(options.items())), seed, given_parts, title)


@cache
def _built(type_name: str, options: tuple, seed: int, given_parts: tuple[str, ...], title: str):
    return build(SheetSpec(title, seed, (ProblemSpec(type_name, dict(options), given_parts),), calculator="basic"))


def _part_a_given(type_name: str, options: dict[str, str], seed: int):
    """The sheet with part a given, not asked, or None for a type of one part (given= must leave one to answer)."""
    if len(_sheet(type_name, options, seed).problems[0].parts) < 2:
        return None
    return _sheet(type_name, options, seed, given_parts=("a",))


def _cases():
    return [(name, options) for name, kind in problem_types().items() for options in kind.option_sets()]


def _html_pieces(view) -> list[str]:
    """Every HTML string of a view: title, statement, and each part's prompt, Given box, given values and symbols."""
    pieces = [view.title_html, view.statement_html]
    for part in view.parts:
        pieces += [part.prompt_html, part.given_html, part.shown_html]
        pieces += [blank.symbol_html for blank in part.blanks]
        pieces += [label for blank in part.blanks for _, label in blank.options or ()]
    return [str(piece) for piece in pieces]


def _outside_math(text: str) -> str:
    return MATH_SPAN.sub(" ", text)


def _check_sheet(sheet) -> None:
    """The view converts; no TeX outside math; every blank of the key is one input, with its quantity's shape."""
    views = sheet_view(sheet)
    for view in views:
        for piece in _html_pieces(view):
            outside = _outside_math(piece)
            assert "\\" not in outside, f"TeX outside math in problem {view.number}: {outside[:300]}"
            assert "$" not in outside, f"a $ outside math in problem {view.number}: {outside[:300]}"
    key = key_data(sheet)
    expected = Counter(blank["label"] for problem in key["problems"] for blank in problem["blanks"])
    found = Counter(label for view in views for part in view.parts for blank in part.blanks
                    for row in blank.cells for label in row)
    assert found == expected
    indices = {blank["label"]: blank["index"] for problem in key["problems"] for blank in problem["blanks"]}
    for view in views:
        for part in view.parts:
            for blank in part.blanks:
                if blank.shape is None:
                    assert blank.cells == ((blank.label_prefix,),)
                    assert indices[blank.label_prefix] is None
                    continue
                rows, cols = blank.shape
                assert len(blank.cells) == rows and all(len(row) == cols for row in blank.cells)
                for i, row in enumerate(blank.cells):
                    for j, label in enumerate(row):
                        assert label == f"{blank.label_prefix}[{i},{j}]" and indices[label] == [i, j]


@pytest.mark.parametrize("type_name", sorted(problem_types()))
def test_every_type_and_option_set_converts(type_name):
    kind = problem_types()[type_name]
    for options in kind.option_sets():
        for seed in (1, 2):
            _check_sheet(_sheet(type_name, kind.resolve(options), seed))


@pytest.mark.parametrize("type_name", sorted(problem_types()))
def test_given_parts_show_values_and_no_inputs(type_name):
    sheet = _part_a_given(type_name, problem_types()[type_name].resolve({}), 1)
    if sheet is None:
        pytest.skip(f"{type_name} has one part: none can be given")
    _check_sheet(sheet)
    part = sheet_view(sheet)[0].parts[0]
    assert part.shown_html and part.blanks == ()


def test_labels_are_the_answers_files_labels():
    sheet = build(SheetSpec("T", 3, (ProblemSpec("matmul"), ProblemSpec("inverse"))))
    views = sheet_view(sheet)
    first = views[0].parts[0].blanks[0]
    assert first.label_prefix == "1a C" and first.cells[0][:2] == ("1a C[0,0]", "1a C[0,1]")
    scalars = [blank for part in views[1].parts for blank in part.blanks if blank.shape is None]
    assert scalars and all(blank.cells == ((blank.label_prefix,),) for blank in scalars)
    assert all(blank.label_prefix.startswith("2") for part in views[1].parts for blank in part.blanks)


def test_choices_keep_their_keys_and_escape_their_labels():
    sheet = _sheet("grad_clip", problem_types()["grad_clip"].resolve({}), 1)
    choices = [blank for part in sheet_view(sheet)[0].parts for blank in part.blanks if blank.options]
    assert choices and all(blank.shape is None and blank.cells == ((blank.label_prefix,),) for blank in choices)
    assert {key for key, _ in choices[0].options} == {"yes", "no"}


def test_html_specials_in_a_title_are_escaped():
    sheet = _sheet("matmul", {}, 1)
    hostile = replace(sheet, problems=(replace(sheet.problems[0], title='<b>Tom & "Jerry"</b> \\textbf{x}'),))
    title = str(sheet_view(hostile)[0].title_html)
    assert "<b>" not in title and "&lt;b&gt;Tom &amp; “Jerry”&lt;/b&gt;" in title


def test_a_sheet_title_or_student_name_never_reaches_the_view():
    sheet = _sheet("matmul", {}, 1, title=HOSTILE)
    assert all("script" not in piece for view in sheet_view(sheet) for piece in _html_pieces(view))


@pytest.mark.parametrize("name", [HOSTILE, "O'Brien <Ann>", "\\input{/etc/passwd}", "Zoë & Chloé", "$$x$$"])
def test_user_text_cannot_inject_markup(name):
    out = str(user_text_html(name))
    assert "<" not in out and ">" not in out and '"' not in out
    assert html.unescape(out).replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"') \
        .replace("\u201d", '"') == " ".join(name.split())


@pytest.mark.parametrize("text", [HOSTILE, "a -- b --- c - d", "50% of A&B, x_1, #3, {braces}, ~tilde^",
                                  "quotes ' \" ` and <tags>", "back\\slash | bar"])
def test_escaped_text_comes_back_as_itself(text):
    """What the sheets print from a string (render.escape_tex) converts back to exactly that string, escaped."""
    assert tex_html(escape_tex(text), inline=True) == escape(text)


def test_text_markup():
    out = str(tex_html(r"A \textbf{bold} and \texttt{tt\_x} ``quoted'' it's 1--2~km.\par Next \emph{one}."))
    assert out == ("<p>A <strong>bold</strong> and <code class=\"tex-tt\">tt_x</code> \u201cquoted\u201d "
                   "it\u2019s 1\u20132\u00a0km.</p>\n<p>Next <em>one</em>.</p>")
    assert str(tex_html(r"\par{\centering \mbox{$a$}\hskip 2em plus 1fil \mbox{$b$}\par}")) == (
        '<p class="tex-center"><span class="tex-nobreak"><span class="math inline">\\(a\\)</span></span> \u2003 '
        '<span class="tex-nobreak"><span class="math inline">\\(b\\)</span></span></p>')


def test_math_is_kept_escaped_and_mapped():
    out = str(math_html(r"\begin{fracmatrix} \fracstyle \frac{1}{2} & 1 \end{fracmatrix} < x", display=True))
    assert out == ('<span class="math display">\\[{\\def\\arraystretch{2.3}\\begin{bmatrix} \\displaystyle '
                   '\\frac{1}{2} &amp; 1 \\end{bmatrix}} &lt; x\\]</span>')
    assert str(tex_html(r"see $a<b$ and \[ c \]", inline=True)) == (
        'see <span class="math inline">\\(a&lt;b\\)</span> and <span class="math display">\\[c\\]</span>')


def test_text_tabular_becomes_a_table():
    out = str(tex_html(r"\begin{tabular}{l|r} \hline $k$ & 1 \\ x\&y & 2 \\ \hline \end{tabular} after"))
    assert out == ('<table class="tex-table"><tr class="tex-hline"><td style="text-align: left" class="tex-cell">'
                   '<span class="math inline">\\(k\\)</span></td><td style="text-align: right" class="tex-cell '
                   'tex-rule-left">1</td></tr><tr class="tex-hline-below"><td style="text-align: left" '
                   'class="tex-cell">x&amp;y</td><td style="text-align: right" class="tex-cell tex-rule-left">2</td>'
                   '</tr></table>\n<p>after</p>')


@pytest.mark.parametrize("tex, named", [
    (r"\newmacro{x}", r"\newmacro"), (r"$\ansbox$", r"\ansbox"), (r"$\href{javascript:x}{y}$", r"\href"),
    (r"\begin{itemize}", "{itemize}"), (r"$\begin{cases} x \end{cases}$", "{cases}"), ("50% off", "'%'"),
    (r"$x", "never closed"), (r"a}", "closes no group"), (r"\(x\)\)", r"\)"),
])
def test_unknown_tex_raises_naming_it(tex, named):
    with pytest.raises(TexConversionError, match=re.escape(named)):
        tex_html(tex)


# ----- KaTeX in a real browser ----------------------------------------------------------------------------------------


def _auto_render(katex: Path) -> str | None:
    return next((name for name in AUTO_RENDER if katex.joinpath(name).exists()), None)


def statement_page(views, katex: Path = KATEX_DIR, name: str = "", extra: Markup = Markup("")) -> str:
    """A static page of views laid out as the worksheet: statement, parts, a grid of inputs per blank, KaTeX from
    katex (file:// URLs) typesetting each .math span (never the page as a whole: user text is not math)."""
    body = []
    for view in views:
        body.append(f'<section class="problem"><h2>Problem {view.number}. {view.title_html}</h2>'
                    f'<div class="tex-statement">{view.statement_html}</div>')
        for part in view.parts:
            if part.given_html:
                body.append(f'<div class="given"><strong>Given.</strong> {part.given_html}</div>')
            if part.shown_html:
                body.append(f"<p><strong>({part.letter})</strong> Given, not asked: {part.shown_html}</p>")
                continue
            body.append(f"<p><strong>({part.letter})</strong> {part.prompt_html}</p><div class=answers>")
            for blank in part.blanks:
                if blank.options:
                    boxes = " ".join(f'<label><input type=radio name="{escape(blank.cells[0][0])}" '
                                     f'value="{escape(key)}"> {label}</label>' for key, label in blank.options)
                    body.append(f'<div class=blank>{blank.symbol_html}: {boxes}</div>')
                    continue
                rows = "".join("<tr>" + "".join(f'<td><input aria-label="{escape(label)}" name="{escape(label)}" '
                                                 f'size="{7 if blank.decimals else 5}"></td>' for label in row)
                               + "</tr>" for row in blank.cells)
                shape = f" ({blank.shape[0]} × {blank.shape[1]})" if blank.shape else ""
                body.append(f'<div class=blank>{blank.symbol_html} = <table class="{"matrix" if blank.shape else ""}">'
                            f"{rows}</table>{shape}</div>")
            body.append("</div>")
        body.append("</section>")
    base = katex.as_uri()
    return f"""<!doctype html><html><head><meta charset="utf-8">
<link rel="stylesheet" href="{base}/katex.min.css">
<script src="{base}/katex.min.js"></script><script src="{base}/{_auto_render(katex)}"></script>
<style>{STATEMENT_CSS}
body {{ font: 16px/1.45 serif; max-width: 52em; margin: 1em auto; }}
.given {{ border: 1px solid #000; padding: 0.3em 0.5em; margin: 0.5em 0; }}
.answers {{ text-align: right; }} .blank {{ display: inline-block; margin: 0.3em 0 0.3em 2em; vertical-align: middle; }}
.blank table {{ display: inline-table; vertical-align: middle; }}
table.matrix {{ border-left: 2px solid; border-right: 2px solid; }}
</style></head><body><p id="who">{user_text_html(name)}</p>
{"".join(body)}
{extra}
<script>
document.querySelectorAll(".math").forEach(function (el) {{
  renderMathInElement(el, {{delimiters: [{{left: "\\\\[", right: "\\\\]", display: true}},
                                         {{left: "\\\\(", right: "\\\\)", display: false}}], throwOnError: false}});
}});
document.body.dataset.typeset = "done";
</script></body></html>"""


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"Debian's chromium is not installed ({CHROMIUM}); apt-get install chromium")
    if not KATEX_DIR.joinpath("katex.min.js").exists() or not _auto_render(KATEX_DIR):
        pytest.skip(f"KaTeX is not installed ({KATEX_DIR}); apt-get install libjs-katex")
    playwright_api = pytest.importorskip("playwright.sync_api",
                                         reason="playwright is not installed (pip install playwright)")
    with playwright_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


def _distinct_math() -> list[str]:
    """Every math span the sheets of every type and option set emit (seeds 1 and 2), one per shape of TeX: spans
    that differ only in their digits are one (KaTeX reads 3 as it reads 12)."""
    spans = {}
    for name, options in _cases():
        for seed in (1, 2):
            for view in sheet_view(_sheet(name, problem_types()[name].resolve(options), seed)):
                for piece in _html_pieces(view):
                    for span in MATH_SPAN.finditer(piece):
                        spans.setdefault(re.sub(r"\d+", "0", span.group(0)), span.group(0))
    return list(spans.values())


def test_katex_reads_every_statement(browser, tmp_path):
    """One problem of every type laid out (default options, and with part a given), then every distinct math span of
    every option set: KaTeX typesets every span, none is an error; a hostile name stays text."""
    views = []
    for name, kind in problem_types().items():
        views += sheet_view(_sheet(name, kind.resolve({}), 1))
        given = _part_a_given(name, kind.resolve({}), 1)
        views += sheet_view(given) if given else []
    # Hidden: KaTeX parses (and fails) without a layout, and laying out 1,000 more formulas would take seconds.
    every_span = '<section id="every-span" hidden><p>' + "</p>\n<p>".join(_distinct_math()) + "</p></section>"
    page_html = statement_page(views, name=HOSTILE, extra=Markup(every_span))
    page_file = tmp_path / "statements.html"
    page_file.write_text(page_html, encoding="utf-8")
    page = browser.new_page()
    try:
        messages = []
        page.on("console", lambda message: messages.append(message.text))
        page.goto(page_file.as_uri(), timeout=300_000)  # the typesetting runs before the load event
        assert page.eval_on_selector("body", "el => el.dataset.typeset") == "done"
        errors = page.eval_on_selector_all(".katex-error", "els => els.map(e => e.title || e.textContent)")
        assert errors == []
        spans = page.eval_on_selector_all(".math", "els => els.length")
        typeset = page.eval_on_selector_all(".math", "els => els.filter(e => e.querySelector('.katex')).length")
        assert spans > 1000 and typeset == spans
        # The hostile name is text: no element inside it, nothing typeset, no script ran.
        assert page.eval_on_selector("#who", "el => el.children.length") == 0
        assert page.eval_on_selector("#who", "el => el.textContent").startswith("</span><script>")
        assert not [m for m in messages if "alert" in m or "error" in m.lower()]
    finally:
        page.close()


def test_a_rotation_by_a_3_4_5_angle_converts():
    """linear_map names such an angle by its cos and sin (\\cos\\theta = 3/5): the page must show it too."""
    for seed in range(1, 60):
        sheet = _sheet("linear_map", problem_types()["linear_map"].resolve({"difficulty": "medium"}), seed)
        if "\\cos" in str(sheet.problems[0].facts.get("description", "")):
            break
    else:
        pytest.skip("no seed drew a 3-4-5 angle")
    _check_sheet(sheet)
    assert "\\cos\\theta" in str(sheet_view(sheet)[0].statement_html)


def test_inline_math_keeps_the_text_that_touches_it():
    """TeX breaks only at a space, so '(' before a formula and ',' or '):' after it stay on its line; a browser may
    break at KaTeX's box edge, so they share one unbreakable span. Math with spaces around stays free."""
    html = str(tex_html(r"The norm ($H_2 = \gamma_2$, $\hat R_2$): compute $x$ and $y$."))
    assert '<span class="tex-nobreak">(<span class="math inline">\\(H_2 = \\gamma_2\\)</span>,</span>' in html
    assert '<span class="tex-nobreak"><span class="math inline">\\(\\hat R_2\\)</span>):</span>' in html
    assert ' compute <span class="math inline">\\(x\\)</span> and ' in html
    assert '<span class="tex-nobreak"><span class="math inline">\\(y\\)</span>.</span>' in html
    # Text that is markup (a tag) is not swallowed, and what a student typed never reaches here.
    assert str(tex_html(r"\textbf{(a)} $b$")) == '<p><strong>(a)</strong> <span class="math inline">\\(b\\)</span></p>'
    # Formulas in a row ('($a$,$b$)') are one span, and an \\mbox that already holds one is not wrapped again.
    assert str(tex_html(r"pair ($a$,$b$) and \mbox{$x$,} end")) == (
        '<p>pair <span class="tex-nobreak">(<span class="math inline">\\(a\\)</span>,<span class="math inline">'
        '\\(b\\)</span>)</span> and <span class="tex-nobreak"><span class="math inline">\\(x\\)</span>,</span> end</p>')
