"""Storage back ends: where articles, passages and vectors live, and the two retrieval legs over them.

`base` holds the interface every back end implements; `faiss_sqlite` (the index folder, the default) and
`postgres` (PostgreSQL + pgvector) implement it; `factory.open_backend` picks one from the settings.
"""
