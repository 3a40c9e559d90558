"""Safe fetching: address checks (without connecting), pinned connections, redirects, size cap, time-outs,
robots.txt, the user agent and one request at a time per host, against a site on 127.0.0.1."""

from __future__ import annotations

import ipaddress
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qa.errors import FetchFailed, FetchRefused, FetchTimeout, InvalidArticle, InvalidURL
from qa.settings import Settings
from qa.sources import addresses
from qa.sources.addresses import parse_networks, refusal, resolve
from qa.sources.fetching import Fetcher, target_of
from qa.sources.pages import article_from_page, article_id_for, fetch_page, same_site
from sites import Site, Story

LOCAL = Settings(fetch_allow=["127.0.0.1"])


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.255.0.9",
        "10.1.2.3",
        "172.16.0.1",
        "172.31.255.254",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "100.64.0.1",  # carrier-grade NAT
        "0.0.0.0",
        "0.1.2.3",
        "192.0.0.1",
        "192.0.2.1",
        "198.18.0.1",
        "198.51.100.7",
        "203.0.113.9",
        "224.0.0.1",
        "239.255.255.250",
        "240.0.0.1",
        "255.255.255.255",
        "::",
        "::1",
        "fe80::1",
        "fc00::1",
        "fd12:3456::1",
        "fec0::1",
        "ff02::1",
        "2001:db8::1",
        "2001::1",  # Teredo
        "::ffff:127.0.0.1",  # IPv4-mapped
        "::ffff:10.0.0.1",
        "2002:7f00:1::1",  # 6to4 around 127.0.0.1
        "2002:a9fe:a9fe::1",  # 6to4 around 169.254.169.254
        "64:ff9b::a00:1",  # NAT64 around 10.0.0.1
    ],
)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111", "64:ff9b::5db8:d822"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is None


def test_the_allow_list_opens_exactly_its_ranges() -> None:
    allow = parse_networks(["127.0.0.0/8", "fd00::/8", "10.9.8.7"])
    assert refusal(ipaddress.ip_address("127.0.0.1"), allow) is None
    assert refusal(ipaddress.ip_address("::ffff:127.0.0.1"), allow) is None
    assert refusal(ipaddress.ip_address("fd12::1"), allow) is None
    assert refusal(ipaddress.ip_address("10.9.8.7"), allow) is None
    assert refusal(ipaddress.ip_address("10.9.8.8"), allow) == "a private address"
    assert refusal(ipaddress.ip_address("169.254.169.254"), allow) == "a link-local address"


def test_a_bad_allow_entry_is_a_settings_error() -> None:
    with pytest.raises(ValueError, match="QA_FETCH_ALLOW"):
        Settings(fetch_allow=["localhost"])


def fake_dns(answers: list[str]) -> Any:
    def lookup(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in answers]

    return lookup


def test_every_address_a_name_resolves_to_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(addresses, "getaddrinfo", fake_dns(["93.184.216.34", "10.0.0.5"]))
    with pytest.raises(FetchRefused, match=r"news.example \(10.0.0.5\) is a private address"):
        resolve("news.example", 80)
    monkeypatch.setattr(addresses, "getaddrinfo", fake_dns(["93.184.216.34"]))
    assert [str(a) for a in resolve("news.example", 80)] == ["93.184.216.34"]


