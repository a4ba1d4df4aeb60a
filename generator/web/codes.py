"""Access codes: what a student types (or scans) to open their own page, recomputed from the class folder's secret.

A code is the first 80 bits of HMAC-SHA256(class secret, "access", assignment, student id), written as 16
Crockford base32 characters in groups of four: 7KQ2-M9XD-4HT0-BC3W. It is not the student's seed and nothing
else printed on the sheet leads to it; the server needs no list of codes, only the folder's secret.key.
Standard library only: the class build imports it to print the codes."""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from pathlib import Path

from generator.classes.secret import SecretError, keyed_digest, read_secret

CODE_PURPOSE = "transformer-worksheets/access/v1"
CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's base32: no I, L, O or U
CODE_BITS = 80
CODE_LENGTH = CODE_BITS // 5  # 16 characters
GROUP = 4
MAX_TYPED = 64  # longer input is no code (and is not worth normalising)
_READS_AS = str.maketrans({"I": "1", "L": "1", "O": "0"})
_IGNORED = " \t\r\n-\u2010\u2011\u2012\u2013\u2014\u2212\u00a0"  # spaces and dashes, as typed or pasted

ClassSecretError = SecretError


def access_code(secret: bytes, assignment: str, student_id: str) -> str:
    """The student's access code, e.g. '7KQ2-M9XD-4HT0-BC3W' (80 bits; the same folder always gives the same code)."""
    number = int.from_bytes(keyed_digest(secret, CODE_PURPOSE, assignment, student_id)[:CODE_BITS // 8], "big")
    chars = "".join(CODE_ALPHABET[(number >> (5 * i)) & 31] for i in reversed(range(CODE_LENGTH)))
    return "-".join(chars[i:i + GROUP] for i in range(0, CODE_LENGTH, GROUP))


def normalise_code(text: str) -> str:
    """A typed code in its printed form: case ignored, spaces and dashes ignored, I and L read as 1, O as 0.

    ValueError (one line) when the text cannot be a code: the wrong length or a character no code has."""
    if len(text) > MAX_TYPED:
        raise ValueError(f"an access code is {CODE_LENGTH} characters; this is {len(text)}")
    chars = "".join(ch for ch in text if ch not in _IGNORED).upper().translate(_READS_AS)
    bad = [ch for ch in chars if ch not in CODE_ALPHABET]
    if bad:
        raise ValueError(f"an access code has only digits and the letters A-Z but U; {bad[0]!r} is not one")
    if len(chars) != CODE_LENGTH:
        raise ValueError(f"an access code is {CODE_LENGTH} characters; this is {len(chars)}")
    return "-".join(chars[i:i + GROUP] for i in range(0, CODE_LENGTH, GROUP))


def find_student(secret: bytes, assignment: str, student_ids: Iterable[str], code: str) -> str | None:
    """The id of the student whose access code this is, or None (a malformed code too).

    Every student's code is computed and compared in constant time, so how long it takes does not depend on
    how much of a code was right, nor on where the student is in the roster."""
    try:
        wanted = normalise_code(code).encode("ascii")
    except ValueError:
        return None
    found = None
    for student_id in student_ids:
        if hmac.compare_digest(access_code(secret, assignment, student_id).encode("ascii"), wanted) and found is None:
            found = student_id
    return found


def class_secret(folder: Path) -> bytes:
    """The class folder's secret (its secret.key); ClassSecretError, one line, when it is missing or unreadable."""
    return read_secret(Path(folder))
