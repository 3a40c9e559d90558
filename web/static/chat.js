// The chat page: a conversation thread. Questions go to /api/ask with the thread's history; the thread is kept
// in browser storage (thread.js) and drawn by render.js. Limits come from the server, as data attributes on the
// form, never copied here.
"use strict";

import {
  ThreadStore,
  codePoints,
  draftFilters,
  filterFields,
  filtersOf,
  hasFilters,
  historyFor,
  newThreadId,
  saveDraftFilters,
} from "./thread.js";
import {
  citedOnly,
  copyText,
  describeFilters,
  showAnswer,
  showError,
  showPending,
  spokenAnswer,
  turnElement,
} from "./render.js";

const TOP_K = 5;
const WARN_AT = 0.8; // share of the question limit from which the counter shows

const form = document.getElementById("ask-form");
const input = document.getElementById("question");
const log = document.getElementById("log");
const ui = {
  empty: document.getElementById("empty"),
  title: document.getElementById("chat-title"),
  toolbar: document.getElementById("chat-toolbar"),
  newChat: document.getElementById("new-chat"),
  threads: document.getElementById("threads"),
  threadList: document.getElementById("thread-list"),
  threadCount: document.getElementById("thread-count"),
  storageNote: document.getElementById("storage-note"),
  status: document.getElementById("question-status"),
  announcer: document.getElementById("announcer"),
  button: form?.querySelector("button[type=submit]"),
  since: document.getElementById("filter-since"),
  until: document.getElementById("filter-until"),
  source: document.getElementById("filter-source"),
  clearFilters: document.getElementById("filter-clear"),
  filterStatus: document.getElementById("filter-status"),
};

function limit(name, fallback) {
  const value = Number.parseInt(form?.dataset[name] ?? "", 10);
  return Number.isFinite(value) && value >= 0 ? value : fallback;
}

const limits = {
  question: limit("maxQuestionChars", Number.POSITIVE_INFINITY),
  turns: limit("maxHistoryTurns", 0),
  chars: limit("maxHistoryChars", 0),
};

const store = new ThreadStore();
let thread = store.get(store.currentId()); // null: a new chat, stored once it has its first answer
let pending = null; // the AbortController of the request in flight

function announce(text) {
  // Cleared first, so that the same text twice is announced twice.
  ui.announcer.textContent = "";
  window.setTimeout(() => {
    ui.announcer.textContent = text;
  }, 50);
}

// -- the question box ---------------------------------------------------------------------------------------
function overBy(text) {
  return codePoints(text) - limits.question;
}

function updateCounter() {
  const text = input.value.trim();
  const n = codePoints(text);
  const over = overBy(text);
  if (over > 0) {
    ui.status.textContent = `${n.toLocaleString()} / ${limits.question.toLocaleString()} characters: ${over.toLocaleString()} over the limit. Shorten the question to send it.`;
  } else if (n >= limits.question * WARN_AT) {
    ui.status.textContent = `${n.toLocaleString()} / ${limits.question.toLocaleString()} characters`;
  } else {
    ui.status.textContent = "";
  }
  ui.status.classList.toggle("over", over > 0);
  if (over > 0) input.setAttribute("aria-invalid", "true");
  else input.removeAttribute("aria-invalid");
}

function setBusy(busy) {
  if (ui.button) ui.button.disabled = busy;
  if (busy) form.setAttribute("aria-busy", "true");
  else form.removeAttribute("aria-busy");
}

// -- the thread ---------------------------------------------------------------------------------------------
function showEmptyState() {
  const empty = log.children.length === 0;
  ui.empty.hidden = !empty;
  ui.title.classList.toggle("visually-hidden", !empty);
}

function persist() {
  if (!store.save(thread) || !store.saved) {
    ui.storageNote.textContent = "This chat is not saved: the browser's storage is off or full.";
    ui.storageNote.hidden = false;
  }
  store.setCurrent(thread.id);
  renderThreadList();
}

