"""Property-based fuzzing of the HTTP API with schemathesis, from the app's own OpenAPI schema, over ASGI.

Every operation gets generated requests (valid and invalid) and stateful sequences follow the schema's links;
every response must be a non-5xx that matches the documented status codes, content types and schemas.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from itertools import count
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from fixtures import API_KEY
from qa import QA
from qa.embedding import Embedder
from qa.server.app import create_app
from qa.settings import Settings

# Modest budgets keep the whole file within about a minute on 2 cores; FUZZ_EXAMPLES=1000 fuzzes harder.
EXAMPLES_PER_OPERATION = int(os.environ.get("FUZZ_EXAMPLES", "150"))
STATEFUL_EXAMPLES = EXAMPLES_PER_OPERATION // 3
FUZZ = settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,  # the same examples on every run; failures reproduce
    suppress_health_check=list(HealthCheck),
    database=None,
)


@pytest.fixture
def make_app(_sample_index: Path, tmp_path: Path, settings: Settings, embedder: Embedder) -> Callable[[], FastAPI]:
    """Builds an app over a fresh copy of the sample index (the rate limit off: a fuzzer is one fast client)."""
    copies = count()

    def make() -> FastAPI:
        folder = tmp_path / f"index-{next(copies)}"
        shutil.copytree(_sample_index, folder)
        update = {"index_dir": folder, "rate_limit": 0, "max_upload_bytes": 50_000}
        return create_app(QA(settings.model_copy(update=update), embedder))

    return make


@pytest.fixture
def fuzz_app(make_app: Callable[[], FastAPI]) -> FastAPI:
    """The app over the sample index."""
    return make_app()


# The schema comes from the app itself; building it needs no index (QA opens one on first use), so it can be
# loaded at collection time, and each test sends its requests to a fresh app over the sample index.
schema = schemathesis.openapi.from_dict(create_app(QA(Settings(index_dir=Path("unused-index")))).openapi())
KEY = {"Authorization": f"Bearer {API_KEY}"}


def excluded_checks(case: Any) -> list[Any]:
    """Any bytes are a schema-valid upload, yet most are no article (a .png, invalid JSON) and get a 422: for
    uploads "valid data is accepted" does not hold by design. Nor for a URL to fetch: in tests no host but
    127.0.0.1 can be reached (conftest.py), and the sample app may not fetch from that. Nor for chat completions:
    the last message must be the user's, with some text, which JSON Schema cannot say (a schema-valid
    conversation may end with the assistant's message and get a 400). Every other check applies everywhere."""
    fetches = isinstance(case.body, dict) and "url" in case.body and "text" not in case.body
    by_design = case.media_type == "multipart/form-data" or fetches or case.path == "/v1/chat/completions"
    excluded = [positive_data_acceptance] if by_design else []
    # A query string carries text only: a "negative" source (false, 0, an object) arrives as the text "false",
    # which is a valid source name (matching nothing), so "invalid data is rejected" cannot hold for it.
    if isinstance(case.query, dict) and "source" in case.query:
        excluded.append(negative_data_rejection)
    return excluded


@schema.parametrize()
@FUZZ
def test_every_operation_answers_within_its_schema(case: Any, fuzz_app: FastAPI) -> None:
    case.call_and_validate(app=fuzz_app, headers=KEY, excluded_checks=excluded_checks(case))


def test_stateful_sequences_follow_the_links(make_app: Callable[[], FastAPI]) -> None:
    machine = schema.as_state_machine()

    class Keyed(machine):  # type: ignore[misc, valid-type]
        # Each scenario starts from the sample index, so a replayed scenario meets the same server state.
        def setup(self) -> None:
            self.app = make_app()

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"app": self.app, "headers": KEY}

        def validate_response(self, response: Any, case: Any, *args: Any, **kwargs: Any) -> None:
            case.validate_response(
                response, excluded_checks=excluded_checks(case), transport_kwargs=kwargs or None, recorder=self.recorder
            )

    Keyed.run(
        settings=settings(
            max_examples=STATEFUL_EXAMPLES,
            stateful_step_count=5,
            deadline=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
    )
