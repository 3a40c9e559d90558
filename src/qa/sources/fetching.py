"""A careful HTTP client for a server on the open internet: qa fetches pages and feeds only through it.

Only http(s). Every hop (the first request and each redirect) resolves its host, checks every address it resolves
to (sources.addresses) and connects to that checked address, with the original name in the Host header, SNI and
certificate check, so a DNS answer that changes between check and connection (rebinding) cannot lead inside.
Redirects are followed by hand, at most QA_FETCH_MAX_REDIRECTS; bodies are read in pieces and cut off past
QA_FETCH_MAX_BYTES (after decompression); a request has a connect time-out and an overall time limit; robots.txt
is honoured; one request at a time per host.

urllib3, not httpx: its connection pool takes the address to connect to and, separately, the name to send as SNI
and to check the certificate against (`server_hostname`, `assert_hostname`), which is exactly the pinning needed;
and it is already installed with trafilatura.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import Message
from importlib.metadata import PackageNotFoundError, version
from urllib.parse import quote, urljoin, urlsplit

import urllib3
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import NewConnectionError, ProtocolError, SSLError
from urllib3.exceptions import TimeoutError as Urllib3Timeout

from qa.errors import FetchFailed, FetchRefused, FetchTimeout, InvalidURL
from qa.settings import Settings
from qa.sources.addresses import IPAddress, Network, parse_networks, resolve
from qa.sources.robots import RobotsCache

log = logging.getLogger(__name__)

REDIRECTS = {301, 302, 303, 307, 308}
CHUNK = 64 * 1024
MAX_URL_CHARS = 2000


def default_user_agent() -> str:
    """qa/<version>, naming the robots.txt token it obeys."""
    try:
        release = version("qa")
    except PackageNotFoundError:  # pragma: no cover - a source tree without metadata
        release = "0"
    return f"qa/{release} (article question answering; robots.txt token: qa)"


@dataclass(frozen=True)
class Target:
    """A URL split into what a request needs."""

    url: str
    scheme: str
    host: str  # ASCII (IDNA) host name or address, without brackets
    port: int
    path: str  # the request target: path and query, percent-encoded

    @property
    def host_header(self) -> str:
        """The Host header: the name, with the port when it is not the scheme's default."""
        name = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return name if self.port == default else f"{name}:{self.port}"

    @property
    def origin(self) -> str:
        """scheme://host[:port], for robots.txt and per-host bookkeeping."""
        return f"{self.scheme}://{self.host_header}"


def target_of(url: str) -> Target:
    """A URL qa may request: http or https, with a host, no credentials; InvalidURL otherwise."""
    url = url.strip()
    if len(url) > MAX_URL_CHARS:
        raise InvalidURL(f"the URL is {len(url)} characters long; the limit is {MAX_URL_CHARS}")
    try:
        parts = urlsplit(url)
        port = parts.port
        host = parts.hostname
    except ValueError as e:
        raise InvalidURL(f"{url[:200]!r} is not a valid URL ({e})") from e
    if parts.scheme.lower() not in ("http", "https"):
        raise InvalidURL(f"only http and https URLs can be fetched, not {url[:200]!r}")
    if not host:
        raise InvalidURL(f"the URL {url[:200]!r} has no host")
    if parts.username is not None or parts.password is not None:
        raise InvalidURL("URLs with a user name or password are not fetched")
    try:
        ascii_host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError as e:
        raise InvalidURL(f"the host {host!r} is not a valid name") from e
    scheme = parts.scheme.lower()
    path = quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
    if parts.query:
        path += "?" + quote(parts.query, safe="/%:@!$&'()*+,;=-._~?")
    return Target(url, scheme, ascii_host.lower(), port or (443 if scheme == "https" else 80), path)


@dataclass(frozen=True)
class Fetched:
    """A response qa read whole: 200 with a body, or 304 (not modified) without one."""

    url: str  # after redirects
    status: int
    body: bytes
    content_type: str  # lower case, without parameters ("text/html")
    charset: str | None
    etag: str | None
    last_modified: str | None

    @property
    def not_modified(self) -> bool:
        """The server said the copy qa has is current (304)."""
        return self.status == 304


