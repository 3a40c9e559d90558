"""Reading a question against the turns before it: does it stand alone, and what topic does it carry on?"""

from __future__ import annotations

import re
from collections.abc import Sequence

from qa.records import Turn
from qa.text.words import QUESTION_WORDS, query_terms, stem

# Words that point back at something said before ("What did he do?", "its gas", "Is Staten Island one?").
REFERRING = frozenset(
    """
    he him his she her hers it its they them their theirs this that these those there then one ones
    else other others another also too former latter same such
    """.split()
)
# Openings that continue the previous turn ("And the state?", "What about its gas?").
_CONTINUES = re.compile(r"^\s*(?:and|but|so|or|also|then|what about|how about|what else|anything else)\b", re.I)
ASKING_WORDS = frozenset(
    "what which who whom whose when where why how is are was were do does did can could will would should has "
    "have had kind type sort name".split()
)
MARKER = re.compile(r"\s*\[\d+\]")
TURN_CHARS = 300  # of a turn's question and answer, read for its topic
# Answers with no text to look for in an article.
NO_TEXT = frozenset({"yes", "no", "unknown", "none", "not found in the articles"})


def words(text: str) -> list[str]:
    """Lower-cased word tokens."""
    return re.findall(r"[\w'’]+", text.lower())


def own_terms(question: str) -> list[str]:
    """The question's content words: what it asks about, beyond question words and stop words."""
    return [t for t in query_terms(question) if t not in ASKING_WORDS and t not in QUESTION_WORDS]


def stands_alone(question: str, history: Sequence[Turn]) -> bool:
    """Whether a question can be searched on its own.

    It cannot when there is a history and the question refers back (a pronoun, "one", "else"), continues the
    last turn ("and ...", "what about ..."), or names too little to search for (at most one content word:
    "In what city?", "County?", "Why?").
    """
    if not history:
        return True
    if _CONTINUES.search(question):
        return False
    tokens = [w.strip("'’") for w in words(_EXISTENTIAL.sub(" ", question))]
    if any(t in REFERRING or t.removesuffix("'s") in REFERRING for t in tokens):
        return False
    return len(own_terms(question)) >= 2 or bool(_NAMED.search(question))


# "Is there ...", "were there": no place referred to.
_EXISTENTIAL = re.compile(r"\b(?:is|are|was|were|be|been)\s+there\b|\bthere\s+(?:is|are|was|were)\b", re.I)
# A name (a capital inside the sentence, an acronym) or a number: something specific to search for.
_NAMED = re.compile(r"(?<!^)(?<![.?!]\s)\b[A-Z][\w'’-]*|\d")


def stays_on_thread(question: str, thread_texts: Sequence[str]) -> bool:
    """A question that stands alone still asks about the thread when one of its own words is in the thread's
    articles ("What did officers take?" after turns about a house search); "What is the recipe for chocolate
    cake?" after turns about oil is not."""
    own = {stem(t) for t in own_terms(question)}
    return any(own & {stem(w) for w in words(text)} for text in thread_texts)


def answer_text(turn: Turn) -> str:
    """A turn's answer up to its first [n] marker (the server's best sentence); empty for yes, no or an abstention."""
    text = MARKER.split(turn.answer, maxsplit=1)[0].strip()
    return "" if text.lower().strip(" .!") in NO_TEXT else text


def topic_terms(history: Sequence[Turn], limit: int = 8) -> list[str]:
    """Key words of the recent turns, newest first, each turn's question before its answer.

    What an elliptical question is about; the question first, since the server's own answers are whole sentences.
    """
    found: list[str] = []
    for turn in reversed(history):
        for text in (turn.question, answer_text(turn)):
            for term in own_terms(text):
                if term not in found:
                    found.append(term)
        if len(found) >= limit:
            break
    return found[:limit]


def search_text(question: str, history: Sequence[Turn], limit: int = 8) -> str:
    """The question followed by the recent turns' key words it does not repeat: what a follow-up is about."""
    asked = set(query_terms(question))
    carried = [t for t in topic_terms(history, limit + len(asked)) if t not in asked][:limit]
    return f"{question} ({' '.join(carried)})" if carried else question


def turn_text(turn: Turn) -> str:
    """A turn's question and answer, as one text to search its topic with (at most TURN_CHARS characters)."""
    return f"{turn.question} {answer_text(turn)}".strip()[:TURN_CHARS]


def history_text(history: Sequence[Turn], max_terms: int = 128) -> str:
    """The turns' texts, newest first, as long as they add up to at most `max_terms` content words.

    The bounds keep a long history's search as cheap as a question's (a conversation on coqa-wiki has at most 92).
    """
    texts: list[str] = []
    terms: set[str] = set()
    for turn in reversed(history):
        text = turn_text(turn)
        terms.update(query_terms(text))
        if len(terms) > max_terms and texts:
            break
        texts.append(text)
    return " ".join(texts)
