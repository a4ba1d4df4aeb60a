"""The real server under a class's load, bounded: 30 students sign in and save 20 times each, all at once (each save
its own request, as the page sends them), then all press Check; every save is acknowledged and is there afterwards
with its last text, on the page and in the database. No timing is asserted here: the speed goals live in
`make bench-web` (generator/bench.py). About 10 s."""

from __future__ import annotations

import asyncio
import html
import re
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from generator.cli import main
from generator.web.codes import access_code, class_secret

pytestmark = pytest.mark.slow  # a bounded load on the real server (about 10 s)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples"
STUDENTS = 30
BOXES = 10  # each box saved twice: a slip first, then the final text
CONNECTIONS = 16
BOUND_S = 60  # the whole load; it takes a few seconds


@pytest.fixture(scope="module")
def class_folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("loadclass")
    roster = root / "roster.csv"
    roster.write_text("id,name\n" + "".join(f"s{n:03d},Student {n}\n" for n in range(1, STUDENTS + 1)),
                      encoding="utf-8")
    folder = root / "week3"
    assert main(["class", str(EXAMPLE / "assignment.toml"), str(roster), "--out", str(folder)]) == 0
    return folder


@pytest.fixture
def server(class_folder):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(class_folder.parent / "server.log", "w+", encoding="utf-8")
    process = subprocess.Popen([sys.executable, "-m", "generator", "serve", str(class_folder), "--port", str(port),
                                "--teacher-token", "load-test-token"], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(url + "/", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            log.seek(0)
            raise AssertionError(f"the server did not start: {log.read()[-2000:]}")
        time.sleep(0.1)
    yield url
    process.terminate()
    process.wait(timeout=20)
    log.seek(0)
    output = log.read()
    log.close()
    assert "Traceback" not in output, output[-3000:]


async def _class_at_work(url: str, folder: Path) -> dict:
    secret = class_secret(folder)
    transport = httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=CONNECTIONS))
    gate = asyncio.Semaphore(CONNECTIONS)
    acknowledged: dict[str, dict[str, str]] = {}
    final: dict[str, dict[str, str]] = {}
    checked: dict[str, dict] = {}
    clients: dict[str, tuple[httpx.AsyncClient, str]] = {}

    async def student(n: int) -> None:
        student_id = f"s{n:03d}"
        client = httpx.AsyncClient(base_url=url, transport=transport, follow_redirects=True, timeout=30)
        async with gate:
            page = await client.get(f"/s/{access_code(secret, 'week3', student_id)}")
        assert page.status_code == 200, (student_id, page.status_code)
        csrf = re.search(r'name="csrf-token" content="([^"]+)"', page.text)[1]
        clients[student_id] = (client, csrf)
        labels = [html.unescape(label) for label in dict.fromkeys(
            re.findall(r'<input type="text"[^>]*data-label="([^"]+)"', page.text))][:BOXES]
        assert len(labels) == BOXES
        final[student_id] = {label: f"{n}/{k + 2}" for k, label in enumerate(labels)}
        acknowledged[student_id] = {}
        for label, text in final[student_id].items():
            for sent in (text + "9", text):  # a slip, then the final text: the last save must win
                async with gate:
                    response = await client.post("/api/answers", json={"answers": {label: sent}},
                                                 headers={"X-CSRF-Token": csrf})
                assert response.status_code == 200, (student_id, label, response.status_code, response.text[:200])
                assert "saved_at" in response.json()
                acknowledged[student_id][label] = sent

    async def check(student_id: str) -> None:
        client, csrf = clients[student_id]
        async with gate:
            response = await client.post("/api/check", headers={"X-CSRF-Token": csrf})
        assert response.status_code == 200, (student_id, response.status_code, response.text[:200])
        checked[student_id] = response.json()

    await asyncio.gather(*(student(n) for n in range(1, STUDENTS + 1)))
    await asyncio.gather(*(check(s) for s in clients))
    pages = {}
    for student_id, (client, _) in clients.items():
        async with gate:
            pages[student_id] = (await client.get("/sheet")).text
    await transport.aclose()
    return {"acknowledged": acknowledged, "final": final, "checked": checked, "pages": pages}


def test_a_class_saving_at_once_keeps_every_acknowledged_save(server, class_folder):
    start = time.monotonic()
    result = asyncio.run(asyncio.wait_for(_class_at_work(server, class_folder), BOUND_S))
    assert time.monotonic() - start < BOUND_S
    final, acknowledged = result["final"], result["acknowledged"]
    assert len(acknowledged) == STUDENTS
    assert all(acknowledged[s] == final[s] for s in final)  # every save answered 200, the last one the final text
    # Every student's Check marked all of their blanks (the ten typed ones among them).
    for student_id, body in result["checked"].items():
        assert set(final[student_id]) <= set(body["verdicts"]), student_id
    # On the page, each box shows its final text...
    for student_id, page in result["pages"].items():
        for label, text in final[student_id].items():
            shown = re.search(r'data-label="' + re.escape(html.escape(label)) + r'"[^>]*value="([^"]*)"', page)
            assert shown and html.unescape(shown[1]) == text, (student_id, label)
    # ...and so does the database, with one revision per save and one attempt per Check.
    connection = sqlite3.connect(class_folder / "answers.sqlite3")
    try:
        rows = connection.execute("SELECT student_id, label, text, revision FROM answers").fetchall()
        attempts = dict(connection.execute("SELECT student_id, count(*) FROM attempts GROUP BY student_id"))
    finally:
        connection.close()
    stored = {(student_id, label): (text, revision) for student_id, label, text, revision in rows}
    assert len(stored) == STUDENTS * BOXES
    for student_id, answers in final.items():
        for label, text in answers.items():
            assert stored[(student_id, label)] == (text, 2), (student_id, label)
        assert attempts[student_id] == 1
