"""FAISS + SQLite in the index folder (QA_BACKEND=faiss, the default): no server to run."""
