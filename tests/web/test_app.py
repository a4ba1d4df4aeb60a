"""The web page from the student's and the teacher's side, in-process: sign-in, saving, marking, exam secrecy, security."""

from __future__ import annotations

import json
import re
from html import escape as html_escape, unescape as html_unescape
import shutil
import warnings
from pathlib import Path

import pytest

from generator.documents.sheet import with_checksum
from generator.cli import main
from generator.web.app import create_app
from generator.web.security import SIGN_IN_FAILURES
from generator.web.codes import access_code, class_secret

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

EXAMPLE = Path(__file__).resolve().parents[2] / "examples"
TOKEN = "teacher-token-for-tests"


@pytest.fixture(scope="module")
def built_class(tmp_path_factory) -> Path:
    """The example assignment and roster as a class folder (no PDFs), built once."""
    folder = tmp_path_factory.mktemp("class") / "week3"
    assert main(["class", str(EXAMPLE / "assignment.toml"), str(EXAMPLE / "roster.csv"), "--out", str(folder)]) == 0
    return folder


@pytest.fixture
def folder(built_class, tmp_path) -> Path:
    """A fresh copy of the class folder per test: its own database."""
    copy = tmp_path / "week3"
    shutil.copytree(built_class, copy)
    return copy


@pytest.fixture(params=("sqlite", "postgresql"))
def app(request, folder):
    """The app on the class folder's own SQLite file, and on a new database of the tests' PostgreSQL server."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    return create_app(folder, database_url=url, teacher_token=TOKEN)


def _client(app) -> TestClient:
    return TestClient(app, base_url="http://testserver")


def _code(folder: Path, student: str) -> str:
    return access_code(class_secret(folder), "week3", student)


def _csrf(html: str) -> str:
    return re.search(r'name="csrf-token" content="([^"]+)"', html)[1]


def _student(app, folder, student="s001") -> tuple[TestClient, str, str]:
    """A browser signed in as the student: the client, the sheet's HTML and its CSRF token."""
    client = _client(app)
    page = client.get(f"/s/{_code(folder, student)}", follow_redirects=True)
    assert page.status_code == 200 and str(page.url).endswith("/sheet")
    return client, page.text, _csrf(page.text)


def _teacher(app) -> tuple[TestClient, str]:
    client = _client(app)
    csrf = _csrf(client.get("/teacher").text)
    page = client.post("/teacher/signin", data={"token": TOKEN, "csrf_token": csrf}, follow_redirects=True)
    assert page.status_code == 200 and "Most missed blanks" in page.text
    return client, _csrf(page.text)


def _key(folder: Path, student: str) -> dict:
    stem = json.loads((folder / "class.json").read_text())["students"]
    stem = next(s["stem"] for s in stem if s["id"] == student)
    return json.loads((folder / "students" / f"{stem}-key.json").read_text())


def _blanks(folder: Path, student: str) -> list[dict]:
    return [b for p in _key(folder, student)["problems"] for b in p["blanks"]]


def test_the_page_shows_the_students_own_variant_with_one_input_per_blank(app, folder):
    _, html, _ = _student(app, folder)
    labels = set(re.findall(r'data-label="([^"]+)"', html))
    assert labels == {b["label"] for b in _blanks(folder, "s001")}
    assert "Zo\u00eb \u00c5ngstr\u00f6m-O&#39;Brien" in html  # the name as written, escaped
    assert _key(folder, "s001")["variant"] in html


def test_a_wrong_code_is_refused_without_saying_whose_it_is_and_sign_in_is_throttled(app, folder):
    client = _client(app)
    csrf = _csrf(client.get("/").text)
    refused = client.post("/signin", data={"code": "AAAA-BBBB-CCCC-DDDD", "csrf_token": csrf})
    assert refused.status_code == 401 and "not a code of this class" in refused.text
    # A class behind one address makes typos: ten more wrong codes leave the right one working.
    for _ in range(10):
        client.post("/signin", data={"code": "AAAA-BBBB-CCCC-DDDD", "csrf_token": csrf})
    assert client.post("/signin", data={"code": _code(folder, "s001"), "csrf_token": csrf},
                       follow_redirects=False).status_code == 303
    client = _client(app)
    csrf = _csrf(client.get("/").text)
    for _ in range(SIGN_IN_FAILURES - 11):
        client.post("/signin", data={"code": "AAAA-BBBB-CCCC-DDDD", "csrf_token": csrf})
    # Even the right code waits once this address has failed too often.
    assert client.post("/signin", data={"code": _code(folder, "s001"), "csrf_token": csrf}).status_code == 429


