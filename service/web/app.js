// Shiori's page: a conversation with your notes. Each turn streams its answer in and keeps its
// own citations, evidence and feedback; a follow-up is sent with the turns before it, and the
// service answers the standalone question it stands for (shown under the message). The
// conversation lives in the tab (sessionStorage) until "New conversation".
// Plain script, no build step. Every piece of note or answer text is inserted as text
// (textContent), never as markup, and the page's CSP allows only this script and i18n.js.
"use strict";

const KEY_STORAGE = "shiori.apiKey";
const CONVERSATION_STORAGE = "shiori.conversation";
const LANGUAGE_STORAGE = "shiori.language";
const ASK_TIMEOUT_MS = 300_000; // a CPU model can take a while; beyond this, say so
const CALL_TIMEOUT_MS = 30_000;
const HISTORY_TURNS = 4; // earlier question–answer pairs sent with a follow-up
const MARKER = /\[(\d{1,3})\]/g;
const JAPANESE = /[\u3040-\u30ff\u3400-\u9fff]/;

const $ = (id) => document.getElementById(id);

// --- language ------------------------------------------------------------------------------

/** Japanese when the browser lists Japanese before English; the person's own choice wins. */
function preferredLanguage() {
  const chosen = localStorage.getItem(LANGUAGE_STORAGE);
  if (chosen && MESSAGES[chosen]) return chosen;
  for (const tag of navigator.languages || [navigator.language || "en"]) {
    const base = String(tag).toLowerCase().split("-")[0];
    if (base === "ja" || base === "en") return base;
  }
  return "en";
}

let language = "en";

/** The message `key` in the page's language, with {name} filled from `params`. */
function t(key, params = {}) {
  const entry = MESSAGES[language][key] ?? MESSAGES.en[key];
  if (entry === undefined) throw new Error(`no message ${key}`);
  if (typeof entry === "function") return entry(params);
  // a parameter may be a function: text made of messages itself, made in the language shown
  return entry.replace(/\{(\w+)\}/g, (_, name) => {
    const value = typeof params[name] === "function" ? params[name]() : params[name];
    return String(value ?? "");
  });
}

function applyLanguage() {
  document.documentElement.lang = language;
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const node of document.querySelectorAll("[data-i18n-placeholder]")) {
    node.placeholder = t(node.dataset.i18nPlaceholder);
  }
  for (const node of document.querySelectorAll("[data-i18n-aria-label]")) {
    node.setAttribute("aria-label", t(node.dataset.i18nAriaLabel));
  }
  $("question-label").textContent = t(conversation.length ? "followUpLabel" : "questionLabel");
  renderConversation();
  refreshMessages();
}

function switchLanguage() {
  language = language === "ja" ? "en" : "ja";
  localStorage.setItem(LANGUAGE_STORAGE, language);
  applyLanguage();
  loadNotes();
}

// What the status line, the notice and the ingest line say, kept as message keys so that a
// switch of language re-says them.
const said = { status: null, notice: null, ingest: null };

function say(slot, key, params = {}) {
  said[slot] = key ? { key, params } : null;
  refreshMessages();
}

function refreshMessages() {
  $("status").textContent = said.status ? t(said.status.key, said.status.params) : "";
  const box = $("notice");
  box.hidden = !said.notice;
  box.className = `notice ${said.notice ? said.notice.params.kind || "error" : ""}`;
  box.textContent = said.notice ? t(said.notice.key, said.notice.params) : "";
  $("ingest-status").textContent = said.ingest ? t(said.ingest.key, said.ingest.params) : "";
}

const status = (key, params) => say("status", key, params);
const notice = (key, params) => say("notice", key, params);

// --- talking to the API ------------------------------------------------------------------

class AuthNeeded extends Error {}
class ApiFailure extends Error {
  constructor(type, message, status, key = null, params = {}) {
    super(message);
    this.type = type;
    this.status = status;
    this.key = key; // a message of the page's own, when the service said nothing
    this.params = params;
  }

