"""qr._laid_out_rows gives segno.make's modules, module for module, for every QR version a sheet may need."""

from __future__ import annotations

import random

import pytest
import segno

from generator.classes import qr

pytestmark = pytest.mark.skipif(segno.__version__ != qr._LAID_OUT_SEGNO,
                                reason="the laid-out path is used only with the segno release it was checked against")

_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -_./:\n'ÅÖéžЖ中😀"


def _texts() -> list[str]:
    rnd = random.Random(16)
    texts = [qr.payload("week3", f"s{i:05d}", f"ABCD-{i:04X}") for i in range(40)]
    texts += [qr.student_link("https://worksheets.example.org/" + "x" * i, f"{i:08x}") for i in range(0, 200, 7)]
    texts += ["".join(rnd.choice(_ALPHABET) for _ in range(rnd.randint(1, 400))) for _ in range(300)]
    texts += ["0123456789" * k for k in range(1, 30, 3)] + ["HELLO WORLD " * k for k in range(1, 20, 3)]
    return texts


def test_laid_out_rows_are_segnos_modules():
    versions = set()
    for text in _texts():
        code = segno.make(text, error=qr.ERROR_LEVEL, micro=False, boost_error=False, mask=qr.MASK)
        versions.add(code.version)
        assert [bytes(row) for row in qr._laid_out_rows(text)] == [bytes(row) for row in code.matrix], text
    assert versions >= set(range(1, 11))  # payloads and links of any length a class may give, and longer


def test_qr_code_modules_unchanged():
    text = qr.payload("week3", "s001", "ABCD-EFGH")
    code = segno.make(text, error=qr.ERROR_LEVEL, micro=False, boost_error=False, mask=qr.MASK)
    assert qr.matrix(text) == tuple(tuple(bool(m) for m in row) for row in code.matrix)