def test_codes_are_read_whatever_the_case_dashes_and_spaces(app, folder):
    code = _code(folder, "s002").lower().replace("-", " ")
    client = _client(app)
    csrf = _csrf(client.get("/").text)
    page = client.post("/signin", data={"code": code, "csrf_token": csrf}, follow_redirects=True)
    assert page.status_code == 200 and "Jos\u00e9" in page.text


def test_every_change_is_saved_read_with_the_markers_parser_and_kept_across_a_reload(app, folder):
    client, html, csrf = _student(app, folder)
    saved = client.post("/api/answers", json={"answers": {"1a C[0,0]": "\u22123/4", "1a C[0,1]": "2x"}},
                        headers={"X-CSRF-Token": csrf})
    assert saved.status_code == 200
    readings = saved.json()["readings"]
    assert readings["1a C[0,0]"] == {"ok": True, "tex": "- \\frac{3}{4}", "form": "fraction"}
    assert readings["1a C[0,1]"]["ok"] is False and "unknown name 'x'" in readings["1a C[0,1]"]["reason"]
    again = client.get("/sheet").text
    assert 'value="\u22123/4"' in again and 'value="2x"' in again


def test_saves_need_the_pages_token_and_only_the_students_own_labels(app, folder):
    client, _, csrf = _student(app, folder)
    assert client.post("/api/answers", json={"answers": {"1a C[0,0]": "1"}}).status_code == 403
    assert client.post("/api/answers", json={"answers": {"9z Q[0,0]": "1"}},
                       headers={"X-CSRF-Token": csrf}).status_code == 400
    assert client.post("/api/answers", json={"answers": {"1a C[0,0]": "1" * 201}},
                       headers={"X-CSRF-Token": csrf}).status_code == 400
    assert client.post("/api/answers", content=b"{" + b" " * 300_000 + b"}",
                       headers={"X-CSRF-Token": csrf, "Content-Type": "application/json"}).status_code == 413
    assert _client(app).post("/api/answers", json={"answers": {"1a C[0,0]": "1"}}).status_code == 401


def test_practice_check_marks_right_wrong_and_follow_through_and_keeps_every_attempt(app, folder):
    client, _, csrf = _student(app, folder)
    blanks = {b["label"]: b for b in _blanks(folder, "s001")}
    right = {label: b["value"] for label, b in blanks.items() if label.startswith("1a ")}
    client.post("/api/answers", json={"answers": right}, headers={"X-CSRF-Token": csrf})
    first = client.post("/api/check", headers={"X-CSRF-Token": csrf}).json()["verdicts"]
    assert all(first[label]["status"] == "right" for label in right)
    assert first["1b D[0,0]"]["status"] == "not answered"
    wrong = {"1a C[0,0]": str(int(blanks["1a C[0,0]"]["value"]) + 1)}
    client.post("/api/answers", json={"answers": wrong}, headers={"X-CSRF-Token": csrf})
    second = client.post("/api/check", headers={"X-CSRF-Token": csrf}).json()["verdicts"]
    assert second["1a C[0,0]"]["status"] == "wrong"
    teacher, _ = _teacher(app)
    assert "2 checks" in teacher.get("/teacher/student/s001").text


def _exam_responses(folder: Path) -> list[str]:
    """Everything a student can get in an exam, in order: pages, saves, a refused check, the teacher's pages, submit."""
    app = create_app(folder, teacher_token=TOKEN)
    teacher, tcsrf = _teacher(app)
    assert teacher.post("/teacher/settings", data={"mode": "exam", "deadline": "", "csrf_token": tcsrf},
                        follow_redirects=True).status_code == 200
    client, html, csrf = _student(app, folder)
    headers = {"X-CSRF-Token": csrf}
    answers = {b["label"]: "7" for b in _blanks(folder, "s001") if b["kind"] == "number"}
    choices = {b["label"]: b["choices"][0] for b in _blanks(folder, "s001") if b["kind"] == "choice"}
    return [html, client.get("/sheet").text,
            client.post("/api/answers", json={"answers": answers | choices}, headers=headers).text,
            client.post("/api/check", headers=headers).text, client.get("/teacher").text,
            client.get("/teacher/marks.csv").text, client.get("/teacher/student/s001", follow_redirects=True).text,
            client.post("/api/submit", headers=headers).text, client.get("/sheet").text]


