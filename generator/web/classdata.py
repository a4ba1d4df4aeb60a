"""A class folder as the web page reads it: the students, each one's key (to mark) and sheet (to show)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from generator.documents.sheet import ProblemSpec, Sheet, SheetSpec, build
from generator.marking.markkey import SheetKey
from generator.classes.classbuild import MANIFEST, STUDENTS_DIR
from generator.marking.markrun import MarkingError, Roster, class_roster


class ClassFolderError(ValueError):
    """A class folder the page cannot serve; the message says which file and why, in one line."""


@dataclass(frozen=True)
class ClassStudent:
    """One student of the class as the page shows them."""

    id: str
    name: str
    variant: str
    stem: str


class ClassFolder:
    """The class folder that `transformer-worksheets class` wrote, read once; keys and sheets read on first use."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        try:
            self.roster: Roster = class_roster(self.folder)
        except MarkingError as error:
            raise ClassFolderError(str(error)) from error
        manifest = json.loads((self.folder / MANIFEST).read_text(encoding="utf-8"))
        self.assignment: dict = manifest["assignment"]
        self.name: str = self.assignment["name"]
        self.title: str = self.assignment.get("title", self.name)
        self.students: dict[str, ClassStudent] = {
            s["id"]: ClassStudent(s["id"], s.get("name", ""), s["variant"], s["stem"]) for s in manifest["students"]}
        self._key_data = lru_cache(maxsize=None)(self._read_key_data)
        self._sheet = lru_cache(maxsize=64)(self._build_sheet)
        self._blanks = lru_cache(maxsize=None)(self._read_blanks)

    def _read_key_data(self, student_id: str) -> dict:
        """The student's JSON key as written in the folder (teacher-side: never sent to a browser)."""
        path = self.folder / STUDENTS_DIR / f"{self.students[student_id].stem}-key.json"
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise ClassFolderError(f"{path}: not readable ({error}); rebuild the class folder with "
                                   "`transformer-worksheets class`") from error

    def key(self, student_id: str) -> SheetKey:
        """The student's key, for marking."""
        return self.roster.key_for(student_id)

    def _build_sheet(self, student_id: str) -> Sheet:
        """The student's sheet rebuilt from their key's spec: the same numbers as their paper, checked by variant."""
        data = self._read_key_data(student_id)
        problems = tuple(ProblemSpec(p["type"], dict(p["options"]), tuple(p.get("given_parts", ())))
                         for p in data["problems"])
        sheet = build(SheetSpec(title=data["title"], seed=data["seed"], problems=problems, paper=data["paper"],
                                calculator=data["calculator"]))
        if sheet.variant != data["variant"]:
            raise ClassFolderError(f"student {student_id}: the sheet rebuilt from the key is variant {sheet.variant}, "
                                   f"not {data['variant']} (built with another version of the generator?)")
        return sheet

    def sheet(self, student_id: str) -> Sheet:
        """The student's sheet (statements, givens, blanks), as printed on their paper."""
        return self._sheet(student_id)

    def blanks(self, student_id: str) -> dict:
        """The student's blanks by label (read once per student: every save looks its labels up here)."""
        return self._blanks(student_id)

    def _read_blanks(self, student_id: str) -> dict:
        return {blank.label: blank for blank in self.key(student_id).blanks}

    def labels(self, student_id: str):
        """Every blank label of the student's sheet: the only labels their answers may use."""
        return self.blanks(student_id).keys()

    def key_values(self, student_id: str) -> list[str]:
        """Every value of the student's key as the key writes it (tests scan responses for these)."""
        return [blank.text for blank in self.key(student_id).blanks] + [
            blank.table_value for blank in self.key(student_id).blanks if blank.table_value]

