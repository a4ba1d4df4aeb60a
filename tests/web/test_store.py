"""The web page's data layer: every Store operation on SQLite and PostgreSQL, migrations, concurrency, durability."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from generator.web.db import (DatabaseError, alembic_config, current_revision, default_url, head_revision,
                              open_database, parse_url)
from generator.web.models import Base
from generator.web.store import MAX_LABELS, MAX_TEXT, AlreadySubmitted, SavingClosed, Store, UnknownStudent
from tests.conftest import key_json

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime = T0):
        self.moment = start

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, **kwargs) -> datetime:
        self.moment += timedelta(**kwargs)
        return self.moment


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def timed(database, clock):
    """A Store on each backend whose clock the test moves, with two students."""
    store = Store(database, now=clock)
    store.ensure_students([("s1", "Ada Lovelace"), ("s2", "Émile Borel")])
    return store


# Students.

def test_ensure_students_adds_renames_and_keeps(store):
    assert store.ensure_students([("s1", "Ada"), ("s2", "Bo")]) == 2
    assert store.ensure_students([("s1", "Ada"), ("s2", "Bob"), ("s3", "Cy")]) == 1
    assert store.ensure_students([("s1", "Ada")]) == 0  # s2 and s3 left the roster: kept, with their answers
    assert [(r.id, r.name) for r in store.students_overview()] == [("s1", "Ada"), ("s2", "Bob"), ("s3", "Cy")]
    with pytest.raises(ValueError):
        store.ensure_students([("", "nobody")])
    with pytest.raises(ValueError):
        store.ensure_students([("x" * 65, "too long an id")])


def test_ensure_students_takes_a_large_roster(store):
    roster = [(f"s{i:04d}", f"Student {i}") for i in range(1200)]
    assert store.ensure_students(roster) == 1200
    assert store.ensure_students(roster) == 0
    assert len(store.students_overview()) == 1200


def test_mark_opened_keeps_the_first_moment(timed, clock):
    assert timed.mark_opened("s1") == T0
    clock.advance(hours=1)
    assert timed.mark_opened("s1") == T0
    assert timed.student("s1").first_opened_at == T0
    assert timed.student("s2").first_opened_at is None
    with pytest.raises(UnknownStudent):
        timed.mark_opened("nobody")


def test_submit_and_reopen(timed, clock):
    assert timed.submit("s1") == T0
    clock.advance(minutes=5)
    assert timed.submit("s1") == T0  # the first hand-in counts
    row = timed.student("s1")
    assert row.submitted_at == T0 and row.reopened_at is None
    later = clock.advance(minutes=5)
    assert timed.reopen("s1") == later
    row = timed.student("s1")
    assert row.submitted_at is None and row.reopened_at == later
    again = clock.advance(minutes=5)
    assert timed.submit("s1") == again
    with pytest.raises(UnknownStudent):
        timed.submit("nobody")
    with pytest.raises(UnknownStudent):
        timed.reopen("nobody")


# Answers.

def test_save_answers_is_an_upsert_with_revisions(timed, clock):
    saved = timed.save_answers("s1", {"1a C[0,0]": "9", "1a C[0,1]": "-3/4"})
    assert saved == {"saved_at": "2026-03-01T09:00:00+00:00", "revisions": {"1a C[0,0]": 1, "1a C[0,1]": 1},
                     "changed": ["1a C[0,0]", "1a C[0,1]"]}
    assert json.loads(json.dumps(saved)) == saved  # JSON-ready, for the browser

    clock.advance(seconds=30)
    saved = timed.save_answers("s1", {"1a C[0,0]": "9", "1a C[0,1]": "-0.75", "2c L": "log(6)"})
    assert saved["revisions"] == {"1a C[0,0]": 1, "1a C[0,1]": 2, "2c L": 1}
    assert set(saved["changed"]) == {"1a C[0,1]", "2c L"}
    assert timed.answers("s1") == {"1a C[0,0]": "9", "1a C[0,1]": "-0.75", "2c L": "log(6)"}
    assert timed.answer_revisions("s1") == {"1a C[0,0]": 1, "1a C[0,1]": 2, "2c L": 1}
    assert timed.student("s1").last_saved_at == T0 + timedelta(seconds=30)


def test_saving_the_same_text_twice_changes_nothing(timed, clock):
    timed.save_answers("s1", {"1a x": "1/2"})
    clock.advance(minutes=1)
    saved = timed.save_answers("s1", {"1a x": "1/2"})
    assert saved["revisions"] == {"1a x": 1} and saved["changed"] == []
    assert saved["saved_at"] == (T0 + timedelta(minutes=1)).isoformat()  # the acknowledgement's moment
    assert timed.student("s1").last_saved_at == T0  # but nothing was saved then
    clock.advance(minutes=1)
    # Stored as typed: a space is a change.
    assert timed.save_answers("s1", {"1a x": " 1/2"})["revisions"] == {"1a x": 2}


def test_an_emptied_box_is_kept_as_empty_text(timed):
    timed.save_answers("s1", {"1a x": "3", "1a y": "4"})
    assert timed.save_answers("s1", {"1a x": ""})["revisions"] == {"1a x": 2}
    assert timed.answers("s1") == {"1a x": "", "1a y": "4"}
    assert timed.student("s1").answers == 1  # the overview counts non-empty answers


def test_answers_are_stored_as_typed(timed):
    typed = {"1a C[0,0]": "−3⁄4", "1b choice": "B", "1c L": "  ln(6) − 2 ", "1d q": "½·𝜋 🙂",
             "1e r": "a\tb\nc"}
    timed.save_answers("s1", typed)
    assert timed.answers("s1") == typed
    assert timed.answers("s2") == {}


def test_save_limits(timed):
    timed.save_answers("s1", {"1a x": "7" * MAX_TEXT})  # 200 characters: accepted
    with pytest.raises(ValueError, match="201 characters"):
        timed.save_answers("s1", {"1a x": "7" * (MAX_TEXT + 1)})
    timed.save_answers("s1", {f"1a C[{i},0]": str(i) for i in range(MAX_LABELS)})  # 2,000 labels: accepted
    with pytest.raises(ValueError, match="2001 answers"):
        timed.save_answers("s1", {f"1a C[{i},0]": str(i) for i in range(MAX_LABELS + 1)})
    for bad in ({"": "1"}, {"x" * 101: "1"}, {"1a x": 3}, {"1a x": None}, {"1a x": "a\0b"}, {"1a x": "\ud800"},
                {3: "1"}):
        with pytest.raises(ValueError):
            timed.save_answers("s1", bad)
    with pytest.raises(ValueError):
        timed.save_answers("s1", ["1a x", "1"])
    # A refused request saves nothing of itself.
    assert timed.answers("s1")["1a x"] == "7" * MAX_TEXT
    assert len(timed.answers("s1")) == MAX_LABELS + 1


def test_save_for_an_unknown_student(timed):
    with pytest.raises(UnknownStudent):
        timed.save_answers("nobody", {"1a x": "1"})
    with pytest.raises(UnknownStudent):
        timed.answers("nobody")


def test_save_refused_after_submitting_when_asked(timed):
    timed.save_answers("s1", {"1a x": "1"}, refuse_if_submitted=True)
    timed.submit("s1")
    with pytest.raises(AlreadySubmitted):
        timed.save_answers("s1", {"1a x": "2"}, refuse_if_submitted=True)
    assert timed.answers("s1") == {"1a x": "1"}
    assert timed.save_answers("s1", {"1a x": "2"})["revisions"] == {"1a x": 2}  # the default: the web layer decides
    timed.reopen("s1")
    assert timed.save_answers("s1", {"1a x": "3"}, refuse_if_submitted=True)["revisions"] == {"1a x": 3}


def test_a_closing_rule_sees_the_settings_and_submission_inside_the_save(timed, clock):
    seen = []

    def closed_once_released(settings, submitted_at):
        seen.append((settings, submitted_at))
        return "released" if settings["released_at"] else ("submitted" if submitted_at else None)

    assert timed.save_answers("s1", {"1a x": "1"}, closed_by=closed_once_released)["revisions"] == {"1a x": 1}
    assert seen[-1] == ({"mode": "practice", "deadline": "", "released_at": ""}, None)
    timed.submit("s1")
    with pytest.raises(SavingClosed, match="submitted"):
        timed.save_answers("s1", {"1a x": "2"}, closed_by=closed_once_released)
    timed.set_settings(mode="exam", released_at=clock())
    with pytest.raises(SavingClosed, match="released"):
        timed.save_answers("s2", {"1a x": "2"}, closed_by=closed_once_released)
    assert seen[-1][0]["mode"] == "exam" and seen[-1][0]["released_at"]
    assert timed.answers("s1") == {"1a x": "1"} and timed.answers("s2") == {}  # nothing of a refused save is kept


def test_every_label_of_a_real_key_round_trips(timed):
    """The labels are the key's JSON labels, as the marker and answers files use them: '1a C[0,1]', '2c L'."""
    key = key_json(["matmul", "cross_entropy", "attention_scores"], seed=5)
    labels = [b["label"] for p in key["problems"] for b in p["blanks"]]
    assert all(re.fullmatch(r"\d+[a-z]+ \S+(\[\d+,\d+\])?", label) for label in labels), labels
    typed = {label: f"{i}/7" for i, label in enumerate(labels)}
    timed.save_answers("s2", typed)
    assert timed.answers("s2") == typed


