"""`transformer-worksheets serve`: the page for one class folder, on uvicorn, in one or several worker processes."""

from __future__ import annotations

import ctypes
import gc
import os
import signal
import sys
import threading
from pathlib import Path

import uvicorn

from generator.web import marks
from generator.web.app import WebError, create_app, new_teacher_token
from generator.web.security import MIN_TEACHER_TOKEN
from generator.web.classdata import ClassFolder

TOKEN_VARIABLE = "TW_TEACHER_TOKEN"
# What the parent tells its worker processes (they are started afresh by uvicorn, so they read the environment).
_FOLDER_VARIABLE, _DATABASE_VARIABLE, _PARENT_VARIABLE = "TW_SERVE_FOLDER", "TW_SERVE_DATABASE", "TW_SERVE_PARENT"
MAX_WORKERS = 8
# How long an idle connection is kept (uvicorn's default is 5 s; nginx's 75 s): a student's page saves every few
# seconds while they type, and a kept connection spares each save a new TCP connection and its setup in the server.
KEEP_ALIVE_S = 75
_PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent dies


# One process by default: on 2 cores, two workers served fewer saves a second than one (make bench-web, back to back:
# capacity 1,956 against 2,242 saves/s, p99 of the page-paced burst 126 against 107 ms; SQLite's writes take turns
# anyway, and each worker's groups commit apart). --workers N is there for a bigger machine or PostgreSQL.
DEFAULT_WORKERS = 1


def serve(folder: Path, host: str, port: int, database: str | None, teacher_token: str | None,
          workers: int | None = None) -> None:
    """Start the server; the teacher token comes from the option, the environment, or is made and printed once."""
    token = teacher_token or os.environ.get(TOKEN_VARIABLE) or new_teacher_token()
    if len(token) < MIN_TEACHER_TOKEN:
        raise WebError(f"the teacher token has {len(token)} characters; accepted: at least {MIN_TEACHER_TOKEN} (leave "
                       f"--teacher-token and {TOKEN_VARIABLE} out and serve makes one)")
    workers = workers or DEFAULT_WORKERS
    # Built here first in every case: a wrong folder, database or schema is reported once, before any worker starts,
    # and the database is migrated once.
    app = create_app(folder, database, token, secure_cookies=False)
    where = f"http://{host}:{port}/"
    print(f"Serving {folder} at {where} (students) and {where}teacher (teacher token: {token})"
          + (f"; {workers} worker processes" if workers > 1 else ""), flush=True)
    if host not in ("127.0.0.1", "localhost", "::1"):
        print("Listening beyond this computer: put it behind HTTPS (a reverse proxy) before students use it.",
              file=sys.stderr, flush=True)
    if workers == 1:
        _ready(app)
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, timeout_keep_alive=KEEP_ALIVE_S)
        return
    app.state.store.db.close()
    os.environ.update({_FOLDER_VARIABLE: str(Path(folder).resolve()), _DATABASE_VARIABLE: database or "",
                       TOKEN_VARIABLE: token, _PARENT_VARIABLE: str(os.getpid())})
    uvicorn.run("generator.web.serve:worker_app", factory=True, workers=workers, host=host, port=port,
                log_level="warning", access_log=False, timeout_keep_alive=KEEP_ALIVE_S)


def worker_app():
    """The app of one worker process (uvicorn's factory): the class folder and database the parent checked."""
    _die_with_parent(int(os.environ[_PARENT_VARIABLE]))
    app = create_app(Path(os.environ[_FOLDER_VARIABLE]), os.environ[_DATABASE_VARIABLE] or None,
                     os.environ[TOKEN_VARIABLE], secure_cookies=False)
    _ready(app)
    return app


def _die_with_parent(parent: int) -> None:
    """Ask Linux to stop this worker when the server's main process dies, even by SIGKILL: uvicorn's workers would
    otherwise keep answering on the port, orphaned. SIGTERM lets uvicorn finish the requests in flight."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent died before the request above: nobody would send the signal
        os.kill(os.getpid(), signal.SIGTERM)


def _ready(app) -> None:
    """The garbage collector tuned for a server, and the assignment's follow-through recipes found in the background."""
    # What is loaded by now (the libraries, the app, the class folder) stays for the server's life and is frozen, so
    # full passes skip it; and a young pass comes after 50,000 new objects rather than 700, so the objects of requests
    # in flight are not promoted (and then swept in full passes) dozens of times a second. Untuned, collections took
    # 3.8 s of a 50 s run of make bench-web, each full one (about 100 ms) stopping every request: they made most of
    # the slowest saves and Checks.
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 10, 10)
    threading.Thread(target=_find_recipes, args=(app.state.classdata,), name="find-recipes", daemon=True).start()


def _find_recipes(classdata: ClassFolder) -> None:
    """The follow-through recipes of the assignment's problems, found while the server starts (a second or two) rather
    than by the first Checks, which would all wait for them (every student has the same problem specs)."""
    try:
        for student in list(classdata.students)[:1]:
            marks.find_recipes(classdata.key(student))
    except Exception:  # noqa: BLE001 - the first Check finds them again, and reports what is wrong
        pass