  text() {
    return this.key ? t(this.key, this.params) : this.message;
  }
}

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
    showKeyPanel(sessionStorage.getItem(KEY_STORAGE) ? "keyRejected" : null);
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
    return new ApiFailure("timeout", "timeout", 0, "timeout", { s: Math.round(timeoutMs / 1000) });
  }
  return new ApiFailure("unreachable", "unreachable", 0, "unreachable");
}

// --- the API key ---------------------------------------------------------------------------

function showKeyPanel(messageKey) {
  $("key-panel").hidden = false;
  $("key-error").hidden = !messageKey;
  $("key-error").textContent = messageKey ? t(messageKey) : "";
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
  showKeyPanel(null);
}

// --- the conversation ----------------------------------------------------------------------
//
// A turn: {id, message, result (the /v1/ask body, once final), question (what is being
// answered), stopped, searchOnly ({results, titleKey}), feedback ({rating, id})}.

let conversation = [];
let nextTurnId = 1;

function loadConversation() {
  try {
    const stored = JSON.parse(sessionStorage.getItem(CONVERSATION_STORAGE) || "[]");
    conversation = Array.isArray(stored) ? stored.filter((turn) => turn && turn.message) : [];
  } catch (_) {
    conversation = [];
  }
  nextTurnId = Math.max(0, ...conversation.map((turn) => turn.id || 0)) + 1;
}

function saveConversation() {
  const kept = conversation.filter((turn) => turn.result || turn.searchOnly || turn.stopped);
  try {
    sessionStorage.setItem(CONVERSATION_STORAGE, JSON.stringify(kept));
  } catch (_) {
    /* storage full: the conversation stays on the page, unsaved */
  }
}

/** The earlier turns that were answered, as the API's history: user and assistant messages. */
function historyBefore(turn) {
  const earlier = conversation.filter((other) => other.id < turn.id && other.result);
  return earlier.slice(-HISTORY_TURNS).flatMap((other) => [
    { role: "user", content: other.message },
    { role: "assistant", content: other.result.answer },
  ]);
}

