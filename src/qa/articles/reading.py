"""Read article files (.txt, .md, .html, .json, .jsonl) into clean `Article` records."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

from qa.articles.cleaning import clean_scraped_text, parse_date
from qa.articles.ids import checked_id, slug_from_url, title_from_id
from qa.errors import InvalidArticle, ReaderUnavailable
from qa.records import Article
from qa.text.unicode import is_unicode, normalise

log = logging.getLogger(__name__)

TEXT_SUFFIXES = {".txt", ".text"}
MARKDOWN_SUFFIXES = {".md", ".markdown"}
HTML_SUFFIXES = {".html", ".htm"}
JSON_SUFFIXES = {".json", ".jsonl"}
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | MARKDOWN_SUFFIXES | HTML_SUFFIXES | JSON_SUFFIXES
_FIELDS = ("id", "title", "text", "url", "published", "author", "source")


def read_bytes(data: bytes, name: str, where: str | None = None) -> list[Article]:
    """The articles in a file's bytes; `name` (a relative path) gives the type and the default id."""
    where = where or name
    suffix = Path(name).suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise InvalidArticle(where, f"unsupported file type {suffix or '(none)'!r}")
    text = decode(data, where)
    if not text.strip():
        raise InvalidArticle(where, "file is empty")
    if suffix in JSON_SUFFIXES:
        return _read_json(text, name, where, lines=suffix == ".jsonl")
    if suffix in HTML_SUFFIXES:
        return [_read_html(text, name, where)]
    if suffix in MARKDOWN_SUFFIXES:
        return [_read_markdown(text, name, where)]
    cleaned = clean_scraped_text(text)
    return [
        _article(
            where,
            id=name,
            title=cleaned.title,
            text=cleaned.body,
            author=cleaned.author,
            published=cleaned.published,
            source=name,
        )
    ]


def decode(data: bytes, where: str) -> str:
    """UTF-8 text (with or without BOM), falling back to Windows-1252 / Latin-1 for legacy files."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return normalise(data.decode("utf-16"))
        except UnicodeDecodeError as e:
            raise InvalidArticle(where, "invalid UTF-16 text") from e
    if b"\x00" in data:
        raise InvalidArticle(where, "binary data, not a text file")
    try:
        return normalise(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        pass
    for encoding in ("cp1252", "latin-1"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        log.info("%s: not valid UTF-8, read as %s", where, encoding)
        return normalise(text)
    raise InvalidArticle(where, "undecodable text")  # pragma: no cover - latin-1 decodes any byte string


def article_from_mapping(obj: Any, default_id: str, where: str) -> Article:
    """An article from a JSON object with fields id, title, text, url, published, author, source."""
    if not isinstance(obj, dict):
        raise InvalidArticle(where, f"expected a JSON object, got {type(obj).__name__}")
    values: dict[str, str | None] = {}
    for field in _FIELDS:
        value = obj.get(field)
        if value is not None and (isinstance(value, bool) or not isinstance(value, str | int | float)):
            raise InvalidArticle(where, f"field {field!r} must be a string")
        values[field] = None if value is None else str(value)
    text = obj.get("text") or obj.get("body") or obj.get("content")
    if text is not None and not isinstance(text, str):
        raise InvalidArticle(where, "field 'text' must be a string")
    if not text or not text.strip():
        raise InvalidArticle(where, "missing or empty 'text'")
    url = values["url"]
    article_id = values["id"] or (slug_from_url(url) if url else None) or default_id
    published = values["published"]
    return _article(
        where,
        id=article_id,
        title=values["title"] or "",
        text=normalise(text).strip(),
        url=url,
        published=(parse_date(published) or published) if published else None,
        author=values["author"],
        source=values["source"],
    )


def load_json(text: str | bytes, where: str) -> Any:
    """Parsed JSON; InvalidArticle for text that is not JSON, or nested too deeply to parse (a RecursionError)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise InvalidArticle(where, f"invalid JSON at line {e.lineno} ({e.msg})") from e
    except UnicodeDecodeError as e:
        raise InvalidArticle(where, "invalid JSON (not UTF-8 text)") from e
    except RecursionError as e:
        raise InvalidArticle(where, "invalid JSON (nested too deeply)") from e