def _without_tokens_and_times(text: str) -> str:
    text = re.sub(r'(csrf[-_]token"? (?:content|value)=")[^"]+', r"\1", text)
    return re.sub(r"\d{4}-\d\d-\d\dT[\d:.]+\+00:00", "TIME", text)


def test_in_an_exam_nothing_a_student_can_get_depends_on_the_key(folder, tmp_path):
    # The same requests against the real key and against a key whose every value was changed (numbers to a
    # sentinel, each choice's answer to another option): every response is the same, and no sentinel shows.
    real = _exam_responses(folder)
    tampered = tmp_path / "tampered"
    shutil.copytree(folder, tampered)
    (tampered / "answers.sqlite3").unlink(missing_ok=True)
    key_path = next((tampered / "students").glob("s001-key.json"))
    key = json.loads(key_path.read_text())
    for problem in key["problems"]:
        for blank in problem["blanks"]:
            if blank["kind"] == "choice":
                blank["value"] = next(c for c in blank["choices"] if c != blank["value"])
            else:
                blank.update(value="-98765/4321", decimal="-22.857", rational=True)
                if "table_value" in blank:
                    blank.update(table_value="-22.8572", accepted=["-22.86", "-22.85"])
    key_path.write_text(json.dumps(with_checksum(key)))  # sealed again, or the marker would refuse it
    changed = _exam_responses(tampered)
    assert all("98765" not in r and "22.85" not in r for r in changed)
    assert [_without_tokens_and_times(r) for r in changed] == [_without_tokens_and_times(r) for r in real]


def test_after_submitting_an_exam_nothing_more_is_saved_until_the_teacher_reopens(app, folder):
    teacher, tcsrf = _teacher(app)
    teacher.post("/teacher/settings", data={"mode": "exam", "deadline": "", "csrf_token": tcsrf})
    client, _, csrf = _student(app, folder)
    headers = {"X-CSRF-Token": csrf}
    assert client.post("/api/answers", json={"answers": {"1a C[0,0]": "1"}}, headers=headers).status_code == 200
    assert client.post("/api/submit", headers=headers).status_code == 200
    assert client.post("/api/answers", json={"answers": {"1a C[0,0]": "2"}}, headers=headers).status_code == 409
    teacher.post("/teacher/reopen/s001", data={"csrf_token": tcsrf})
    assert client.post("/api/answers", json={"answers": {"1a C[0,0]": "2"}}, headers=headers).status_code == 200


def test_a_deadline_closes_saving_in_an_exam(app, folder):
    teacher, tcsrf = _teacher(app)
    teacher.post("/teacher/settings", data={"mode": "exam", "deadline": "2000-01-01T00:00+00:00", "csrf_token": tcsrf})
    client, _, csrf = _student(app, folder)
    refused = client.post("/api/answers", json={"answers": {"1a C[0,0]": "1"}}, headers={"X-CSRF-Token": csrf})
    assert refused.status_code == 409 and "deadline" in refused.json()["error"]


def test_released_marks_reach_the_student(app, folder):
    teacher, tcsrf = _teacher(app)
    teacher.post("/teacher/settings", data={"mode": "exam", "deadline": "", "csrf_token": tcsrf})
    client, _, csrf = _student(app, folder)
    value = next(b["value"] for b in _blanks(folder, "s001") if b["label"] == "1a C[0,0]")
    client.post("/api/answers", json={"answers": {"1a C[0,0]": value}}, headers={"X-CSRF-Token": csrf})
    assert "v-right" not in client.get("/sheet").text
    teacher.post("/teacher/release", data={"csrf_token": tcsrf})
    assert "v-right" in client.get("/sheet").text


def test_the_teachers_pages_refuse_students_and_forms_without_the_token(app, folder):
    client, _, csrf = _student(app, folder)
    assert "teacher token" in client.get("/teacher").text  # the sign-in form, nothing of the class
    assert client.get("/teacher/marks.csv").status_code == 403
    assert client.post("/teacher/release", data={"csrf_token": csrf}).status_code == 403
    teacher, tcsrf = _teacher(app)
    assert teacher.post("/teacher/release", data={}).status_code == 403  # no CSRF token
    wrong = _client(app)
    page = wrong.post("/teacher/signin", data={"token": "guess", "csrf_token": _csrf(wrong.get("/teacher").text)})
    assert page.status_code == 401


