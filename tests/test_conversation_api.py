"""POST /api/ask with a conversation's history: accepted, searched in context, and refused clearly when malformed."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from fixtures import SAMPLE_ID
from qa import QA
from qa.server.app import create_app

pytestmark = pytest.mark.parametrize("backend", ["faiss", "postgres"], indirect=True)

OIL = {"question": "How large are Kazakhstan's oil reserves?", "answer": "30 billion barrels"}


def test_a_follow_up_is_answered_in_the_context_of_its_history(client: TestClient) -> None:
    response = client.post(
        "/api/ask",
        json={
            "question": "And when was it founded?",
            "history": [{"question": "Who joined the SCO?", "answer": "India and Pakistan"}],
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["question"] == "And when was it founded?"
    assert body["query"].startswith("And when was it founded?") and "sco" in body["query"].lower()
    assert "2001" in body["answer"]


def test_the_server_own_answer_and_its_articles_can_be_sent_back(client: TestClient) -> None:
    first = client.post("/api/ask", json={"question": OIL["question"]}).json()
    turn = {"question": first["question"], "answer": first["answer"], "article_ids": [SAMPLE_ID]}
    response = client.post("/api/ask", json={"question": "and what about its gas?", "history": [turn]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["citations"][0]["article_id"] == SAMPLE_ID and "natural gas" in body["answer"]


@pytest.mark.parametrize(
    ("history", "message"),
    [
        ([{"answer": "x"}], "history.0.question: Field required"),
        ([OIL, {"question": 42}], "history.1.question: Input should be a valid string"),
        ([{"question": "Why?", "article_ids": "a"}], "history.0.article_ids: Input should be a valid list"),
        ("not a list", "history: Input should be a valid list"),
        ([OIL, {"question": "   "}], "history.1.question: the question is empty"),
        ([OIL] * 21, "history: 21 turns; the limit is 20 (QA_MAX_HISTORY_TURNS)"),
        ([{"question": "Why?", "answer": "x" * 20_000}], "the limit is 20000 (QA_MAX_HISTORY_CHARS)"),
    ],
)
def test_a_malformed_or_over_long_history_is_422_naming_the_field(
    client: TestClient, history: Any, message: str
) -> None:
    response = client.post("/api/ask", json={"question": "Why?", "history": history})
    assert response.status_code == 422, response.text
    assert message in response.json()["error"]


def test_history_limits_come_from_the_settings(sample_qa: QA) -> None:
    small = QA(sample_qa.settings.model_copy(update={"max_history_turns": 1, "max_history_chars": 100}))
    with TestClient(create_app(small)) as client:
        ok = client.post("/api/ask", json={"question": "Why?", "history": [OIL]})
        assert ok.status_code == 200, ok.text
        two = client.post("/api/ask", json={"question": "Why?", "history": [OIL, OIL]})
        assert two.status_code == 422 and "limit is 1 (QA_MAX_HISTORY_TURNS)" in two.json()["error"]
        long = client.post("/api/ask", json={"question": "Why?", "history": [{"question": "q" * 101}]})
        assert long.status_code == 422 and "limit is 100 (QA_MAX_HISTORY_CHARS)" in long.json()["error"]
        schema = client.get("/openapi.json").json()
        assert schema["components"]["schemas"]["AskRequest"]["properties"]["history"]["maxItems"] == 1
    small.close()