function newConversation() {
  if (running) running.abort();
  conversation = [];
  saveConversation();
  renderConversation();
  $("question-label").textContent = t("questionLabel");
  status(null);
  notice(null);
  $("question").focus();
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

function lineRange(lines) {
  return lines[0] === lines[1] ? t("line", { a: lines[0] }) : t("lines", { a: lines[0], b: lines[1] });
}

/** Answer text with each [n] marker as a link to passage n of this turn (when shown). */
function answerNodes(turn, text, linkable) {
  const nodes = [];
  let last = 0;
  for (const match of text.matchAll(MARKER)) {
    const n = Number(match[1]);
    nodes.push(text.slice(last, match.index));
    if (linkable.has(n)) {
      const link = el("a", {
        href: `#t${turn.id}-src-${n}`,
        className: "cite",
        textContent: `[${n}]`,
        title: t("showPassage", { n }),
      });
      link.dataset.n = String(n);
      link.setAttribute("aria-label", t("citationLabel", { n }));
      link.addEventListener("click", (event) => {
        event.preventDefault();
        highlight(turn, n);
      });
      nodes.push(link);
    } else {
      nodes.push(el("span", { className: "marker", textContent: match[0] }));
    }
    last = match.index + match[0].length;
  }
  nodes.push(text.slice(last));
  return nodes;
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
      title: t("instructionMark", { reason: s.reason }),
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

function sourceItem(turn, src, evidence = []) {
  const lines = lineRange(src.lines);
  let where = src.page ? t("pageLines", { page: src.page, lines }) : lines;
  if (evidence.length) {
    where += ` · ${t("evidence", { lines: evidence.map((e) => lineRange(e.lines)).join(", ") })}`;
  }
  const item = el(
    "li",
    { id: `t${turn.id}-src-${src.n}`, className: "source", tabIndex: -1 },
    el(
      "div",
      { className: "source-head" },
      el("span", { className: "badge", textContent: `[${src.n}]` }),
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
      el("div", { className: "instruction-warning", role: "note", textContent: t("instructionWarning") }),
      item.querySelector(".passage"),
    );
  }
  item.dataset.n = String(src.n);
  return item;
}

function highlight(turn, n) {
  const box = $(`turn-${turn.id}`);
  for (const node of document.querySelectorAll(".source.highlight")) {
    node.classList.remove("highlight");
    node.removeAttribute("aria-current");
  }
  for (const node of document.querySelectorAll(".cite.active")) node.classList.remove("active");
  const target = $(`t${turn.id}-src-${n}`);
  if (!target || !box) return;
  const details = target.closest("details");
  if (details) details.open = true;
  target.classList.add("highlight");
  target.setAttribute("aria-current", "true");
  for (const link of box.querySelectorAll(`.cite[data-n="${n}"]`)) link.classList.add("active");
  target.scrollIntoView({ block: "nearest", behavior: "smooth" });
  target.focus({ preventScroll: true });
}

function sourcesPanel(turn, titleKey, primary, others, evidence = new Map()) {
  const panel = el(
    "aside",
    { className: "panel sources-panel" },
    el("h3", { className: "sources-title", textContent: t(titleKey) }),
    el("ol", { className: "sources" }, ...primary.map((s) => sourceItem(turn, s, evidence.get(s.n) || []))),
  );
  if (others.length) {
    panel.append(
      el(
        "details",
        { className: "more-sources" },
        el("summary", { textContent: t("otherPassages") }),
        el("ol", { className: "sources other-sources" }, ...others.map((s) => sourceItem(turn, s))),
      ),
    );
  }
  panel.hidden = primary.length + others.length === 0;
  return panel;
}

function evidenceBySource(result) {
  const evidence = new Map();
  for (const sentence of result.sentences || []) {
    if (!sentence.supported) continue;
    for (const e of sentence.evidence || []) {
      if (!evidence.has(e.n)) evidence.set(e.n, []);
      evidence.get(e.n).push(e);
    }
  }
  return evidence;
}

/** One turn: the message, the question it was answered as, the answer, its sources. */
function turnNode(turn, streamed = "") {
  const result = turn.result;
  const node = el("li", { id: `turn-${turn.id}`, className: "turn" });
  node.dataset.turn = String(turn.id);
  node.append(
    el(
      "div",
      { className: "asked" },
      el("span", { className: "who", textContent: t("you") }),
      el("p", { className: "message", lang: languageOf(turn.message), textContent: turn.message }),
    ),
  );
  const question = turn.question || (result && result.question);
  if (question && question !== turn.message) {
    node.append(
      el(
        "p",
        { className: "standalone" },
        `${t("answeredAs")} `,
        el("q", { lang: languageOf(question), textContent: question }),
      ),
    );
  }
  const answerPanel = el("section", { className: "panel answer-panel" });
  answerPanel.setAttribute("aria-label", t("answerLabel"));
  const answer = el("div", { className: "answer" });
  const results = el("div", { className: "results" }, answerPanel);
  node.append(results);
  if (result) {
    const contexts = result.contexts || [];
    answer.lang = languageOf(result.answer);
    if (result.abstained) {
      answerPanel.append(el("p", { className: "abstained", textContent: t("notInNotes") }));
      answer.append(...answerNodes(turn, result.answer, new Set()));
      results.append(sourcesPanel(turn, "closestPassages", contexts, []));
    } else {
      const cited = new Set(result.citations.map((c) => c.n));
      answer.append(...answerNodes(turn, result.answer, cited));
      results.append(
        sourcesPanel(
          turn,
          "sources",
          result.citations,
          contexts.filter((c) => !cited.has(c.n)),
          evidenceBySource(result),
        ),
      );
    }
    answerPanel.append(answer, el("p", { className: "meta", textContent: answerMeta(result) }));
    if (turn.withdrawn) answerPanel.append(el("p", { className: "meta withdrawn", textContent: t("withdrawn") }));
    answerPanel.append(feedbackNode(turn));
  } else {
    answer.lang = languageOf(streamed);
    answer.append(...answerNodes(turn, streamed, new Set()));
    answerPanel.append(answer);
    if (turn.stopped) answerPanel.append(el("p", { className: "meta", textContent: t("stopped") }));
    if (turn.searchOnly) {
      results.append(sourcesPanel(turn, turn.searchOnly.titleKey, turn.searchOnly.results, []));
    }
    answerPanel.hidden = !streamed && !turn.stopped;
  }
  return node;
}

function answerMeta(result) {
  const seconds = (result.timings.total_ms || 0) / 1000;
  const parts = [`${result.model}`, t("seconds", { s: seconds.toFixed(1) })];
  if (result.unsupported && result.unsupported.length && !result.abstained) {
    parts.push(t("unsupported", { n: result.unsupported.length }));
  }
  return parts.join(" · ");
}

function renderConversation() {
  $("turns").replaceChildren(...conversation.map((turn) => turnNode(turn, turn.streamed || "")));
  $("conversation-empty").hidden = conversation.length > 0;
  $("new-conversation").hidden = conversation.length === 0;
}

function renderTurn(turn) {
  const old = $(`turn-${turn.id}`);
  const fresh = turnNode(turn, turn.streamed || "");
  if (old) old.replaceWith(fresh);
  else $("turns").append(fresh);
  $("conversation-empty").hidden = true;
  $("new-conversation").hidden = false;
  return fresh;
}

/** While streaming, only the answer text changes: the rest of the turn stays as it is. */
function renderStreamed(turn) {
  const box = $(`turn-${turn.id}`);
  const panel = box.querySelector(".answer-panel");
  const answer = box.querySelector(".answer");
  panel.hidden = false;
  answer.lang = languageOf(turn.streamed);
  answer.replaceChildren(...answerNodes(turn, turn.streamed, new Set()));
}

// --- feedback ------------------------------------------------------------------------------

function feedbackNode(turn) {
  const box = el("div", { className: "feedback" });
  if (turn.feedback) {
    box.append(el("p", { className: "meta feedback-saved", textContent: t("feedbackSaved", { id: turn.feedback.id }) }));
    return box;
  }
  // ✓ and ✗ are in every common font (emoji are not, on many Linux desktops)
  const up = el("button", { type: "button", className: "quiet thumb up", textContent: `✓ ${t("feedbackRight")}` });
  const down = el("button", { type: "button", className: "quiet thumb down", textContent: `✗ ${t("feedbackWrong")}` });
  const error = el("p", { className: "error feedback-error", role: "alert", hidden: true });
  up.addEventListener("click", () => sendFeedback(turn, { rating: "up" }, error));
  down.addEventListener("click", () => {
    form.hidden = false;
    form.querySelector("textarea").focus();
  });
  const form = correctionForm(turn, error);
  box.append(el("div", { className: "thumbs" }, up, down), form, error);
  return box;
}

function correctionForm(turn, error) {
  const id = `t${turn.id}-correction`;
  const textarea = el("textarea", { id, rows: 2, maxLength: 2000 });
  const form = el(
    "form",
    { className: "correction", hidden: true },
    el("p", { className: "meta", textContent: t("feedbackPrompt") }),
    el("label", { htmlFor: id, textContent: t("correctionLabel") }),
    textarea,
  );
  let notInNotes = null;
  if (!turn.result.abstained) {
    notInNotes = el("input", { type: "checkbox", id: `${id}-none` });
    form.append(
      el("label", { className: "check", htmlFor: notInNotes.id }, notInNotes, ` ${t("notInNotesOption")}`),
    );
  }
  const cancel = el("button", { type: "button", className: "quiet", textContent: t("cancel") });
  cancel.addEventListener("click", () => {
    form.hidden = true;
    error.hidden = true;
  });
  form.append(el("div", { className: "row" }, el("button", { type: "submit", textContent: t("send") }), cancel));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const correction = textarea.value.trim();
    const none = Boolean(notInNotes && notInNotes.checked);
    if (!correction && !none) {
      error.hidden = false;
      error.textContent = t("feedbackNeedsWhat");
      return;
    }
    sendFeedback(turn, { rating: "down", correction: correction || null, not_in_notes: none }, error);
  });
  return form;
}

