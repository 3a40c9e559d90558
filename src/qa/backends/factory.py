"""Open the back end QA_BACKEND names. Nothing in the back ends imports this module."""

from __future__ import annotations

from qa.backends.base import Backend
from qa.settings import Settings


def open_backend(settings: Settings) -> Backend:
    """ "faiss" (the index folder, the default) or "postgres" (QA_DATABASE_URL)."""
    if settings.backend == "postgres":
        from qa.backends.postgres.backend import PostgresBackend

        return PostgresBackend(settings)
    from qa.backends.faiss_sqlite.backend import FaissSqliteBackend

    return FaissSqliteBackend(settings)
