"""Build a class set into a folder: per-student files, class documents, PDFs; unchanged files are left alone."""

from __future__ import annotations

import filecmp
import gc
import itertools
import json
import multiprocessing
import os
import re
import shutil
import sys
import threading
import time
from collections.abc import Iterable
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from functools import lru_cache, partial
from pathlib import Path

from tqdm import tqdm

from generator.classes.assignment import Assignment
from generator.classes.classpdf import ClassPdf, compile_class_documents
from generator.classes.pdfcut import Joiner, PdfObjects, cut_pages
from generator.classes.classset import (Spool, StudentSheet, class_document, class_document_parts,
                                        grading_document_parts, manifest, printed_names, shared_numbers, student_sheet)
from generator.classes.names import (NAMES_DIMS, NAMES_PDF, NAMES_TEX, NameSet, NamesRun, compile_names, name_key,
                                     names_document, pdflatex_prints)
from generator.classes import studentcache
from generator.classes.studentcache import STUDENTS_DIR
from generator.classes.secret import SECRET_FILE, SecretError, new_secret, read_secret, write_secret
from generator.documents.pdf import compile_pdf
from generator.files import atomic_write, temp_beside
from generator.classes.roster import Student
from generator.documents.sheet import SAFE_STEM, OutputError

WORKSHEETS, KEYS, GRADING = "worksheets.tex", "keys.tex", "grading.tex"
MANIFEST = "class.json"
# With --pdf the class documents are compiled in chunks of this many students (out/chunks/NNN/worksheets.tex and
# keys.tex, with a .json of each PDF's page map and the names.dims lines it used): after one name changed
# only its chunks are compiled again; the class PDFs are joined from the chunks, the students' PDFs cut from them.
CHUNKS_DIR = "chunks"
# 50: each chunk costs about 45 ms of pdflatex start and font embedding besides its pages; against 30 a full build of
# 300 students takes 0.7 s less pdflatex CPU (7.75 s, not 8.4 s) and 0.45 s less wall time, while a rebuild's two
# chunks (0.45 s and 0.65 s of CPU) become the longer path beside the grading sheet (0.8 s): 1.6 s, not 1.25 s,
# against the target of 2 s (`make bench-class`, measured side by side in one session; 40 lay between).
CHUNK_STUDENTS = 50