def test_all_answers_and_the_overview(timed, clock):
    timed.ensure_students([("s3", "Cy")])
    timed.save_answers("s1", {"1a x": "1", "1b y": "2"})
    clock.advance(minutes=2)
    timed.save_answers("s2", {"1a x": "5", "1b y": ""})
    timed.mark_opened("s3")
    assert timed.all_answers() == {"s1": {"1a x": "1", "1b y": "2"}, "s2": {"1a x": "5", "1b y": ""}}
    rows = {r.id: r for r in timed.students_overview()}
    assert [r.id for r in timed.students_overview()] == ["s1", "s2", "s3"]
    assert (rows["s1"].answers, rows["s2"].answers, rows["s3"].answers) == (2, 1, 0)
    assert rows["s1"].last_saved_at == T0 and rows["s2"].last_saved_at == T0 + timedelta(minutes=2)
    assert rows["s3"].first_opened_at == T0 + timedelta(minutes=2) and rows["s3"].last_saved_at is None
    assert rows["s2"].name == "Émile Borel"


# Practice attempts.

def test_attempts_are_kept_in_order(timed, clock):
    marks = {"1a x": {"verdict": "right", "points": "1"}, "1b y": {"verdict": "wrong", "points": "0"}}
    first = timed.add_attempt("s1", {"1a x": "1", "1b y": "3"}, marks)
    clock.advance(minutes=1)
    second = timed.add_attempt("s1", {"1a x": "1", "1b y": "2"}, {"1a x": "right", "1b y": "right", "total": 2.5})
    timed.add_attempt("s2", {}, [])
    assert second > first
    kept = timed.attempts("s1")
    assert [a.id for a in kept] == [first, second]
    assert kept[0].created_at == T0 and kept[1].created_at == T0 + timedelta(minutes=1)
    assert kept[0].answers == {"1a x": "1", "1b y": "3"} and kept[0].marks == marks
    assert kept[1].marks["total"] == 2.5
    assert [a.marks for a in timed.attempts("s2")] == [[]]
    with pytest.raises(ValueError):
        timed.add_attempt("s1", {"1a x": "1"}, {"bad": object()})
    with pytest.raises(ValueError):
        timed.add_attempt("s1", {"1a x": "1" * (MAX_TEXT + 1)}, {})
    with pytest.raises(UnknownStudent):
        timed.add_attempt("nobody", {}, {})
    assert len(timed.attempts("s1")) == 2