def test_marks_csv_is_the_same_report_as_the_mark_command(app, folder, tmp_path):
    client, _, csrf = _student(app, folder)
    blanks = _blanks(folder, "s001")
    answers = {b["label"]: b["value"] for b in blanks[:5]} | {blanks[5]["label"]: "1/3"}
    client.post("/api/answers", json={"answers": answers}, headers={"X-CSRF-Token": csrf})
    teacher, _ = _teacher(app)
    web = teacher.get("/teacher/marks.csv").text
    variant = _key(folder, "s001")["variant"]
    lines = ["student_id,variant,blank,answer"] + [f"s001,{variant},{label},{text}" for label, text in answers.items()]
    answers_csv = tmp_path / "answers.csv"
    answers_csv.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert main(["mark", str(answers_csv), "--class", str(folder), "--out", str(tmp_path / "marks")]) == 0
    cli = (tmp_path / "marks" / "marks.csv").read_text(encoding="utf-8")
    ours = [row for row in web.splitlines() if row.startswith("s001,")]
    theirs = [row for row in cli.splitlines() if row.startswith("s001,")]
    assert ours == theirs and web.splitlines()[0] == cli.splitlines()[0]


def test_a_teacher_imports_an_answers_csv(app, folder):
    teacher, tcsrf = _teacher(app)
    variant = _key(folder, "s002")["variant"]
    text = f"student_id,variant,blank,answer\ns002,{variant},1a C[0,0],5\ns002,{variant},1a C[0,1],=cmd()\n"
    page = teacher.post("/teacher/import", data={"csrf_token": tcsrf},
                        files={"file": ("answers.csv", text.encode(), "text/csv")})
    assert page.status_code == 200 and "2 answers of 1 students imported" in page.text
    assert "s002" in teacher.get("/teacher").text
    # An answer longer than the page accepts is skipped, never cut into another number ("1", spaces, then "/3").
    long = "1" + " " * 200 + "/3"
    text = f"student_id,variant,blank,answer\ns002,{variant},1a C[0,0],{long}\n"
    page = teacher.post("/teacher/import", data={"csrf_token": tcsrf},
                        files={"file": ("answers.csv", text.encode(), "text/csv")})
    assert "0 answers of 0 students imported; 1 row skipped" in page.text and "too long" in page.text
    client, html, _ = _student(app, folder, "s002")
    assert 'value="5"' in html  # the answer imported before stands


