"""Class sets with real pdflatex: hostile names print literally, odd-page starts, splitting, QR codes decode, and
nothing printed or written for students rebuilds a key."""

from __future__ import annotations

import csv
import json
import re
import stat
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from generator.classes import classset
from generator.classes.assignment import load_assignment
from generator.classes.classpdf import compile_class_documents, split_pages
from generator.classes.classset import student_seed
from generator.classes.secret import SECRET_FILE, new_secret
from generator.cli import main
from generator.classes.qr import read_payload, spec_text
from generator.documents.render import typographic_quotes
from generator.classes.roster import Student, load_roster
from generator.documents.sheet import ProblemSpec

from .test_classset import EXAMPLE, HOSTILE_NAMES, SECRET


def _pdf_text(pdf: Path, first: int | None = None, last: int | None = None) -> str:
    pages = [*(["-f", str(first)] if first else []), *(["-l", str(last)] if last else [])]
    return subprocess.run(["pdftotext", *pages, str(pdf), "-"], check=True, capture_output=True, text=True).stdout


def _pages(pdf: Path) -> int:
    info = subprocess.run(["pdfinfo", str(pdf)], check=True, capture_output=True, text=True).stdout
    return int(re.search(r"Pages:\s+(\d+)", info).group(1))


def _write_roster(path: Path, rows: list[tuple[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8-sig") as out:  # as Excel saves it: BOM and CRLF
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(["Student ID", "Name", "Email"])
        writer.writerows((i, n, "ignored@example.org") for i, n in rows)
    return path


def _flat(text: str) -> str:
    """PDF text with line breaks and spaces removed (a 500-letter name wraps over several lines)."""
    return re.sub(r"\s+", "", text)


def test_hostile_names_print_literally_and_run_nothing(tmp_path, capsys):
    rows = [(f"h{i:02d}", name) for i, name in enumerate(HOSTILE_NAMES)] + [("a\\b{c}", "Id with TeX")]
    roster = _write_roster(tmp_path / "roster.csv", rows)
    out = tmp_path / "out"
    assert main(["class", str(EXAMPLE), str(roster), "--out", str(out), "--pdf"]) == 0
    assert not list(tmp_path.rglob("pwned"))
    for student in load_roster(roster):
        for suffix in ("", "-key"):
            text = _pdf_text(out / "students" / f"{student.stem}{suffix}.pdf", 1, 1)
            assert "root:x:0" not in text
            # Every name prints as typed (quotes typographic), in any script (names.py): pdftotext gives it back.
            assert _flat(_unmarked(typographic_quotes(student.name))) in _flat(_unmarked(text)), (student.name, text[:300])
            assert _flat(student.id) in _flat(text)
    grading = _pdf_text(out / "grading.pdf")
    assert r"\input{/etc/passwd}" in grading and "Zoë O\u2019Brien-Łukasiewicz" in grading
    # Characters no installed font has print as their code points in a box, and the build names them.
    emoji_page = _pdf_text(out / "students" / "h07.pdf", 1, 1)
    assert "Name: \U0001f469\u200d\U0001f469\u200d\U0001f467 \U0001f389\U0001f44d\U0001f3fd" in emoji_page, emoji_page[:200]
    assert "U+1F469" in capsys.readouterr().err


def _unmarked(text: str) -> str:
    """Text without explicit bidi controls: pdftotext adds U+202B and U+202C around right-to-left text, and the
    names' controls (U+202A-U+202E, U+2066-U+2069) are not printed nor extracted (names.py)."""
    return re.sub("[\u202a-\u202e\u2066-\u2069]", "", text)


def test_each_student_starts_on_an_odd_page_and_gets_their_own_pages(tmp_path, capsys):
    # One short problem: a one-page worksheet, so every student after the first needs a blank page before it.
    assignment = tmp_path / "one.toml"
    assignment.write_text('name = "one"\ntitle = "One page"\nseed = 5\n[[problems]]\ntype = "matmul"\n'
                          'options = { shape = "2x1" }\n', encoding="utf-8")
    roster = _write_roster(tmp_path / "roster.csv", [("s1", "Ann"), ("s2", "Bo"), ("s3", "Cy")])
    out = tmp_path / "out"
    assert main(["class", str(assignment), str(roster), "--out", str(out), "--pdf"]) == 0
    assert "worksheets.pdf 5 pages" in capsys.readouterr().out
    text = _pdf_text(out / "worksheets.pdf").split("\f")
    assert ["Ann" in text[0], text[1].strip(), "Bo" in text[2], text[3].strip(), "Cy" in text[4]] == [True, "", True, "", True]
    for stem, name in (("s1", "Ann"), ("s2", "Bo"), ("s3", "Cy")):
        pdf = out / "students" / f"{stem}.pdf"
        assert _pages(pdf) == 1 and f"Name: {name}" in _pdf_text(pdf)
        assert "Page 1 of 1" in _pdf_text(pdf)  # numbering restarts per student, and so does the total
        key = out / "students" / f"{stem}-key.pdf"
        assert f"Name: {name}" in _pdf_text(key) and "Answer key" in _pdf_text(key)


def test_a_changed_student_rebuilds_only_their_pdfs_and_pdfs_are_reproducible(tmp_path, capsys):
    roster = _write_roster(tmp_path / "roster.csv", [("s1", "Ann"), ("s2", "Bo")])
    out = tmp_path / "out"
    assert main(["class", str(EXAMPLE), str(roster), "--out", str(out), "--pdf"]) == 0
    capsys.readouterr()
    first = {p.name: p.read_bytes() for p in out.rglob("*.pdf")}
    (out / "students" / "s1.pdf").unlink()
    assert main(["class", str(EXAMPLE), str(roster), "--out", str(out), "--pdf"]) == 0
    assert "student PDFs: 1 written, 3 unchanged" in capsys.readouterr().out
    assert {p.name: p.read_bytes() for p in out.rglob("*.pdf")} == first  # the same .tex gives the same bytes
    _write_roster(roster, [("s1", "Ann"), ("s2", "Bo Ek")])
    assert main(["class", str(EXAMPLE), str(roster), "--out", str(out), "--pdf"]) == 0
    summary = capsys.readouterr().out
    assert "1 written, 1 unchanged" in summary and "student PDFs: 2 written, 2 unchanged" in summary
    assert (out / "students" / "s1.pdf").read_bytes() == first["s1.pdf"]
    assert "Bo Ek" in _pdf_text(out / "students" / "s2.pdf")


def test_footers_count_each_students_own_pages_in_one_run(tmp_path):
    # Three students with sheets of different lengths in one class document (one pdflatex run): every page of
    # each says "Page N of M" with M that student's own page count, in the class PDF and in the PDFs cut from it.
    example = load_assignment(EXAMPLE)
    problem_lists = (["matmul:shape=2x1"], ["matmul", "transpose", "dot_product"],
                     ["matmul", "transpose", "dot_product", "matmul_gradient", "matmul", "transpose", "dot_product"])
    sheets = [classset.student_sheet(replace(example, problems=tuple(map(ProblemSpec.parse, names)),
                                             points=(1,) * len(names)), Student(f"s{n}", f"Student {n}", 0, n), SECRET)
              for n, names in enumerate(problem_lists, start=1)]
    tex = tmp_path / "worksheets.tex"
    tex.write_text(classset.class_document(s.worksheet for s in sheets), encoding="utf-8")
    result = compile_class_documents([tex])[tex]
    counts = [last - first + 1 for first, last in result.students]
    assert len(set(counts)) == 3, counts
    targets = {tmp_path / f"s{n}.pdf": pages for n, pages in enumerate(result.students, start=1)}
    split_pages(result.pdf, targets)
    for (first, last), target in zip(result.students, targets):
        for pdf, pages in ((result.pdf, (first, last)), (target, (1, last - first + 1))):
            done = subprocess.run(["pdftotext", "-f", str(pages[0]), "-l", str(pages[1]), str(pdf), "-"],
                                  check=True, capture_output=True, text=True)
            assert done.stderr == ""  # every footer's objects are there (none unknown, none missing)
            footers = re.findall(r"Page \d+(?: of \d+)?", done.stdout)
            total = last - first + 1
            assert footers == [f"Page {n} of {total}" for n in range(1, total + 1)], (pdf.name, footers)
    # M sits on the footer's baseline, and the footer is centred on the page as typeset text is (N and M have as
    # many digits here; see page_total.tex.j2).
    boxes = subprocess.run(["pdftotext", "-bbox", str(result.pdf), "-"], check=True, capture_output=True,
                           text=True).stdout
    for page in boxes.split("<page ")[1:]:
        words = [(float(x0), float(y0), float(x1), float(y1), word) for x0, y0, x1, y1, word in
                 re.findall(r'xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)<', page)]
        if not words:
            continue  # the blank page before a student who starts on an odd page
        footer = [w for w in words if w[3] == max(w[3] for w in words)]  # the page's lowest line
        assert [w[4] for w in footer][0::2] == ["Page", "of"] and len(footer) == 4, footer
        assert len({(w[1], w[3]) for w in footer}) == 1, footer
        centre = (footer[0][0] + footer[-1][2]) / 2
        assert abs(centre - float(re.search(r'width="([\d.]+)"', page).group(1)) / 2) < 0.05, footer


def _read_qr(pdf: Path, folder: Path) -> str:
    """The one QR code on a PDF's first page, read with zxing-cpp from a 150 dpi grey image (about what a phone sees)."""
    zxingcpp = pytest.importorskip("zxingcpp")
    stem = folder / pdf.stem
    subprocess.run(["pdftoppm", "-r", "150", "-gray", "-f", "1", "-l", "1", str(pdf), str(stem)], check=True)
    raw = stem.with_name(f"{stem.name}-1.pgm").read_bytes()
    _magic, size, _depth, pixels = raw.split(b"\n", 3)
    width, height = map(int, size.split())
    found = zxingcpp.read_barcodes(np.frombuffer(pixels, dtype=np.uint8).reshape(height, width))
    assert len(found) == 1
    return found[0].text


def _variant_of_sheet(tmp_path: Path, seed: int, problems: list[str]) -> str:
    """The variant code `transformer-worksheets sheet` makes from a seed and the problems (as -p takes them)."""
    out = tmp_path / "try"
    assert main(["sheet", *[arg for p in problems for arg in ("-p", p)], "--seed", str(seed), "--name", "try",
                 "--sheet-dir", str(out), "--key-dir", str(out)]) == 0
    return json.loads((out / "try-key.json").read_text())["variant"]


def _class_with(tmp_path: Path, extra: str, rows: list[tuple[str, str]]) -> Path:
    """A class folder (with PDFs) for the example assignment plus `extra` lines."""
    assignment = tmp_path / "a.toml"
    assignment.write_text(EXAMPLE.read_text(encoding="utf-8").replace('calculator = "none"', f'calculator = "none"\n{extra}'),
                          encoding="utf-8")
    out = tmp_path / "out"
    assert main(["class", str(assignment), str(_write_roster(tmp_path / "roster.csv", rows)), "--out", str(out), "--pdf"]) == 0
    return out


@pytest.mark.parametrize("extra", ["", 'url = "https://worksheets.example.org/week3"'])
def test_nothing_printed_or_encoded_rebuilds_the_key(tmp_path, capsys, extra):
    # A student has their paper (its text and its QR code), the tool, the example assignment (its seed too) and
    # their id. Every whole number among them, and the open derivation from the assignment seed, given to
    # `transformer-worksheets sheet` with the class's problems, must not make the student's variant.
    out = _class_with(tmp_path, extra, [("1001", "Ann"), ("s2", "Bo")])
    problems = [spec_text(p) for p in load_assignment(EXAMPLE).problems]
    for student in ("1001", "s2"):
        key = json.loads((out / "students" / f"{student}-key.json").read_text())
        qr = _read_qr(out / "students" / f"{student}.pdf", tmp_path)
        printed = _pdf_text(out / "students" / f"{student}.pdf")
        if extra:
            code = re.search(r"Access code: (\S+)", printed).group(1)
            assert qr == f"https://worksheets.example.org/week3/s/{code}" and read_payload(qr).code == code
            assert "Online: https://worksheets.example.org/week3" in printed
        else:
            decoded = read_payload(qr)
            assert (decoded.assignment, decoded.student, decoded.variant) == ("week3", student, key["variant"])
            assert (decoded.seed, decoded.problems, decoded.link) == (None, (), "")
        assert key["variant"] in printed and str(key["seed"]) not in printed + qr
        numbers = {int(n) for n in re.findall(r"\d+", printed + "\n" + qr)}
        numbers |= {student_seed(2026, student), student_seed(2026, student, 1)}
        numbers |= {int(c.replace("-", ""), 36) & (2**63 - 1)  # the variant and access codes read as numbers
                    for c in re.findall(r"[0-9A-Z]{4}(?:-[0-9A-Z]{4})+", printed + qr)}
        assert len(numbers) >= 10
        assert all(_variant_of_sheet(tmp_path, n, problems) != key["variant"] for n in numbers)


def test_with_open_seeds_the_printed_qr_code_rebuilds_the_key(tmp_path, capsys):
    # The same steps as above with open_seeds = true: the QR code's seed rebuilds the student's sheet (so the test
    # above would see a key that can be rebuilt).
    out = _class_with(tmp_path, "open_seeds = true", [("s1", "Ann")])
    key = json.loads((out / "students" / "s1-key.json").read_text())
    decoded = read_payload(_read_qr(out / "students" / "s1-key.pdf", tmp_path))
    assert (decoded.student, decoded.seed, decoded.variant) == ("s1", key["seed"], key["variant"])
    assert _variant_of_sheet(tmp_path, decoded.seed, list(decoded.problems)) == key["variant"]
    assert f"Seed {key['seed']}" in _pdf_text(out / "students" / "s1.pdf", 1, 1)


def test_the_class_folder_keeps_the_secret_and_the_seeds_to_itself(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("generator.classes.classbuild.new_secret", new_secret)  # a real random secret
    out = _class_with(tmp_path, 'url = "https://worksheets.example.org/~t_a/50%25"', [("s1", "Ann"), ("s2", "Bo")])
    assert main(["fillin", "--class", str(out), "--out", str(out / "fill.csv")]) == 0
    path = out / SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    secret = bytes.fromhex(path.read_text())
    keys = {s: json.loads((out / "students" / f"{s}-key.json").read_text()) for s in ("s1", "s2")}
    seeds = {s: str(k["seed"]) for s, k in keys.items()}
    codes = {s: re.search(r"Access code: (\S+)", _pdf_text(out / "students" / f"{s}.pdf", 1, 1)).group(1) for s in keys}
    files = [p for p in out.rglob("*") if p.is_file() and p != path]
    assert {p.suffix for p in files} == {".tex", ".json", ".csv", ".pdf"}
    for file in files:
        data = file.read_bytes()
        text = _pdf_text(file) if file.suffix == ".pdf" else data.decode("utf-8").replace("-{}", "-")
        for form in (secret.hex(), secret.hex().upper()):
            assert form not in text and form.encode() not in data, file
        assert secret not in data, file
        for student, seed in seeds.items():
            # A seed is in the student's own JSON key only (the marker checks the variant code against it).
            assert (seed in text) == (file.name == f"{student}-key.json"), (file, student)
        for student, code in codes.items():
            # An access code is printed on the student's own sheet and key (and in the class's print files) only.
            own = file.stem.removesuffix("-key") == student or file.stem in ("worksheets", "keys")
            assert (code in text) == (own and file.suffix in (".tex", ".pdf")), (file, student)
    assert r"org/\textasciitilde{}t\_a/50\%25}" in (out / "students" / "s1.tex").read_text().replace(r"\allowbreak{}", "")
    assert "Online: https://worksheets.example.org/~t_a/50%25" in _pdf_text(out / "students" / "s1.pdf", 1, 1)


def test_a_tex_failure_is_reported_and_leaves_no_class_pdf(tmp_path, capsys, monkeypatch):
    roster = _write_roster(tmp_path / "roster.csv", [("s1", "Ann")])
    out = tmp_path / "out"
    original = classset.class_document
    monkeypatch.setattr("generator.classes.classbuild.class_document",
                        lambda docs: original(docs).replace(r"\end{document}", r"\nosuchmacro\end{document}"))
    assert main(["class", str(EXAMPLE), str(roster), "--out", str(out), "--pdf"]) == 1
    err = capsys.readouterr().err
    assert "TeX error" in err and "Undefined control sequence" in err
    assert not (out / "worksheets.pdf").exists() and not (out / "keys.pdf").exists()


def test_a_pdf_whose_tex_changed_is_removed_when_not_rebuilt(tmp_path, capsys):
    roster = _write_roster(tmp_path / "roster.csv", [("s1", "Ann"), ("s2", "Bo")])
    out = tmp_path / "out"
    assert main(["class", str(EXAMPLE), str(roster), "--out", str(out), "--pdf"]) == 0
    _write_roster(roster, [("s1", "Ann"), ("s2", "Bo Ek")])
    assert main(["class", str(EXAMPLE), str(roster), "--out", str(out)]) == 0  # no --pdf this time
    pdfs = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.pdf"))
    # s2's PDFs and the class PDFs (grading too: it names s2) no longer match their .tex: gone, never stale.
    assert pdfs == ["students/s1-key.pdf", "students/s1.pdf"]


def test_every_students_footer_counts_their_own_pages_and_pdfs_carry_their_properties(tmp_path, capsys):
    roster = _write_roster(tmp_path / "roster.csv", [("s1", "Ann O'Hara"), ("s2", "Bo")])
    out = tmp_path / "out"
    assert main(["class", str(EXAMPLE), str(roster), "--out", str(out), "--pdf"]) == 0
    for stem in ("s1", "s1-key", "s2", "s2-key"):
        pdf = out / "students" / f"{stem}.pdf"
        pages = _pdf_text(pdf).split("\f")[:-1]
        assert len(pages) == _pages(pdf) > 1
        # Each student's pages numbered from 1, with their own total (one pdflatex run, see page_total.tex.j2).
        assert all(f"Page {n} of {len(pages)}" in page for n, page in enumerate(pages, start=1)), stem
        info = subprocess.run(["pdfinfo", str(pdf)], check=True, capture_output=True, text=True).stdout
        subject = "Answer key" if stem.endswith("-key") else "Worksheet"
        assert re.search(r"^Title:\s+Week 3 quiz: matrix products$", info, re.M)
        assert re.search(rf"^Subject:\s+{subject}$", info, re.M)
        assert re.search(r"^Author:\s+Transformers by hand$", info, re.M)
    grading = out / "grading.pdf"
    pages = _pdf_text(grading).split("\f")[:-1]
    assert all(f"Page {n} of {len(pages)}" in page for n, page in enumerate(pages, start=1))
    text = _pdf_text(grading)
    assert "Ann O\u2019Hara" in text and "Problem 1 4 points, 1/2 per blank" in text and "/ 14" in text


def test_prompts_and_answer_rows_set_once_give_the_same_pages_and_keep_only_what_repeats(tmp_path):
    """\\memovbox copies a part's prompt and answer row once the class document has met it twice: the PDF must be
    byte for byte that of setting every one again, a prompt met at another size is not copied from the first, and a
    box is kept only for a content met twice or more, never for one met once (a Given box with a student's own
    numbers): TeX's memory ran out on a 50-student chunk of chained worksheets when every box was kept."""
    from collections import Counter

    example = load_assignment(EXAMPLE)
    specs = tuple(ProblemSpec.parse(name) for name in ("tiny_transformer", "matmul", "dot_product"))
    assignment = replace(example, problems=specs, points=(1,) * len(specs), calculator="basic")
    sheets = [classset.student_sheet(assignment, Student(f"s{n}", f"Student {n}", 0, n), SECRET) for n in range(1, 9)]
    text = classset.class_document(s.worksheet for s in sheets)
    uses = Counter(re.findall(r"\\memovbox\\part\w+\{(\w+)\}", text))
    repeated = sum(1 for count in uses.values() if count > 1)
    assert 0 < repeated < len(uses)  # some contents repeat, some do not
    plain = text.replace("\\begin{document}",
                         "\\renewcommand{\\memovbox}[3]{\\setbox#1=\\vbox{#3}}\n\\begin{document}", 1)
    # A prompt typeset at another size, twice: the memo must not hand it the normal-size box (and keeps one more).
    first = re.search(r"\\memovbox\\partprompt\{\w+\}\{.*?\n\}\n", text, re.DOTALL).group(0)
    small = ("{\\small " + first + "\\box\\partprompt\\par}\n") * 2
    text, plain = (t.replace("\\end{document}", small + "\\end{document}") for t in (text, plain))
    for name, document in (("memo", text), ("plain", plain)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "worksheets.tex").write_text(document, encoding="utf-8")
    compiled = compile_class_documents([tmp_path / name / "worksheets.tex" for name in ("memo", "plain")])
    assert compiled[tmp_path / "memo" / "worksheets.tex"].pdf.read_bytes() == \
        compiled[tmp_path / "plain" / "worksheets.tex"].pdf.read_bytes()
    # The log of the same document (compile_class_documents keeps none): the boxes the memo kept.
    done = subprocess.run(["pdflatex", "-interaction=batchmode", "-no-shell-escape", "worksheets.tex"],
                          cwd=tmp_path / "memo", capture_output=True, text=True)
    log = (tmp_path / "memo" / "worksheets.log").read_text(errors="replace")
    assert done.returncode == 0
    assert int(re.search(r"Memo boxes kept: (\d+)", log).group(1)) == repeated + 1


@pytest.mark.slow  # every option set of every type, a grading sheet each, through pdflatex
def test_the_grading_sheet_compiles_for_every_option_of_every_type(tmp_path):
    """The grading sheet prints every blank's label and answer (dW_{\\text{out}}, \\operatorname, …): its own
    preamble must know every macro they use. It lacked amsmath, and a class with training_step failed."""
    from generator.core.registry import problem_types

    example = replace(load_assignment(EXAMPLE), calculator="basic")
    documents = []
    for kind in problem_types().values():
        specs = tuple(ProblemSpec(kind.name, dict(options)) for options in kind.option_sets())
        assignment = replace(example, problems=specs, points=(1,) * len(specs))
        sheet = classset.student_sheet(assignment, Student("s1", "Student One", 0, 1), SECRET)
        tex = tmp_path / kind.name / "grading.tex"
        tex.parent.mkdir()
        tex.write_text(classset.grading_document(assignment, [sheet]), encoding="utf-8")
        documents.append((tex, sheet))
    compiled = compile_class_documents([tex for tex, _ in documents])  # raises TexError on the first failure
    for tex, sheet in documents:
        text = _flat(_pdf_text(compiled[tex].pdf))
        assert "StudentOne" in text and sheet.variant in text


def test_a_grading_block_taller_than_a_page_goes_on_over_the_page_and_a_short_one_stays_whole(tmp_path):
    """A student's grading block (name, then every blank with its answer and score box) stays on one page when it
    fits; one taller than a page (a training step's few hundred blanks) breaks between rows, loses no row, and each
    page it goes on to names the student in its header. A minipage ran such a block off the page's foot."""
    example = replace(load_assignment(EXAMPLE), calculator="basic")
    cases = {"long": (ProblemSpec("training_step"),), "short": example.problems}
    for name, specs in cases.items():
        assignment = replace(example, problems=specs, points=(1,) * len(specs))
        sheets = [classset.student_sheet(assignment, Student(f"s{n}", f"Student {n}", 0, n), SECRET)
                  for n in range(1, 5)]
        tex = tmp_path / name / "grading.tex"
        tex.parent.mkdir()
        source = classset.grading_document(assignment, sheets)
        tex.write_text(source, encoding="utf-8")
        pdf = compile_class_documents([tex])[tex].pdf
        pages = _pdf_text(pdf).split("\f")[:-1]
        labels = re.findall(r"(?m)^(\d+[a-z]+)\\enspace ", source.replace(" & ", "\n"))
        # Every blank's label is printed: none ran off a page.
        printed = [label for page in pages for label in re.findall(r"(?<![\w.])(\d+[a-z]+)\b", page)
                   if label[0] != "0"]
        assert sorted(printed) == sorted(labels), name
        for number, page in enumerate(pages, start=1):
            continued = re.search(r"Student (\d) ID s\d \(continued\)", page)
            if name == "short":
                assert continued is None, number
                continue
            # A page that starts inside a block names it; the student it names is the one whose rows it starts with.
            content = [line for line in page.splitlines() if line.strip() and not line.startswith("Grading sheet:")
                       and "Transformers by hand" not in line]
            inside = not content[0].startswith("Student ")  # the page starts with a row, not a student's name
            assert (continued is not None) == inside, (number, content[:3])
            if inside:  # the student named is the one whose block the previous page ended in
                assert pages[number - 2].rfind(f"Student {continued.group(1)} ID") >= 0
        if name == "short":  # each student's name and all of their blanks on one page
            for sheet in sheets:
                holding = [n for n, page in enumerate(pages) if sheet.variant in page]
                assert len(holding) == 1
        else:
            assert len(pages) > len(sheets)  # every block went on over a page
