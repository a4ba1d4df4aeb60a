"""PDFs made of another PDF's pages (a student's pages cut from a chunk, chunks joined into a class PDF), written
from the bytes pikepdf serializes each object into once: a chunk's fonts are shared by its fifty students' PDFs.

pikepdf copying the pages into a new Pdf and saving it took 2 ms a student PDF, most of it re-serializing the same
fonts (170 KB of a 200 KB file) for each student and hashing the whole file for its /ID; a class set cuts 600. Here
qpdf (through pikepdf) still parses and serializes every object; what is written is those bytes, renumbered, framed
as objects, with a cross-reference table: the file layout of the PDF standard (ISO 32000-1, 7.5), nothing more."""

from __future__ import annotations

import hashlib
import os
import re
from contextlib import ExitStack
from pathlib import Path
from typing import NamedTuple

import pikepdf

# A reference "N G R" in an unparsed object, or a string (skipped: qpdf escapes the parentheses inside a literal
# string, so `(...)` ends at the first unescaped one; a hex string has only hex digits and spaces). Strings are
# rare outside the document information: an object without one is searched for references alone, faster.
_TOKEN = re.compile(rb"\((?:[^\\()]|\\.)*\)|<[0-9A-Fa-f\s]*>|(\d+) (\d+) R", re.DOTALL)
_REFERENCE = re.compile(rb"(\d+) (\d+) R")
_STRING_START = re.compile(rb"\(|(?<!<)<(?!<)")


class _Piece(NamedTuple):
    """An object's serialization with its references cut out: segments[0] ref[0] segments[1] ... segments[-1]."""

    segments: list[bytes]
    refs: list[tuple[int, int]]
    stream: bytes | None  # the raw (still encoded) data of a stream
    digest: bytes  # of the stream's data: the files' /ID hash this, not the data again


def _piece(head: bytes, stream: bytes | None = None) -> _Piece:
    digest = hashlib.md5(stream).digest() if stream is not None else b""
    if b" R" not in head:
        return _Piece([head], [], stream, digest)
    if not _STRING_START.search(head):  # references alone: cut by re.split, three parts a reference
        parts = _REFERENCE.split(head)
        return _Piece(parts[0::3], list(zip(map(int, parts[1::3]), map(int, parts[2::3]))), stream, digest)
    segments, refs, start = [], [], 0
    for token in _TOKEN.finditer(head):
        if token.group(1) is not None:
            segments.append(head[start:token.start()])
            refs.append((int(token.group(1)), int(token.group(2))))
            start = token.end()
    segments.append(head[start:])
    return _Piece(segments, refs, stream, digest)


