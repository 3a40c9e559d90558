"""Domain errors; the HTTP app and the CLI each turn them into their own kind of message in one place."""

from __future__ import annotations


class QAError(Exception):
    """Base of every error qa reports to a user."""


class ArticleNotFound(QAError):
    """No article has this id."""

    def __init__(self, article_id: str) -> None:
        super().__init__(f"no article with id {article_id!r}")
        self.article_id = article_id


class InvalidArticle(QAError):
    """A file or payload that cannot be read as an article."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason


class InvalidQuestion(QAError):
    """A question or query that is empty, too long or otherwise unusable."""


class InvalidFilter(InvalidQuestion):
    """A filter (since, until, source) that cannot be used; the message starts with the field's name."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field


class IndexMismatch(QAError):
    """The index on disk was built differently (model, format) from what this run asks for."""


class IndexBusy(QAError):
    """Another process holds the writer lock for too long."""


class PayloadTooLarge(QAError):
    """An upload or body over the configured limit."""


class ModelUnavailable(QAError):
    """The embedding model cannot be loaded (missing files, a broken checkpoint): the server's fault (503)."""


class ReaderUnavailable(QAError):
    """A file format's reader cannot be loaded (a broken installation): the server's fault (503)."""


class DatabaseUnavailable(QAError):
    """The PostgreSQL back end cannot reach its database, or QA_DATABASE_URL is not set."""


class VectorExtensionMissing(DatabaseUnavailable):
    """The database has no pgvector extension and it cannot be created."""


class SchemaVersionMismatch(IndexMismatch):
    """The database schema is missing, older (run `qa db init`) or newer than this qa."""


class InvalidURL(QAError):
    """A URL qa cannot fetch from: not http(s), no host, a host that does not exist, or not a page or feed."""


class FetchRefused(QAError):
    """qa will not fetch this URL: its address is private, loopback, link-local or reserved, or robots.txt says no."""


class FetchFailed(QAError):
    """The site could not be reached, answered with an error, redirected too often or sent too much."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status  # the site's HTTP status, when it answered with an error


class FetchTimeout(FetchFailed):
    """The site took longer than QA_FETCH_TIMEOUT (or QA_FETCH_CONNECT_TIMEOUT to connect)."""


class InvalidFeed(QAError):
    """A document that is not an RSS or Atom feed."""


class FeedNotFound(QAError):
    """No feed with this URL is followed."""

    def __init__(self, url: str) -> None:
        super().__init__(f"no feed {url!r} is followed (see `qa feeds list`)")
        self.url = url
