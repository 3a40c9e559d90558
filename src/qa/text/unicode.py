"""Unicode hygiene for text from files, forms and JSON."""

from __future__ import annotations

import unicodedata


def is_unicode(text: str) -> bool:
    """False for text with lone surrogates (JSON can spell them, "\\ud800"): no encoder or tokenizer takes them."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def normalise(text: str) -> str:
    """NFC, with every line ending as "\\n"."""
    return unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
