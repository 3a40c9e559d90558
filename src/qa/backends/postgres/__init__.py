"""PostgreSQL + pgvector (QA_BACKEND=postgres): any number of stateless API replicas and ingest workers."""