def test_a_check_reads_the_settings_and_answers_in_one_go_and_keeps_its_attempt_from_the_loop(timed, clock):
    import asyncio

    timed.save_answers("s1", {"1b y": "3", "1a x": "-1/2", "1c z": ""})
    timed.set_settings(mode="exam", deadline="2026-03-02T17:00:00+02:00")
    assert timed.check_inputs("s1") == (timed.settings(), timed.answers("s1"))
    assert list(timed.check_inputs("s1")[1]) == ["1a x", "1b y", "1c z"]  # in label order, as answers() gives them
    assert timed.check_inputs("s2") == (timed.settings(), {})
    with pytest.raises(UnknownStudent):
        timed.check_inputs("nobody")
    first = timed.add_attempt("s1", {"1a x": "1"}, {"1a x": "right"})
    second = asyncio.run(timed.add_attempt_async("s1", {"1a x": "2"}, {"1a x": "wrong"}))
    assert second > first
    assert [(a.id, a.answers, a.marks) for a in timed.attempts("s1")] == [
        (first, {"1a x": "1"}, {"1a x": "right"}), (second, {"1a x": "2"}, {"1a x": "wrong"})]
    with pytest.raises(UnknownStudent):
        asyncio.run(timed.add_attempt_async("nobody", {}, {}))


# Settings.