async function sendFeedback(turn, judgement, error) {
  const result = turn.result;
  const body = {
    ...judgement,
    question: result.question || turn.message,
    message: turn.message,
    history: historyBefore(turn),
    answer: result.answer,
    abstained: result.abstained,
    sources: (result.abstained ? [] : result.citations).map((c) => ({
      source: c.source,
      lines: c.lines,
      heading: c.heading,
    })),
    model: result.model,
  };
  try {
    const saved = await call("/v1/feedback", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    turn.feedback = { rating: judgement.rating, id: saved.id };
    saveConversation();
    renderTurn(turn);
  } catch (err) {
    if (err instanceof AuthNeeded) return;
    error.hidden = false;
    error.textContent = t("feedbackFailed", { error: err.text ? err.text() : err.message });
  }
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

async function ask(message) {
  notice(null);
  const turn = { id: nextTurnId++, message, streamed: "" };
  const history = historyBefore(turn);
  conversation.push(turn);
  renderTurn(turn).scrollIntoView({ block: "nearest" });
  $("question-label").textContent = t("followUpLabel");
  const controller = new AbortController();
  running = controller;
  const timer = setTimeout(() => controller.abort(new DOMException("timeout", "TimeoutError")), ASK_TIMEOUT_MS);
  setBusy(true);
  status(history.length ? "statusReading" : "statusSearching");
  try {
    let response;
    try {
      response = await fetch("/v1/ask", {
        method: "POST",
        headers: headers({ "Content-Type": "application/json", Accept: "text/event-stream" }),
        body: JSON.stringify({ question: message, history, stream: true }),
        signal: controller.signal,
      });
    } catch (err) {
      throw unreachable(controller.signal.reason || err, ASK_TIMEOUT_MS);
    }
    if (!response.ok) throw await failure(response);
    status("statusAnswering");
    try {
      for await (const { event, data } of serverEvents(response)) {
        if (event === "question") {
          turn.question = data.question;
          renderTurn(turn);
        } else if (event === "status") {
          // what Shiori is doing, before the first token: passages found, writing, checking
          if (data.stage === "found") status("statusFound", { n: data.passages });
          else if (data.stage === "writing") status(data.reading > 1 ? "statusRereading" : "statusWriting", { n: data.passages });
          else if (data.stage === "checking") status("statusChecking");
        } else if (event === "delta") {
          turn.streamed += data.text;
          renderStreamed(turn);
        } else if (event === "final") {
          turn.result = data;
        } else if (event === "error") {
          throw new ApiFailure(data.error.type, data.error.message);
        }
      }
    } catch (err) {
      if (err instanceof ApiFailure) throw err;
      throw unreachable(controller.signal.reason || err, ASK_TIMEOUT_MS);
    }
    if (!turn.result) throw new ApiFailure("incomplete", "incomplete", 0, "incomplete");
    // streamed text the checks did not keep is said to be withdrawn, never dropped silently
    turn.withdrawn = Boolean(turn.streamed.trim()) && turn.streamed.trim() !== turn.result.answer.trim();
    delete turn.streamed;
    renderTurn(turn);
    status(turn.result.abstained ? "statusNotInNotes" : "statusAnswered");
  } catch (err) {
    if (err instanceof AuthNeeded) {
      status(null);
      dropTurn(turn);
    } else if (controller.signal.reason && controller.signal.reason.name === "AbortError" && !turn.result) {
      turn.stopped = true;
      renderTurn(turn);
      status("statusStopped");
    } else {
      await explainFailure(err, turn);
    }
  } finally {
    clearTimeout(timer);
    running = null;
    saveConversation();
    setBusy(false);
  }
}

/** A turn that got nothing to show leaves the conversation; its message goes back to the box. */
function dropTurn(turn) {
  conversation = conversation.filter((other) => other !== turn);
  renderConversation();
  if (!$("question").value) $("question").value = turn.message;
}

/** Say what went wrong in words; when only the model is missing, show the passages anyway. */
async function explainFailure(err, turn) {
  const type = err.type || "error";
  if (type === "llm_unavailable" || type === "timeout" || type === "incomplete") {
    let what = t("noCompleteAnswer");
    if (type === "llm_unavailable") what = t(/timed out/.test(err.message) ? "modelSlow" : "modelDown");
    const why = err.text();
    notice("showingPassages", { what, why });
    status("searchingOnly");
    try {
      const found = await call("/v1/search", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ question: turn.question || turn.message }),
      });
      turn.searchOnly = { results: found.results, titleKey: "passagesNoAnswer" };
      renderTurn(turn);
      status("searchFound", { n: found.results.length });
    } catch (inner) {
      status(null);
      notice("searchFailed", { what, why, error: inner.text ? inner.text() : inner.message });
    }
    return;
  }
  status(null);
  dropTurn(turn);
  notice(err.key || "plain", { ...err.params, text: err.message });
}