def test_a_name_that_resolves_to_loopback_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rebinding-style names (127.0.0.1.nip.io, a hostile DNS) meet the same check as literal addresses."""
    monkeypatch.setattr(addresses, "getaddrinfo", fake_dns(["127.0.0.1"]))
    with pytest.raises(FetchRefused, match="loopback"):
        Fetcher(Settings()).fetch("http://evil.example/")


def test_a_loopback_url_is_refused_without_connecting(site: Site) -> None:
    site.put("/page.html", "<p>secret</p>")
    with pytest.raises(FetchRefused, match=r"127.0.0.1 is a loopback address.*QA_FETCH_ALLOW"):
        Fetcher(Settings()).fetch(site.url("/page.html"))
    assert site.requests == {}


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://127.0.0.1/x", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("javascript:alert(1)", "only http and https"),
        ("http:///nohost", "no host"),
        ("http://user:pw@127.0.0.1/", "user name or password"),
        ("http://127.0.0.1:99999/", "not a valid URL"),
        ("http://no-such-host.invalid/", "does not exist"),
    ],
)
def test_unusable_urls_are_invalid(url: str, message: str) -> None:
    with pytest.raises(InvalidURL, match=message):
        Fetcher(LOCAL).fetch(url)


def test_the_connection_goes_to_the_checked_address_with_the_name_as_host(site: Site) -> None:
    site.put("/", "<p>home</p>")
    fetched = Fetcher(Settings(fetch_allow=["127.0.0.0/8"])).fetch(f"http://localhost:{site.port}/")
    assert fetched.status == 200 and fetched.body == b"<p>home</p>"
    assert target_of(f"http://localhost:{site.port}/a b?q=é").host_header == f"localhost:{site.port}"
    assert target_of("http://Bücher.example/a b?q=é").path == "/a%20b?q=%C3%A9"
    assert target_of("http://Bücher.example/").host == "xn--bcher-kva.example"


def test_redirects_are_followed_and_each_hop_is_checked(site: Site) -> None:
    site.put("/old", status=301, location="/new")
    site.put("/new", "<p>moved</p>")
    fetched = Fetcher(LOCAL).fetch(site.url("/old"))
    assert fetched.url == site.url("/new") and fetched.body == b"<p>moved</p>"

    site.put("/to-metadata", status=302, location="http://169.254.169.254/latest/meta-data/")
    with pytest.raises(FetchRefused, match=r"169\.254\.169\.254 is a link-local address"):
        Fetcher(LOCAL).fetch(site.url("/to-metadata"))
    site.put("/to-intranet", status=307, location="http://10.0.0.1/admin")
    with pytest.raises(FetchRefused, match="private"):
        Fetcher(LOCAL).fetch(site.url("/to-intranet"))
    site.put("/to-file", status=302, location="file:///etc/passwd")
    with pytest.raises(InvalidURL, match="only http and https"):
        Fetcher(LOCAL).fetch(site.url("/to-file"))


def test_redirects_are_limited(site: Site) -> None:
    for n in range(4):
        site.put(f"/hop{n}", status=302, location=f"/hop{n + 1}")
    site.put("/hop4", "<p>end</p>")
    assert Fetcher(LOCAL.model_copy(update={"fetch_max_redirects": 4})).fetch(site.url("/hop0")).status == 200
    with pytest.raises(FetchFailed, match="redirects more than 3 times"):
        Fetcher(LOCAL.model_copy(update={"fetch_max_redirects": 3})).fetch(site.url("/hop0"))


@pytest.mark.parametrize("declare_length", [True, False])
def test_bodies_over_the_size_cap_are_cut_off(site: Site, declare_length: bool) -> None:
    site.put("/big.html", b"x" * 20_000, declare_length=declare_length)
    site.put("/small.html", b"y" * 3_000, declare_length=declare_length)
    fetcher = Fetcher(LOCAL.model_copy(update={"fetch_max_bytes": 5_000}))
    assert len(fetcher.fetch(site.url("/small.html")).body) == 3_000
    with pytest.raises(FetchFailed, match=r"at most 5000 bytes \(QA_FETCH_MAX_BYTES\)"):
        fetcher.fetch(site.url("/big.html"))


def test_a_stalled_site_times_out(site: Site) -> None:
    site.put("/stall", "<p>never</p>", stall=True)
    with pytest.raises(FetchTimeout, match="QA_FETCH_TIMEOUT"):
        Fetcher(LOCAL.model_copy(update={"fetch_timeout": 0.5})).fetch(site.url("/stall"))


def test_http_errors_are_fetch_failures(site: Site) -> None:
    site.put("/gone", "gone", status=410)
    with pytest.raises(FetchFailed, match="answered HTTP 410") as caught:
        Fetcher(LOCAL).fetch(site.url("/gone"))
    assert caught.value.status == 410
    with pytest.raises(FetchFailed, match="HTTP 404"):
        Fetcher(LOCAL).fetch(site.url("/missing"))


def test_robots_txt_is_honoured_and_read_once(site: Site) -> None:
    site.put(
        "/robots.txt",
        "User-agent: *\nDisallow: /private/\n\nUser-agent: qa\nDisallow: /no-qa/\n",
        content_type="text/plain",
    )
    site.put("/news/a.html", "<p>a</p>")
    site.put("/no-qa/b.html", "<p>b</p>")
    fetcher = Fetcher(LOCAL)
    assert fetcher.fetch(site.url("/news/a.html")).status == 200
    with pytest.raises(FetchRefused, match=r"robots\.txt does not allow qa"):
        fetcher.fetch(site.url("/no-qa/b.html"))
    assert site.requests["/no-qa/b.html"] == 0 and site.requests["/robots.txt"] == 1


def test_an_unreachable_robots_txt_blocks_the_site(site: Site) -> None:
    site.put("/robots.txt", "oops", status=503)
    site.put("/a.html", "<p>a</p>")
    with pytest.raises(FetchRefused, match=r"robots\.txt"):
        Fetcher(LOCAL).fetch(site.url("/a.html"))
    assert site.requests["/a.html"] == 0


def test_requests_name_qa(site: Site) -> None:
    site.put("/a.html", "<p>a</p>")
    Fetcher(LOCAL).fetch(site.url("/a.html"))
    assert site.agents and all(agent.startswith("qa/") for agent in site.agents)


def test_one_request_at_a_time_per_host(site: Site) -> None:
    for n in range(3):
        site.put(f"/slow{n}", "<p>slow</p>", delay=0.3)
    fetcher = Fetcher(LOCAL)
    fetcher.fetch(site.url("/slow0"))  # robots.txt is read first, alone
    threads = [threading.Thread(target=fetcher.fetch, args=(site.url(f"/slow{n}"),)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert site.requests["/slow1"] == site.requests["/slow2"] == 1
    assert site.most_in_flight == 1


def test_a_page_becomes_an_article_named_by_its_canonical_url(site: Site) -> None:
    story = Story(0, 12)
    site.put(story.path, story.page(site))
    article = article_from_page(fetch_page(Fetcher(LOCAL), site.url(story.path) + "?utm_source=rss&fbclid=x"))
    assert article.id == story.article_id(site) and article.url == site.url(story.path)
    assert article.title == story.title and article.author == "Reporter 0" and article.published == "2024-01-01"
    assert article.source == "127.0.0.1" and "closed for 12 days" in article.text
    assert article.origin is not None and article.origin.text_from == "page"


def test_a_page_cannot_claim_another_sites_story(site: Site) -> None:
    page = Story(1, 5).page(site).replace(site.url(Story(1, 5).path), "https://news.example.org/world/1")
    site.put("/copy.html", page)
    article = article_from_page(fetch_page(Fetcher(LOCAL), site.url("/copy.html")))
    assert article.id == f"127.0.0.1:{site.port}/copy" and article.url == site.url("/copy.html")


def test_query_strings_that_name_a_story_are_kept_in_its_id() -> None:
    assert article_id_for("https://www.example.org/story.php?id=7&utm_medium=x") == "example.org/story?id=7"
    assert article_id_for("https://example.org/a/?utm_source=rss") == "example.org/a"


def test_what_is_not_html_is_no_article(site: Site) -> None:
    site.put("/data.json", '{"a": 1}', content_type="application/json")
    with pytest.raises(InvalidArticle, match="not an HTML page"):
        article_from_page(fetch_page(Fetcher(LOCAL), site.url("/data.json")))


@pytest.fixture
def tls_site(tmp_path: Path) -> Iterator[tuple[Site, Path]]:
    """An HTTPS site on 127.0.0.1 whose self-signed certificate names only "localhost"."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    running = Site(tls=(cert, key)).start()
    running.put("/", "<p>over TLS</p>")
    yield running, cert
    running.stop()


