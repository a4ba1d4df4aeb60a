"""Students' names in any script: set once by LuaTeX, placed into the pdflatex class documents as images.

pdflatex (T1, Latin Modern) prints Latin-1 and most of Latin Extended-A exactly; such a name stays on that fast
path. Every other name (Vietnamese, Greek, Cyrillic, Arabic, Hebrew, Devanagari, CJK, combining marks, joiners,
emoji ...) is set by one small plain-LuaTeX document (luaotfload), names.tex: one page per name and style, the page
cropped to the name's box. Each word is in the first font that has all of it (Latin Modern, then Noto Serif and
the Noto families of each script, from fontconfig's lists of what each font covers), shaped by HarfBuzz;
right-to-left runs (a simplified Unicode bidi algorithm) are set in \\textdir TRT by luaotfload's own shaper.
The name is one /ActualText span holding its characters in the order from which pdftotext reads the name back as
written (it reads right-to-left sections backwards; an empty left-to-right embedding ends such a section where
anything but a letter or number follows it). LuaTeX also writes names.dims: each name's page and depth, which the
pdflatex documents read to place the page on the baseline (\\pdfximage). A character no installed font has
prints as its code point in a box, and the build warns.

Names never reach TeX as source: names.tex holds every character as \\char"XXXX (ASCII hex), the ActualText as a
hex string, and the keys are hex digests; luahbtex runs with -no-shell-escape.
"""

from __future__ import annotations

import bisect
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from generator.core.problem import Tex
from generator.documents.pdf import REPRODUCIBLE, TexError, first_tex_error
from generator.documents.render import printable_in_tex

NAMES_TEX = "names.tex"
NAMES_PDF, NAMES_DIMS = "names.pdf", "names.dims"
# Plain LuaTeX with HarfBuzz (luahbtex; `luatex` has no HarfBuzz) and luaotfload: the document needs nothing of
# LaTeX, whose start-up would double the time.
LUATEX_FLAGS = ("-interaction=nonstopmode", "-halt-on-error", "-file-line-error", "-no-shell-escape")

# Characters pdflatex prints (T1, lmodern) that pdftotext does not give back as typed (measured: a character
# built from an accent and a letter comes back as two, or not at all; superscript digits as digits): their
# names go to LuaTeX. Every other character printable_in_tex allows comes back exactly.
_PDFLATEX_INEXACT = frozenset(
    "\xad²³¹ĀāĈĉĊċĐĒēĔĕĖėĜĝĠġĢģĤĥĦħĨĩĪīĬĭĮįĴĵĶķĸĻļĿŀŅņŉŌōŎŏŖŗŜŝŦŧŨũŪūŬŭŲųŴŵŶŷſ")


@dataclass(frozen=True)
class Style:
    """How a name prints in one kind of document: the size and weight of its text, and the widest it may be
    before LuaTeX breaks it into lines (the room the header and the grading sheet leave it on A4)."""

    size: str
    bold: bool
    max_width: str
    followed: bool  # other text follows the name on its line (pdftotext must not read it into the name)


STYLES = {
    "sheet": Style("10.95pt", False, "125mm", False),  # worksheet and key headers: article 11pt, "Name: " then the name
    "grading": Style("10pt", True, "95mm", True),  # grading sheet: 10pt bold, before the id, variant and total box
}


def pdflatex_prints(name: str) -> bool:
    """Whether pdflatex prints the name itself, exactly (pdftotext gives it back as written)."""
    return (unicodedata.is_normalized("NFC", name) and "  " not in name
            and all(ch == " " or (not ch.isspace() and printable_in_tex(ch) and ch not in _PDFLATEX_INEXACT
                                  and unicodedata.category(ch) != "Cf") for ch in name))


def name_key(style: str, name: str) -> str:
    """The name's label in names.dims: hex only, so it is safe in a control sequence name."""
    return hashlib.sha256(f"{style}\n{name}".encode("utf-8")).hexdigest()[:20]


def name_tex(name: str, style: str, fallback: Tex) -> Tex:
    """The name as the class documents print it: pdflatex's own text where that is exact, else the LuaTeX page
    (\\classname, see student_header.tex.j2), or `fallback` where names.dims lacks it (names.pdf not built)."""
    if pdflatex_prints(name):
        return fallback
    return Tex(rf"\classname{{{name_key(style, name)}}}{{{fallback}}}")