@dataclass
class Summary:
    """What a build did, for the closing lines: counts, pages, warnings and timings."""

    students: int = 0
    changed: list[str] = field(default_factory=list)  # ids whose .tex or .json was (re)written
    removed: list[str] = field(default_factory=list)  # stems of students no longer in the roster whose files went
    pages: dict[str, int] = field(default_factory=dict)  # class PDF name → pages
    pdfs_written: int = 0
    pdfs_unchanged: int = 0
    shared: list[tuple[int, list[str]]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    name_warnings: list[str] = field(default_factory=list)  # names with characters no installed font has
    chunks_compiled: int = 0  # chunks of the class documents compiled (the others were up to date)


PARALLEL_FROM = 40  # smaller classes are done before worker processes would have started
SPOOL_FROM = 500  # from this many students the sheets' texts wait on disk (generate), not in memory
GENERATE_CHUNK = 16  # sheets a worker sends back at a time (about 50 KB each): what waits in memory is bounded


def class_secret_for(out: Path, assignment: Assignment) -> bytes:
    """The secret to build the class in `out` with: the folder's own, or a new one (written by write_class).

    A folder that has a class.json but no secret.key was built before class secrets (seeds from the assignment
    seed) or has lost its secret: a new one would give every student new numbers, so that is an error."""
    if (out / SECRET_FILE).exists():
        return read_secret(out)
    if not (out / MANIFEST).exists() or assignment.open_seeds:
        # Open seeds do not use the secret for numbers: an old folder keeps them, and its sheets gain access codes.
        return new_secret()
    raise SecretError(f"{out}: has a {MANIFEST} but no {SECRET_FILE}: it was built before class secrets, or its "
                      f"secret was lost, and a new secret would give every student new numbers; restore "
                      f"{SECRET_FILE} from a backup, add open_seeds = true to the assignment to keep the numbers of "
                      "a folder built before class secrets, or build into a new folder")


def generate(assignment: Assignment, roster: tuple[Student, ...], secret: bytes, progress: bool = False,
             workers: int | None = None, cache: Path | None = None) -> list[StudentSheet]:
    """Every student's sheet, key and JSON, rendered (bad input fails here, before any file is written).

    A large class is shared among the machine's cores; each sheet depends only on its student (and the class
    secret), so the result is the same in any process, in roster order. From SPOOL_FROM students the texts go
    to a temporary file as each sheet arrives (StudentSheet.spooled), their grading rows too: what stays in memory
    is a few hundred bytes a student (id, name, variant, given values), not the 50 KB of its .tex and JSON.
    With `cache` (the class folder) a student whose record there is up to date is read back, not generated
    (studentcache), and the others' sheets carry the key their record is written under (_write_students). With
    both, the workers write each student's files and record into the folder themselves, after the first sheet is
    made and the secret kept: the texts never cross to this process, and the writing is shared and overlapped."""
    keys = [studentcache.cache_key(assignment, s, secret) for s in roster] if cache is not None else [""] * len(roster)
    recorded = [bool(key) and studentcache.has_record(cache, s, key, secret) for s, key in zip(roster, keys)]
    todo = [(s, key) for s, key, known in zip(roster, keys, recorded) if not known]
    direct = cache is not None and len(roster) >= SPOOL_FROM
    if workers is None:
        workers = (os.cpu_count() or 1) if len(todo) >= PARALLEL_FROM else 1
    with ExitStack() as stack:
        made: Iterable[StudentSheet] = ()
        if todo:
            first = student_sheet(assignment, todo[0][0], secret)  # a spec that cannot be built fails before the bar
            if direct:
                _keep_secret(cache, secret)  # before any student's file: they are made with it
                first = _write_student(cache, replace(first, cache_key=todo[0][1]), secret)
            make = partial(_made_and_written, out=cache) if direct else _made
            rest = todo[1:]
            if workers > 1:
                # fork: the workers start with the templates compiled and the problem types loaded.
                frozen_heap(stack)
                pool = stack.enter_context(ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")))
                results = pool.map(make, [assignment] * len(rest), [s for s, _ in rest], [secret] * len(rest),
                                   [key for _, key in rest],
                                   chunksize=max(1, min(GENERATE_CHUNK, len(rest) // (8 * workers))))
            else:
                results = (make(assignment, student, secret, key) for student, key in rest)
            made = itertools.chain([first], results)
        made = iter(made)
        bar = stack.enter_context(tqdm(total=len(roster), desc="students", unit="", file=sys.stderr,
                                       disable=not progress, leave=False))
        spool = Spool() if len(roster) >= SPOOL_FROM and not direct else None
        sheets = []
        for student, key, known in zip(roster, keys, recorded):
            sheet = studentcache.load(cache, assignment, student, secret, key, direct) if known else next(made)
            if sheet is None:  # a file changed since its record was checked: generated here after all
                sheet = _made(assignment, student, secret, key)
                if direct:
                    sheet = _write_student(cache, sheet, secret)
            if key and not sheet.cached:
                sheet = replace(sheet, cache_key=key)
            sheets.append(sheet.spooled(spool) if spool else sheet)
            bar.update()
    return sheets


def frozen_heap(stack: ExitStack) -> None:
    """What this process holds now (modules, compiled templates, the problem types and their tables) is taken out of
    the garbage collector's reach until `stack` closes: processes forked meanwhile do not scan it again in each full
    collection (30-40 ms pauses, one problem in a hundred) nor copy its pages by touching them (Python's gc docs)."""
    gc.collect()
    gc.freeze()
    stack.callback(gc.unfreeze)


def _made(assignment: Assignment, student: Student, secret: bytes, key: str) -> StudentSheet:
    """student_sheet, with the key its record is written under."""
    sheet = student_sheet(assignment, student, secret)
    return replace(sheet, cache_key=key) if key else sheet


def _made_and_written(assignment: Assignment, student: Student, secret: bytes, key: str, out: Path) -> StudentSheet:
    """A worker's part in a large class: the sheet made, its files and record written into `out`; what it sends
    back holds their paths, not the texts."""
    return _write_student(out, _made(assignment, student, secret, key), secret)


def _write_if_changed(path: Path, text: str | bytes) -> bool:
    """Write text (or UTF-8 bytes) to path atomically unless it already holds exactly that; True when written."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    try:
        if path.read_bytes() == data:
            return False
    except OSError:
        pass
    atomic_write(path, data)
    if path.suffix == ".tex":
        # A PDF beside a rewritten .tex no longer matches it; it is rebuilt or gone, never stale.
        path.with_suffix(".pdf").unlink(missing_ok=True)
    return True


def _write_parts_if_changed(path: Path, parts: Iterable[str]) -> bool:
    """_write_if_changed for text made in pieces: written to a temporary file beside path as it comes, which
    replaces path unless path holds exactly the same bytes; True when written."""
    handle, temp = temp_beside(path)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as file:
            file.writelines(parts)
        if path.exists() and filecmp.cmp(temp, path, shallow=False):
            Path(temp).unlink()
            return False
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    if path.suffix == ".tex":
        path.with_suffix(".pdf").unlink(missing_ok=True)
    return True


def _keep_secret(out: Path, secret: bytes) -> None:
    """Write the class secret the sheets were made with, unless the folder has it already (never another one)."""
    try:
        if read_secret(out) == secret:
            return
    except SecretError:
        if (out / SECRET_FILE).exists():
            raise
        write_secret(out, secret)
        return
    raise SecretError(f"{out / SECRET_FILE}: another class secret than the sheets were made with; nothing written")


def _write_students(sheets: list[StudentSheet], out: Path, summary: Summary, secret: bytes) -> None:
    """Each student's worksheet and key .tex and JSON key, where they changed; then the record of each sheet
    generated with a cache key (after its files: a record never names files that were not written)."""
    (out / STUDENTS_DIR).mkdir(parents=True, exist_ok=True)
    for s in sheets:
        if s.cached:  # read from these very files a moment ago (their SHA-256 sums checked): nothing to write
            continue
        if s.written is None:
            s = _write_student(out, s, secret)
        if s.written:
            summary.changed.append(s.student.id)


def _write_student(out: Path, sheet: StudentSheet, secret: bytes) -> StudentSheet:
    """Write one student's .tex, key .tex and JSON key where they changed, then its record (if it has a cache key:
    after the files, so that a record never names files that were not written). Returns the sheet marked written,
    its texts and grading rows left on disk when it has a record."""
    (out / STUDENTS_DIR).mkdir(parents=True, exist_ok=True)
    data = tuple(text.encode("utf-8") for text in (sheet.worksheet, sheet.key, sheet.json))
    wrote = [_write_if_changed(path, part) for path, part in zip(studentcache.student_files(out, sheet.student), data)]
    sheet = replace(sheet, written=any(wrote))
    if not sheet.cache_key:
        return sheet
    studentcache.store(out, sheet, data, secret)
    return studentcache.on_disk(out, sheet)


@lru_cache(maxsize=1)
def _class_names(names: tuple[str, ...]) -> NameSet:
    """The names document of a class's roster names, worked once for start_names and write_class (23 ms for 300
    students, before TeX can start)."""
    return names_document(printed_names(names))


def start_names(roster: Iterable[Student], out: Path, pdf: bool) -> NamesRun | None:
    """With `pdf`, LuaTeX started on the names pdflatex cannot print (names.tex, set in a folder of its own) unless
    `out` holds them already: it runs while the sheets are generated; write_class takes it. None when not needed."""
    names = _class_names(tuple(s.name for s in roster))
    if not pdf or not names.count:
        return None
    try:
        unchanged = (out / NAMES_TEX).read_text(encoding="utf-8") == names.tex
    except (OSError, UnicodeDecodeError):
        unchanged = False
    if unchanged and (out / NAMES_PDF).exists() and (out / NAMES_DIMS).exists():
        return None
    return NamesRun(out, names.tex)


def write_class(assignment: Assignment, sheets: list[StudentSheet], out: Path, secret: bytes, pdf: bool,
                progress: bool = False, summary: Summary | None = None, names_run: NamesRun | None = None) -> Summary:
    """Write the class set into `out`, rewriting only what changed; compile and split PDFs when `pdf`.

    The class secret the sheets were made with is written first (mode 0600), once: later builds read it. The
    names LuaTeX sets: `names_run` (start_names, before the sheets were generated) or started here."""
    summary = summary or Summary()
    summary.students = len(sheets)
    gone = _removed_stems(out, sheets)  # read before class.json is rewritten
    tex: Future | None = None  # with `pdf`: TeX, started once its documents are written
    students_written = threading.Event()
    try:
        _keep_secret(out, secret)
        # The names LuaTeX sets (names.py) first: with --pdf it runs while the other files are written.
        names = _class_names(tuple(s.student.name for s in sheets))
        if names.count:
            _write_if_changed(out / NAMES_TEX, names.tex)
            if pdf and names_run is None and not ((out / NAMES_PDF).exists() and (out / NAMES_DIMS).exists()):
                names_run = NamesRun(out)
        else:  # every name prints with pdflatex: no names document
            for stale_name in (NAMES_TEX, NAMES_PDF, NAMES_DIMS):
                (out / stale_name).unlink(missing_ok=True)
        # Written as they are made, a student at a time: a large class's documents are never whole in memory.
        documents = {
            GRADING: grading_document_parts(assignment, sheets),
            WORKSHEETS: class_document_parts(s.worksheet for s in sheets),
            KEYS: class_document_parts(s.key for s in sheets),
        }
        if pdf:
            # What TeX compiles (the grading sheet, the chunks) first; then TeX starts, in a thread of its own, and
            # the students' files are written while it runs (their PDFs are cut once they are: _build_pdfs).
            _write_parts_if_changed(out / GRADING, documents.pop(GRADING))
            chunks = _write_chunks(sheets, out)
            runner = ThreadPoolExecutor(1)
            tex = runner.submit(_build_pdfs, sheets, out, chunks, progress, summary, names_run, students_written)
            runner.shutdown(wait=False)  # the thread ends with the build; tex.result() below waits for it
        _write_students(sheets, out, summary, secret)
        students_written.set()
        for name, parts in documents.items():
            _write_parts_if_changed(out / name, parts)
        if not pdf and (out / CHUNKS_DIR).exists():  # chunks kept in step: none keeps a PDF of old pages
            _write_chunks(sheets, out)
        _write_if_changed(out / MANIFEST, manifest(assignment, sheets))
        # After class.json no longer lists them (the web page never offers a student whose files are gone).
        summary.removed = [stem for stem in gone if _remove_student_files(out, stem)]
    except BaseException as error:
        students_written.set()
        if tex is not None:
            wait([tex])  # what TeX was doing ends before the error is reported; its own error is not the first
        if names_run is not None:
            names_run.cancel()
        if isinstance(error, OSError):
            raise OutputError(f"cannot write to folder '{out}': {error.strerror or error}; choose a writable folder") from error
        raise
    summary.shared = shared_numbers(sheets)
    for name, codes in names.missing.items():
        line = (f"warning: the name {name!r} has {', '.join(f'U+{code:04X}' for code in codes)}, which no installed "
                "font has; printed as the code point in a box")
        summary.name_warnings.append(line)
        print(line, file=sys.stderr)
    if tex is not None:
        try:
            tex.result()
        finally:
            if names_run is not None:
                names_run.cancel()
    return summary


def _removed_stems(out: Path, sheets: list[StudentSheet]) -> list[str]:
    """The file stems the last build's class.json lists and this roster does not (students removed from it): only
    stems the build itself makes (SAFE_STEM), none that is a current student's in another letter case (a folder
    that ignores case holds both as one file). Nothing when there is no class.json or it cannot be read."""
    try:
        listed = [entry["stem"] for entry in json.loads((out / MANIFEST).read_text(encoding="utf-8"))["students"]]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    current = {s.student.stem.casefold() for s in sheets}
    return list(dict.fromkeys(stem for stem in listed if isinstance(stem, str) and SAFE_STEM.fullmatch(stem)
                              and stem.casefold() not in current))


def _remove_student_files(out: Path, stem: str) -> bool:
    """Remove the files a build writes for the student with this stem (worksheet, key and JSON key, their PDFs,
    the cache record) and nothing else; True when there was one."""
    folder = out / STUDENTS_DIR
    paths = [folder / f"{stem}{suffix}" for suffix in (".tex", ".pdf", "-key.tex", "-key.pdf", "-key.json")]
    paths.append(out / studentcache.CACHE_DIR / f"{stem}.json")
    removed = False
    for path in paths:
        if path.is_file() and not path.is_symlink():
            path.unlink()
            removed = True
    return removed


def write_only(sheets: list[StudentSheet], out: Path, secret: bytes, pdf: bool,
               summary: Summary | None = None) -> Summary:
    """Rebuild some students' files in an existing class folder (`class --only`): their .tex and JSON key where
    changed, with `pdf` their worksheet and key PDFs compiled alone where missing; the class documents are left."""
    summary = summary or Summary()
    summary.students = len(sheets)
    if read_secret(out) != secret:
        raise SecretError(f"{out / SECRET_FILE}: another class secret than the sheets were made with; nothing written")
    try:
        _write_students(sheets, out, summary, secret)
    except OSError as error:
        raise OutputError(f"cannot write to folder '{out}': {error.strerror or error}; choose a writable folder") from error
    if pdf:
        start = time.perf_counter()
        _names_for_only(sheets, out)
        for s in sheets:
            for tex in (out / STUDENTS_DIR / f"{s.student.stem}.tex", out / STUDENTS_DIR / f"{s.student.stem}-key.tex"):
                if tex.with_suffix(".pdf").exists():
                    summary.pdfs_unchanged += 1
                else:
                    compile_pdf(tex)
                    summary.pdfs_written += 1
        summary.seconds["TeX"] = time.perf_counter() - start
    return summary


def _names_for_only(sheets: list[StudentSheet], out: Path) -> None:
    """Before `--only --pdf` compiles some students alone: names.pdf set again (with every name class.json lists)
    when one of theirs needs LuaTeX and names.dims lacks it (a new name), so that it prints as written."""
    wanted = [name_key(style, name) for style, name in printed_names(s.student.name for s in sheets)
              if not pdflatex_prints(name)]
    try:
        dims = (out / NAMES_DIMS).read_text(encoding="ascii")
    except OSError:
        dims = ""
    if all("{" + key + "}" in dims for key in wanted):
        return
    try:
        listed = [entry["name"] for entry in json.loads((out / MANIFEST).read_text(encoding="utf-8"))["students"]]
    except (OSError, ValueError, KeyError, TypeError):
        listed = []
    names = names_document(printed_names([*listed, *(s.student.name for s in sheets)]))
    _write_if_changed(out / NAMES_TEX, names.tex)
    compile_names(out)


def _names_stamp(tex_text: str, dims: dict[str, str]) -> str:
    """What a class document's PDF takes from names.dims: the lines of the names it places (their pages in
    names.pdf and depths). A chunk whose .tex is unchanged is compiled again when these changed."""
    keys = dict.fromkeys(re.findall(r"\\classname\{([0-9a-f]+)\}", tex_text))
    return "".join(dims.get(key, f"{key} -\n") for key in keys)


def _read_dims(out: Path) -> dict[str, str]:
    try:
        text = (out / NAMES_DIMS).read_text(encoding="ascii")
    except OSError:
        return {}
    return {match.group(1): match.group(0) + "\n"
            for match in re.finditer(r"^\\classnamedef\{([0-9a-f]+)\}.*$", text, re.MULTILINE)}


def _write_chunks(sheets: list[StudentSheet], out: Path) -> list[Path]:
    """The class documents in chunks of CHUNK_STUDENTS students, out/chunks/NNN/worksheets.tex and keys.tex, written
    where they changed (a rewritten chunk loses its PDF); the folders of chunks a larger class had are removed."""
    root = out / CHUNKS_DIR
    folders = []
    for number, start in enumerate(range(0, len(sheets), CHUNK_STUDENTS), start=1):
        folder = root / f"{number:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        part = sheets[start:start + CHUNK_STUDENTS]
        _write_if_changed(folder / WORKSHEETS, class_document(s.worksheet for s in part))
        _write_if_changed(folder / KEYS, class_document(s.key for s in part))
        folders.append(folder)
    for old in root.iterdir():
        if old not in folders:
            shutil.rmtree(old) if old.is_dir() else old.unlink()
    return folders


def _chunk_pdf(tex: Path, names: str) -> ClassPdf | None:
    """The chunk's PDF compiled before, from what its .json remembers, if it is up to date: its .tex unchanged (a
    rewritten .tex loses its PDF) and the same names.dims lines for its names."""
    try:
        data = json.loads(tex.with_suffix(".json").read_text(encoding="utf-8"))
        if not tex.with_suffix(".pdf").exists() or data["names"] != names:
            return None
        return ClassPdf(tex.with_suffix(".pdf"), data["pages"], tuple(map(tuple, data["students"])))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _build_pdfs(sheets: list[StudentSheet], out: Path, chunks: list[Path], progress: bool, summary: Summary,
                names_run: NamesRun | None, students_written: threading.Event) -> None:
    """Compile the chunks and the grading sheet that changed (side by side, a pdflatex per core), join the chunks
    into the class PDFs where needed, and cut out the students' PDFs that are missing (from their chunk), once
    `students_written`: a student's .tex rewritten removes its PDF, which is then cut anew."""
    folder = out / STUDENTS_DIR
    targets = {  # class document → each student's PDF, in roster order
        WORKSHEETS: [folder / f"{s.student.stem}.pdf" for s in sheets],
        KEYS: [folder / f"{s.student.stem}-key.pdf" for s in sheets],
    }
    start = time.perf_counter()
    # The names pdflatex cannot print are set first (names.pdf, names.dims): the class documents place them.
    if names_run is not None:
        names_run.finish()
        summary.seconds["names (LuaTeX, waited)"] = time.perf_counter() - start
        start = time.perf_counter()
    dims = _read_dims(out)
    parts: dict[Path, ClassPdf | None] = {}
    stamps: dict[Path, str] = {}
    for chunk in chunks:
        for name in (WORKSHEETS, KEYS):
            tex = chunk / name
            stamps[tex] = _names_stamp(tex.read_text(encoding="utf-8"), dims)
            parts[tex] = _chunk_pdf(tex, stamps[tex])
    # The grading sheet's PDF is removed whenever its .tex changes, so one that exists is up to date. The grading
    # sheet first (the longest run), then the worksheets' chunks, then the keys': worksheets.pdf is joined and
    # the students' PDFs are cut from each chunk as soon as it is compiled, while the others compile.
    stale = [out / GRADING] if not (out / GRADING).with_suffix(".pdf").exists() else []
    stale += [chunk / name for name in (KEYS, WORKSHEETS) for chunk in chunks if parts[chunk / name] is None]
    place = {chunk / name: (name, number) for name in (WORKSHEETS, KEYS) for number, chunk in enumerate(chunks)}
    # A class PDF is joined again when one of its chunks is compiled, or when it is missing.
    to_join = [name for name in (WORKSHEETS, KEYS) if any(place.get(tex, ("",))[0] == name for tex in stale)
               or not (out / name).with_suffix(".pdf").exists()]
    joined = {name: 0 for name in to_join}  # chunks appended so far, in order
    joiners: dict[str, Joiner] = {}
    read: dict[Path, PdfObjects] = {}  # a chunk's objects, read for cutting, kept until it is joined
    cut: set[Path] = set()
    bar = tqdm(total=sum(len(t) for t in targets.values()), desc="PDFs", unit="", file=sys.stderr,
               disable=not progress, leave=False)

    def objects(tex: Path) -> PdfObjects:
        if tex not in read:
            read[tex] = PdfObjects.read(parts[tex].pdf)
        return read[tex]

    def cut_students(tex: Path) -> None:
        students_written.wait()
        name, number = place[tex]
        own = targets[name][number * CHUNK_STUDENTS:(number + 1) * CHUNK_STUDENTS]
        missing = {t: pages for t, pages in zip(own, parts[tex].students) if not t.exists()}
        if missing:
            cut_pages(objects(tex), missing)
        if name not in joined or joined[name] > number:
            read.pop(tex, None)  # not to be joined (again): not kept
        summary.pdfs_written += len(missing)
        summary.pdfs_unchanged += len(own) - len(missing)
        cut.add(tex)
        bar.update(len(own))

    def join_ready(name: str) -> None:
        """Append the class PDF's next chunks that are compiled, in order; after the last, move it into place."""
        while joined[name] < len(chunks):
            tex = chunks[joined[name]] / name
            if parts[tex] is None:  # still to compile
                return
            if name not in joiners:
                joiners[name] = Joiner((out / name).with_suffix(".pdf"))
            last = joined[name] == len(chunks) - 1
            # A chunk with an odd page count is followed by a blank page: the next student starts on an odd page.
            joiners[name].append(objects(tex), blank_after=not last and parts[tex].pages % 2 == 1)
            read.pop(tex)
            joined[name] += 1
        summary.pages[(out / name).with_suffix(".pdf").name] = joiners.pop(name).finish()

    def compiled_one(result: ClassPdf) -> None:
        tex = result.pdf.with_suffix(".tex")
        if tex not in place:
            return
        parts[tex] = result
        record = {"pages": result.pages, "students": result.students, "names": stamps[tex]}
        atomic_write(tex.with_suffix(".json"), (json.dumps(record) + "\n").encode("utf-8"))
        cut_students(tex)
        if place[tex][0] in joined:
            join_ready(place[tex][0])

    try:
        compiled = compile_class_documents(stale, inputs=out, on_compiled=compiled_one)
        summary.seconds["TeX"] = time.perf_counter() - start
        summary.chunks_compiled = sum(1 for tex in compiled if tex in place)
        start = time.perf_counter()
        for name in (WORKSHEETS, KEYS):  # no chunk of it compiled: the students' PDFs that are missing, the class PDF
            for chunk in chunks:
                if chunk / name not in cut:
                    cut_students(chunk / name)
            if name in joined and joined[name] < len(chunks):
                join_ready(name)
    finally:
        for joiner in joiners.values():  # a compilation failed: no class PDF half joined
            joiner.abort()
    bar.close()
    summary.pages = {name: summary.pages[name] for name in ("worksheets.pdf", "keys.pdf") if name in summary.pages}
    if out / GRADING in compiled:
        summary.pages[compiled[out / GRADING].pdf.name] = compiled[out / GRADING].pages
    summary.seconds["splitting"] = time.perf_counter() - start