class Fetcher:
    """Fetches URLs under qa's rules (see the module's docstring); one per process, shared by its threads."""

    def __init__(self, settings: Settings, *, ca_certs: str | None = None) -> None:
        self.ca_certs = ca_certs  # certificate authorities to trust instead of the system's (tests)
        self.allow: list[Network] = parse_networks(settings.fetch_allow)
        self.max_bytes = settings.fetch_max_bytes
        self.timeout = settings.fetch_timeout
        self.connect_timeout = min(settings.fetch_connect_timeout, settings.fetch_timeout)
        self.max_redirects = settings.fetch_max_redirects
        self.user_agent = settings.fetch_user_agent or default_user_agent()
        self.robots = RobotsCache(self._robots_txt)
        self._host_locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()

    def fetch(
        self, url: str, *, etag: str | None = None, last_modified: str | None = None, accept: str = "*/*"
    ) -> Fetched:
        """GET a URL, following redirects; a 304 when the validators still match; errors are domain errors."""
        headers = {"Accept": accept}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        target = target_of(url)
        for _ in range(self.max_redirects + 1):
            if not self.robots.allows(target.origin, target.url):
                raise FetchRefused(f"{target.origin}/robots.txt does not allow qa to fetch {target.url}")
            fetched, location = self._get(target, headers, self.max_bytes)
            if location is None:
                return fetched
            target = target_of(urljoin(target.url, location))
        raise FetchFailed(f"{url} redirects more than {self.max_redirects} times (QA_FETCH_MAX_REDIRECTS)")

    def _robots_txt(self, origin: str) -> tuple[int, bytes]:
        """(status, body) of a site's robots.txt, redirects followed and checked; 599 when it cannot be had.

        A site that cannot be fetched from at all (a refused address, no connection, TLS, a time-out) raises that
        error: the page would fail the same way, and its message says more than "robots.txt unreachable".
        """
        target = target_of(origin + "/robots.txt")
        try:
            for _ in range(self.max_redirects + 1):
                fetched, location = self._get(target, {"Accept": "text/plain"}, min(self.max_bytes, 512_000))
                if location is None:
                    return fetched.status, fetched.body
                target = target_of(urljoin(target.url, location))
        except (FetchFailed, FetchRefused, InvalidURL) as e:
            status = e.status if isinstance(e, FetchFailed) else None
            if status is None and target.origin == origin:
                raise  # the site itself cannot be fetched from: say why
            if status is not None and 400 <= status < 500:
                return status, b""
            log.info("robots.txt of %s: %s", origin, e)  # a 5xx, or a redirect somewhere qa may not go
        return 599, b""

    def _get(self, target: Target, headers: dict[str, str], limit: int) -> tuple[Fetched, str | None]:
        """One request to a checked address: the response, or the Location of a redirect."""
        addresses = resolve(target.host, target.port, self.allow)
        deadline = time.monotonic() + self.timeout
        with self._one_at_a_time(target.host):
            response, pool = self._connect(target, addresses, headers, deadline)
            try:
                if response.status in REDIRECTS and response.headers.get("Location"):
                    return _empty(target, response.status), response.headers["Location"]
                if response.status == 304:
                    return _response(target, response, b""), None
                if response.status != 200:
                    raise _status_error(target.url, response.status)
                return _response(target, response, self._read(target, response, limit, deadline)), None
            finally:
                response.release_conn()
                pool.close()

    def _connect(
        self, target: Target, addresses: list[IPAddress], headers: dict[str, str], deadline: float
    ) -> tuple[urllib3.BaseHTTPResponse, urllib3.HTTPConnectionPool]:
        """Send the request to the first checked address that accepts a connection."""
        timeout = urllib3.Timeout(connect=self.connect_timeout, read=self.timeout)
        sent = {
            "Host": target.host_header,
            "User-Agent": self.user_agent,
            "Accept-Encoding": "gzip, deflate",
            **headers,
        }
        last_error: Exception | None = None
        for address in addresses:
            if time.monotonic() > deadline:
                break
            pool = _pool(target, str(address), timeout, self.ca_certs)
            try:
                response = pool.urlopen(
                    "GET", target.path, headers=sent, redirect=False, retries=False, preload_content=False
                )
            except NewConnectionError as e:  # refused or unreachable (urllib3 files it under time-outs too)
                pool.close()
                last_error = e
                continue
            except Urllib3Timeout as e:
                pool.close()
                raise FetchTimeout(f"{target.url}: no answer within the time limit (QA_FETCH_TIMEOUT)") from e
            except (ProtocolError, SSLError, Urllib3Error) as e:
                pool.close()
                last_error = e
                continue
            return response, pool
        if isinstance(last_error, SSLError):
            raise FetchFailed(f"{target.url}: TLS failed ({_reason(last_error)})") from last_error
        raise FetchFailed(f"cannot connect to {target.origin}: {_reason(last_error)}") from last_error

    def _read(self, target: Target, response: urllib3.BaseHTTPResponse, limit: int, deadline: float) -> bytes:
        """The body, decompressed, cut off past `limit` bytes or the deadline."""
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit and not response.headers.get("Content-Encoding"):
            raise FetchFailed(f"{target.url} is {declared} bytes; qa reads at most {limit} bytes (QA_FETCH_MAX_BYTES)")
        body = bytearray()
        try:
            while chunk := response.read(CHUNK, decode_content=True):
                body += chunk
                if len(body) > limit:
                    raise FetchFailed(f"{target.url} is longer; qa reads at most {limit} bytes (QA_FETCH_MAX_BYTES)")
                if time.monotonic() > deadline:
                    raise FetchTimeout(f"{target.url}: the body took longer than QA_FETCH_TIMEOUT")
        except Urllib3Timeout as e:
            raise FetchTimeout(f"{target.url}: the body stalled past the time limit (QA_FETCH_TIMEOUT)") from e
        except (ProtocolError, Urllib3Error) as e:
            raise FetchFailed(f"{target.url}: the connection broke while reading ({_reason(e)})") from e
        return bytes(body)

    @contextmanager
    def _one_at_a_time(self, host: str) -> Iterator[None]:
        """At most one request in flight per host name (any scheme or port), across this process's threads."""
        with self._locks_lock:
            lock = self._host_locks.setdefault(host, threading.Lock())
        with lock:
            yield


