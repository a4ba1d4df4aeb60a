"""`transformer-worksheets serve`: the page for one class folder, on uvicorn."""

from __future__ import annotations

import gc
import os
import sys
import threading
from pathlib import Path

import uvicorn

from generator.web import marks
from generator.web.app import create_app, new_teacher_token
from generator.web.classdata import ClassFolder

TOKEN_VARIABLE = "TW_TEACHER_TOKEN"


def serve(folder: Path, host: str, port: int, database: str | None, teacher_token: str | None) -> None:
    """Start the server; the teacher token comes from the option, the environment, or is made and printed once."""
    token = teacher_token or os.environ.get(TOKEN_VARIABLE) or new_teacher_token()
    app = create_app(folder, database, token, secure_cookies=False)
    # The garbage collector, tuned for a server: what is loaded by now (the libraries, the app, the class folder) stays
    # for the server's life and is frozen, so full passes skip it; and a young pass comes after 50,000 new objects
    # rather than 700, so the objects of requests in flight are not promoted (and then swept in full passes) dozens
    # of times a second. Untuned, collections took 3.8 s of a 50 s run of make bench-web, each full one (about
    # 100 ms) stopping every request: they made most of the slowest saves and Checks.
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 10, 10)
    threading.Thread(target=_find_recipes, args=(app.state.classdata,), name="find-recipes", daemon=True).start()
    where = f"http://{host}:{port}/"
    print(f"Serving {folder} at {where} (students) and {where}teacher (teacher token: {token})", flush=True)
    if host not in ("127.0.0.1", "localhost", "::1"):
        print("Listening beyond this computer: put it behind HTTPS (a reverse proxy) before students use it.",
              file=sys.stderr, flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


def _find_recipes(classdata: ClassFolder) -> None:
    """The follow-through recipes of the assignment's problems, found while the server starts (a second or two) rather
    than by the first Checks, which would all wait for them (every student has the same problem specs)."""
    try:
        for student in list(classdata.students)[:1]:
            marks.find_recipes(classdata.key(student))
    except Exception:  # noqa: BLE001 - the first Check finds them again, and reports what is wrong
        pass