# ----- fonts ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Font:
    file: str
    index: int
    family: str
    bold: bool
    ranges: tuple[tuple[int, int], ...]  # covered code points, sorted (lo, hi) inclusive
    rank: int

    def covers(self, code: int) -> bool:
        i = bisect.bisect_right(self.ranges, (code, 0x110000)) - 1
        return i >= 0 and self.ranges[i][0] <= code <= self.ranges[i][1]

    def spec(self, script: str = "", rtl: bool = False) -> str:
        """luaotfload's font request: a path lookup (no font database needed), the subfont of a collection.

        Left-to-right text is shaped by HarfBuzz (Devanagari's conjuncts, Vietnamese's stacked marks). In
        \\textdir TRT HarfBuzz's glyphs come out reversed, so right-to-left runs use luaotfload's own shaper (node
        mode), which joins Arabic and places Hebrew marks, with the run's script. HarfBuzz gets the script of the
        scripts it shapes by their own rules (Devanagari's conjuncts and vowel signs), which it is not told else."""
        sub = f"({self.index})" if self.file.endswith((".ttc", ".otc")) else ""
        if rtl:
            return f"[{self.file}]{sub}:mode=node;script={script}"
        return f"[{self.file}]{sub}:mode=harf" + (f";script={script}" if script else "")


def _rank(family: str, file: str, cjk: str) -> int | None:
    """The order fonts are tried in: Latin Modern (the documents' font), Noto Serif and its script families, the
    CJK face for the name's language, then Noto Sans, any other Noto, anything else. None: not used."""
    if "/lm/lmroman10-" in file:
        return 0
    if not family.startswith("Noto") and "DejaVu" not in family:
        return None
    order = ["Noto Serif", "Noto Naskh Arabic", "Noto Serif Hebrew", "Noto Serif Devanagari", f"Noto Serif CJK {cjk}"]
    if family in order:
        return 1 + order.index(family)
    if family.startswith("Noto Serif CJK"):
        return 10
    if family.startswith("Noto Serif"):
        return 11
    if family == "Noto Sans":
        return 12
    if family.startswith("Noto Sans") and "Mono" not in family and "UI" not in family:
        return 13
    if family.startswith("Noto"):
        return 14
    return 20


@lru_cache(maxsize=None)
def _parse_ranges(text: str) -> tuple[tuple[int, int], ...]:
    ranges = []
    for part in text.split():
        lo, _, hi = part.partition("-")
        ranges.append((int(lo, 16), int(hi or lo, 16)))
    return tuple(sorted(ranges))


@lru_cache(maxsize=1)
def _font_list() -> tuple[tuple[str, int, str, int, int, int, str], ...]:
    """Every upright, normal-width font fontconfig knows: file, index, family, weight, and its characters (as
    fontconfig lists them: parsed for the faces font_chain keeps, a tenth of them, in a tenth of the time)."""
    if shutil.which("fc-list") is None:
        return ()
    out = subprocess.run(["fc-list", "--format", "%{file}|%{index}|%{family[0]}|%{weight}|%{slant}|%{width}|%{charset}\n"],
                         capture_output=True, text=True, check=False).stdout
    fonts = []
    for line in out.splitlines():
        parts = line.split("|")
        if len(parts) != 7:
            continue
        file, index, family, weight, slant, width, charset = parts
        if not (family.startswith(("Noto", "DejaVu")) or "/lm/lmroman10-" in file):
            continue  # never chosen (_rank): its characters need not be read
        try:
            if int(slant) != 0 or int(width) != 100 or not file.endswith((".ttf", ".otf", ".ttc", ".otc")):
                continue
            fonts.append((file, int(index), family, int(float(weight)), 0, 0, charset))
        except ValueError:
            continue
    return tuple(fonts)


@lru_cache(maxsize=8)
def font_chain(bold: bool, cjk: str) -> tuple[Font, ...]:
    """The fonts to try, in order; of each family the face of the wanted weight (bold: 200, regular: 80), or its
    regular face where it has no bold one."""
    best: dict[str, tuple[int, tuple]] = {}
    for file, index, family, weight, _, _, charset in _font_list():
        rank = _rank(family, file, cjk)
        if rank is None or weight not in (80, 200):
            continue
        if rank == 0 and not (file.endswith("lmroman10-bold.otf" if bold else "lmroman10-regular.otf")):
            continue
        miss = 0 if (weight == 200) == bold else 1
        entry = (miss, (file, index, family, weight == 200, charset, rank))
        if family not in best or entry[0] < best[family][0]:
            best[family] = entry
    fonts = [Font(file, index, family, bold, _parse_ranges(charset), rank)
             for _, (file, index, family, bold, charset, rank) in best.values()]
    return tuple(sorted(fonts, key=lambda f: (f.rank, f.family)))


