"""Every name as written (issue 16, item 1): a class whose roster holds a name in each script, TeX payloads, a
500-character name, combining marks, joiners and an emoji builds with PDFs in which pdftotext finds every name
exactly, on the student's sheet, key and the grading sheet; nothing in a name runs; a character no font has warns."""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from generator.classes.names import NAMES_TEX, names_document, pdflatex_prints
from generator.classes.roster import load_roster

from .test_classset import EXAMPLE

pytestmark = [pytest.mark.slow,  # builds a class with PDFs, LuaTeX names included (about 35 s)
              pytest.mark.skipif(shutil.which("luahbtex") is None or shutil.which("pdflatex") is None,
                                 reason="needs pdflatex and luahbtex (make tex)")]

AVOCADO = "\U0001F951"  # an emoji no font of Debian's Noto core, Noto CJK or DejaVu has
PAYLOAD = r"\input{/etc/passwd} ^^5c $ % \immediate\write18{touch pwned} \openout1=owned.tex"
LONG = ("Nguyễn Văn Ирина Петрова Γιώργος " * 20)[:499] + "x"

NAMES = {
    "vi": "Nguyễn Thị Minh Khai",
    "ro": "Ștefan Țurcanu-Șerban",  # comma below (U+0218, U+021A), not cedilla
    "el": "Γιώργος Παπαδόπουλος",
    "ru": "Ирина Петрова",
    "ar": "محمد علي",
    "he": "דוד כהן",
    "hi": "अक्षय क्षत्रिय",  # conjuncts: क्ष, त्र
    "zh": "王小明",
    "ja": "山田 はなこ",  # kanji and hiragana
    "tex": PAYLOAD,  # pdflatex's own path
    "texru": "Ирина " + PAYLOAD,  # the same payload through LuaLaTeX
    "long": LONG,
    "mark": "Jose\u0301 Garci\u0301a",  # e + U+0301, not é
    "zwj": "Ana\u200dMaria",
    "zwnj": "علی\u200cرضا",  # Persian: a zero-width non-joiner inside the name
    "emoji": f"Smile {AVOCADO} Face",
}


def _pdf_text(pdf: Path, first: int | None = None, last: int | None = None) -> str:
    pages = [*(["-f", str(first)] if first else []), *(["-l", str(last)] if last else [])]
    return subprocess.run(["pdftotext", *pages, str(pdf), "-"], check=True, capture_output=True, text=True).stdout


def _found(name: str, text: str) -> bool:
    """Whether pdftotext's text holds the name exactly. Normalized: only the marks pdftotext puts around
    right-to-left text (U+202B, U+202C; no name here has them), and line breaks: a long name wraps, and pdftotext
    ends the line where the space was (the 500-character name is compared without any whitespace)."""
    text = re.sub(r" ?\n", " ", text.replace("\u202b", "").replace("\u202c", ""))
    if name == LONG:
        return re.sub(r"\s+", "", name) in re.sub(r"\s+", "", text)
    return name in text


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    folder = tmp_path_factory.mktemp("names")
    roster = folder / "roster.csv"
    with roster.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["id", "name"])
        writer.writerows(NAMES.items())
    out = folder / "class"
    result = subprocess.run([sys.executable, "-m", "generator", "class", str(EXAMPLE), str(roster),
                             "--out", str(out), "--pdf"], capture_output=True, text=True, cwd=folder)
    assert result.returncode == 0, result.stderr
    return folder, out, result


def test_every_name_prints_as_written_on_sheet_key_and_grading_sheet(built):
    _, out, _ = built
    grading = _pdf_text(out / "grading.pdf")
    for student in load_roster(out.parent / "roster.csv"):
        name = NAMES[student.id]
        assert student.name == name
        for suffix in ("", "-key"):
            text = _pdf_text(out / "students" / f"{student.stem}{suffix}.pdf", 1, 1)
            assert _found(name, text), (student.id, suffix, ascii(text[:600]))
        assert _found(name, grading), (student.id, "grading")
    assert "root:x:0" not in grading