function drawThread() {
  log.replaceChildren();
  for (const [index, turn] of (thread?.turns ?? []).entries()) {
    const item = turnElement(turn.question);
    item.dataset.turn = String(index);
    showAnswer(item, turn, (button) => copy(turn, button));
    log.appendChild(item);
  }
  showEmptyState();
}

function openThread(id) {
  abortPending();
  thread = id ? store.get(id) : null;
  store.setCurrent(thread?.id ?? null);
  if (!thread) saveDraftFilters(null);
  showFilters(filtersOf(thread?.filters));
  drawThread();
  renderThreadList();
  ui.status.textContent = "";
  const last = log.lastElementChild;
  if (last) last.scrollIntoView({ block: "start" });
  else window.scrollTo(0, 0);
}

function abortPending() {
  if (pending) pending.abort();
  pending = null;
  setBusy(false);
}

function formatWhen(ms) {
  const when = new Date(ms);
  const today = new Date().toDateString() === when.toDateString();
  return today
    ? when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
    : when.toLocaleDateString([], { day: "numeric", month: "short" });
}

function renderThreadList() {
  const threads = store.list();
  ui.threads.hidden = threads.length === 0;
  ui.threadCount.textContent = `(${threads.length})`;
  ui.threadList.replaceChildren();
  for (const t of threads) {
    const item = document.createElement("li");
    const open = document.createElement("button");
    open.type = "button";
    open.className = "open-thread";
    open.textContent = t.title;
    if (thread && t.id === thread.id) open.setAttribute("aria-current", "true");
    open.addEventListener("click", () => {
      openThread(t.id);
      ui.threads.open = false;
      input.focus();
    });
    const time = document.createElement("time");
    time.className = "thread-time";
    time.dateTime = new Date(t.updated).toISOString();
    time.textContent = formatWhen(t.updated);
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "delete-thread";
    remove.textContent = "Delete";
    remove.setAttribute("aria-label", `Delete chat: ${t.title}`);
    remove.addEventListener("click", () => {
      store.remove(t.id);
      if (thread && thread.id === t.id) openThread(null);
      renderThreadList();
      ui.threads.querySelector("summary")?.focus();
    });
    item.append(open, time, remove);
    ui.threadList.appendChild(item);
  }
}

// -- the filter row: kept with the thread, sent with each of its questions ----------------------------------
function currentFilters() {
  return filtersOf({ since: ui.since.value, until: ui.until.value, source: ui.source.value });
}

function ensureSourceOption(value) {
  if (!value || [...ui.source.options].some((o) => o.value === value)) return;
  const option = new Option(value, value);
  ui.source.appendChild(option);
}

function showFilters(filters) {
  ui.since.value = filters.since;
  ui.until.value = filters.until;
  ensureSourceOption(filters.source);
  ui.source.value = filters.source;
  const words = describeFilters({ ...filters, source: filters.source ? [filters.source] : [] });
  ui.filterStatus.textContent = words ? `Questions in this chat use only articles ${words}.` : "";
  ui.clearFilters.hidden = !hasFilters(filters);
}

function keepFilters() {
  const filters = currentFilters();
  if (thread) {
    thread.filters = filters;
    thread.updated = Date.now();
    persist();
  } else {
    saveDraftFilters(filters);
  }
  showFilters(filters);
}

// The sources a reader can pick: sites, folders and feeds (GET /api/sources), each with its article count.
async function loadSources() {
  let data = null;
  try {
    const response = await fetch("/api/sources", { headers: { Accept: "application/json" } });
    data = response.ok ? await response.json() : null;
  } catch {
    data = null;
  }
  if (!data || typeof data !== "object") return;
  const chosen = ui.source.value;
  const groups = [
    ["Sites", data.sites, (s) => s.name],
    ["Folders", data.folders, (s) => `${s.name}/`],
    ["Feeds", data.feeds, (s) => s.title || s.name],
  ];
  for (const [label, list, name] of groups) {
    if (!Array.isArray(list) || !list.length) continue;
    const group = document.createElement("optgroup");
    group.label = label;
    for (const source of list) {
      if (!source || typeof source.name !== "string") continue;
      for (const old of [...ui.source.options]) if (old.value === source.name && !old.parentElement.label) old.remove();
      group.appendChild(new Option(`${name(source)} (${Number(source.articles) || 0})`, source.name));
    }
    ui.source.appendChild(group);
  }
  ui.source.value = chosen;
}

