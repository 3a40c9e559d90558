"""Articles from the web through the adapters: POST /api/articles {"url"}, GET /api/sources, `qa ingest URL`,
`qa feeds ...`, with their refusals as a clear 4xx or one line."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from fixtures import CORPUS, SAMPLE_ID
from qa import QA
from qa.cli import cli
from qa.server.app import create_app
from qa.settings import Settings
from sites import Site, Story, publish


@pytest.fixture
def web_client(sample_qa: QA, settings: Settings) -> Iterator[TestClient]:
    """The app over the sample index, allowed to fetch from 127.0.0.1."""
    allowed = QA(settings.model_copy(update={"fetch_allow": ["127.0.0.0/8"]}), sample_qa.embedder)
    with TestClient(create_app(allowed), raise_server_exceptions=False) as c:
        yield c


def test_posting_a_url_fetches_and_indexes_the_page(web_client: TestClient, site: Site, auth: dict[str, str]) -> None:
    story = Story(2, 17)
    site.put(story.path, story.page(site))
    response = web_client.post("/api/articles", json={"url": site.url(story.path) + "?utm_source=x"}, headers=auth)
    assert response.status_code == 201, response.text
    assert response.json() == {"articles": {story.article_id(site): "added"}}
    answer = web_client.post("/api/ask", json={"question": story.question}).json()
    assert answer["citations"][0]["article_id"] == story.article_id(site) and "17 days" in answer["answer"]
    article = web_client.get(f"/api/articles/{story.article_id(site)}").json()
    assert article["source"] == "127.0.0.1" and article["origin"]["text_from"] == "page"
    again = web_client.post("/api/articles", json={"url": site.url(story.path)}, headers=auth)
    assert again.json() == {"articles": {story.article_id(site): "unchanged"}}  # the same story, not a duplicate


def test_a_loopback_url_is_refused_with_a_403(client: TestClient, site: Site, auth: dict[str, str]) -> None:
    site.put("/admin", "<p>internal</p>")
    response = client.post("/api/articles", json={"url": site.url("/admin")}, headers=auth)
    assert response.status_code == 403, response.text
    assert "127.0.0.1 is a loopback address" in response.json()["error"]
    assert "QA_FETCH_ALLOW" in response.json()["error"]
    assert site.requests == {}


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"url": "ftp://127.0.0.1/x"}, 422, "only http and https"),
        ({"url": "http://169.254.169.254/latest/meta-data/"}, 403, "link-local"),
        ({"url": "http://[::ffff:10.0.0.1]/"}, 403, "private"),
        ({"url": "https://news.example.invalid/a"}, 422, "does not exist"),
        ({"url": 5}, 422, "non-empty string"),
        ({"url": "http://127.0.0.1/x", "title": "t"}, 422, "send only its 'url'"),
    ],
)
def test_bad_urls_get_a_clear_4xx(
    web_client: TestClient, auth: dict[str, str], body: dict[str, object], status: int, message: str
) -> None:
    response = web_client.post("/api/articles", json=body, headers=auth)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]


def test_a_site_that_fails_is_a_502_and_a_slow_one_a_504(
    sample_qa: QA, settings: Settings, site: Site, auth: dict[str, str]
) -> None:
    site.put("/stall", "<p>late</p>", stall=True)
    impatient = QA(settings.model_copy(update={"fetch_allow": ["127.0.0.1"], "fetch_timeout": 0.5}), sample_qa.embedder)
    with TestClient(create_app(impatient), raise_server_exceptions=False) as client:
        missing = client.post("/api/articles", json={"url": site.url("/missing")}, headers=auth)
        assert missing.status_code == 502 and "HTTP 404" in missing.json()["error"]
        slow = client.post("/api/articles", json={"url": site.url("/stall")}, headers=auth)
        assert slow.status_code == 504 and "QA_FETCH_TIMEOUT" in slow.json()["error"]


def test_fetching_needs_the_key(web_client: TestClient, site: Site) -> None:
    assert web_client.post("/api/articles", json={"url": site.url("/a")}).status_code == 401
    assert site.requests == {}


@pytest.mark.parametrize("backend", ["faiss", "postgres"], indirect=True)
def test_sources_lists_sites_folders_and_feeds(web_client: TestClient, site: Site, auth: dict[str, str]) -> None:
    qa: QA = web_client.app.state.qa  # type: ignore[attr-defined]
    stories = [Story(n, 30 + n) for n in range(3)]
    publish(site, stories)
    qa.follow_feed(site.url("/feed.xml"))
    qa.poll_feeds()
    web_client.post(
        "/api/articles",
        json={"id": "wire/1", "text": "Otters hold hands.", "source": "Wire", "published": "2023-05-06"},
        headers=auth,
    )
    body = web_client.get("/api/sources").json()
    assert body["sites"] == [
        {"name": "127.0.0.1", "articles": 3, "newest": "2024-01-03"},
        {"name": "Wire", "articles": 1, "newest": "2023-05-06"},
    ]
    assert body["folders"] == [{"name": CORPUS.name, "articles": 1, "newest": "2017-06-11"}]
    [feed] = body["feeds"]
    assert feed["name"] == site.url("/feed.xml") and feed["title"] == "Coastal News"
    assert feed["articles"] == 3 and feed["newest"] == "2024-01-03" and feed["polled"]
    assert feed["last_result"] == "3 new, 0 updated, 0 unchanged, 0 failed"
    assert web_client.get(f"/api/articles/{SAMPLE_ID}").json()["origin"] is None


def run(args: list[str], **env: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, args, env=env)
    return result.exit_code, result.stdout, result.stderr


def test_qa_ingest_refuses_a_loopback_url_in_one_line(site: Site) -> None:
    site.put("/a.html", Story(0, 3).page(site))
    code, out, err = run(["ingest", "-q", site.url("/a.html")])
    assert code == 3, (out, err)
    [line] = err.strip().splitlines()
    assert line.startswith("skipped: ") and "127.0.0.1 is a loopback address" in line and "Traceback" not in err
    assert "0 added" in out and site.requests == {}


def test_qa_ingest_and_qa_feeds_on_a_local_site(site: Site) -> None:
    story = Story(4, 9)
    site.put("/one.html", story.page(site).replace(site.url(story.path), site.url("/one.html")))
    code, out, err = run(["ingest", "-q", site.url("/one.html"), str(CORPUS)], QA_FETCH_ALLOW="127.0.0.1")
    assert code == 0, err
    assert out.strip() == "2 added, 0 updated, 0 unchanged, 0 removed, 0 skipped"

    publish(site, [Story(n, 40 + n) for n in range(2)])
    code, out, err = run(["feeds", "add", site.url("/feed.xml")], QA_FETCH_ALLOW="127.0.0.1")
    assert code == 0 and "Coastal News, 2 items" in out, err
    code, out, err = run(["feeds", "poll"], QA_FETCH_ALLOW="127.0.0.1")
    assert code == 0, err
    assert out.strip() == f"{site.url('/feed.xml')}: 2 new, 0 updated, 0 unchanged, 0 failed"
    code, out, _ = run(["feeds", "list"])
    assert out.startswith(site.url("/feed.xml") + "\tCoastal News\tpolled ")
    code, out, err = run(["feeds", "remove", "http://nowhere.example/feed"])
    assert code == 1 and err.strip() == "Error: no feed 'http://nowhere.example/feed' is followed (see `qa feeds list`)"
    assert run(["feeds", "remove", site.url("/feed.xml")])[0] == 0


@pytest.mark.parametrize(
    "command",
    [["feeds"], ["feeds", "add"], ["feeds", "poll"], ["feeds", "list"], ["feeds", "remove"], ["ingest"], ["serve"]],
)
def test_every_new_command_has_help_with_an_example(command: list[str]) -> None:
    code, out, _ = run([*command, "--help"])
    assert code == 0 and "Example:" in out
