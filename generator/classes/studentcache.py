"""What a class build knows of each student from the last build: a record per student in out/cache, so that a
rebuild generates again only the students whose inputs changed.

A record is used only when its key, an HMAC under the class secret of everything a student's files depend on
(the assignment, the student's id, name and re-roll number, the generator's source files and templates, the
Python and package versions), is the one this build computes, and the student's three files still hold the
bytes the record's SHA-256 sums name; the record carries an HMAC under the secret of all it holds, so that
neither an edit nor a record copied from elsewhere is read. Anything else (no record, another key, a file
changed or missing) generates the student again: a stale record would give a wrong key, so every doubt costs
time, never correctness."""

from __future__ import annotations

import hashlib
import hmac
import json
import sys
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

from generator.classes.assignment import Assignment
from generator.classes.classset import GradingProblem, StudentSheet, sheet_qr_text, sheet_seed
from generator.classes.roster import Student
from generator.classes.secret import keyed_digest
from generator.core.problem import Tex
from generator.files import atomic_write
from generator.web.codes import access_code

CACHE_DIR = "cache"
CACHE_FORMAT = "transformer-worksheets/student-cache"
CACHE_VERSION = 1
CACHE_DERIVATION = "transformer-worksheets/student-cache/v1"
STUDENTS_DIR = "students"
PACKAGE = Path(__file__).resolve().parent.parent  # generator/: every file in it counts as code


def student_files(out: Path, student: Student) -> tuple[Path, Path, Path]:
    """The student's worksheet .tex, key .tex and JSON key in the class folder `out`."""
    folder = out / STUDENTS_DIR
    return folder / f"{student.stem}.tex", folder / f"{student.stem}-key.tex", folder / f"{student.stem}-key.json"


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """SHA-256 of every file of the generator package (source, templates, data), the Python version and every
    installed distribution's version: any edit, upgrade or other interpreter invalidates every record."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            name = path.relative_to(PACKAGE).as_posix().encode("utf-8")
            data = path.read_bytes()
            digest.update(b"%d:%s%d:" % (len(name), name, len(data)) + data)
    # The installed packages by their metadata folders' names (name-version.dist-info): a listing of sys.path,
    # where reading every distribution's metadata took 0.1 s, a twentieth of a rebuild's budget.
    packages = sorted(entry.name for folder in map(Path, sys.path) if folder.is_dir() for entry in folder.iterdir()
                      if entry.suffix in (".dist-info", ".egg-info", ".pth"))
    digest.update(json.dumps([sys.version, sys.implementation.name, packages]).encode("utf-8"))
    return digest.hexdigest()


def cache_key(assignment: Assignment, student: Student, secret: bytes) -> str:
    """The key a student's record must have to be used: everything the student's files depend on, and the secret."""
    return keyed_digest(secret, CACHE_DERIVATION, code_fingerprint(), repr(assignment), student.id, student.name,
                        student.reroll, student.stem).hex()


def _record_path(out: Path, student: Student) -> Path:
    return out / CACHE_DIR / f"{student.stem}.json"


def _seal(body: dict, secret: bytes) -> str:
    """The record's HMAC under the class secret, over its canonical JSON."""
    text = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return keyed_digest(secret, CACHE_DERIVATION + "/record", text).hex()


def _read_record(out: Path, student: Student, key: str, secret: bytes) -> dict | None:
    try:
        record = json.loads(_record_path(out, student).read_bytes())
        seal = record.pop("seal")
        if (record["format"] == CACHE_FORMAT and record["version"] == CACHE_VERSION and record["key"] == key
                and hmac.compare_digest(seal, _seal(record, secret))):
            return record
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    return None


def has_record(out: Path, student: Student, key: str, secret: bytes) -> bool:
    """Whether the student has a sound record with this key (the files are checked when the sheet is loaded)."""
    return _read_record(out, student, key, secret) is not None


class OnDisk:
    """Where a large class's sheets keep their texts and grading rows: the students' files and records, read back
    when asked for (the `spool` of a StudentSheet whose texts are paths and whose grading rows are its record)."""

    def get(self, place: str) -> str:
        return Path(place).read_bytes().decode("utf-8")

    def grading(self, place: str) -> tuple[GradingProblem, ...]:
        return _grading(json.loads(Path(place).read_bytes()))

    def __reduce__(self) -> str:  # a sheet sent back by a worker refers to this process's ON_DISK
        return "ON_DISK"


ON_DISK = OnDisk()


def _grading(record: dict) -> tuple[GradingProblem, ...]:
    return tuple(GradingProblem(Tex(heading), groups, tuple(Tex(row) for row in rows))
                 for heading, groups, rows in record["grading"])


def on_disk(out: Path, sheet: StudentSheet) -> StudentSheet:
    """The sheet, whose files and record are written, with its texts and grading rows left there (ON_DISK)."""
    texts = tuple(str(path) for path in student_files(out, sheet.student))
    return replace(sheet, texts=texts, grading_rows=str(_record_path(out, sheet.student)), spool=ON_DISK)


def load(out: Path, assignment: Assignment, student: Student, secret: bytes, key: str,
         keep_on_disk: bool = False) -> StudentSheet | None:
    """The student's sheet from the record and the student's files, or None when either is not up to date; with
    `keep_on_disk` its texts and grading rows stay in the files (ON_DISK), checked but not kept in memory."""
    record = _read_record(out, student, key, secret)
    if record is None:
        return None
    try:
        data = [path.read_bytes() for path in student_files(out, student)]
        if [hashlib.sha256(d).hexdigest() for d in data] != record["files"]:
            return None
        grading = _grading(record)
        texts = tuple(d.decode("utf-8") for d in data)
        # The seed and the access code are made again from the secret: a record holds neither (nor the QR text,
        # which may hold the code), as no file of the class but the student's own holds them.
        seed, code = sheet_seed(assignment, student, secret), access_code(secret, assignment.name, student.id)
        sheet = StudentSheet(
            student=student, seed=seed, variant=record["variant"],
            qr_text=sheet_qr_text(assignment, student, record["variant"], seed, code), access_code=code, texts=texts,
            grading_rows=grading, givens=tuple(record["givens"]), cache_key=key, cached=True)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return on_disk(out, sheet) if keep_on_disk else sheet


def store(out: Path, sheet: StudentSheet, data: tuple[bytes, bytes, bytes], secret: bytes) -> None:
    """Write the record of a sheet generated with a cache key, whose files now hold `data` (worksheet, key, JSON)."""
    record = {
        "format": CACHE_FORMAT, "version": CACHE_VERSION, "key": sheet.cache_key,
        "files": [hashlib.sha256(d).hexdigest() for d in data],
        "variant": sheet.variant, "givens": list(sheet.givens),
        "grading": [[p.heading, p.groups, list(p.rows)] for p in sheet.grading],
    }
    record["seal"] = _seal(record, secret)
    path = _record_path(out, sheet.student)
    path.parent.mkdir(exist_ok=True)
    atomic_write(path, (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))
