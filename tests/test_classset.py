"""Class sets without TeX: assignment and roster files, per-student seeds, names, QR data, the class secret and access
codes, equal difficulty."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from generator.classes.assignment import load_assignment
from generator.classes.classset import grading_document, secret_seed, shared_numbers, student_seed, student_sheet
from generator.classes.secret import SECRET_FILE
from generator.cli import main
from generator.classes.qr import matrix, qr_tex, read_payload
from generator.documents.render import user_text_tex
from generator.classes.roster import Student, load_roster, parse_roster
from generator.documents.sheet import ProblemSpec, SheetSpec, build, render_key_json
from generator.web.codes import access_code, class_secret, find_student, normalise_code

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "assignment.toml"
SECRET = bytes(range(32))  # a fixed class secret for tests that build sheets in memory
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
    ('title = "T"\nseed = 1\nopen_seeds = "yes"\n[[problems]]\ntype = "matmul"\n', ["open_seeds:", "true or false"]),
    ('title = "T"\nseed = 1\nurl = "ftp://example.org"\n[[problems]]\ntype = "matmul"\n', ["url:", "https://host/path"]),
    ('title = "T"\nseed = 1\nurl = "javascript:alert(1)"\n[[problems]]\ntype = "matmul"\n', ["url:", "not accepted"]),
    ('title = "T"\nseed = 1\nurl = "https://ex ample.org"\n[[problems]]\ntype = "matmul"\n', ["url:", "' '"]),
    ('title = "T"\nseed = 1\nurl = "https://example.org/?a=1"\n[[problems]]\ntype = "matmul"\n', ["url:", "'?'"]),
    ('title = "T"\nseed = 1\nurl = "https://me:pw@example.org"\n[[problems]]\ntype = "matmul"\n', ["url:", "'@'"]),
    ('title = "T"\nseed = 1\nurl = "https://example.org/\\\\input"\n[[problems]]\ntype = "matmul"\n', ["url:", "'\\\\'"]),
    ('title = "T"\nseed = 1\nurl = "https://example.org/' + 'a' * 190 + '"\n[[problems]]\ntype = "matmul"\n',
     ["url:", "210 characters", "at most 200"]),
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


def test_the_seed_derivations_are_pinned():
    # Papers are rebuilt from (class secret, assignment, id, reroll), open ones and folders made before the class
    # secret from (assignment seed, id, reroll): changing either derivation would orphan them.
    a = load_assignment(EXAMPLE)
    assert secret_seed(SECRET, a, "s001") == secret_seed(SECRET, a, "s001", 0) == 225304176028822828
    assert len({secret_seed(SECRET, a, "s001", r) for r in range(5)}) == 5
    assert secret_seed(bytes(32), a, "s001") != secret_seed(SECRET, a, "s001")  # another class folder
    assert secret_seed(SECRET, replace(a, seed=2027), "s001") != secret_seed(SECRET, a, "s001")
    assert secret_seed(SECRET, replace(a, name="week4"), "s001") != secret_seed(SECRET, a, "s001")
    assert student_seed(2026, "s001") == student_seed(2026, "s001", 0) == 4780213032531426477
    assert len({student_seed(2026, "s001", r) for r in range(5)}) == 5
    assert student_seed(2026, "s001") != student_seed(2027, "s001")
    # Without open seeds the open derivation is not used: knowing the assignment seed gives nothing.
    assert student_sheet(a, Student("s001", "A", 0, 2), SECRET).seed == secret_seed(SECRET, a, "s001")
    assert student_sheet(replace(a, open_seeds=True), Student("s001", "A", 0, 2), SECRET).seed == 4780213032531426477


def test_a_sheet_depends_only_on_the_seed_and_the_id(tmp_path):
    a = load_assignment(EXAMPLE)
    alone = parse_roster("id,name\ns7,Ann\n", Path("one.csv"))[0]
    in_class = parse_roster("id,name\nz1,Zed\ns9,Bo\ns7,Ann\n", Path("class.csv"))[2]
    first, second = student_sheet(a, alone, SECRET), student_sheet(a, in_class, SECRET)
    assert (first.worksheet, first.key, first.json) == (second.worksheet, second.key, second.json)


def test_reroll_gives_new_numbers_and_is_recorded(tmp_path):
    a = load_assignment(EXAMPLE)
    base = Student("s7", "Ann", 0, 2)
    rerolled = student_sheet(a, replace(base, reroll=1), SECRET)
    assert rerolled.variant != student_sheet(a, base, SECRET).variant
    data = json.loads(rerolled.json)
    assert data["student"] == {"id": "s7", "name": "Ann", "reroll": 1}
    assert data["seed"] == secret_seed(SECRET, a, "s7", 1)
    assert "qr" not in data  # the QR code's text is not kept: with a url it holds the access code


def test_sheet_and_key_carry_name_id_variant_points_and_qr():
    a = load_assignment(EXAMPLE)
    s = student_sheet(a, Student("s-42", "Zoë O'Brien", 0, 2), SECRET)
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
    text = student_sheet(load_assignment(EXAMPLE), Student("s1", "Ann", 0, 2), SECRET).qr_text
    expected = matrix(text)
    size = len(expected) + 8  # the quiet zone: 4 modules each side
    drawn = [[False] * size for _ in range(size)]
    for x, y, width in re.findall(r"^(\d+) (\d+) (\d+) 1 re$", qr_tex(text), re.MULTILINE):
        for column in range(int(x), int(x) + int(width)):
            assert not drawn[size - 1 - int(y)][column]  # runs never overlap
            drawn[size - 1 - int(y)][column] = True
    assert [tuple(row[4:-4]) for row in drawn[4:-4]] == list(expected)
    assert not any(any(row) for row in drawn[:4] + drawn[-4:]) and not any(any(row[:4] + row[-4:]) for row in drawn)


def test_the_qr_code_names_the_sheet_but_holds_nothing_that_rebuilds_it():
    a = load_assignment(EXAMPLE)
    s = student_sheet(a, Student("s 1", "Ann", 0, 2), SECRET)
    read = read_payload(s.qr_text)
    assert (read.assignment, read.student, read.variant) == ("week3", "s 1", s.variant)
    assert (read.seed, read.problems, read.link) == (None, (), "")
    assert str(s.seed) not in s.qr_text and s.access_code not in s.qr_text
    assert set(s.qr_text.split("\n")) == {"transformer-worksheets 0.1.0", "assignment week3", "student s 1",
                                          f"variant {s.variant}"}


def test_with_a_url_the_qr_code_is_the_students_link():
    a = replace(load_assignment(EXAMPLE), url="https://example.org/week3")
    s = student_sheet(a, Student("s1", "Ann", 0, 2), SECRET)
    assert s.qr_text == f"https://example.org/week3/s/{s.access_code}"
    assert read_payload(s.qr_text).code == s.access_code
    assert r"Online: \texttt{https:/\allowbreak{}/\allowbreak{}example.\allowbreak{}org/\allowbreak{}week3}" in s.worksheet
    # The numbers do not depend on the url: only the header and the QR code change.
    assert s.variant == student_sheet(load_assignment(EXAMPLE), Student("s1", "Ann", 0, 2), SECRET).variant


def test_with_open_seeds_the_qr_code_rebuilds_the_key_from_the_paper_alone():
    a = replace(load_assignment(EXAMPLE), open_seeds=True)
    s = student_sheet(a, Student("s1", "Ann", 0, 2), SECRET)
    read = read_payload(s.qr_text)
    assert (read.assignment, read.student, read.seed, read.variant) == ("week3", "s1", s.seed, s.variant)
    assert s.seed == student_seed(2026, "s1")
    assert rf"Seed \texttt{{{s.seed}}}" in s.worksheet
    rebuilt = build(SheetSpec(title=a.title, seed=read.seed, problems=tuple(ProblemSpec.parse(p) for p in read.problems)))
    assert rebuilt.variant == s.variant
    assert json.loads(render_key_json(rebuilt))["problems"] == json.loads(s.json)["problems"]


# ----- access codes ---------------------------------------------------------------------------------


def test_an_access_code_is_80_bits_of_crockford_base32_from_the_secret():
    code = access_code(SECRET, "week3", "s001")
    assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}", code)
    assert code == access_code(SECRET, "week3", "s001") == "CM3K-TFHW-0K54-3JEY"  # pinned: printed codes must keep working
    others = {access_code(SECRET, "week3", "s002"), access_code(SECRET, "week4", "s001"),
              access_code(bytes(32), "week3", "s001")}
    assert code not in others and len(others) == 3
    codes = {access_code(SECRET, "week3", f"s{i}") for i in range(2000)}
    assert len(codes) == 2000
    # Every character position takes every value: 80 bits, not a few.
    assert all(len({c.replace("-", "")[i] for c in codes}) == 32 for i in range(16))


@pytest.mark.parametrize("typed", ["CM3K-TFHW-0K54-3JEY", "cm3ktfhw0k543jey", " CM3K TFHW 0K54 3JEY ",
                                   "CM3K\u2013TFHW-0K54-3JEY", "cm3k-tfhw-ok54-3jey\n"])
def test_a_typed_code_is_read_as_printed(typed):
    assert normalise_code(typed) == "CM3K-TFHW-0K54-3JEY"
    assert find_student(SECRET, "week3", ["s000", "s001", "s002"], typed) == "s001"


def test_letters_that_look_like_digits_read_as_the_digits():
    assert normalise_code("oiL0-0000-0000-0000") == "0110-0000-0000-0000"


@pytest.mark.parametrize("typed", ["", "CM3K-TFHW-0K54-3JE", "CM3K-TFHW-0K54-3JEYY", "CM3K-TFHW-0K54-3JEU",
                                   "CM3K-TFHW-0K54-3JE!", "C" * 65, "ＣM3K-TFHW-0K54-3JEY"])
def test_what_cannot_be_a_code_is_refused_in_one_line(typed):
    with pytest.raises(ValueError) as error:
        normalise_code(typed)
    assert "\n" not in str(error.value) and "access code" in str(error.value)
    assert find_student(SECRET, "week3", ["s001"], typed) is None


def test_a_wrong_code_finds_no_one():
    code = access_code(SECRET, "week3", "s001")
    assert find_student(SECRET, "week3", ["s001"], code) == "s001"
    assert find_student(SECRET, "week4", ["s001"], code) is None  # another assignment
    assert find_student(bytes(32), "week3", ["s001"], code) is None  # another class folder
    assert find_student(SECRET, "week3", ["s002", "s003"], code) is None
    flipped = code[:-1] + ("0" if code[-1] != "0" else "1")
    assert find_student(SECRET, "week3", ["s001"], flipped) is None


def test_the_class_secret_is_read_from_the_folder_or_refused_in_one_line(tmp_path):
    with pytest.raises(ValueError) as missing:
        class_secret(tmp_path)
    assert "no class secret" in str(missing.value) and "\n" not in str(missing.value)
    (tmp_path / SECRET_FILE).write_text("not hex\n")
    with pytest.raises(ValueError) as bad:
        class_secret(tmp_path)
    assert "not a class secret" in str(bad.value) and "\n" not in str(bad.value)
    (tmp_path / SECRET_FILE).write_text(SECRET.hex() + "\n")
    assert class_secret(tmp_path) == SECRET


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
    sheets = [student_sheet(a, s, SECRET) for s in roster]
    # Seeds from a class secret are random: two of 300 share dot_product's numbers in about one class folder in 20
    # (its draws are the fewest), as they do in this one. The build names them; a reroll parts them.
    shared = shared_numbers(sheets)
    assert len(shared) <= 1 and all(len(ids) == 2 for _, ids in shared)
    for _, ids in shared:
        index = next(i for i, s in enumerate(roster) if s.id == ids[1])
        sheets[index] = student_sheet(a, replace(roster[index], reroll=1), SECRET)
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
    sheets = [student_sheet(a, Student(f"s{i}", "A", 0, i), SECRET) for i in range(40)]
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
    sheet = student_sheet(a, Student("s1", "Ann O'Neil", 0, 2), SECRET)
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
    # A score box per blank, and the tables span the line (an \\halign whose rows a page may break between).
    assert tex.count(r"& \scorebox") == sum(blanks)
    assert tex.count(r"\halign to\linewidth{") == 4 and r"\begin{tabular" not in tex
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
    assert _files(out) == sorted(["class.json", "grading.tex", "keys.tex", "worksheets.tex", "secret.key"]
                                 + [f"students/{stem}{suffix}" for stem in ("s1", "s2", stem3)
                                    for suffix in (".tex", "-key.tex", "-key.json")]
                                 + [f"cache/{stem}.json" for stem in ("s1", "s2", stem3)])
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


def test_a_student_removed_from_the_roster_loses_their_files_on_rebuild(tmp_path, capsys):
    """Their worksheet, key, JSON key, PDFs and cache record go; everyone else's files stay byte-identical, and a file
    the teacher put into students/ stays (even one whose name starts with the removed student's stem)."""
    roster = _roster(tmp_path, [("s1", "Ann"), ("s2", "Bo"), ("a5", "Cy"), ("a/6", "Di")])
    out = tmp_path / "out"
    assert main(["class", str(EXAMPLE), str(roster), "--out", str(out)]) == 0
    assert "4 written, 0 unchanged\n" in capsys.readouterr().out  # nothing removed: not said
    stem6 = [s.stem for s in load_roster(roster)][3]
    gone = [f"students/{stem}{suffix}" for stem in ("a5", stem6)
            for suffix in (".tex", ".pdf", "-key.tex", "-key.pdf", "-key.json")] + ["cache/a5.json", f"cache/{stem6}.json"]
    for stem in ("a5", stem6):  # as --pdf leaves them (cut from the class PDFs)
        for suffix in (".pdf", "-key.pdf"):
            (out / "students" / f"{stem}{suffix}").write_bytes(b"%PDF-1.5 of " + stem.encode())
    teachers = {"students/notes.txt": b"marked by hand", "students/a5-notes.tex": b"% mine", "students/a5.txt": b"x",
                "a5.tex": b"% the teacher's, beside the class folder's files"}
    for name, data in teachers.items():
        (out / name).write_bytes(data)
    files = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert set(gone) <= set(files)
    _roster(tmp_path, [("s1", "Ann"), ("s2", "Bo")])
    assert main(["class", str(EXAMPLE), str(roster), "--out", str(out)]) == 0
    assert "2 students in" in (said := capsys.readouterr().out) and "0 written, 2 unchanged, 2 removed" in said
    after = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert not set(gone) & set(after)
    for name, data in files.items():
        if name not in gone and name not in ("class.json", "worksheets.tex", "keys.tex", "grading.tex"):
            assert after[name] == data, name  # the others' files, the teacher's files, the secret: as they were
    assert [s["id"] for s in json.loads((out / "class.json").read_text())["students"]] == ["s1", "s2"]
    assert main(["class", str(EXAMPLE), str(roster), "--out", str(out)]) == 0
    assert "0 written, 2 unchanged\n" in capsys.readouterr().out


def test_only_the_builds_own_stems_are_removed(tmp_path):
    """A class.json edited to list '../x' or a name outside the students' stems removes nothing outside students/."""
    from generator.classes.classbuild import _removed_stems
    out = tmp_path / "out"
    out.mkdir()
    (out / "class.json").write_text(json.dumps({"students": [{"stem": "../x"}, {"stem": ".hidden"}, {"stem": "S1"},
                                                             {"stem": 5}, {"stem": "a/b"}, {"stem": "s2"}]}))
    sheets = [replace(student_sheet(load_assignment(EXAMPLE), Student("s1", "Ann", 0, 1), SECRET))]
    assert _removed_stems(out, sheets) == ["s2"]  # S1 is s1's own file where case is ignored
    (out / "class.json").write_text("not json")
    assert _removed_stems(out, sheets) == []


def _run_class(folder: Path, hash_seed: str) -> dict[str, bytes]:
    roster = folder.parent / "roster.csv"
    subprocess.run([sys.executable, "-m", "generator", "class", str(EXAMPLE), str(roster), "--out", str(folder)],
                   check=True, capture_output=True, env={**os.environ, "PYTHONHASHSEED": hash_seed}, cwd=ROOT)
    return {name: (folder / name).read_bytes() for name in _files(folder)}


def test_class_files_are_byte_identical_across_processes(tmp_path):
    # The same class folder (the same secret) rebuilds the same bytes, in another process, in another place.
    _roster(tmp_path, [(f"s{i}", name) for i, name in enumerate(HOSTILE_NAMES)])
    first = _run_class(tmp_path / "one", "1")
    (tmp_path / "two").mkdir()
    shutil.copy(tmp_path / "one" / SECRET_FILE, tmp_path / "two" / SECRET_FILE)
    second = _run_class(tmp_path / "two", "4321")
    assert len(first) == 6 + 4 * len(HOSTILE_NAMES)  # names.tex too (names.py); a cache record a student
    assert first == second
    shutil.rmtree(tmp_path / "two")  # a new folder: a new secret, new numbers
    third = _run_class(tmp_path / "two", "1")
    assert third[SECRET_FILE] != first[SECRET_FILE] and third["students/s0-key.json"] != first["students/s0-key.json"]


def test_the_secret_is_made_once_owner_only_and_kept(tmp_path, capsys):
    roster = _roster(tmp_path, [("s1", "Ann"), ("s2", "Bo")])
    out = tmp_path / "out"
    assert main(["class", str(EXAMPLE), str(roster), "--out", str(out)]) == 0
    path = out / SECRET_FILE
    text = path.read_text()
    assert re.fullmatch(r"[0-9a-f]{64}\n", text) and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert class_secret(out).hex() == text.strip()
    before = {name: (out / name).read_bytes() for name in _files(out)}
    assert main(["class", str(EXAMPLE), str(roster), "--out", str(out)]) == 0
    assert "0 written, 2 unchanged" in capsys.readouterr().out
    assert {name: (out / name).read_bytes() for name in _files(out)} == before
    assert text not in capsys.readouterr().out  # never printed
    # The seeds come from the secret: the open derivation from the assignment seed does not give them.
    key = json.loads((out / "students" / "s1-key.json").read_text())
    assert key["seed"] == secret_seed(class_secret(out), load_assignment(EXAMPLE), "s1") != student_seed(2026, "s1")
    manifest = json.loads((out / "class.json").read_text())
    assert manifest["format_version"] == 2 and all("seed" not in s for s in manifest["students"])


def test_a_folder_without_its_secret_is_not_rebuilt_with_new_numbers(tmp_path, capsys):
    roster = _roster(tmp_path, [("s1", "Ann")])
    out = tmp_path / "out"
    assert main(["class", str(EXAMPLE), str(roster), "--out", str(out)]) == 0
    (out / SECRET_FILE).unlink()  # lost, or a folder built before class secrets
    key = (out / "students" / "s1-key.json").read_bytes()
    assert main(["class", str(EXAMPLE), str(roster), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "class.json but no secret.key" in err and "open_seeds = true" in err
    assert (out / "students" / "s1-key.json").read_bytes() == key and not (out / SECRET_FILE).exists()
    (out / SECRET_FILE).write_text("0123\n")
    assert main(["class", str(EXAMPLE), str(roster), "--out", str(out)]) == 2
    assert "not a class secret" in capsys.readouterr().err


def test_open_seeds_keep_the_numbers_of_a_folder_built_before_class_secrets(tmp_path, capsys):
    text = EXAMPLE.read_text(encoding="utf-8").replace('calculator = "none"', 'calculator = "none"\nopen_seeds = true')
    roster = _roster(tmp_path, [("s001", "Ann")])
    out = tmp_path / "out"
    out.mkdir()
    (out / "class.json").write_text("{}")  # an old folder: a manifest, no secret
    assert main(["class", str(_assignment(tmp_path, text)), str(roster), "--out", str(out)]) == 0
    key = json.loads((out / "students" / "s001-key.json").read_text())
    assert key["seed"] == student_seed(2026, "s001") == 4780213032531426477  # as the docs' old example printed
    assert (out / SECRET_FILE).exists()  # for the access codes


def test_only_rebuilds_one_students_files_from_the_folder(tmp_path, capsys):
    roster = _roster(tmp_path, [("s1", "Ann"), ("s2", "Bo"), ("s3", "Cy")])
    out = tmp_path / "out"
    assert main(["class", str(EXAMPLE), str(roster), "--out", str(out)]) == 0
    before = {name: (out / name).read_bytes() for name in _files(out)}
    for name in ("students/s2-key.json", "students/s2-key.tex", "students/s2.tex"):
        (out / name).unlink()
    (out / "keys.tex").write_text("left alone")
    capsys.readouterr()
    assert main(["class", str(EXAMPLE), str(roster), "--out", str(out), "--only", "s2"]) == 0
    assert "week3: 1 of 3 students" in capsys.readouterr().out
    after = {name: (out / name).read_bytes() for name in _files(out)}
    assert after == {**before, "keys.tex": b"left alone"}
    assert main(["class", str(EXAMPLE), str(roster), "--out", str(out), "--only", "s9"]) == 2
    assert "--only 's9': no such id in the roster" in capsys.readouterr().err
    assert main(["class", str(EXAMPLE), str(roster), "--out", str(tmp_path / "new"), "--only", "s1"]) == 2
    err = capsys.readouterr().err
    assert "no class secret" in err and err.count("\n") == 1 and not (tmp_path / "new").exists()


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
    serial = generate(a, roster, SECRET, workers=1)
    parallel = generate(a, roster, SECRET, workers=2)
    assert [(s.student.id, s.worksheet, s.key, s.json) for s in parallel] == \
           [(s.student.id, s.worksheet, s.key, s.json) for s in serial]