function setBusy(busy) {
  $("ask-button").disabled = busy;
  $("stop-button").hidden = !busy;
  $("ask-form").setAttribute("aria-busy", String(busy));
}

function submitQuestion(event) {
  event.preventDefault();
  const message = $("question").value.trim();
  if (!message || running) return;
  $("question").value = "";
  ask(message);
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
          textContent: ` ${note.title ? `— ${note.title} ` : ""}${t("noteChunks", { n: note.chunks })}`,
        }),
      ),
    );
    $("notes-list").replaceChildren(...items);
    if (listing.notes.length === 0) {
      $("library-summary").textContent = t("noNotes");
      $("add-notes").open = true;
      notice("noNotesNotice", { kind: "info" });
    } else {
      $("library-summary").textContent = t("notesSummary", {
        notes: listing.notes.length,
        chunks: listing.chunks,
        collection: listing.collection,
      });
      if (said.notice && said.notice.key === "noNotesNotice") notice(null);
    }
  } catch (err) {
    if (!(err instanceof AuthNeeded)) {
      $("library-summary").textContent = t("notesFailed", { error: err.text ? err.text() : err.message });
    }
  }
}

/** The ingest line's parameters; its parts are said in the language shown at the time. */
function ingestSummary(report) {
  return { parts: () => ingestParts(report), chunks: report.chunks_written };
}