def _pool(target: Target, address: str, timeout: urllib3.Timeout, ca_certs: str | None) -> urllib3.HTTPConnectionPool:
    """A one-connection pool to this very address; TLS speaks and checks the URL's own name."""
    if target.scheme == "https":
        return urllib3.HTTPSConnectionPool(
            address,
            target.port,
            timeout=timeout,
            maxsize=1,
            retries=False,
            cert_reqs="CERT_REQUIRED",
            ca_certs=ca_certs,
            server_hostname=target.host,
            assert_hostname=target.host,
        )
    return urllib3.HTTPConnectionPool(address, target.port, timeout=timeout, maxsize=1, retries=False)


def _content_type(value: str) -> tuple[str, str | None]:
    message = Message()
    message["content-type"] = value or "application/octet-stream"
    charset = message.get_param("charset")
    return message.get_content_type(), charset if isinstance(charset, str) else None


def _response(target: Target, response: urllib3.BaseHTTPResponse, body: bytes) -> Fetched:
    content_type, charset = _content_type(response.headers.get("Content-Type", ""))
    return Fetched(
        url=target.url,
        status=response.status,
        body=body,
        content_type=content_type,
        charset=charset,
        etag=response.headers.get("ETag"),
        last_modified=response.headers.get("Last-Modified"),
    )


def _empty(target: Target, status: int) -> Fetched:
    return Fetched(target.url, status, b"", "", None, None, None)


def _status_error(url: str, status: int) -> FetchFailed:
    return FetchFailed(f"{url} answered HTTP {status}", status)


def _reason(error: BaseException | None) -> str:
    if error is None:
        return "no address to connect to"
    text = str(getattr(error, "reason", None) or error)
    return text.split(": ", 1)[-1][:200] if text else type(error).__name__
