"""An OpenAI-compatible chat endpoint, so any chat UI or SDK can talk to the articles: /v1/chat/completions and
/v1/models, with one model, `qa`.

The last user message is the question and the earlier user/assistant messages its history. The reply is the
answer with its [n] markers and a "Sources" list, and the same object as POST /api/ask rides along in the extra
field `qa`. With `stream: true` the (already computed) reply is sent as server-sent events in OpenAI's chunk
format, ending with `data: [DONE]`. Limits, the rate limit and errors are /api/ask's, in OpenAI's error shape
(qa.server.errors). System messages, sampling parameters (temperature, max_tokens, ...) and tools are accepted
and ignored: the answer is extractive.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from qa.conversation.thread import trimmed
from qa.errors import InvalidQuestion
from qa.records import Answer, Citation, Turn
from qa.retrieval.filters import read_filters
from qa.server.api import DATE_SCHEMA, SINCE, SOURCE, SOURCE_SCHEMA, UNTIL, QADep
from qa.server.errors import CodedHTTPException
from qa.server.limits import rate_limited
from qa.server.pages import safe_url
from qa.service import QA

MODEL_ID = "qa"
SOURCES = "Sources:"
CREATED = int(time.time())  # when this process started: the `created` of the one model


class ContentPart(BaseModel):
    """A part of a message's content; only text parts are read."""

    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    """One message of the conversation."""

    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None


class QAOptions(BaseModel):
    """qa's own request options (with the openai client: `extra_body={"qa": {...}}`)."""

    model_config = ConfigDict(extra="forbid")
    top_k: int = Field(5, ge=1, description="Passages to consider, 1 to QA_MAX_TOP_K.")
    since: str | None = Field(None, description=SINCE, json_schema_extra=DATE_SCHEMA)
    until: str | None = Field(None, description=UNTIL, json_schema_extra=DATE_SCHEMA)
    source: str | list[str] | None = Field(None, description=SOURCE, json_schema_extra=SOURCE_SCHEMA)


class ChatRequest(BaseModel):
    """A chat completion request; parameters qa has no use for (temperature, max_tokens, tools...) are ignored."""

    model_config = ConfigDict(extra="allow")
    model: str = Field(MODEL_ID, description="Always `qa`.", json_schema_extra={"enum": [MODEL_ID]})
    messages: list[ChatMessage] = Field(min_length=1, description="The last user message is the question.")
    stream: bool | None = Field(False, description="Send the reply as server-sent events (OpenAI chunks).")
    n: int | None = Field(1, ge=1, le=1, description="Only one choice is made.")
    qa: QAOptions = Field(default_factory=QAOptions)


class AssistantMessage(BaseModel):
    """The reply: the answer with [n] markers, then the Sources list."""

    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    """The one choice."""

    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop"] = "stop"
    logprobs: None = None


class ChatCompletion(BaseModel):
    """A chat completion, with qa's answer (the object POST /api/ask returns) in `qa`."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str = MODEL_ID
    choices: list[Choice]
    qa: Answer = Field(description="qa's answer, citations and abstention: the same object as POST /api/ask.")


class ModelCard(BaseModel):
    """A model this server offers."""

    id: str = MODEL_ID
    object: Literal["model"] = "model"
    created: int = CREATED
    owned_by: str = "qa"


class ModelList(BaseModel):
    """The models this server offers: only `qa`."""

    object: Literal["list"] = "list"
    data: list[ModelCard]


class OpenAIErrorDetail(BaseModel):
    """What went wrong."""

    message: str
    type: str
    param: str | None = None
    code: str | None = None


class OpenAIError(BaseModel):
    """Every error under /v1, in OpenAI's shape."""

    error: OpenAIErrorDetail


class Exchange(NamedTuple):
    """An earlier question and the answer it got."""

    question: str
    answer: str


class Conversation(NamedTuple):
    """The question (the last user message) and the exchanges before it, oldest first."""

    question: str
    earlier: list[Exchange]


def conversation_of(messages: Sequence[ChatMessage]) -> Conversation:
    """Messages to a question and its history: the last message must be the user's; each earlier user message
    is a question, answered by the assistant message that follows it (if any). Other roles are ignored."""
    spoken = [(m.role, _text(m.content)) for m in messages if m.role in ("user", "assistant")]
    if not spoken or spoken[-1][0] != "user":
        raise InvalidQuestion("the last message must be the user's question")
    earlier: list[Exchange] = []
    for role, text in spoken[:-1]:
        if role == "user":
            earlier.append(Exchange(text, ""))
        elif earlier and not earlier[-1].answer:
            earlier[-1] = Exchange(earlier[-1].question, without_sources(text))
    return Conversation(spoken[-1][1], earlier)


