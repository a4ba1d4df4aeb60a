"""What the web page reads and writes in its database: one method per operation, each in its own transaction."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update

from generator.web.db import Database
from generator.web.rawsql import RawStatements, dbapi_cursor
from generator.web.models import (ID_LENGTH, LABEL_LENGTH, NAME_LENGTH, SOURCE_LENGTH, TEXT_LENGTH, Answer, Attempt,
                                  Setting, SignInAttempt, Student)

MAX_TEXT = TEXT_LENGTH  # characters in one answer
MAX_LABELS = 2000  # blanks in one save or attempt
MODES = ("practice", "exam")
DEFAULT_MODE = "practice"
SIGN_IN_KEPT = timedelta(days=1)  # sign-in attempts older than this are deleted as new ones are recorded
_CHUNK = 500  # labels per IN (...) list: SQLite builds before 3.32 accept 999 parameters


# The statements of the page's frequent requests (every save, every Check, every page), built once: SQLAlchemy then
# finds each one's compiled form in its cache at once, and no ORM object is loaded or flushed for them. A save's own
# statements go further: compiled once per dialect and run on the DBAPI cursor of the transaction (rawsql), which
# took a save of one box from 0.67 ms of CPU to 0.47 ms (most of the rest is the commit).
_STUDENTS, _ANSWERS, _ATTEMPTS = Student.__table__, Answer.__table__, Attempt.__table__
_SUBMITTED_AT = select(_STUDENTS.c.submitted_at).where(_STUDENTS.c.id == bindparam("student"))
_SETTINGS = select(Setting.__table__.c.key, Setting.__table__.c.value)
_RAW = RawStatements(
    submitted_at_locked=_SUBMITTED_AT.with_for_update(),  # FOR UPDATE on PostgreSQL; SQLite's write lock suffices
    settings=_SETTINGS,
    saved=select(_ANSWERS.c.label, _ANSWERS.c.text, _ANSWERS.c.revision).where(
        _ANSWERS.c.student_id == bindparam("student")),
    insert_answer=(insert(_ANSWERS), ("student_id", "label", "text", "saved_at", "revision")),
    update_answer=update(_ANSWERS).where(_ANSWERS.c.student_id == bindparam("student"),
                                         _ANSWERS.c.label == bindparam("old_label")).values(
        text=bindparam("new_text"), saved_at=bindparam("now"), revision=bindparam("new_revision")),
    last_saved=update(_STUDENTS).where(_STUDENTS.c.id == bindparam("student")).values(last_saved_at=bindparam("now")),
    # A Check's: what it reads, and the attempt it keeps.
    submitted_at=_SUBMITTED_AT,
    answers_of=select(_ANSWERS.c.label, _ANSWERS.c.text).where(_ANSWERS.c.student_id == bindparam("student"))
    .order_by(_ANSWERS.c.label),
    insert_attempt=(insert(_ATTEMPTS).returning(_ATTEMPTS.c.id), ("student_id", "created_at", "answers", "marks")),
)
_ANSWERS_OF = select(_ANSWERS.c.label, _ANSWERS.c.text).where(_ANSWERS.c.student_id == bindparam("student")) \
    .order_by(_ANSWERS.c.label)
_INSERT_ATTEMPT = insert(_ATTEMPTS)


class UnknownStudent(LookupError):
    """A student id that is not in the database (ensure_students adds the roster's)."""


class AlreadySubmitted(RuntimeError):
    """A save refused because the student has submitted (save_answers with refuse_if_submitted=True)."""


class SavingClosed(RuntimeError):
    """A save refused by save_answers' closed_by rule, read in the save's own transaction; the message says why."""


class Record:
    """A dataclass whose fields read as attributes or as items: row.id or row["id"], row.get("id")."""

    def __getitem__(self, key: str) -> Any:
        if key not in self.__dataclass_fields__:
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        """The field's value, or default for a name that is no field."""
        return getattr(self, key) if key in self.__dataclass_fields__ else default

    def keys(self):
        """The field names."""
        return self.__dataclass_fields__.keys()


@dataclass(frozen=True)
class AttemptRecord(Record):
    """One practice Check as kept: its id, when, the answers checked and what the marker said."""

    id: int
    created_at: datetime
    answers: dict[str, str]
    marks: Any


@dataclass(frozen=True)
class StudentRow(Record):
    """One line of the teacher's overview; answers counts the non-empty ones."""

    id: str
    name: str
    first_opened_at: datetime | None
    last_saved_at: datetime | None
    submitted_at: datetime | None
    reopened_at: datetime | None
    answers: int


def utc_now() -> datetime:
    """The current moment, in UTC."""
    return datetime.now(timezone.utc)


class Store:
    """The web page's operations on its database. Times are aware datetimes in UTC; now is injectable for tests."""

    def __init__(self, db: Database, now: Callable[[], datetime] = utc_now):
        self.db = db
        self.now = now

    # Students.

    def ensure_students(self, roster: Iterable[tuple[str, str]]) -> int:
        """Add the roster's students not yet in the database and update changed names; returns how many were added.
        Students no longer on the roster are kept, with their answers."""
        wanted: dict[str, str] = {}
        for student_id, name in roster:
            _check_id(student_id)
            if not isinstance(name, str) or len(name) > NAME_LENGTH or "\0" in name:
                raise ValueError(f"student {student_id!r}: the name must be text of at most {NAME_LENGTH} characters")
            wanted[student_id] = name
        added = 0
        with self.db.write() as session:
            ids = list(wanted)
            known: dict[str, Student] = {}
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start:start + _CHUNK]
                known.update((s.id, s) for s in session.scalars(select(Student).where(Student.id.in_(chunk))))
            for student_id, name in wanted.items():
                student = known.get(student_id)
                if student is None:
                    session.add(Student(id=student_id, name=name))
                    added += 1
                elif student.name != name:
                    student.name = name
        return added

    def mark_opened(self, student_id: str) -> datetime:
        """Note the first time the student opened the page; returns that moment (unchanged on later calls)."""
        with self.db.write() as session:
            student = _student(session, student_id)
            if student.first_opened_at is None:
                student.first_opened_at = self.now()
            return student.first_opened_at

    def submit(self, student_id: str) -> datetime:
        """Mark the student's answers as handed in; returns the moment (the first one, if already submitted)."""
        with self.db.write() as session:
            student = _student(session, student_id)
            if student.submitted_at is None:
                student.submitted_at = self.now()
            return student.submitted_at

    def reopen(self, student_id: str) -> datetime:
        """Let a student who submitted change their answers again (the teacher's decision); returns the moment."""
        with self.db.write() as session:
            student = _student(session, student_id)
            student.submitted_at = None
            student.reopened_at = self.now()
            return student.reopened_at

    def student(self, student_id: str) -> StudentRow:
        """One student's line of the overview."""
        with self.db.read() as session:
            student = _student(session, student_id, lock=False)
            count = session.scalar(select(func.count()).select_from(Answer)
                                   .where(Answer.student_id == student_id, Answer.text != ""))
            return _row(student, count or 0)

    def students_overview(self) -> list[StudentRow]:
        """Every student in id order: opened, last saved, submitted, reopened and how many non-empty answers."""
        with self.db.read() as session:
            counts = dict(session.execute(select(Answer.student_id, func.count()).where(Answer.text != "")
                                          .group_by(Answer.student_id)).all())
            students = session.scalars(select(Student).order_by(Student.id)).all()
            return [_row(s, counts.get(s.id, 0)) for s in students]

    # Answers.

    def save_answers(self, student_id: str, answers: Mapping[str, str], *, refuse_if_submitted: bool = False,
                     closed_by: Callable[[dict[str, str], datetime | None], str | None] | None = None) -> dict:
        """Store the typed answers (an upsert per label): a changed text gets revision + 1 and a new saved_at, the
        same text again changes nothing. Returns {"saved_at": ISO text (UTC) of this acknowledgement, "revisions":
        {label: revision after it} for every label sent, "changed": [labels whose text changed]}, JSON-ready.
        ValueError for more than MAX_LABELS labels or an answer over MAX_TEXT characters; AlreadySubmitted if asked
        to refuse a student who has submitted. closed_by(settings, submitted_at), when given, is asked inside the
        save's transaction (so a release or a deadline set meanwhile cannot slip past it) and refuses the save with
        SavingClosed(its reason) when it returns one."""
        return self.db.write_shared(self._save_work(student_id, answers, refuse_if_submitted, closed_by))

    async def save_answers_async(self, student_id: str, answers: Mapping[str, str], *,
                                 closed_by: Callable[[dict[str, str], datetime | None], str | None] | None = None
                                 ) -> dict:
        """save_answers for a coroutine on the event loop (the same rules and result), without a thread of the pool."""
        return await self.db.write_shared_async(self._save_work(student_id, answers, False, closed_by))

    def _save_work(self, student_id: str, answers: Mapping[str, str], refuse_if_submitted: bool,
                   closed_by: Callable[[dict[str, str], datetime | None], str | None] | None) -> Callable:
        """The work of one save, for Database.write_shared: the answers checked (ValueError) before it is queued."""
        checked = _check_answers(answers)
        _check_id(student_id)
        now = self.now()

        def save(session) -> dict:
            cursor, dialect = dbapi_cursor(session)
            try:
                return saved(cursor, lambda name: _RAW.get(name, dialect))
            finally:
                cursor.close()

        def saved(cursor, raw) -> dict:
            # The student's row locked first (FOR UPDATE on PostgreSQL): two saves of one student take turns, so
            # neither inserts a label the other has just inserted. SQLite's write lock does this already.
            student = raw("submitted_at_locked").rows(cursor, {"student": student_id})
            if not student:
                raise UnknownStudent(f"no student {student_id!r} in the database")
            submitted_at = student[0][0]
            if refuse_if_submitted and submitted_at is not None:
                raise AlreadySubmitted(f"student {student_id!r} submitted at {submitted_at.isoformat()}")
            if closed_by is not None:
                reason = closed_by(_settings(raw("settings").rows(cursor)), submitted_at)
                if reason:
                    raise SavingClosed(reason)
            # Every saved answer of the student (a few dozen rows): cheaper than a query per label, and no IN list.
            existing = {label: (text, revision) for label, text, revision in
                        raw("saved").rows(cursor, {"student": student_id}) if label in checked}
            revisions: dict[str, int] = {}
            changed: list[str] = []
            inserts: list[dict] = []
            updates: list[dict] = []
            for label, text in checked.items():
                saved = existing.get(label)
                if saved is None:
                    inserts.append({"student_id": student_id, "label": label, "text": text, "saved_at": now,
                                    "revision": 1})
                    revisions[label] = 1
                    changed.append(label)
                elif saved[0] != text:
                    revisions[label] = saved[1] + 1
                    updates.append({"student": student_id, "old_label": label, "new_text": text, "now": now,
                                    "new_revision": revisions[label]})
                    changed.append(label)
                else:
                    revisions[label] = saved[1]
            if inserts:
                raw("insert_answer").execute_many(cursor, inserts)
            if updates:
                raw("update_answer").execute_many(cursor, updates)
            if changed:
                raw("last_saved").execute(cursor, {"student": student_id, "now": now})
            return {"saved_at": now.astimezone(timezone.utc).isoformat(), "revisions": revisions, "changed": changed}

        # Committed with whatever other saves and Checks are waiting for the write lock: one sync of the disk for all.
        return save

    def answers(self, student_id: str) -> dict[str, str]:
        """The student's saved answers by label, as typed (a box emptied after typing is kept as "")."""
        _check_id(student_id)
        with self.db.read() as session:
            if session.execute(_SUBMITTED_AT, {"student": student_id}).first() is None:
                raise UnknownStudent(f"no student {student_id!r} in the database")
            return {label: text for label, text in session.execute(_ANSWERS_OF, {"student": student_id})}

    def answer_revisions(self, student_id: str) -> dict[str, int]:
        """Each saved label's revision, for a page that tells a stale tab from a fresh one."""
        with self.db.read() as session:
            _student(session, student_id, lock=False)
            rows = session.execute(select(Answer.label, Answer.revision).where(Answer.student_id == student_id)).all()
            return {label: revision for label, revision in rows}

    def all_answers(self) -> dict[str, dict[str, str]]:
        """Every student's saved answers, {student_id: {label: text}}, for marks.csv (one consistent snapshot;
        students with no answer are left out, "" answers kept)."""
        result: dict[str, dict[str, str]] = {}
        with self.db.read() as session:
            rows = session.execute(select(Answer.student_id, Answer.label, Answer.text)
                                   .order_by(Answer.student_id, Answer.label))
            for student_id, label, text in rows:
                result.setdefault(student_id, {})[label] = text
        return result

    # Practice attempts.

    def add_attempt(self, student_id: str, answers: Mapping[str, str], marks: Any) -> int:
        """Keep one practice Check: the answers checked and the marker's verdicts (anything JSON can write);
        returns its id."""
        return self.db.write_shared(self._attempt_work(student_id, answers, marks))

    async def add_attempt_async(self, student_id: str, answers: Mapping[str, str], marks: Any) -> int:
        """add_attempt for a coroutine on the event loop, without a thread of the pool."""
        return await self.db.write_shared_async(self._attempt_work(student_id, answers, marks))

    def _attempt_work(self, student_id: str, answers: Mapping[str, str], marks: Any) -> Callable:
        """The work of keeping one Check, for Database.write_shared: everything checked before it is queued."""
        checked = _check_answers(answers)
        try:
            marks_text = json.dumps(marks, ensure_ascii=False, sort_keys=True, allow_nan=False)
        except (TypeError, ValueError) as error:
            raise ValueError(f"the marks cannot be written as JSON ({error})") from None
        _check_id(student_id)
        answers_text = json.dumps(checked, ensure_ascii=False, sort_keys=True)
        now = self.now()

        def add(session) -> int:
            cursor, dialect = dbapi_cursor(session)
            try:
                if not _RAW.get("submitted_at", dialect).rows(cursor, {"student": student_id}):
                    raise UnknownStudent(f"no student {student_id!r} in the database")
                return _RAW.get("insert_attempt", dialect).rows(cursor, {
                    "student_id": student_id, "created_at": now, "answers": answers_text, "marks": marks_text})[0][0]
            finally:
                cursor.close()

        return add

    def check_inputs(self, student_id: str) -> tuple[dict[str, str], dict[str, str]]:
        """What a Check reads, in one snapshot: the settings (as settings() gives them) and the student's answers
        (as answers() gives them)."""
        _check_id(student_id)
        with self.db.read() as session:
            cursor, dialect = dbapi_cursor(session)
            try:
                if not _RAW.get("submitted_at", dialect).rows(cursor, {"student": student_id}):
                    raise UnknownStudent(f"no student {student_id!r} in the database")
                settings = _settings(_RAW.get("settings", dialect).rows(cursor))
                answers = dict(_RAW.get("answers_of", dialect).rows(cursor, {"student": student_id}))
                return settings, answers
            finally:
                cursor.close()

    def attempts(self, student_id: str) -> list[AttemptRecord]:
        """The student's practice Checks, oldest first."""
        with self.db.read() as session:
            _student(session, student_id, lock=False)
            rows = session.scalars(select(Attempt).where(Attempt.student_id == student_id).order_by(Attempt.id))
            return [AttemptRecord(a.id, a.created_at, json.loads(a.answers), json.loads(a.marks)) for a in rows]

    # Settings.

    def settings(self) -> dict[str, str]:
        """{"mode": "practice" (unless set) or "exam", "deadline": ISO text or "", "released_at": ISO text or ""}."""
        with self.db.read() as session:
            return _settings(session.execute(_SETTINGS).all())

    def set_settings(self, *, mode: str | None = None, deadline: str | datetime | None = None,
                     released_at: str | datetime | None = None) -> None:
        """Change the settings given (None: leave as is). mode: practice (marked at each Check) or exam (kept until
        marks are released); deadline and released_at: ISO text with a UTC offset, or an aware datetime, or ""
        to clear. Times are stored as ISO text in UTC. ValueError for anything else."""
        values = {}
        if mode is not None:
            if mode not in MODES:
                raise ValueError(f"mode {mode!r}; accepted: {', '.join(MODES)}")
            values["mode"] = mode
        for key, moment in (("deadline", deadline), ("released_at", released_at)):
            if moment is not None:
                values[key] = _iso(moment, key)
        if not values:
            return
        with self.db.write() as session:
            for key, value in values.items():
                setting = session.get(Setting, key, with_for_update=True)
                if setting is None:
                    session.add(Setting(key=key, value=value))
                else:
                    setting.value = value

    def release(self) -> str:
        """Release exam marks to the students now; returns released_at as stored (the first, if already released)."""
        with self.db.write() as session:
            setting = session.get(Setting, "released_at", with_for_update=True)
            if setting is not None and setting.value:
                return setting.value
            value = _iso(self.now(), "released_at")
            if setting is None:
                session.add(Setting(key="released_at", value=value))
            else:
                setting.value = value
            return value

    # Sign-in throttling.

    def record_sign_in(self, source: str, succeeded: bool) -> None:
        """Note one sign-in attempt from source (a client address, or "code-" and a code's prefix); attempts older
        than SIGN_IN_KEPT are deleted on the way."""
        _check_source(source)
        now = self.now()
        with self.db.write() as session:
            session.execute(delete(SignInAttempt).where(SignInAttempt.created_at < now - SIGN_IN_KEPT))
            session.add(SignInAttempt(source=source, created_at=now, succeeded=bool(succeeded)))

    def recent_failures(self, source: str, since: datetime) -> int:
        """How many sign-ins from source failed at or after since."""
        _check_source(source)
        with self.db.read() as session:
            return session.scalar(select(func.count()).select_from(SignInAttempt).where(
                SignInAttempt.source == source, SignInAttempt.created_at >= since,
                SignInAttempt.succeeded.is_(False))) or 0


