"""How full each page of a PDF is: the body's lowest ink as a share of the body's height (header and footer left out)."""

import subprocess
import tempfile
from pathlib import Path

import numpy as np

# The page geometry of base.tex.j2, in millimetres from the top of an A4 page: 18 mm margins, header and footer
# included in them. The body runs from under the header rule to above the footer line.
PAGE_MM = 297.0
BODY_TOP_MM = 18.0 + 4.94 + 8.79  # margin, head height (14pt), head separation (25pt)
BODY_BOTTOM_MM = PAGE_MM - 18.0 - 10.54  # margin and foot skip (30pt)
DPI = 50


def page_images(pdf: Path) -> list[np.ndarray]:
    """Every page as a grey image, rows by columns, 0 black to 255 white."""
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run(["pdftoppm", "-gray", "-r", str(DPI), str(pdf), f"{folder}/p"], check=True)
        return [_read_pgm(path) for path in sorted(Path(folder).glob("p*.pgm"))]


def _read_pgm(path: Path) -> np.ndarray:
    """A binary PGM (P5) file as an array."""
    data = path.read_bytes()
    fields = data.split(maxsplit=4)
    width, height = int(fields[1]), int(fields[2])
    return np.frombuffer(fields[4][-width * height:], dtype=np.uint8).reshape(height, width)


def body_fill(image: np.ndarray) -> float:
    """The lowest ink in the body as a share of the body's height: 0 for an empty page, 1 for a full one."""
    per_mm = image.shape[0] / PAGE_MM
    top, bottom = round(BODY_TOP_MM * per_mm), round(BODY_BOTTOM_MM * per_mm)
    inked = np.flatnonzero((image[top:bottom] < 160).any(axis=1))
    return 0.0 if inked.size == 0 else (inked[-1] + 1) / (bottom - top)


def page_fills(pdf: Path) -> list[float]:
    """body_fill of every page."""
    return [body_fill(image) for image in page_images(pdf)]


if __name__ == "__main__":
    import sys
    for name in sys.argv[1:]:
        fills = page_fills(Path(name))
        print(f"{name}: {len(fills)} pages, mean {np.mean(fills):.0%}, "
              f"min before last {min(fills[:-1], default=1):.0%}: " + " ".join(f"{f:.0%}" for f in fills))


def natural_fills(log: str) -> list[float]:
    """Each page's content at its natural height (before spare room is shared out), as a share of the text height,
    from the lines layout.tex.j2 writes to the TeX log."""
    import re
    return [float(height) / float(text) for height, text in
            re.findall(r"^Natural height of page \d+: ([\d.]+)pt of ([\d.]+)pt", log, re.MULTILINE)]