def test_settings(timed, clock):
    assert timed.settings() == {"mode": "practice", "deadline": "", "released_at": ""}
    timed.set_settings(mode="exam", deadline="2026-03-02T17:00:00+02:00")
    assert timed.settings() == {"mode": "exam", "deadline": "2026-03-02T15:00:00+00:00", "released_at": ""}
    timed.set_settings(deadline=datetime(2026, 3, 3, 8, 0, tzinfo=timezone.utc))  # the mode stays
    assert timed.settings()["deadline"] == "2026-03-03T08:00:00+00:00" and timed.settings()["mode"] == "exam"
    timed.set_settings(deadline="2026-03-04T08:00Z")
    assert timed.settings()["deadline"] == "2026-03-04T08:00:00+00:00"
    for bad in (dict(mode="quiz"), dict(deadline="2026-03-02 17:00"), dict(deadline="tomorrow"),
                dict(deadline=datetime(2026, 3, 2, 17, 0)), dict(released_at="soon")):
        with pytest.raises(ValueError):
            timed.set_settings(**bad)  # a naive time: which timezone?
    assert timed.settings()["deadline"] == "2026-03-04T08:00:00+00:00"  # nothing of a refused call is kept
    timed.set_settings(deadline="")
    assert timed.settings()["deadline"] == ""

    assert timed.release() == T0.isoformat()
    clock.advance(hours=1)
    assert timed.release() == T0.isoformat()  # released once
    assert timed.settings()["released_at"] == T0.isoformat()
    timed.set_settings(released_at="")  # withdrawn
    assert timed.settings()["released_at"] == ""
    assert timed.release() == (T0 + timedelta(hours=1)).isoformat()
    assert timed.settings()["mode"] == "exam"


def test_rows_read_as_attributes_or_items(timed):
    timed.save_answers("s1", {"1a x": "1"})
    timed.add_attempt("s1", {"1a x": "1"}, {"1a x": "right"})
    row = timed.student("s1")
    assert row["id"] == row.id == "s1" and row.get("answers") == 1 and row.get("nothing", 7) == 7
    assert set(row.keys()) == {"id", "name", "first_opened_at", "last_saved_at", "submitted_at", "reopened_at",
                               "answers"}
    assert timed.students_overview()[1]["name"] == "Émile Borel"
    assert timed.attempts("s1")[0]["marks"] == {"1a x": "right"}
    with pytest.raises(KeyError):
        row["nothing"]


# Sign-in throttling.

def test_sign_in_throttling(timed, clock):
    for _ in range(3):
        timed.record_sign_in("203.0.113.7", False)
        clock.advance(minutes=1)
    timed.record_sign_in("203.0.113.7", True)
    timed.record_sign_in("code-4HYL", False)
    assert timed.recent_failures("203.0.113.7", T0) == 3
    assert timed.recent_failures("203.0.113.7", T0 + timedelta(minutes=1)) == 2
    assert timed.recent_failures("203.0.113.7", clock() + timedelta(seconds=1)) == 0
    assert timed.recent_failures("code-4HYL", T0) == 1
    assert timed.recent_failures("2001:db8::1", T0) == 0
    with pytest.raises(ValueError):
        timed.record_sign_in("", False)
    with pytest.raises(ValueError):
        timed.record_sign_in("x" * 201, False)
    # A day later the old attempts are deleted as new ones come in.
    clock.advance(days=1, minutes=5)
    timed.record_sign_in("198.51.100.1", False)
    assert timed.recent_failures("203.0.113.7", T0 - timedelta(days=30)) == 0
    assert timed.recent_failures("198.51.100.1", T0) == 1
    with timed.db.read() as session:
        assert session.execute(text("SELECT count(*) FROM sign_in_attempts")).scalar() == 1


def test_times_are_utc_and_aware(database):
    offset = timezone(timedelta(hours=-5))
    store = Store(database, now=lambda: datetime(2026, 3, 1, 4, 0, 0, 123456, tzinfo=offset))
    store.ensure_students([("s1", "A")])
    store.save_answers("s1", {"1a x": "1"})
    row = store.student("s1")
    assert row.last_saved_at == datetime(2026, 3, 1, 9, 0, 0, 123456, tzinfo=timezone.utc)
    assert row.last_saved_at.utcoffset() == timedelta(0)


# Concurrency.

