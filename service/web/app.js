// Shiori's page: ask, watch the answer stream in, follow its citations to the passages.
// Plain script, no build step. Every piece of note or answer text is inserted as text
// (textContent), never as markup, and the page's CSP allows only this script.
"use strict";

const KEY_STORAGE = "shiori.apiKey";
const ASK_TIMEOUT_MS = 300_000; // a CPU model can take a while; beyond this, say so
const CALL_TIMEOUT_MS = 30_000;
const MARKER = /\[(\d{1,3})\]/g;
const JAPANESE = /[\u3040-\u30ff\u3400-\u9fff]/;

const $ = (id) => document.getElementById(id);

class AuthNeeded extends Error {}
class ApiFailure extends Error {
  constructor(type, message, status) {
    super(message);
    this.type = type;
    this.status = status;
  }
}

// --- talking to the API ------------------------------------------------------------------

function headers(extra = {}) {
  const key = sessionStorage.getItem(KEY_STORAGE);
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

async function failure(response) {
  let type = "http_error";
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    if (body && body.error) {
      type = body.error.type || type;
      message = body.error.message || message;
    }
  } catch (_) {
    /* not JSON: keep the status line */
  }
  if (response.status === 401) {
    showKeyPanel(sessionStorage.getItem(KEY_STORAGE) ? "That key was not accepted." : "");
    return new AuthNeeded(message);
  }
  return new ApiFailure(type, message, response.status);
}

async function call(path, options = {}, timeoutMs = CALL_TIMEOUT_MS) {
  const signal = AbortSignal.timeout(timeoutMs);
  let response;
  try {
    response = await fetch(path, { ...options, headers: headers(options.headers), signal });
  } catch (err) {
    throw unreachable(err, timeoutMs);
  }
  if (!response.ok) throw await failure(response);
  return response.json();
}

function unreachable(err, timeoutMs) {
  if (err && (err.name === "TimeoutError" || err.name === "AbortError")) {
    return new ApiFailure(
      "timeout",
      `Shiori did not finish within ${Math.round(timeoutMs / 1000)} s. ` +
        "The model may be busy; try again in a moment.",
    );
  }
  return new ApiFailure(
    "unreachable",
    "Shiori is not reachable. Is `shiori serve` (or `make run`) still running?",
  );
}

// --- the API key ---------------------------------------------------------------------------

function showKeyPanel(message) {
  $("key-panel").hidden = false;
  $("key-error").hidden = !message;
  $("key-error").textContent = message;
  $("key-input").focus();
}

function useKey(event) {
  event.preventDefault();
  const key = $("key-input").value.trim();
  if (!key) return;
  sessionStorage.setItem(KEY_STORAGE, key);
  $("key-input").value = "";
  $("key-panel").hidden = true;
  $("forget-key").hidden = false;
  loadNotes();
  $("question").focus();
}

function forgetKey() {
  sessionStorage.removeItem(KEY_STORAGE);
  $("forget-key").hidden = true;
  showKeyPanel("");
}

// --- rendering -----------------------------------------------------------------------------

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, props);
  for (const child of children) node.append(child);
  return node;
}

function languageOf(text) {
  return JAPANESE.test(text) ? "ja" : "en";
}

/** Answer text with each [n] marker as a link to passage n (when that passage is shown). */
function renderAnswer(text, linkable) {
  const answer = $("answer");
  answer.replaceChildren();
  answer.lang = languageOf(text);
  let last = 0;
  for (const match of text.matchAll(MARKER)) {
    const n = Number(match[1]);
    answer.append(text.slice(last, match.index));
    if (linkable.has(n)) {
      const link = el("a", {
        href: `#src-${n}`,
        className: "cite",
        textContent: `[${n}]`,
        title: `Show passage ${n}`,
      });
      link.dataset.n = String(n);
      link.setAttribute("aria-label", `citation ${n}: show its passage`);
      link.addEventListener("click", (event) => {
        event.preventDefault();
        highlight(n);
      });
      answer.append(link);
    } else {
      answer.append(el("span", { className: "marker", textContent: match[0] }));
    }
    last = match.index + match[0].length;
  }
  answer.append(text.slice(last));
}

const INSTRUCTION_WARNING =
  "This passage holds text addressed to an AI model (marked below). Shiori treats it as " +
  "note text: it is never followed, and not used as a source of facts.";