def _student(session, student_id: str, lock: bool = True) -> Student:
    _check_id(student_id)
    student = session.get(Student, student_id, with_for_update=lock or None)
    if student is None:
        raise UnknownStudent(f"no student {student_id!r} in the database")
    return student


def _row(student: Student, answers: int) -> StudentRow:
    return StudentRow(student.id, student.name, student.first_opened_at, student.last_saved_at, student.submitted_at,
                      student.reopened_at, answers)


def _check_id(student_id: str) -> None:
    if not isinstance(student_id, str) or not student_id or len(student_id) > ID_LENGTH or "\0" in student_id:
        raise ValueError(f"student id {str(student_id)[:80]!r}; accepted: 1 to {ID_LENGTH} characters")


def _check_answers(answers: Mapping[str, str]) -> dict[str, str]:
    """The answers as a plain dict, each label and text checked: bounded, text, storable by both databases."""
    if not isinstance(answers, Mapping):
        raise ValueError("answers must be a mapping of label to text")
    if len(answers) > MAX_LABELS:
        raise ValueError(f"{len(answers)} answers in one request; accepted: at most {MAX_LABELS}")
    checked: dict[str, str] = {}
    for label, text in answers.items():
        if not isinstance(label, str) or not label or len(label) > LABEL_LENGTH or not _storable(label):
            raise ValueError(f"blank label {str(label)[:80]!r}; accepted: 1 to {LABEL_LENGTH} characters of text")
        if not isinstance(text, str):
            raise ValueError(f"blank {label!r}: the answer must be text, not {type(text).__name__}")
        if len(text) > MAX_TEXT:
            raise ValueError(f"blank {label!r}: the answer is {len(text)} characters long; "
                             f"accepted: at most {MAX_TEXT}")
        if not _storable(text):
            raise ValueError(f"blank {label!r}: the answer holds a NUL or an unpaired surrogate character")
        checked[label] = text
    return checked


