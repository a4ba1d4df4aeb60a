"""Fixtures of the web page's tests: a database on SQLite (a file in tmp_path) or on a throwaway PostgreSQL server."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from generator.web.db import open_database
from generator.web.store import Store

BACKENDS = ("sqlite", "postgresql")


def _pg_binary(name: str) -> str | None:
    """A PostgreSQL server program: on PATH (/usr/local/bin), or the newest in Debian's /usr/lib/postgresql/*/bin."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                        key=lambda p: int(p.split("/")[-3]) if p.split("/")[-3].isdigit() else 0)
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(text: str) -> str:
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return " / ".join(lines[-3:])[:400] or "no output"


class PostgresServer:
    """A PostgreSQL server of our own: a new cluster in a temporary folder, reached only by its unix socket."""

    def __init__(self):
        self.root: str | None = None
        self.data = self.sockets = ""
        self.port = 0
        self.user: str | None = None  # run as this user (initdb and postgres refuse root)
        self.pg_ctl = ""

    def start(self) -> None:
        """initdb, then pg_ctl start; RuntimeError with the exact reason when either fails."""
        initdb, self.pg_ctl = _pg_binary("initdb"), _pg_binary("pg_ctl")
        if not initdb or not self.pg_ctl:
            raise RuntimeError("initdb or pg_ctl not found (on PATH or in /usr/lib/postgresql/*/bin)")
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise RuntimeError("psycopg is not installed (pip install 'psycopg[binary]')") from None
        self.root = tempfile.mkdtemp(prefix="tw-pg-")  # under /tmp, which every user can cross
        self.data, self.sockets = os.path.join(self.root, "data"), os.path.join(self.root, "sockets")
        os.mkdir(self.sockets)
        if os.geteuid() == 0:
            for name in ("postgres", "nobody"):
                try:
                    entry = pwd.getpwnam(name)
                except KeyError:
                    continue
                self.user = name
                for path in (self.root, self.sockets):
                    os.chown(path, entry.pw_uid, entry.pw_gid)
                break
            else:
                raise RuntimeError("running as root, and there is neither a postgres nor a nobody user to run "
                                   "the server as")
        self._run([initdb, "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C",
                   "--no-sync"], "initdb")
        self.port = _free_port()
        options = f"-k {self.sockets} -p {self.port} -c listen_addresses='' -c fsync=off -c max_connections=100"
        self._run([self.pg_ctl, "-D", self.data, "-o", options, "-l", os.path.join(self.root, "server.log"),
                   "-w", "-t", "60", "start"], "pg_ctl start")

    def url(self, database: str = "postgres") -> str:
        """A psycopg URL of one database on this server, through its socket."""
        return f"postgresql+psycopg://postgres@/{database}?host={self.sockets}&port={self.port}"

    def stop(self) -> None:
        """Stop the server (immediately: it holds nothing to keep) and delete its folder."""
        if self.root and os.path.exists(os.path.join(self.data, "postmaster.pid")):
            try:
                self._run([self.pg_ctl, "-D", self.data, "-m", "immediate", "-w", "stop"], "pg_ctl stop")
            except RuntimeError:
                pass
        if self.root:
            shutil.rmtree(self.root, ignore_errors=True)

    def _run(self, command: list[str], what: str) -> None:
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        try:
            done = subprocess.run(command, cwd=self.root, capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise RuntimeError(f"{what} could not run: {error}") from None
        if done.returncode != 0:
            log = Path(self.root, "server.log")
            extra = f"; server log: {_tail(log.read_text(errors='replace'))}" if log.exists() else ""
            raise RuntimeError(f"{what} failed (exit {done.returncode}): {_tail(done.stderr or done.stdout)}{extra}")


@pytest.fixture(scope="session")
def postgres_server():
    """A running PostgreSQL server for the whole session, or a skip that says exactly why none could start."""
    server = PostgresServer()
    try:
        server.start()
    except RuntimeError as error:
        server.stop()
        pytest.skip(f"no PostgreSQL server for these tests: {error}")
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server):
    """The URL of a new, empty database on the session's server, dropped after the test."""
    import psycopg

    name = "t_" + uuid.uuid4().hex[:16]
    conninfo = dict(host=postgres_server.sockets, port=postgres_server.port, user="postgres", dbname="postgres",
                    autocommit=True)
    with psycopg.connect(**conninfo) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    yield postgres_server.url(name)
    with psycopg.connect(**conninfo) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=BACKENDS)
def db_url(request, tmp_path):
    """A URL of a new, empty database: a SQLite file in tmp_path, or a database on the PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'answers.sqlite3'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def database(db_url):
    """An open, migrated Database on each backend, closed after the test."""
    db = open_database(db_url)
    yield db
    db.close()


@pytest.fixture
def store(database):
    """A Store on each backend."""
    return Store(database)
