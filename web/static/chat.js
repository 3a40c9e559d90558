// The chat page: sends questions to /api/ask and renders answers with their citations.
// Article text and metadata are untrusted: every node is built with createElement/textContent.
"use strict";

(() => {
  const form = document.getElementById("ask-form");
  const input = document.getElementById("question");
  const log = document.getElementById("log");
  if (!form || !input || !log) return;
  const button = form.querySelector("button[type=submit]");
  const ABSTAIN = "Not found in the articles.";
  let busy = false;

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function isHttpUrl(url) {
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

  function articleHref(citation) {
    const id = String(citation.article_id);
    const path = id.split("/").map(encodeURIComponent).join("/");
    const params = new URLSearchParams();
    const h = Array.isArray(citation.highlight) ? citation.highlight : null;
    if (h && Number.isInteger(h[0]) && Number.isInteger(h[1])) {
      params.set("start", String(h[0]));
      params.set("end", String(h[1]));
    }
    const query = params.toString();
    return `/articles/${path}${query ? `?${query}` : ""}#cited`;
  }

  // Show the latest message: its end for short ones, its start when it is taller than the window,
  // so that a long answer is read from its first line rather than from its last source card.
  function scrollToLatest() {
    const last = log.lastElementChild;
    if (!last || typeof last.scrollIntoView !== "function") return;
    const tall = last.getBoundingClientRect().height > window.innerHeight * 0.6;
    last.scrollIntoView({ block: tall ? "start" : "end" });
  }

  function addMessage(kind) {
    const item = el("li", `message ${kind}`);
    log.appendChild(item);
    return item;
  }

  function addUser(question) {
    const item = addMessage("user");
    item.appendChild(el("div", "bubble", question));
    scrollToLatest();
  }

  // The answer text with each "[n]" turned into a link to citations[n-1]'s cited span.
  function renderAnswerText(answer, citations) {
    const p = el("p", "answer-text");
    const pattern = /\[(\d+)\]/g;
    let last = 0;
    let match;
    while ((match = pattern.exec(answer)) !== null) {
      const n = Number(match[1]);
      const citation = citations[n - 1];
      if (!citation) continue;
      if (match.index > last) p.appendChild(document.createTextNode(answer.slice(last, match.index)));
      const link = el("a", "cite", `[${n}]`);
      link.href = articleHref(citation);
      link.title = citation.title ? `Source ${n}: ${citation.title}` : `Source ${n}`;
      p.appendChild(link);
      last = match.index + match[0].length;
    }
    if (last < answer.length) p.appendChild(document.createTextNode(answer.slice(last)));
    return p;
  }

  // The passage with its supporting sentence wrapped in <mark>.
  function renderPassage(citation) {
    const block = el("blockquote", "passage");
    const text = String(citation.passage ?? "");
    const h = Array.isArray(citation.highlight) ? citation.highlight : null;
    const start = Number(citation.start);
    let from = -1;
    let to = -1;
    if (h && Number.isFinite(start)) {
      from = Math.max(0, Math.min(text.length, Number(h[0]) - start));
      to = Math.max(0, Math.min(text.length, Number(h[1]) - start));
    }
    if (from >= 0 && to > from) {
      if (from > 0) block.appendChild(document.createTextNode(text.slice(0, from)));
      block.appendChild(el("mark", null, text.slice(from, to)));
      if (to < text.length) block.appendChild(document.createTextNode(text.slice(to)));
    } else {
      block.textContent = text;
    }
    return block;
  }

  function renderSource(citation) {
    const card = el("li", "source");
    const head = el("div", "source-head");
    head.appendChild(el("span", "source-n", `[${citation.n}]`));
    head.appendChild(el("span", "source-title", citation.title || citation.article_id));
    if (citation.published) {
      const time = el("time", "source-date", citation.published);
      time.dateTime = String(citation.published);
      head.appendChild(time);
    }
    card.appendChild(head);
    card.appendChild(renderPassage(citation));
    const links = el("div", "source-links");
    const open = el("a", "open-article", "open in article");
    open.href = articleHref(citation);
    links.appendChild(open);
    if (isHttpUrl(citation.url)) {
      const original = el("a", "original", "original article");
      original.href = citation.url.trim();
      original.target = "_blank";
      original.rel = "noopener noreferrer";
      links.appendChild(original);
    }
    card.appendChild(links);
    return card;
  }

  function renderAnswer(item, data) {
    item.className = "message answer";
    item.replaceChildren();
    const bubble = el("div", "bubble");
    const citations = Array.isArray(data.citations) ? data.citations : [];
    if (data.abstained) {
      item.classList.add("abstained");
      bubble.appendChild(el("p", "answer-text", data.answer || ABSTAIN));
      item.appendChild(bubble);
      return;
    }
    bubble.appendChild(renderAnswerText(String(data.answer ?? ""), citations));
    item.appendChild(bubble);
    if (citations.length) {
      const sources = el("ol", "sources");
      sources.setAttribute("aria-label", "Sources");
      for (const citation of citations) sources.appendChild(renderSource(citation));
      item.appendChild(sources);
    }
  }

  function renderError(item, message) {
    item.className = "message error";
    item.replaceChildren();
    item.setAttribute("role", "alert");
    item.appendChild(el("div", "bubble", message));
  }

  async function ask(question) {
    busy = true;
    if (button) button.disabled = true;
    form.setAttribute("aria-busy", "true");
    addUser(question);
    const pending = addMessage("answer pending");
    pending.appendChild(el("div", "bubble", "thinking…"));
    scrollToLatest();
    try {
      const response = await fetch("/api/ask", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ question, top_k: 5 }),
      });
      let data = null;
      try {
        data = await response.json();
      } catch {
        data = null;
      }
      if (!response.ok || !data || typeof data !== "object") {
        const message = data && typeof data.error === "string" ? data.error : `request failed (${response.status})`;
        renderError(pending, `Error: ${message}`);
      } else {
        renderAnswer(pending, data);
      }
    } catch (err) {
      renderError(pending, "Error: could not reach the server. Check your connection and try again.");
    } finally {
      busy = false;
      if (button) button.disabled = false;
      form.removeAttribute("aria-busy");
      scrollToLatest();
      input.focus();
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (busy) return;
    const question = input.value.trim();
    if (!question) {
      input.focus();
      return;
    }
    input.value = "";
    input.focus();
    ask(question);
  });

  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      if (typeof form.requestSubmit === "function") form.requestSubmit();
      else form.dispatchEvent(new Event("submit", { cancelable: true }));
    }
  });

  input.focus();
})();
