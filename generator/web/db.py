"""The web page's database: SQLite in the class folder or PostgreSQL, migrated to the newest schema when opened."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import TypeVar
from pathlib import Path
from urllib.parse import quote

import anyio.to_thread
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import URL, create_engine, event, make_url, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

try:
    import fcntl
except ImportError:  # Windows: the migration's own transaction is the only guard
    fcntl = None

DEFAULT_FILE = "answers.sqlite3"
WRITER_LOCK_SUFFIX = "-writer.lock"  # the file beside a SQLite database that its writers take turns on
MIGRATIONS = Path(__file__).parent / "migrations"
ACCEPTED = (f"accepted: sqlite:///PATH (a file in an existing folder; the default is {DEFAULT_FILE} in the class "
            "folder) or postgresql+psycopg://USER[:PASSWORD]@HOST[:PORT]/DATABASE")
BUSY_TIMEOUT_MS = 5000
# pg_advisory_xact_lock's key while migrating: any constant; this is "tw-web" in ASCII.
ADVISORY_KEY = 0x74772D776562

T = TypeVar("T")

# One lock per SQLite file for every Database of this process (see Database.write).
_file_locks: dict[str, "_WriterLock"] = {}
_file_locks_guard = threading.Lock()


class DatabaseError(ValueError):
    """A database that cannot be opened or migrated; the message is one line: what was wrong, what is accepted."""


class Database:
    """An open database: its engine, a sessionmaker, and write() / read() transactions.

    SQLite has a single writer: a second connection that wants to write waits on the file's lock, polling it in
    SQLite's busy handler (sleeps that grow to 100 ms) and fails with "database is locked" after busy_timeout. So
    write() takes the file's writer lock first (a lock per file shared by this process's threads, and an flock on a
    file beside the database shared by the server's worker processes), and writers queue on it without polling; the
    writer then begins with BEGIN IMMEDIATE, which takes the file's write lock at once (a deferred BEGIN that reads
    and then writes can fail at once, whatever the timeout, when another connection committed in between).
    busy_timeout remains for other programs (a script reading answers). PostgreSQL needs no lock of ours.
    """

    def __init__(self, url: URL, engine: Engine):
        self.url = url
        self.engine = engine
        self.is_sqlite = url.get_backend_name() == "sqlite"
        self.sessionmaker: sessionmaker[Session] = sessionmaker(engine, expire_on_commit=False)
        writer = engine.execution_options(sqlite_begin="IMMEDIATE") if self.is_sqlite else engine
        self._write_sessions: sessionmaker[Session] = sessionmaker(writer, expire_on_commit=False)
        self._write_lock = _file_lock(url.database) if self.is_sqlite else None
        self._queued: list[_Queued] = []  # write_shared's work waiting for the next group
        self._writing = False  # a group is being written
        self._group_turn = threading.Condition()
        self._writer: threading.Thread | None = None  # write_shared_async's writer, started on first use

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A session in a write transaction, committed when the block ends (rolled back on an exception)."""
        with self._write_lock or nullcontext():
            with self._write_sessions.begin() as session:
                yield session

    def write_shared(self, work: Callable[[Session], T]) -> T:
        """work(session) in a write transaction that, on SQLite, may also hold other threads' work: one commit (one
        sync of the WAL) for all of it. Returns work's result only once that transaction is committed, so what it
        wrote is on disk as surely as with write(); raises what work raised, with nothing of it kept.

        Group commit: each thread queues its work; while a group is being written the others wait, and when it is
        done, those whose work was in it return and one of the rest takes everything queued meanwhile as the next
        group: it runs each piece in order under the file's write lock and commits once. When one piece of work
        raises, the transaction is rolled back, that work gets its exception and the rest are run again without it
        (each sees the writes of those before it, as in one transaction each). A database error fails the whole
        group: none of it was committed. work must write only through the session it is given, use Core statements
        (no ORM objects: they would outlive a rollback) and may be run more than once.
        PostgreSQL runs each in its own transaction (its commits are grouped by the server; one transaction over
        several students' rows would hold all their row locks)."""
        if self._write_lock is None:
            with self.write() as session:
                return work(session)
        item = _Queued(work)
        with self._group_turn:
            self._queued.append(item)
            while self._writing and not item.done:
                self._group_turn.wait()
            lead = not item.done
            if lead:
                self._writing = True
                group, self._queued = self._queued, []
        if lead:
            self._write_group(group)
        if item.error is not None:
            raise item.error
        return item.result

    async def write_shared_async(self, work: Callable[[Session], T]) -> T:
        """write_shared for a coroutine on the event loop: the work joins the same groups, written by a writer thread
        of this Database (or by a thread already writing one), and the coroutine waits without holding a thread of
        the pool (a hop to the pool and back cost 0.1 ms of CPU a save). PostgreSQL: write_shared in the pool."""
        if self._write_lock is None:
            return await anyio.to_thread.run_sync(self.write_shared, work)
        loop = asyncio.get_running_loop()
        item = _Queued(work, loop, loop.create_future())
        with self._group_turn:
            self._queued.append(item)
            if self._writer is None:
                self._writer = threading.Thread(target=self._write_queued, name="group-writer", daemon=True)
                self._writer.start()
            self._group_turn.notify_all()
        return await item.future

    def _write_queued(self) -> None:
        """The writer thread: whenever work is queued and no group is being written, write the next group."""
        while True:
            with self._group_turn:
                while not self._queued or self._writing:
                    self._group_turn.wait()
                self._writing = True
                group, self._queued = self._queued, []
            try:
                self._write_group(group)
            except BaseException:  # noqa: BLE001 - every item of the group has its error; the thread goes on
                pass

    def _write_group(self, group: list[_Queued]) -> None:
        """Write a group taken from the queue (self._writing set by the caller), then let everyone waiting know:
        threads on the condition, coroutines through their loop."""
        try:
            with self._write_lock:
                self._run_group(group)
        finally:
            with self._group_turn:
                self._writing = False
                self._group_turn.notify_all()
            for item in group:
                if item.future is not None:
                    item.loop.call_soon_threadsafe(_settle, item)

    def _run_group(self, group: list[_Queued]) -> None:
        """Run and commit a group of queued work (the file's write lock held); every item ends done."""
        pending = list(group)
        try:
            while pending:
                failed: _Queued | None = None
                try:
                    with self._write_sessions.begin() as session:
                        for item in pending:
                            try:
                                item.result = item.work(session)
                            except SQLAlchemyError:
                                raise  # the database itself: the whole group fails below
                            except Exception as error:
                                item.error, failed = error, item
                                raise _WorkFailed() from error
                except _WorkFailed:
                    pending.remove(failed)
                    failed.done = True
                    continue
                for item in pending:
                    item.done = True
                return
        except BaseException as error:
            for item in pending:
                item.result, item.error, item.done = None, error, True
            raise

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session in a read transaction: one consistent snapshot, never holding SQLite's write lock."""
        with self.sessionmaker() as session:
            with session.begin():
                yield session

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"Database({self.url.render_as_string(hide_password=True)!r})"


