// Conversation threads kept in the browser. localStorage holds up to MAX_THREADS threads (shared by every tab);
// sessionStorage names the one this tab shows, so a reload or the article view's "Back to the chat" returns to
// it while a new tab starts a new chat. Storage that is off or full degrades to memory: the page keeps working
// and says the chat is not saved.
"use strict";

const THREADS_KEY = "qa.threads.v1";
const CURRENT_KEY = "qa.current";
const RETURN_KEY = "qa.return";
const DRAFT_FILTERS_KEY = "qa.filters"; // the filter row of a new chat, before its first question
export const MAX_THREADS = 20;

function storageOrNull(name) {
  try {
    const storage = window[name];
    storage.getItem(THREADS_KEY); // throws where storage is disabled
    return storage;
  } catch {
    return null;
  }
}

function readJson(storage, key) {
  if (!storage) return null;
  try {
    const raw = storage.getItem(key);
    return raw ? JSON.parse(raw) : null;
  } catch {
    return null;
  }
}

function isThread(value) {
  return (
    value !== null &&
    typeof value === "object" &&
    typeof value.id === "string" &&
    typeof value.title === "string" &&
    Number.isFinite(value.updated) &&
    Array.isArray(value.turns)
  );
}

export function newThreadId() {
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
}

export class ThreadStore {
  constructor(local = storageOrNull("localStorage"), session = storageOrNull("sessionStorage")) {
    this.local = local;
    this.session = session;
    this.memory = new Map(); // this tab's view; the source of truth when storage fails
    this.saved = true; // false once a write failed: the page says so
    this.currentInMemory = null;
    this.merge();
  }

  // Threads written by other tabs join this tab's; for one id, the most recently updated copy wins.
  merge() {
    const stored = readJson(this.local, THREADS_KEY);
    const threads = stored && Array.isArray(stored.threads) ? stored.threads.filter(isThread) : [];
    for (const thread of threads) {
      const mine = this.memory.get(thread.id);
      if (!mine || mine.updated < thread.updated) this.memory.set(thread.id, thread);
    }
  }

  list() {
    this.merge();
    return this.sorted();
  }

  sorted() {
    return [...this.memory.values()].sort((a, b) => b.updated - a.updated);
  }

  get(id) {
    if (!id) return null;
    this.merge();
    return this.memory.get(id) ?? null;
  }

  currentId() {
    if (!this.session) return this.currentInMemory;
    try {
      return this.session.getItem(CURRENT_KEY);
    } catch {
      return this.currentInMemory;
    }
  }

  setCurrent(id) {
    this.currentInMemory = id;
    try {
      if (id) this.session?.setItem(CURRENT_KEY, id);
      else this.session?.removeItem(CURRENT_KEY);
    } catch {
      // the tab forgets its thread on reload; nothing else depends on it
    }
  }

  // Keeps a thread (newest MAX_THREADS only); false when the browser would not store it.
  save(thread) {
    this.merge();
    this.memory.set(thread.id, thread);
    const threads = this.sorted().slice(0, MAX_THREADS);
    this.memory = new Map(threads.map((t) => [t.id, t]));
    return this.write(threads, thread.id);
  }

  remove(id) {
    this.merge();
    this.memory.delete(id);
    return this.write(this.sorted(), null);
  }

  // Writes the threads; when the storage is full, drops the oldest others until they fit.
  write(threads, keep) {
    if (!this.local) {
      this.saved = false;
      return false;
    }
    let kept = threads;
    for (;;) {
      try {
        this.local.setItem(THREADS_KEY, JSON.stringify({ version: 1, threads: kept }));
        this.memory = new Map(kept.map((t) => [t.id, t]));
        return true;
      } catch {
        const oldest = kept.findLastIndex((t) => t.id !== keep);
        if (oldest < 0) break;
        kept = kept.filter((_, i) => i !== oldest);
      }
    }
    this.saved = false;
    return false;
  }

  // Where to put the focus back when the reader returns from an article view (same tab only).
  setReturn(target) {
    try {
      this.session?.setItem(RETURN_KEY, JSON.stringify(target));
    } catch {
      // only the focus position is lost
    }
  }

  takeReturn() {
    const target = readJson(this.session, RETURN_KEY);
    try {
      this.session?.removeItem(RETURN_KEY);
    } catch {
      // nothing to clean up
    }
    return target;
  }
}

// Characters as the server counts them (code points; JavaScript's length counts UTF-16 units).
export function codePoints(text) {
  let n = 0;
  for (const _ of String(text)) n += 1;
  return n;
}

// The ids of the articles an answer cites, in order, each once.
export function citedArticleIds(answer) {
  const citations = Array.isArray(answer?.citations) ? answer.citations : [];
  return [...new Set(citations.map((c) => String(c.article_id)))];
}

function turnChars(turn) {
  return codePoints(turn.question) + codePoints(turn.answer) + turn.article_ids.reduce((n, id) => n + codePoints(id), 0);
}

// What a follow-up sends: the most recent turns, at most maxTurns of them and maxChars of text (oldest dropped).
export function historyFor(turns, maxTurns, maxChars) {
  let recent = maxTurns > 0 ? turns.slice(-maxTurns) : [];
  recent = recent.map((turn) => ({
    question: String(turn.question),
    answer: String(turn.answer?.answer ?? ""),
    article_ids: citedArticleIds(turn.answer),
  }));
  let size = recent.reduce((n, turn) => n + turnChars(turn), 0);
  while (recent.length && size > maxChars) {
    size -= turnChars(recent[0]);
    recent = recent.slice(1);
  }
  return recent;
}

const ISO_DATE = /^\d{4}-\d{2}-\d{2}$/;

// A filter row's values as a thread keeps them: {since, until, source}, each a string ("" when unset).
export function filtersOf(value) {
  const pick = (key, valid) => {
    const v = value && typeof value === "object" ? value[key] : "";
    return typeof v === "string" && valid(v) ? v : "";
  };
  return {
    since: pick("since", (v) => ISO_DATE.test(v)),
    until: pick("until", (v) => ISO_DATE.test(v)),
    source: pick("source", (v) => v.trim() === v),
  };
}

export function hasFilters(filters) {
  return Boolean(filters && (filters.since || filters.until || filters.source));
}

// What /api/ask takes: only the filters that are set.
export function filterFields(filters) {
  const fields = {};
  for (const key of ["since", "until", "source"]) if (filters?.[key]) fields[key] = filters[key];
  return fields;
}

// The filter row of a chat that has no question yet, kept for this tab (a reload keeps it).
export function draftFilters() {
  try {
    return filtersOf(JSON.parse(window.sessionStorage.getItem(DRAFT_FILTERS_KEY) ?? "null"));
  } catch {
    return filtersOf(null);
  }
}

export function saveDraftFilters(filters) {
  try {
    if (hasFilters(filters)) window.sessionStorage.setItem(DRAFT_FILTERS_KEY, JSON.stringify(filters));
    else window.sessionStorage.removeItem(DRAFT_FILTERS_KEY);
  } catch {
    // kept in the page only
  }
}
