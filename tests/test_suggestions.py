"""Example questions for an empty chat, made from article titles."""

from __future__ import annotations

from qa.suggestions import MAX_TITLE_CHARS, TEMPLATES, example_question, example_questions


def test_a_title_becomes_a_question_about_its_article() -> None:
    assert example_question("Ad sales boost Time Warner profit") == "Tell me about Ad sales boost Time Warner profit"
    assert example_question("  Markets   fall\nagain. ") == "Tell me about Markets fall again"
    assert example_question("Markets fall", TEMPLATES["article-says"]) == "What does the article “Markets fall” say?"


def test_unusable_titles_make_no_question() -> None:
    assert example_question("") is None
    assert example_question("Untitled") is None  # one word says nothing about the article
    assert example_question("word " * (MAX_TITLE_CHARS // 5 + 1)) is None


def test_example_questions_are_distinct_and_in_order() -> None:
    titles = ["Newest story here", "", "newest story here", "Older story there", "Oldest story of all"]
    assert example_questions(titles, count=2) == [
        "Tell me about Newest story here",
        "Tell me about Older story there",
    ]
    assert example_questions([], count=3) == []
