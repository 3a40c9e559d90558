"""Connections to PostgreSQL: one-line errors for every way reaching the database can fail."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from qa.errors import DatabaseUnavailable


def database_label(url: str) -> str:
    """Where a connection URL points, without its password."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "the database (QA_DATABASE_URL is not a valid connection string)"
    return f"database {parts.get('dbname', '?')!s} on {parts.get('host') or 'localhost'}:{parts.get('port') or 5432}"


def first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def connect(url: str) -> psycopg.Connection[Any]:
    """One autocommit connection, or DatabaseUnavailable with a one-line reason."""
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=5)
    except (psycopg.Error, ValueError) as e:
        raise DatabaseUnavailable(f"cannot connect to {database_label(url)}: {first_line(e)}") from e


@contextmanager
def temporary_database(url: str, prefix: str = "qa_tmp") -> Iterator[str]:
    """A new, empty database beside the one `url` names (needs CREATEDB), dropped afterwards; yields its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with connect(url) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_conninfo(url, dbname=name)
    finally:
        with connect(url) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
