"""The PostgreSQL back end's own duties: schema versions, clear errors, replicas, parallel and sharded ingest."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from fixtures import SAMPLE_ID
from qa import QA
from qa.backends.postgres.connection import connect
from qa.backends.postgres.migrations import SCHEMA_VERSION, init_schema
from qa.cli import cli
from qa.embedding import SentenceTransformerEmbedder
from qa.errors import DatabaseUnavailable, SchemaVersionMismatch, VectorExtensionMissing
from qa.records import Article
from qa.server.app import create_app
from qa.settings import Settings

pytestmark = pytest.mark.parametrize("backend", ["postgres"], indirect=True)

ANIMALS = ["otter", "heron", "badger", "lynx", "marten", "stoat", "beaver", "osprey", "vole", "curlew", "newt", "hare"]


def articles() -> list[Article]:
    """Small distinct articles, one fact each."""
    return [
        Article(
            id=f"wire/{name}", title=f"The {name}", text=f"Rangers counted {i + 3} {name}s by the river this spring."
        )
        for i, name in enumerate(ANIMALS)
    ]


def test_db_init_is_idempotent_and_versioned(settings: Settings) -> None:
    runner = CliRunner()
    env = {"QA_BACKEND": "postgres", "QA_DATABASE_URL": settings.database_url or ""}
    result = runner.invoke(cli, ["db", "init"], env=env)
    assert result.exit_code == 0 and f"schema version {SCHEMA_VERSION} (unchanged)" in result.output
    assert init_schema(settings.database_url or "") == (SCHEMA_VERSION, SCHEMA_VERSION)
    help_text = runner.invoke(cli, ["db", "init", "--help"]).output
    assert "Example:" in help_text and "qa db init" in help_text


def test_db_init_creates_the_schema_in_an_empty_database(settings: Settings, postgres_url: str) -> None:
    from fixtures import fresh_database

    url = fresh_database(postgres_url, "t_empty_init", "template0")
    try:
        with pytest.raises(SchemaVersionMismatch, match="run `qa db init`"):
            QA(settings.model_copy(update={"database_url": url})).counts()
        assert init_schema(url) == (0, SCHEMA_VERSION)
        qa = QA(settings.model_copy(update={"database_url": url}))
        assert qa.counts() == (0, 0)
        qa.close()
    finally:
        with connect(postgres_url) as admin:
            admin.execute('DROP DATABASE "t_empty_init" WITH (FORCE)')


def test_a_newer_schema_is_refused_with_one_line(settings: Settings) -> None:
    with connect(settings.database_url or "") as conn:
        conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (SCHEMA_VERSION + 1,))
    with pytest.raises(SchemaVersionMismatch, match="newer than this qa"):
        QA(settings).counts()
    result = CliRunner().invoke(cli, ["db", "init"], env={"QA_DATABASE_URL": settings.database_url or ""})
    assert result.exit_code == 1 and "newer than this qa" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_an_unreachable_database_is_a_clear_503(settings: Settings, tmp_path: Path) -> None:
    bad = settings.model_copy(update={"database_url": f"postgresql://postgres@/qa?host={tmp_path}/nowhere"})
    with pytest.raises(DatabaseUnavailable, match="cannot connect to database qa"):
        QA(bad).counts()
    with TestClient(create_app(QA(bad)), raise_server_exceptions=False) as client:
        response = client.get("/api/articles")
    assert response.status_code == 503 and "cannot connect" in response.json()["error"]
    result = CliRunner().invoke(cli, ["list"], env={"QA_BACKEND": "postgres", "QA_DATABASE_URL": bad.database_url})
    assert result.exit_code == 1 and "cannot connect to database qa" in result.output


def test_a_missing_vector_extension_is_named(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("qa.backends.postgres.migrations.VECTOR_EXTENSION", "no_such_vector_extension")
    with pytest.raises(VectorExtensionMissing, match="pgvector extension"):
        init_schema(settings.database_url or "")


def test_writes_through_one_replica_are_read_by_another(
    sample_qa: QA, settings: Settings, embedder: SentenceTransformerEmbedder
) -> None:
    other = QA(settings, embedder)  # a second API replica on the same database
    other.add(articles()[0])
    assert "3 otters" in sample_qa.ask("How many otters did rangers count?").answer
    sample_qa.delete("wire/otter")
    assert all(c.article_id != "wire/otter" for c in other.ask("How many otters did rangers count?").citations)
    assert other.article(SAMPLE_ID).title == sample_qa.article(SAMPLE_ID).title
    other.close()


def test_two_concurrent_ingests_of_one_corpus_write_each_article_once(
    settings: Settings, embedder: SentenceTransformerEmbedder
) -> None:
    # Two workers as on two machines: each its own model (a tokenizer is not safe to share between threads).
    workers = [QA(settings, embedder), QA(settings, SentenceTransformerEmbedder(embedder.name))]
    start = threading.Barrier(len(workers))
    statuses: list[dict[str, str]] = []
    errors: list[BaseException] = []

    def ingest(worker: QA) -> None:
        start.wait()
        try:
            statuses.append(worker.indexer.upsert(articles(), batch=4))
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=ingest, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    ids = [a.id for a in articles()]
    added = sorted(i for s in statuses for i, status in s.items() if status == "added")
    assert added == sorted(ids)  # each article written by exactly one worker; the other found it unchanged
    with connect(settings.database_url or "") as conn:
        rows = conn.execute("SELECT article_id, count(*) FROM passages GROUP BY article_id").fetchall()
        duplicates = conn.execute("SELECT count(*) FROM embeddings GROUP BY text_hash HAVING count(*) > 1").fetchall()
    assert sorted(r[0] for r in rows) == sorted(ids) and all(r[1] == 1 for r in rows)
    assert duplicates == []
    assert workers[0].counts() == (len(ids), len(ids))
    for w in workers:
        w.close()


def test_sharded_ingest_splits_a_corpus_without_overlap(
    settings: Settings, embedder: SentenceTransformerEmbedder, tmp_path: Path
) -> None:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("\n".join(a.model_dump_json() for a in articles()))
    shards = [QA(settings, embedder).ingest([corpus], shard=(i, 3)) for i in range(3)]
    written = [set(report.added) for report in shards]
    assert set().union(*written) == {a.id for a in articles()}
    assert sum(len(w) for w in written) == len(articles()) and all(written)
    again = QA(settings, embedder).ingest([corpus])
    assert again.added == [] and len(again.unchanged) == len(articles())


def test_rebuild_keeps_search_working(sample_qa: QA) -> None:
    passages = sample_qa.counts()[1]
    assert sample_qa.rebuild() == passages
    assert "30 billion barrels" in sample_qa.search("oil reserves", top_k=1)[0].passage
