"""Names mixing right-to-left and left-to-right text come back from pdftotext as written: a model of pdftotext's
reading of a left-to-right line (poppler's reorderText), the /ActualText arrangement against it, and a real class."""

from __future__ import annotations

import csv
import random
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from generator.classes.names import _poppler_kind, extraction_text
from generator.cli import main
from generator.documents.render import typographic_quotes

from .test_classset import EXAMPLE

# Names the old arrangement (each right-to-left run reversed as a whole) read back wrongly, and the rest of a class.
MIXED = ["Ali علي 3", "Dana כהן-לוי", "محمد بن سلمان", "José ישראל Núñez", "(عمر) Said", "Noa בת-אל 2",
         "O'Brien אבי", "سارة 12 أحمد", "Ирина עמית", "فاطمة الزهراء", "דוד לוי", "Nguyễn Văn An",
         "अनन्या शर्मा", "山田 太郎", "Amira حداد", "محمد Smith", "שלום مرحبا", "עמית (Amit) Levi",
         "Omar «عمر» 2nd", "سلمى، Ana", "علي ١٢٣ Khan", "שָׁלוֹם Levi-Cohen", "Lea ד'אור", "Sam (אבי-גיל), 3"]


def _controls_removed(text: str) -> str:
    return re.sub("[\u202a-\u202e\u2066-\u2069]", "", text)


def _poppler_reads(line: str) -> str:
    """pdftotext's text of a left-to-right line (reorderText with primaryLR): sections of characters not right to
    left as they stand; from a right-to-left character to the next left-to-right or number one, backwards, between
    U+202B and U+202C."""
    kinds = [_poppler_kind(ch) for ch in line]
    out, i = [], 0
    while i < len(line):
        j = next((k for k in range(i, len(line)) if kinds[k] == "R"), len(line))
        out.append(line[i:j])
        k = next((k for k in range(j, len(line)) if kinds[k] == "S"), len(line))
        if k > j:
            out.append("\u202b" + line[j:k][::-1] + "\u202c")
        i = k
    return "".join(out)


def test_the_model_reads_as_pdftotext_did_with_each_run_reversed():
    # Measured with pdftotext 22.12 on the old /ActualText (right-to-left runs reversed whole; a space where
    # pdftotext saw a gap between spans): the model gives the same text.
    assert _poppler_reads("Name: Ali " + " " + "3 يلع") == "Name: Ali  3 \u202bعلي\u202c"
    assert _poppler_reads("Name: Dana " + " " + "יול-ןהכ") == "Name: Dana  \u202bלוי\u202c-\u202bכהן\u202c"


@pytest.mark.parametrize("name", MIXED)
def test_pdftotext_reads_each_name_back_in_its_own_order(name):
    text = extraction_text(name)
    # Nothing but the name's characters, and empty left-to-right embeddings that end a right-to-left section.
    assert sorted(_controls_removed(text)) == sorted(name) and text.count("\u202a") == text.count("\u202c")
    assert _controls_removed(_poppler_reads(f"Name: {text} ID m01")) == f"Name: {name} ID m01"


def test_any_mix_of_scripts_digits_and_punctuation_reads_back():
    pool = ["علي", "أحمد", "שלום", "כהן", "Ana", "José", "Ирина", "3", "12", "١٢", "-", "'", "’", "(", ")", "«",
            "»", ".", ",", "،", " ", "  ", "\u05b8", "\u064e", "\u200c", "/", "!", "😀", "山田"]
    rng = random.Random(5)
    for _ in range(3000):
        name = "".join(rng.choice(pool) for _ in range(rng.randint(1, 8)))
        text = extraction_text(name)
        assert _controls_removed(_poppler_reads(f"Name: {text} ID")) == f"Name: {name} ID", (name, text)


def test_the_controls_of_a_name_are_left_out():
    assert extraction_text("\u202eAli\u202c علي") == "Ali يلع\u202a\u202c"


@pytest.mark.skipif(shutil.which("luahbtex") is None or shutil.which("pdflatex") is None,
                    reason="needs pdflatex and luahbtex (make tex)")
def test_a_class_of_mixed_names_gives_each_name_back_on_sheet_key_and_grading_sheet(tmp_path):
    roster = tmp_path / "roster.csv"
    with roster.open("w", newline="", encoding="utf-8") as file:
        csv.writer(file).writerows([("id", "name"), *((f"m{i:02d}", name) for i, name in enumerate(MIXED))])
    out = tmp_path / "out"
    assert main(["class", str(EXAMPLE), str(roster), "--out", str(out), "--pdf"]) == 0

    def words(pdf: Path, *pages: str) -> str:
        text = subprocess.run(["pdftotext", *pages, str(pdf), "-"], check=True, capture_output=True, text=True).stdout
        return " " + " ".join(_controls_removed(text).split()) + " "

    grading = words(out / "grading.pdf")
    for i, name in enumerate(MIXED):
        printed = f" {typographic_quotes(name)} "  # as its own words: nothing of the next text read into it
        for suffix in ("", "-key"):
            assert printed in words(out / "students" / f"m{i:02d}{suffix}.pdf", "-f", "1", "-l", "1"), (name, suffix)
        assert printed in grading, name


@pytest.mark.parametrize("name", ["שלום مرحبا", "محمد علي", "דוד כהן", "Amira حداد", "(عمر)", "Ali علي 3"])
def test_a_name_that_ends_its_line_reads_back_with_only_pdftotexts_own_controls(name):
    """On the worksheet and key nothing follows "Name: …" on its line: no embedding is added after a final
    right-to-left letter, so removing pdftotext's own U+202B/U+202C gives the line exactly (the common case of a name
    in one right-to-left script); a section that neutrals or digits end still needs its own."""
    text = extraction_text(name, followed=False)
    read = _poppler_reads(f"Name: {text}").replace("\u202b", "").replace("\u202c", "")
    if name[-1] not in ")3":
        assert "\u202a" not in text and read == f"Name: {name}"
    assert _controls_removed(read) == f"Name: {name}"
