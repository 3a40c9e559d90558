// Building the conversation's DOM: questions, answers with citation links, one source card per cited article.
// Article text and metadata are untrusted: every node is built with createElement/textContent.
"use strict";

export const NOT_FOUND = "Not found in the articles.";
export const LIKELY = 0.7; // confidence at or above which an answer is labelled "likely"

export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function hidden(text) {
  return el("span", "visually-hidden", text);
}

export function isHttpUrl(url) {
  if (typeof url !== "string") return false;
  const trimmed = url.trim();
  if (!/^https?:\/\//i.test(trimmed)) return false;
  try {
    const parsed = new URL(trimmed);
    return parsed.protocol === "http:" || parsed.protocol === "https:";
  } catch {
    return false;
  }
}

// The article view at the cited sentence: /articles/<id>?start=&end=#cited (the same path as the server builds).
export function articleHref(citation) {
  const path = String(citation.article_id).split("/").map(encodeURIComponent).join("/");
  const params = new URLSearchParams();
  const h = Array.isArray(citation.highlight) ? citation.highlight : null;
  if (h && Number.isInteger(h[0]) && Number.isInteger(h[1])) {
    params.set("start", String(h[0]));
    params.set("end", String(h[1]));
  }
  const query = params.toString();
  return `/articles/${path}${query ? `?${query}` : ""}#cited`;
}

// The filters as words: "published 1987-06-01 to 1987-06-30, from Reuters" (the server's qa.retrieval.filters).
export function describeFilters(filters) {
  if (!filters || typeof filters !== "object") return "";
  const since = typeof filters.since === "string" ? filters.since : "";
  const until = typeof filters.until === "string" ? filters.until : "";
  const sources = Array.isArray(filters.source) ? filters.source : filters.source ? [filters.source] : [];
  const parts = [];
  if (since && until) parts.push(since === until ? `published on ${since}` : `published ${since} to ${until}`);
  else if (since) parts.push(`published on or after ${since}`);
  else if (until) parts.push(`published on or before ${until}`);
  if (sources.length) parts.push(`from ${sources.map(String).join(" or ")}`);
  return parts.join(", ");
}

// Where an article comes from, for its card: the host of its link, else its source.
export function siteOf(citation) {
  if (isHttpUrl(citation.url)) {
    try {
      return new URL(citation.url.trim()).hostname.replace(/^www\./, "");
    } catch {
      // fall through
    }
  }
  const source = typeof citation.source === "string" ? citation.source.trim() : "";
  return source && source !== String(citation.article_id) ? source : "";
}

function titleOf(citation) {
  return String(citation.title || citation.article_id);
}

// The citations the answer text refers to with [n]; the others were never cited and are not shown.
export function citedOnly(answer) {
  const text = String(answer?.answer ?? "");
  const numbers = new Set([...text.matchAll(/\[(\d+)\]/g)].map((m) => Number(m[1])));
  const citations = Array.isArray(answer?.citations) ? answer.citations : [];
  return citations.filter((c) => numbers.has(Number(c.n)));
}

// The answer as plain text for the clipboard: "… [1]\n\nSources:\n[1] Title — URL or article link".
export function copyText(answer, origin) {
  const lines = [String(answer.answer ?? "")];
  const citations = citedOnly(answer);
  if (citations.length) {
    lines.push("", "Sources:");
    for (const c of citations) {
      const link = isHttpUrl(c.url) ? c.url.trim() : origin + articleHref(c);
      lines.push(`[${c.n}] ${titleOf(c)} — ${link}`);
    }
  }
  return lines.join("\n");
}

// What the live region says when an answer arrives: its text, without the [n] markers.
export function spokenAnswer(answer) {
  const text = String(answer.answer ?? "").replace(/\s*\[\d+\]/g, "").trim();
  return answer.abstained ? `No answer: ${text || NOT_FOUND}` : text;
}

export function formatSeconds(ms) {
  const seconds = ms / 1000;
  if (seconds < 0.1) return "< 0.1 s";
  return `${seconds < 10 ? seconds.toFixed(1) : seconds.toFixed(0)} s`;
}

function sameText(a, b) {
  const norm = (s) => String(s).toLowerCase().split(/\s+/).filter(Boolean).join(" ");
  return norm(a) === norm(b);
}

// The answer text with each "[n]" a link named "Source n: title" to the cited sentence in the article view.
function answerText(answer, citations) {
  const p = el("p", "answer-text");
  const byNumber = new Map(citations.map((c) => [Number(c.n), c]));
  const text = String(answer.answer ?? "");
  const pattern = /\[(\d+)\]/g;
  let last = 0;
  let match;
  while ((match = pattern.exec(text)) !== null) {
    const citation = byNumber.get(Number(match[1]));
    if (!citation) continue;
    if (match.index > last) p.appendChild(document.createTextNode(text.slice(last, match.index)));
    const link = el("a", "cite", `[${citation.n}]`);
    link.href = articleHref(citation);
    link.setAttribute("aria-label", `Source ${citation.n}: ${titleOf(citation)}`);
    p.appendChild(link);
    last = match.index + match[0].length;
  }
  if (last < text.length) p.appendChild(document.createTextNode(text.slice(last)));
  return p;
}

// The cited sentence's offsets within the passage text (clamped), or null.
function highlightIn(citation) {
  const text = String(citation.passage ?? "");
  const h = Array.isArray(citation.highlight) ? citation.highlight : null;
  const start = Number(citation.start);
  if (!h || !Number.isFinite(start)) return null;
  const from = Math.max(0, Math.min(text.length, Number(h[0]) - start));
  const to = Math.max(0, Math.min(text.length, Number(h[1]) - start));
  return to > from ? [from, to] : null;
}

function passage(citation) {
  const block = el("blockquote", "passage");
  const text = String(citation.passage ?? "");
  const span = highlightIn(citation);
  if (!span) {
    block.textContent = text;
    return block;
  }
  const [from, to] = span;
  if (from > 0) block.appendChild(document.createTextNode(text.slice(0, from)));
  block.appendChild(el("mark", null, text.slice(from, to)));
  if (to < text.length) block.appendChild(document.createTextNode(text.slice(to)));
  return block;
}

function citedSentence(citation, numbered) {
  const quote = el("blockquote", "cited-sentence");
  const text = String(citation.passage ?? "");
  const span = highlightIn(citation);
  if (numbered) {
    const n = el("a", "sentence-n", `[${citation.n}]`);
    n.href = articleHref(citation);
    n.setAttribute("aria-label", `Source ${citation.n}: ${titleOf(citation)}, at this sentence`);
    quote.append(n, " ");
  }
  quote.appendChild(document.createTextNode(span ? text.slice(span[0], span[1]).trim() : text));
  return quote;
}

function more(citation) {
  const details = el("details", "more");
  const summary = el("summary", null, "More");
  summary.appendChild(hidden(` of source ${citation.n}`));
  details.append(summary, passage(citation));
  return details;
}

// One card per article: its title (a link to the first cited sentence), date, the cited sentence(s), and
// the passage around each behind a "More" toggle.
function sourceCard(group) {
  const first = group[0];
  const card = el("li", "source");
  const head = el("p", "source-head");
  head.appendChild(el("span", "source-n", group.map((c) => `[${c.n}]`).join(" ")));
  const title = el("a", "source-title", titleOf(first));
  title.href = articleHref(first);
  head.appendChild(title);
  const meta = el("span", "source-meta");
  if (first.published) {
    const time = el("time", "source-date", String(first.published).slice(0, 10));
    time.dateTime = String(first.published);
    meta.appendChild(time);
  }
  const site = siteOf(first);
  if (site) meta.appendChild(el("span", "source-site", site));
  if (meta.childNodes.length) head.appendChild(meta);
  if (isHttpUrl(first.url)) {
    const original = el("a", "original", "original");
    original.href = first.url.trim();
    original.target = "_blank";
    original.rel = "noopener noreferrer";
    original.appendChild(hidden(` of “${titleOf(first)}” (opens in a new tab)`));
    head.appendChild(original);
  }
  card.appendChild(head);
  for (const citation of group) card.append(citedSentence(citation, group.length > 1), more(citation));
  return card;
}

function sources(citations) {
  const groups = new Map();
  for (const c of citations) {
    const key = String(c.article_id);
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(c);
  }
  const list = el("ol", "sources");
  list.setAttribute("aria-label", "Sources");
  for (const group of groups.values()) list.appendChild(sourceCard(group));
  return list;
}

function confidenceLabel(confidence) {
  if (typeof confidence !== "number" || !Number.isFinite(confidence)) return null;
  const likely = confidence >= LIKELY;
  const label = el("span", `confidence ${likely ? "likely" : "unsure"}`, `Confidence: ${likely ? "likely" : "unsure"}`);
  label.title = `Estimated chance that this answer is right: ${Math.round(confidence * 100)}%`;
  return label;
}

function button(className, text, onClick) {
  const b = el("button", className, text);
  b.type = "button";
  b.addEventListener("click", onClick);
  return b;
}

// A turn: the question as a heading, and under it the reply area that pending/answer/error fill.
export function turnElement(question) {
  const item = el("li", "turn");
  const heading = el("h2", "question");
  heading.append(hidden("Question: "), String(question));
  item.append(heading, el("div", "reply"));
  return item;
}

export function showPending(item) {
  const reply = item.querySelector(".reply");
  reply.className = "reply pending";
  reply.replaceChildren(el("p", "pending-text", "Searching the articles…"));
  item.setAttribute("aria-busy", "true");
}

// The answer under its question. `turn` is {question, answer, ms}; `onCopy(button)` copies it.
export function showAnswer(item, turn, onCopy) {
  const answer = turn.answer;
  const reply = item.querySelector(".reply");
  item.removeAttribute("aria-busy");
  reply.className = answer.abstained ? "reply answer abstained" : "reply answer";
  reply.replaceChildren();
  const citations = citedOnly(answer);
  if (answer.abstained) {
    reply.append(el("p", "abstain-label", "No answer"), el("p", "answer-text", answer.answer || NOT_FOUND));
  } else {
    reply.appendChild(answerText(answer, citations));
  }
  const filtered = describeFilters(answer.filters);
  if (filtered) reply.appendChild(el("p", "turn-filters", `Searched articles ${filtered}.`));
  if (typeof answer.query === "string" && answer.query.trim() && !sameText(answer.query, turn.question)) {
    const query = el("p", "query", "Searched for: ");
    query.appendChild(el("q", null, answer.query));
    reply.appendChild(query);
  }
  if (!answer.abstained && citations.length) reply.appendChild(sources(citations));
  const meta = el("div", "answer-meta");
  const confidence = answer.abstained ? null : confidenceLabel(answer.confidence);
  if (confidence) meta.appendChild(confidence);
  if (Number.isFinite(turn.ms)) {
    const took = el("span", "elapsed");
    took.append(hidden("Took "), formatSeconds(turn.ms));
    meta.appendChild(took);
  }
  if (!answer.abstained) {
    const copy = button("copy", "Copy", () => onCopy(copy));
    copy.setAttribute("aria-label", "Copy the answer with its sources");
    meta.append(copy, el("span", "copy-status"));
  }
  reply.appendChild(meta);
}

export function showError(item, message, onRetry) {
  const reply = item.querySelector(".reply");
  item.removeAttribute("aria-busy");
  reply.className = "reply error";
  const actions = el("div", "answer-meta");
  if (onRetry) actions.appendChild(button("retry", "Retry", onRetry));
  reply.replaceChildren(el("p", "error-text", message), actions);
}