def test_serve_refuses_bad_input_in_one_line(folder, tmp_path, capsys):
    assert main(["serve", str(tmp_path / "no-such-class")]) == 2
    assert "not a class folder" in capsys.readouterr().err
    assert main(["serve", str(folder), "--database", "mysql://x/y"]) == 2
    assert "not supported; accepted:" in capsys.readouterr().err
    assert main(["serve", str(folder), "--teacher-token", "short"]) == 2  # a guessable token, refused before listening
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the teacher token has 5 characters; accepted: at least 12" in err
    for workers in ("0", "99", "two"):
        assert main(["serve", str(folder), "--workers", workers]) == 2
        assert "accepted: a whole number from 1 to 8" in capsys.readouterr().err
    (folder / "answers.sqlite3").mkdir()  # a database that cannot be opened for writing
    assert main(["serve", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot open the database" in err
    (folder / "secret.key").unlink()
    assert main(["serve", str(folder), "--database", f"sqlite:///{tmp_path / 'x.sqlite3'}"]) == 2
    assert "no class secret" in capsys.readouterr().err


def test_released_exam_marks_close_the_exam(app, folder):
    teacher, tcsrf = _teacher(app)
    teacher.post("/teacher/settings", data={"mode": "exam", "deadline": "", "csrf_token": tcsrf})
    teacher.post("/teacher/release", data={"csrf_token": tcsrf})
    client, html, csrf = _student(app, folder)
    refused = client.post("/api/answers", json={"answers": {"1a C[0,0]": "1"}}, headers={"X-CSRF-Token": csrf})
    assert refused.status_code == 409 and "released" in refused.json()["error"]
    assert "This exam is closed" in html


def test_most_missed_counts_unreadable_answers_apart_from_empty_ones(app, folder):
    blanks = {b["label"]: b for b in _blanks(folder, "s001")}
    wrong = str(int(blanks["1a C[0,0]"]["value"]) + 1)
    for student, answers in (("s001", {"1a C[0,0]": wrong, "1a C[0,1]": "2x"}), ("s002", {"1a C[0,1]": "??"})):
        client, _, csrf = _student(app, folder, student)
        client.post("/api/answers", json={"answers": answers}, headers={"X-CSRF-Token": csrf})
    teacher, _ = _teacher(app)
    table = teacher.get("/teacher").text.split("Most missed blanks", 1)[1]
    assert "<th>Wrong</th><th>Cannot be read</th><th>Not answered</th>" in table
    rows = {cells[0]: cells[1:4] for cells in (re.findall(r"<td>(.*?)</td>", row) for row in re.findall(
        r"<tr><td>.*?</tr>", table))}
    # The two students who saved are marked: s001 wrong where s002 left it empty; both typed what is no number.
    assert rows["1a C[0,0]"] == ["1", "0", "1"]
    assert rows["1a C[0,1]"] == ["0", "2", "0"]


def test_an_import_skips_rows_for_another_variant_and_says_why(app, folder):
    teacher, tcsrf = _teacher(app)
    variant = _key(folder, "s002")["variant"]
    text = (f"student_id,variant,blank,answer\ns002,{variant},1a C[0,0],5\ns002,WRONG-VAR,1a C[0,1],3\n"
            f"nobody,{variant},1a C[0,0],1\ns002,{variant},9z Q[0,0],1\n")
    page = teacher.post("/teacher/import", data={"csrf_token": tcsrf},
                        files={"file": ("answers.csv", text.encode(), "text/csv")})
    assert "1 answers of 1 students imported; 3 rows skipped" in page.text
    assert "answer variant &#39;WRONG-VAR&#39;, but this student&#39;s key is variant" in page.text
    assert "no student &#39;nobody&#39;" in page.text and "no blank labelled &#39;9z Q[0,0]&#39;" in page.text
    client, html, _ = _student(app, folder, "s002")
    assert 'value="5"' in html and 'value="3"' not in html


@pytest.mark.parametrize("odd", ["a/b", "x#1?y", "<b>x</b>", "50%"])
def test_the_teachers_page_reaches_a_student_whatever_their_id(odd, tmp_path):
    (tmp_path / "roster.csv").write_text(f"id,name\n\"{odd}\",Odd Id\ns2,Plain\n", encoding="utf-8")
    assert main(["class", str(EXAMPLE / "assignment.toml"), str(tmp_path / "roster.csv"), "--out",
                 str(tmp_path / "cls")]) == 0
    teacher, tcsrf = _teacher(create_app(tmp_path / "cls", teacher_token=TOKEN))
    link = re.search(r'<a href="(/teacher/student/[^"]+)">' + re.escape(html_escape(odd)) + "</a>",
                     teacher.get("/teacher").text)[1]
    page = teacher.get(html_unescape(link))
    assert page.status_code == 200 and "Odd Id" in page.text
    action = re.search(r'action="(/teacher/reopen/[^"]+)"', page.text)[1]
    reopened = teacher.post(html_unescape(action), data={"csrf_token": tcsrf}, follow_redirects=True)
    assert reopened.status_code == 200 and "Odd Id" in reopened.text


def test_bad_bodies_and_dates_are_refused_not_crashed(app, folder):
    client, _, csrf = _student(app, folder)
    deep = client.post("/api/answers", content=b"[" * 100_000 + b"]" * 100_000,
                       headers={"X-CSRF-Token": csrf, "Content-Type": "application/json"})
    assert deep.status_code == 400
    teacher, tcsrf = _teacher(app)
    for deadline in ("0001-01-01T00:00+05:00", "next friday"):  # year 0 in UTC; not a date
        answer = teacher.post("/teacher/settings", data={"mode": "exam", "deadline": deadline, "csrf_token": tcsrf})
        assert answer.status_code == 400 and "is not accepted" in answer.text, deadline


def test_after_release_the_sheet_shows_the_score_and_reopen_says_it_cannot(app, folder):
    client, _, csrf = _student(app, folder, "s003")
    blanks = _blanks(folder, "s003")
    client.post("/api/answers", json={"answers": {blanks[0]["label"]: blanks[0]["value"]}},
                headers={"X-CSRF-Token": csrf})
    teacher, tcsrf = _teacher(app)
    teacher.post("/teacher/settings", data={"mode": "exam", "deadline": "", "csrf_token": tcsrf})
    teacher.post("/teacher/release", data={"csrf_token": tcsrf})
    html = client.get("/sheet").text
    assert "every change is saved" not in html and "marks are released" in html
    assert re.search(r'<span id="score"[^>]*>Score: [0-9.]+ / [0-9.]+</span>', html), html[-800:]
    refused = teacher.post("/teacher/reopen/s003", data={"csrf_token": tcsrf})
    assert refused.status_code == 409 and "cannot be reopened after release" in refused.text