class _Queued:
    """One piece of write_shared's work, its result or exception, whether it is done (committed or failed), and for
    write_shared_async the loop and future that wait for it."""

    __slots__ = ("work", "result", "error", "done", "loop", "future")

    def __init__(self, work: Callable[[Session], object], loop: asyncio.AbstractEventLoop | None = None,
                 future: asyncio.Future | None = None) -> None:
        self.work, self.result, self.error, self.done = work, None, None, False
        self.loop, self.future = loop, future


def _settle(item: _Queued) -> None:
    """On the item's loop: its future gets the work's result or exception (unless the caller gave up waiting)."""
    if item.future.cancelled():
        return
    if item.error is not None:
        item.future.set_exception(item.error)
    else:
        item.future.set_result(item.result)


class _WorkFailed(Exception):
    """One queued piece of work raised: its group's transaction is rolled back and run again without it."""


def default_url(folder: Path | str) -> str:
    """The SQLite URL of the class folder's own database file, answers.sqlite3 (an absolute path)."""
    path = str(Path(folder).resolve() / DEFAULT_FILE)
    # Quoted so that '%', '?' or '#' in a folder's name reach SQLite as written.
    return "sqlite:///" + quote(path, safe="/")


def open_database(url: str | URL) -> Database:
    """The database at url, created if new and migrated to the newest schema (a no-op when it is already there)."""
    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(parsed, pool_pre_ping=False)
        _sqlite_events(engine)
    else:
        engine = create_engine(parsed, pool_pre_ping=True)
    try:
        with _migration_lock(parsed):
            _upgrade(engine, parsed)
    except BaseException:
        engine.dispose()
        raise
    return Database(parsed, engine)


def parse_url(url: str | URL) -> URL:
    """A database URL checked for what open_database accepts; DatabaseError with a one-line reason otherwise."""
    shown = url.render_as_string(hide_password=True) if isinstance(url, URL) else _hide_password(str(url))
    try:
        parsed = url if isinstance(url, URL) else make_url(str(url).strip())
    except (ArgumentError, ValueError) as error:
        raise DatabaseError(f"{shown!r} is not a database URL ({error}); {ACCEPTED}") from None
    backend, driver = parsed.get_backend_name(), parsed.get_driver_name()
    if backend == "sqlite":
        if driver != "pysqlite":
            raise DatabaseError(f"{shown!r}: the SQLite driver {driver!r} is not supported; {ACCEPTED}")
        database = parsed.database or ""
        if database in ("", ":memory:") or database.startswith("file:") or parsed.query.get("mode") == "memory":
            raise DatabaseError(f"{shown!r}: the answers must live in a file, not in memory; {ACCEPTED}")
        folder = Path(database).parent
        if not folder.is_dir():
            raise DatabaseError(f"{shown!r}: the folder {str(folder)!r} does not exist; {ACCEPTED}")
        return parsed
    if backend == "postgresql":
        if "+" not in parsed.drivername:  # postgresql:// means psycopg, the one driver installed
            parsed = parsed.set(drivername="postgresql+psycopg")
        elif driver != "psycopg":
            raise DatabaseError(f"{shown!r}: the PostgreSQL driver {driver!r} is not supported (use psycopg); "
                                f"{ACCEPTED}")
        if not parsed.database:
            raise DatabaseError(f"{shown!r}: no database name after the host; {ACCEPTED}")
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise DatabaseError(f"{shown!r}: psycopg is not installed (pip install 'transformer-worksheets[postgres]')"
                                ) from None
        return parsed
    raise DatabaseError(f"{shown!r}: {parsed.drivername!r} databases are not supported; {ACCEPTED}")