def test_eight_threads_save_different_students_at_once(database):
    """Eight students saving at once: every save lands, none is lost, none fails with 'database is locked'."""
    store = Store(database)
    students = [f"s{i}" for i in range(8)]
    store.ensure_students([(s, s.upper()) for s in students])
    saves = 40
    start = threading.Barrier(len(students))

    def work(student_id: str) -> list[int]:
        start.wait()
        revisions = []
        for n in range(saves):
            saved = store.save_answers(student_id, {"1a x": f"{student_id}-{n}", f"2b C[{n},0]": str(n)})
            revisions.append(saved["revisions"]["1a x"])
            if n % 10 == 0:
                store.answers(student_id)  # readers interleaved with the writers
        return revisions

    with ThreadPoolExecutor(len(students)) as pool:
        results = dict(zip(students, pool.map(work, students)))  # re-raises any thread's exception
    for student_id in students:
        assert results[student_id] == list(range(1, saves + 1))
        answers = store.answers(student_id)
        assert answers["1a x"] == f"{student_id}-{saves - 1}"
        assert all(answers[f"2b C[{n},0]"] == str(n) for n in range(saves))
        assert len(answers) == saves + 1


def test_two_tabs_of_one_student_save_at_once(database):
    """Two saves of one student at once take turns: each new label is inserted once, revisions count every change."""
    store = Store(database)
    store.ensure_students([("s1", "A")])
    start = threading.Barrier(2)

    def work(tab: int) -> None:
        start.wait()
        for n in range(30):
            store.save_answers("s1", {f"1a C[{n},0]": str(n), "1b x": f"{tab}-{n}"})

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(work, [0, 1]))
    revisions = store.answer_revisions("s1")
    assert all(revisions[f"1a C[{n},0]"] == 1 for n in range(30))
    assert revisions["1b x"] == 60


# Migrations.

def test_a_fresh_database_reaches_head(database):
    assert current_revision(database) == head_revision()
    with database.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1


def test_opening_twice_is_a_no_op(db_url):
    first = open_database(db_url)
    Store(first).ensure_students([("s1", "A")])
    Store(first).save_answers("s1", {"1a x": "1"})
    second = open_database(db_url)
    try:
        assert current_revision(second) == head_revision()
        assert Store(second).answers("s1") == {"1a x": "1"}
        assert Store(second).answer_revisions("s1") == {"1a x": 1}
    finally:
        first.close()
        second.close()


def test_the_migrated_schema_equals_the_models(database):
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True, "compare_server_default": True})
        assert compare_metadata(context, Base.metadata) == []


def test_downgrade_to_nothing_and_back(database):
    with database.engine.connect() as connection:
        with connection.begin():
            command.downgrade(alembic_config(connection=connection), "base")
        with connection.begin():
            assert MigrationContext.configure(connection).get_current_revision() is None
    database.close()
    again = open_database(database.url)
    try:
        assert current_revision(again) == head_revision()
    finally:
        again.close()


def test_a_database_from_a_newer_version_is_refused(database):
    with database.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    database.close()
    with pytest.raises(DatabaseError, match="newer version") as raised:
        open_database(database.url)
    assert "\n" not in str(raised.value)


_OPEN = """
import sys
from generator.web.db import open_database, current_revision
from generator.web.store import Store
db = open_database(sys.argv[1])
Store(db).ensure_students([("s" + sys.argv[2], "x")])
print(current_revision(db))
"""


def test_processes_starting_at_once_migrate_once(db_url):
    """Four servers started together on a new database: each finds it at head, none fails."""
    processes = [subprocess.Popen([sys.executable, "-c", _OPEN, db_url, str(i)], cwd=ROOT, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=_env()) for i in range(4)]
    outputs = [p.communicate(timeout=120) for p in processes]
    for process, (out, err) in zip(processes, outputs):
        assert process.returncode == 0, err
        assert out.strip() == head_revision()
    db = open_database(db_url)
    try:
        assert [r.id for r in Store(db).students_overview()] == ["s0", "s1", "s2", "s3"]
    finally:
        db.close()


# SQLite specifics.

def test_every_sqlite_connection_is_set_up(tmp_path):
    db = open_database(default_url(tmp_path))
    try:
        connections = [db.engine.connect() for _ in range(3)]  # three pooled connections, each set up on connect
        for connection in connections:
            pragma = lambda name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()  # noqa: E731
            assert pragma("journal_mode") == "wal"
            assert pragma("synchronous") == 2  # FULL
            assert pragma("foreign_keys") == 1
            assert pragma("busy_timeout") == 5000
        for connection in connections:
            connection.close()
    finally:
        db.close()
    assert (tmp_path / "answers.sqlite3").is_file()


