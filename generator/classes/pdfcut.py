"""PDFs made of other PDFs' pages (a student's pages cut from a chunk, chunks joined into a class PDF), written
from the bytes pikepdf serializes each object into once (PdfObjects): a chunk's fonts are shared by its fifty
students' PDFs, and the class PDF is joined from the objects the cutting read.

pikepdf copying the pages into a new Pdf and saving it took 2 ms a student PDF, most of it re-serializing the same
fonts (170 KB of a 200 KB file) for each student and hashing the whole file for its /ID; a class set cuts 600. Here
qpdf (through pikepdf) still parses and serializes every object; what is written is those bytes, renumbered, framed
as objects, with a cross-reference table: the file layout of the PDF standard (ISO 32000-1, 7.5), nothing more."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import pikepdf

from generator.files import atomic_write, temp_beside

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
    """An object as qpdf unparsed it (a stream: its dictionary, and its data), cut at its references."""
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


Key = tuple[int, int]  # an object's number and generation


class PdfObjects:
    """A PDF's pages and every object they use, each serialized by pikepdf once (read), kept as bytes: nothing of
    the file stays open."""

    def __init__(self, pages: list[Key], tree: set[Key], pieces: dict[Key, _Piece], info: _Piece | None,
                 last_page_size: tuple[float, float], version: str) -> None:
        self.pages = pages
        self._tree = tree  # the pages and the page-tree nodes above them
        self._pieces = pieces
        self.info = info
        self.last_page_size = last_page_size
        self.version = version

    @classmethod
    def read(cls, path: Path) -> PdfObjects:
        with pikepdf.open(path) as pdf:
            pages = [page.obj.objgen for page in pdf.pages]
            tree = {*pages, *(node.objgen for page in pdf.pages for node in _parents(page.obj))}
            pieces: dict[Key, _Piece] = {}
            stack, page_set = list(pages), set(pages)
            while stack:  # every object the pages use, through any chain of references but a page's /Parent
                key = stack.pop()
                if key not in pieces:
                    pieces[key] = _serialize(pdf.get_object(key), key in page_set)
                    stack.extend(pieces[key].refs)
            info = pdf.trailer.get("/Info")
            info_piece = None if info is None else _piece(pikepdf.Dictionary(dict(info.items())).unparse(resolved=True))
            if info_piece is not None and info_piece.refs:  # pdfTeX writes none
                raise ValueError(f"{path}: the document information has indirect values")
            box = [float(v) for v in pdf.pages[-1].mediabox] if pages else [0, 0, 0, 0]
            return cls(pages, tree, pieces, info_piece, (box[2] - box[0], box[3] - box[1]), pdf.pdf_version)

    def piece(self, key: Key) -> _Piece:
        return self._pieces[key]

    def closure(self, pages: list[Key]) -> list[Key]:
        """The objects these pages need (their contents, resources, fonts, ...), in the source's order."""
        wanted = set(pages)
        seen: set[Key] = set()
        stack = list(pages)
        while stack:
            key = stack.pop()
            if key in seen:
                continue
            if key in self._tree and key not in wanted:
                # A link to another page (or to the page tree) would bring in pages that are not the student's.
                raise ValueError(f"object {key[0]} {key[1]} R refers to a page outside the pages cut")
            seen.add(key)
            stack.extend(self._pieces[key].refs)
        return sorted(seen)


def _serialize(obj: pikepdf.Object, page: bool) -> _Piece:
    if page:
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


def _parents(page: pikepdf.Object) -> list[pikepdf.Object]:
    parents, node = [], page.get("/Parent")
    while node is not None and len(parents) < 64:  # a malformed tree with a loop ends too
        parents.append(node)
        node = node.get("/Parent")
    return parents