function lineRange(lines) {
  return lines[0] === lines[1] ? `line ${lines[0]}` : `lines ${lines[0]}–${lines[1]}`;
}

/** UTF-16 offset of each code point offset of `text` (the server counts code points). */
function utf16Offsets(text) {
  const offsets = [0];
  for (const ch of text) offsets.push(offsets[offsets.length - 1] + ch.length);
  return offsets;
}

// The passage text with marks: each evidence sentence (what the answer rests on) and each
// piece of text addressed to an AI model (found at ingest). Text only, never markup.
function markedPassage(src, evidence) {
  const text = src.text;
  const spans = [];
  const at16 = utf16Offsets(text);
  for (const s of src.instruction_spans || []) {
    spans.push({
      start: at16[s.start],
      end: at16[s.end],
      className: "instruction",
      title: `addressed to an AI model (${s.reason}); not followed`,
    });
  }
  for (const e of evidence) {
    const at = text.indexOf(e.text);
    if (at >= 0) spans.push({ start: at, end: at + e.text.length, className: "evidence" });
  }
  spans.sort((a, b) => a.start - b.start);
  const parts = [];
  let last = 0;
  for (const span of spans) {
    if (span.start < last) continue;
    parts.push(text.slice(last, span.start));
    const mark = el("mark", { className: span.className, textContent: text.slice(span.start, span.end) });
    if (span.title) mark.title = span.title;
    parts.push(mark);
    last = span.end;
  }
  parts.push(text.slice(last));
  return parts;
}

function sourceItem(src, label, evidence = []) {
  const lines = lineRange(src.lines);
  let where = src.page ? `page ${src.page}, ${lines}` : lines;
  if (evidence.length) {
    where += ` · evidence: ${evidence.map((e) => lineRange(e.lines)).join(", ")}`;
  }
  const item = el(
    "li",
    { id: `src-${src.n}`, className: "source", tabIndex: -1 },
    el(
      "div",
      { className: "source-head" },
      el("span", { className: "badge", textContent: label }),
      el("span", { className: "note", textContent: src.source }),
    ),
    el("div", { className: "heading", textContent: src.heading || src.title }),
    el("div", { className: "lines", textContent: where }),
    el(
      "blockquote",
      { className: "passage", lang: languageOf(src.text) },
      ...markedPassage(src, evidence),
    ),
  );
  if (src.instruction_spans && src.instruction_spans.length) {
    item.classList.add("flagged");
    item.insertBefore(
      el("div", { className: "instruction-warning", role: "note", textContent: INSTRUCTION_WARNING }),
      item.querySelector(".passage"),
    );
  }
  item.dataset.n = String(src.n);
  return item;
}

function highlight(n) {
  for (const node of document.querySelectorAll(".source.highlight")) {
    node.classList.remove("highlight");
    node.removeAttribute("aria-current");
  }
  for (const node of document.querySelectorAll(".cite.active")) node.classList.remove("active");
  const target = $(`src-${n}`);
  if (!target) return;
  const details = target.closest("details");
  if (details) details.open = true;
  target.classList.add("highlight");
  target.setAttribute("aria-current", "true");
  for (const link of document.querySelectorAll(`.cite[data-n="${n}"]`)) link.classList.add("active");
  target.scrollIntoView({ block: "nearest", behavior: "smooth" });
  target.focus({ preventScroll: true });
}

function showSources(title, primary, others, evidence = new Map()) {
  $("sources-title").textContent = title;
  $("sources").replaceChildren(
    ...primary.map((s) => sourceItem(s, `[${s.n}]`, evidence.get(s.n) || [])),
  );
  $("other-sources").replaceChildren(...others.map((s) => sourceItem(s, `[${s.n}]`)));
  $("more-sources").hidden = others.length === 0;
  $("more-sources").open = false;
  $("sources-panel").hidden = primary.length + others.length === 0;
}

function notice(message, kind = "error") {
  const box = $("notice");
  box.hidden = !message;
  box.className = `notice ${kind}`;
  box.textContent = message || "";
}

function status(message) {
  $("status").textContent = message || "";
}

function resetAnswer() {
  notice("");
  $("answer-panel").hidden = true;
  $("abstained").hidden = true;
  $("answer").replaceChildren();
  $("answer-meta").textContent = "";
  showSources("Sources", [], []);
}

