"""Class sets without TeX: assignment and roster files, per-student seeds, names, QR data, equal difficulty."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from generator.classes.assignment import load_assignment
from generator.classes.classset import grading_document, shared_numbers, student_seed, student_sheet
from generator.cli import main
from generator.classes.qr import matrix, qr_tex, read_payload
from generator.documents.render import user_text_tex
from generator.classes.roster import Student, load_roster, parse_roster
from generator.documents.sheet import ProblemSpec, SheetSpec, build, render_key_json

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "assignment.toml"
HOSTILE_NAMES = [
    r"\input{/etc/passwd}",
    r"\immediate\write18{touch pwned}",
    r"\def\x{y}\x \catcode`\%=11",
    "^^5c ^^M",
    "% # & _ { } ~ ^ \\ $",
    "x" * 500,
    "שלום مرحبا",
    "👩‍👩‍👧 🎉👍🏽",
    "Zoë O'Brien-Łukasiewicz",
    "Ирина Петрова",
    "\u202eevil\u202c \x07bell",
]


def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def _roster(folder: Path, rows: list[tuple[str, ...]], header: str = "id,name") -> Path:
    import csv
    path = folder / "roster.csv"
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(header.split(","))
        writer.writerows(rows)
    return path


def _assignment(folder: Path, text: str) -> Path:
    path = folder / "a.toml"
    path.write_text(text, encoding="utf-8")
    return path


# ----- the assignment file --------------------------------------------------------------------


def test_example_assignment_reads_as_documented():
    a = load_assignment(EXAMPLE)
    assert (a.name, a.title, a.date, a.seed, a.paper, a.calculator) == (
        "week3", "Week 3 quiz: matrix products", "2026-03-02", 2026, "a4", "none")
    assert [p.type for p in a.problems] == ["matmul", "transpose", "dot_product", "matmul_gradient"]
    assert a.problems[3].options == {"difficulty": "easy"}
    assert a.points == (4, 3, 3, 4)


def test_a_preset_brings_all_its_problems_with_its_points(tmp_path):
    a = load_assignment(_assignment(tmp_path, 'title = "T"\nseed = 1\n[[problems]]\npreset = "matrix-core"\npoints = 2\n'
                                              '[[problems]]\ntype = "inverse"\ngiven = "a"\n'))
    assert len(a.problems) == 9 and a.points == (2,) * 8 + (1,)
    assert a.problems[-1].given_parts == ("a",)
    assert a.name == "a"  # the file's stem when no name is given


BAD_ASSIGNMENTS = [
    ('title = "T"\nseed = 1\n[[problems]\ntype = "matmul"\n', ["not valid TOML"]),
    ('seed = 1\n[[problems]]\ntype = "matmul"\n', ["missing key 'title'"]),
    ('title = "T"\nseed = 1\n', ["missing key 'problems'"]),
    ('title = "T"\ntitel = "x"\nseed = 1\n[[problems]]\ntype = "matmul"\n', ["titel:", "unknown key", "accepted:"]),
    ('title = "T"\nseed = -1\n[[problems]]\ntype = "matmul"\n', ["seed:", "-1", "0 to"]),
    ('title = "T"\nseed = "7"\n[[problems]]\ntype = "matmul"\n', ["seed:", "'7'", "whole number"]),
    ('title = "T"\nseed = 1\npaper = "a5"\n[[problems]]\ntype = "matmul"\n', ["paper:", "'a5'", "a4, letter"]),
    ('title = "T"\nseed = 1\n[[problems]]\ntype = "matmull"\n', ["problems[1]:", "unknown problem type 'matmull'", "matmul"]),
    ('title = "T"\nseed = 1\n[[problems]]\ntype = "matmul"\n[[problems]]\ntype = "matmul"\noptions = { shape = "3x3" }\n',
     ["problems[2]:", "shape='3x3'", "accepted: 2x2, 2x1"]),
    ('title = "T"\nseed = 1\n[[problems]]\ntype = "matmul"\npoints = -2\n', ["problems[1].points:", "0 to"]),
    ('title = "T"\nseed = 1\n[[problems]]\npreset = "nope"\n', ["problems[1].preset:", "'nope'", "matrix-core"]),
    ('title = "T"\nseed = 1\n[[problems]]\ntype = "matmul:shape=2x1"\n', ["problems[1]:", "options = {"]),
    ('title = "T"\nseed = 1\nproblems = []\n', ["problems:", "[[problems]]"]),
    ('title = "Привет"\nseed = 1\n[[problems]]\ntype = "matmul"\n', ["title:", "U+041F"]),
    ('title = "T"\nseed = 1\nname = "../x"\n[[problems]]\ntype = "matmul"\n', ["name:", "'../x'", "letters"]),
    ('title = "T"\nseed = 1\n[[problems]]\ntype = "softmax"\noptions = { form = "table" }\n',
     ["calculator:", "needs a basic calculator", 'calculator = "basic"']),
]


@pytest.mark.parametrize("text, words", BAD_ASSIGNMENTS)
def test_a_bad_assignment_is_one_clear_line_and_writes_nothing(tmp_path, capsys, text, words):
    assignment = _assignment(tmp_path, text)
    roster = _roster(tmp_path, [("s1", "Ann")])
    assert main(["class", str(assignment), str(roster), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("transformer-worksheets: error: ")
    assert str(assignment) in err
    for word in words:
        assert word in err
    assert _files(tmp_path) == ["a.toml", "roster.csv"]


# ----- the roster ---------------------------------------------------------------------------------


def test_roster_with_bom_crlf_extra_columns_and_reroll(tmp_path):
    path = tmp_path / "r.csv"
    path.write_bytes("\ufeffStudent ID,Email,Name,Reroll\r\nA1,a@x,Zoë O'Brien,\r\n\r\nB2,b@x,\"Núñez, José\",3\r\n".encode())
    students = load_roster(path)
    assert [(s.id, s.name, s.reroll, s.row) for s in students] == [("A1", "Zoë O'Brien", 0, 2), ("B2", "Núñez, José", 3, 4)]


BAD_ROSTERS = [
    ("", ["empty"]),
    ("id,name\n", ["no students"]),
    ("ident,name\ns1,Ann\n", ["row 1", "no id column", "'ident', 'name'", "id or student_id"]),
    ("id,first\ns1,Ann\n", ["no name column", "name or student_name"]),
    ("id,name\ns1,Ann\n ,Bob\n", ["row 3", "id is empty"]),
    ("id,name\ns1,Ann\ns2,Bob\ns1,Cy\n", ["row 4", "'s1'", "row 2"]),
    ("id,name\ns1,\n", ["row 2", "name is empty"]),
    ("id,name,reroll\ns1,Ann,-1\n", ["row 2", "reroll '-1'", "0 to 9999"]),
    ("id,name\n" + "x" * 33 + ",Ann\n", ["row 2", "33 characters", "at most 32"]),
    ("id,name\nA1,Ann\na1,Bob\n", ["row 3", "file name", "letter case"]),
]


@pytest.mark.parametrize("text, words", BAD_ROSTERS)
def test_a_bad_roster_is_one_clear_line_and_writes_nothing(tmp_path, capsys, text, words):
    roster = tmp_path / "roster.csv"
    roster.write_text(text, encoding="utf-8")
    assert main(["class", str(EXAMPLE), str(roster), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(roster) in err
    for word in words:
        assert word in err
    assert _files(tmp_path) == ["roster.csv"]


def test_a_roster_that_is_not_utf8_names_the_row(tmp_path, capsys):
    roster = tmp_path / "roster.csv"
    roster.write_bytes(b"id,name\ns1,Ann\ns2,Jos\xe9\n")
    assert main(["class", str(EXAMPLE), str(roster), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "row 3" in err and "UTF-8" in err and err.count("\n") == 1


# ----- one variant per student ------------------------------------------------------------------


def test_the_seed_derivation_is_pinned():
    # Old papers are rebuilt from (assignment seed, id, reroll): changing this derivation would orphan them.
    assert student_seed(2026, "s001") == student_seed(2026, "s001", 0) == 4780213032531426477
    assert len({student_seed(2026, "s001", r) for r in range(5)}) == 5
    assert student_seed(2026, "s001") != student_seed(2027, "s001")


def test_a_sheet_depends_only_on_the_seed_and_the_id(tmp_path):
    a = load_assignment(EXAMPLE)
    alone = parse_roster("id,name\ns7,Ann\n", Path("one.csv"))[0]
    in_class = parse_roster("id,name\nz1,Zed\ns9,Bo\ns7,Ann\n", Path("class.csv"))[2]
    first, second = student_sheet(a, alone), student_sheet(a, in_class)
    assert (first.worksheet, first.key, first.json) == (second.worksheet, second.key, second.json)


def test_reroll_gives_new_numbers_and_is_recorded(tmp_path):
    a = load_assignment(EXAMPLE)
    base = Student("s7", "Ann", 0, 2)
    rerolled = student_sheet(a, replace(base, reroll=1))
    assert rerolled.variant != student_sheet(a, base).variant
    data = json.loads(rerolled.json)
    assert data["student"] == {"id": "s7", "name": "Ann", "reroll": 1}
    assert data["seed"] == student_seed(2026, "s7", 1)


def test_sheet_and_key_carry_name_id_variant_points_and_qr():
    a = load_assignment(EXAMPLE)
    s = student_sheet(a, Student("s-42", "Zoë O'Brien", 0, 2))
    for text in (s.worksheet, s.key):
        assert "Name: Zoë O\u2019Brien" in text  # a name is prose: a typographic apostrophe
        assert "ID: s-{}42" in text and s.variant in text
        assert "(4 points)" in text and "Total: 14 points" in text
        assert r"\pdfliteral{q " in text
    assert r"\rule{8cm}" not in s.worksheet  # the name is printed, not left blank


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_user_text_never_reaches_tex_unescaped(name):
    tex = user_text_tex(name)
    # Only the escapes, the placeholder and the break penalty: no control sequence of the user's survives.
    commands = set(re.findall(r"\\[A-Za-z]+|\\.", tex))
    assert commands <= {r"\textbackslash", r"\textasciicircum", r"\textasciitilde", r"\textquotesingle",
                        r"\textasciigrave", r"\textless", r"\textgreater", r"\textbar", r"\textquotedbl",
                        r"\%", r"\#", r"\&", r"\_", r"\{", r"\}", r"\$", r"\missingglyph", r"\penalty"}
    # Braces balance, so nothing the user typed can close a group of the template's.
    depth = 0
    for piece in re.split(r"(\\[{}]|[{}])", tex):
        depth += {"{": 1, "}": -1}.get(piece, 0)
        assert depth >= 0
    assert depth == 0
    assert "^^" not in tex and "%" not in tex.replace(r"\%", "")


def test_unprintable_clusters_are_one_placeholder_and_accents_compose():
    assert user_text_tex("👩‍👩‍👧 x") == r"\missingglyph{} x"
    assert user_text_tex("👍🏽") == r"\missingglyph{}"
    assert user_text_tex("Zoe\u0308") == "Zoë"  # a decomposed accent prints as the composed letter
    assert user_text_tex("a\u200fb") == "ab"  # a direction mark is invisible formatting
    assert user_text_tex("Ир") == r"\missingglyph{}\missingglyph{}"


# ----- the QR code ----------------------------------------------------------------------------------


def test_the_drawn_qr_code_is_segnos_matrix():
    text = student_sheet(load_assignment(EXAMPLE), Student("s1", "Ann", 0, 2)).qr_text
    expected = matrix(text)
    size = len(expected) + 8  # the quiet zone: 4 modules each side
    drawn = [[False] * size for _ in range(size)]
    for x, y, width in re.findall(r"^(\d+) (\d+) (\d+) 1 re$", qr_tex(text), re.MULTILINE):
        for column in range(int(x), int(x) + int(width)):
            assert not drawn[size - 1 - int(y)][column]  # runs never overlap
            drawn[size - 1 - int(y)][column] = True
    assert [tuple(row[4:-4]) for row in drawn[4:-4]] == list(expected)
    assert not any(any(row) for row in drawn[:4] + drawn[-4:]) and not any(any(row[:4] + row[-4:]) for row in drawn)


def test_the_qr_code_rebuilds_the_key_from_the_paper_alone():
    a = load_assignment(EXAMPLE)
    s = student_sheet(a, Student("s1", "Ann", 0, 2))
    read = read_payload(s.qr_text)
    assert (read.assignment, read.seed, read.variant) == ("week3", s.seed, s.variant)
    rebuilt = build(SheetSpec(title=a.title, seed=read.seed, problems=tuple(ProblemSpec.parse(p) for p in read.problems)))
    assert rebuilt.variant == s.variant
    assert json.loads(render_key_json(rebuilt))["problems"] == json.loads(s.json)["problems"]


# ----- equal difficulty, different numbers ---------------------------------------------------------


def _shape_signature(problem) -> tuple:
    """What must be the same for every student: givens' names and shapes, parts, answers' shapes, steps."""
    return (
        tuple((q.name, q.shape) for q in problem.given),
        tuple(
            (tuple((q.name, q.shape) for q in part.answers),
             tuple((len(step.expansions), len(step.lines), len(step.checks), step.result.shape if step.result else None)
                   for step in part.steps))
            for part in problem.parts
        ),
    )


def test_a_class_of_300_never_shares_numbers_and_every_variant_has_the_same_shape():
    a = load_assignment(EXAMPLE)
    roster = [Student(f"s{i:03d}", f"Student {i}", 0, i + 1) for i in range(1, 301)]
    sheets = [student_sheet(a, s) for s in roster]
    assert shared_numbers(sheets) == []
    for number in range(len(a.problems)):
        givens = {s.givens[number] for s in sheets}
        assert len(givens) == 300, (number, len(givens))
    signatures = {tuple(_shape_signature(p) for p in build(a.sheet_spec(s.seed)).problems) for s in sheets}
    assert len(signatures) == 1
    assert len({s.variant for s in sheets}) == 300


def test_students_who_share_numbers_are_found():
    # A rotation has few variants: a class of 40 must share some, and the build names them.
    a = replace(load_assignment(EXAMPLE), problems=(ProblemSpec.parse("linear_map:kind=rotation"),), points=(1,))
    sheets = [student_sheet(a, Student(f"s{i}", "A", 0, i)) for i in range(40)]
    shared = shared_numbers(sheets)
    assert shared and all(number == 1 and len(ids) >= 2 for number, ids in shared)
    for _, ids in shared:
        givens = {s.givens[0] for s in sheets if s.student.id in ids}
        assert len(givens) == 1


# ----- the grading sheet ----------------------------------------------------------------------------


def test_the_grading_sheet_labels_blanks_as_printed_with_points_and_score_boxes(tmp_path):
    a = load_assignment(_assignment(tmp_path, 'name = "g"\ntitle = "G\'s"\nseed = 3\ncalculator = "basic"\n'
                                              '[[problems]]\ntype = "transpose"\npoints = 3\n'
                                              '[[problems]]\ntype = "dot_product"\npoints = 3\n'
                                              '[[problems]]\ntype = "example1"\npoints = 9\n'
                                              '[[problems]]\ntype = "attention_scores"\n'))
    sheet = student_sheet(a, Student("s1", "Ann O'Neil", 0, 2))
    key = json.loads(sheet.json)
    tex = grading_document(a, [sheet])
    # Every blank's label is the symbol the sheet prints, with its index (KT[0,1], a.b, angle(a,b) before).
    assert r"1a\enspace $K^{\mathsf T}[0,1]$ &" in tex and r"2a\enspace $a \cdot b$ &" in tex
    assert r"2a\enspace $\angle(a,b)$ &" in tex and "KT[" not in tex and "a.b" not in tex
    assert not re.search(r"\\texttt\{\d+[a-z] ", tex)  # no typewriter labels left
    assert r"$\left(Q\,K^{\mathsf T}\right)[0,1]$" in tex  # a product's entry, not Q times an entry of K^T
    # Points per problem and per blank (the problem's points shared equally, as marking shares them).
    blanks = [len(p["blanks"]) for p in key["problems"]]
    assert rf"\problemscore{{1}}{{3}}{{points}}{{3/{blanks[0]}}}" in tex
    assert rf"\problemscore{{4}}{{1}}{{point}}{{1/{blanks[3]}}}" in tex
    assert "Total \\scorebox[3em]\\,/\\,16" in tex
    # A score box per blank, and the tables span the line.
    assert tex.count(r"& \scorebox") == sum(blanks)
    assert tex.count(r"\begin{tabular*}{\linewidth}") == 4 and r"\begin{tabular}" not in tex
    # A 4-place blank shows the tables' value and every value their roundings allow.
    a_blank = next(b for b in key["problems"][2]["blanks"] if b["name"] == "a")
    assert rf"{{\boldmath${a_blank['table_value']}$}} ($" in tex
    # Names and the title are prose (typographic apostrophes), and still escaped.
    assert "Ann O\u2019Neil" in tex and "Grading sheet: G\u2019s" in tex


# ----- the class folder -----------------------------------------------------------------------------


def test_class_writes_every_students_files_and_rewrites_only_what_changed(tmp_path, capsys):
    roster = _roster(tmp_path, [("s1", "Ann"), ("s2", "Bo"), ("s/3", "Cy")])
    out = tmp_path / "out"
    assert main(["class", str(EXAMPLE), str(roster), "--out", str(out)]) == 0
    assert "3 written, 0 unchanged" in capsys.readouterr().out
    stem3 = [s.stem for s in load_roster(roster)][2]
    assert stem3.startswith("s_3-")
    assert _files(out) == sorted(["class.json", "grading.tex", "keys.tex", "worksheets.tex"]
                                 + [f"students/{stem}{suffix}" for stem in ("s1", "s2", stem3)
                                    for suffix in (".tex", "-key.tex", "-key.json")])
    before = {p: p.stat().st_mtime_ns for p in (out / "students").iterdir()}
    os.utime(out / "students" / "s1.tex", ns=(1, 1))  # an old time: a rewrite would change it
    _roster(tmp_path, [("s1", "Ann"), ("s2", "Bo Ek"), ("s/3", "Cy")])
    assert main(["class", str(EXAMPLE), str(roster), "--out", str(out)]) == 0
    assert "1 written, 2 unchanged" in capsys.readouterr().out
    assert (out / "students" / "s1.tex").stat().st_mtime_ns == 1
    assert "Bo Ek" in (out / "students" / "s2.tex").read_text()
    assert (out / "students" / "s2.tex").stat().st_mtime_ns >= before[out / "students" / "s2.tex"]
    manifest = json.loads((out / "class.json").read_text())
    assert [s["id"] for s in manifest["students"]] == ["s1", "s2", "s/3"]


def _run_class(folder: Path, hash_seed: str) -> dict[str, bytes]:
    roster = folder.parent / "roster.csv"
    subprocess.run([sys.executable, "-m", "generator", "class", str(EXAMPLE), str(roster), "--out", str(folder)],
                   check=True, capture_output=True, env={**os.environ, "PYTHONHASHSEED": hash_seed}, cwd=ROOT)
    return {name: (folder / name).read_bytes() for name in _files(folder)}


def test_class_files_are_byte_identical_across_processes(tmp_path):
    _roster(tmp_path, [(f"s{i}", name) for i, name in enumerate(HOSTILE_NAMES)])
    first = _run_class(tmp_path / "one", "1")
    second = _run_class(tmp_path / "two", "4321")
    assert len(first) == 4 + 3 * len(HOSTILE_NAMES)
    assert first == second


def test_the_summary_warns_about_shared_numbers(tmp_path, capsys):
    assignment = _assignment(tmp_path, 'title = "T"\nseed = 1\n[[problems]]\ntype = "matmul"\n'
                                       '[[problems]]\ntype = "linear_map"\n')
    roster = _roster(tmp_path, [(f"s{i}", "A") for i in range(60)])
    assert main(["class", str(assignment), str(roster), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "warning: problem 2 (linear_map)" in out and "problem 1" not in out


def test_worker_processes_give_the_same_sheets_in_roster_order():
    from generator.classes.classbuild import generate
    a = load_assignment(EXAMPLE)
    roster = tuple(Student(f"s{i}", f"Name {i}", 0, i) for i in range(12))
    serial = generate(a, roster, workers=1)
    parallel = generate(a, roster, workers=2)
    assert [(s.student.id, s.worksheet, s.key, s.json) for s in parallel] == \
           [(s.student.id, s.worksheet, s.key, s.json) for s in serial]
