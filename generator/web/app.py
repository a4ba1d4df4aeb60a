"""The web page: students type the answers from their paper sheet; the marker answers at once or after release."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from urllib.parse import quote
from datetime import datetime, timedelta, timezone
from pathlib import Path

import jinja2
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.middleware.sessions import SessionMiddleware

from generator.marking.answerfile import parse_answers
from generator.marking.answers import ACCEPTED
from generator.web import marks
from generator.web.classdata import ClassFolder
from generator.web.codes import ClassSecretError, class_secret, find_student
from generator.web.db import DatabaseError, default_url, open_database
from generator.web.security import (CSRF_FIELD, CSRF_HEADER, SIGN_IN_FAILURES, SIGN_IN_WINDOW_S, BodyLimit,
                                    client_address, csrf_ok, csrf_token)
from generator.web.statement_html import STATEMENT_CSS, sheet_view
from generator.web.store import MAX_TEXT, SavingClosed, Store

HERE = Path(__file__).parent
KATEX_DIR = Path("/usr/share/javascript/katex")  # Debian's libjs-katex: the page's math, served by the app itself
PRACTICE, EXAM = "practice", "exam"
MAX_IMPORT_ROWS = 100_000


class WebError(ValueError):
    """The server cannot start; the message says what was wrong and what is accepted, in one line."""


def _templates() -> jinja2.Environment:
    """HTML templates, every value escaped unless marked safe (statements: built by statement_html, escaped there)."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["when"] = _when
    return env


def _when(value) -> str:
    """A stored time as a teacher reads it: 2026-12-04 22:42 UTC (empty when there is none)."""
    if not value:
        return ""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _now() -> datetime:
    return datetime.now(timezone.utc)


