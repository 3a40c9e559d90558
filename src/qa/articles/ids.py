"""Article ids: stable, readable, and safe to show and to put in a link."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

from qa.errors import InvalidArticle
from qa.text.unicode import is_unicode

MAX_ID_CHARS = 300
# Characters no id may hold: control characters, and the invisible and direction-changing format characters that
# could make one id look like another. The OpenAPI schema states the same pattern, so the two never disagree.
_NOT_IN_IDS = (
    r"\x00-\x1f\x7f-\x9f\xad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\ufff9-\ufffb"
)
_SPACE = r"\s\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"  # str.strip()'s white space
ID_PATTERN = f"^[^{_NOT_IN_IDS}]*[^{_NOT_IN_IDS}{_SPACE}][^{_NOT_IN_IDS}]*$"


def checked_id(raw_id: str, where: str) -> str:
    """The id without surrounding white space; InvalidArticle when it is too long or holds unusable characters."""
    if len(raw_id) > MAX_ID_CHARS or not re.fullmatch(ID_PATTERN, raw_id) or not is_unicode(raw_id):
        raise InvalidArticle(where, f"unusable article id {raw_id[:60]!r}")
    return raw_id.strip()


def slug_from_url(url: str) -> str | None:
    """A readable id from a URL: host and path, without scheme, query or trailing slash."""
    parts = urlsplit(url.strip())
    if not parts.netloc:
        return None
    path = re.sub(r"\.(?:s?html?|php|aspx?)$", "", parts.path.rstrip("/"))
    return (parts.netloc.lower().removeprefix("www.") + path) or None


def title_from_id(article_id: str) -> str:
    """A readable title from an id when the article has none: its file name, words spaced."""
    stem = Path(article_id.split("#")[0]).stem
    return re.sub(r"[-_]+", " ", stem).strip().capitalize() or article_id