class _Source:
    """An open PDF whose objects are serialized as they are first needed, once."""

    def __init__(self, pdf: pikepdf.Pdf) -> None:
        self.pdf = pdf
        self.pages = [page.obj.objgen for page in pdf.pages]
        self._page_set = set(self.pages)
        self._tree = {*self.pages, *(node.objgen for page in pdf.pages for node in _parents(page.obj))}
        self._pieces: dict[tuple[int, int], _Piece] = {}

    def piece(self, key: tuple[int, int]) -> _Piece:
        if key not in self._pieces:
            self._pieces[key] = self._serialize(key)
        return self._pieces[key]

    def _serialize(self, key: tuple[int, int]) -> _Piece:
        obj = self.pdf.get_object(key)
        if key in self._page_set:
            # Without /Parent: the new file has a page tree of its own. What a page inherits from its old tree
            # (resources, media box) pikepdf.open has already copied onto the page.
            entries = {name: value for name, value in obj.items() if name != "/Parent"}
            return _piece(pikepdf.Dictionary(entries).unparse(resolved=True))
        if isinstance(obj, pikepdf.Stream):
            raw = obj.read_raw_bytes()
            if int(obj.stream_dict.get("/Length", -1)) == len(raw):  # as pdfTeX writes it: kept as it is
                return _piece(obj.stream_dict.unparse(resolved=True), raw)
            entries = dict(obj.stream_dict.items())
            entries["/Length"] = len(raw)
            return _piece(pikepdf.Dictionary(entries).unparse(resolved=True), raw)
        return _piece(obj.unparse(resolved=True))

    def closure(self, pages: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """The objects these pages need (their contents, resources, fonts, ...), in the source's order."""
        wanted = set(pages)
        seen: set[tuple[int, int]] = set()
        stack = list(pages)
        while stack:
            key = stack.pop()
            if key in seen:
                continue
            if key in self._tree and key not in wanted:
                # A link to another page (or to the page tree) would bring in pages that are not the student's.
                raise ValueError(f"object {key[0]} {key[1]} R refers to a page outside the pages cut")
            seen.add(key)
            stack.extend(self.piece(key).refs)
        return sorted(seen)


def _parents(page: pikepdf.Object) -> list[pikepdf.Object]:
    parents, node = [], page.get("/Parent")
    while node is not None and len(parents) < 64:  # a malformed tree with a loop ends too
        parents.append(node)
        node = node.get("/Parent")
    return parents


class _Writer:
    """A PDF file assembled in memory: objects numbered 1, 2, ... as they are added, then the xref and trailer."""

    def __init__(self, version: str) -> None:
        self.parts = [f"%PDF-{version}\n".encode("ascii") + b"%\xe2\xe3\xcf\xd3\n"]
        self.size = len(self.parts[0])
        self.offsets: list[int] = []
        self.ident = hashlib.md5()

    def add(self, segments: list[bytes] | tuple[bytes, ...], numbers: list[int], stream: bytes | None = None,
            digest: bytes = b"") -> int:
        number = len(self.offsets) + 1
        head = [b"%d 0 obj\n" % number, segments[0]]
        for ref, segment in zip(numbers, segments[1:]):
            head += [b"%d 0 R" % ref, segment]
        head.append(b"\nstream\n" if stream is not None else b"\nendobj\n")
        text = b"".join(head)
        self.ident.update(text + digest)
        self.offsets.append(self.size)
        self.parts.append(text)
        self.size += len(text)
        if stream is not None:
            self.parts += [stream, b"\nendstream\nendobj\n"]
            self.size += len(stream) + 18
        return number

    def next_number(self, ahead: int = 0) -> int:
        return len(self.offsets) + 1 + ahead

    def finish(self, root: int, info: int | None) -> bytes:
        """The file: a content-derived /ID (the same objects give the same bytes) and no timestamps of its own."""
        ident = self.ident.hexdigest().encode("ascii")
        count = len(self.offsets) + 1
        xref = [b"xref\n0 %d\n0000000000 65535 f \n" % count, *(b"%010d 00000 n \n" % at for at in self.offsets)]
        info_entry = b" /Info %d 0 R" % info if info is not None else b""
        trailer = (b"trailer\n<< /Size %d /Root %d 0 R%s /ID [ <%s> <%s> ] >>\nstartxref\n%d\n%%%%EOF\n"
                   % (count, root, info_entry, ident, ident, self.size))
        return b"".join([*self.parts, *xref, trailer])


def _copy_pages(writer: _Writer, source: _Source, pages: list[tuple[int, int]], keys: list[tuple[int, int]],
                parent: int) -> list[int]:
    """Add the pages' objects `keys` (their closure) to the writer, the pages pointing to `parent`; the pages' new
    numbers, in order."""
    first = writer.next_number()
    number = {key: first + index for index, key in enumerate(keys)}
    page_set = set(pages)
    for key in keys:
        piece = source.piece(key)
        segments = piece.segments
        if key in page_set:  # the page dictionary ends ">>": its parent goes in before it
            segments = (*segments[:-1], segments[-1][:-2] + b"/Parent %d 0 R >>" % parent)
        writer.add(segments, [number[ref] for ref in piece.refs], piece.stream, piece.digest)
    return [number[key] for key in pages]


def _info(writer: _Writer, source: _Source) -> int | None:
    """The source's document information (title, subject, author, dates) as an object of the writer's."""
    info = source.pdf.trailer.get("/Info")
    if info is None:
        return None
    piece = _piece(pikepdf.Dictionary(dict(info.items())).unparse(resolved=True))
    if piece.refs:  # an indirect value inside (pdfTeX writes none): copied by pikepdf's own writer's rules
        raise ValueError("the document information has indirect values")
    return writer.add(piece.segments, [])


def _pages_and_catalog(writer: _Writer, pages_number: int, kids: list[int]) -> int:
    listed = b" ".join(b"%d 0 R" % kid for kid in kids)
    if writer.add((b"<< /Count %d /Kids [ %s ] /Type /Pages >>" % (len(kids), listed),), []) != pages_number:
        raise RuntimeError("the page tree's number was counted wrong")  # the pages' /Parent would be another object
    return writer.add((b"<< /Pages %d 0 R /Type /Catalog >>" % pages_number,), [])


def _write(target: Path, data: bytes) -> None:
    partial = target.with_name(f".{target.name}.part")
    partial.write_bytes(data)
    os.replace(partial, target)


def cut_pages(source_pdf: Path, ranges: dict[Path, tuple[int, int]]) -> None:
    """Write each target PDF with its page range (first, last; 1-based) of `source_pdf`, atomically; each has the
    source's document information (title, subject, author and the fixed dates)."""
    with pikepdf.open(source_pdf) as pdf:
        source = _Source(pdf)
        for target, (first, last) in ranges.items():
            writer = _Writer(pdf.pdf_version)
            pages = source.pages[first - 1:last]
            keys = source.closure(pages)
            parent = writer.next_number(len(keys))  # the page tree and catalog after the pages' objects
            kids = _copy_pages(writer, source, pages, keys, parent)
            root = _pages_and_catalog(writer, parent, kids)
            _write(target, writer.finish(root, _info(writer, source)))


def join(parts: list[Path], target: Path, blank_after: list[bool]) -> int:
    """Write one PDF of the parts' pages in order, atomically, with a blank page (the size of the part's last) after
    each part whose `blank_after` is true, and the first part's document information. Returns its page count."""
    with ExitStack() as stack:
        sources = [_Source(stack.enter_context(pikepdf.open(part))) for part in parts]
        writer = _Writer(max(source.pdf.pdf_version for source in sources))
        closures = [source.closure(source.pages) for source in sources]
        parent = writer.next_number(sum(map(len, closures)) + sum(blank_after))  # after the pages and blanks
        order: list[int | tuple[float, ...]] = []
        for source, keys, blank in zip(sources, closures, blank_after):
            order += _copy_pages(writer, source, source.pages, keys, parent)
            if blank:
                order.append(tuple(float(v) for v in source.pdf.pages[-1].mediabox))
        kids = [item if isinstance(item, int) else _blank_page(writer, item, parent) for item in order]
        root = _pages_and_catalog(writer, parent, kids)
        _write(target, writer.finish(root, _info(writer, sources[0])))
        return len(kids)


def _blank_page(writer: _Writer, box: tuple[float, ...], parent: int) -> int:
    """An empty page of the box's size (as \\studentstart's blank page before a student on an odd page)."""
    x0, y0, x1, y1 = box
    mediabox = b"%s %s %s %s" % tuple(f"{v:g}".encode("ascii") for v in (0, 0, x1 - x0, y1 - y0))
    return writer.add((b"<< /MediaBox [ %s ] /Parent %d 0 R /Resources << >> /Type /Page >>" % (mediabox, parent),), [])