def create_app(folder: Path, database_url: str | None = None, teacher_token: str | None = None,
               secure_cookies: bool = False) -> FastAPI:
    """The app for one class folder; its data in the database at database_url (a SQLite file in the folder by default)."""
    if not KATEX_DIR.joinpath("katex.min.js").exists():
        raise WebError(f"KaTeX is not installed ({KATEX_DIR}); run `make` (or apt-get install libjs-katex)")
    classdata = ClassFolder(folder)
    try:
        secret = class_secret(folder)
    except ClassSecretError as error:
        raise WebError(str(error)) from error
    url = database_url or default_url(folder)
    try:
        store = Store(open_database(url))
        store.ensure_students([(s.id, s.name) for s in classdata.students.values()])
    except DatabaseError as error:
        raise WebError(str(error)) from error
    except SQLAlchemyError as error:  # the file or server is there, but cannot be written (or reached)
        reason = str(getattr(error, "orig", None) or error).splitlines()[0]
        raise WebError(f"{_shown(url)}: the database cannot be opened for writing ({reason}); accepted: a writable "
                       "SQLite file (the class folder's answers.sqlite3 by default) or a PostgreSQL database the user "
                       "may create tables in") from error
    token = teacher_token or ""
    env = _templates()
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    # Sessions are signed with a key derived from the class secret: a restart keeps everyone signed in.
    session_key = hmac.new(secret, b"transformer-worksheets session", hashlib.sha256).hexdigest()
    app.add_middleware(SessionMiddleware, secret_key=session_key, session_cookie="tw_session", same_site="strict",
                       https_only=secure_cookies, max_age=14 * 24 * 3600)
    app.add_middleware(BodyLimit)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.mount("/katex", StaticFiles(directory=KATEX_DIR), name="katex")
    app.state.classdata, app.state.store = classdata, store

    def page(name: str, request: Request, status: int = 200, **context) -> HTMLResponse:
        html = env.get_template(name).render(title=classdata.title, csrf=csrf_token(request), statement_css=STATEMENT_CSS,
                                             **context)
        return HTMLResponse(html, status_code=status, headers=_NO_STORE)

    def settings() -> dict:
        values = store.settings()
        return {"mode": values.get("mode") or PRACTICE, "deadline": values.get("deadline") or "",
                "released_at": values.get("released_at") or ""}

    def past_deadline(state: dict) -> bool:
        return bool(state["deadline"]) and _now() >= datetime.fromisoformat(state["deadline"])

    def exam_closed(state: dict, submitted_at: datetime | None) -> str | None:
        """Why an exam takes no more saves now (None in practice, or while the exam is open)."""
        if state["mode"] != EXAM:
            return None
        if past_deadline(state):
            return "the deadline has passed; answers are no longer saved"
        if state["released_at"]:
            return "the marks have been released: the exam is closed and answers are no longer saved"
        if submitted_at is not None:
            return "you have submitted; your teacher can reopen your sheet"
        return None

    def student_of(request: Request) -> str | None:
        student = request.session.get("student")
        return student if student in classdata.students else None

    def api_student(request: Request) -> str | JSONResponse:
        """The signed-in student of an API call sent with the page's token, or the error to answer with."""
        student = student_of(request)
        if student is None:
            return _json_error(401, "not signed in; open the page with your code again")
        if not csrf_ok(request, request.headers.get(CSRF_HEADER)):
            return _json_error(403, "the page expired; reload it (your saved answers stay)")
        return student

    def throttled(request: Request) -> bool:
        since = _now() - timedelta(seconds=SIGN_IN_WINDOW_S)
        return store.recent_failures(client_address(request), since) >= SIGN_IN_FAILURES

    def sign_in(request: Request, code: str) -> Response:
        if throttled(request):
            return page("message.html.j2", request, 429, heading="Too many attempts",
                        message=f"Too many wrong codes from this computer; try again in {SIGN_IN_WINDOW_S // 60} minutes.")
        student = find_student(secret, classdata.name, list(classdata.students), code)
        store.record_sign_in(client_address(request), student is not None)
        if student is None:
            return page("signin.html.j2", request, 401, error="That is not a code of this class. Check the code "
                        "printed at the top of your sheet (letters and digits; dashes and spaces do not matter).")
        request.session.clear()
        request.session["student"] = student
        store.mark_opened(student)
        return RedirectResponse("/sheet", status_code=303)

    @app.get("/", response_class=HTMLResponse)
    def home(request: Request):
        if student_of(request):
            return RedirectResponse("/sheet", status_code=303)
        return page("signin.html.j2", request, error="")

    @app.post("/signin")
    async def signin(request: Request):
        form = await request.form()
        if not csrf_ok(request, form.get(CSRF_FIELD)):
            return _forbidden("the form expired; reload the page and try again")
        return await run_in_threadpool(sign_in, request, str(form.get("code", ""))[:64])

    @app.get("/s/{code}")
    def signin_link(request: Request, code: str):
        return sign_in(request, code[:64])

    @app.post("/signout")
    async def signout(request: Request):
        form = await request.form()
        if not csrf_ok(request, form.get(CSRF_FIELD)):
            return _forbidden("the form expired; reload the page and try again")
        request.session.clear()
        return RedirectResponse("/", status_code=303)

    @app.get("/sheet", response_class=HTMLResponse)
    def sheet(request: Request):
        student = student_of(request)
        if student is None:
            return RedirectResponse("/", status_code=303)
        state = settings()
        answers = store.answers(student)
        key = classdata.key(student)
        blanks = classdata.blanks(student)
        readings = {label: marks.reading(blanks.get(label), text) for label, text in answers.items()}
        shown = score = None
        if state["mode"] == EXAM and state["released_at"]:
            marked = marks.mark(key, answers, student)
            shown, score = marks.verdicts(marked), (marks.total_text(marked.score), marks.total_text(marked.out_of))
        return page("sheet.html.j2", request, student=classdata.students[student], problems=sheet_view(
            classdata.sheet(student)), answers=answers, readings=readings, accepted=ACCEPTED, state=state,
            verdicts=shown, score=score,
            submitted=store.student(student)["submitted_at"] is not None,
            closed=state["mode"] == EXAM and (past_deadline(state) or bool(state["released_at"])))

    @app.post("/api/answers")
    async def save(request: Request):
        student = api_student(request)
        if isinstance(student, JSONResponse):
            return student
        try:
            body = await request.json()
            answers = body["answers"]
            if not isinstance(answers, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                       for k, v in answers.items()):
                raise ValueError("answers must map blank labels to text")
        except (ValueError, KeyError, TypeError, RecursionError):  # RecursionError: JSON nested past Python's stack
            return _json_error(400, 'send JSON {"answers": {label: text}}')
        allowed = classdata.labels(student)
        unknown = [label for label in answers if label not in allowed]
        if unknown:
            return _json_error(400, f"no blank labelled {unknown[0][:40]!r} on your sheet")
        try:
            # The exam's rules are read in the save's own transaction: a release or deadline set meanwhile holds.
            saved = await store.save_answers_async(student, answers, closed_by=exam_closed)
        except SavingClosed as closed:
            return _json_error(409, str(closed))
        except ValueError as error:
            return _json_error(400, str(error))
        blanks = classdata.blanks(student)
        return JSONResponse({"saved_at": saved["saved_at"],
                             "readings": {label: marks.reading(blanks[label], text) for label, text in answers.items()}},
                            headers=_NO_STORE)

    @app.post("/api/check")
    async def check(request: Request):
        student = api_student(request)
        if isinstance(student, JSONResponse):
            return student
        checked = await run_in_threadpool(check_for, student)
        if isinstance(checked, JSONResponse):
            return checked
        answers, marked, result = checked
        await store.add_attempt_async(student, answers, result)
        return JSONResponse({"verdicts": result, "score": marks.total_text(marked.score),
                             "out_of": marks.total_text(marked.out_of)}, headers=_NO_STORE)

    def check_for(student: str):
        """The student's answers, marked: (answers, the marker's result, the verdicts), or the error to answer with."""
        state, answers = store.check_inputs(student)
        if state["mode"] != PRACTICE:
            return _json_error(403, "this is an exam: marks come when your teacher releases them")
        marked = marks.mark(classdata.key(student), answers, student)
        return answers, marked, marks.verdicts(marked)

    @app.post("/api/submit")
    async def submit(request: Request):
        student = api_student(request)
        if isinstance(student, JSONResponse):
            return student
        await run_in_threadpool(store.submit, student)
        return JSONResponse({"submitted": True}, headers=_NO_STORE)

    # ----- the teacher's pages ------------------------------------------------------------------------------

    def is_teacher(request: Request) -> bool:
        return bool(request.session.get("teacher"))

    @app.get("/teacher", response_class=HTMLResponse)
    def teacher_home(request: Request):
        if not is_teacher(request):
            return page("teacher_signin.html.j2", request, error="")
        overview = store.students_overview()
        marked = [marks.mark(classdata.key(s["id"]), store.answers(s["id"]), s["id"], s["name"])
                  for s in overview if s["answers"]]
        return page("teacher.html.j2", request, state=settings(), students=overview,
                    missed=marks.most_missed(marked), marked={m.student_id: m for m in marked},
                    points=marks.points_text, total=marks.total_text)

    @app.post("/teacher/signin")
    async def teacher_signin(request: Request):
        form = await request.form()
        if not csrf_ok(request, form.get(CSRF_FIELD)):
            return _forbidden("the form expired; reload the page and try again")
        return await run_in_threadpool(teacher_sign_in, request, str(form.get("token", ""))[:200])

    def teacher_sign_in(request: Request, sent: str) -> Response:
        if throttled(request):
            return page("message.html.j2", request, 429, heading="Too many attempts",
                        message=f"Too many wrong tokens from this computer; try again in {SIGN_IN_WINDOW_S // 60} minutes.")
        good = bool(token) and hmac.compare_digest(sent.encode(), token.encode())
        store.record_sign_in(client_address(request), good)
        if not good:
            return page("teacher_signin.html.j2", request, 401, error="That is not the teacher token.")
        request.session.clear()
        request.session["teacher"] = True
        return RedirectResponse("/teacher", status_code=303)

    async def teacher_form(request: Request):
        """The form of a teacher's POST, or None when the request is not a signed-in teacher's with its token."""
        if not is_teacher(request):
            return None
        form = await request.form()
        return form if csrf_ok(request, form.get(CSRF_FIELD)) else None

    @app.post("/teacher/settings")
    async def teacher_settings(request: Request):
        form = await teacher_form(request)
        if form is None:
            return _forbidden("teachers only, with a fresh page")
        mode = str(form.get("mode", ""))
        if mode not in (PRACTICE, EXAM):
            return PlainTextResponse(f"mode {mode[:20]!r} is not accepted; accepted: practice, exam", status_code=400)
        deadline = str(form.get("deadline", "")).strip()
        if deadline:
            try:
                parsed = datetime.fromisoformat(deadline)
                # Local time unless a zone is given; a date at the calendar's ends has no UTC time (year 0, 9999+).
                deadline = (parsed if parsed.tzinfo else parsed.astimezone()).astimezone(timezone.utc).isoformat()
            except (ValueError, OverflowError):
                return PlainTextResponse(f"deadline {deadline[:30]!r} is not accepted; accepted: a date and time "
                                         "such as 2026-12-18T17:00", status_code=400)
        await run_in_threadpool(lambda: store.set_settings(mode=mode, deadline=deadline))
        return RedirectResponse("/teacher", status_code=303)

    @app.post("/teacher/release")
    async def teacher_release(request: Request):
        if await teacher_form(request) is None:
            return _forbidden("teachers only, with a fresh page")
        await run_in_threadpool(store.release)
        return RedirectResponse("/teacher", status_code=303)

    @app.post("/teacher/reopen/{student:path}")
    async def teacher_reopen(request: Request, student: str):
        if await teacher_form(request) is None:
            return _forbidden("teachers only, with a fresh page")
        if student not in classdata.students:
            return PlainTextResponse("no such student", status_code=404)
        if settings()["released_at"]:
            return PlainTextResponse("the marks have been released: the exam is closed for everyone, and a sheet "
                                     "cannot be reopened after release", status_code=409)
        await run_in_threadpool(store.reopen, student)
        return RedirectResponse(f"/teacher/student/{quote(student, safe='')}", status_code=303)

    @app.get("/teacher/student/{student:path}", response_class=HTMLResponse)
    def teacher_student(request: Request, student: str):
        if not is_teacher(request):
            return RedirectResponse("/teacher", status_code=303)
        if student not in classdata.students:
            return PlainTextResponse("no such student", status_code=404)
        answers = store.answers(student)
        marked = marks.mark(classdata.key(student), answers, student)
        return page("teacher_student.html.j2", request, student=classdata.students[student], marked=marked,
                    answers=answers, attempts=store.attempts(student), info=store.student(student),
                    expected=marks.expected_text, points=marks.points_text, total=marks.total_text)

    def report(request: Request, name: str) -> Response:
        if not is_teacher(request):
            return _forbidden("teachers only")
        students = [marks.mark(classdata.key(s.id), store.answers(s.id), s.id, s.name)
                    for s in classdata.students.values()]
        text = marks.reports(students, classdata.title)[name]
        return Response(text, media_type="text/csv; charset=utf-8", headers={
            **_NO_STORE, "Content-Disposition": f'attachment; filename="{classdata.name}-{name}"'})

    @app.get("/teacher/marks.csv")
    def marks_download(request: Request):
        return report(request, "marks.csv")

    @app.get("/teacher/details.csv")
    def details_download(request: Request):
        return report(request, "details.csv")

    @app.post("/teacher/import")
    async def teacher_import(request: Request):
        form = await teacher_form(request)
        if form is None:
            return _forbidden("teachers only, with a fresh page")
        upload = form.get("file")
        if upload is None or not hasattr(upload, "read"):
            return PlainTextResponse("no file; accepted: an answers CSV (student_id,variant,blank,answer)", 400)
        raw = await upload.read()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            return PlainTextResponse("the file is not UTF-8 text; accepted: an answers CSV saved as UTF-8", 400)
        rows, issues = parse_answers(text, upload.filename or "upload.csv")
        by_student: dict[str, dict[str, str]] = {}
        skipped = [str(issue) for issue in issues]
        for row in rows[:MAX_IMPORT_ROWS]:
            reason = import_refusal(row)
            if reason:
                skipped.append(f"{row.file}:{row.row}: {reason}")
            else:
                by_student.setdefault(row.student_id, {})[row.label] = row.answer
        skipped += [f"{row.file}:{row.row}: past the first {MAX_IMPORT_ROWS} rows" for row in rows[MAX_IMPORT_ROWS:]]
        for student, answers in by_student.items():
            await run_in_threadpool(store.save_answers, student, answers)
        imported = sum(map(len, by_student.values()))
        return page("message.html.j2", request, heading="Answers imported",
                    message=f"{imported} answers of {len(by_student)} students imported; {len(skipped)} "
                            f"{'row' if len(skipped) == 1 else 'rows'} skipped.", details=skipped[:20])

    def import_refusal(row) -> str:
        """Why an imported row is not saved (as the mark command refuses it), or ""."""
        student = classdata.students.get(row.student_id)
        if student is None:
            return f"no student {row.student_id[:40]!r} in this class"
        if row.variant and row.variant != student.variant:  # as the mark command: an empty variant is no claim
            return (f"answer variant {row.variant[:20]!r}, but this student's key is variant {student.variant}")
        if row.label not in classdata.labels(row.student_id):
            return f"no blank labelled {row.label[:40]!r} on this student's sheet"
        # An answer past the page's own limit is skipped, not cut: cut, "1" and 200 spaces then "/3" would read 1.
        if len(row.answer) > MAX_TEXT:
            return f"the answer is too long (more than {MAX_TEXT} characters)"
        return ""

    return app


_NO_STORE = {"Cache-Control": "no-store"}


def _shown(url: str) -> str:
    """A database URL as messages print it: any password hidden."""
    return re.sub(r"(//[^:/@]+:)[^@]*@", r"\1***@", str(url))


def _forbidden(reason: str) -> PlainTextResponse:
    return PlainTextResponse(f"forbidden: {reason}", status_code=403)


def _json_error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=_NO_STORE)


def new_teacher_token() -> str:
    """A fresh teacher token (printed once at start when none is given)."""
    return secrets.token_urlsafe(18)
