"""The documentation stays true: every command it shows runs, README.md stays short, every link resolves.

Commands are the lines of fenced code blocks with no language (or sh, bash, shell, console) in README.md and
docs/*.md that start with `transformer-worksheets`, `python -m generator` (any path to either) or `make`.
Each page's commands run in order, with generator.cli.main, in a fresh folder holding a copy of examples/;
each must exit 0, unless its line carries a `# fails` comment, when it must exit non-zero. A `make` command
is not run: its targets must be in the Makefile. Input files a page refers to but does not make (a class
folder, a student's filled-in answers) are provided before the command runs. To keep the test quick, only the
first command that compiles PDFs runs TeX; later `--pdf`/`pdf` commands have compilation stubbed, and `class`
runs without `--pdf`.
"""

from __future__ import annotations

import csv
import glob
import io
import json
import re
import shlex
import shutil
import types
from dataclasses import dataclass
from pathlib import Path

import pytest

import generator.cli
from generator.cli import main

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = [README] + sorted((ROOT / "docs").glob("*.md"))
SHELL_LANGUAGES = {"", "sh", "bash", "shell", "console"}
README_LIMIT = 10_000  # bytes
IMAGE_LIMIT = 150_000  # bytes, each picture under docs/images
_compiled = []  # the one real TeX run of a session


@dataclass
class Command:
    page: Path
    line: int
    text: str
    argv: list[str]
    fails: bool

    def __str__(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}: {self.text}"


def fenced_blocks(text: str):
    """(language, first line number, lines) of every fenced code block."""
    lang, start, lines = None, 0, []
    for number, line in enumerate(text.splitlines(), 1):
        fence = re.match(r"^\s*```+\s*(\S*)", line)
        if fence and lang is None:
            lang, start, lines = fence.group(1).lower(), number + 1, []
        elif fence:
            yield lang, start, lines
            lang = None
        elif lang is not None:
            lines.append(line)


def commands(page: Path) -> list[Command]:
    """The tool's commands and make commands shown in a page's shell blocks, continuation lines joined."""
    found = []
    for lang, start, lines in fenced_blocks(page.read_text(encoding="utf-8")):
        if lang not in SHELL_LANGUAGES:
            continue
        pending, first = "", 0
        for offset, line in enumerate(lines):
            if not pending:
                first = start + offset
            if line.rstrip().endswith("\\"):
                pending += line.rstrip()[:-1] + " "
                continue
            text, pending = (pending + line).strip().removeprefix("$ "), ""
            if not re.match(r"^\S*(transformer-worksheets|python[\d.]*|make)(\s|$)", text):
                continue  # output, or a command of another tool
            argv = shlex.split(text, comments=True)
            fails = re.search(r"(^|\s)#\s*fails\b", text) is not None
            name = Path(argv[0]).name
            if name == "transformer-worksheets":
                found.append(Command(page, first, text, argv[1:], fails))
            elif name.startswith("python") and argv[1:3] == ["-m", "generator"]:
                found.append(Command(page, first, text, argv[3:], fails))
            elif name == "make":
                found.append(Command(page, first, text, argv, fails))
    return found


def make_targets() -> tuple[set[str], list[re.Pattern]]:
    """The Makefile's explicit targets, and its pattern rules as regular expressions."""
    explicit, patterns = set(), []
    for line in (ROOT / "Makefile").read_text().splitlines():
        rule = re.match(r"^([^\s#:=][^:=]*?)\s*:(?!=)", line)
        if not rule:
            continue
        for target in rule.group(1).split():
            if "%" in target:
                patterns.append(re.compile(re.escape(target).replace("%", ".+") + "$"))
            elif not target.startswith("$("):
                explicit.add(target)
    return explicit, patterns


def check_make(command: Command) -> None:
    explicit, patterns = make_targets()
    targets = [a for a in command.argv[1:] if "=" not in a and not a.startswith("-")]
    for target in targets:
        assert target in explicit or any(p.match(target) for p in patterns), f"{command}: no make target {target!r}"


def _answer(blank: dict) -> str:
    """The key's value as a student would write it (a 15-digit decimal for an irrational value)."""
    if blank["kind"] == "choice" or blank["rational"] or blank["value"] == "-oo":
        return blank["value"]
    return blank["decimal"]