def _read_json(text: str, name: str, where: str, *, lines: bool) -> list[Article]:
    if lines:
        articles = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                obj = load_json(line, f"{where}:{number}")
                articles.append(article_from_mapping(obj, f"{name}#{number}", f"{where}:{number}"))
        return articles
    obj = load_json(text, where)
    if isinstance(obj, list):
        if not obj:
            raise InvalidArticle(where, "empty list of articles")
        return [article_from_mapping(item, f"{name}#{i}", f"{where}[{i}]") for i, item in enumerate(obj)]
    return [article_from_mapping(obj, name, where)]


def read_html(html: str, name: str, where: str, url: str | None = None) -> Article:
    """An article from a page's HTML: main text, title, author, date and canonical URL (trafilatura).

    `url` is where the page was fetched from, if it was: relative links and the site's name are read against it.
    """
    return _read_html(html, name, where, url)


def _read_html(html: str, name: str, where: str, page_url: str | None = None) -> Article:
    try:
        import trafilatura  # heavy; only HTML needs it
    except ImportError as e:  # e.g. justext without lxml[html_clean]: the installation's fault, not the file's
        raise ReaderUnavailable(f"the HTML reader cannot be loaded ({e}); reinstall qa with its dependencies") from e

    try:
        doc = trafilatura.bare_extraction(html, url=page_url, with_metadata=True, include_comments=False)
    except Exception as e:  # trafilatura raises assorted parser errors on broken markup
        raise InvalidArticle(where, f"cannot parse HTML ({type(e).__name__})") from e
    meta: dict[str, Any] = doc.as_dict() if doc is not None and hasattr(doc, "as_dict") else dict(doc or {})
    raw = meta.get("text") or ""
    title = (meta.get("title") or "").strip()
    paragraphs = [p.strip() for p in raw.split("\n") if p.strip()]
    if paragraphs and title and paragraphs[0] == title:
        paragraphs = paragraphs[1:]
    if not paragraphs:
        raise InvalidArticle(where, "no article text found in the HTML")
    url = meta.get("url")
    url = url if isinstance(url, str) and url.startswith(("http://", "https://")) else None
    date = meta.get("date")
    return _article(
        where,
        id=(slug_from_url(url) if url else None) or name,
        title=title,
        text="\n\n".join(paragraphs),
        url=url,
        published=parse_date(date) if isinstance(date, str) else None,
        author=meta.get("author") or None,
        source=meta.get("sitename") or name,
    )


_FRONT_MATTER = re.compile(r"\A---\n(.*?)\n---\n", re.DOTALL)


def _read_markdown(text: str, name: str, where: str) -> Article:
    meta: dict[str, str] = {}
    if match := _FRONT_MATTER.match(text):
        for line in match.group(1).splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip() in _FIELDS:
                meta[key.strip()] = value.strip().strip("'\"")
        text = text[match.end() :]
    text = re.sub(r"!\[[^\]]*\]\([^)]*\)", "", text)  # images
    text = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", text)  # links keep their words
    text = re.sub(r"(\*\*|__|`)", "", text)
    heading = re.search(r"^#\s+(.+)$", text, re.MULTILINE)
    if heading and not meta.get("title"):
        meta["title"] = heading.group(1).strip()
        text = text[: heading.start()] + text[heading.end() :]
    text = re.sub(r"^#{1,6}\s+", "", text, flags=re.MULTILINE)
    cleaned = clean_scraped_text(text, title=meta.get("title"))
    return article_from_mapping(
        {
            **meta,
            "title": cleaned.title,
            "text": cleaned.body,
            "author": meta.get("author") or cleaned.author,
            "published": meta.get("published") or meta.get("date") or cleaned.published,
            "source": meta.get("source") or name,
        },
        name,
        where,
    )


def _article(where: str, **fields: Any) -> Article:
    text = fields.get("text") or ""
    if not text.strip():
        raise InvalidArticle(where, "no article text")
    article_id = fields["id"] = checked_id(str(fields["id"]), where)
    for name, value in fields.items():
        if isinstance(value, str) and not is_unicode(value):
            raise InvalidArticle(where, f"field {name!r} is not valid Unicode text (it holds a lone surrogate)")
    fields["title"] = (fields.get("title") or "").strip() or title_from_id(article_id)
    return Article(**fields)