def _cjk_face(name: str) -> str:
    """The CJK face whose glyph forms suit the name: Japanese with kana, Korean with Hangul, else Chinese."""
    if any(0x3040 <= ord(ch) <= 0x30FF for ch in name):
        return "JP"
    if any(0xAC00 <= ord(ch) <= 0xD7AF or 0x1100 <= ord(ch) <= 0x11FF for ch in name):
        return "KR"
    return "SC"


# ----- clusters and direction ----------------------------------------------------------------------------------

def _ignorable(ch: str) -> bool:
    """Characters that need no glyph (joiners, direction marks, variation selectors; control characters, which
    print nothing): HarfBuzz hides them, and the name's /ActualText keeps them."""
    code = ord(ch)
    return unicodedata.category(ch) in ("Cf", "Cc") or 0xFE00 <= code <= 0xFE0F or 0xE0100 <= code <= 0xE01EF


def _joins_previous(ch: str, previous: str) -> bool:
    code = ord(ch)
    return (unicodedata.category(ch) in ("Mn", "Mc", "Me") or _ignorable(ch) or previous == "\u200d"
            or 0x1F3FB <= code <= 0x1F3FF or 0xE0020 <= code <= 0xE007F)


def clusters(text: str) -> list[str]:
    """The text cut into character clusters: a base and the marks, joiners and selectors that follow it."""
    result: list[str] = []
    for ch in text:
        if result and not ch.isspace() and not result[-1].isspace() and _joins_previous(ch, result[-1][-1]):
            result[-1] += ch
        else:
            result.append(ch)
    return result


def _strong(ch: str) -> str:
    kind = unicodedata.bidirectional(ch)
    if kind in ("R", "AL"):
        return "R"
    if kind == "L":
        return "L"
    if kind in ("EN", "AN"):
        return "N"
    return ""


def levels(parts: list[str]) -> list[int]:
    """A left-to-right line's embedding level of each cluster (a simplified Unicode bidi algorithm): 0 left to right,
    1 a right-to-left run (Arabic, Hebrew), 2 numbers inside one. Neutrals (spaces, punctuation) between two
    right-to-left clusters join their run; elsewhere they stay left to right."""
    kinds = [next((k for k in map(_strong, part) if k), "") for part in parts]
    resolved: list[str] = []
    last = "L"
    for kind in kinds:
        if kind == "N":
            resolved.append("N" if last == "R" else "L")
        elif kind:
            resolved.append(kind)
            last = kind
        else:
            resolved.append("")
    result = []
    for i, kind in enumerate(resolved):
        if kind == "R":
            result.append(1)
        elif kind == "N":
            result.append(2)
        elif kind == "L":
            result.append(0)
        else:  # neutral: right to left only between right-to-left text (numbers in it count as such)
            before = next((k for k in reversed(resolved[:i]) if k), "L")
            after = next((k for k in resolved[i + 1:] if k), "L")
            result.append(1 if before in "RN" and after in "RN" and before and after else 0)
    return result


# ----- the LuaTeX document -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class NameSet:
    """names.tex, and each printed name's code points that no installed font has (for the build's warnings)."""

    tex: str
    missing: dict[str, tuple[int, ...]]
    count: int  # pages


# Explicit embeddings, overrides and isolates: the name prints in its own order whatever they say (an override
# cannot make a name read backwards), and they are left out of the /ActualText: to pdftotext, LRE and LRO are
# left-to-right characters and RLE and RLO right-to-left ones, which would change how it reads the name (the
# /ActualText's own LRE-PDF pairs are placed where they end a section, _SECTION_END).
_BIDI_CONTROLS = dict.fromkeys([*range(0x202A, 0x202F), *range(0x2066, 0x206A)])


def _utf16_hex(text: str) -> str:
    return "FEFF" + text.encode("utf-16-be").hex().upper()