def alembic_config(url: str | URL | None = None, connection: Connection | None = None) -> Config:
    """Alembic's Config built in code: the migrations folder in this package, and a URL or an open connection."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    if url is not None:
        rendered = url.render_as_string(hide_password=False) if isinstance(url, URL) else str(url)
        config.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest migration's revision id."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(db: Database) -> str | None:
    """The revision the database is at (None for an empty database)."""
    with db.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def _upgrade(engine: Engine, url: URL) -> None:
    """alembic upgrade head in one transaction, which also holds the database's write lock while it runs."""
    shown = url.render_as_string(hide_password=True)
    try:
        with engine.connect() as connection:
            if url.get_backend_name() == "sqlite":
                connection.execution_options(sqlite_begin="IMMEDIATE")
            with connection.begin():
                if url.get_backend_name() == "postgresql":
                    # A second server starting at once waits here, then finds the schema at head.
                    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_KEY})
                command.upgrade(alembic_config(connection=connection), "head")
    except CommandError as error:
        # The usual case: a revision this version does not know, written by a newer transformer-worksheets.
        raise DatabaseError(f"{shown}: cannot migrate the database ({_one_line(error)}); was it written by a newer "
                            "version of transformer-worksheets?") from None
    except SQLAlchemyError as error:
        reason = _one_line(getattr(error, "orig", None) or error)
        raise DatabaseError(f"{shown}: cannot open the database ({reason})") from None


def _sqlite_events(engine: Engine) -> None:
    """Every SQLite connection: WAL, synchronous=FULL, foreign keys, a busy timeout, and BEGIN emitted by us."""

    @event.listens_for(engine, "connect")
    def connect(dbapi_connection, _record) -> None:
        # The driver's own transaction handling off: it would begin late, and never BEGIN IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")  # first: switching to WAL may wait
            cursor.execute("PRAGMA journal_mode = WAL")  # readers never block the writer, nor it them
            # FULL: the WAL is synced at every commit, so a save the browser was told about survives a crash of the
            # machine too (a killed process alone loses nothing that was committed, whatever this says).
            cursor.execute("PRAGMA synchronous = FULL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")


def _file_lock(database: str) -> "_WriterLock":
    """The writer lock of one SQLite file, one object for every Database of this process."""
    key = os.path.realpath(database)
    with _file_locks_guard:
        if key not in _file_locks:
            _file_locks[key] = _WriterLock(key + WRITER_LOCK_SUFFIX)
        return _file_locks[key]


class _WriterLock:
    """The right to write one SQLite file: a threading lock for this process's threads, then an exclusive flock on a
    lock file beside the database for the server's other worker processes. Both queue waiters in the kernel or the
    interpreter, where SQLite's own busy handler polls with sleeps of up to 100 ms (it made the slowest saves of two
    workers take 1.5 s). The lock file is opened once and kept open: it is never the database file itself, whose
    POSIX locks (SQLite's) a close() of any descriptor of it would drop."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._threads = threading.Lock()
        self._fd: int | None = None

    def __enter__(self) -> "_WriterLock":
        self._threads.acquire()
        try:
            if fcntl is not None:
                if self._fd is None:
                    try:
                        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                    except OSError:
                        return self  # a folder that cannot take the file: the database cannot be written either
                fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._threads.release()
            raise
        return self

    def __exit__(self, *exc) -> None:
        try:
            if fcntl is not None and self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()


@contextmanager
def _migration_lock(url: URL) -> Iterator[None]:
    """For SQLite, an exclusive flock on the database's folder while the first connection switches the file to WAL
    and migrates (the migration's BEGIN IMMEDIATE guards the schema; this, the first switch to WAL too).
    PostgreSQL takes an advisory lock inside the migration's transaction instead."""
    if url.get_backend_name() != "sqlite" or fcntl is None:
        yield
        return
    folder = str(Path(url.database).parent)
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        yield  # a folder that cannot be opened for reading: the transaction alone guards
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            pass  # a filesystem without flock: the transaction alone guards
        yield
    finally:
        os.close(fd)  # releases the lock


def _hide_password(url: str) -> str:
    try:
        return make_url(url.strip()).render_as_string(hide_password=True)
    except Exception:
        return url if len(url) <= 80 else url[:77] + "..."


def _one_line(error: object) -> str:
    return " ".join(str(error).split())[:300]