def ask_answer(qa: QA, request: ChatRequest) -> Answer:
    """The one place an OpenAI request becomes a QA.ask call: the question, its history, qa's options."""
    conversation = conversation_of(request.messages)
    turns = [Turn(question=e.question, answer=e.answer) for e in conversation.earlier]
    settings = qa.settings
    # A chat UI sends the whole conversation every time and its user cannot shorten it, so a long conversation
    # keeps its latest turns (those a follow-up refers to) rather than failing, as it would on /api/ask.
    history = trimmed(turns, settings.max_history_turns, settings.max_history_chars)
    options = request.qa
    filters = read_filters(options.since, options.until, options.source)
    return qa.ask(conversation.question, options.top_k, history=history, filters=filters)


def reply_text(answer: Answer) -> str:
    """The answer with its [n] markers and a Sources list (title, date, link); an abstention as it is."""
    if answer.abstained or not answer.citations:
        return answer.answer
    return "\n".join([answer.answer, "", SOURCES, *(_source_line(c) for c in answer.citations)])


def without_sources(reply: str) -> str:
    """An earlier reply of ours without its Sources list: the answer it gave."""
    return reply.split(f"\n\n{SOURCES}\n", 1)[0]


def _source_line(citation: Citation) -> str:
    title = " ".join(citation.title.split()) or citation.article_id
    date = f" ({citation.published})" if citation.published else ""
    url = safe_url(citation.url)  # article URLs are untrusted: only http(s) links are shown
    return f"[{citation.n}] {title}{date}" + (f" {url}" if url else "")


def _text(content: str | list[ContentPart] | None) -> str:
    if isinstance(content, list):
        return "".join(part.text or "" for part in content if part.type == "text")
    return content or ""


def stream_events(completion_id: str, created: int, answer: Answer) -> list[str]:
    """The reply as OpenAI chunks: the role, the text a word at a time, the finish (with `qa`), then [DONE]."""
    base: dict[str, Any] = {"id": completion_id, "object": "chat.completion.chunk", "created": created}
    base["model"] = MODEL_ID

    def chunk(delta: dict[str, str], finish: str | None = None, **extra: Any) -> str:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return f"data: {json.dumps({**base, 'choices': [choice], **extra}, ensure_ascii=False)}\n\n"

    text = reply_text(answer)
    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": piece}) for piece in re.findall(r"\s*\S+|\s+$", text)]
    events.append(chunk({}, "stop", qa=answer.model_dump(mode="json")))
    events.append("data: [DONE]\n\n")
    return events


def _check_model(model: str) -> None:
    if model != MODEL_ID:
        raise CodedHTTPException(
            404, f"The model `{model}` does not exist; this server has `{MODEL_ID}`.", "model_not_found", param="model"
        )


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": OpenAIError, "description": "An error in OpenAI's shape"} for code in codes}


router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"])


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    summary="Answer the last user message (OpenAI chat completions)",
    dependencies=[Depends(rate_limited)],
    responses=_errors(400, 404, 409, 413, 429, 503)
    | {200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}}},
)
def chat_completions(body: ChatRequest, request: Request, qa: QADep) -> Response | ChatCompletion:
    """The answer as the assistant's message, with a Sources list; `qa` holds the answer object of /api/ask."""
    _check_model(body.model)
    answer = ask_answer(qa, body)
    completion_id = f"chatcmpl-{getattr(request.state, 'request_id', None) or uuid.uuid4().hex}"
    created = int(time.time())
    if body.stream:
        return StreamingResponse(
            iter(stream_events(completion_id, created, answer)),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    choice = Choice(message=AssistantMessage(content=reply_text(answer)))
    return ChatCompletion(id=completion_id, created=created, choices=[choice], qa=answer)


@router.get("/models", response_model=ModelList, summary="The models this server offers (only `qa`)")
def list_models() -> ModelList:
    """`qa`, the one model."""
    return ModelList(data=[ModelCard()])


@router.get(
    "/models/{model:path}",
    response_model=ModelCard,
    summary="One model (only `qa` exists)",
    responses=_errors(404),
)
def get_model(model: str) -> ModelCard:
    """`qa`, or 404 model_not_found."""
    _check_model(model)
    return ModelCard()


def document(schema: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI schema without FastAPI's 422 under /v1: invalid input there gets OpenAI's 400."""
    for path, operations in schema.get("paths", {}).items():
        if path.startswith("/v1/"):
            for operation in operations.values():
                operation.get("responses", {}).pop("422", None)
    return schema