# How pdftotext (poppler 22.12, TextOutputDev.cc's reorderText) reads a left-to-right line: a section of characters
# that are not right to left (its class "R") is read as it stands; from a right-to-left character on, the section
# up to the next left-to-right letter or number character (its "L" and "#": digits and + , - . / : # $ %) is read
# backwards. Its classes are those of its own table, from an older Unicode: Unicode's bidi classes, but for these.
_POPPLER_R = ((0x05C5, 0x05C5), (0x05C7, 0x05C7), (0x0600, 0x0603), (0x0616, 0x061A), (0x06DD, 0x06DD),
              (0x202B, 0x202B), (0x202E, 0x202E), (0xFD40, 0xFD4F), (0xFDCF, 0xFDCF))
_POPPLER_STOP = ((0x0606, 0x0608), (0x060B, 0x060B), (0x0659, 0x065F), (0x202A, 0x202A), (0x202D, 0x202D))
_POPPLER_NEUTRAL = ((0x070F, 0x070F), (0x07C0, 0x08FF), (0x202F, 0x202F))  # N'Ko, Samaritan, Mandaic, Arabic Extended
# Ends a right-to-left section where spaces or punctuation follow it ("(عمر) Said", "علي 3") or the name ends:
# pdftotext would read them (and what follows the name on its line) into the section, before the right-to-left
# word. An empty left-to-right embedding: LRE is a left-to-right character to poppler, and the pair changes
# nothing where the text is shown.
_SECTION_END = "\u202a\u202c"


def _poppler_kind(ch: str) -> str:
    """pdftotext's class of a character: "R" right to left, "S" ends a right-to-left section, "" neutral."""
    code = ord(ch)
    if code > 0xFFFF:
        return ""  # outside poppler's table
    for ranges, kind in ((_POPPLER_R, "R"), (_POPPLER_STOP, "S"), (_POPPLER_NEUTRAL, "")):
        if any(lo <= code <= hi for lo, hi in ranges):
            return kind
    kind = unicodedata.bidirectional(ch)
    return "R" if kind in ("R", "AL") else "S" if kind in ("L", "EN", "AN", "ES", "ET", "CS") else ""


def _extraction_order(text: str, followed: bool = True) -> list[int | None]:
    """The indices of the text's characters in the order the /ActualText holds them so that pdftotext, reading each
    right-to-left section backwards, gives the text back in its own order; None: _SECTION_END (not after a
    right-to-left letter that ends a line's text, where there is nothing to read into it: unless `followed`)."""
    kinds = [_poppler_kind(ch) for ch in text]
    order: list[int | None] = []
    i = 0
    while i < len(text):
        if kinds[i] != "R":
            order.append(i)
            i += 1
            continue
        # pdftotext's section: from here to the next "S"; it reverses it all, so its characters up to its last
        # right-to-left one are written backwards, then _SECTION_END, then the rest (spaces, punctuation) as they
        # stand. Only where a left-to-right or number character follows directly, it ends the section itself.
        end = next((j for j in range(i, len(text)) if kinds[j] == "S"), len(text))
        last = max(j for j in range(i, end) if kinds[j] == "R")
        order.extend(range(last, i - 1, -1))
        if last + 1 < end or (end == len(text) and followed):
            order.append(None)
        order.extend(range(last + 1, end))
        i = end
    return order


def extraction_text(text: str, followed: bool = True) -> str:
    """The /ActualText of a whole name (bidi controls left out, see _BIDI_CONTROLS) that pdftotext reads back as
    the name; `followed`: other text follows it on its line."""
    text = text.translate(_BIDI_CONTROLS)
    return "".join(_SECTION_END if i is None else text[i] for i in _extraction_order(text, followed))


_BREAKABLE = re.compile(r"[\u0020-\u058f\u1e00-\u1fff]")  # Latin, Greek, Cyrillic, Armenian: safe to break in a long word


def _cjk(ch: str) -> bool:
    code = ord(ch)
    return 0x2E80 <= code <= 0x9FFF or 0xF900 <= code <= 0xFAFF or 0x20000 <= code <= 0x3FFFF or 0xAC00 <= code <= 0xD7AF


def _rtl_script(chars: str) -> str:
    """The OpenType script tag of a right-to-left cluster (Arabic, Hebrew, Syriac, Thaana, N'Ko), else dflt."""
    code = ord(chars[0])
    for lo, hi, tag in ((0x0590, 0x05FF, "hebr"), (0xFB1D, 0xFB4F, "hebr"), (0x0600, 0x06FF, "arab"),
                        (0x0750, 0x077F, "arab"), (0x08A0, 0x08FF, "arab"), (0xFB50, 0xFDFF, "arab"),
                        (0xFE70, 0xFEFF, "arab"), (0x0700, 0x074F, "syrc"), (0x0780, 0x07BF, "thaa"),
                        (0x07C0, 0x07FF, "nko")):
        if lo <= code <= hi:
            return tag
    return "dflt"


