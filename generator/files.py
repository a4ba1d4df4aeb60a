"""Files written whole or not at all: a reader never sees half a file, and a failed write leaves the old one."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def new_file_mode() -> int:
    """The mode open() gives a new file: 0o666 less the umask (0o644 under the usual umask 022)."""
    umask = os.umask(0)  # the umask can only be read by setting it: put it straight back
    os.umask(umask)
    return 0o666 & ~umask


def temp_beside(path: Path) -> tuple[int, str]:
    """An open temporary file in path's folder, with a new file's mode (mkstemp's own is 0600: owner only)."""
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        os.fchmod(handle, new_file_mode())
    except BaseException:
        os.close(handle)
        Path(temp).unlink(missing_ok=True)
        raise
    return handle, temp


def atomic_write(path: Path, data: bytes) -> None:
    """Write data to a temporary file beside path, then move it into place in one step."""
    handle, temp = temp_beside(path)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
