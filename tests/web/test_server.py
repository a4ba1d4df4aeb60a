"""The real server (uvicorn in its own process) and a real browser (Debian's chromium): saves survive SIGKILL,
answers typed in the page are read, saved and kept across reloads and dropped connections.

Slow for web tests (about 20 s): each starts a server process and waits for it.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from generator.cli import main
from generator.marking.answers import ACCEPTED
from generator.web.codes import access_code, class_secret

pytestmark = pytest.mark.slow  # each test starts the real server in its own process; the browser tests start chromium

EXAMPLE = Path(__file__).resolve().parents[2] / "examples"
TOKEN = "server-test-token"
CHROMIUM = "/usr/bin/chromium"
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def built_class(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("serverclass") / "week3"
    assert main(["class", str(EXAMPLE / "assignment.toml"), str(EXAMPLE / "roster.csv"), "--out", str(folder)]) == 0
    return folder


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`transformer-worksheets serve` in a child process, on a free port."""

    def __init__(self, folder: Path, database_url: str | None = None, workers: int = 1) -> None:
        self.folder, self.port, self.process = folder, _free_port(), None
        self.arguments = ["--database", database_url] if database_url else []
        self.arguments += ["--workers", str(workers)] if workers != 1 else []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "Server":
        self.process = subprocess.Popen(
            [sys.executable, "-m", "generator", "serve", str(self.folder), "--port", str(self.port),
             "--teacher-token", TOKEN, *self.arguments], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        self.process.kill()
        raise AssertionError(f"server did not start: {self.process.stdout.read()}")

    def kill(self) -> None:
        """SIGKILL to the server's main process; its worker processes must stop with it (none may keep the port)."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) != 0:
                    return
            time.sleep(0.1)
        raise AssertionError("the server's worker processes still answer after its main process was killed")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture
def server(built_class, tmp_path):
    folder = tmp_path / "week3"
    shutil.copytree(built_class, folder)
    running = Server(folder).start()
    yield running
    running.stop()


def _signed_in(server: Server, student: str = "s001") -> tuple[httpx.Client, str, str]:
    client = httpx.Client(base_url=server.url, follow_redirects=True, timeout=10)
    page = client.get(f"/s/{access_code(class_secret(server.folder), 'week3', student)}")
    assert page.status_code == 200
    return client, page.text, re.search(r'name="csrf-token" content="([^"]+)"', page.text)[1]


@pytest.fixture(params=("sqlite", "postgresql", "sqlite, two workers"))
def server_on_each_database(request, built_class, tmp_path):
    """The server on the class folder's SQLite file, on a new database of the tests' PostgreSQL server, and on SQLite
    in two worker processes (taking turns to write; both must stop when the main process is killed)."""
    folder = tmp_path / "week3"
    shutil.copytree(built_class, folder)
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    running = Server(folder, url, workers=2 if "two workers" in request.param else 1).start()
    yield running
    running.stop()


def test_no_acknowledged_save_is_lost_when_the_server_is_killed(server_on_each_database):
    server = server_on_each_database
    client, html, csrf = _signed_in(server)
    labels = sorted(set(re.findall(r'<input type="text"[^>]*data-label="([^"]+)"', html)))[:8]
    acknowledged: dict[str, int] = {}
    sent: dict[str, int] = {}
    stop = threading.Event()

    def writer(label: str) -> None:
        own = httpx.Client(base_url=server.url, cookies=client.cookies, timeout=5)
        n = 0
        while not stop.is_set():
            n += 1
            sent[label] = n
            try:
                response = own.post("/api/answers", json={"answers": {label: str(n)}}, headers={"X-CSRF-Token": csrf})
            except httpx.HTTPError:
                return
            if response.status_code == 200:
                acknowledged[label] = n

    threads = [threading.Thread(target=writer, args=(label,)) for label in labels]
    for thread in threads:
        thread.start()
    # Killed in the middle of the load: once enough saves are acknowledged (a loaded machine takes longer), not at
    # a fixed moment.
    deadline = time.monotonic() + 60
    while sum(acknowledged.values()) <= 40 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    server.kill()
    stop.set()
    for thread in threads:
        thread.join()
    assert sum(acknowledged.values()) > 20, acknowledged  # the load really ran
    server.start()
    _, page, _ = _signed_in(server)
    for label in labels:
        stored = re.search(r'data-label="' + re.escape(label) + r'"[^>]*value="(\d*)"', page)
        value = int(stored[1]) if stored and stored[1] else 0
        # The last acknowledged save is there, or a later one that reached the disk as the server died.
        assert acknowledged.get(label, 0) <= value <= sent.get(label, 0), (label, acknowledged.get(label), value)


@pytest.fixture
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"Debian's chromium is not installed ({CHROMIUM}); `make test` installs it")
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=BROWSER_ARGS)
        yield launched
        launched.close()


def test_a_student_types_sees_how_it_was_read_and_keeps_it_across_reloads_and_lost_connections(server, browser):
    context = browser.new_context(viewport={"width": 1100, "height": 1400})
    page = context.new_page()
    page.goto(f"{server.url}/s/{access_code(class_secret(server.folder), 'week3', 's001')}")
    assert page.locator(".katex").count() > 10  # the statements' math is typeset
    assert page.locator(".katex-error").count() == 0
    cells = page.locator("input.cell")
    cells.nth(0).fill("\u22123/4")
    cells.nth(1).fill("2x")
    page.locator('input[data-label="1a C[1,1]"]').fill("1/0")  # a reason with no list of what is accepted
    page.wait_for_function("document.getElementById('save-status').dataset.kind === 'saved'", timeout=3000)
    assert "read as" in page.locator('.reading[data-for="1a C[0,0]"]').inner_text()
    _assert_short_reason(page)
    page.screenshot(path=str(server.folder / "page.png"))
    page.reload()
    assert page.locator('input[data-label="1a C[0,0]"]').input_value() == "\u22123/4"
    _assert_short_reason(page)  # as the server writes it, not only as the script does
    # Offline: the answer waits in the browser, the page says so, and it is sent when the connection is back.
    context.set_offline(True)
    page.locator('input[data-label="1a C[1,0]"]').fill("5")
    page.wait_for_function("document.getElementById('save-status').dataset.kind === 'error'", timeout=5000)
    context.set_offline(False)
    page.wait_for_function("document.getElementById('save-status').dataset.kind === 'saved'", timeout=15000)
    client, html, _ = _signed_in(server)
    assert re.search(r'data-label="1a C\[1,0\]"[^>]*value="5"', html)
    # Check marks every blank, with the words on the page.
    page.click("#check")
    page.wait_for_function("document.getElementById('score').textContent.startsWith('Score')", timeout=5000)
    assert page.locator(".verdict .v-wrong, .verdict .v-right").count() >= 2
    context.close()


def _transpose_slip(folder: Path) -> dict[str, str]:
    """Problem 2 answered with Kᵀ left untransposed (a named mistake) and S = Q·(that Kᵀ) (follow-through)."""
    import json
    import sympy
    key = json.loads((folder / "students" / "s001-key.json").read_text())
    given = key["problems"][1]["given"]
    q, k = (sympy.Matrix(sympy.sympify(given[name])) for name in ("Q", "K"))
    s = q * k
    return {f"2a KT[{i},{j}]": str(k[i, j]) for i in range(2) for j in range(2)} | {
        f"2b S[{i},{j}]": str(s[i, j]) for i in range(2) for j in range(2)}


def _carried(folder: Path) -> str:
    """An entry of S that the slip changes (where Q·K and Q·Kᵀ differ): it earns follow-through, not 'right'."""
    import json
    import sympy
    given = json.loads((folder / "students" / "s001-key.json").read_text())["problems"][1]["given"]
    q, k = (sympy.Matrix(sympy.sympify(given[name])) for name in ("Q", "K"))
    i, j = next((i, j) for i in range(2) for j in range(2) if (q * k)[i, j] != (q * k.T)[i, j])
    return f"2b S[{i},{j}]"


def _type(page, answers: dict[str, str]) -> None:
    for label, text in answers.items():
        page.locator(f'input[data-label="{label}"]').fill(text)
    page.wait_for_function("document.getElementById('save-status').dataset.kind === 'saved'", timeout=5000)


def test_a_slip_carried_forward_gets_follow_through_and_the_named_mistake_in_practice(server, browser):
    page = browser.new_page(viewport={"width": 1100, "height": 1400})
    page.goto(f"{server.url}/s/{access_code(class_secret(server.folder), 'week3', 's001')}")
    _type(page, _transpose_slip(server.folder))
    assert "read as" in page.locator('.reading[data-for="2b S[0,0]"]').inner_text()
    page.click("#check")
    page.wait_for_function("document.getElementById('score').textContent.startsWith('Score')", timeout=5000)
    assert "the result is transposed" in page.locator('.verdict[data-for="2a KT[0,1]"]').inner_text()
    assert page.locator(f'.verdict[data-for="{_carried(server.folder)}"]').inner_text().startswith("follow-through")
    page.locator("#problem-2").screenshot(path=str(server.folder / "practice.png"))


def test_in_an_exam_the_page_shows_nothing_until_the_marks_are_released(server, browser):
    teacher = httpx.Client(base_url=server.url, follow_redirects=True, timeout=10)
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', teacher.get("/teacher").text)[1]
    page_html = teacher.post("/teacher/signin", data={"token": TOKEN, "csrf_token": csrf}).text
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', page_html)[1]
    teacher.post("/teacher/settings", data={"mode": "exam", "deadline": "", "csrf_token": csrf})
    page = browser.new_page(viewport={"width": 1100, "height": 1400})
    page.goto(f"{server.url}/s/{access_code(class_secret(server.folder), 'week3', 's001')}")
    assert page.locator("#check").count() == 0
    _type(page, _transpose_slip(server.folder))
    page.reload()
    assert page.locator(".verdict span").count() == 0
    teacher.post("/teacher/release", data={"csrf_token": csrf})
    page.reload()
    assert "the result is transposed" in page.locator('.verdict[data-for="2a KT[0,1]"]').inner_text()
    assert page.locator(f'.verdict[data-for="{_carried(server.folder)}"]').inner_text().startswith("follow-through")
    assert page.locator("input.cell").first.is_disabled()  # released: the exam is closed


@pytest.fixture(scope="module")
def wide_class(tmp_path_factory) -> Path:
    """A class whose sheet has long inline formulas (dγ₂ = Σᵢ dH₂[i,:] ⊙ R̂₂[i,:], …) and a 2 × 4 matrix of inputs."""
    folder = tmp_path_factory.mktemp("wideclass")
    assignment = folder / "assignment.toml"
    assignment.write_text('name = "addnorm"\ntitle = "Add and Norm"\nseed = 7\ncalculator = "basic"\n'
                          '[[problems]]\ntype = "training_step"\noptions = { norm = "post" }\npoints = 10\n')
    roster = folder / "roster.csv"
    roster.write_text("id,name\ns1,Nguyễn Văn An\n", encoding="utf-8")
    assert main(["class", str(assignment), str(roster), "--out", str(folder / "addnorm")]) == 0
    return folder / "addnorm"


def test_inline_formulas_stay_whole_and_the_page_fits_a_phone(wide_class, tmp_path, browser):
    """As on paper (whose TeX never breaks inline math), no inline formula is broken across lines: KaTeX broke
    R̂₂[i,:] after its ':' and left ']' alone. On a phone nothing makes the page scroll sideways (a wide matrix of
    inputs scrolls inside its blank), and each blank's name stays on one line with its '='."""
    folder = tmp_path / "addnorm"
    shutil.copytree(wide_class, folder)
    server = Server(folder).start()
    try:
        for width in (390, 1100):
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.goto(f"{server.url}/s/{access_code(class_secret(folder), 'addnorm', 's1')}")
            assert page.locator(".katex").count() > 50 and page.locator(".katex-error").count() == 0
            broken = page.evaluate("""() => [...document.querySelectorAll('.math:not(.display) > .katex')]
                .filter(k => { const b = [...k.querySelectorAll('.katex-html > .base')].map(x => x.getBoundingClientRect());
                               return b.some((r, i) => i > 0 && r.left < b[i - 1].left); })
                .map(k => k.querySelector('annotation').textContent)""")
            assert broken == [], (width, broken)
            assert page.evaluate("document.documentElement.scrollWidth") <= width
            wide = page.evaluate("""() => [...document.querySelectorAll('.blank')]
                .filter(b => b.scrollWidth > b.clientWidth).length""")
            assert width > 1000 or wide > 0  # the 2 × 4 inputs are wider than a phone: they scroll in their blank
            # The '=' after a blank's name: to the right of the formula and on its line, not wrapped below it.
            apart = page.evaluate("""() => [...document.querySelectorAll('.blank > .symbol')].filter(s => {
                const k = s.querySelector('.katex').getBoundingClientRect();
                const range = document.createRange(); range.selectNodeContents(s.lastChild);
                const e = range.getBoundingClientRect();
                return e.left < k.right - 1 || e.top > k.bottom || e.bottom < k.top; }).length""")
            assert page.locator(".blank > .symbol").count() > 5 and apart == 0, (width, apart)
            page.close()
    finally:
        server.stop()


def _assert_short_reason(page) -> None:
    """An unreadable cell says what is wrong in a line; the list of what the marker reads is on the page once, and in
    the cell's tooltip."""
    bad = page.locator('.reading[data-for="1a C[0,1]"] .unreadable')
    assert bad.inner_text() == "cannot be read: unknown name 'x'"
    assert bad.get_attribute("title").endswith("; accepted: " + ACCEPTED)
    assert ACCEPTED in page.locator(".hint").inner_text()
    zero = page.locator('.reading[data-for="1a C[1,1]"] .unreadable')
    assert zero.inner_text() == "cannot be read: division by zero" and zero.get_attribute("title") is None
