"""Remake docs/images/example1-sheet-and-key.png: page 1 of a worksheet and of its key, side by side.

Needs pdftoppm (poppler-utils, which `make` installs) and the standard library only; not part of the build.

    make worksheets/example1.pdf answer_keys/example1-key.pdf
    .venv/bin/python docs/images/preview.py worksheets/example1.pdf answer_keys/example1-key.pdf \
        docs/images/example1-sheet-and-key.png
"""

from __future__ import annotations

import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

GAP = 12  # grey pixels between the two pages
GAP_RGB = b"\xc8\xc8\xc8"


def page_one(pdf: Path, folder: Path) -> Path:
    """Page 1 of a PDF as a 60 dpi PNG (pdftoppm -r 60 -png)."""
    stem = folder / pdf.stem
    subprocess.run(["pdftoppm", "-r", "60", "-png", "-f", "1", "-l", "1", "-singlefile", str(pdf), str(stem)], check=True)
    return stem.with_suffix(".png")


def read_png(path: Path) -> tuple[int, int, list[bytes]]:
    """Width, height and RGB rows of an 8-bit RGB, non-interlaced PNG (what pdftoppm writes)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    pos, idat, header = 8, b"", None
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = header
    if (depth, colour, interlace) != (8, 2, 0):
        sys.exit(f"{path}: expected 8-bit RGB, non-interlaced")
    raw, stride, rows, previous = zlib.decompress(idat), 3 * width, [], bytearray(3 * width)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            left = line[x - 3] if x >= 3 else 0
            up, corner = previous[x], previous[x - 3] if x >= 3 else 0
            if kind == 1:
                line[x] = (line[x] + left) & 255
            elif kind == 2:
                line[x] = (line[x] + up) & 255
            elif kind == 3:
                line[x] = (line[x] + (left + up) // 2) & 255
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[x] = (line[x] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 255
        rows.append(bytes(line))
        previous = line
    return width, height, rows


def write_png(path: Path, width: int, height: int, rows: list[bytes]) -> None:
    """An 8-bit RGB PNG, each row filtered 'up' (small for pages of text)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    raw, previous = bytearray(), bytes(3 * width)
    for row in rows:
        raw += b"\x02" + bytes((a - b) & 255 for a, b in zip(row, previous))
        previous = row
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(bytes(raw), 9)) + chunk(b"IEND", b""))


def main(sheet: str, key: str, out: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        (w1, h1, left), (w2, h2, right) = (read_png(page_one(Path(p), Path(tmp))) for p in (sheet, key))
    height = max(h1, h2)
    white1, white2 = b"\xff" * 3 * w1, b"\xff" * 3 * w2
    rows = [(left[y] if y < h1 else white1) + GAP_RGB * GAP + (right[y] if y < h2 else white2) for y in range(height)]
    write_png(Path(out), w1 + GAP + w2, height, rows)


if __name__ == "__main__":
    main(*sys.argv[1:4])
