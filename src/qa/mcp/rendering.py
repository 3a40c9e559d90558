"""Short plain-text renderings of answers, hits and articles: what an assistant's model reads beside the data."""

from __future__ import annotations

from collections.abc import Sequence

from qa.records import Answer, ArticleSummary, ArticleText, SearchHit
from qa.retrieval.filters import describe

QUOTE_CHARS = 300  # a highlighted sentence is shown up to this long
LIKELY = 0.7  # an answer at least this confident reads as likely right (as on the chat page)


def answer_text(answer: Answer) -> str:
    """The answer with its [n] markers, then each citation: title, date, link and the sentence it highlights."""
    searched = [f"(searched articles {describe(answer.filters)})"] if answer.filters else []
    if answer.abstained:
        return "\n".join([answer.answer, *searched])  # the library's own words for "the articles do not answer this"
    likely = "likely right" if answer.confidence >= LIKELY else "unsure"
    lines = [answer.answer, f"Confidence: {answer.confidence:.2f} ({likely})", *searched, ""]
    for citation in answer.citations:
        lines += _hit_lines(citation.n, citation)
    return "\n".join(lines).rstrip()


def hits_text(hits: Sequence[SearchHit]) -> str:
    """Numbered hits, best first, each with its highlighted sentence."""
    if not hits:
        return "No passages found."
    lines: list[str] = []
    for n, hit in enumerate(hits, start=1):
        lines += _hit_lines(n, hit)
    return "\n".join(lines).rstrip()


def article_text(page: ArticleText) -> str:
    """The article's metadata, then its page of text (and where to read on when there is more)."""
    end = page.text_start + len(page.text)
    lines = [page.title or page.id, f"id: {page.id}"]
    lines += [f"{name}: {value}" for name, value in (("published", page.published), ("url", page.url)) if value]
    lines.append(f"characters {page.text_start}-{end} of {page.text_length}")
    lines += ["", page.text]
    if page.next_start is not None:
        more = page.text_length - page.next_start
        lines += ["", f"[... {more} more characters: call get_article with start={page.next_start}]"]
    return "\n".join(lines)


def articles_text(total: int, offset: int, articles: Sequence[ArticleSummary]) -> str:
    """One line per article (id, date, title), newest first, and where the page sits in the whole."""
    if not articles:
        return f"No articles at offset {offset} ({total} in all)."
    lines = [f"{a.id}\t{a.published or '-'}\t{_one_line(a.title)}" for a in articles]
    lines.append(f"articles {offset + 1}-{offset + len(articles)} of {total}, newest first")
    return "\n".join(lines)


def _hit_lines(n: int, hit: SearchHit) -> list[str]:
    where = ", ".join(x for x in (hit.published, hit.url) if x)
    start, end = hit.highlight[0] - hit.start, hit.highlight[1] - hit.start
    quote = _one_line(hit.passage[start:end])
    if len(quote) > QUOTE_CHARS:
        quote = quote[: QUOTE_CHARS - 1] + "…"
    title = _one_line(hit.title) or hit.article_id
    return [f"[{n}] {title}" + (f" ({where})" if where else "") + f" id={hit.article_id}", f'    "{quote}"']


def _one_line(text: str) -> str:
    return " ".join(text.split())