# Scripts HarfBuzz shapes by their own rules (its Indic and Southeast Asian shapers): their OpenType tags.
_SHAPED_SCRIPTS = ((0x0900, 0x097F, "dev2"), (0x0980, 0x09FF, "bng2"), (0x0A00, 0x0A7F, "gur2"),
                   (0x0A80, 0x0AFF, "gjr2"), (0x0B00, 0x0B7F, "ory2"), (0x0B80, 0x0BFF, "tml2"),
                   (0x0C00, 0x0C7F, "tel2"), (0x0C80, 0x0CFF, "knd2"), (0x0D00, 0x0D7F, "mlm2"),
                   (0x0D80, 0x0DFF, "sinh"), (0x0E00, 0x0E7F, "thai"), (0x0E80, 0x0EFF, "lao "),
                   (0x0F00, 0x0FFF, "tibt"), (0x1000, 0x109F, "mym2"), (0x1780, 0x17FF, "khmr"),
                   (0xA8E0, 0xA8FF, "dev2"), (0x1CD0, 0x1CFF, "dev2"))


def _shaped_script(chars: str) -> str:
    """The OpenType script tag of a left-to-right cluster HarfBuzz must be told the script of, else ''."""
    code = ord(chars[0])
    for lo, hi, tag in _SHAPED_SCRIPTS:
        if lo <= code <= hi:
            return tag.strip()
    return ""


def _name_body(text: str, bold: bool, fonts: dict[tuple[Font, str, bool], str], missing: list[int], prefix: str,
               followed: bool = True) -> str:
    """The name as TeX: each character \\char"XXXX in the font chosen for its cluster, direction groups, breaks."""
    chain = font_chain(bold, _cjk_face(text))
    parts = clusters(" ".join(text.split()))
    out: list[str] = []
    depth = 0  # open direction groups
    current = None
    word = 0  # clusters since the last space
    out_last = " "
    # A word in one font where one font has all of it (Greek in Noto Serif, not its capitals in Latin Modern);
    # else each cluster in the first font that has it.
    choice: list[Font | None] = []
    start = 0
    for end in [i for i, part in enumerate(parts) if part == " "] + [len(parts)]:
        word_chars = [ch for part in parts[start:end] for ch in part if not _ignorable(ch)]
        whole = next((f for f in chain if all(f.covers(ord(ch)) for ch in word_chars)), None)
        for part in parts[start:end]:
            needed = [ch for ch in part if not _ignorable(ch)]
            choice.append(whole or next((f for f in chain if all(f.covers(ord(ch)) for ch in needed)), None))
        choice.append(None)  # the space
        start = end + 1
    part_levels = levels(parts)
    # The name is one /ActualText span, so that text extraction gives it back as written (marks, joiners, missing
    # characters too), in the order extraction_text gives: pdftotext reads right-to-left sections backwards. One
    # span, not one a run: pdftotext puts a space between spans, and a run may end inside a word ("(عمر)").
    if parts:
        out.append(rf"\bdc{{{_utf16_hex(extraction_text(''.join(parts), followed))}}}")
    for i, (part, level, font) in enumerate(zip(parts, part_levels, choice)):
        while depth > level:
            out.append("}")
            depth -= 1
            current = None
        while depth < level:
            out.append(r"{\textdir TRT " if depth == 0 else r"{\textdir TLT ")
            depth += 1
            current = None
        if part == " ":
            out.append(r"\ ")
            word = 0
            continue
        word += 1
        if word > 1 and ((_cjk(part[0]) and _cjk(out_last[0])) or (word > 16 and word % 4 == 1 and level == 0
                                                                     and _BREAKABLE.match(part[0]) and _BREAKABLE.match(out_last[0]))):
            out.append(r"\penalty50\relax " if not _cjk(part[0]) else r"\penalty0\relax ")
        out_last = part
        needed = [ch for ch in part if not _ignorable(ch)]
        pieces = [(font, part)] if font is not None or not needed else []
        if font is None and needed:  # no font has the whole cluster: each character from the first that has it
            for ch in part:
                pieces.append((next((f for f in chain if f.covers(ord(ch))), None), ch))
        for piece_font, chars in pieces:
            if piece_font is None and not all(_ignorable(ch) for ch in chars):
                for ch in chars:
                    if not _ignorable(ch):
                        missing.append(ord(ch))
                        out.append(rf"\missingcp{{{ord(ch):04X}}}")
                current = None
                continue
            request = (piece_font, *((_rtl_script(chars), True) if level == 1 else (_shaped_script(chars), False)))
            if piece_font is not None and request != current:
                if request not in fonts:
                    fonts[request] = f"\\namefont{prefix}{_letters(len(fonts))}"
                out.append(fonts[request] + " ")
                current = request
            # A joiner or selector the font has goes to the shaper (ZWJ and ZWNJ shape Devanagari and Arabic); one it
            # lacks would print as a gap, and is left out (the /ActualText keeps it).
            out.extend(f'\\char"{ord(ch):X}\\relax ' for ch in chars
                       if not _ignorable(ch) or (piece_font is not None and piece_font.covers(ord(ch))
                                                 and unicodedata.category(ch) != "Cc"))
    out.append("}" * depth)
    if parts:
        out.append(r"\emc ")
    return "".join(out)