def test_https_connects_to_the_checked_address_and_checks_the_certificate_by_name(
    tls_site: tuple[Site, Path],
) -> None:
    site, cert = tls_site
    allow = Settings(fetch_allow=["127.0.0.1"])
    by_name = f"https://localhost:{site.port}/"
    assert Fetcher(allow, ca_certs=str(cert)).fetch(by_name).body == b"<p>over TLS</p>"
    with pytest.raises(FetchFailed, match="TLS failed"):  # the certificate names localhost, not 127.0.0.1
        Fetcher(allow, ca_certs=str(cert)).fetch(f"https://127.0.0.1:{site.port}/")
    with pytest.raises(FetchFailed, match="TLS failed"):  # a self-signed certificate is not trusted
        Fetcher(allow).fetch(by_name)


def test_very_long_urls_still_get_a_stable_id() -> None:
    url = "https://example.org/" + "a" * 400 + "?page=2"
    first = article_id_for(url)
    assert len(first) <= 300 and first == article_id_for(url) and first.startswith("example.org/aaa")
    assert first != article_id_for(url.replace("page=2", "page=3"))


def test_a_closed_port_is_a_connection_failure_not_a_time_out() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(FetchFailed, match=f"cannot connect to http://127.0.0.1:{port}") as caught:
        Fetcher(LOCAL).fetch(f"http://127.0.0.1:{port}/a")
    assert not isinstance(caught.value, FetchTimeout)


def test_only_the_same_site_may_name_the_canonical_url() -> None:
    assert same_site("https://www.example.org/a", "https://example.org/b")
    assert same_site("https://m.example.org/a", "https://www.example.org/a")
    assert not same_site("https://example.org/a", "https://evil.example.org/a")
    assert not same_site("https://github.io/a", "https://someone.github.io/a")
    assert not same_site("https://example.org.evil.com/a", "https://example.org/a")
