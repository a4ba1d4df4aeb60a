"""Database.write_shared, the group commit under saves and Checks: every piece of work is committed before it returns,
one commit serves the work queued meanwhile, and one piece that fails takes nothing else with it."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import event, insert, select, text
from sqlalchemy.exc import OperationalError

from generator.web.models import Student
from generator.web.store import Store

STUDENTS = Student.__table__


def _add(student_id: str):
    def work(session) -> str:
        session.execute(insert(STUDENTS), {"id": student_id, "name": student_id.upper()})
        return student_id
    return work


def _ids(database) -> set[str]:
    with database.read() as session:
        return set(session.scalars(select(STUDENTS.c.id)))


def _commits(database) -> list[int]:
    """How many transactions were committed (reads too), counted from now on."""
    counted = [0]
    event.listen(database.engine, "commit", lambda connection: counted.__setitem__(0, counted[0] + 1))
    return counted


def _queued_behind_the_lock(database, works: list) -> tuple[list, list[threading.Thread]]:
    """Start one thread per work while the test holds SQLite's write lock: the first takes the lock's turn, the rest
    queue behind it. Returns the results (a value or an exception per work) and the threads."""
    results: list = [None] * len(works)

    def run(n: int) -> None:
        try:
            results[n] = database.write_shared(works[n])
        except Exception as error:  # noqa: BLE001 - the test looks at it
            results[n] = error

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(works))]
    threads[0].start()
    deadline = time.monotonic() + 10
    while not database._writing and time.monotonic() < deadline:
        time.sleep(0.001)
    for thread in threads[1:]:
        thread.start()
    while len(database._queued) < len(works) - 1 and time.monotonic() < deadline:
        time.sleep(0.001)
    assert len(database._queued) == len(works) - 1
    return results, threads


def test_work_is_committed_before_it_returns_on_each_backend(database):
    assert database.write_shared(_add("s1")) == "s1"
    assert _ids(database) == {"s1"}


def test_work_queued_while_a_group_is_written_is_committed_once(database):
    if not database.is_sqlite:
        pytest.skip("PostgreSQL runs each piece of work in its own transaction")
    with database._write_lock:  # a writer of another kind (write()) holds the file's lock meanwhile
        results, threads = _queued_behind_the_lock(database, [_add(f"s{n}") for n in range(20)])
        assert _ids(database) == set()  # nothing returned, nothing committed
        assert all(result is None for result in results)
        commits = _commits(database)
    for thread in threads:
        thread.join(10)
    assert commits[0] == 2  # the first alone (it held the turn), then the nineteen queued behind it together
    assert results == [f"s{n}" for n in range(20)]
    assert _ids(database) == {f"s{n}" for n in range(20)}


def test_one_failing_piece_of_work_takes_nothing_else_with_it(database):
    if not database.is_sqlite:
        pytest.skip("PostgreSQL runs each piece of work in its own transaction")

    def half_then_fail(session):
        session.execute(insert(STUDENTS), {"id": "half", "name": "written, then rolled back"})
        raise ValueError("this one fails")

    def sees_earlier(session):
        # Runs after s1 in the same group: sees it, as it would in a transaction of its own after s1's.
        return sorted(session.scalars(select(STUDENTS.c.id)))

    works = [_add("s0"), _add("s1"), half_then_fail, sees_earlier, _add("s2")]
    with database._write_lock:
        results, threads = _queued_behind_the_lock(database, works)
    for thread in threads:
        thread.join(10)
    assert results[:2] == ["s0", "s1"] and results[4] == "s2"
    assert isinstance(results[2], ValueError)
    assert results[3] == ["s0", "s1"]
    assert _ids(database) == {"s0", "s1", "s2"}


def test_a_database_error_fails_the_whole_group_and_keeps_none_of_it(database):
    if not database.is_sqlite:
        pytest.skip("PostgreSQL runs each piece of work in its own transaction")

    def broken(session):
        session.execute(text("INSERT INTO no_such_table VALUES (1)"))

    works = [_add("s0"), _add("s1"), broken, _add("s2")]
    with database._write_lock:
        results, threads = _queued_behind_the_lock(database, works)
    for thread in threads:
        thread.join(10)
    assert results[0] == "s0"  # the first group (the one that held the turn) was committed on its own
    assert all(isinstance(result, OperationalError) for result in results[1:]), results
    assert _ids(database) == {"s0"}
    assert database.write_shared(_add("s3")) == "s3"  # and the next group is written as usual
    assert _ids(database) == {"s0", "s3"}


def test_saves_and_checks_from_many_threads_all_land(database):
    """32 threads, each a student saving 25 times and keeping two Checks: every save and attempt is there after."""
    store = Store(database)
    students = [f"s{n:02d}" for n in range(32)]
    store.ensure_students([(s, s) for s in students])
    start = threading.Barrier(len(students))
    errors: list[BaseException] = []
    revisions: dict[str, list[int]] = {}

    def student(student_id: str) -> None:
        try:
            start.wait()
            revisions[student_id] = [store.save_answers(student_id, {"1a x": str(n), f"2b C[{n},0]": "7"})
                                     ["revisions"]["1a x"] for n in range(25)]
            store.add_attempt(student_id, store.answers(student_id), {"score": 1})
            store.add_attempt(student_id, store.answers(student_id), {"score": 2})
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=student, args=(s,)) for s in students]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors[:3]
    for student_id in students:
        assert revisions[student_id] == list(range(1, 26))
        answers = store.answers(student_id)
        assert answers["1a x"] == "24" and len(answers) == 26
        assert [a.marks["score"] for a in store.attempts(student_id)] == [1, 2]


def test_coroutines_join_the_groups_and_get_their_own_results_and_errors(database):
    """write_shared_async: work queued from the event loop while a thread's group holds the lock is written by the
    writer thread in one commit; each coroutine gets its own result, the failing one its own exception, and every
    result comes only once its work is committed."""
    import asyncio

    def fails(session):
        session.execute(insert(STUDENTS), {"id": "half", "name": "rolled back"})
        raise ValueError("this one fails")

    async def main():
        held = threading.Event()
        release = threading.Event()

        def holder():  # a thread's write_shared holds the turn until told
            def work(session):
                held.set()
                release.wait(10)
                return _add("t0")(session)
            return database.write_shared(work)

        thread = threading.Thread(target=holder)
        thread.start()
        await asyncio.to_thread(held.wait, 10)
        commits = _commits(database)
        waiting = [asyncio.ensure_future(database.write_shared_async(work))
                   for work in [_add("a0"), _add("a1"), fails, _add("a2")]]
        await asyncio.sleep(0.2)
        if database.is_sqlite:  # behind the thread's group (PostgreSQL writes each in its own transaction at once)
            assert not any(task.done() for task in waiting)  # nothing answered before its commit
        release.set()
        results = await asyncio.gather(*waiting, return_exceptions=True)
        await asyncio.to_thread(thread.join, 10)
        return results, commits[0]

    results, commits = asyncio.run(main())
    assert results[0] == "a0" and results[1] == "a1" and results[3] == "a2"
    assert isinstance(results[2], ValueError)
    assert _ids(database) == {"t0", "a0", "a1", "a2"}
    if database.is_sqlite:
        assert commits == 2  # the thread's group, then the four coroutines' together (the failing one rolled back)