def test_only_names_pdflatex_cannot_print_exactly_go_to_lualatex(built):
    _, out, _ = built
    assert pdflatex_prints(NAMES["tex"]) and pdflatex_prints("Zoë Ångström") and pdflatex_prints("Łukasz Żółć")
    assert not any(pdflatex_prints(NAMES[k]) for k in NAMES if k != "tex")
    # Two pages a name (the sheets' size and the grading sheet's bold), one name per page.
    assert names_document([(s, n) for n in NAMES.values() for s in ("sheet", "grading")]).count == 2 * (len(NAMES) - 1)
    tex = (out / NAMES_TEX).read_text(encoding="ascii")  # names reach LuaLaTeX as \char"XXXX and hex strings only
    assert "passwd" not in tex and "write18" not in tex
    # Shaping: HarfBuzz told Devanagari's script (its conjuncts and vowel signs); Arabic and Hebrew right to left by
    # luaotfload's shaper with their scripts (HarfBuzz's glyphs come out reversed in \textdir TRT).
    assert "NotoSerifDevanagari-Regular.ttf]:mode=harf;script=dev2" in tex
    assert "NotoNaskhArabic-Regular.ttf]:mode=node;script=arab" in tex and "mode=node;script=hebr" in tex
    assert r"{\textdir TRT " in tex


def test_names_run_nothing_and_read_or_write_no_other_file(built, tmp_path):
    folder, out, _ = built
    assert not list(folder.rglob("pwned")) and not list(folder.rglob("owned.tex"))
    # Compiled again with -recorder: every file each engine opened, read or written.
    work = tmp_path / "class"
    shutil.copytree(out, work)
    for engine, document in (("luahbtex", "names.tex"), ("pdflatex", "worksheets.tex"), ("pdflatex", "grading.tex")):
        subprocess.run([engine, "-recorder", "-no-shell-escape", "-interaction=nonstopmode", "-halt-on-error", document],
                       cwd=work, check=True, capture_output=True)
        fls = (work / document).with_suffix(".fls").read_text()
        log = (work / document).with_suffix(".log").read_text(errors="replace")
        assert "/etc/passwd" not in fls and "passwd" not in log.replace(r"\input{/etc/passwd}", "")
        written = sorted({Path(line.split(" ", 1)[1]).name for line in fls.splitlines() if line.startswith("OUTPUT ")})
        stem = Path(document).stem
        # m_t_x_t_e_s_t.tmp: luaotfload's font cache checks that it can write (a file it removes again).
        expected = {f"{stem}.{ext}" for ext in ("pdf", "log", "aux", "fls", "dims", "pages")} | {"m_t_x_t_e_s_t.tmp"}
        assert set(written) <= expected, written
    assert not list(tmp_path.rglob("pwned")) and not list(tmp_path.rglob("owned.tex"))


def test_a_character_no_font_has_prints_its_code_point_and_warns(built):
    _, out, result = built
    warnings = [line for line in result.stderr.splitlines() if "U+" in line]
    assert len(warnings) == 1 and "U+1F951" in warnings[0] and "Smile" in warnings[0], result.stderr
    # Printed as its code point in a box (pdftotext reads the name; the glyphs are the box's "U+1F951").
    names = subprocess.run(["pdftotext", "-raw", str(out / "names.pdf"), "-"], capture_output=True, text=True).stdout
    assert f"Smile {AVOCADO} Face" in names


def test_only_rebuilds_a_student_whose_new_name_needs_luatex(tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text("id,name\ns1,Ann\ns2,Ирина Петрова\n", encoding="utf-8")
    command = [sys.executable, "-m", "generator", "class", str(EXAMPLE), str(roster), "--out", str(tmp_path / "c"), "--pdf"]
    subprocess.run(command, check=True, capture_output=True)
    roster.write_text("id,name\ns1,山田 はなこ\ns2,Ирина Петрова\n", encoding="utf-8")
    subprocess.run([*command, "--only", "s1"], check=True, capture_output=True)
    assert "Name: 山田 はなこ" in _pdf_text(tmp_path / "c" / "students" / "s1.pdf", 1, 1)
    assert "Name: Ирина Петрова" in _pdf_text(tmp_path / "c" / "students" / "s2.pdf", 1, 1)