def _answers_file(path: Path, keys: list[tuple[str, dict]]) -> None:
    """A filled-in answers file: each (student id, key) with every blank answered right."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["student_id", "variant", "blank", "answer"])
    for student, key in keys:
        for problem in key["problems"]:
            writer.writerows([student, key["variant"], b["label"], _answer(b)] for b in problem["blanks"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(out.getvalue(), encoding="utf-8")


def provide_inputs(argv: list[str]) -> list[str]:
    """Make what a `mark` command reads but the page did not make; expand file patterns as a shell would."""
    if argv and argv[0] == "mark":
        args = generator.cli._parser().parse_args(argv)
        if args.class_dir and not args.class_dir.exists():
            assert main(["class", "examples/assignment.toml", "examples/roster.csv", "--out", str(args.class_dir)]) == 0
        for pattern in map(str, args.answers):
            if glob.glob(pattern):
                continue
            if args.class_dir:
                manifest = json.loads((args.class_dir / "class.json").read_text(encoding="utf-8"))
                keys = [(s["id"], json.loads((args.class_dir / "students" / f"{s['stem']}-key.json").read_text()))
                        for s in manifest["students"]]
            else:
                keys = [("s001", json.loads(Path(k).read_text(encoding="utf-8"))) for k in args.key]
            _answers_file(Path(pattern.replace("*", "doc-test") if "*" in pattern else pattern), keys)
    expanded = []
    for arg in argv:
        matches = sorted(glob.glob(arg)) if re.search(r"[*?[]", arg) else []
        expanded += matches or [arg]
    return expanded


def _stub_compile(tex, out_dir=None):
    tex = Path(tex)
    assert tex.is_file(), tex
    return types.SimpleNamespace(pdf=(Path(out_dir) if out_dir else tex.parent) / f"{tex.stem}.pdf")


def run(command: Command, monkeypatch) -> int:
    argv = provide_inputs(command.argv)
    if argv and argv[0] == "class" and "--pdf" in argv:
        argv.remove("--pdf")
    compiles = argv and (argv[0] == "pdf" or "--pdf" in argv)
    with monkeypatch.context() as patch:
        if compiles and (_compiled or shutil.which("latexmk") is None):
            patch.setattr(generator.cli, "compile_pdf", _stub_compile)
        elif compiles:
            _compiled.append(str(command))
        try:
            return main(argv)
        except SystemExit as exit_:  # argparse's usage errors
            return exit_.code if isinstance(exit_.code, int) else 1


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_command_shown_works(page, tmp_cwd, monkeypatch):
    shutil.copytree(ROOT / "examples", tmp_cwd / "examples")
    for command in commands(page):
        if command.argv[0] == "make":
            check_make(command)
            continue
        # A server runs until it is stopped: this test would wait for ever (web.md shows them in ```text blocks).
        assert command.argv[:1] != ["serve"], f"{command}: `serve` does not return; show it in a ```text block"
        code = run(command, monkeypatch)
        if command.fails:
            assert code != 0, f"{command}: marked '# fails' but exited 0"
        else:
            assert code == 0, f"{command}: exit code {code}"


def test_the_docs_show_commands():
    shown = [c for page in PAGES for c in commands(page)]
    assert len(shown) >= 20
    assert any(c.argv[:1] == ["mark"] for c in commands(README))
    assert any(c.fails for c in shown)


def test_readme_is_short():
    assert README.stat().st_size < README_LIMIT


def _anchors(page: Path) -> set[str]:
    """GitHub's anchors for a page's headings."""
    headings = re.findall(r"^#+\s+(.*)$", page.read_text(encoding="utf-8"), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def _links(page: Path) -> list[str]:
    text = page.read_text(encoding="utf-8")
    return re.findall(r"\]\(([^)\s]+)\)", text) + re.findall(r'<img[^>]*\ssrc="([^"]+)"', text)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_link_resolves(page):
    for link in _links(page):
        if re.match(r"^[a-z]+:", link):
            continue
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        assert target.exists(), f"{page.name}: {link} does not exist"
        if anchor and target.suffix == ".md":
            assert anchor in _anchors(target), f"{page.name}: {link} has no heading #{anchor}"


def test_readme_links_every_doc_page_and_shows_the_picture():
    linked = {(ROOT / link.partition("#")[0]).resolve() for link in _links(README)}
    for page in PAGES[1:]:
        assert page in linked, f"README.md does not link {page.relative_to(ROOT)}"
    pictures = [p for p in linked if p.suffix == ".png"]
    assert pictures and all(p.parent == ROOT / "docs" / "images" for p in pictures)
    for picture in (ROOT / "docs" / "images").glob("*.png"):
        assert picture.stat().st_size < IMAGE_LIMIT, picture.name
