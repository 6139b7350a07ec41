// The draft's editor: ~400 ms after the last keystroke the text is checked (POST /flows/check, one check at a
// time, the newest text next); the problems are marked in the gutter beside their lines and listed, and a click
// on one puts the cursor there. The text is never changed here: saving is the form's plain POST.
"use strict";

const DEBOUNCE_MS = 400;
const form = document.getElementById("editor");
const text = document.getElementById("text");
const gutter = document.getElementById("gutter");
const list = document.getElementById("problems");
const status = document.getElementById("check-status");
const name = form.dataset.name;
let marks = new Map(); // line -> {severity, messages}: the last check's, for this file
let drawnLines = 0;
let drawing = false;
let timer = null;
let running = false;
let again = false;

function drawGutter() {
  const rows = [];
  const lines = text.value.split("\n").length;
  drawnLines = lines;
  for (let line = 1; line <= lines; line++) {
    const number = document.createElement("span");
    number.textContent = String(line);
    const mark = marks.get(line);
    if (mark) {
      number.className = mark.severity;
      number.title = mark.messages.join("\n");
    }
    rows.push(number, "\n");
  }
  gutter.replaceChildren(...rows);
  gutter.scrollTop = text.scrollTop;
}

function goTo(line, column) {
  const lines = text.value.split("\n");
  let at = 0;
  for (let i = 0; i < Math.min(line - 1, lines.length); i++) at += lines[i].length + 1;
  at += Math.max(0, column - 1);
  text.focus();
  text.setSelectionRange(at, at);
  const height = parseFloat(getComputedStyle(text).lineHeight);
  text.scrollTop = Math.max(0, (line - 3) * height); // the line near the top, with two lines of context
}

function item(problem) {
  const here = problem.file === name;
  const words = `${here ? "" : problem.file + " "}line ${problem.line}: ${problem.severity}: ${problem.message}`;
  const li = document.createElement("li");
  li.className = problem.severity;
  if (!here) {
    li.textContent = words; // another file of the draft, broken by this text or on its own
    return li;
  }
  const link = document.createElement("a");
  link.href = "#text";
  link.textContent = words;
  link.addEventListener("click", (event) => {
    event.preventDefault();
    goTo(problem.line, problem.column);
  });
  li.appendChild(link);
  return li;
}

function show(result) {
  marks = new Map();
  for (const problem of result.problems.filter((p) => p.file === name)) {
    const mark = marks.get(problem.line) || { severity: problem.severity, messages: [] };
    if (problem.severity === "error") mark.severity = "error";
    mark.messages.push(problem.message);
    marks.set(problem.line, mark);
  }
  list.replaceChildren(...result.problems.map(item));
  status.textContent = result.ok
    ? `${result.summary}: the draft can be published.`
    : `${result.summary}: the draft cannot be published until the errors are fixed.`;
  status.className = result.ok ? "muted" : "down";
  drawGutter();
}

function fail(words) {
  status.textContent = words;
  status.className = "down";
}

async function check() {
  if (running) {
    again = true; // checked once the running check answers, with the text as it is then
    return;
  }
  running = true;
  status.textContent = "Checking…";
  try {
    const body = new URLSearchParams({ csrf: form.elements.csrf.value, name, text: text.value });
    const response = await fetch("/flows/check", { method: "POST", body, credentials: "same-origin" });
    if (response.redirected) {
      fail("Your session has ended: copy your text, then log in again in another tab.");
    } else if (!response.ok) {
      fail(await response.text());
    } else {
      show(await response.json());
    }
  } catch (error) {
    fail(`The console did not answer the check (${error.message}); your text is still here.`);
  } finally {
    running = false;
    if (again) {
      again = false;
      check();
    }
  }
}

// A paste fires an input event per line it adds: the gutter follows once per frame, when the count changed.
function followLines() {
  if (drawing) return;
  drawing = true;
  requestAnimationFrame(() => {
    drawing = false;
    if (text.value.split("\n").length !== drawnLines) drawGutter();
  });
}

text.addEventListener("input", () => {
  followLines();
  clearTimeout(timer);
  timer = setTimeout(check, DEBOUNCE_MS);
});
text.addEventListener("scroll", () => {
  gutter.scrollTop = text.scrollTop;
});
drawGutter();
check();
