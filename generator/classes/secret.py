"""A class folder's secret: 32 random bytes, made once with the folder and kept there, readable by its owner only.

Every student's seed and web access code is an HMAC of it, so nothing printed on a sheet rebuilds the sheet's
numbers (and so its key): only the class folder does. Nothing else the build writes holds it."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
from pathlib import Path

SECRET_FILE = "secret.key"
SECRET_BYTES = 32
SECRET_MODE = 0o600


class SecretError(ValueError):
    """The class secret cannot be read or written; the message says which file and what to do, in one line."""


def new_secret() -> bytes:
    """A fresh class secret from the operating system's random source."""
    return secrets.token_bytes(SECRET_BYTES)


def keyed_digest(secret: bytes, purpose: str, *fields: str | int) -> bytes:
    """HMAC-SHA256 of the fields under the secret; the purpose keeps a seed and an access code apart.

    The fields go in as a JSON array, so no two different field lists give the same message."""
    message = json.dumps([purpose, *fields], ensure_ascii=False, separators=(",", ":"))
    return hmac.new(secret, message.encode("utf-8"), hashlib.sha256).digest()


def read_secret(folder: Path) -> bytes:
    """The secret of a class folder (its secret.key: 64 hexadecimal digits); SecretError when missing or unreadable."""
    path = Path(folder) / SECRET_FILE
    try:
        text = path.read_bytes().decode("ascii")
    except FileNotFoundError:
        raise SecretError(f"{folder}: no class secret ({SECRET_FILE}); pass the folder that "
                          "`transformer-worksheets class` wrote, or restore its secret.key from a backup") from None
    except OSError as error:
        raise SecretError(f"{path}: cannot read the class secret: {error.strerror or error}") from error
    except UnicodeDecodeError:
        text = ""
    if not re.fullmatch(rf"[0-9a-f]{{{2 * SECRET_BYTES}}}\n?", text):
        raise SecretError(f"{path}: not a class secret (accepted: {2 * SECRET_BYTES} hexadecimal digits on one line); "
                          "restore it from a backup")
    return bytes.fromhex(text.strip())


def write_secret(folder: Path, secret: bytes) -> None:
    """Write a new class secret, mode 0600; never over an existing one (SecretError)."""
    path = Path(folder) / SECRET_FILE
    if len(secret) != SECRET_BYTES:
        raise ValueError(f"a class secret is {SECRET_BYTES} bytes")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, SECRET_MODE)
    except FileExistsError:
        raise SecretError(f"{path}: a class secret is already there; keep it (the sheets were made from it)") from None
    except OSError as error:
        raise SecretError(f"cannot write the class secret '{path}': {error.strerror or error}; "
                          "choose a writable folder") from error
    try:
        os.fchmod(handle, SECRET_MODE)  # whatever the umask: owner only
        with os.fdopen(handle, "w", encoding="ascii") as out:
            out.write(secret.hex() + "\n")
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise
