"""Careless and hostile use, item by item (issue 10): nothing acknowledged is lost, nothing is amplified.

Each test failed before its fix. The heavy attacks (connection floods, multi-megabyte texts, a 30-minute soak)
are bench/ scripts, with their figures in SECURITY.md.
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from fixtures import API_KEY, FakeEmbedder, faiss_backend
from qa import QA, Article, Settings
from qa.answering.compose import MAX_CITED_CHARS
from qa.articles.corpus import CorpusFile, located, read_corpus_file
from qa.cli import EXIT_SKIPPED, cli
from qa.embedding import SentenceTransformerEmbedder
from qa.indexing.chunking import ChunkingPolicy, passages_for
from qa.indexing.watching import sync_files
from qa.server.app import create_app

AUTH = {"Authorization": f"Bearer {API_KEY}"}


def quick(tmp_path: Path, corpus: Path | None = None, **overrides: object) -> QA:
    """A QA on a fresh index with the fast fake embedder (the real model is used where meaning matters)."""
    corpus = corpus or tmp_path / "corpus"
    corpus.mkdir(exist_ok=True)
    settings = Settings(index_dir=tmp_path / "index", corpus_dir=corpus, api_key=API_KEY, **overrides)  # type: ignore[arg-type]
    return QA(settings, FakeEmbedder())


def story(folder: Path, name: str, headline: str, body: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{headline}\n\n{body}\n")
    return path


# -- 1. two different files never share an id silently ----------------------------------------------------


def test_files_with_the_same_name_in_two_folders_get_distinct_ids(tmp_path: Path) -> None:
    bbc = tmp_path / "bbc"
    story(bbc / "business", "001.txt", "Time Warner profits", "Quarterly profits at Time Warner rose 76%.")
    story(bbc / "tech", "001.txt", "Games sales", "Sales of video games rose sharply.")
    qa = quick(tmp_path)
    report = qa.ingest([bbc / "business", bbc / "tech"])
    assert sorted(report.added) == ["business/001.txt", "tech/001.txt"]
    assert "Time Warner" in qa.article("business/001.txt").text
    assert qa.ingest([bbc / "business", bbc / "tech"]).unchanged == ["business/001.txt", "tech/001.txt"]


def test_a_folder_inside_the_corpus_keeps_the_ids_the_corpus_gives(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    story(corpus / "world", "asia.txt", "Asia", "Rice harvests were large this year.")
    qa = quick(tmp_path, corpus)
    assert qa.ingest([corpus]).added == ["world/asia.txt"]
    assert qa.ingest([corpus / "world"]).unchanged == ["world/asia.txt"]


def test_an_explicit_id_used_by_another_file_is_skipped_and_reported(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.json").write_text(json.dumps({"id": "wire-1", "title": "A", "text": "The first wire story."}))
    qa = quick(tmp_path, corpus)
    assert qa.ingest().added == ["wire-1"]
    (corpus / "b.json").write_text(json.dumps({"id": "wire-1", "title": "B", "text": "Another story entirely."}))
    report = qa.ingest()
    assert report.unchanged == ["wire-1"] and not report.updated
    assert any("b.json" in s and "'wire-1' is already used by" in s and "a.json" in s for s in report.skipped)
    assert qa.article("wire-1").text == "The first wire story."  # never replaced
    # Re-ingesting the same file stays an update.
    (corpus / "a.json").write_text(json.dumps({"id": "wire-1", "title": "A", "text": "The first story, revised."}))
    (corpus / "b.json").unlink()
    assert qa.ingest().updated == ["wire-1"]


def test_an_id_collision_within_one_run_keeps_the_first_file_and_exits_3(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, text in (("a.json", "The first wire story."), ("b.json", "The second one.")):
        (corpus / name).write_text(json.dumps({"id": "wire-1", "text": text}))
    env = {"QA_INDEX_DIR": str(tmp_path / "index"), "QA_CORPUS_DIR": str(corpus)}
    result = CliRunner().invoke(cli, ["ingest", "--quiet"], env=env)
    assert result.exit_code == EXIT_SKIPPED, result.output
    assert "skipped:" in result.output and "'wire-1' is already used by" in result.output
    assert "1 added" in result.output


def test_a_file_never_replaces_an_article_added_through_the_api(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    qa = quick(tmp_path, corpus)
    qa.add(Article(id="wire-1", title="Posted", text="Posted through the API."))
    (corpus / "a.json").write_text(json.dumps({"id": "wire-1", "text": "From a file."}))
    report = qa.ingest()
    assert not report.added and not report.updated and "added through the API" in report.skipped[0]
    assert qa.article("wire-1").text == "Posted through the API."


def test_a_renamed_file_takes_its_article_along(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.json").write_text(json.dumps({"id": "wire-1", "text": "A story that moves."}))
    qa = quick(tmp_path, corpus)
    qa.ingest()
    (corpus / "a.json").rename(corpus / "b.json")
    report = qa.ingest()
    assert report.unchanged == ["wire-1"] and not report.skipped
    assert faiss_backend(qa).files()["wire-1"].endswith("b.json")


# -- 2. a symlink in the corpus is its own article; the watcher never deletes its target's --------------


def test_a_symlink_added_under_the_watcher_leaves_its_target_alone(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    target = story(corpus, "target.txt", "Target", "The harbour opened a new pier.")
    qa = quick(tmp_path, corpus)
    qa.ingest()
    (corpus / "alias.txt").symlink_to(target)
    report = sync_files(qa.indexer, corpus, {corpus / "alias.txt"}, set())
    assert report.added == ["alias.txt"] and not report.deleted
    assert qa.article("target.txt").text
    (corpus / "alias.txt").unlink()
    report = sync_files(qa.indexer, corpus, set(), {corpus / "alias.txt"})
    assert report.deleted == ["alias.txt"]
    assert qa.article("target.txt").text


# -- 3. one unreadable file costs only itself ---------------------------------------------------------


@pytest.fixture
def broken_html_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    """trafilatura cannot be imported, as when justext's lxml.html.clean is missing."""
    monkeypatch.setitem(sys.modules, "trafilatura", None)


def test_a_reader_that_cannot_load_skips_its_files_and_the_rest_goes_on(
    tmp_path: Path, broken_html_reader: None
) -> None:
    corpus = tmp_path / "corpus"
    story(corpus, "plain.txt", "Plain", "A plain text story about ferries.")
    (corpus / "page.html").write_text("<html><body><article><p>A web page story.</p></article></body></html>")
    qa = quick(tmp_path, corpus)
    report = qa.ingest()
    assert report.added == ["plain.txt"]
    assert len(report.skipped) == 1 and "page.html" in report.skipped[0] and "HTML reader" in report.skipped[0]
    # The watcher goes on with the rest of its batch too.
    story(corpus, "second.txt", "Second", "Another plain story.")
    batch = sync_files(qa.indexer, corpus, {corpus / "second.txt", corpus / "page.html"}, set())
    assert batch.added == ["second.txt"] and len(batch.skipped) == 1


def test_an_upload_whose_reader_cannot_load_is_a_503(tmp_path: Path, broken_html_reader: None) -> None:
    with TestClient(create_app(quick(tmp_path)), raise_server_exceptions=False) as client:
        files = {"file": ("story.html", b"<html><body><p>Text.</p></body></html>", "text/html")}
        response = client.post("/api/articles", files=files, headers=AUTH)
    assert response.status_code == 503 and "HTML reader cannot be loaded" in response.json()["error"]


def test_the_html_readers_dependencies_are_declared() -> None:
    from importlib.metadata import requires

    assert any(r.replace(" ", "").startswith("lxml[html_clean]") for r in requires("qa") or [])
    import importlib

    importlib.import_module("lxml.html.clean")  # what justext imports


# -- 4. passages and responses are bounded in characters ---------------------------------------------


def test_a_huge_word_becomes_many_bounded_passages(embedder: SentenceTransformerEmbedder) -> None:
    text = "Intro sentence. " + "x" * 60_000 + " Closing sentence."
    policy = ChunkingPolicy(200, 1)
    passages = passages_for(Article(id="w", text=text), policy, embedder)
    assert len(passages) >= 60_000 // policy.max_chars
    assert all(len(p.text) <= policy.max_chars and text[p.start : p.end] == p.text for p in passages)


def test_responses_carry_bounded_text(tmp_path: Path) -> None:
    qa = quick(tmp_path)
    huge = " ".join(["zebra"] * 2) + " " + "q" * 400_000
    qa.add(Article(id="huge", title="Huge", text=huge))
    with TestClient(create_app(qa), raise_server_exceptions=False) as client:
        search = client.get("/api/search", params={"q": "zebra", "top_k": 50})
        assert search.status_code == 200 and len(search.content) < 50 * (MAX_CITED_CHARS + 1000)
        first = client.get("/api/articles/huge").json()
        assert len(first["text"]) == qa.settings.max_text_chars and first["next_start"] == len(first["text"])
        pages, start = [first["text"]], first["next_start"]
        while start is not None:
            page = client.get("/api/articles/huge", params={"start": start}).json()
            pages.append(page["text"])
            start = page["next_start"]
        assert "".join(pages) == huge and first["text_length"] == len(huge)
        view = client.get("/articles/huge")
        assert view.status_code == 200 and len(view.content) < qa.settings.max_text_chars + 20_000
        assert "Later text" in view.text


def test_a_long_passage_from_an_older_index_is_cited_around_its_highlight(tmp_path: Path) -> None:
    from qa.answering.compose import _citation
    from qa.backends.base import PassageRow
    from qa.retrieval.hybrid import Candidate

    text = "a " * 10_000 + "The answer is 42. " + "b " * 10_000
    at = text.index("The answer")
    row = PassageRow(1, "old", "Old", None, None, 0, len(text), text)
    citation = _citation(1, Candidate(row, 0.5, 1.0), (at, at + 17))
    assert len(citation.passage) <= MAX_CITED_CHARS and "The answer is 42." in citation.passage
    assert text[citation.start : citation.end] == citation.passage
    assert citation.start <= citation.highlight[0] < citation.highlight[1] <= citation.end


# -- 5. pathological text is split in linear time and never holds the writer while it is embedded -----


def test_embedding_a_big_article_does_not_hold_the_writer(tmp_path: Path) -> None:
    started, release = threading.Event(), threading.Event()

    class SlowEmbedder(FakeEmbedder):
        def encode_with_spans(self, texts, spans):  # type: ignore[no-untyped-def]
            if any("pathological" in t for t in texts):
                started.set()
                assert release.wait(60), "the test never released the slow embedding"
            return super().encode_with_spans(texts, spans)

    settings = Settings(index_dir=tmp_path / "index", writer_timeout=0.5)
    slow = QA(settings, SlowEmbedder())
    slow.add(Article(id="seed", text="A first article, so the index exists."))
    big = threading.Thread(target=slow.add, args=(Article(id="big", text="pathological " * 5_000),))
    big.start()
    try:
        assert started.wait(60)
        other = QA(settings, FakeEmbedder())
        assert other.add(Article(id="small", text="A small article, written meanwhile.")) == "added"
    finally:
        release.set()
        big.join(60)
    assert slow.article("big").text.startswith("pathological")


# -- 6, 7. forwarded addresses are not believed by default; wrong keys are throttled ----------------------


def test_forwarded_addresses_are_believed_only_from_named_proxies() -> None:
    from qa.server.serving import uvicorn_options

    assert uvicorn_options(Settings())["proxy_headers"] is False
    options = uvicorn_options(Settings(trusted_proxies="10.0.0.5, 192.168.0.0/16"))
    assert options["proxy_headers"] is True and options["forwarded_allow_ips"] == "10.0.0.5,192.168.0.0/16"


def test_wrong_api_keys_are_throttled(tmp_path: Path) -> None:
    qa = quick(tmp_path, auth_failures=5)
    with TestClient(create_app(qa), raise_server_exceptions=False) as client:
        wrong = {"Authorization": "Bearer guess"}
        codes = [client.delete("/api/articles/x", headers=wrong).status_code for _ in range(8)]
        assert codes[:5] == [403] * 5 and set(codes[5:]) == {429}
        refused = client.post("/api/articles", json={"id": "a", "text": "t"}, headers=wrong)
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1


# -- 8. a flood of the same error is logged once per interval -----------------------------------------


def test_the_same_error_is_logged_once_per_interval() -> None:
    import logging

    from qa.server.serving import OncePerInterval

    now = [0.0]
    throttle = OncePerInterval(60, clock=lambda: now[0])
    record = logging.LogRecord("asyncio", logging.ERROR, "x", 1, "socket.accept() out of system resource", (), None)
    shown = []
    for second in range(0, 130):
        now[0] = float(second)
        fresh = logging.makeLogRecord(record.__dict__)
        if throttle.filter(fresh):
            shown.append(fresh.getMessage())
    assert len(shown) == 3 and "59 more like this" in shown[1]


def test_serve_passes_connection_limits_to_uvicorn() -> None:
    from qa.server.serving import IdleTimeoutProtocol, uvicorn_options

    options = uvicorn_options(Settings(max_connections=64, keepalive_timeout=2))
    assert options["limit_concurrency"] == 64 and options["timeout_keep_alive"] == 2
    assert options["http"] is IdleTimeoutProtocol


# -- 9. what is opened is what is checked ------------------------------------------------------------


def test_a_symlink_swapped_after_the_check_is_never_read(tmp_path: Path) -> None:
    corpus, outside = tmp_path / "corpus", tmp_path / "outside"
    inside = story(corpus, "inside.txt", "Inside", "Public text.")
    secret = story(outside, "secret.txt", "Secret", "The password is swordfish.")
    link = corpus / "link.txt"
    stop = threading.Event()

    def flip() -> None:  # swap the link between an inside and an outside target, as fast as possible
        while not stop.is_set():
            for target in (inside, secret):
                tmp = corpus / ".link.tmp"
                tmp.unlink(missing_ok=True)
                tmp.symlink_to(target)
                tmp.replace(link)

    flipper = threading.Thread(target=flip, daemon=True)
    link.symlink_to(inside)
    flipper.start()
    leaked = 0
    try:
        for _ in range(3000):
            try:
                [article] = read_corpus_file(CorpusFile(located(link), "link.txt"), [corpus.resolve()])
            except Exception:
                continue
            leaked += "swordfish" in article.text
    finally:
        stop.set()
        flipper.join()
    assert leaked == 0


# -- 10. deep JSON is a 4xx, and every response carries the security headers ----------------------------


def test_deeply_nested_json_is_a_422_not_a_500(tmp_path: Path) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    with TestClient(create_app(quick(tmp_path)), raise_server_exceptions=False) as client:
        body = client.post("/api/articles", content=deep, headers={**AUTH, "content-type": "application/json"})
        upload = client.post("/api/articles", files={"file": ("deep.json", deep.encode())}, headers=AUTH)
        ask = client.post("/api/ask", content=deep, headers={"content-type": "application/json"})
    for response in (body, upload):
        assert response.status_code == 422 and "nested too deeply" in response.json()["error"]
    assert 400 <= ask.status_code < 500
    assert all("Content-Security-Policy" in r.headers for r in (body, upload, ask))


def test_a_500_carries_the_security_headers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    qa = quick(tmp_path)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(qa, "search", broken)
    with TestClient(create_app(qa), raise_server_exceptions=False) as client:
        response = client.get("/api/search", params={"q": "anything"})
    assert response.status_code == 500
    assert response.headers["Content-Security-Policy"].startswith("default-src 'self'")
    assert response.headers["X-Content-Type-Options"] == "nosniff"


# -- 11. ids with empty, "." or ".." parts are refused --------------------------------------------------


@pytest.mark.parametrize("bad_id", ["../../docs", "a/../b", "a//b", "./x", "x/", "..\\docs"])
def test_ids_with_empty_dot_or_dot_dot_parts_are_refused(tmp_path: Path, bad_id: str) -> None:
    with TestClient(create_app(quick(tmp_path)), raise_server_exceptions=False) as client:
        response = client.post("/api/articles", json={"id": bad_id, "text": "Some text."}, headers=AUTH)
    assert response.status_code == 422 and "part between slashes" in response.json()["error"]