def report(assignment: Assignment, out: Path, summary: Summary) -> list[str]:
    """The closing lines: students written and unchanged, pages, shared numbers, and time."""
    written, unchanged = len(summary.changed), summary.students - len(summary.changed)
    removed = f", {len(summary.removed)} removed" if summary.removed else ""  # students no longer in the roster
    lines = [f"{assignment.name}: {summary.students} students in {out}: {written} written, {unchanged} unchanged"
             f"{removed}"]
    if summary.pages or summary.pdfs_written or summary.pdfs_unchanged:
        pages = ", ".join(f"{name} {count} page{'' if count == 1 else 's'}"
                          for name, count in summary.pages.items()) or "class PDFs unchanged"
        lines.append(f"  {pages}; student PDFs: {summary.pdfs_written} written, {summary.pdfs_unchanged} unchanged")
    by_problem: dict[int, list[list[str]]] = {}
    for number, ids in summary.shared:
        by_problem.setdefault(number, []).append(ids)
    for number, groups in by_problem.items():
        kind = assignment.problems[number - 1].type
        if len(groups) <= 3:
            for ids in groups:
                lines.append(f"  warning: problem {number} ({kind}) has the same numbers for {', '.join(map(repr, ids))}; "
                             "give all but one of them a reroll number in the roster")
        else:
            shared = sum(len(ids) for ids in groups)
            lines.append(f"  warning: problem {number} ({kind}): {shared} students share their numbers with another "
                         f"(in {len(groups)} groups, e.g. {', '.join(map(repr, groups[0][:3]))}); "
                         "this type has few variants, so choose another type for a class this size")
    timing = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in summary.seconds.items())
    lines.append(f"  time: {timing}")
    return lines


def build_class(assignment: Assignment, roster: tuple[Student, ...], out: Path, secret: bytes, pdf: bool,
                progress: bool = False, summary: Summary | None = None) -> Summary:
    """Generate every student's sheet, then write the class set into `out` (what `class` does)."""
    summary = summary or Summary()
    start = time.perf_counter()
    names_run = start_names(roster, out, pdf)
    try:
        sheets = generate(assignment, roster, secret, progress, cache=out)
    except BaseException:
        if names_run is not None:
            names_run.cancel()
        raise
    summary.seconds["generation + rendering"] = time.perf_counter() - start
    return write_class(assignment, sheets, out, secret, pdf, progress, summary, names_run)