def test_the_default_url_is_the_class_folders_file(tmp_path):
    folder = tmp_path / "class 7 % ?#é"
    folder.mkdir()
    url = default_url(folder)
    assert parse_url(url).database == str(folder.resolve() / "answers.sqlite3")
    db = open_database(url)
    db.close()
    assert (folder / "answers.sqlite3").is_file()


def test_foreign_keys_are_enforced(tmp_path):
    db = open_database(default_url(tmp_path))
    try:
        with pytest.raises(Exception, match="FOREIGN KEY"):
            with db.write() as session:
                session.execute(text("INSERT INTO answers (student_id, label, text, saved_at, revision) "
                                     "VALUES ('ghost', '1a x', '1', '2026-01-01 00:00:00', 1)"))
    finally:
        db.close()


@pytest.mark.parametrize("url, says", [
    ("nonsense", "is not a database URL"),
    ("mysql://user@host/db", "'mysql' databases are not supported"),
    ("postgresql+psycopg2://user@host/db", "driver 'psycopg2' is not supported"),
    ("postgresql+psycopg://user@host", "no database name"),
    ("sqlite://", "must live in a file"),
    ("sqlite:///:memory:", "must live in a file"),
    ("sqlite:////no/such/folder/answers.sqlite3", "folder '/no/such/folder' does not exist"),
])
def test_a_bad_url_is_one_clear_line(url, says):
    with pytest.raises(DatabaseError) as raised:
        open_database(url)
    message = str(raised.value)
    assert says in message and "accepted: sqlite:///PATH" in message and "postgresql+psycopg://" in message
    assert "\n" not in message


def test_a_password_is_not_shown():
    with pytest.raises(DatabaseError) as raised:
        parse_url("postgresql+psycopg2://user:s3cret@host/db")
    assert "s3cret" not in str(raised.value)


def test_a_plain_postgresql_url_means_psycopg():
    assert parse_url("postgresql://user@host/db").drivername == "postgresql+psycopg"


# Durability.

_SAVER = """
import sys
from generator.web.db import open_database
from generator.web.store import Store
store = Store(open_database(sys.argv[1]))
store.ensure_students([("s1", "A")])
start = int(sys.argv[2])
for n in range(start, start + 100000):
    store.save_answers("s1", {f"1a C[{n},0]": str(n), "1b last": str(n)})
    print(n, flush=True)  # after the commit returned: a save the browser would be told about
"""


def test_acknowledged_saves_survive_sigkill(tmp_path):
    """A process saving in a loop is killed at a random moment; every save it acknowledged is in the file."""
    url = default_url(tmp_path)
    seed = random.randrange(2**32)
    chooser = random.Random(seed)
    acknowledged: list[int] = []
    for round_ in range(3):
        start = 1_000_000 * round_
        process = subprocess.Popen([sys.executable, "-c", _SAVER, url, str(start)], cwd=ROOT, env=_env(),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wanted = chooser.randint(20, 200)
            seen = 0
            while seen < wanted:
                line = process.stdout.readline()
                assert line, f"the saver stopped early: {process.stderr.read()}"
                seen += 1
            time.sleep(chooser.uniform(0, 0.05))  # the kill lands anywhere: mid-transaction, mid-commit, mid-print
            process.send_signal(signal.SIGKILL)
        finally:
            process.kill()
            out, _ = process.communicate(timeout=30)
        assert process.returncode == -signal.SIGKILL
        # Lines already in the pipe were printed after their commit returned: they count too.
        printed = list(range(start, start + seen)) + [int(line) for line in out.split()]
        assert printed == list(range(start, start + len(printed))), f"seed {seed}"
        acknowledged += printed

        db = open_database(url)
        try:
            answers = Store(db).answers("s1")
        finally:
            db.close()
        missing = [n for n in acknowledged if answers.get(f"1a C[{n},0]") != str(n)]
        assert not missing, f"seed {seed}: acknowledged saves lost: {missing[:10]}"
        assert int(answers["1b last"]) >= printed[-1], f"seed {seed}"
    with sqlite3.connect(tmp_path / "answers.sqlite3") as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def test_store_json_is_plain(timed):
    """Attempts keep their answers as JSON text in the table: readable by any tool."""
    timed.add_attempt("s1", {"1a x": "−1"}, {"1a x": "wrong"})
    with timed.db.read() as session:
        raw = session.execute(text("SELECT answers, marks FROM attempts")).one()
    assert json.loads(raw[0]) == {"1a x": "−1"} and json.loads(raw[1]) == {"1a x": "wrong"}
