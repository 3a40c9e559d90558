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


class IndexMismatch(QAError):
    """The index on disk was built differently (model, format) from what this run asks for."""


class IndexBusy(QAError):
    """Another process holds the writer lock for too long."""


class PayloadTooLarge(QAError):
    """An upload or body over the configured limit."""


class ModelUnavailable(QAError):
    """The embedding model cannot be loaded (missing files, a broken checkpoint): the server's fault (503)."""


class DatabaseUnavailable(QAError):
    """The PostgreSQL back end cannot reach its database, or QA_DATABASE_URL is not set."""


class VectorExtensionMissing(DatabaseUnavailable):
    """The database has no pgvector extension and it cannot be created."""


class SchemaVersionMismatch(IndexMismatch):
    """The database schema is missing, older (run `qa db init`) or newer than this qa."""
