"""What tests share besides pytest fixtures: paths, the sample article, helpers and a fake embedder."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from qa import QA
from qa.backends.faiss_sqlite.backend import FaissSqliteBackend
from qa.embedding import Vectors

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "corpus"
SHARED = REPO.parent / "shared"
SAMPLE_ID = "kazakhstan-china-new-silk-road.txt"
API_KEY = "test-key"


def faiss_backend(qa: QA) -> FaissSqliteBackend:
    """The FAISS + SQLite back end of `qa`, for what only it has (checkpoints, the writer lock, consistency)."""
    backend = qa.backend
    assert isinstance(backend, FaissSqliteBackend), f"QA_BACKEND={qa.settings.backend} has no FAISS folder"
    return backend


def database_url(server_url: str, name: str) -> str:
    """The URL of another database on the same server."""
    from psycopg.conninfo import make_conninfo

    return make_conninfo(server_url, dbname=name)


def fresh_database(server_url: str, name: str, template: str) -> str:
    """(Re)create database `name` as a copy of a template; returns its URL."""
    from qa.backends.postgres.connection import connect

    with connect(server_url) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE {template}')
    return database_url(server_url, name)


class FakeEmbedder:
    """A deterministic stand-in for the model, for fast tests of plumbing (the real model runs end to end elsewhere).

    A text's vector is the normalised sum of its words' hashed directions, so texts sharing words are similar;
    a word is one word piece. It counts every call, so tests can see what was embedded.
    """

    name = "fake-hashed-words"
    dimension = 64
    max_tokens = 256

    def __init__(self) -> None:
        self.embedded: list[str] = []

    def encode(self, texts: Sequence[str]) -> Vectors:
        """One unit vector per text."""
        self.embedded.extend(texts)
        return np.vstack([self._vector(t) for t in texts]) if texts else np.zeros((0, self.dimension), np.float32)

    def encode_cached(self, texts: Sequence[str]) -> Vectors:
        """The same as encode (nothing to save)."""
        return self.encode(texts)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Words per text."""
        return [len(re.findall(r"\S+", t)) for t in texts]

    def encode_with_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]
    ) -> tuple[Vectors, list[Vectors]]:
        """Each text's vector and one per span of it."""
        passages = self.encode(texts)
        sentences = [
            np.vstack([self._vector(t[s:e]) for s, e in ss]) if ss else np.zeros((0, self.dimension), np.float32)
            for t, ss in zip(texts, spans, strict=True)
        ]
        return passages, sentences

    def _vector(self, text: str) -> Vectors:
        vector = np.zeros(self.dimension, dtype=np.float32)
        for word in re.findall(r"\w+", text.lower()):
            seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:4], "big")
            vector += np.random.default_rng(seed).standard_normal(self.dimension).astype(np.float32)
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm else vector