class _Writer:
    """A PDF file written as its objects come (to `write`): numbers handed out in order, a number may be reserved
    and its object written later; then the cross-reference table and the trailer."""

    def __init__(self, write: Callable[[bytes], object], version: str) -> None:
        self._write = write
        self.size = 0
        self.offsets: dict[int, int] = {}
        self.numbers = 0
        self.ident = hashlib.md5()
        self._out(f"%PDF-{version}\n".encode("ascii") + b"%\xe2\xe3\xcf\xd3\n")

    def _out(self, data: bytes) -> None:
        self._write(data)
        self.size += len(data)

    def reserve(self) -> int:
        self.numbers += 1
        return self.numbers

    def add(self, segments: list[bytes] | tuple[bytes, ...], numbers: list[int], stream: bytes | None = None,
            digest: bytes = b"", number: int | None = None) -> int:
        number = number or self.reserve()
        head = [b"%d 0 obj\n" % number, segments[0]]
        for ref, segment in zip(numbers, segments[1:]):
            head += [b"%d 0 R" % ref, segment]
        head.append(b"\nstream\n" if stream is not None else b"\nendobj\n")
        text = b"".join(head)
        self.ident.update(text + digest)  # a stream's data through its digest, worked out once
        self.offsets[number] = self.size
        self._out(text)
        if stream is not None:
            self._out(stream)
            self._out(b"\nendstream\nendobj\n")
        return number

    def copy_pages(self, source: PdfObjects, pages: list[Key], parent: int) -> list[int]:
        """Add the pages and every object they use, the pages pointing to `parent`; the pages' new numbers."""
        keys = source.closure(pages)
        number = {key: self.numbers + 1 + index for index, key in enumerate(keys)}
        page_set = set(pages)
        for key in keys:
            piece = source.piece(key)
            segments = piece.segments
            if key in page_set:  # the page dictionary ends ">>": its parent goes in before it
                segments = (*segments[:-1], segments[-1][:-2] + b"/Parent %d 0 R >>" % parent)
            self.add(segments, [number[ref] for ref in piece.refs], piece.stream, piece.digest)
        return [number[key] for key in pages]

    def finish(self, pages: int, kids: list[int], info: _Piece | None, version: str | None = None) -> None:
        """The page tree (its number reserved before), the catalog (with the version, when the header's is lower),
        the document information, the xref and the trailer, with a content-derived /ID: the same objects give
        the same bytes, and there are no timestamps of the file's own."""
        listed = b" ".join(b"%d 0 R" % kid for kid in kids)
        self.add((b"<< /Count %d /Kids [ %s ] /Type /Pages >>" % (len(kids), listed),), [], number=pages)
        extra = b" /Version /%s" % version.encode("ascii") if version else b""
        root = self.add((b"<< /Pages %d 0 R /Type /Catalog%s >>" % (pages, extra),), [])
        info_number = self.add(info.segments, []) if info is not None else None
        if sorted(self.offsets) != list(range(1, self.numbers + 1)):
            raise RuntimeError("an object number was reserved and never written")
        ident = self.ident.hexdigest().encode("ascii")
        start = self.size
        self._out(b"xref\n0 %d\n0000000000 65535 f \n" % (self.numbers + 1))
        self._out(b"".join(b"%010d 00000 n \n" % self.offsets[n] for n in range(1, self.numbers + 1)))
        info_entry = b" /Info %d 0 R" % info_number if info_number is not None else b""
        self._out(b"trailer\n<< /Size %d /Root %d 0 R%s /ID [ <%s> <%s> ] >>\nstartxref\n%d\n%%%%EOF\n"
                  % (self.numbers + 1, root, info_entry, ident, ident, start))


def cut_pages(source: PdfObjects, ranges: dict[Path, tuple[int, int]]) -> None:
    """Write each target PDF with its page range (first, last; 1-based) of `source`, atomically; each has the
    source's document information (title, subject, author and the fixed dates)."""
    for target, (first, last) in ranges.items():
        parts: list[bytes] = []
        writer = _Writer(parts.append, source.version)
        parent = writer.reserve()
        kids = writer.copy_pages(source, source.pages[first - 1:last], parent)
        writer.finish(parent, kids, source.info)
        atomic_write(target, b"".join(parts))


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".") if part.isdigit())


class Joiner:
    """One PDF of several PDFs' pages, the parts given in order and written as they come (a part's objects are
    not kept), then moved into place whole by finish(); a part is followed by a blank page of its last page's
    size where asked. The document information is the first part's."""

    def __init__(self, target: Path) -> None:
        self.target = target
        handle, self._partial = temp_beside(target)  # moved into place by finish(), removed by abort()
        self._file = os.fdopen(handle, "wb")
        self._writer: _Writer | None = None
        self._kids: list[int] = []
        self._info: _Piece | None = None
        self._header_version = self._version = ""

    def append(self, part: PdfObjects, blank_after: bool = False) -> None:
        if self._writer is None:  # the first part: its version in the header, its document information kept
            self._writer = _Writer(self._file.write, part.version)
            self._pages = self._writer.reserve()
            self._info, self._header_version, self._version = part.info, part.version, part.version
        writer = self._writer
        self._kids += writer.copy_pages(part, part.pages, self._pages)
        if _version_key(part.version) > _version_key(self._version):
            self._version = part.version
        if blank_after:  # an empty page, as \\studentstart's blank page before a student on an odd page
            width, height = (f"{v:g}".encode("ascii") for v in part.last_page_size)
            self._kids.append(writer.add((b"<< /MediaBox [ 0 0 %s %s ] /Parent %d 0 R /Resources << >> /Type /Page >>"
                                          % (width, height, self._pages),), []))

    def finish(self) -> int:
        """Write the page tree, catalog and cross-references and move the file into place; its page count."""
        if self._writer is None:
            raise ValueError(f"{self.target}: no part to join")
        newer = self._version if self._version != self._header_version else None  # a later part's, in the catalog
        self._writer.finish(self._pages, self._kids, self._info, newer)
        self._file.close()
        os.replace(self._partial, self.target)
        return len(self._kids)

    def abort(self) -> None:
        """Leave nothing behind (a compilation failed: the class PDF is not joined)."""
        self._file.close()
        Path(self._partial).unlink(missing_ok=True)