function showFinal(result) {
  $("answer-panel").hidden = false;
  const contexts = result.contexts || [];
  if (result.abstained) {
    $("abstained").hidden = false;
    renderAnswer(result.answer, new Set());
    showSources("Closest passages", contexts, []);
  } else {
    const cited = new Set(result.citations.map((c) => c.n));
    const evidence = new Map();
    for (const sentence of result.sentences || []) {
      if (!sentence.supported) continue;
      for (const e of sentence.evidence || []) {
        if (!evidence.has(e.n)) evidence.set(e.n, []);
        evidence.get(e.n).push(e);
      }
    }
    renderAnswer(result.answer, cited);
    showSources(
      "Sources",
      result.citations,
      contexts.filter((c) => !cited.has(c.n)),
      evidence,
    );
  }
  const seconds = (result.timings.total_ms || 0) / 1000;
  const parts = [`${result.model}`, `${seconds.toFixed(1)} s`];
  if (result.unsupported && result.unsupported.length && !result.abstained) {
    parts.push(`${result.unsupported.length} sentence(s) not supported by their sources`);
  }
  $("answer-meta").textContent = parts.join(" · ");
  status(result.abstained ? "Not in your notes." : "Answered from your notes.");
}

// --- asking --------------------------------------------------------------------------------

let running = null; // the AbortController of the question being answered

/** Parse a text/event-stream body into {event, data} objects as they arrive. */
async function* serverEvents(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value.replace(/\r\n/g, "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) yield { event: name, data: JSON.parse(data.join("\n")) };
    }
  }
}

async function ask(question) {
  resetAnswer();
  const controller = new AbortController();
  running = controller;
  const timer = setTimeout(() => controller.abort(new DOMException("timeout", "TimeoutError")), ASK_TIMEOUT_MS);
  setBusy(true);
  status("Searching your notes…");
  let streamed = "";
  let final = null;
  try {
    let response;
    try {
      response = await fetch("/v1/ask", {
        method: "POST",
        headers: headers({ "Content-Type": "application/json", Accept: "text/event-stream" }),
        body: JSON.stringify({ question, stream: true }),
        signal: controller.signal,
      });
    } catch (err) {
      throw unreachable(controller.signal.reason || err, ASK_TIMEOUT_MS);
    }
    if (!response.ok) throw await failure(response);
    status("Answering…");
    try {
      for await (const { event, data } of serverEvents(response)) {
        if (event === "delta") {
          streamed += data.text;
          $("answer-panel").hidden = false;
          renderAnswer(streamed, new Set());
        } else if (event === "final") {
          final = data;
        } else if (event === "error") {
          throw new ApiFailure(data.error.type, data.error.message);
        }
      }
    } catch (err) {
      if (err instanceof ApiFailure) throw err;
      throw unreachable(controller.signal.reason || err, ASK_TIMEOUT_MS);
    }
    if (!final) throw new ApiFailure("incomplete", "The answer stopped before it was complete.");
    showFinal(final);
  } catch (err) {
    if (err instanceof AuthNeeded) {
      status("");
    } else if (controller.signal.reason && controller.signal.reason.name === "AbortError" && !final) {
      status("Stopped.");
    } else {
      await explainFailure(err, question);
    }
  } finally {
    clearTimeout(timer);
    running = null;
    setBusy(false);
  }
}

/** Say what went wrong in words; when only the model is missing, show the passages anyway. */
async function explainFailure(err, question) {
  const type = err.type || "error";
  if (type === "llm_unavailable" || type === "timeout" || type === "incomplete") {
    let what = "No complete answer came back.";
    if (type === "llm_unavailable") {
      what = /timed out/.test(err.message)
        ? "The answer model took too long, so there is no answer."
        : "The answer model is not reachable, so there is no answer.";
    }
    notice(`${what} ${err.message} The passages that match your question are shown instead.`);
    status("Searching only…");
    try {
      const found = await call("/v1/search", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ question }),
      });
      showSources("Passages that match (no answer)", found.results, []);
      status(`${found.results.length} passage(s) found; no answer generated.`);
    } catch (inner) {
      status("");
      notice(`${what} ${err.message} Searching failed too: ${inner.message}`);
    }
    return;
  }
  status("");
  notice(err.message || String(err));
}

