"""The command line: list problem types, generate a sheet and its keys, compile PDFs."""

from __future__ import annotations

import argparse
import gc
import json
import re
import sys
import time
from fractions import Fraction
from pathlib import Path

from generator.marking.answerfile import fill_in_text
from generator.classes.assignment import load_assignment
from generator.classes.classbuild import (MANIFEST, STUDENTS_DIR, Summary, build_class, class_secret_for, generate,
                                          report, write_only)
from generator.classes.secret import SecretError, read_secret
from generator.files import atomic_write
from generator.marking.marker import Policy
from generator.marking.markrun import MarkingError, class_roster, key_roster, mark_files
from generator.documents.pdf import TexError, compile_pdf
from generator.documents.presets import PRESETS, preset_problems
from generator.core.registry import SpecError, problem_types
from generator.documents.render import printable_in_tex
from generator.marking.reports import DETAILS, FEEDBACK_DIR, ISSUES, MARKS, SUMMARY, ReportExists, report_files, write_reports
from generator.classes.roster import load_roster
from generator.documents.sheet import (CALCULATOR_POLICIES, KEY_FORMAT, MAX_SEED, PAPERS, SAFE_STEM, OutputError, ProblemSpec, SheetSpec,
                    build, key_data, write_outputs)

PROG = "transformer-worksheets"
EXAMPLES = f"""examples:
  {PROG} list
  {PROG} sheet --preset matrix-core --seed 7
  {PROG} sheet -p matmul:shape=2x1,difficulty=easy -p inverse --seed 3 --title "Week 2 quiz" --name week2
  {PROG} sheet --preset matrix-core --paper letter --pdf
  {PROG} pdf worksheets/week2.tex answer_keys/week2-key.tex
  {PROG} class examples/assignment.toml examples/roster.csv --out classes/week3 --pdf
  {PROG} class examples/assignment.toml examples/roster.csv --out classes/week3 --only s001 --pdf
  {PROG} fillin --class classes/week3 --out week3-answers.csv
  {PROG} mark week3-answers.csv --class classes/week3 --out marks/week3
  {PROG} mark answers/*.csv --key answer_keys/week2-key.json --follow-through 1/2
  {PROG} serve classes/week3 --port 8000
"""
MAX_NAME = 100
MAX_TITLE = 80  # longer titles wrap in the page header