def _letters(n: int) -> str:
    """A control sequence suffix from a number: a, b, ..., z, ba, bb, ..."""
    digits = ""
    while True:
        digits = chr(ord("a") + n % 26) + digits
        n //= 26
        if n == 0:
            return digits


def names_document(names: list[tuple[str, str]]) -> NameSet:
    """names.tex for (style, name as printed) pairs (in order; repeats set once), and what no font has."""
    seen: dict[str, tuple[str, str]] = {}
    for style, name in names:
        if not pdflatex_prints(name):
            seen.setdefault(name_key(style, name), (style, name))
    font_lines: list[str] = []
    bodies: list[str] = []
    missing: dict[str, tuple[int, ...]] = {}
    per_style: dict[str, dict[tuple[Font, str, bool], str]] = {style: {} for style in STYLES}
    for key, (style, name) in seen.items():
        spec = STYLES[style]
        lost: list[int] = []
        used = per_style[style]
        body = _name_body(name, spec.bold, used, lost, style[0], spec.followed)
        if lost:
            missing[name] = tuple(dict.fromkeys(missing.get(name, ()) + tuple(lost)))
        rtl = next((k for k in map(_strong, name) if k in "RL"), "L") == "R"
        bodies.append(rf"\setname{{{key}}}{{{style}}}{{{_utf16_hex(name)}}}{{{'TRT' if rtl else 'TLT'}}}{{{body}}}")
    for style, used in per_style.items():
        for (font, script, rtl), command in used.items():
            # Noto Serif's Greek and Cyrillic beside Latin Modern: a little smaller, its x-height being larger.
            scale = 0.9 if font.family in ("Noto Serif", "Noto Sans") else 1.0
            size = float(STYLES[style].size.removesuffix("pt")) * scale
            font_lines.append(rf"\font{command}={{{font.spec(script, rtl)}}} at {size:.3f}pt")
    tex = _DOCUMENT.replace("%FONTS%", "\n".join(font_lines)).replace("%NAMES%", "\n".join(bodies))
    for style, spec in STYLES.items():
        tex = tex.replace(f"%{style.upper()}%", f"{{{spec.size}}}{{{spec.max_width}}}{{{'b' if spec.bold else 'r'}}}")
    return NameSet(tex, missing, len(seen))