function setBusy(busy) {
  $("ask-button").disabled = busy;
  $("stop-button").hidden = !busy;
  $("ask-form").setAttribute("aria-busy", String(busy));
}

function submitQuestion(event) {
  event.preventDefault();
  const question = $("question").value.trim();
  if (!question || running) return;
  ask(question);
}

function questionKeys(event) {
  // Enter asks; Shift+Enter is a new line; Enter that confirms a Japanese IME word does neither.
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
    event.preventDefault();
    $("ask-form").requestSubmit();
  }
}

// --- the notes -----------------------------------------------------------------------------

async function loadNotes() {
  try {
    const listing = await call("/v1/notes");
    const items = listing.notes.map((note) =>
      el(
        "li",
        {},
        el("span", { className: "note", textContent: note.source }),
        el("span", {
          className: "count",
          textContent: ` ${note.title ? `— ${note.title} ` : ""}· ${note.chunks} passage${note.chunks === 1 ? "" : "s"}`,
        }),
      ),
    );
    $("notes-list").replaceChildren(...items);
    if (listing.notes.length === 0) {
      $("library-summary").textContent =
        "No notes ingested yet. Add a folder or upload files below, or run `shiori ingest notes/`.";
      $("add-notes").open = true;
      notice("No notes ingested yet: answers need notes to come from.", "info");
    } else {
      $("library-summary").textContent =
        `${listing.notes.length} note${listing.notes.length === 1 ? "" : "s"}, ` +
        `${listing.chunks} passages in “${listing.collection}”.`;
      if ($("notice").classList.contains("info")) notice("");
    }
  } catch (err) {
    if (!(err instanceof AuthNeeded)) $("library-summary").textContent = `Could not list the notes: ${err.message}`;
  }
}

function ingestSummary(report) {
  const parts = [
    `${report.files_new} new`,
    `${report.files_updated} updated`,
    `${report.files_unchanged} unchanged`,
  ];
  if (report.files_failed) {
    const why = report.failures.map((f) => `${f.path}: ${f.error}`).join("; ");
    parts.push(`${report.files_failed} failed (${why})`);
  }
  if (report.files_unsupported) parts.push(`${report.files_unsupported} not a note type`);
  if (report.flagged && report.flagged.length) {
    const notes = report.flagged.map((f) => f.path).join(", ");
    parts.push(`${report.flagged.length} with text addressed to an AI model, flagged and never followed (${notes})`);
  }
  return `Ingested: ${parts.join(", ")}; ${report.chunks_written} passages written.`;
}

async function ingest(body, headersIn, formToReset) {
  $("ingest-status").textContent = "Ingesting… (embedding takes a moment per note)";
  try {
    const report = await call("/v1/ingest", { method: "POST", headers: headersIn, body }, 1_800_000);
    $("ingest-status").textContent = ingestSummary(report);
    formToReset.reset();
    await loadNotes();
  } catch (err) {
    if (!(err instanceof AuthNeeded)) $("ingest-status").textContent = `Not ingested: ${err.message}`;
  }
}

function ingestPath(event) {
  event.preventDefault();
  const path = $("ingest-path").value.trim();
  if (path) {
    // a folder typed by hand is meant whole, even when it is an ingest root itself
    const body = JSON.stringify({ paths: [path], all: true });
    ingest(body, { "Content-Type": "application/json" }, event.target);
  }
}

function upload(event) {
  event.preventDefault();
  const files = $("upload-files").files;
  if (!files.length) return;
  const form = new FormData();
  for (const file of files) form.append("file", file, file.name);
  ingest(form, {}, event.target);
}

// --- start ---------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  $("ask-form").addEventListener("submit", submitQuestion);
  $("question").addEventListener("keydown", questionKeys);
  $("stop-button").addEventListener("click", () => running && running.abort());
  $("key-form").addEventListener("submit", useKey);
  $("forget-key").addEventListener("click", forgetKey);
  $("ingest-path-form").addEventListener("submit", ingestPath);
  $("upload-form").addEventListener("submit", upload);
  $("forget-key").hidden = !sessionStorage.getItem(KEY_STORAGE);
  const asked = new URLSearchParams(location.search).get("q");
  if (asked) $("question").value = asked;
  loadNotes();
  $("question").focus();
});
