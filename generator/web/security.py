"""What keeps the page safe: CSRF tokens tied to the session, bounded request bodies, throttled sign-ins."""

from __future__ import annotations

import hmac
import secrets

from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES = 256 * 1024  # the largest answers save (2,000 blanks of 100 characters) or CSV import fits easily
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
# Sign-in: at most this many failed attempts per client address in the window, then a pause. A class behind one
# address (a school's NAT) shares the count, so it allows a class's typos; guessing gains little from it: an access
# code has 80 random bits, the token serve makes 144, and serve refuses a chosen token shorter than
# MIN_TEACHER_TOKEN characters.
SIGN_IN_FAILURES = 60
SIGN_IN_WINDOW_S = 600
MIN_TEACHER_TOKEN = 12


def csrf_token(request: Request) -> str:
    """The session's CSRF token, made on first use (a form or the page's scripts send it back)."""
    token = request.session.get(CSRF_FIELD)
    if not token:
        token = secrets.token_urlsafe(32)
        request.session[CSRF_FIELD] = token
    return token


def csrf_ok(request: Request, sent: str | None) -> bool:
    """The token sent with a form or a request equals the session's (compared in constant time)."""
    expected = request.session.get(CSRF_FIELD)
    return bool(expected and sent) and hmac.compare_digest(str(expected), str(sent))


class BodyLimit:
    """Refuses a request whose body is larger than MAX_BODY_BYTES (413), declared or streamed."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await _too_large(self.limit)(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _BodyTooLarge()
            return message

        try:
            await self.app(scope, limited, send)
        except _BodyTooLarge:
            await _too_large(self.limit)(scope, receive, send)


class _BodyTooLarge(Exception):
    """A streamed body went past the limit."""


def _too_large(limit: int) -> PlainTextResponse:
    return PlainTextResponse(f"request too large; accepted: at most {limit // 1024} KB", status_code=413)


def client_address(request: Request) -> str:
    """Who is signing in, for throttling: the client's address as the server sees it."""
    return request.client.host if request.client else "unknown"