class UsageError(Exception):
    """Bad input: reported as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (no usage dump) and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Printable worksheets for transformer math by hand, with exact worked answer keys.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    commands.add_parser("list", help="list problem types, their options, and presets", epilog=EXAMPLES,
                        formatter_class=argparse.RawDescriptionHelpFormatter)

    sheet = commands.add_parser(
        "sheet",
        help="write a worksheet .tex, its worked key .tex and the key .json",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = sheet.add_mutually_exclusive_group(required=True)
    source.add_argument("--preset", choices=sorted(PRESETS), help="a named set of problems")
    source.add_argument("-p", "--problem", action="append", metavar="TYPE[:OPT=VAL,...]",
                        help="a problem to include (repeat for more), e.g. matmul:shape=2x1")
    sheet.add_argument("--seed", type=_seed, default=1, help="the variant's seed, a whole number (default 1)")
    sheet.add_argument("--title", type=_title, help="title printed on the sheet (default: the preset's, or 'Worksheet')")
    sheet.add_argument("--name", help="file name stem (default: the preset name, or 'sheet')")
    sheet.add_argument("--paper", choices=PAPERS, default="a4", help="paper size (default a4)")
    sheet.add_argument("--calculator", choices=CALCULATOR_POLICIES,
                       help="calculator policy printed on the sheet (default: the preset's, else none)")
    sheet.add_argument("--sheet-dir", type=_folder, default=Path("worksheets"), help="folder for the worksheet")
    sheet.add_argument("--key-dir", type=_folder, default=Path("answer_keys"), help="folder for the key and JSON")
    sheet.add_argument("--pdf", action="store_true", help="also compile both PDFs with latexmk")
    sheet.add_argument("--fill-in", action="store_true",
                       help="also write <sheet-dir>/<name>-answers.csv, the answers file to fill in (one row per blank)")

    pdf = commands.add_parser("pdf", help="compile .tex files to PDF (no shell escape)", epilog=EXAMPLES,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    pdf.add_argument("tex", nargs="+", type=Path, help=".tex files")
    pdf.add_argument("--outdir", type=_folder, help="folder for the PDFs (default: beside each .tex)")

    klass = commands.add_parser("class", help="a variant for every student of a roster: sheets, keys, grading sheets",
                                epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    klass.add_argument("assignment", type=Path, help="the assignment file (TOML), e.g. examples/assignment.toml")
    klass.add_argument("roster", type=Path, help="the roster (CSV with a header: id, name, optional reroll)")
    klass.add_argument("--out", type=_folder, help="output folder (default: classes/<assignment name>)")
    klass.add_argument("--pdf", action="store_true",
                       help="also compile the class PDFs and cut out every student's worksheet and key PDF")
    klass.add_argument("--only", action="append", metavar="ID",
                       type=_given("a student id of the roster", default=False),
                       help="rebuild only this student's worksheet and key (repeat for more) in an existing class "
                            "folder, from its secret.key; the class documents are left as they are")
    mark = commands.add_parser("mark", help="mark answers files against keys: reports per student and for the class",
                               epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    mark.add_argument("answers", nargs="+", type=Path, help="answers files (CSV: student_id,variant,blank,answer)")
    keys = mark.add_mutually_exclusive_group(required=True)
    keys.add_argument("--key", action="append", type=Path, metavar="KEY.json",
                      help="a JSON key (repeat for more variants); the variant column picks the key")
    keys.add_argument("--class", dest="class_dir", type=Path, metavar="FOLDER",
                      help="a class folder written by `class`: each student is marked against their own key, "
                           "with the assignment's points")
    mark.add_argument("--out", type=_folder, help="report folder (default: marks/<assignment or key name>)")
    mark.add_argument("--force", action="store_true", help="replace reports that already exist")
    mark.add_argument("--follow-through", type=_share, default=Fraction(1), metavar="SHARE",
                      help="share of a blank's points for a value consistent with the student's own earlier "
                           "wrong values (0 to 1, e.g. 1/2; default 1)")
    mark.add_argument("--unreduced", type=_share, default=Fraction(1, 2), metavar="SHARE",
                      help="share for a right value written as an unreduced fraction such as 6/8 (default 1/2; "
                           "1 accepts any equivalent form)")

    serve = commands.add_parser("serve", help="the web page where students type their answers (practice or exam)",
                                epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    serve.add_argument("folder", type=Path, help="a class folder written by `class`")
    serve.add_argument("--host", type=_given("an address"), default="127.0.0.1",
                       help="address to listen on (default: 127.0.0.1, this computer only)")
    serve.add_argument("--port", type=_port, default=8000, help="port (default: 8000)")
    serve.add_argument("--database", type=_given("a database URL"),
                       help="database URL (default: a SQLite file in the class folder); "
                            "e.g. postgresql+psycopg://user@host/dbname")
    serve.add_argument("--teacher-token", type=_given("a password"),
                       help="the teacher's password (default: ${TW_TEACHER_TOKEN}, or one made "
                            "and printed at start)")
    serve.add_argument("--workers", type=_workers, default=None,
                       help="worker processes answering requests (default 1; more can help on a machine with more "
                            "cores or with PostgreSQL)")
    fillin = commands.add_parser("fillin", help="write the answers file to fill in for a key or a whole class",
                                 epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = fillin.add_mutually_exclusive_group(required=True)
    source.add_argument("--key", type=Path, metavar="KEY.json", help="one JSON key")
    source.add_argument("--class", dest="class_dir", type=Path, metavar="FOLDER", help="a class folder: every student")
    fillin.add_argument("--out", type=_folder, required=True, help="the CSV file to write")
    fillin.add_argument("--force", action="store_true", help="replace the file if it exists")
    return parser


def _share(text: str) -> Fraction:
    """A share of points: a fraction or decimal from 0 to 1."""
    try:
        value = Fraction(text.strip())
    except (ValueError, ZeroDivisionError):
        value = None
    if value is None or not 0 <= value <= 1 or len(text) > 20:
        raise argparse.ArgumentTypeError(f"share {text!r} is not accepted; accepted: a number from 0 to 1, such as 1/2 or 0.5")
    return value


def _port(text: str) -> int:
    """A TCP port from 1 to 65535."""
    if not re.fullmatch(r"[0-9]{1,5}", text) or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"port {text!r} is not accepted; accepted: a whole number from 1 to 65535")
    return int(text)


def _workers(text: str) -> int:
    """How many worker processes serve the page: 1 to MAX_WORKERS."""
    from generator.web.serve import MAX_WORKERS
    if not re.fullmatch(r"[0-9]{1,2}", text) or not 1 <= int(text) <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"workers {text!r} is not accepted; accepted: a whole number from 1 to "
                                         f"{MAX_WORKERS}")
    return int(text)


def _serve(args: argparse.Namespace) -> None:
    from generator.web.app import WebError  # the web stack is imported only by this command
    from generator.web.classdata import ClassFolderError
    from generator.web.serve import serve
    try:
        serve(args.folder, args.host, args.port, args.database, args.teacher_token, args.workers)
    except (WebError, ClassFolderError) as error:
        raise UsageError(str(error)) from error


def _list() -> None:
    for kind in problem_types().values():
        print(f"{kind.name}: {kind.summary}")
        for option in kind.options:
            accepted = f"text, e.g. {'|'.join(option.choices)}" if option.free else "|".join(option.choices)
            print(f"    {option.name} = {accepted} (default {option.default}): {option.help}")
    print()
    print("presets:")
    for name, (title, calculator, specs) in PRESETS.items():
        print(f"    {name}: {title} (calculator: {calculator}) — {', '.join(specs)}")


def _seed(text: str) -> int:
    """A seed: ASCII digits only (no signs, spaces, underscores or other scripts' digits)."""
    if not re.fullmatch(r"[0-9]+", text) or int(text) > MAX_SEED:
        raise argparse.ArgumentTypeError(f"seed {text!r} is not accepted; accepted: whole numbers from 0 to {MAX_SEED}")
    return int(text)


def _folder(text: str) -> Path:
    """A file or folder to write: not empty (an empty path would silently be the current folder)."""
    return Path(_given("a file or folder name")(text))


def _given(what: str, default: bool = True):
    """A value that must not be empty when given (an empty one would silently fall back to the default)."""
    def check(text: str) -> str:
        if not text.strip():
            raise argparse.ArgumentTypeError(f"{text!r} is empty; accepted: {what}"
                                             + (" (or leave the option out for the default)" if default else ""))
        return text
    return check


def _title(text: str) -> str:
    """A title pdflatex can print: Latin-script text, at most MAX_TITLE characters."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"title {text!r} is empty; accepted: 1 to {MAX_TITLE} characters (or leave "
                                         "--title out for the default)")
    if len(text) > MAX_TITLE:
        raise argparse.ArgumentTypeError(f"title is {len(text)} characters long; accepted: at most {MAX_TITLE}")
    for ch in text:
        if not printable_in_tex(ch):
            raise argparse.ArgumentTypeError(
                f"title contains {ch!r} (U+{ord(ch):04X}), which pdflatex cannot print; "
                "accepted: Latin letters with accents, digits, punctuation and spaces"
            )
    return text


def _sheet(args: argparse.Namespace) -> None:
    if args.preset:
        title, calculator, problems = preset_problems(args.preset)
        name = args.preset if args.name is None else args.name  # an empty --name is refused below, not replaced
    else:
        title, calculator, problems = "Worksheet", "none", tuple(ProblemSpec.parse(text) for text in args.problem)
        name = "sheet" if args.name is None else args.name
    if not SAFE_STEM.fullmatch(name) or len(name) > MAX_NAME:
        raise UsageError(f"--name {name!r} is not accepted; accepted: 1 up to {MAX_NAME} letters, digits, '.', '_' "
                         "and '-' (the first a letter or digit)")
    spec = SheetSpec(title=args.title or title, seed=args.seed, problems=problems, paper=args.paper,
                     calculator=args.calculator or calculator)
    # The modules, tables and problem types loaded so far live as long as this process: out of the collector's reach,
    # its full collections do not scan them while the sheet is made (about 15 ms of a book preset's 230).
    gc.collect()
    gc.freeze()
    sheet = build(spec)
    fill_in = args.sheet_dir / f"{name}-answers.csv"
    if args.fill_in and fill_in.exists():
        raise UsageError(f"'{fill_in}' already exists (it may hold answers); move it away first")
    paths = write_outputs(sheet, name, args.sheet_dir, args.key_dir)
    for path in paths.values():
        print(path)
    if args.fill_in:
        _write_new(fill_in, fill_in_text(key_data(sheet)), force=False)
        print(fill_in)
    if args.pdf:
        for kind in ("worksheet", "key"):
            print(compile_pdf(paths[kind]).pdf)


def _pdf(args: argparse.Namespace) -> None:
    for tex in args.tex:
        if tex.suffix != ".tex" or not tex.is_file():
            raise UsageError(f"'{tex}' is not a .tex file; pass existing .tex files")
    for tex in args.tex:
        print(compile_pdf(tex, args.outdir).pdf)


def _class(args: argparse.Namespace) -> None:
    start = time.perf_counter()
    assignment = load_assignment(args.assignment)
    roster = load_roster(args.roster)
    out = args.out or Path("classes") / assignment.name
    progress = sys.stderr.isatty()
    summary = Summary()
    if args.only:
        _class_only(args, assignment, roster, out, summary, start)
        return
    secret = class_secret_for(out, assignment)
    build_class(assignment, roster, out, secret, args.pdf, progress, summary)  # generates whose inputs changed
    summary.seconds["total"] = time.perf_counter() - start
    print("\n".join(report(assignment, out, summary)))


def _class_only(args: argparse.Namespace, assignment, roster, out: Path, summary: Summary, start: float) -> None:
    """`class --only ID`: some students' files rebuilt from the folder's secret, nothing else touched."""
    by_id = {s.id: s for s in roster}
    missing = [i for i in args.only if i not in by_id]
    if missing:
        raise UsageError(f"--only {missing[0]!r}: no such id in the roster '{args.roster}'")
    try:
        secret = read_secret(out)
    except SecretError as error:
        raise UsageError(f"{error}; --only rebuilds students of a class folder that `class` built") from None
    students = tuple(by_id[i] for i in dict.fromkeys(args.only))
    sheets = generate(assignment, students, secret, workers=1)
    summary.seconds["generation + rendering"] = time.perf_counter() - start
    write_only(sheets, out, secret, args.pdf, summary)
    summary.seconds["total"] = time.perf_counter() - start
    lines = report(assignment, out, summary)
    lines[0] = lines[0].replace(f"{summary.students} students in", f"{summary.students} of {len(roster)} students in", 1)
    listed = _manifest_variants(out)
    for s in sheets:
        if listed.get(s.student.id, s.variant) != s.variant:
            lines.append(f"  warning: {out / MANIFEST} lists variant {listed[s.student.id]} for {s.student.id!r}, "
                         f"the roster now gives {s.variant}: build the whole class to update the class documents")
    print("\n".join(lines))


def _manifest_variants(out: Path) -> dict[str, str]:
    """id → variant as the folder's class.json lists them (empty when it cannot be read)."""
    try:
        data = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
        return {s["id"]: s["variant"] for s in data["students"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _write_new(path: Path, text: str, force: bool) -> None:
    """Write a file that holds answers or reports: never over an existing one unless forced."""
    if path.exists() and not force:
        raise UsageError(f"'{path}' already exists; pass --force to replace it")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, text.encode("utf-8"))
    except OSError as error:
        raise OutputError(f"cannot write '{path}': {error.strerror or error}; choose a writable folder") from error


def _fillin(args: argparse.Namespace) -> None:
    if args.key:
        datas = [_read_json(args.key)]
    else:
        roster = class_roster(args.class_dir)
        datas = [_read_json(args.class_dir / STUDENTS_DIR / f"{s['stem']}-key.json") for s in roster.students.values()]
    # One header for the whole class.
    texts = [fill_in_text(data, (data.get("student") or {}).get("id", ""), header=i == 0) for i, data in enumerate(datas)]
    _write_new(args.out, "".join(texts), args.force)
    print(args.out)


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UsageError(f"{path}: not a readable JSON key ({error})") from error
    if not isinstance(data, dict) or data.get("format") != KEY_FORMAT:
        raise UsageError(f"{path}: not a key (format is not {KEY_FORMAT!r}); pass a *-key.json file")
    return data


def _mark(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    roster = class_roster(args.class_dir) if args.class_dir else key_roster(args.key)
    out = args.out or Path("marks") / roster.name
    run = mark_files(args.answers, roster, Policy(follow_through=args.follow_through, unreduced=args.unreduced))
    for issue in run.issues:
        print(f"{PROG}: {issue}", file=sys.stderr)
    if not run.students:
        print(f"{PROG}: error: nothing could be marked ({len(run.issues)} problem(s) above)", file=sys.stderr)
        return 2
    title = roster.name
    paths = write_reports(report_files(run, title), out, force=args.force)
    blanks = sum(len(s.marks) for s in run.students)
    print(f"marked {len(run.students)} student(s), {blanks} blanks, in {time.perf_counter() - start:.2f} s; "
          f"{len(run.issues)} input problem(s)" + (f"; {len(run.absent)} student(s) with no answers" if run.absent else ""))
    print(f"reports in {out}: {MARKS}, {DETAILS}, {SUMMARY}, {ISSUES}, {FEEDBACK_DIR}/ ({len(paths) - 4} files)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (2 for bad input, 1 for a TeX failure)."""
    try:
        args = _parser().parse_args(argv)
        if args.command == "mark":
            return _mark(args)
        {"list": lambda a: _list(), "sheet": _sheet, "pdf": _pdf, "class": _class, "fillin": _fillin,
         "serve": _serve}[args.command](args)
    except (UsageError, SpecError, OutputError, MarkingError, ReportExists, SecretError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    except TexError as error:
        print(f"{PROG}: TeX error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