// -- asking -------------------------------------------------------------------------------------------------
function errorMessage(response, data) {
  if (data && typeof data.error === "string") {
    const wait = response.headers.get("Retry-After");
    return response.status === 429 && wait ? `${data.error} (try again in ${wait} s)` : data.error;
  }
  return `the server answered ${response.status}`;
}

// Keeps what the page shows of an answer: the text and the citations it refers to (the rest is never shown).
function kept(data) {
  const answer = {
    answer: String(data.answer ?? ""),
    abstained: Boolean(data.abstained),
    citations: citedOnly(data),
  };
  if (typeof data.query === "string") answer.query = data.query;
  if (typeof data.confidence === "number") answer.confidence = data.confidence;
  if (data.filters && typeof data.filters === "object") {
    answer.filters = {
      since: typeof data.filters.since === "string" ? data.filters.since : null,
      until: typeof data.filters.until === "string" ? data.filters.until : null,
      source: Array.isArray(data.filters.source) ? data.filters.source.map(String) : [],
    };
  }
  return answer;
}

function scrollToTurn(item) {
  const room = window.innerHeight - (form.getBoundingClientRect().height || 0);
  item.scrollIntoView({ block: item.getBoundingClientRect().height > room ? "start" : "end" });
}

async function ask(
  question,
  item = null,
  history = historyFor(thread?.turns ?? [], limits.turns, limits.chars),
  filters = currentFilters(),
) {
  // An earlier failed turn can no longer be retried once another question is asked.
  for (const stale of log.querySelectorAll(".reply.error .retry")) stale.remove();
  const turnItem = item ?? turnElement(question);
  if (!item) log.appendChild(turnItem);
  showEmptyState();
  showPending(turnItem);
  scrollToTurn(turnItem);
  const controller = new AbortController();
  pending = controller;
  setBusy(true);
  const started = performance.now();
  let data = null;
  let failure = null;
  try {
    const response = await fetch("/api/ask", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ question, top_k: TOP_K, history, ...filterFields(filters) }),
      signal: controller.signal,
    });
    try {
      data = await response.json();
    } catch {
      data = null;
    }
    if (!response.ok || !data || typeof data !== "object") failure = `Error: ${errorMessage(response, data)}`;
  } catch (err) {
    if (err && err.name === "AbortError") return;
    failure = "Error: could not reach the server. Check your connection and try again.";
  } finally {
    if (pending === controller) {
      pending = null;
      setBusy(false);
    }
  }
  if (controller.signal.aborted) return;
  if (failure) {
    showError(turnItem, failure, () => {
      if (pending) return;
      input.focus(); // the Retry button goes away with the error
      ask(question, turnItem, history, filters);
    });
    announce(failure);
  } else {
    const turn = { question, answer: kept(data), ms: Math.round(performance.now() - started), at: Date.now() };
    if (!thread) {
      const title = Array.from(question).slice(0, 120).join("");
      thread = { id: newThreadId(), title, updated: 0, turns: [], filters };
      saveDraftFilters(null);
    }
    thread.turns.push(turn);
    thread.updated = Date.now();
    turnItem.dataset.turn = String(thread.turns.length - 1);
    showAnswer(turnItem, turn, (button) => copy(turn, button));
    persist();
    announce(spokenAnswer(turn.answer));
  }
  scrollToTurn(turnItem);
}

// Sends a question unless it is empty, too long (said so, never cut) or another is on its way.
function submit(text) {
  const question = text.trim();
  if (!question || pending) return false;
  const over = overBy(question);
  if (over > 0) {
    input.value = text;
    updateCounter();
    announce(ui.status.textContent);
    input.focus();
    return false;
  }
  input.value = "";
  updateCounter();
  input.focus(); // also when the question came from an example link, which the empty state hides
  ask(question);
  return true;
}

