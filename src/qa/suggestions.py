"""Example questions for an empty chat, made from the titles of the newest articles."""

from __future__ import annotations

from collections.abc import Iterable

MAX_TITLE_CHARS = 90  # a longer headline makes an unwieldy question
MIN_TITLE_WORDS = 2
# How a title becomes a question; bench/example_questions.py compares the candidates on held-out articles.
TEMPLATES = {
    "article-says": "What does the article “{title}” say?",
    "tell-me": "Tell me about {title}",
    "tell-me-quoted": "Tell me about “{title}”",
    "what-happened": "What happened: {title}?",
}
TEMPLATE = TEMPLATES["tell-me"]  # the best on held-out BBC articles (README, "Example questions")


def example_question(title: str, template: str = TEMPLATE) -> str | None:
    """A question about one article made from its title, or None when the title is unusable (empty, too long, one
    word)."""
    title = " ".join(title.split()).rstrip(" .:;,!?")
    if len(title) > MAX_TITLE_CHARS or len(title.split()) < MIN_TITLE_WORDS:
        return None
    return template.format(title=title)


def example_questions(titles: Iterable[str], count: int = 3, template: str = TEMPLATE) -> list[str]:
    """Up to `count` distinct questions, one per usable title, in the titles' order (newest first)."""
    questions: list[str] = []
    seen: set[str] = set()
    for title in titles:
        question = example_question(title, template)
        if question is None or question.casefold() in seen:
            continue
        seen.add(question.casefold())
        questions.append(question)
        if len(questions) == count:
            break
    return questions
