"""Follow-up questions: the `history` a request sends, its limits, and the articles a follow-up is answered from."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from qa import QA
from qa.errors import InvalidQuestion
from qa.history import check_history, followup_query, history_chars
from qa.records import Article, Turn
from qa.server.app import create_app
from qa.settings import Settings

PLOVDIV = Article(
    id="festivals/plovdiv-zebra",
    title="Plovdiv repaints its zebra crossings",
    text=(
        "The zebra crossing festival in Plovdiv is held every May, when volunteers repaint the stripes of the old "
        "town. The festival was founded in 1998 by the painter Ivan Petrov. "
        "This year the organisers expect 40,000 visitors."
    ),
)
HOI_AN = Article(
    id="festivals/hoi-an-lanterns",
    title="Hoi An switches off its lights",
    text=(
        "The lantern festival in Hoi An is held on every full moon, when residents float candles on the river. "
        "The festival was founded by the town council. This year the organisers expect 60,000 visitors."
    ),
)
FIRST = "When is the zebra crossing festival in Plovdiv held?"
FOLLOW_UP = "How many visitors are expected?"


def test_a_follow_up_is_answered_from_the_thread_s_article(sample_qa: QA) -> None:
    for article in (PLOVDIV, HOI_AN):
        sample_qa.add(article)
    first = sample_qa.ask(FIRST)
    assert first.citations[0].article_id == PLOVDIV.id
    alone = sample_qa.ask(FOLLOW_UP)
    assert alone.citations[0].article_id == HOI_AN.id  # on its own, the question fits both festivals
    turn = Turn(question=FIRST, answer=first.answer, article_ids=[PLOVDIV.id])
    follow_up = sample_qa.ask(FOLLOW_UP, history=[turn])
    assert follow_up.question == FOLLOW_UP
    assert follow_up.citations[0].article_id == PLOVDIV.id and "40,000" in follow_up.answer


def test_a_new_topic_after_a_turn_is_answered_on_its_own(sample_qa: QA) -> None:
    first = sample_qa.ask("What does Nurly Zhol mean?")
    turn = Turn(question=first.question, answer=first.answer, article_ids=[first.citations[0].article_id])
    assert "India and Pakistan" in sample_qa.ask("Who joined the SCO?", history=[turn]).answer


def test_history_limits_come_from_the_settings() -> None:
    turns = [Turn(question="q" * 10, answer="a" * 10, article_ids=["id"])] * 3
    assert history_chars(turns) == 66
    assert check_history(turns, max_turns=3, max_chars=66) == turns
    with pytest.raises(InvalidQuestion, match=r"history: 3 turns; the limit is 2 \(QA_MAX_HISTORY_TURNS\)"):
        check_history(turns, max_turns=2, max_chars=1000)
    with pytest.raises(InvalidQuestion, match=r"history: 66 characters; the limit is 65 \(QA_MAX_HISTORY_CHARS\)"):
        check_history(turns, max_turns=3, max_chars=65)
    with pytest.raises(InvalidQuestion, match=r"history\.1: not valid Unicode"):
        check_history([turns[0], Turn(question="a\ud800")], max_turns=3, max_chars=1000)


def test_followup_query_puts_the_previous_question_first_within_the_limit() -> None:
    turns = [Turn(question="Who joined?"), Turn(question="  When was the\nSCO founded? ")]
    assert followup_query("Why?", [], 100) == "Why?"
    assert followup_query("Why?", turns, 100) == "When was the SCO founded? Why?"
    assert len(followup_query("Why?", turns, 12)) <= 12


def _client(sample_qa: QA, settings: Settings, **overrides: Any) -> TestClient:
    changed = QA(settings.model_copy(update=overrides), sample_qa.embedder)
    return TestClient(create_app(changed), raise_server_exceptions=False)


def test_the_api_accepts_history(client: TestClient) -> None:
    first = client.post("/api/ask", json={"question": "What does Nurly Zhol mean?"}).json()
    history = [{"question": first["question"], "answer": first["answer"], "article_ids": ["x"]}]
    response = client.post("/api/ask", json={"question": "Who joined the SCO?", "history": history})
    assert response.status_code == 200, response.text
    assert "India and Pakistan" in response.json()["answer"]
    # answer and article_ids may be left out (an abstained turn cites nothing)
    response = client.post("/api/ask", json={"question": "Who joined the SCO?", "history": [{"question": "Hi"}]})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("history", "message"),
    [
        ("not a list", "history: Input should be a valid list"),
        (["a question"], "history.0: Input should be a valid dictionary"),
        ([{"answer": "no question"}], "history.0.question: Field required"),
        ([{"question": 5}], "history.0.question: Input should be a valid string"),
        ([{"question": "q", "article_ids": "a,b"}], "history.0.article_ids: Input should be a valid list"),
        ([{"question": "q", "article_ids": [1]}], "history.0.article_ids.0: Input should be a valid string"),
        ([{"question": "q"}] * 3, "history: 3 turns; the limit is 2"),
        ([{"question": "q" * 30, "answer": "a" * 30}], "history: 60 characters; the limit is 50"),
    ],
)
def test_bad_history_is_422_naming_the_field(sample_qa: QA, settings: Settings, history: object, message: str) -> None:
    with _client(sample_qa, settings, max_history_turns=2, max_history_chars=50) as client:
        response = client.post("/api/ask", json={"question": "Who joined the SCO?", "history": history})
    assert response.status_code == 422, response.text
    assert message in response.json()["error"]


def test_lone_surrogates_in_history_are_422(client: TestClient) -> None:
    body = b'{"question": "Who joined?", "history": [{"question": "oil \\ud800"}]}'
    response = client.post("/api/ask", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert "history.0: not valid Unicode" in response.json()["error"]


def test_openapi_states_the_history_limit(sample_qa: QA, settings: Settings) -> None:
    with _client(sample_qa, settings, max_history_turns=7) as client:
        schema = client.get("/openapi.json").json()
    assert schema["components"]["schemas"]["AskRequest"]["properties"]["history"]["maxItems"] == 7
    turn = schema["components"]["schemas"]["Turn"]
    assert turn["required"] == ["question"] and turn["properties"]["article_ids"]["items"]["type"] == "string"