async function copy(turn, button) {
  const text = copyText(turn.answer, window.location.origin);
  const status = button.parentElement.querySelector(".copy-status");
  let done = false;
  try {
    await navigator.clipboard.writeText(text);
    done = true;
  } catch {
    done = false;
  }
  status.textContent = done ? "Copied" : "Copy failed: select the text to copy it";
  announce(status.textContent);
  window.setTimeout(() => {
    status.textContent = "";
  }, 4000);
}

// -- wiring -------------------------------------------------------------------------------------------------
function wire() {
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submit(input.value);
    input.focus();
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  input.addEventListener("input", updateCounter);
  for (const field of [ui.since, ui.until, ui.source]) field.addEventListener("change", keepFilters);
  ui.clearFilters.addEventListener("click", () => {
    showFilters(filtersOf(null));
    keepFilters();
    ui.since.focus();
  });
  ui.newChat.addEventListener("click", () => {
    openThread(null);
    input.focus();
  });
  for (const example of document.querySelectorAll("a.example")) {
    example.addEventListener("click", (event) => {
      event.preventDefault();
      submit(example.textContent);
    });
  }
  // Where to come back to from the article view: the link followed, in its turn.
  log.addEventListener("click", (event) => {
    const link = event.target instanceof Element ? event.target.closest("a[href^='/articles/']") : null;
    const item = link?.closest(".turn");
    if (link && item && thread) {
      store.setReturn({ thread: thread.id, turn: item.dataset.turn, href: link.getAttribute("href") });
    }
  });
  // The sticky question bar must never cover the focused element: scroll-padding follows its height, and a
  // focused element still under it is scrolled clear.
  const root = document.documentElement;
  new ResizeObserver(() => {
    root.style.setProperty("--ask-form-height", `${Math.ceil(form.getBoundingClientRect().height)}px`);
  }).observe(form);
  document.addEventListener("focusin", (event) => {
    const target = event.target;
    if (!(target instanceof Element) || form.contains(target)) return;
    const overlap = target.getBoundingClientRect().bottom - form.getBoundingClientRect().top;
    if (overlap > 0) window.scrollBy(0, overlap + 8);
  });
  window.addEventListener("storage", renderThreadList);
  // Restored from the back/forward cache: the focus is already where it was; forget the return point.
  window.addEventListener("pageshow", (event) => {
    if (event.persisted) store.takeReturn();
  });
}

// Back from an article view: the thread is drawn again; focus returns to the link that was followed.
function restoreFocus() {
  const target = store.takeReturn();
  if (!target || !thread || target.thread !== thread.id) return false;
  const item = log.querySelector(`.turn[data-turn="${Number(target.turn)}"]`);
  const link = [...(item?.querySelectorAll("a") ?? [])].find((a) => a.getAttribute("href") === target.href);
  if (!link) return false;
  link.scrollIntoView({ block: "center" });
  link.focus({ preventScroll: true });
  return true;
}

function start() {
  if (!form || !input || !log) return;
  ui.toolbar.hidden = false;
  wire();
  showFilters(filtersOf(thread ? thread.filters : draftFilters()));
  drawThread();
  renderThreadList();
  updateCounter();
  loadSources();
  const params = new URLSearchParams(window.location.search);
  const linked = params.get("q");
  if (linked !== null) {
    // A linked question starts a new chat (with the link's filters); the address loses its query so a reload
    // does not ask it again.
    window.history.replaceState(null, "", window.location.pathname);
    openThread(null);
    showFilters(filtersOf({ since: params.get("since"), until: params.get("until"), source: params.get("source") }));
    saveDraftFilters(currentFilters());
    input.focus();
    submit(linked);
    return;
  }
  if (!restoreFocus()) {
    const last = log.lastElementChild;
    if (last) scrollToTurn(last);
    input.focus();
  }
}

start();
