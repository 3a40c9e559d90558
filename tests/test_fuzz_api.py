"""Property-based fuzzing of the HTTP API with schemathesis, from the app's own OpenAPI schema, over ASGI.

Every operation gets generated requests (valid and invalid) and stateful sequences follow the schema's links;
every response must be a non-5xx that matches the documented status codes, content types and schemas.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings

from conftest import API_KEY
from qa import QA
from qa.app import create_app
from qa.settings import Settings

# Modest budgets keep the whole file within about a minute on 2 cores; raise them to fuzz harder.
EXAMPLES_PER_OPERATION = 60
STATEFUL_EXAMPLES = 15
FUZZ = settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,  # the same examples on every run; failures reproduce
    suppress_health_check=list(HealthCheck),
    database=None,
)


@pytest.fixture
def fuzz_app(sample_qa: QA, settings: Settings) -> FastAPI:
    """The app over the sample index (the rate limit off: a fuzzer is one very fast client)."""
    fuzzed = QA(settings.model_copy(update={"rate_limit": 0, "max_upload_bytes": 50_000}), sample_qa.index.embedder)
    return create_app(fuzzed)


# The schema comes from the app itself; building it needs no index (QA opens one on first use), so it can be
# loaded at collection time, and each test sends its requests to a fresh app over the sample index.
schema = schemathesis.openapi.from_dict(create_app(QA(Settings(index_dir=Path("unused-index")))).openapi())
KEY = {"Authorization": f"Bearer {API_KEY}"}


@schema.parametrize()
@FUZZ
def test_every_operation_answers_within_its_schema(case: Any, fuzz_app: FastAPI) -> None:
    case.call_and_validate(app=fuzz_app, headers=KEY)


def test_stateful_sequences_follow_the_links(fuzz_app: FastAPI) -> None:
    machine = schema.as_state_machine()

    class Keyed(machine):  # type: ignore[misc, valid-type]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"app": fuzz_app, "headers": KEY}

    Keyed.run(
        settings=settings(
            max_examples=STATEFUL_EXAMPLES,
            stateful_step_count=6,
            deadline=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
    )
