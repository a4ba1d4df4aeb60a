"""`transformer-worksheets serve`: the page for one class folder, on uvicorn."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import uvicorn

from generator.web.app import create_app, new_teacher_token

TOKEN_VARIABLE = "TW_TEACHER_TOKEN"


def serve(folder: Path, host: str, port: int, database: str | None, teacher_token: str | None) -> None:
    """Start the server; the teacher token comes from the option, the environment, or is made and printed once."""
    token = teacher_token or os.environ.get(TOKEN_VARIABLE) or new_teacher_token()
    app = create_app(folder, database, token, secure_cookies=False)
    where = f"http://{host}:{port}/"
    print(f"Serving {folder} at {where} (students) and {where}teacher (teacher token: {token})", flush=True)
    if host not in ("127.0.0.1", "localhost", "::1"):
        print("Listening beyond this computer: put it behind HTTPS (a reverse proxy) before students use it.",
              file=sys.stderr, flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
