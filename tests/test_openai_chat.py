"""The OpenAI-compatible endpoint, driven by the official `openai` client against a real server (uvicorn on
127.0.0.1) over the sample index; the messages-to-question mapping is tested on its own."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from fixtures import API_KEY, SAMPLE_ID
from qa import QA
from qa.answering.compose import NOT_FOUND
from qa.errors import InvalidQuestion
from qa.records import Answer, Turn
from qa.server.app import create_app
from qa.server.openai_chat import (
    SOURCES,
    ChatMessage,
    Exchange,
    conversation_of,
    recent_turns,
    reply_text,
    stream_events,
    without_sources,
)
from qa.settings import Settings
from serving import serving
from test_history import FIRST, FOLLOW_UP, HOI_AN, PLOVDIV

QUESTION = "What does Nurly Zhol mean?"


@pytest.fixture
def base_url(sample_qa: QA) -> Iterator[str]:
    """A real server over the sample index (the rate limit off)."""
    changed = QA(sample_qa.settings.model_copy(update={"rate_limit": 0}), sample_qa.embedder)
    with serving(create_app(changed)) as url:
        yield url


@pytest.fixture
def client(base_url: str) -> openai.OpenAI:
    """The official client pointed at qa; a read needs no key, so any string will do."""
    return openai.OpenAI(base_url=f"{base_url}/v1", api_key="not-needed", max_retries=0)


def _qa_field(response: Any) -> Answer:
    """The documented extra field `qa`: the object POST /api/ask returns."""
    return Answer.model_validate(response.model_extra["qa"])


def test_a_question_gets_the_answer_with_markers_and_sources(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="qa", messages=[{"role": "user", "content": QUESTION}])
    choice = completion.choices[0]
    assert choice.finish_reason == "stop" and choice.message.role == "assistant"
    content = choice.message.content or ""
    answer_text, _, sources = content.partition(f"\n\n{SOURCES}\n")
    assert "lighted path" in answer_text and "[1]" in answer_text
    assert sources.splitlines()[0].startswith("[1] Kazakhstan, China To Cooperate")
    answer = _qa_field(completion)
    assert not answer.abstained and answer.question == QUESTION
    assert answer.citations[0].article_id == SAMPLE_ID
    assert answer.answer == answer_text
    assert completion.model == "qa" and completion.id.startswith("chatcmpl-")


def test_streaming_sends_the_same_reply_in_chunks_then_done(client: openai.OpenAI, base_url: str) -> None:
    whole = client.chat.completions.create(model="qa", messages=[{"role": "user", "content": QUESTION}])
    chunks = list(
        client.chat.completions.create(model="qa", messages=[{"role": "user", "content": QUESTION}], stream=True)
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == whole.choices[0].message.content
    assert len(chunks) > 10  # word by word, not one lump
    finishes = [c.choices[0].finish_reason for c in chunks]
    assert finishes[-1] == "stop" and finishes.count("stop") == 1
    assert _qa_field(chunks[-1]).citations == _qa_field(whole).citations
    # On the wire: server-sent events ending with [DONE].
    body = {"model": "qa", "stream": True, "messages": [{"role": "user", "content": QUESTION}]}
    raw = httpx.post(f"{base_url}/v1/chat/completions", json=body, timeout=60)
    assert raw.headers["content-type"].startswith("text/event-stream")
    assert raw.text.rstrip().endswith("data: [DONE]")


def test_earlier_messages_are_history_and_the_last_user_message_is_the_question(client: openai.OpenAI) -> None:
    messages: list[Any] = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Who met in Astana?"},
        {"role": "assistant", "content": "Nazarbayev met Xi Jinping. [1]\n\nSources:\n[1] Kazakhstan..."},
        {"role": "user", "content": [{"type": "text", "text": QUESTION}]},
    ]
    completion = client.chat.completions.create(model="qa", messages=messages)
    assert _qa_field(completion).question == QUESTION
    assert "lighted path" in (completion.choices[0].message.content or "")


def test_qa_options_ride_in_the_request_and_sampling_parameters_are_ignored(client: openai.OpenAI) -> None:
    messages: list[Any] = [{"role": "user", "content": QUESTION}]
    one = client.chat.completions.create(
        model="qa", messages=messages, temperature=0.2, max_tokens=5, extra_body={"qa": {"top_k": 1}}
    )
    five = client.chat.completions.create(model="qa", messages=messages)
    assert len(_qa_field(one).citations) == 1 < len(_qa_field(five).citations)
    assert "lighted path" in (one.choices[0].message.content or "")  # max_tokens cuts nothing: it is extractive
    with pytest.raises(openai.BadRequestError, match="top_k"):
        client.chat.completions.create(model="qa", messages=messages, extra_body={"qa": {"top_k": 500}})


def test_a_follow_up_is_answered_from_the_conversations_article(sample_qa: QA) -> None:
    for article in (PLOVDIV, HOI_AN):
        sample_qa.add(article)
    with serving(create_app(QA(sample_qa.settings.model_copy(update={"rate_limit": 0}), sample_qa.embedder))) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        first = client.chat.completions.create(model="qa", messages=[{"role": "user", "content": FIRST}])
        alone = client.chat.completions.create(model="qa", messages=[{"role": "user", "content": FOLLOW_UP}])
        thread: list[Any] = [
            {"role": "user", "content": FIRST},
            {"role": "assistant", "content": first.choices[0].message.content},
            {"role": "user", "content": FOLLOW_UP},
        ]
        follow_up = client.chat.completions.create(model="qa", messages=thread)
        # A chat UI sends the whole conversation each time: past the history limits, the newest turns are kept.
        long_thread = [{"role": "user", "content": f"Question {i}?"} for i in range(40)] + thread
        long = client.chat.completions.create(model="qa", messages=long_thread)
    assert _qa_field(first).citations[0].article_id == PLOVDIV.id
    assert _qa_field(alone).citations[0].article_id == HOI_AN.id  # on its own, it fits both festivals
    answer = _qa_field(follow_up)
    assert answer.question == FOLLOW_UP and answer.citations[0].article_id == PLOVDIV.id
    assert "40,000" in (follow_up.choices[0].message.content or "")
    assert _qa_field(long).citations[0].article_id == PLOVDIV.id


def test_recent_turns_keep_the_newest_within_both_limits() -> None:
    turns = [Turn(question=f"q{i}", answer="a" * 10) for i in range(5)]  # 12 characters each
    assert recent_turns(turns, max_turns=3, max_chars=1000) == turns[2:]
    assert recent_turns(turns, max_turns=10, max_chars=30) == turns[3:]
    assert recent_turns(turns, max_turns=0, max_chars=1000) == []
    assert recent_turns([Turn(question="q", answer="a" * 50)], max_turns=5, max_chars=10) == []


def test_an_abstention_is_a_normal_reply_that_says_so(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="qa", messages=[{"role": "user", "content": "What is the boiling point of liquid nitrogen?"}]
    )
    assert completion.choices[0].finish_reason == "stop"
    assert completion.choices[0].message.content == NOT_FOUND
    assert _qa_field(completion).abstained


def test_the_one_model_is_listed_and_others_are_not_found(client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list()] == ["qa"]
    assert client.models.retrieve("qa").owned_by == "qa"
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": QUESTION}])
    assert caught.value.code == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4o")


def test_an_over_long_question_gets_openais_400(client: openai.OpenAI, settings: Settings) -> None:
    too_long = "why " * settings.max_question_chars
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="qa", messages=[{"role": "user", "content": too_long}])
    error = caught.value
    assert error.status_code == 400 and error.type == "invalid_request_error"
    assert "the limit is 2000" in error.message
    body = error.response.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}


def test_invalid_requests_get_400_in_openais_shape(base_url: str, client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="last message must be the user's"):
        client.chat.completions.create(model="qa", messages=[{"role": "assistant", "content": "Hello"}])
    for body in ({"model": "qa", "messages": []}, {"model": "qa"}, {"messages": [{"role": "robot", "content": "x"}]}):
        response = httpx.post(f"{base_url}/v1/chat/completions", json=body, timeout=60)
        assert response.status_code == 400, body
        assert response.json()["error"]["type"] == "invalid_request_error"
    unknown = httpx.get(f"{base_url}/v1/embeddings", timeout=60)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"


def test_the_rate_limit_applies_with_openais_429(sample_qa: QA) -> None:
    limited = QA(sample_qa.settings.model_copy(update={"rate_limit": 0.01, "rate_burst": 2}), sample_qa.embedder)
    with serving(create_app(limited)) as url:
        anonymous = openai.OpenAI(base_url=f"{url}/v1", api_key="anything", max_retries=0)
        messages: list[Any] = [{"role": "user", "content": QUESTION}]
        httpx.post(f"{url}/api/ask", json={"question": QUESTION}, timeout=60)  # the same bucket as /api/ask
        anonymous.chat.completions.create(model="qa", messages=messages)
        with pytest.raises(openai.RateLimitError) as caught:
            anonymous.chat.completions.create(model="qa", messages=messages)
        assert int(caught.value.response.headers["Retry-After"]) >= 1
        assert caught.value.code == "rate_limit_exceeded"
        keyed = openai.OpenAI(base_url=f"{url}/v1", api_key=API_KEY, max_retries=0)
        trusted = keyed.chat.completions.create(model="qa", messages=messages)  # the key holder is not limited
        assert trusted.choices[0].finish_reason == "stop"


# -- the mapping, on its own ---------------------------------------------------------------------------


def _messages(*pairs: tuple[str, Any]) -> list[ChatMessage]:
    return [ChatMessage.model_validate({"role": role, "content": content}) for role, content in pairs]


def test_messages_map_to_a_question_and_the_exchanges_before_it() -> None:
    conversation = conversation_of(
        _messages(
            ("system", "Be brief."),
            ("assistant", "Hello! Ask me about the news."),  # answers no question: dropped
            ("user", "Who met in Astana?"),
            ("assistant", f"Nazarbayev and Xi. [1]\n\n{SOURCES}\n[1] Kazakhstan, China (2017-06-11)"),
            ("user", "When?"),  # not answered (the client retried, say): a question with no answer
            (
                "user",
                [{"type": "text", "text": "What did "}, {"type": "image_url"}, {"type": "text", "text": "they sign?"}],
            ),
        )
    )
    assert conversation.question == "What did they sign?"
    assert conversation.earlier == [Exchange("Who met in Astana?", "Nazarbayev and Xi. [1]"), Exchange("When?", "")]


def test_the_last_message_must_be_the_users() -> None:
    with pytest.raises(InvalidQuestion):
        conversation_of(_messages(("user", "Hi"), ("assistant", "Hello")))
    with pytest.raises(InvalidQuestion):
        conversation_of(_messages(("system", "Be brief.")))
    assert conversation_of(_messages(("user", "Hi"), ("tool", "{}"))).question == "Hi"


def test_without_sources_keeps_a_reply_that_has_none() -> None:
    assert without_sources("Not found in the articles.") == "Not found in the articles."


def test_stream_chunks_join_to_the_reply_exactly(sample_qa: QA) -> None:
    answer = sample_qa.ask(QUESTION)
    events = stream_events("chatcmpl-x", 1, answer)
    payloads = [json.loads(e.removeprefix("data: ")) for e in events[:-1]]
    text = "".join(p["choices"][0]["delta"].get("content", "") for p in payloads)
    assert text == reply_text(answer)
    assert events[-1] == "data: [DONE]\n\n"
    assert payloads[-1]["choices"][0]["finish_reason"] == "stop" and payloads[-1]["qa"]["question"] == QUESTION
