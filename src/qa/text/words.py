"""Words of a question or a passage: stop words, content terms, a light stemmer, acronyms of spelled-out names."""

from __future__ import annotations

import re

STOPWORDS = frozenset(
    """
    a about above after again against all am an and any are as at be because been before being below between
    both but by can could did do does doing down during each few for from further had has have having he her
    here hers herself him himself his how i if in into is it its itself just me more most my myself no nor
    not now of off on once only or other our ours ourselves out over own same she should so some such than
    that the their theirs them themselves then there these they this those through to too under until up
    very was we were what when where which while who whom why will with would you your yours yourself
    yourselves
    """.split()
)
QUESTION_WORDS = frozenset(
    "how much many long old far often large big what which who whom whose when where why type kind name called "
    "one ones year years".split()
)
"""Words that say what a question asks for, not what it is about."""


def query_terms(text: str) -> list[str]:
    """The content words of a query, lower-cased, in order, without repeats."""
    words = re.findall(r"\w+", text.lower())
    return list(dict.fromkeys(w for w in words if w not in STOPWORDS and (len(w) > 1 or w.isdigit())))


def stem(word: str) -> str:
    """A light suffix strip, enough to match "joined" with "join" and "reserves" with "reserve"."""
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


_NAME_RUN = re.compile(r"\b[A-Z][a-z]+(?:\s+(?:(?:of|and|for|the|de)\s+)?[A-Z][a-z]+)+")
_NOT_NAME = STOPWORDS | {"which", "what", "who", "when", "where", "why", "how", "did", "does", "is", "was"}


def acronyms_of(text: str) -> list[str]:
    """Lower-cased initials of capitalised names of three words or more ("World Trade Organization": wto)."""
    found = []
    for match in _NAME_RUN.finditer(text):
        words = [w for w in match.group(0).split() if w[0].isupper() and w.lower() not in _NOT_NAME]
        if len(words) >= 3:  # two-word names are mostly people, whose initials mean nothing
            found.append("".join(w[0] for w in words).lower())
    return found


def search_terms(text: str) -> list[str]:
    """What the lexical leg looks for: the query's content words, then the acronyms of the names it spells out.

    Articles often name an organisation once and then abbreviate it: "Shanghai Cooperation Organization" should
    also find passages that only say "SCO".
    """
    terms = query_terms(text)
    return terms + [a for a in acronyms_of(text) if a not in terms]