# One page per name: the name's box (a single line, or lines of at most the style's width with the first line's
# height above the baseline) shipped on a page of its own size; names.dims gets \classnamedef{key}{page}{depth}.
# The ActualText span (BDC ... EMC) makes text extraction give the name as written, whatever the glyphs.
_DOCUMENT = r"""\outputmode=1
\input luaotfload.sty
\pdfvariable compresslevel=9
\pdfvariable objcompresslevel=2
\pdfvariable suppressoptionalinfo 1023
\pdfvariable trailerid {}
\hoffset=-1in \voffset=-1in
\parindent=0pt \parskip=0pt
%FONTS%
\font\namemono={[lmmono10-regular.otf]:mode=harf} at 6pt
% Each name's runs carry their own /ActualText (the name as written); HarfBuzz's spans for its clusters would
% nest inside them, and pdftotext loses the text before a nested span: they are not inserted.
\directlua{
  for _, hook in ipairs({{"post_linebreak_filter", "luaotfload.harf.finalize_vlist"},
                         {"hpack_filter", "luaotfload.harf.finalize_hlist"}}) do
    if luatexbase.in_callback(hook[1], hook[2]) then luatexbase.remove_from_callback(hook[1], hook[2]) end
  end}
\newcount\namepage
\newwrite\namedims
\immediate\openout\namedims=\jobname.dims
\def\missingcp#1{\hbox dir TLT{\vrule width0.4pt\vbox{\hrule height0.4pt\kern0.8pt\hbox{\kern0.8pt\namemono U+#1\kern0.8pt}\kern0.8pt\hrule height0.4pt}\vrule width0.4pt}}
\def\bdc#1{\pdfextension literal page{/Span <</ActualText <#1>>> BDC}}
\def\emc{\pdfextension literal page{EMC}}
\def\stylesheet{\namestyle%SHEET%}
\def\stylegrading{\namestyle%GRADING%}
\def\namestyle#1#2#3{\def\namesize{#1}\def\namewidth{#2}}
\def\setname#1#2#3#4#5{%
  \csname style#2\endcsname
  \setbox0=\hbox{#5}%
  \ifdim\wd0>\namewidth\relax
    \setbox0=\vtop{\hsize=\namewidth\relax \pardir #4 \textdir #4
      \baselineskip=1.25\dimexpr\namesize\relax \lineskip=1pt \lineskiplimit=0pt
      \leftskip=0pt \rightskip=0pt plus 1fil \parfillskip=0pt plus 1fil \emergencystretch=\hsize
      \hyphenpenalty=10000 \pretolerance=-1 \tolerance=9999
      \noindent#5\par}%
  \fi
  \ifdim\wd0<1pt \wd0=1pt \fi % a name of joiners alone: still a page to place
  \pagewidth=\wd0 \pageheight=\dimexpr\ht0+\dp0\relax
  \global\advance\namepage by 1
  \immediate\write\namedims{\string\classnamedef{#1}{\the\namepage}{\the\dp0}}%
  \shipout\vbox{\box0}}
%NAMES%
\immediate\closeout\namedims
\end
"""


class NamesRun:
    """LuaTeX setting a names document, started in the background in a folder of its own (the class's sheets are
    generated and its other files written meanwhile); finish() waits and puts names.pdf and names.dims into `out`
    (replaced together; on an error neither). `tex`: the document's text; without it, out/names.tex."""

    def __init__(self, out: Path, tex: str | None = None):
        if shutil.which("luahbtex") is None:
            raise TexError("luahbtex is not installed; run `make` (or apt-get install texlive-luatex fontconfig "
                           "fonts-noto-core fonts-noto-cjk)")
        self.out = out
        self.build = Path(tempfile.mkdtemp(prefix="class-names-"))
        source = out
        if tex is not None:  # the document is not in `out` yet: nothing is written there before finish()
            (self.build / NAMES_TEX).write_text(tex, encoding="utf-8")
            source = self.build
        self.process = subprocess.Popen(["luahbtex", *LUATEX_FLAGS, f"-output-directory={self.build}", NAMES_TEX],
                                        cwd=source, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, env={**os.environ, **REPRODUCIBLE})

    def finish(self) -> None:
        try:
            returncode = self.process.wait()
            built, dims = self.build / NAMES_PDF, self.build / NAMES_DIMS
            if returncode != 0 or not built.exists() or not dims.exists():
                log = self.build / "names.log"
                for name in (NAMES_PDF, NAMES_DIMS):
                    (self.out / name).unlink(missing_ok=True)
                raise TexError(first_tex_error(log.read_text(errors="replace") if log.exists() else "",
                                               self.out / NAMES_TEX))
            for source, target in ((dims, self.out / NAMES_DIMS), (built, self.out / NAMES_PDF)):
                partial = target.with_name(f".{target.name}.part")
                shutil.copyfile(source, partial)
                os.replace(partial, target)
        finally:
            self.cancel()

    def cancel(self) -> None:
        """Stop the run if it still runs (the build failed elsewhere) and remove its folder."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.build, ignore_errors=True)


def compile_names(out: Path) -> None:
    """LuaTeX on out/names.tex, waited for: names.pdf and names.dims beside it."""
    NamesRun(out).finish()