function ingestParts(report) {
  const parts = [
    t("filesNew", { n: report.files_new }),
    t("filesUpdated", { n: report.files_updated }),
    t("filesUnchanged", { n: report.files_unchanged }),
  ];
  if (report.files_failed) {
    const why = report.failures.map((f) => `${f.path}: ${f.error}`).join("; ");
    parts.push(t("filesFailed", { n: report.files_failed, why }));
  }
  if (report.files_unsupported) parts.push(t("filesUnsupported", { n: report.files_unsupported }));
  if (report.flagged && report.flagged.length) {
    const notes = report.flagged.map((f) => f.path).join(", ");
    parts.push(t("filesFlagged", { n: report.flagged.length, notes }));
  }
  return parts.join(language === "ja" ? "、" : ", ");
}

async function ingest(body, headersIn, formToReset) {
  say("ingest", "ingesting");
  try {
    const report = await call("/v1/ingest", { method: "POST", headers: headersIn, body }, 1_800_000);
    say("ingest", "ingested", ingestSummary(report));
    formToReset.reset();
    await loadNotes();
  } catch (err) {
    if (!(err instanceof AuthNeeded)) say("ingest", "notIngested", { error: err.text ? err.text() : err.message });
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
  language = preferredLanguage();
  loadConversation();
  applyLanguage();
  $("ask-form").addEventListener("submit", submitQuestion);
  $("question").addEventListener("keydown", questionKeys);
  $("stop-button").addEventListener("click", () => running && running.abort());
  $("new-conversation").addEventListener("click", newConversation);
  $("lang-switch").addEventListener("click", switchLanguage);
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