def _storable(text: str) -> bool:
    """Text both databases keep as given: PostgreSQL refuses NUL, and neither encodes a lone surrogate."""
    if "\0" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_source(source: str) -> None:
    if not isinstance(source, str) or not source or len(source) > SOURCE_LENGTH or not _storable(source):
        raise ValueError(f"sign-in source {str(source)[:80]!r}; accepted: 1 to {SOURCE_LENGTH} characters")


def _iso(moment: str | datetime, what: str) -> str:
    """A moment as ISO text in UTC ("" stays ""): from an aware datetime or ISO text with an offset."""
    if isinstance(moment, str):
        if not moment.strip():
            return ""
        try:
            moment = datetime.fromisoformat(moment.strip())
        except ValueError:
            raise ValueError(f"{what}: {moment[:40]!r} is not an ISO date and time; accepted: "
                             "2026-03-02T17:00:00+01:00, or empty") from None
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        raise ValueError(f"{what}: {str(moment)[:40]!r} has no UTC offset; accepted: an ISO date and time with an "
                         "offset (2026-03-02T17:00:00+01:00, or Z), an aware datetime, or empty")
    return moment.astimezone(timezone.utc).isoformat()


def _settings(rows) -> dict[str, str]:
    """The settings table's (key, value) rows, every setting present (its default when unset)."""
    values = dict(rows)
    return {"mode": values.get("mode") or DEFAULT_MODE, "deadline": values.get("deadline", ""),
            "released_at": values.get("released_at", "")}
