// The student's page: math typeset by KaTeX, every change saved within a second (kept in the browser until the
// server says it is saved), how each input was read, and the Check / Submit buttons.
"use strict";

const SAVE_DELAY_MS = 300;
const RETRY_MS = [1000, 2000, 5000, 10000];
const csrf = document.querySelector('meta[name="csrf-token"]')?.content || "";
const sheet = document.getElementById("sheet");
const storeKey = "tw-unsaved:" + location.host + ":" + (document.querySelector(".who")?.textContent || "");
let pending = {};
let timer = null;
let retries = 0;
let inFlight = false;

// Only the page's own math spans are typeset (statements, symbols, "read as"): never names or other typed text.
function typeset(root) {
  if (!window.katex) return;
  root.querySelectorAll(".math").forEach((el) => {
    if (el.dataset.done) return;
    let tex = el.dataset.tex;
    if (tex === undefined) tex = el.textContent.trim().replace(/^\\[(\[]/, "").replace(/\\[)\]]$/, "");
    try {
      katex.render(tex, el, { throwOnError: false, displayMode: el.classList.contains("display") });
      el.dataset.done = "1";
    } catch (e) { el.textContent = tex; }
  });
}

function status(text, kind) {
  const el = document.getElementById("save-status");
  if (el) { el.textContent = text; el.dataset.kind = kind || ""; }
}

function remember() {
  try { localStorage.setItem(storeKey, JSON.stringify(pending)); } catch (e) { /* private mode: memory only */ }
}

function showReading(label, reading) {
  const el = document.querySelector('.reading[data-for="' + CSS.escape(label) + '"]');
  if (!el) return;
  el.textContent = "";
  if (!reading || reading.empty) return;
  if (reading.ok && reading.tex) {
    el.append("read as ");
    const math = document.createElement("span");
    math.className = "math";
    math.dataset.tex = reading.tex;
    el.append(math);
    typeset(el);
  } else if (reading.ok) {
    el.append("read as " + reading.text);
  } else {
    const bad = document.createElement("span");
    bad.className = "unreadable";
    bad.textContent = "cannot be read: " + reading.reason;
    if (reading.full) bad.title = reading.full;  // the list of what is accepted is on the page once, and here on hover
    el.append(bad);
  }
}

async function flush() {
  timer = null;
  if (inFlight || Object.keys(pending).length === 0) return;
  const sending = pending;
  pending = {};
  inFlight = true;
  status("Saving…", "saving");
  try {
    const response = await fetch("/api/answers", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify({ answers: sending }),
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      if (response.status >= 500 || response.status === 429) throw new Error(body.error || "server busy");
      status("Not saved: " + (body.error || response.statusText), "error");
      remember();
      return;
    }
    for (const [label, reading] of Object.entries(body.readings || {})) showReading(label, reading);
    retries = 0;
    status("All answers saved at " + new Date().toLocaleTimeString(), "saved");
  } catch (e) {
    // Offline or the server restarting: keep the answers and try again.
    pending = Object.assign(sending, pending);
    remember();
    status("Not saved yet (no connection); trying again…", "error");
    const wait = RETRY_MS[Math.min(retries++, RETRY_MS.length - 1)];
    setTimeout(flush, wait);
  } finally {
    inFlight = false;
    if (Object.keys(pending).length === 0) { try { localStorage.removeItem(storeKey); } catch (e) {} }
    else if (!timer) timer = setTimeout(flush, SAVE_DELAY_MS);
  }
}

function changed(label, value) {
  pending[label] = value;
  remember();
  status("Saving…", "saving");
  if (timer) clearTimeout(timer);
  timer = setTimeout(flush, SAVE_DELAY_MS);
}

async function post(url) {
  const response = await fetch(url, { method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": csrf } });
  return [response, await response.json().catch(() => ({}))];
}

function showVerdicts(verdicts) {
  for (const [label, v] of Object.entries(verdicts)) {
    const el = document.querySelector('.verdict[data-for="' + CSS.escape(label) + '"]');
    if (!el) continue;
    el.textContent = "";
    const span = document.createElement("span");
    span.className = "v-" + v.status.replace(/ /g, "-");
    // An unreadable answer's reason is already shown under the box, as it was read.
    const note = v.note && v.status !== "unreadable" ? ": " + v.note : "";
    span.textContent = v.words + note + " (" + v.points + " of " + v.out_of + ")";
    el.append(span);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  typeset(document.body);
  if (!sheet) return;
  const locked = sheet.dataset.locked === "yes";
  sheet.querySelectorAll("input[data-label]").forEach((input) => {
    if (locked) { input.disabled = true; return; }
    const event = input.type === "radio" ? "change" : "input";
    input.addEventListener(event, () => changed(input.dataset.label, input.value));
  });
  // Answers typed while offline and not yet saved when the page closed: put back and send.
  try {
    const saved = JSON.parse(localStorage.getItem(storeKey) || "{}");
    for (const [label, value] of Object.entries(saved)) {
      const input = sheet.querySelector('input[type="text"][data-label="' + CSS.escape(label) + '"]');
      const radio = sheet.querySelector('input[type="radio"][data-label="' + CSS.escape(label) + '"][value="' + CSS.escape(value) + '"]');
      if (input) input.value = value;
      if (radio) radio.checked = true;
      if (input || radio) pending[label] = value;
    }
    if (Object.keys(pending).length) flush();
  } catch (e) { /* nothing kept */ }
  window.addEventListener("beforeunload", (event) => {
    if (Object.keys(pending).length || inFlight) { flush(); event.preventDefault(); }
  });
  document.getElementById("check")?.addEventListener("click", async () => {
    await flush();
    const [response, body] = await post("/api/check");
    const score = document.getElementById("score");
    if (!response.ok) { score.textContent = body.error || "could not check"; return; }
    showVerdicts(body.verdicts);
    score.textContent = "Score: " + body.score + " / " + body.out_of;
  });
  document.getElementById("submit")?.addEventListener("click", async () => {
    if (!confirm("Submit your answers? You cannot change them afterwards unless your teacher reopens your sheet.")) return;
    await flush();
    const [response, body] = await post("/api/submit");
    if (response.ok) location.reload();
    else document.getElementById("score").textContent = body.error || "could not submit";
  });
});
